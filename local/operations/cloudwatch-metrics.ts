/**
 * Metrics of one UTC day from CloudWatch, for `stats` on a deployed stack. The series
 * of a metric are found with ListMetrics (which functions published it, which rejection
 * reasons), keeping only those with exactly the dimension names their publisher gives
 * them; then one GetMetricData reads the day: Sum, SampleCount and Maximum over one
 * daily period, and, where asked, the per-minute Maximum to find the last value.
 * ListMetrics knows only metrics with data in the last two weeks, so callers read no
 * older day.
 */
import {
  type CloudWatchClient,
  type Dimension,
  GetMetricDataCommand,
  ListMetricsCommand,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';

/** A metric to read, as its publisher emits it. */
export interface WantedMetric {
  metric: string;
  /** The dimension names of its series (a series with other names is someone else's). */
  dimensions: readonly string[];
  /** Also its last value of the day (for a state published on each change). */
  last?: boolean;
}

/** One series (a metric with one set of dimension values) over the day. */
export interface DaySeries {
  metric: string;
  dimensions: Record<string, string>;
  /** Values published. */
  count: number;
  sum: number;
  max: number;
  /** Locally the last value published; from CloudWatch the maximum of the last minute with one. */
  last?: { value: number; at: string };
}

export const DAY_SECONDS = 86_400;
export const MINUTE_SECONDS = 60;
/** GetMetricData takes at most 500 queries per request. */
const MAX_QUERIES = 500;

type Client = Pick<CloudWatchClient, 'send'>;

/** The series of `wanted` published between `day.start` and `day.end` (epoch ms); none when nothing was. */
export async function readCloudWatchDay(
  client: Client,
  namespace: string,
  wanted: readonly WantedMetric[],
  day: { start: number; end: number },
): Promise<DaySeries[]> {
  const found = (await Promise.all(wanted.map((w) => listSeries(client, namespace, w)))).flat();
  const queries = found.flatMap(({ wanted: w, dimensions }, i) => {
    const stat = (id: string, stat: string, period: number): MetricDataQuery => ({
      Id: `s${i}_${id}`,
      Label: `${w.metric} ${dimensions.map((d) => `${d.Name}=${d.Value}`).join(' ')}`,
      MetricStat: {
        Metric: { Namespace: namespace, MetricName: w.metric, Dimensions: dimensions },
        Period: period,
        Stat: stat,
      },
      ReturnData: true,
    });
    return [
      stat('sum', 'Sum', DAY_SECONDS),
      stat('count', 'SampleCount', DAY_SECONDS),
      stat('max', 'Maximum', DAY_SECONDS),
      ...(w.last ? [stat('last', 'Maximum', MINUTE_SECONDS)] : []),
    ];
  });
  const points = await metricData(client, queries, day);
  return found.flatMap(({ wanted: w, dimensions }, i): DaySeries[] => {
    const values = (id: string) => (points.get(`s${i}_${id}`) ?? []).map((p) => p.value);
    const count = values('count').reduce((a, b) => a + b, 0);
    if (count === 0) return []; // listed (published in the last two weeks), not that day
    const latest = (points.get(`s${i}_last`) ?? []).reduce<Point | undefined>(
      (a, p) => (a && a.at >= p.at ? a : p),
      undefined,
    );
    return [
      {
        metric: w.metric,
        dimensions: Object.fromEntries(dimensions.map((d) => [d.Name!, d.Value!])),
        count,
        sum: values('sum').reduce((a, b) => a + b, 0),
        max: Math.max(...values('max')),
        ...(latest ? { last: { value: latest.value, at: new Date(latest.at).toISOString() } } : {}),
      },
    ];
  });
}

/** Every series of `wanted.metric` in the namespace whose dimension names are `wanted.dimensions`. */
async function listSeries(
  client: Client,
  namespace: string,
  wanted: WantedMetric,
): Promise<Array<{ wanted: WantedMetric; dimensions: Dimension[] }>> {
  const expected = [...wanted.dimensions].sort().join();
  const series = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListMetricsCommand({
        Namespace: namespace,
        MetricName: wanted.metric,
        ...(token ? { NextToken: token } : {}),
      }),
    );
    for (const metric of page.Metrics ?? []) {
      const dimensions = metric.Dimensions ?? [];
      const names = dimensions.map((d) => d.Name ?? '').sort();
      if (metric.MetricName === wanted.metric && names.join() === expected) {
        series.push({ wanted, dimensions });
      }
    }
    token = page.NextToken;
  } while (token);
  return series;
}

interface Point {
  at: number;
  value: number;
}

/** The data points of each query id over the day, every page of every request. */
async function metricData(
  client: Client,
  queries: readonly MetricDataQuery[],
  day: { start: number; end: number },
): Promise<Map<string, Point[]>> {
  const points = new Map<string, Point[]>();
  for (let first = 0; first < queries.length; first += MAX_QUERIES) {
    let token: string | undefined;
    do {
      const page = await client.send(
        new GetMetricDataCommand({
          MetricDataQueries: queries.slice(first, first + MAX_QUERIES),
          StartTime: new Date(day.start),
          EndTime: new Date(day.end),
          ...(token ? { NextToken: token } : {}),
        }),
      );
      for (const result of page.MetricDataResults ?? []) {
        if (result.StatusCode === 'Forbidden' || result.StatusCode === 'InternalError') {
          const why = (result.Messages ?? []).map((m) => m.Value).join('; ');
          throw new Error(
            `GetMetricData answered ${result.StatusCode} for ${result.Label ?? result.Id}${why ? `: ${why}` : ''}`,
          );
        }
        const list = points.get(result.Id ?? '') ?? [];
        const timestamps = result.Timestamps ?? [];
        (result.Values ?? []).forEach((value, k) => {
          list.push({ at: timestamps[k]?.getTime() ?? day.start, value });
        });
        points.set(result.Id ?? '', list);
      }
      token = page.NextToken;
    } while (token);
  }
  return points;
}
