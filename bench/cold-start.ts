/**
 * Cold start of each Lambda in the stack model: bundled exactly as the CDK function
 * construct bundles it (lib/billing-function.ts: esbuild, ESM, node22, minified,
 * linked source map without sources, AWS SDK bundled), then imported by fresh `node`
 * processes. Cold = Node bootstrap + module init (what Lambda reports as Init
 * Duration, minus the runtime's own start) + the first invocation; warm = the
 * invocations after it in the same process.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import type { FunctionModel, StackModel } from '../local/stack-model.ts';
import { meanBilledDurationMs } from './cost-model.ts';
import type { Figure, Section } from './report.ts';
import { median } from './stats.ts';

/**
 * Copied from lib/billing-function.ts (not exported there): ESM output has no
 * `require`, which some bundled CommonJS dependencies call for Node built-ins.
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

export interface BundleResult {
  dir: string;
  file: string;
  bytes: number;
  sourceMapBytes: number;
  /** Deflate size of bundle + map, close to what the deployment zip weighs. */
  zippedBytes: number;
  /** Biggest contributors to the bundle, by package. */
  topPackages: { name: string; bytes: number }[];
}

/** Bundles `fn` like the CDK construct does, into a fresh temp dir. */
export async function bundleLikeCdk(repoRoot: string, fn: FunctionModel): Promise<BundleResult> {
  const dir = await mkdtemp(join(tmpdir(), `bench-${fn.logicalId.slice(0, 40)}-`));
  const file = join(dir, 'index.mjs');
  const result = await build({
    entryPoints: [resolve(repoRoot, fn.entry)],
    outfile: file,
    absWorkingDir: repoRoot,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    metafile: true,
    logLevel: 'silent',
  });
  const code = await readFile(file);
  const map = await readFile(`${file}.map`).catch(() => Buffer.alloc(0));
  const byPackage = new Map<string, number>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const name = match?.[1] ?? '(project code)';
      byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
    }
  }
  const topPackages = [...byPackage.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([name, bytes]) => ({ name, bytes }));
  return {
    dir,
    file,
    bytes: (await stat(file)).size,
    sourceMapBytes: map.length,
    zippedBytes: deflateRawSync(Buffer.concat([code, map])).length,
    topPackages,
  };
}

/** What the fresh process reports. */
interface ProcessSample {
  /** ms from process start until the runner script began (Node bootstrap). */
  bootMs: number;
  /** ms to import the bundle (module init). */
  initMs: number;
  invocations: { ms: number; ok: boolean; error?: string }[];
}

/**
 * The script each fresh process runs. It reports through a file because the handlers
 * log to stdout. `performance.now()` counts from process start, hence `bootMs`.
 */
const RUNNER = `
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
const bootMs = performance.now();
const [bundle, exportName, eventsFile, outFile, checkKind] = process.argv.slice(2);
const t0 = performance.now();
const mod = await import(bundle);
const initMs = performance.now() - t0;
const invocations = [];
if (eventsFile !== '-') {
  const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
  const handler = mod[exportName];
  for (const event of events) {
    const context = {
      functionName: 'bench', functionVersion: '$LATEST', memoryLimitInMB: '512',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench',
      awsRequestId: randomUUID(), logGroupName: '/aws/lambda/bench', logStreamName: 'bench',
      callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => 10000,
    };
    const start = performance.now();
    try {
      const response = await handler(event, context);
      const ok = checkKind === 'http' ? response && response.statusCode >= 200 && response.statusCode < 300
        : checkKind === 'sqs' ? !response || (response.batchItemFailures || []).length === 0 : true;
      invocations.push({ ms: performance.now() - start, ok: !!ok, error: ok ? undefined : JSON.stringify(response).slice(0, 300) });
    } catch (error) {
      invocations.push({ ms: performance.now() - start, ok: false, error: String(error && error.stack || error).slice(0, 300) });
    }
  }
}
writeFileSync(outFile, JSON.stringify({ bootMs, initMs, invocations }));
process.exit(0);
`;

export interface InvocationPlan {
  /** Events for one fresh process: the first is the cold invocation, the rest warm. Must be fresh per call. */
  events: (run: number) => unknown[];
  /** How to tell success from the response. */
  check: 'http' | 'sqs' | 'none';
}

export interface ColdStartOptions {
  repoRoot: string;
  model: StackModel;
  /** Fresh processes per function; the median is reported. */
  samples: number;
  /** Env for each function's process (resolved table names, endpoints, secrets...). */
  envFor: (fn: FunctionModel) => Record<string, string>;
  /** Invocations to run after init, per function logical id; functions without one are init-only. */
  plans: Record<string, InvocationPlan>;
  log: (message: string) => void;
}

export interface FunctionColdStart {
  logicalId: string;
  entry: string;
  memoryMb: number;
  bundle?: Omit<BundleResult, 'dir' | 'file'>;
  bootMsMedian?: number;
  initMsMedian?: number;
  initMsSamples?: number[];
  /** First invocation in a fresh process (cold), median over processes. */
  firstInvokeMsMedian?: number;
  /** Later invocations in the same process (warm), median of all. */
  warmInvokeMsMedian?: number;
  /** Mean of the warm invocations rounded up to 1 ms each, as Lambda bills them. */
  warmBilledDurationMs?: number;
  failedInvocations?: number;
  firstError?: string;
  error?: string;
}

