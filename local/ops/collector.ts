/**
 * The figures of the operations page (`GET /ops`), collected inside the local
 * runtime's process:
 *
 * - every EMF document a hosted handler publishes (metrics-tap.ts hands them over),
 *   summed per metric name into per-second series;
 * - queue depth samples (queue-depths.ts), kept per second as gauges;
 * - the credit planner's and worker's counts per five-minute slot of the UTC day, by
 *   the schedules' clock (which `LOCAL_CLOCK_SPEED` may run faster than the wall clock);
 * - every metric per UTC day of the wall clock (what CloudWatch would hold), by its
 *   dimensions: count, sum, maximum and last value, the last few days only
 *   (`GET /ops/metrics`, which `npm run ops -- stats` reads).
 *
 * The per-second series are ring buffers over a sliding window (default 15 minutes),
 * so memory stays fixed whatever the traffic. Pure: time comes from the injected clocks.
 */
import { METRIC } from '../../functions/commons/metric-names.ts';
import { periodAt, SLOTS_PER_DAY, slotAt } from '../../functions/core/credits/refresh-slot.ts';

/** One metric of an EMF document: its values (several when added several times) and dimensions. */
export interface EmfMetric {
  name: string;
  unit: string;
  values: number[];
  dimensions: Record<string, string>;
}

/**
 * The metrics of a CloudWatch Embedded Metric Format document (what Powertools
 * Metrics serialises): names and units from `_aws.CloudWatchMetrics[].Metrics`, values
 * (a number or an array) and dimension values from the top-level keys. Anything that
 * is not EMF gives `[]`; a metric without a numeric value is left out.
 */
export function parseEmf(document: unknown): EmfMetric[] {
  if (!isRecord(document) || !isRecord(document._aws)) return [];
  const directives = document._aws.CloudWatchMetrics;
  if (!Array.isArray(directives)) return [];
  const metrics: EmfMetric[] = [];
  for (const directive of directives) {
    if (!isRecord(directive) || !Array.isArray(directive.Metrics)) continue;
    const dimensions: Record<string, string> = {};
    for (const set of Array.isArray(directive.Dimensions) ? directive.Dimensions : []) {
      for (const key of Array.isArray(set) ? set : []) {
        const value = document[key as string];
        if (typeof key === 'string' && typeof value === 'string') dimensions[key] = value;
      }
    }
    for (const definition of directive.Metrics) {
      if (!isRecord(definition) || typeof definition.Name !== 'string') continue;
      const raw = document[definition.Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter(
        (v): v is number => typeof v === 'number' && Number.isFinite(v),
      );
      if (values.length === 0) continue;
      metrics.push({
        name: definition.Name,
        unit: typeof definition.Unit === 'string' ? definition.Unit : 'None',
        values,
        dimensions: { ...dimensions },
      });
    }
  }
  return metrics;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What one second of a series holds. */
export interface SecondStats {
  count: number;
  sum: number;
  max: number;
  /** The value added last (gauges). */
  last: number;
}

/**
 * Per-second statistics over the last `size` seconds: slot `second % size` holds
 * that second until a later second reuses it. A value for a second older than the
 * one its slot holds now is outside the window and dropped.
 */
export class SecondRing {
  readonly size: number;
  private readonly seconds: Float64Array;
  private readonly count: Float64Array;
  private readonly sum: Float64Array;
  private readonly max: Float64Array;
  private readonly last: Float64Array;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`ring size ${size}`);
    this.size = size;
    this.seconds = new Float64Array(size).fill(Number.NaN);
    this.count = new Float64Array(size);
    this.sum = new Float64Array(size);
    this.max = new Float64Array(size);
    this.last = new Float64Array(size);
  }

  add(second: number, value: number): void {
    const i = this.index(second);
    const held = this.seconds[i]!;
    if (held !== second) {
      if (held > second) return;
      this.seconds[i] = second;
      this.count[i] = 0;
      this.sum[i] = 0;
      this.max[i] = Number.NEGATIVE_INFINITY;
    }
    this.count[i]! += 1;
    this.sum[i]! += value;
    this.max[i] = Math.max(this.max[i]!, value);
    this.last[i] = value;
  }

  /** The statistics of `second`, or undefined when nothing was added in it (or it left the window). */
  at(second: number): SecondStats | undefined {
    const i = this.index(second);
    if (this.seconds[i] !== second) return undefined;
    return { count: this.count[i]!, sum: this.sum[i]!, max: this.max[i]!, last: this.last[i]! };
  }

  private index(second: number): number {
    return ((second % this.size) + this.size) % this.size;
  }
}

