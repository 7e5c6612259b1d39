/**
 * The operations page's collector: EMF parsing as Powertools writes it, the
 * per-second ring buffer (fixed memory, old seconds fall out), totals, gauges, and
 * credit counts per five-minute slot of the day by the schedules' clock.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { METRIC } from '../../functions/commons/metric-names.ts';
import { OpsCollector, parseEmf, SecondRing } from '../../local/ops/collector.ts';

const T0 = Date.parse('2026-05-01T10:00:00.000Z');

/** A clock the test moves. */
function manualClock(start = T0) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    set: (ms: number) => {
      now = ms;
    },
  };
}

describe('parseEmf', () => {
  it('reads names, units, single and repeated values and dimensions of a Powertools document', () => {
    const metrics = new Metrics({ namespace: 'BillingSuite', serviceName: 'billing-suite' });
    metrics.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1);
    metrics.addMetric(METRIC.processingLag, MetricUnit.Milliseconds, 120);
    metrics.addMetric(METRIC.processingLag, MetricUnit.Milliseconds, 80);
    metrics.addDimension('reason', 'bad_signature');
    const document = metrics.serializeMetrics();
    metrics.clearMetrics();

    expect(parseEmf(document)).toEqual([
      {
        name: 'WebhookReceived',
        unit: 'Count',
        values: [1],
        dimensions: { service: 'billing-suite', reason: 'bad_signature' },
      },
      {
        name: 'ProcessingLag',
        unit: 'Milliseconds',
        values: [120, 80],
        dimensions: { service: 'billing-suite', reason: 'bad_signature' },
      },
    ]);
  });

  it('gives nothing for what is not EMF, and skips metrics without a numeric value', () => {
    expect(parseEmf(null)).toEqual([]);
    expect(parseEmf('{"_aws":{}}')).toEqual([]);
    expect(parseEmf({ _aws: { CloudWatchMetrics: 'x' } })).toEqual([]);
    expect(parseEmf({ level: 'INFO', message: 'Batch applied' })).toEqual([]);
    expect(
      parseEmf({
        _aws: {
          Timestamp: T0,
          CloudWatchMetrics: [
            { Namespace: 'n', Dimensions: [[]], Metrics: [{ Name: 'A' }, { Name: 'B' }, {}] },
          ],
        },
        A: 'three',
        B: [2, null, Number.NaN, 3],
      }),
    ).toEqual([{ name: 'B', unit: 'None', values: [2, 3], dimensions: {} }]);
  });
});

describe('SecondRing', () => {
  it('keeps count, sum, max and the last value per second', () => {
    const ring = new SecondRing(10);
    ring.add(100, 3);
    ring.add(100, 7);
    ring.add(100, 5);
    ring.add(101, -2);
    expect(ring.at(100)).toEqual({ count: 3, sum: 15, max: 7, last: 5 });
    expect(ring.at(101)).toEqual({ count: 1, sum: -2, max: -2, last: -2 });
    expect(ring.at(102)).toBeUndefined();
  });

  it('reuses a slot for a later second and drops a value older than its slot holds', () => {
    const ring = new SecondRing(10);
    ring.add(100, 1);
    ring.add(110, 4); // same slot, ten seconds later: 100 left the window
    expect(ring.at(100)).toBeUndefined();
    expect(ring.at(110)).toEqual({ count: 1, sum: 4, max: 4, last: 4 });
    ring.add(100, 9); // too old now
    expect(ring.at(110)?.sum).toBe(4);
    expect(ring.at(100)).toBeUndefined();
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new SecondRing(0)).toThrow(RangeError);
    expect(() => new SecondRing(1.5)).toThrow(RangeError);
  });
});

