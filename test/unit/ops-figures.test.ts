/**
 * The figures document of `GET /ops/figures`: what each figure plots from the
 * collector, its x values, the totals, and the queues' labels from the stack model.
 */
import { describe, expect, it } from 'vitest';
import { METRIC } from '../../functions/commons/metric-names.ts';
import { OpsCollector } from '../../local/ops/collector.ts';
import { buildFigures, FIGURE_IDS, type FiguresDocument } from '../../local/ops/figures.ts';
import { queueSpecs } from '../../local/ops/ops-page.ts';

const T0 = Date.parse('2026-05-01T10:00:00.000Z');
const S0 = T0 / 1000;

function setup(windowSeconds = 60) {
  let now = T0;
  const collector = new OpsCollector({ now: () => now, windowSeconds });
  return {
    collector,
    at: (second: number) => {
      now = (S0 + second) * 1000 + 250;
    },
  };
}

const queues = {
  queues: [
    { key: 'billing-suite-subscriptions-events', label: 'subscriptions-events' },
    { key: 'billing-suite-payments-events', label: 'payments-events' },
  ],
  deadLetterQueues: [{ key: 'billing-suite-subscriptions-events-dlq', label: 'dlq' }],
};

const figure = (doc: FiguresDocument, id: string) => doc.figures.find((f) => f.id === id)!;
const series = (doc: FiguresDocument, id: string, label: string) =>
  figure(doc, id).series.find((s) => s.label === label)!;