/** Metrics counted per slot of the day as well as per second. */
export const SLOT_METRICS = [METRIC.creditsRefreshed, METRIC.creditsPlanned] as const;
export type SlotMetric = (typeof SLOT_METRICS)[number];

export interface OpsCollectorOptions {
  /** Length of the per-second window. Default 900 (15 minutes). */
  windowSeconds?: number;
  /** Wall clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** The schedules' clock (simulated when LOCAL_CLOCK_SPEED ≠ 1), for the slots of the day. Default `now`. */
  dayClock?: () => number;
  /** Days of slot counts kept. Default 2 (today and yesterday). */
  slotDays?: number;
  /** UTC days (wall clock) of per-day metrics kept, today included. Default 7. */
  dailyDays?: number;
}

/** One series (a metric with one set of dimension values) over one UTC day of the wall clock. */
export interface DailySeries {
  metric: string;
  dimensions: Record<string, string>;
  /** Values published (for a count of 1s: how many times it was counted). */
  count: number;
  sum: number;
  max: number;
  /** The value published last, and when (ISO time). */
  last: number;
  lastAt: string;
}

/** What `GET /ops/metrics` answers. */
export interface DailyMetricsDocument {
  generatedAt: string;
  /** Metrics published from this time on are in `days`: the runtime's start, or the first day still kept. */
  since: string;
  /** UTC date -> every series published that day. */
  days: Record<string, DailySeries[]>;
}

const DAY_MS = 86_400_000;

/**
 * The day-long figures, as the runtime keeps them in its data folder across a restart:
 * the slot counts and the per-day metrics. The per-second series cover minutes only and
 * start afresh. `coveredSince`: the earliest time the figures count from (they count
 * what the runtime saw while it ran).
 */
export interface CollectorDays {
  version: 1;
  coveredSince: number;
  slots: Record<string, Record<string, number[]>>;
  daily: Record<string, DailySeries[]>;
}

/** See the module comment. */
export class OpsCollector {
  readonly windowSeconds: number;
  readonly startedAt: number;
  readonly now: () => number;
  readonly dayClock: () => number;
  private readonly slotDays: number;
  private readonly dailyDays: number;
  private readonly series = new Map<string, SecondRing>();
  private readonly totals = new Map<string, number>();
  private readonly gauges = new Map<string, SecondRing>();
  /** metric -> UTC date -> count per slot. */
  private readonly slots = new Map<string, Map<string, number[]>>();
  /** UTC date -> series key (name and dimensions) -> the day's figures. */
  private readonly daily = new Map<string, Map<string, DailySeries>>();
  private documents = 0;
  /** The start of what the day-long figures count: this start, or an earlier run's restored. */
  private coveredSince: number;

  constructor(options: OpsCollectorOptions = {}) {
    this.windowSeconds = options.windowSeconds ?? 900;
    this.now = options.now ?? Date.now;
    this.dayClock = options.dayClock ?? this.now;
    this.slotDays = options.slotDays ?? 2;
    this.dailyDays = options.dailyDays ?? 7;
    this.startedAt = this.now();
    this.coveredSince = this.startedAt;
  }

  /** The day-long figures to keep across a restart (see CollectorDays). */
  exportDays(): CollectorDays {
    return {
      version: 1,
      coveredSince: this.coveredSince,
      slots: Object.fromEntries(
        [...this.slots].map(([name, days]) => [
          name,
          Object.fromEntries([...days].map(([date, counts]) => [date, [...counts]])),
        ]),
      ),
      daily: Object.fromEntries(
        Object.entries(this.dailyMetrics().days).map(([date, series]) => [
          date,
          series.filter((s) => s.count > 0),
        ]),
      ),
    };
  }

