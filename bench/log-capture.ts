/**
 * Counts the bytes the handlers write to stdout/stderr — on Lambda every one of them
 * is ingested by CloudWatch Logs, including EMF metric lines — and attributes them to
 * a function through AsyncLocalStorage. Captured output is swallowed: thousands of
 * JSON log lines would bury the benchmark's own report.
 *
 * Powertools' Logger and Metrics write through a `Console` bound to `process.stdout`
 * and `process.stderr`, which calls the streams' `write` at call time, so replacing
 * `write` catches them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { writeSync } from 'node:fs';

type Write = typeof process.stdout.write;

export class LogCapture {
  private readonly scope = new AsyncLocalStorage<string>();
  private bytes = new Map<string, number>();
  private lines = new Map<string, number>();
  /** The first few error-level lines per label, kept to explain failures in the report. */
  private errors = new Map<string, string[]>();
  private restore: (() => void) | undefined;

  install(): void {
    if (this.restore) return;
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((stream) => stream.write);
    for (const stream of streams) {
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        const label = this.scope.getStore() ?? 'unattributed';
        const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
        this.bytes.set(label, (this.bytes.get(label) ?? 0) + size);
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
        this.lines.set(label, (this.lines.get(label) ?? 0) + (text.match(/\n/g)?.length ?? 0));
        if (/"level":"(ERROR|CRITICAL)"/.test(text)) {
          const kept = this.errors.get(label) ?? [];
          if (kept.length < 3) kept.push(text.trim().slice(0, 3000));
          this.errors.set(label, kept);
        }
        const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
        if (callback) queueMicrotask(callback);
        return true;
      }) as Write;
    }
    this.restore = () => {
      streams.forEach((stream, index) => {
        stream.write = originals[index]!;
      });
    };
  }

  uninstall(): void {
    this.restore?.();
    this.restore = undefined;
  }

  /** Runs `fn` so that whatever it (and what it awaits) writes counts for `label`. */
  run<T>(label: string, fn: () => T): T {
    return this.scope.run(label, fn);
  }

  reset(): void {
    this.bytes = new Map();
    this.lines = new Map();
    this.errors = new Map();
  }

  errorsOf(label: string): string[] {
    return [...(this.errors.get(label) ?? [])];
  }

  bytesOf(label: string): number {
    return this.bytes.get(label) ?? 0;
  }

  linesOf(label: string): number {
    return this.lines.get(label) ?? 0;
  }

  snapshot(): Record<string, { bytes: number; lines: number }> {
    const out: Record<string, { bytes: number; lines: number }> = {};
    for (const [label, bytes] of this.bytes)
      out[label] = { bytes, lines: this.lines.get(label) ?? 0 };
    return out;
  }
}

/** Progress lines for the person running the benchmark; bypasses the capture. */
export function progress(message: string): void {
  writeSync(2, `[bench] ${message}\n`);
}
