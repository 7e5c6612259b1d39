/**
 * Closed-loop load generator: `concurrency` workers each run the operation again as
 * soon as the previous call settled. Closed loop (not a fixed arrival rate) because
 * the question is "how fast can this go on this machine", and it keeps the raw
 * emulator limits and the scenarios comparable: same loop, same concurrency.
 */
import { performance } from 'node:perf_hooks';

export interface ClosedLoopOptions {
  concurrency: number;
  /** Stop starting new calls after this long (measured phase only). */
  durationMs?: number;
  /** Stop after this many calls in the measured phase. One of `durationMs`/`total` is required. */
  total?: number;
  /** Run the operation this long first, unrecorded, so JIT, sockets and caches are warm. Default 0. */
  warmupMs?: number;
}

export interface ClosedLoopResult {
  completed: number;
  failed: number;
  elapsedMs: number;
  /** Successful calls per second over the measured phase. */
  perSecond: number;
  /** Latency of each successful call, ms. */
  latenciesMs: Float64Array;
  firstError?: unknown;
}

/**
 * Runs `op(i, prepare(i))` (i is unique across warm-up and measurement) under a closed
 * loop. Only `op` is timed: `prepare` is where the harness builds its input (signing
 * a payload...), which is not the system under test's work.
 */
export async function runClosedLoop<T = undefined>(
  op: (i: number, input: T) => Promise<void>,
  options: ClosedLoopOptions,
  prepare?: (i: number) => T,
): Promise<ClosedLoopResult> {
  if (options.durationMs === undefined && options.total === undefined) {
    throw new Error('runClosedLoop needs durationMs or total');
  }
  let next = 0;
  if (options.warmupMs && options.warmupMs > 0) {
    const warmEnd = performance.now() + options.warmupMs;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (performance.now() < warmEnd) {
          const i = next++;
          await op(i, prepare ? prepare(i) : (undefined as T)).catch(() => undefined);
        }
      }),
    );
  }

  const latencies: number[] = [];
  let failed = 0;
  let started = 0;
  let firstError: unknown;
  const start = performance.now();
  const end =
    options.durationMs === undefined ? Number.POSITIVE_INFINITY : start + options.durationMs;
  const total = options.total ?? Number.POSITIVE_INFINITY;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (started < total && performance.now() < end) {
        started++;
        const i = next++;
        const input = prepare ? prepare(i) : (undefined as T);
        const t0 = performance.now();
        try {
          await op(i, input);
          latencies.push(performance.now() - t0);
        } catch (error) {
          failed++;
          firstError ??= error;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  return {
    completed: latencies.length,
    failed,
    elapsedMs,
    perSecond: latencies.length / (elapsedMs / 1000),
    latenciesMs: Float64Array.from(latencies),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

export interface OpenLoopOptions {
  /** Calls started per second, on a fixed schedule whatever the latency. */
  ratePerSecond: number;
  total: number;
  /** Calls allowed in flight; when reached the schedule slips rather than piling up. Default 64. */
  maxInFlight?: number;
}

/**
 * Open loop: starts `op(i, prepare(i))` at a fixed rate, as webhooks arrive in life, so
 * latency and lag are measured at a known load instead of at saturation.
 */
export async function runOpenLoop<T = undefined>(
  op: (i: number, input: T) => Promise<void>,
  options: OpenLoopOptions,
  prepare?: (i: number) => T,
): Promise<ClosedLoopResult> {
  const interval = 1000 / Math.max(0.001, options.ratePerSecond);
  const maxInFlight = options.maxInFlight ?? 64;
  const latencies: number[] = [];
  let failed = 0;
  let firstError: unknown;
  const running = new Set<Promise<void>>();
  const start = performance.now();
  for (let i = 0; i < options.total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    while (running.size >= maxInFlight) await Promise.race(running);
    const input = prepare ? prepare(i) : (undefined as T);
    const t0 = performance.now();
    const call: Promise<void> = op(i, input).then(
      () => {
        latencies.push(performance.now() - t0);
      },
      (error: unknown) => {
        failed++;
        firstError ??= error;
      },
    );
    const tracked = call.finally(() => running.delete(tracked));
    running.add(tracked);
  }
  await Promise.all(running);
  const elapsedMs = performance.now() - start;
  return {
    completed: latencies.length,
    failed,
    elapsedMs,
    perSecond: latencies.length / (elapsedMs / 1000),
    latenciesMs: Float64Array.from(latencies),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

export interface AlternatingTiming {
  /** Latencies of `op`, ms. */
  own: number[];
  /** Latencies of `baseline` (the raw call `op` makes), ms; empty without one. */
  base: number[];
  /** Calls of `op` started, warm-up included. */
  calls: number;
  failed: number;
  firstError?: unknown;
}

/**
 * `op` one call at a time, in `slices` alternating with `baseline` (the raw emulator
 * call it makes), so both see the same machine and the emulator's own latency is in
 * both figures. The first slice of each is preceded by a warm-up.
 */
export async function timeAlternating(
  op: () => Promise<unknown>,
  baseline: (() => Promise<unknown>) | undefined,
  options: { slices: number; durationMs: number; warmupMs: number },
): Promise<AlternatingTiming> {
  const timing: AlternatingTiming = { own: [], base: [], calls: 0, failed: 0 };
  for (let slice = 0; slice < options.slices; slice++) {
    const loop = {
      concurrency: 1,
      durationMs: options.durationMs / options.slices,
      warmupMs: slice === 0 ? options.warmupMs : 0,
    };
    if (baseline) {
      timing.base.push(
        ...(await runClosedLoop(async () => void (await baseline()), loop)).latenciesMs,
      );
    }
    const run = await runClosedLoop(async () => {
      timing.calls += 1;
      await op();
    }, loop);
    timing.own.push(...run.latenciesMs);
    timing.failed += run.failed;
    timing.firstError ??= run.firstError;
  }
  return timing;
}