describe('OpsCollector', () => {
  const emf = (values: Record<string, number | number[]>) => ({
    _aws: {
      Timestamp: T0,
      CloudWatchMetrics: [
        {
          Namespace: 'BillingSuite',
          Dimensions: [['service']],
          Metrics: Object.keys(values).map((Name) => ({ Name, Unit: 'Count' })),
        },
      ],
    },
    service: 'billing-suite',
    ...values,
  });

  it('sums each metric per second of its arrival, and in a total since start', () => {
    const clock = manualClock();
    const collector = new OpsCollector({ now: clock.now, windowSeconds: 60 });
    collector.recordEmf(emf({ WebhookReceived: 1 }));
    collector.recordEmf(emf({ WebhookReceived: 1, EventsProcessed: [2, 3] }));
    clock.advance(1500);
    collector.recordEmf(emf({ WebhookReceived: 1 }));
    collector.recordEmf({ message: 'not EMF' });

    const s0 = T0 / 1000;
    expect(collector.metricAt('WebhookReceived', s0)).toMatchObject({ count: 2, sum: 2 });
    expect(collector.metricAt('WebhookReceived', s0 + 1)).toMatchObject({ sum: 1 });
    expect(collector.metricAt('EventsProcessed', s0)).toMatchObject({ count: 2, sum: 5, max: 3 });
    expect(collector.total('WebhookReceived')).toBe(3);
    expect(collector.total('Unknown')).toBe(0);
    expect(collector.documentCount).toBe(3);
  });

  it('forgets seconds older than the window but keeps them in the total', () => {
    const clock = manualClock();
    const collector = new OpsCollector({ now: clock.now, windowSeconds: 60 });
    collector.recordMetric('PenaltiesCreated', [4]);
    clock.advance(61_000);
    collector.recordMetric('PenaltiesCreated', [1]);
    expect(collector.metricAt('PenaltiesCreated', T0 / 1000)).toBeUndefined();
    expect(collector.metricAt('PenaltiesCreated', T0 / 1000 + 61)?.sum).toBe(1);
    expect(collector.total('PenaltiesCreated')).toBe(5);
  });

  it('keeps the last gauge sample of each second', () => {
    const clock = manualClock();
    const collector = new OpsCollector({ now: clock.now });
    collector.recordGauge('q', 3);
    collector.recordGauge('q', 5, T0 + 400);
    expect(collector.gaugeAt('q', T0 / 1000)).toBe(5);
    expect(collector.gaugeAt('q', T0 / 1000 + 1)).toBeUndefined();
    expect(collector.gaugeAt('other', T0 / 1000)).toBeUndefined();
  });

  it('counts credit refreshes and plans in the slot of the schedules clock, per UTC day', () => {
    const wall = manualClock();
    // The schedules' clock runs elsewhere in the day (a fast LOCAL_CLOCK_SPEED).
    const day = manualClock(Date.parse('2026-05-01T23:57:00.000Z'));
    const collector = new OpsCollector({ now: wall.now, dayClock: day.now });
    collector.recordEmf(emf({ CreditsRefreshed: 2, CreditsPlanned: 3 }));
    collector.recordEmf(emf({ CreditsRefreshed: 1 }));
    day.set(Date.parse('2026-05-02T00:07:00.000Z'));
    collector.recordEmf(emf({ CreditsRefreshed: 4 }));

    const first = collector.slotCounts(METRIC.creditsRefreshed, '2026-05-01');
    expect(first).toHaveLength(288);
    expect(first[287]).toBe(3);
    expect(first.reduce((a, b) => a + b, 0)).toBe(3);
    expect(collector.slotCounts(METRIC.creditsPlanned, '2026-05-01')[287]).toBe(3);
    // Default: the day of the schedules' clock now.
    const today = collector.slotCounts(METRIC.creditsRefreshed);
    expect(today[1]).toBe(4);
    expect(today.reduce((a, b) => a + b, 0)).toBe(4);
    expect(collector.slotCounts(METRIC.creditsPlanned)).toEqual(new Array(288).fill(0));
    // A copy: the caller cannot change the collector's counts.
    today[1] = 99;
    expect(collector.slotCounts(METRIC.creditsRefreshed)[1]).toBe(4);
  });

  it('keeps its day-long figures across a restart: slot counts and per-day metrics add up', () => {
    const wall = manualClock();
    const day = manualClock(Date.parse('2026-05-01T10:02:00.000Z'));
    const before = new OpsCollector({ now: wall.now, dayClock: day.now });
    before.recordEmf(emf({ CreditsRefreshed: 2, WebhookReceived: 1 }));
    // What the runtime writes at stop, read back as it is at the next start.
    const saved = JSON.parse(JSON.stringify(before.exportDays()));

    wall.advance(60_000);
    const after = new OpsCollector({ now: wall.now, dayClock: day.now });
    after.recordEmf(emf({ CreditsRefreshed: 1, WebhookReceived: 1 }));
    after.restoreDays(saved);
    const slot = Math.floor((10 * 60 + 2) / 5);
    expect(after.slotCounts(METRIC.creditsRefreshed)[slot]).toBe(3);
    const today = after.dailyMetrics();
    const received = today.days[new Date(T0).toISOString().slice(0, 10)]?.find(
      (series) => series.metric === 'WebhookReceived',
    );
    expect(received).toMatchObject({ count: 2, sum: 2, max: 1 });
    // The figures count from the first run's start, not this one's.
    expect(today.since).toBe(new Date(T0).toISOString());
    // The per-second series start afresh: minutes of history are not worth keeping.
    expect(after.metricAt('WebhookReceived', T0 / 1000)).toBeUndefined();
  });

  it('refuses saved figures of another shape, adding nothing', () => {
    const collector = new OpsCollector();
    collector.recordMetric(METRIC.creditsRefreshed, [1]);
    const good = collector.exportDays();
    const bad: unknown[] = [
      null,
      { ...good, version: 2 },
      { ...good, slots: { [METRIC.creditsRefreshed]: { '2026-05-01': [1, 2, 3] } } },
      { ...good, daily: { '2026-05-01': [{ metric: 'X' }] } },
      { ...good, coveredSince: 'yesterday' },
    ];
    for (const saved of bad) {
      expect(() => collector.restoreDays(saved), JSON.stringify(saved)).toThrow(RangeError);
    }
    expect(collector.slotCounts(METRIC.creditsRefreshed).reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('keeps the slot counts of the last two days only', () => {
    const day = manualClock(Date.parse('2026-05-01T12:00:00.000Z'));
    const collector = new OpsCollector({ dayClock: day.now });
    for (const date of ['2026-05-01', '2026-05-02', '2026-05-03']) {
      day.set(Date.parse(`${date}T12:00:00.000Z`));
      collector.recordMetric(METRIC.creditsRefreshed, [1]);
    }
    const sum = (date: string) =>
      collector.slotCounts(METRIC.creditsRefreshed, date).reduce((a, b) => a + b, 0);
    expect(sum('2026-05-01')).toBe(0);
    expect(sum('2026-05-02')).toBe(1);
    expect(sum('2026-05-03')).toBe(1);
  });
});
