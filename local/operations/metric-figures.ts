/**
 * The webhook and Stripe figures of `stats`: the handlers' own metrics
 * (functions/commons/metric-names.ts) over one UTC day. Deployed they are read from
 * CloudWatch, in the namespace the functions publish to; locally from the running
 * runtime's operations page (`<opsUrl>/metrics`), which holds them in memory from its
 * start while `npm start` runs. What cannot be read is `{ available: false, why }`,
 * never a zero.
 */
import {
  METRIC,
  METRIC_DIMENSION,
  METRICS_NAMESPACE,
  STRIPE_CIRCUIT_STATE_VALUE,
} from '../../functions/commons/metric-names.ts';
import type { DailyMetricsDocument } from '../ops/collector.ts';
import {
  DAY_SECONDS,
  type DaySeries,
  readCloudWatchDay,
  type WantedMetric,
} from './cloudwatch-metrics.ts';
import type { OpsTarget } from './target.ts';

const SERVICE = METRIC_DIMENSION.service;
const REASON = METRIC_DIMENSION.reason;

const STRIPE_METRICS = [
  METRIC.stripeCalls,
  METRIC.stripeCallLatency,
  METRIC.stripeCircuitOpened,
  METRIC.stripeCircuitRejected,
  METRIC.stripeCircuitState,
] as const;

/** The metrics read, with the dimension names their publishers give them. */
export const STATS_METRICS: readonly WantedMetric[] = [
  { metric: METRIC.webhookReceived, dimensions: [SERVICE] },
  { metric: METRIC.webhookRejected, dimensions: [SERVICE, REASON] },
  ...STRIPE_METRICS.map((metric) => ({
    metric,
    dimensions: [SERVICE],
    // Published on each change only: its last value is the state it was left in.
    ...(metric === METRIC.stripeCircuitState ? { last: true } : {}),
  })),
];

/** ListMetrics (which finds the series) knows only metrics with data in the last 14 days. */
const CLOUDWATCH_LISTED_DAYS = 14;
const DAY_MS = DAY_SECONDS * 1000;

export interface Unavailable {
  available: false;
  why: string;
}

/** Where the figures come from and the time they cover (ISO). */
interface Covered {
  available: true;
  source: string;
  from: string;
  to: string;
}

export type WebhookFigures =
  | (Covered & { received: number; rejected: number; rejectedByReason: Record<string, number> })
  | Unavailable;

export type CircuitState = keyof typeof STRIPE_CIRCUIT_STATE_VALUE;

/** The Stripe calls of one function (each has its own breaker). */
export interface StripeServiceFigures {
  service: string;
  calls: number;
  /** Null when no call was timed. */
  latencyMs: { average: number | null; maximum: number | null };
  circuitOpened: number;
  circuitRejected: number;
  /**
   * The breaker publishes its state on each change only: null when it did not change.
   * From CloudWatch `last` is the worst state of the last minute with a change.
   */
  circuitState: { worst: CircuitState | null; last: CircuitState | null; lastAt: string | null };
}

export type StripeFigures = (Covered & { services: StripeServiceFigures[] }) | Unavailable;

type DayRead = { available: true; series: DaySeries[]; covered: Covered } | Unavailable;

/** The webhook and Stripe figures of UTC day `date` (YYYY-MM-DD), read from where the target keeps them. */
export async function readMetricFigures(
  target: Pick<OpsTarget, 'endpoints' | 'opsUrl' | 'where' | 'region' | 'cloudWatch'>,
  date: string,
  now: number,
): Promise<{ webhooks: WebhookFigures; stripe: StripeFigures }> {
  const start = Date.parse(`${date}T00:00:00Z`);
  const day = { start, end: start + DAY_MS };
  const read: DayRead =
    start > now
      ? unavailable(`${date} has not begun`)
      : target.endpoints
        ? await fromLocalRuntime(target, day)
        : await fromCloudWatch(target, day, now);
  if (!read.available) return { webhooks: read, stripe: read };
  return figuresOf(read.series, read.covered);
}

async function fromCloudWatch(
  target: Pick<OpsTarget, 'region' | 'cloudWatch'>,
  day: { start: number; end: number },
  now: number,
): Promise<DayRead> {
  if (day.start < now - CLOUDWATCH_LISTED_DAYS * DAY_MS) {
    return unavailable(
      `CloudWatch lists only the metrics published in the last ${CLOUDWATCH_LISTED_DAYS} days, so an older day is not read`,
    );
  }
  try {
    const series = await readCloudWatchDay(
      target.cloudWatch(),
      METRICS_NAMESPACE,
      STATS_METRICS,
      day,
    );
    return {
      available: true,
      series,
      covered: covered(`CloudWatch ${METRICS_NAMESPACE}`, day.start, Math.min(day.end, now)),
    };
  } catch (error) {
    const { name, message } = error as Error;
    return unavailable(
      `CloudWatch in ${target.region ?? "the SDK's default region"}: ${name}: ${message}`,
    );
  }
}