describe('buildFigures', () => {
  it('has every figure, titled, with one value per x', () => {
    const { collector } = setup();
    const doc = buildFigures(collector, { ...queues, refreshMs: 1500 });
    expect(doc).toMatchObject({
      generatedAt: new Date(T0).toISOString(),
      startedAt: new Date(T0).toISOString(),
      dayClockAt: new Date(T0).toISOString(),
      windowSeconds: 60,
      refreshMs: 1500,
    });
    expect(doc.figures.map((f) => f.id)).toEqual([...FIGURE_IDS]);
    for (const f of doc.figures) {
      expect(f.title).not.toBe('');
      expect(f.unit).not.toBe('');
      for (const s of f.series) expect(s.values).toHaveLength(f.x.length);
    }
    expect(figure(doc, 'creditSlots')).toMatchObject({ xAxis: 'slot', kind: 'slots' });
    expect(figure(doc, 'creditSlots').x).toHaveLength(288);
  });

  it('covers the seconds since start, then the window once it is full', () => {
    const { collector, at } = setup(60);
    at(10);
    expect(figure(buildFigures(collector, queues), 'webhooks').x).toEqual(
      Array.from({ length: 11 }, (_, i) => S0 + i),
    );
    at(500);
    const x = figure(buildFigures(collector, queues), 'webhooks').x;
    expect(x).toHaveLength(60);
    expect(x[0]).toBe(S0 + 441);
    expect(x.at(-1)).toBe(S0 + 500);
  });

  it('plots counts per second, with totals since start', () => {
    const { collector, at } = setup();
    at(1);
    collector.recordMetric(METRIC.webhookReceived, [1, 1]);
    collector.recordMetric(METRIC.webhookRejected, [1]);
    at(3);
    collector.recordMetric(METRIC.webhookReceived, [1]);
    collector.recordMetric(METRIC.eventsProcessed, [4]);
    collector.recordMetric(METRIC.eventsDuplicate, [1]);
    at(4);
    const doc = buildFigures(collector, queues);
    expect(series(doc, 'webhooks', 'received')).toMatchObject({
      metric: 'WebhookReceived',
      values: [0, 2, 0, 1, 0],
      total: 3,
    });
    expect(series(doc, 'webhooks', 'rejected').values).toEqual([0, 1, 0, 0, 0]);
    expect(series(doc, 'events', 'applied')).toMatchObject({ values: [0, 0, 0, 4, 0], total: 4 });
    expect(series(doc, 'events', 'duplicate').total).toBe(1);
    expect(series(doc, 'events', 'failed').total).toBe(0);
  });

  it('plots the lag as average and maximum per second, null where nothing was applied', () => {
    const { collector, at } = setup();
    at(1);
    collector.recordMetric(METRIC.processingLag, [100, 300, 200]);
    at(2);
    const doc = buildFigures(collector, queues);
    expect(series(doc, 'lag', 'average')).toMatchObject({ values: [null, 200, null], latest: 200 });
    expect(series(doc, 'lag', 'maximum')).toMatchObject({ values: [null, 300, null], latest: 300 });
  });

  it('plots penalties as running totals since start, even past the window', () => {
    const { collector, at } = setup(60);
    at(0);
    collector.recordMetric(METRIC.penaltiesCreated, [5]);
    at(100);
    collector.recordMetric(METRIC.penaltiesCreated, [2]);
    collector.recordMetric(METRIC.penaltiesPaid, [1]);
    at(101);
    collector.recordMetric(METRIC.penaltiesCreated, [1]);
    at(102);
    const created = series(buildFigures(collector, queues), 'penalties', 'created');
    expect(created.values).toHaveLength(60);
    // Seconds 43..99 show the 5 of second 0, then 7, then 8.
    expect(created.values.slice(0, 57)).toEqual(new Array(57).fill(5));
    expect(created.values.slice(57)).toEqual([7, 8, 8]);
    expect(created.total).toBe(8);
    expect(series(buildFigures(collector, queues), 'penalties', 'paid').values.at(-1)).toBe(1);
  });

  it('plots depths at the seconds they were sampled, each queue its own series', () => {
    const { collector, at } = setup();
    at(1);
    collector.recordGauge('billing-suite-subscriptions-events', 4);
    collector.recordGauge('billing-suite-payments-events', 1);
    collector.recordGauge('billing-suite-subscriptions-events-dlq', 0);
    at(3);
    collector.recordGauge('billing-suite-subscriptions-events', 0);
    at(4);
    const doc = buildFigures(collector, queues);
    expect(figure(doc, 'queues')).toMatchObject({ kind: 'gauge', x: [S0 + 1, S0 + 3] });
    expect(series(doc, 'queues', 'subscriptions-events')).toMatchObject({
      values: [4, 0],
      latest: 0,
    });
    expect(series(doc, 'queues', 'payments-events')).toMatchObject({
      values: [1, null],
      latest: 1,
    });
    expect(figure(doc, 'dlqs')).toMatchObject({ x: [S0 + 1] });
    expect(series(doc, 'dlqs', 'dlq').values).toEqual([0]);
  });

  it('plots the credit refreshes and plans of the day per slot', () => {
    const day = Date.parse('2026-05-01T00:12:00.000Z'); // slot 2
    const collector = new OpsCollector({ now: () => T0, dayClock: () => day });
    collector.recordMetric(METRIC.creditsRefreshed, [3, 2]);
    collector.recordMetric(METRIC.creditsPlanned, [6]);
    const doc = buildFigures(collector, queues);
    expect(figure(doc, 'creditSlots').title).toContain('2026-05-01');
    expect(series(doc, 'creditSlots', 'refreshed').values[2]).toBe(5);
    expect(series(doc, 'creditSlots', 'refreshed').total).toBe(5);
    expect(series(doc, 'creditSlots', 'planned').values[2]).toBe(6);
    expect(doc.dayClockAt).toBe('2026-05-01T00:12:00.000Z');
  });
});

describe('queueSpecs', () => {
  it('splits consumed queues from DLQs and labels them readably', () => {
    const model = {
      queues: [
        { logicalId: 'SubDlqABCDEF12', localName: 'billing-suite-subs-dlq', attributes: {} },
        {
          logicalId: 'SubQueue12345678',
          localName: 'billing-suite-subs',
          attributes: {},
          deadLetter: { targetLogicalId: 'SubDlqABCDEF12', maxReceiveCount: 5 },
        },
        {
          logicalId: 'ScheduleDeadLetterQueue9E9A444E',
          localName: 'billing-suite-scheduledeadletterqueue9e9a444e',
          attributes: {},
        },
      ],
    };
    const urls = { SubDlqABCDEF12: 'u1', SubQueue12345678: 'u2' };
    expect(queueSpecs(model, urls)).toEqual({
      queues: [{ key: 'billing-suite-subs', label: 'subs', url: 'u2' }],
      deadLetterQueues: [
        { key: 'billing-suite-subs-dlq', label: 'subs-dlq', url: 'u1' },
        {
          key: 'billing-suite-scheduledeadletterqueue9e9a444e',
          label: 'ScheduleDeadLetterQueue',
          url: '',
        },
      ],
    });
  });
});
