/**
 * The benchmark's result shape, its console table and its JSON files. Every figure
 * carries its unit and, where it has a baseline, the ratio to it, so the printed
 * table and the JSON say the same thing.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, freemem, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface Target {
  /** `>=` the ratio (or value) must reach it; `<` it must stay under it; `<=` at most it. */
  op: '>=' | '<' | '<=';
  value: number;
}

export interface Ratio {
  value: number;
  /** What the figure is divided by, e.g. "raw SendMessage/s". */
  to: string;
  target?: Target;
}

export interface Figure {
  /** Stable key for tooling, e.g. `ingress.inProcess.ackedPerSecond`. */
  id: string;
  label: string;
  value: number;
  unit: string;
  ratio?: Ratio;
  /** A target on the value itself (not a ratio), e.g. cost < $3 per million. */
  target?: Target;
}

/** A count that must be 0 (lost events, mismatches...): target < 1. */
export function mustBeZero(id: string, label: string, value: number, unit: string): Figure {
  return { id, label, value, unit, target: { op: '<', value: 1 } };
}

export interface Section {
  id: string;
  title: string;
  figures: Figure[];
  /** Assumptions, price tables, caveats: printed under the section. */
  notes: string[];
  /** Raw detail for the JSON only (per-command counts, per-function sizes...). */
  detail?: unknown;
  /** Set when the scenario could not run; the reason is printed instead of figures. */
  skipped?: string;
  /** Wall time the scenario took. */
  durationSeconds?: number;
}

export interface TargetCheck {
  figureId: string;
  label: string;
  actual: number;
  target: Target;
  met: boolean;
}

export interface BenchReport {
  schemaVersion: 1;
  mode: 'quick' | 'full';
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  /** The run's sizes (durations, concurrency, histories...). */
  sizes: Record<string, number>;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGb: number;
    freeMemoryGb: number;
    os: string;
    node: string;
  };
  sections: Section[];
  targets: TargetCheck[];
}

export function machineInfo(): BenchReport['machine'] {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryGb: round(totalmem() / 2 ** 30, 1),
    freeMemoryGb: round(freemem() / 2 ** 30, 1),
    os: type(),
    node: process.version,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Human formatting: 3 significant digits, thousands grouped, no exponent for everyday sizes. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs === 0) return '0';
  if (abs < 0.001) return value.toExponential(2);
  return Number(value.toPrecision(3)).toString();
}

export function isMet(actual: number, target: Target): boolean {
  if (!Number.isFinite(actual)) return false;
  if (target.op === '>=') return actual >= target.value;
  return target.op === '<=' ? actual <= target.value : actual < target.value;
}

/** Every figure with a target (on its ratio or its value), checked. */
export function checkTargets(sections: readonly Section[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const section of sections) {
    for (const figure of section.figures) {
      if (figure.ratio?.target) {
        checks.push({
          figureId: figure.id,
          label: `${figure.label} / ${figure.ratio.to}`,
          actual: figure.ratio.value,
          target: figure.ratio.target,
          met: isMet(figure.ratio.value, figure.ratio.target),
        });
      }
      if (figure.target) {
        checks.push({
          figureId: figure.id,
          label: figure.label,
          actual: figure.value,
          target: figure.target,
          met: isMet(figure.value, figure.target),
        });
      }
    }
  }
  return checks;
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function describeTarget(target: Target, suffix = ''): string {
  return `${target.op} ${formatNumber(target.value)}${suffix}`;
}

/** The console table: one block per section, then the target summary. */
export function renderTable(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push(
    `Benchmark (${report.mode}) ${report.startedAt}, ${report.durationSeconds.toFixed(0)} s, ` +
      `${m.cpus} x ${m.cpuModel}, ${m.memoryGb} GB, Node ${m.node}`,
  );
  for (const section of report.sections) {
    const took =
      section.durationSeconds === undefined ? '' : ` (${section.durationSeconds.toFixed(0)} s)`;
    out.push('', `== ${section.title}${took}`);
    if (section.skipped) {
      out.push(`   skipped: ${section.skipped}`);
    }
    const rows = section.figures.map((figure) => {
      const ratio = figure.ratio ? `${formatNumber(figure.ratio.value)}x ${figure.ratio.to}` : '';
      const targets: string[] = [];
      if (figure.ratio?.target) {
        const met = isMet(figure.ratio.value, figure.ratio.target);
        targets.push(`${met ? 'ok' : 'MISS'} (target ${describeTarget(figure.ratio.target, 'x')})`);
      }
      if (figure.target) {
        const met = isMet(figure.value, figure.target);
        targets.push(
          `${met ? 'ok' : 'MISS'} (target ${describeTarget(figure.target)} ${figure.unit})`,
        );
      }
      return [figure.label, formatNumber(figure.value), figure.unit, ratio, targets.join(' ')];
    });
    const widths = [0, 0, 0, 0];
    for (const row of rows) {
      for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, row[i]!.length);
    }
    for (const row of rows) {
      out.push(
        `   ${pad(row[0]!, widths[0]!)}  ${pad(row[1]!, widths[1]!, true)} ${pad(row[2]!, widths[2]!)}  ${pad(row[3]!, widths[3]!)}  ${row[4]}`.trimEnd(),
      );
    }
    for (const note of section.notes) out.push(`   - ${note}`);
  }
  if (report.targets.length > 0) {
    const met = report.targets.filter((t) => t.met).length;
    out.push('', `== Targets: ${met}/${report.targets.length} met`);
    for (const t of report.targets) {
      out.push(
        `   ${t.met ? 'ok  ' : 'MISS'} ${t.label}: ${formatNumber(t.actual)} (target ${describeTarget(t.target)})`,
      );
    }
  }
  return out.join('\n');
}

/**
 * Writes `<dir>/<timestamp>.json` and `<dir>/latest.json`; returns the timestamped path.
 * `repoRoot` given: the files are then formatted with the repo's biome, because biome's
 * file set covers bench/** and would otherwise fail `npm run lint` after a run.
 */
export async function writeReport(
  report: BenchReport,
  dir: string,
  repoRoot?: string,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replaceAll(':', '-').replace(/\.\d+Z$/, 'Z');
  const path = join(dir, `${stamp}.json`);
  const latest = join(dir, 'latest.json');
  const json = `${JSON.stringify(report, jsonSafe, 2)}\n`;
  await writeFile(path, json);
  await writeFile(latest, json);
  if (repoRoot) {
    const biome = join(repoRoot, 'node_modules', '.bin', 'biome');
    // Best effort: a missing or failing formatter leaves valid, merely unformatted JSON.
    await promisify(execFile)(biome, ['format', '--write', path, latest], { cwd: repoRoot }).catch(
      () => undefined,
    );
  }
  return path;
}

/** NaN and Infinity are not JSON: write null so consumers see "not measured". */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
