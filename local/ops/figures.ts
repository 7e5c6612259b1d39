/**
 * The document `GET /ops/figures` answers and the operations page plots: one figure
 * per plot, each with its x values and named series, read from an `OpsCollector`.
 *
 * ```jsonc
 * {
 *   "generatedAt": "2026-05-01T10:00:00.000Z",   // wall clock
 *   "startedAt": "2026-05-01T09:41:12.000Z",     // when the runtime started collecting
 *   "dayClockAt": "2026-05-01T10:00:00.000Z",    // the schedules' clock (LOCAL_CLOCK_SPEED)
 *   "windowSeconds": 900,
 *   "refreshMs": 2000,                            // how often the page polls
 *   "figures": [
 *     {
 *       "id": "webhooks", "title": "Webhooks", "unit": "per second",
 *       "kind": "rate",          // rate | stat | cumulative | gauge | slots
 *       "xAxis": "time",         // time: x are epoch seconds; slot: x are slots 0..287 of the UTC day
 *       "description": "…",
 *       "x": [1777629301, …],
 *       "series": [{ "label": "received", "metric": "WebhookReceived", "values": [0, 2, …], "total": 17 }, …]
 *     }, …
 *   ]
 * }
 * ```
 *
 * Time figures cover the last `windowSeconds`, or the seconds since the runtime
 * started when that is shorter, one x per second (gauges: one per second a sample was
 * taken in). Series values are numbers, or null where there is nothing to show (no
 * event to have a lag, no sample in that second). `total` is the sum since the
 * runtime started (counts); gauges and lags carry `latest` instead.
 */
import { METRIC } from '../../functions/commons/metric-names.ts';
import { SLOT_MINUTES, SLOTS_PER_DAY } from '../../functions/core/credits/refresh-slot.ts';
import type { OpsCollector } from './collector.ts';

export type FigureKind = 'rate' | 'stat' | 'cumulative' | 'gauge' | 'slots';

export interface FigureSeries {
  label: string;
  /** The CloudWatch metric behind it, or the queue name of a depth. */
  metric: string;
  values: Array<number | null>;
  /** Sum since the runtime started (rate, cumulative and slot figures). */
  total?: number;
  /** The last value that is not null (gauge and stat figures), null when none. */
  latest?: number | null;
}

export interface Figure {
  id: string;
  title: string;
  unit: string;
  kind: FigureKind;
  /** time: `x` are epoch seconds; slot: `x` are the slots 0..287 of the UTC day. */
  xAxis: 'time' | 'slot';
  description: string;
  x: number[];
  series: FigureSeries[];
}

export interface FiguresDocument {
  generatedAt: string;
  startedAt: string;
  dayClockAt: string;
  windowSeconds: number;
  refreshMs: number;
  figures: Figure[];
}

/** A queue whose depth is sampled: `key` is what the sampler records it under. */
export interface QueueSpec {
  key: string;
  label: string;
}

export interface FigureOptions {
  /** The queues consumers read (depth: waiting + in flight). */
  queues: readonly QueueSpec[];
  /** The dead-letter queues (of the consumers and of the schedules). */
  deadLetterQueues: readonly QueueSpec[];
  /** How often the page polls. Default 2000. */
  refreshMs?: number;
}

/** The ids of the figures, in page order. */
export const FIGURE_IDS = [
  'webhooks',
  'events',
  'lag',
  'queues',
  'dlqs',
  'creditSlots',
  'penalties',
] as const;