async function fromLocalRuntime(
  target: Pick<OpsTarget, 'opsUrl' | 'where'>,
  day: { start: number; end: number },
): Promise<DayRead> {
  if (!target.opsUrl) {
    return unavailable(
      `locally they come from the running runtime's /ops/metrics while \`npm start\` runs; ${target.where} names no operations page (restart \`npm start\` if it predates this)`,
    );
  }
  const url = `${target.opsUrl}/metrics`;
  let document: DailyMetricsDocument;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    document = (await response.json()) as DailyMetricsDocument;
  } catch (error) {
    // fetch says "fetch failed"; its cause says why (ECONNREFUSED: no runtime listens there).
    const { cause } = error as { cause?: { code?: string; message?: string } };
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    return unavailable(
      `cannot read ${url} (${reason}); locally these figures exist only while \`npm start\` runs`,
    );
  }
  const since = Date.parse(document.since);
  if (day.end <= since) {
    return unavailable(
      `the local runtime holds the handlers' metrics in memory only since ${document.since}`,
    );
  }
  const date = new Date(day.start).toISOString().slice(0, 10);
  return {
    available: true,
    series: (document.days[date] ?? []).map(({ last, lastAt, ...series }) => ({
      ...series,
      last: { value: last, at: lastAt },
    })),
    covered: covered(
      'the local runtime',
      Math.max(day.start, since),
      Math.min(day.end, Date.parse(document.generatedAt)),
    ),
  };
}

/** The figures from the day's series; a series with other dimension names than its publisher's is not counted. */
function figuresOf(
  series: readonly DaySeries[],
  span: Covered,
): { webhooks: WebhookFigures; stripe: StripeFigures } {
  const published = (metric: string) => {
    const names = [...STATS_METRICS.find((m) => m.metric === metric)!.dimensions].sort().join();
    return series.filter(
      (s) => s.metric === metric && Object.keys(s.dimensions).sort().join() === names,
    );
  };
  const total = (list: readonly DaySeries[]) => list.reduce((n, s) => n + s.sum, 0);

  const rejected = published(METRIC.webhookRejected);
  const rejectedByReason: Record<string, number> = {};
  for (const s of rejected) {
    const reason = s.dimensions[REASON]!;
    rejectedByReason[reason] = (rejectedByReason[reason] ?? 0) + s.sum;
  }

  const services = [
    ...new Set(STRIPE_METRICS.flatMap((m) => published(m).map((s) => s.dimensions[SERVICE]!))),
  ].sort();
  const stripe = services.map((service): StripeServiceFigures => {
    const of = (metric: string) =>
      published(metric).filter((s) => s.dimensions[SERVICE] === service);
    const latency = of(METRIC.stripeCallLatency);
    const timed = latency.reduce((n, s) => n + s.count, 0);
    const states = of(METRIC.stripeCircuitState);
    const last = states
      .flatMap((s) => (s.last ? [s.last] : []))
      .reduce<DaySeries['last']>((a, l) => (a && a.at >= l.at ? a : l), undefined);
    return {
      service,
      calls: total(of(METRIC.stripeCalls)),
      latencyMs: {
        average: timed > 0 ? Math.round(total(latency) / timed) : null,
        maximum: timed > 0 ? Math.max(...latency.map((s) => s.max)) : null,
      },
      circuitOpened: total(of(METRIC.stripeCircuitOpened)),
      circuitRejected: total(of(METRIC.stripeCircuitRejected)),
      circuitState: {
        worst: states.length > 0 ? stateName(Math.max(...states.map((s) => s.max))) : null,
        last: last ? stateName(last.value) : null,
        lastAt: last?.at ?? null,
      },
    };
  });

  return {
    webhooks: {
      ...span,
      received: total(published(METRIC.webhookReceived)),
      rejected: total(rejected),
      rejectedByReason,
    },
    stripe: { ...span, services: stripe },
  };
}

/** `webhooks (…): 12 received, 2 rejected (invalid_signature 2)`, or why it is not available. */
export function describeWebhooks(figures: WebhookFigures): string {
  if (!figures.available) return `webhooks: not available (${figures.why})`;
  const reasons = Object.entries(figures.rejectedByReason)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  return `webhooks (${coverage(figures)}): ${figures.received} received, ${figures.rejected} rejected${reasons ? ` (${reasons})` : ''}`;
}

/** One line, then one per function that called Stripe (indented under it). */
export function describeStripe(figures: StripeFigures): string[] {
  if (!figures.available) return [`stripe: not available (${figures.why})`];
  if (figures.services.length === 0) return [`stripe (${coverage(figures)}): no call reported`];
  return [
    `stripe (${coverage(figures)}):`,
    ...figures.services.map((s) => {
      const latency =
        s.latencyMs.average === null
          ? 'no latency reported'
          : `latency average ${s.latencyMs.average} ms, max ${s.latencyMs.maximum} ms`;
      const { worst, last, lastAt } = s.circuitState;
      const state =
        last === null
          ? 'breaker state unchanged'
          : `breaker last ${last} (${clock(lastAt!)} UTC), worst ${worst}`;
      return `  ${s.service}: ${s.calls} call(s), ${latency}; breaker opened ${s.circuitOpened}x, ${s.circuitRejected} call(s) refused while open; ${state}`;
    }),
  ];
}

function stateName(value: number): CircuitState {
  const names = Object.keys(STRIPE_CIRCUIT_STATE_VALUE) as CircuitState[];
  // The highest state whose value is at most `value` (a published value is one of them).
  return names.reduce((a, n) => (STRIPE_CIRCUIT_STATE_VALUE[n] <= value ? n : a), names[0]!);
}

function covered(source: string, from: number, to: number): Covered {
  return {
    available: true,
    source,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
  };
}

function unavailable(why: string): Unavailable {
  return { available: false, why };
}

/** `CloudWatch BillingSuite, 00:00 to 24:00 UTC`. */
function coverage({ source, from, to }: Covered): string {
  const end = to.slice(0, 10) > from.slice(0, 10) ? '24:00' : clock(to);
  return `${source}, ${clock(from)} to ${end} UTC`;
}

function clock(iso: string): string {
  return iso.slice(11, 16);
}
