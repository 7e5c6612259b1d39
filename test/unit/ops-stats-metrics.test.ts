/**
 * The webhook and Stripe figures of `npm run ops -- stats`, without AWS: read from
 * CloudWatch through a fake `send` that checks every request (namespace, metric names,
 * dimensions as the functions publish them, periods, the day's time range), with
 * pagination and foreign series; the day's figures and their text; what is refused
 * (a day too old for CloudWatch's listing, a day not begun, CloudWatch failing); and
 * the local runtime's per-day metrics (`GET /ops/metrics`) as the collector keeps them.
 */
import { createServer } from 'node:http';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  type CloudWatchClient,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  ListMetricsCommand,
  type MetricDataResult,
} from '@aws-sdk/client-cloudwatch';
import { afterEach, describe, expect, it } from 'vitest';
import {
  METRIC,
  METRICS_NAMESPACE,
  STRIPE_CIRCUIT_STATE_VALUE,
} from '../../functions/commons/metric-names.ts';
import {
  describeStripe,
  describeWebhooks,
  readMetricFigures,
  STATS_METRICS,
} from '../../local/operations/metric-figures.ts';
import { OpsCollector } from '../../local/ops/collector.ts';
import { addEmfSink, tapMetrics } from '../../local/ops/metrics-tap.ts';

const DATE = '2026-05-01';
const DAY_START = Date.parse(`${DATE}T00:00:00Z`);
const DAY_END = DAY_START + 86_400_000;
/** Mid-afternoon of that day. */
const NOW = DAY_START + 15 * 3_600_000;

type Dims = Record<string, string>;
const dims = (d: Dims) => Object.entries(d).map(([Name, Value]) => ({ Name, Value }));

/** What the fake CloudWatch holds: series by metric name, with the day's stats of each. */
interface FakeSeries {
  metric: string;
  dimensions: Dims;
  /** Undefined: listed (data in the last two weeks), nothing that day. */
  day?: { sum: number; count: number; max: number; minutes?: Array<[number, number]> };
}

/**
 * A CloudWatch `send` that answers ListMetrics and GetMetricData from `series`, one item
 * per page (to prove pagination), and records every request after checking it.
 */
function fakeCloudWatch(series: FakeSeries[]) {
  const listed: string[] = [];
  const dataRequests: GetMetricDataCommandInput[] = [];
  const send = async (command: unknown) => {
    if (command instanceof ListMetricsCommand) {
      const { Namespace, MetricName, NextToken } = command.input;
      expect(Namespace).toBe(METRICS_NAMESPACE);
      listed.push(MetricName!);
      const matching = series.filter((s) => s.metric === MetricName);
      const at = Number(NextToken ?? 0);
      const page = matching.slice(at, at + 1);
      return {
        Metrics: page.map((s) => ({
          Namespace,
          MetricName: s.metric,
          Dimensions: dims(s.dimensions),
        })),
        ...(at + 1 < matching.length ? { NextToken: String(at + 1) } : {}),
      };
    }
    if (command instanceof GetMetricDataCommand) {
      const input = command.input;
      dataRequests.push(input);
      expect(input.StartTime).toEqual(new Date(DAY_START));
      expect(input.EndTime).toEqual(new Date(DAY_END));
      const queries = input.MetricDataQueries!;
      const at = Number(input.NextToken ?? 0);
      const results: MetricDataResult[] = queries.slice(at, at + 4).map((q) => {
        const stat = q.MetricStat!;
        expect(stat.Metric!.Namespace).toBe(METRICS_NAMESPACE);
        const found = series.find(
          (s) =>
            s.metric === stat.Metric!.MetricName &&
            JSON.stringify(dims(s.dimensions)) === JSON.stringify(stat.Metric!.Dimensions),
        );
        expect(found, `${q.Id} asks for a listed series`).toBeDefined();
        const day = found!.day;
        const daily = (value: number | undefined) =>
          day && value !== undefined
            ? { Timestamps: [new Date(DAY_START)], Values: [value] }
            : { Timestamps: [], Values: [] };
        const points = (() => {
          if (stat.Period === 60) {
            expect(stat.Stat).toBe('Maximum');
            const minutes = day?.minutes ?? [];
            return {
              Timestamps: minutes.map(([minute]) => new Date(DAY_START + minute * 60_000)),
              Values: minutes.map(([, value]) => value),
            };
          }
          expect(stat.Period).toBe(86_400);
          if (stat.Stat === 'Sum') return daily(day?.sum);
          if (stat.Stat === 'SampleCount') return daily(day?.count);
          expect(stat.Stat).toBe('Maximum');
          return daily(day?.max);
        })();
        return { Id: q.Id, Label: q.Label, StatusCode: 'Complete', ...points };
      });
      return {
        MetricDataResults: results,
        ...(at + 4 < queries.length ? { NextToken: String(at + 4) } : {}),
      };
    }
    throw new Error(`unexpected command ${String(command)}`);
  };
  return {
    client: { send } as unknown as CloudWatchClient,
    listed,
    dataRequests,
  };
}