/** Builds the document from what `collector` holds at its `now()`. */
export function buildFigures(collector: OpsCollector, options: FigureOptions): FiguresDocument {
  const nowMs = collector.now();
  const nowSecond = Math.floor(nowMs / 1000);
  // The window, or the time since the collector started when that is shorter.
  const firstSecond = Math.max(
    nowSecond - collector.windowSeconds + 1,
    Math.min(nowSecond, Math.floor(collector.startedAt / 1000)),
  );
  const seconds = Array.from({ length: nowSecond - firstSecond + 1 }, (_, i) => firstSecond + i);

  const rate = (label: string, metric: string): FigureSeries => ({
    label,
    metric,
    values: seconds.map((s) => collector.metricAt(metric, s)?.sum ?? 0),
    total: collector.total(metric),
  });
  const cumulative = (label: string, metric: string): FigureSeries => {
    // The running total at the end of each second: the total now, minus what came after.
    const values = new Array<number>(seconds.length);
    let running = collector.total(metric);
    for (let i = seconds.length - 1; i >= 0; i -= 1) {
      values[i] = running;
      running -= collector.metricAt(metric, seconds[i]!)?.sum ?? 0;
    }
    return { label, metric, values, total: collector.total(metric) };
  };
  const lag = (label: string, stat: 'avg' | 'max'): FigureSeries => {
    const values = seconds.map((s) => {
      const at = collector.metricAt(METRIC.processingLag, s);
      if (!at || at.count === 0) return null;
      return stat === 'max' ? at.max : Math.round(at.sum / at.count);
    });
    return { label, metric: METRIC.processingLag, values, latest: lastValue(values) };
  };
  const depths = (queues: readonly QueueSpec[]) => {
    // Every queue is sampled in the same round, so the sampled seconds line up.
    const sampled = seconds.filter((s) =>
      queues.some((q) => collector.gaugeAt(q.key, s) !== undefined),
    );
    return {
      x: sampled,
      series: queues.map((q) => {
        const values = sampled.map((s) => collector.gaugeAt(q.key, s) ?? null);
        return { label: q.label, metric: q.label, values, latest: lastValue(values) };
      }),
    };
  };
  const slots = (label: string, metric: 'CreditsRefreshed' | 'CreditsPlanned'): FigureSeries => {
    const values = collector.slotCounts(metric);
    return { label, metric, values, total: values.reduce((a, b) => a + b, 0) };
  };

  const dayClockAt = new Date(collector.dayClock()).toISOString();
  const figures: Figure[] = [
    {
      id: 'webhooks',
      title: 'Webhooks',
      unit: 'per second',
      kind: 'rate',
      xAxis: 'time',
      description:
        'Stripe webhook requests that reached the handler, those answered 4xx (bad signature, malformed, too large), and those safely queued.',
      x: seconds,
      series: [
        rate('received', METRIC.webhookReceived),
        rate('rejected', METRIC.webhookRejected),
        rate('queued', METRIC.webhookEnqueued),
      ],
    },
    {
      id: 'events',
      title: 'Events applied',
      unit: 'per second',
      kind: 'rate',
      xAxis: 'time',
      description:
        'Events the consumers committed (every family), duplicates acknowledged without a change, events older than the stored state, and records that failed (retried, then DLQ).',
      x: seconds,
      series: [
        rate('applied', METRIC.eventsProcessed),
        rate('duplicate', METRIC.eventsDuplicate),
        rate('out of order', METRIC.eventsOutOfOrder),
        rate('failed', METRIC.eventsFailed),
      ],
    },
    {
      id: 'lag',
      title: 'Processing lag',
      unit: 'ms',
      kind: 'stat',
      xAxis: 'time',
      description:
        'Milliseconds from SQS enqueue to commit of the events applied in each second: average and maximum. Gaps: nothing applied.',
      x: seconds,
      series: [lag('average', 'avg'), lag('maximum', 'max')],
    },
    {
      id: 'queues',
      title: 'Queue depth',
      unit: 'messages',
      kind: 'gauge',
      xAxis: 'time',
      description:
        'Messages in each consumed queue, waiting or in flight (ApproximateNumberOfMessages + NotVisible), sampled every few seconds.',
      ...depths(options.queues),
    },
    {
      id: 'dlqs',
      title: 'Dead-letter queue depth',
      unit: 'messages',
      kind: 'gauge',
      xAxis: 'time',
      description:
        'Messages in each DLQ (failed 5 times, or a schedule invocation that failed). Anything above 0 needs an operator: npm run ops -- dlq:list.',
      ...depths(options.deadLetterQueues),
    },
    {
      id: 'creditSlots',
      title: `Credit refreshes per slot, ${dayClockAt.slice(0, 10)}`,
      unit: `users per ${SLOT_MINUTES}-minute slot`,
      kind: 'slots',
      xAxis: 'slot',
      description: `Users refreshed and users planned in each of the ${SLOTS_PER_DAY} ${SLOT_MINUTES}-minute slots of the UTC day, by the schedules' clock (now ${dayClockAt.slice(11, 16)} UTC).`,
      x: Array.from({ length: SLOTS_PER_DAY }, (_, i) => i),
      series: [
        slots('refreshed', METRIC.creditsRefreshed),
        slots('planned', METRIC.creditsPlanned),
      ],
    },
    {
      id: 'penalties',
      title: 'Penalties',
      unit: 'since start',
      kind: 'cumulative',
      xAxis: 'time',
      description:
        'Penalties created by assessments and penalties that became paid (settlement payment succeeded, or marked paid), counted since the runtime started.',
      x: seconds,
      series: [
        cumulative('created', METRIC.penaltiesCreated),
        cumulative('paid', METRIC.penaltiesPaid),
      ],
    },
  ];
  return {
    generatedAt: new Date(nowMs).toISOString(),
    startedAt: new Date(collector.startedAt).toISOString(),
    dayClockAt,
    windowSeconds: collector.windowSeconds,
    refreshMs: options.refreshMs ?? 2000,
    figures,
  };
}

/** The last value that is not null, or null. */
function lastValue(values: ReadonlyArray<number | null>): number | null {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null) return values[i]!;
  return null;
}