async function runProcess(
  runnerFile: string,
  bundleFile: string,
  exportName: string,
  eventsFile: string,
  check: string,
  env: Record<string, string>,
): Promise<ProcessSample> {
  const outFile = `${eventsFile === '-' ? bundleFile : eventsFile}.out.json`;
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [runnerFile, pathToFileURL(bundleFile).href, exportName, eventsFile, outFile, check],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolvePromise()
        : reject(new Error(`exit ${code}: ${stderr.trim().slice(-500)}`)),
    );
  });
  const sample = JSON.parse(await readFile(outFile, 'utf8')) as ProcessSample;
  await rm(outFile, { force: true });
  return sample;
}

export async function measureColdStarts(options: ColdStartOptions): Promise<FunctionColdStart[]> {
  const results: FunctionColdStart[] = [];
  for (const fn of options.model.functions) {
    const entry: FunctionColdStart = {
      logicalId: fn.logicalId,
      entry: fn.entry,
      memoryMb: fn.memoryMb,
    };
    results.push(entry);
    let bundled: BundleResult | undefined;
    try {
      options.log(`cold start: bundling ${fn.entry}`);
      bundled = await bundleLikeCdk(options.repoRoot, fn);
      const { dir: _dir, file: _file, ...sizes } = bundled;
      entry.bundle = sizes;
      const runnerFile = join(bundled.dir, 'runner.mjs');
      await writeFile(runnerFile, RUNNER);
      const env = options.envFor(fn);
      const plan = options.plans[fn.logicalId];
      const samples: ProcessSample[] = [];
      for (let run = 0; run < options.samples; run++) {
        let eventsFile = '-';
        if (plan) {
          eventsFile = join(bundled.dir, `events-${run}.json`);
          await writeFile(eventsFile, JSON.stringify(plan.events(run)));
        }
        samples.push(
          await runProcess(
            runnerFile,
            bundled.file,
            fn.exportName,
            eventsFile,
            plan?.check ?? 'none',
            env,
          ),
        );
      }
      entry.bootMsMedian = median(samples.map((s) => s.bootMs));
      entry.initMsSamples = samples.map((s) => s.initMs);
      entry.initMsMedian = median(entry.initMsSamples);
      if (plan) {
        const first = samples.flatMap((s) => s.invocations.slice(0, 1));
        const warm = samples.flatMap((s) => s.invocations.slice(1));
        entry.firstInvokeMsMedian = median(first.map((i) => i.ms));
        entry.warmInvokeMsMedian = median(warm.map((i) => i.ms));
        entry.warmBilledDurationMs = meanBilledDurationMs(warm.map((i) => i.ms));
        const failed = [...first, ...warm].filter((i) => !i.ok);
        entry.failedInvocations = failed.length;
        if (failed[0]?.error) entry.firstError = failed[0].error;
      }
    } catch (error) {
      entry.error = error instanceof Error ? error.message.split('\n')[0] : String(error);
    } finally {
      if (bundled) await rm(bundled.dir, { recursive: true, force: true });
    }
  }
  return results;
}

function shortName(entry: string): string {
  return entry.replace(/^functions\//, '').replace(/\.ts$/, '');
}

export function coldStartSection(results: FunctionColdStart[], samples: number): Section {
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const r of results) {
    const name = shortName(r.entry);
    if (r.error || !r.bundle) {
      notes.push(`${name}: not measured (${r.error ?? 'no bundle'})`);
      continue;
    }
    figures.push(
      {
        id: `coldStart.${name}.bundleBytes`,
        label: `${name} bundle`,
        value: r.bundle.bytes / 1024,
        unit: 'KiB',
      },
      {
        id: `coldStart.${name}.zippedBytes`,
        label: `${name} bundle+map deflated`,
        value: r.bundle.zippedBytes / 1024,
        unit: 'KiB',
      },
      {
        id: `coldStart.${name}.initMs`,
        label: `${name} module init (cold)`,
        value: r.initMsMedian ?? Number.NaN,
        unit: 'ms',
      },
    );
    if (r.firstInvokeMsMedian !== undefined && r.warmInvokeMsMedian !== undefined) {
      figures.push(
        {
          id: `coldStart.${name}.firstInvokeMs`,
          label: `${name} first invocation (cold)`,
          value: r.firstInvokeMsMedian,
          unit: 'ms',
          ratio: { value: r.firstInvokeMsMedian / r.warmInvokeMsMedian, to: 'warm invocation' },
        },
        {
          id: `coldStart.${name}.warmInvokeMs`,
          label: `${name} invocation (warm)`,
          value: r.warmInvokeMsMedian,
          unit: 'ms',
        },
      );
      if (r.failedInvocations) {
        notes.push(
          `${name}: ${r.failedInvocations} invocations failed, e.g. ${r.firstError ?? '?'}`,
        );
      }
    }
    const top = r.bundle.topPackages
      .slice(0, 4)
      .map((p) => `${p.name} ${(p.bytes / 1024).toFixed(0)} KiB`)
      .join(', ');
    notes.push(`${name}: largest parts ${top}.`);
  }
  const boot = results.map((r) => r.bootMsMedian).filter((v): v is number => v !== undefined);
  notes.unshift(
    `Median of ${samples} fresh \`node\` processes each (Node ${process.version} here; Lambda runs node22 on arm64 with ` +
      'CPU in proportion to memory: compare functions and runs with each other, not with Lambda figures). ' +
      `Node's own bootstrap before the import: ${boot.length ? median(boot).toFixed(0) : 'n/a'} ms, not included. ` +
      'Tracing is off here (no X-Ray daemon, no AWS_EXECUTION_ENV), so the bundled Tracer and X-Ray SDK are not ' +
      'evaluated at init; deployed functions, with active tracing, evaluate them too.',
  );
  return {
    id: 'coldStart',
    title: 'Cold start (esbuild bundle as the CDK construct makes it)',
    figures,
    notes,
    detail: results,
  };
}