/** A deployed target (no emulator endpoints) whose CloudWatch is `client`. */
const deployed = (client: CloudWatchClient) => ({
  where: 'the deployed stack (test)',
  region: 'eu-west-1',
  cloudWatch: () => client,
});

const webhook = { service: 'webhook-ingress' };
const read = { service: 'subscription-read' };
const penaltyApi = { service: 'penalty-api' };

describe('stats figures from CloudWatch', () => {
  it('reads every series as published, for the whole UTC day, and sums them into the figures', async () => {
    const cloudWatch = fakeCloudWatch([
      { metric: METRIC.webhookReceived, dimensions: webhook, day: { sum: 40, count: 40, max: 1 } },
      {
        metric: METRIC.webhookRejected,
        dimensions: { ...webhook, reason: 'invalid_signature' },
        day: { sum: 3, count: 3, max: 1 },
      },
      {
        metric: METRIC.webhookRejected,
        dimensions: { ...webhook, reason: 'not_found' },
        day: { sum: 1, count: 1, max: 1 },
      },
      // Listed (rejected within the last two weeks), not that day.
      { metric: METRIC.webhookRejected, dimensions: { ...webhook, reason: 'malformed_event' } },
      // Someone else's series: other dimension names than the handler publishes.
      { metric: METRIC.webhookReceived, dimensions: {}, day: { sum: 999, count: 999, max: 1 } },
      { metric: METRIC.stripeCalls, dimensions: read, day: { sum: 12, count: 12, max: 1 } },
      {
        metric: METRIC.stripeCallLatency,
        dimensions: read,
        day: { sum: 2_400, count: 12, max: 900 },
      },
      { metric: METRIC.stripeCircuitOpened, dimensions: read, day: { sum: 1, count: 1, max: 1 } },
      { metric: METRIC.stripeCircuitRejected, dimensions: read, day: { sum: 4, count: 4, max: 1 } },
      {
        metric: METRIC.stripeCircuitState,
        dimensions: read,
        day: {
          sum: 3,
          count: 3,
          max: STRIPE_CIRCUIT_STATE_VALUE.open,
          // Opened at 10:02, trial at 10:03, closed again at 10:03 (the minute's worst is half-open).
          minutes: [
            [602, STRIPE_CIRCUIT_STATE_VALUE.open],
            [603, STRIPE_CIRCUIT_STATE_VALUE['half-open']],
          ],
        },
      },
      // The penalty API called Stripe this fortnight, not that day.
      { metric: METRIC.stripeCalls, dimensions: penaltyApi },
    ]);

    const figures = await readMetricFigures(deployed(cloudWatch.client), DATE, NOW);

    // Every metric stats shows, listed in the functions' namespace.
    expect([...new Set(cloudWatch.listed)].sort()).toEqual(
      STATS_METRICS.map((m) => m.metric).sort(),
    );
    // Every query: a listed series with exactly the published dimensions, daily stats
    // (Sum, SampleCount, Maximum) and, for the breaker's state, the per-minute Maximum.
    const queries = cloudWatch.dataRequests[0]!.MetricDataQueries!;
    const asked = queries.map((q) => {
      const { Metric, Period, Stat } = q.MetricStat!;
      const named = Object.fromEntries(Metric!.Dimensions!.map((d) => [d.Name, d.Value]));
      return `${Metric!.MetricName} ${JSON.stringify(named)} ${Stat}/${Period}`;
    });
    const daily = (metric: string, d: Dims) =>
      ['Sum', 'SampleCount', 'Maximum'].map((s) => `${metric} ${JSON.stringify(d)} ${s}/86400`);
    expect(asked.sort()).toEqual(
      [
        ...daily(METRIC.webhookReceived, webhook),
        ...daily(METRIC.webhookRejected, { ...webhook, reason: 'invalid_signature' }),
        ...daily(METRIC.webhookRejected, { ...webhook, reason: 'not_found' }),
        ...daily(METRIC.webhookRejected, { ...webhook, reason: 'malformed_event' }),
        ...daily(METRIC.stripeCalls, read),
        ...daily(METRIC.stripeCallLatency, read),
        ...daily(METRIC.stripeCircuitOpened, read),
        ...daily(METRIC.stripeCircuitRejected, read),
        ...daily(METRIC.stripeCircuitState, read),
        `${METRIC.stripeCircuitState} ${JSON.stringify(read)} Maximum/60`,
        ...daily(METRIC.stripeCalls, penaltyApi),
      ].sort(),
    );
    for (const q of queries) expect(q.Id).toMatch(/^[a-z][a-zA-Z0-9_]*$/);
    // Paged: every request repeats the queries and the day, with the token of the last page.
    expect(cloudWatch.dataRequests.length).toBe(Math.ceil(queries.length / 4));
    expect(cloudWatch.dataRequests.map((r) => r.NextToken ?? null)).toEqual(
      cloudWatch.dataRequests.map((_, i) => (i === 0 ? null : String(i * 4))),
    );

    const span = {
      available: true,
      source: `CloudWatch ${METRICS_NAMESPACE}`,
      from: `${DATE}T00:00:00.000Z`,
      to: `${DATE}T15:00:00.000Z`,
    };
    expect(figures.webhooks).toEqual({
      ...span,
      received: 40,
      rejected: 4,
      rejectedByReason: { invalid_signature: 3, not_found: 1 },
    });
    expect(figures.stripe).toEqual({
      ...span,
      services: [
        {
          service: 'subscription-read',
          calls: 12,
          latencyMs: { average: 200, maximum: 900 },
          circuitOpened: 1,
          circuitRejected: 4,
          circuitState: { worst: 'open', last: 'half-open', lastAt: `${DATE}T10:03:00.000Z` },
        },
      ],
    });
    expect(describeWebhooks(figures.webhooks)).toBe(
      `webhooks (CloudWatch ${METRICS_NAMESPACE}, 00:00 to 15:00 UTC): 40 received, 4 rejected (invalid_signature 3, not_found 1)`,
    );
    expect(describeStripe(figures.stripe)).toEqual([
      `stripe (CloudWatch ${METRICS_NAMESPACE}, 00:00 to 15:00 UTC):`,
      '  subscription-read: 12 call(s), latency average 200 ms, max 900 ms; breaker opened 1x, 4 call(s) refused while open; breaker last half-open (10:03 UTC), worst open',
    ]);
  });

  it('covers the whole day once it is over; a quiet day is zeros read, not guessed', async () => {
    const cloudWatch = fakeCloudWatch([
      { metric: METRIC.webhookReceived, dimensions: webhook },
      { metric: METRIC.stripeCalls, dimensions: read },
    ]);
    const figures = await readMetricFigures(deployed(cloudWatch.client), DATE, DAY_END + 3_600_000);
    expect(figures.webhooks).toMatchObject({
      available: true,
      to: new Date(DAY_END).toISOString(),
      received: 0,
      rejected: 0,
    });
    expect(describeWebhooks(figures.webhooks)).toContain('00:00 to 24:00 UTC): 0 received');
    expect(describeStripe(figures.stripe)).toEqual([
      `stripe (CloudWatch ${METRICS_NAMESPACE}, 00:00 to 24:00 UTC): no call reported`,
    ]);
  });

  it('says why, never a zero, when CloudWatch fails or cannot know the day', async () => {
    const denied = {
      send: async () => {
        throw Object.assign(new Error('User is not authorized to perform cloudwatch:ListMetrics'), {
          name: 'AccessDenied',
        });
      },
    } as unknown as CloudWatchClient;
    const failed = await readMetricFigures(deployed(denied), DATE, NOW);
    expect(failed.webhooks).toEqual({
      available: false,
      why: 'CloudWatch in eu-west-1: AccessDenied: User is not authorized to perform cloudwatch:ListMetrics',
    });
    expect(failed.stripe).toEqual(failed.webhooks);
    expect(describeWebhooks(failed.webhooks)).toBe(
      'webhooks: not available (CloudWatch in eu-west-1: AccessDenied: User is not authorized to perform cloudwatch:ListMetrics)',
    );

    const forbidden = {
      send: async (command: unknown) =>
        command instanceof ListMetricsCommand
          ? { Metrics: [{ MetricName: METRIC.stripeCalls, Dimensions: dims(read) }] }
          : {
              MetricDataResults: [
                {
                  Id: 's0_sum',
                  Label: 'StripeCalls service=subscription-read',
                  StatusCode: 'Forbidden',
                  Messages: [{ Code: 'Forbidden', Value: 'no access to the namespace' }],
                },
              ],
            },
    } as unknown as CloudWatchClient;
    expect((await readMetricFigures(deployed(forbidden), DATE, NOW)).stripe).toMatchObject({
      available: false,
      why: expect.stringContaining(
        'GetMetricData answered Forbidden for StripeCalls service=subscription-read: no access to the namespace',
      ),
    });

    const untouched = {
      send: async () => {
        throw new Error('CloudWatch was called');
      },
    } as unknown as CloudWatchClient;
    const old = await readMetricFigures(deployed(untouched), DATE, DAY_START + 15 * 86_400_000);
    expect(old.webhooks).toMatchObject({
      available: false,
      why: expect.stringContaining('only the metrics published in the last 14 days'),
    });
    const future = await readMetricFigures(deployed(untouched), DATE, DAY_START - 1);
    expect(future.stripe).toEqual({ available: false, why: `${DATE} has not begun` });
  });
});