  /**
   * Adds what an earlier run kept (exportDays) to this one's figures, for the days still
   * kept; anything not of that shape is refused with a RangeError and nothing is added.
   */
  restoreDays(saved: unknown): void {
    const days = parseCollectorDays(saved);
    for (const [name, byDate] of Object.entries(days.slots)) {
      if (!(SLOT_METRICS as readonly string[]).includes(name)) continue;
      let kept = this.slots.get(name);
      if (!kept) {
        kept = new Map();
        this.slots.set(name, kept);
      }
      for (const [date, counts] of Object.entries(byDate)) {
        const mine = kept.get(date) ?? new Array<number>(SLOTS_PER_DAY).fill(0);
        kept.set(
          date,
          mine.map((count, slot) => count + (counts[slot] ?? 0)),
        );
      }
      this.keepRecentSlotDays(kept);
    }
    for (const [date, series] of Object.entries(days.daily)) {
      let mine = this.daily.get(date);
      if (!mine) {
        mine = new Map();
        this.daily.set(date, mine);
      }
      for (const earlier of series) {
        const key = seriesKey(earlier.metric, earlier.dimensions);
        const now = mine.get(key);
        mine.set(
          key,
          now
            ? {
                ...now,
                count: now.count + earlier.count,
                sum: now.sum + earlier.sum,
                max: Math.max(now.max, earlier.max),
              }
            : { ...earlier, dimensions: { ...earlier.dimensions } },
        );
      }
    }
    this.dropOldDays(this.now());
    this.coveredSince = Math.min(this.coveredSince, days.coveredSince);
  }

  /** EMF documents recorded so far. */
  get documentCount(): number {
    return this.documents;
  }

  /** Records every metric of an EMF document at the current time; ignores what is not EMF. */
  recordEmf(document: unknown): void {
    const metrics = parseEmf(document);
    if (metrics.length === 0) return;
    this.documents += 1;
    for (const metric of metrics) {
      this.recordMetric(metric.name, metric.values);
      this.addToDay(metric);
    }
  }

  /** Adds `values` of metric `name` at `atMs` (default now): summed per second, and per slot for `SLOT_METRICS`. */
  recordMetric(name: string, values: readonly number[], atMs = this.now()): void {
    const second = Math.floor(atMs / 1000);
    let ring = this.series.get(name);
    if (!ring) {
      ring = new SecondRing(this.windowSeconds);
      this.series.set(name, ring);
    }
    let added = 0;
    for (const value of values) {
      ring.add(second, value);
      added += value;
    }
    this.totals.set(name, (this.totals.get(name) ?? 0) + added);
    if ((SLOT_METRICS as readonly string[]).includes(name)) this.addToSlot(name, added);
  }

  /** A gauge sample (a queue depth): per second, the last value wins. */
  recordGauge(key: string, value: number, atMs = this.now()): void {
    let ring = this.gauges.get(key);
    if (!ring) {
      ring = new SecondRing(this.windowSeconds);
      this.gauges.set(key, ring);
    }
    ring.add(Math.floor(atMs / 1000), value);
  }

  /** The statistics of metric `name` in `second`, if anything was recorded then and it is in the window. */
  metricAt(name: string, second: number): SecondStats | undefined {
    return this.inWindow(second) ? this.series.get(name)?.at(second) : undefined;
  }

  /** The gauge `key`'s sample in `second`, if one was taken then and it is in the window. */
  gaugeAt(key: string, second: number): number | undefined {
    return this.inWindow(second) ? this.gauges.get(key)?.at(second)?.last : undefined;
  }

  private inWindow(second: number): boolean {
    return second > Math.floor(this.now() / 1000) - this.windowSeconds;
  }

  /** The sum of every value of metric `name` since the collector started. */
  total(name: string): number {
    return this.totals.get(name) ?? 0;
  }

  /** Counts per slot (288) of `date` (default: today by the day clock); zeros when nothing ran. */
  slotCounts(name: SlotMetric, date = periodAt(this.dayClock())): number[] {
    return [...(this.slots.get(name)?.get(date) ?? new Array<number>(SLOTS_PER_DAY).fill(0))];
  }

