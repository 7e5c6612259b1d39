/** Small statistics helpers shared by the scenarios. */

/** Nearest-rank percentile (p in 0..100) of `values`; NaN when empty. Does not mutate `values`. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

export function median(values: ArrayLike<number>): number {
  return percentile(values, 50);
}

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] ?? 0;
  return sum / values.length;
}

/** `a / b`, NaN instead of Infinity when `b` is 0 so a missing baseline never reads as a huge ratio. */
export function ratio(a: number, b: number): number {
  return b === 0 || !Number.isFinite(b) ? Number.NaN : a / b;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

export function summarize(latenciesMs: ArrayLike<number>): LatencySummary {
  let max = latenciesMs.length === 0 ? Number.NaN : Number.NEGATIVE_INFINITY;
  for (let i = 0; i < latenciesMs.length; i++) max = Math.max(max, latenciesMs[i] ?? Number.NaN);
  return {
    count: latenciesMs.length,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
    meanMs: mean(latenciesMs),
    maxMs: max,
  };
}