describe('stats figures of the local runtime (GET /ops/metrics)', () => {
  const removers: Array<() => void> = [];
  afterEach(() => {
    for (const remove of removers.splice(0)) remove();
  });

  /** A collector fed what a Powertools `Metrics` publishes, through the runtime's tap. */
  function runtimeCollector(start: number) {
    let now = start;
    const collector = new OpsCollector({ now: () => now, dailyDays: 2 });
    const metrics = tapMetrics(
      new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'billing-suite' }),
    );
    removers.push(addEmfSink((document) => collector.recordEmf(document)));
    const publish = (build: (m: Metrics) => void) => {
      build(metrics);
      metrics.publishStoredMetrics();
    };
    // As the webhook handler does: a single metric, published at once.
    const rejected = (reason: string) => {
      const single = metrics.singleMetric();
      single.addDimension('reason', reason);
      single.addMetric(METRIC.webhookRejected, MetricUnit.Count, 1);
    };
    return {
      collector,
      publish,
      rejected,
      at: (ms: number) => {
        now = ms;
      },
    };
  }

  it('keeps each UTC day by its dimensions, the last few days only, and says since when', () => {
    const started = DAY_START + 9 * 3_600_000;
    const { collector, publish, rejected, at } = runtimeCollector(started);
    publish((m) => m.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1));
    rejected('invalid_signature');
    at(started + 60_000);
    publish((m) => {
      m.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1);
      m.addMetric(METRIC.stripeCalls, MetricUnit.Count, 1);
      m.addMetric(METRIC.stripeCallLatency, MetricUnit.Milliseconds, 120);
      m.addMetric(METRIC.stripeCallLatency, MetricUnit.Milliseconds, 80);
      m.addMetric(METRIC.stripeCircuitState, MetricUnit.NoUnit, STRIPE_CIRCUIT_STATE_VALUE.open);
    });
    rejected('invalid_signature');
    rejected('not_found');

    const first = collector.dailyMetrics();
    expect(first.since).toBe(new Date(started).toISOString());
    const day = first.days[DATE]!;
    const of = (metric: string, reason?: string) =>
      day.find((s) => s.metric === metric && s.dimensions.reason === reason);
    expect(of(METRIC.webhookReceived)).toMatchObject({
      dimensions: { service: 'billing-suite' },
      count: 2,
      sum: 2,
    });
    expect(of(METRIC.webhookRejected, 'invalid_signature')).toMatchObject({
      dimensions: { service: 'billing-suite', reason: 'invalid_signature' },
      sum: 2,
    });
    expect(of(METRIC.webhookRejected, 'not_found')?.sum).toBe(1);
    expect(of(METRIC.stripeCallLatency)).toMatchObject({ count: 2, sum: 200, max: 120 });
    expect(of(METRIC.stripeCircuitState)).toMatchObject({
      last: STRIPE_CIRCUIT_STATE_VALUE.open,
      lastAt: new Date(started + 60_000).toISOString(),
    });

    // Two days on (two kept): the first day is dropped, and `since` says so.
    at(DAY_END + 86_400_000 + 1_000);
    publish((m) => m.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1));
    const later = collector.dailyMetrics();
    expect(Object.keys(later.days)).toEqual(['2026-05-03']);
    expect(later.since).toBe(new Date(DAY_END).toISOString());
  });

  it('reads the running runtime over HTTP; without one, says where they would be', async () => {
    const started = DAY_START + 9 * 3_600_000;
    const { collector, publish, rejected, at } = runtimeCollector(started);
    publish((m) => {
      m.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1);
      m.addMetric(METRIC.stripeCalls, MetricUnit.Count, 1);
      m.addMetric(METRIC.stripeCallLatency, MetricUnit.Milliseconds, 50);
    });
    rejected('missing_signature');
    at(NOW);
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(collector.dailyMetrics()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const local = {
      where: 'the local runtime (test)',
      endpoints: { dynamo: 'http://127.0.0.1:9', sqs: 'http://127.0.0.1:9' },
      opsUrl: `http://127.0.0.1:${port}/ops`,
      cloudWatch: () => {
        throw new Error('CloudWatch is not the local runtime');
      },
    };
    try {
      const figures = await readMetricFigures(local, DATE, NOW);
      expect(figures.webhooks).toEqual({
        available: true,
        source: 'the local runtime',
        from: new Date(started).toISOString(),
        to: new Date(NOW).toISOString(),
        received: 1,
        rejected: 1,
        rejectedByReason: { missing_signature: 1 },
      });
      expect(describeStripe(figures.stripe)[1]).toBe(
        '  billing-suite: 1 call(s), latency average 50 ms, max 50 ms; breaker opened 0x, 0 call(s) refused while open; breaker state unchanged',
      );
      // A day before the runtime started is not a day without webhooks.
      const before = await readMetricFigures(local, '2026-04-30', NOW);
      expect(before.webhooks).toEqual({
        available: false,
        why: `the local runtime holds the handlers' metrics in memory only since ${new Date(started).toISOString()}`,
      });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }

    // A runtime that stopped: nothing listens on its port any more.
    const stopped = createServer();
    await new Promise<void>((resolve) => stopped.listen(0, '127.0.0.1', resolve));
    const freePort = (stopped.address() as { port: number }).port;
    await new Promise((resolve) => stopped.close(resolve));
    const opsUrl = `http://127.0.0.1:${freePort}/ops`;
    const gone = await readMetricFigures({ ...local, opsUrl }, DATE, NOW);
    expect(describeWebhooks(gone.webhooks)).toBe(
      `webhooks: not available (cannot read ${opsUrl}/metrics (ECONNREFUSED); locally these figures exist only while \`npm start\` runs)`,
    );
    const { opsUrl: _none, ...withoutPage } = local;
    expect((await readMetricFigures(withoutPage, DATE, NOW)).stripe).toMatchObject({
      available: false,
      why: expect.stringContaining('the local runtime (test) names no operations page'),
    });
  });
});