  /** Every series published per UTC day still kept (see `DailyMetricsDocument`). */
  dailyMetrics(): DailyMetricsDocument {
    const now = this.now();
    // Also when nothing was published since midnight: `days` never reaches before `since`.
    this.dropOldDays(now);
    const firstKept = Date.parse(`${periodAt(now)}T00:00:00Z`) - (this.dailyDays - 1) * DAY_MS;
    return {
      generatedAt: new Date(now).toISOString(),
      since: new Date(Math.max(this.coveredSince, firstKept)).toISOString(),
      days: Object.fromEntries(
        [...this.daily].map(([date, series]) => [
          date,
          [...series.values()].map((s) => ({ ...s, dimensions: { ...s.dimensions } })),
        ]),
      ),
    };
  }

  private addToDay(metric: EmfMetric): void {
    const now = this.now();
    const date = periodAt(now);
    let series = this.daily.get(date);
    if (!series) {
      series = new Map();
      this.daily.set(date, series);
      this.dropOldDays(now);
    }
    const key = seriesKey(metric.name, metric.dimensions);
    let day = series.get(key);
    if (!day) {
      day = {
        metric: metric.name,
        dimensions: { ...metric.dimensions },
        count: 0,
        sum: 0,
        max: Number.NEGATIVE_INFINITY,
        last: 0,
        lastAt: '',
      };
      series.set(key, day);
    }
    for (const value of metric.values) {
      day.count += 1;
      day.sum += value;
      day.max = Math.max(day.max, value);
      day.last = value;
    }
    day.lastAt = new Date(now).toISOString();
  }

  private dropOldDays(now: number): void {
    const oldest = periodAt(now - (this.dailyDays - 1) * DAY_MS);
    for (const date of this.daily.keys()) if (date < oldest) this.daily.delete(date);
  }

  /** Drops all but the last `slotDays` dates of one metric's slot counts. */
  private keepRecentSlotDays(days: Map<string, number[]>): void {
    for (const old of [...days.keys()].sort().slice(0, -this.slotDays)) days.delete(old);
  }

  private addToSlot(name: string, value: number): void {
    const at = this.dayClock();
    const date = periodAt(at);
    let days = this.slots.get(name);
    if (!days) {
      days = new Map();
      this.slots.set(name, days);
    }
    let counts = days.get(date);
    if (!counts) {
      counts = new Array<number>(SLOTS_PER_DAY).fill(0);
      days.set(date, counts);
      this.keepRecentSlotDays(days);
    }
    counts[slotAt(at)]! += value;
  }
}

/** One series of a day: the metric and its dimensions, in name order. */
function seriesKey(metric: string, dimensions: Record<string, string>): string {
  const names = Object.keys(dimensions).sort();
  return JSON.stringify([metric, ...names.map((n) => [n, dimensions[n]])]);
}

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;
const isDate = (value: string) => /^\d{4}-\d{2}-\d{2}$/.test(value);

/** `saved` if it is what exportDays wrote, else a RangeError saying what is wrong. */
function parseCollectorDays(saved: unknown): CollectorDays {
  const fail = (what: string): never => {
    throw new RangeError(`not the operations page's saved days: ${what}`);
  };
  const days = saved as Partial<CollectorDays> | null;
  if (typeof days !== 'object' || days === null || days.version !== 1) fail('no version 1');
  if (!isCount(days!.coveredSince)) fail('coveredSince');
  for (const [name, byDate] of Object.entries(days!.slots ?? fail('slots'))) {
    for (const [date, counts] of Object.entries(byDate)) {
      if (!isDate(date) || !Array.isArray(counts) || counts.length !== SLOTS_PER_DAY) {
        fail(`slots of ${name} on ${date}`);
      }
      if (!counts.every(isCount)) fail(`slot counts of ${name} on ${date}`);
    }
  }
  for (const [date, series] of Object.entries(days!.daily ?? fail('daily'))) {
    if (!isDate(date) || !Array.isArray(series)) fail(`metrics of ${date}`);
    for (const s of series) {
      const ok =
        typeof s?.metric === 'string' &&
        typeof s.dimensions === 'object' &&
        s.dimensions !== null &&
        Object.values(s.dimensions).every((v) => typeof v === 'string') &&
        isCount(s.count) &&
        typeof s.sum === 'number' &&
        typeof s.max === 'number' &&
        typeof s.last === 'number' &&
        typeof s.lastAt === 'string';
      if (!ok) fail(`a metric of ${date}`);
    }
  }
  return days as CollectorDays;
}
