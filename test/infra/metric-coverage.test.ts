import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import {
  Alarm,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC, METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import { REPO_ROOT } from '../../lib/billing-function.ts';
import {
  type EmittedMetrics,
  emittedMetricNames,
  graphedMetricNames,
  scanEmittedMetrics,
  unemitted,
} from './metric-coverage.ts';
import { synthTemplates } from './synth.ts';

let graphed: Set<string>;
let emitted: EmittedMetrics;
beforeAll(() => {
  const { service } = synthTemplates();
  graphed = graphedMetricNames(service.toJSON(), METRICS_NAMESPACE);
  emitted = emittedMetricNames(resolve(REPO_ROOT, 'functions'), REPO_ROOT);
});

describe('every metric the dashboard graphs is emitted', () => {
  it('every addMetric call in functions/ names a metric the scan can resolve', () => {
    expect(emitted.unresolved).toEqual([]);
    expect(emitted.names.size).toBeGreaterThan(0);
  });

  it('finds the graphed names in dashboard rows, SEARCH expressions and alarms', () => {
    // Sanity: one of each source, so an empty or partial read cannot pass silently.
    expect([...graphed]).toEqual(
      expect.arrayContaining([
        METRIC.eventsProcessed, // dashboard row
        METRIC.webhookRejected, // SEARCH by reason
        METRIC.webhookUnrouted, // SEARCH by eventType
        METRIC.eventsFailed, // alarms (and rows)
        METRIC.endToEndLag, // the lag graph
        METRIC.creditSlotLag, // a credit alarm on one metric
        METRIC.creditsFailed, // the credit failure rate (metric math)
        METRIC.creditsPlanned, // the credits row
      ]),
    );
  });

  it('graphed ⊆ emitted', () => {
    expect(unemitted(graphed, emitted.names)).toEqual([]);
  });

  it('EndToEndLag, graphed but once never emitted, is emitted by the shared event consumer', () => {
    const file = 'functions/commons/event-consumer.ts';
    const consumer = scanEmittedMetrics(readFileSync(resolve(REPO_ROOT, file), 'utf8'), file);
    expect(graphed.has(METRIC.endToEndLag)).toBe(true);
    expect(consumer.names.has(METRIC.endToEndLag)).toBe(true);
  });
});

describe('the coverage check catches a name nobody emits', () => {
  const outdirs: string[] = [];
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  /** A bare stack to graph fakes on (CDK's WASM template validation off, as in synth.ts). */
  function fakeStack(id: string): Stack {
    const outdir = mkdtempSync(join(tmpdir(), 'billing-metric-coverage-'));
    outdirs.push(outdir);
    return new Stack(new App({ outdir, builtinCloudFormationValidation: false }), id);
  }

  /** A stack that graphs and alarms on names no handler emits, next to one real name. */
  function fakeTemplate() {
    const stack = fakeStack('Fake');
    const custom = (metricName: string) =>
      new Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service: 'x' } });
    const dashboard = new Dashboard(stack, 'Dashboard');
    dashboard.addWidgets(
      new GraphWidget({
        left: [
          custom(METRIC.eventsProcessed),
          custom('NobodyEmitsThisRow'),
          // Other namespaces are not ours to check.
          new Metric({ namespace: 'AWS/Lambda', metricName: 'NobodyEmitsThisInAws' }),
        ],
      }),
      new SingleValueWidget({
        metrics: [
          new MathExpression({
            expression: `SEARCH('{${METRICS_NAMESPACE},reason,service} MetricName="NobodyEmitsThisSearch"', 'Sum', 300)`,
            period: Duration.minutes(5),
          }),
        ],
      }),
    );
    new Alarm(stack, 'Plain', {
      metric: custom('NobodyEmitsThisAlarm'),
      threshold: 1,
      evaluationPeriods: 1,
    });
    new Alarm(stack, 'Math', {
      metric: new MathExpression({
        expression: 'a + b',
        usingMetrics: { a: custom('NobodyEmitsThisMath'), b: custom(METRIC.eventsFailed) },
      }),
      threshold: 1,
      evaluationPeriods: 1,
    });
    return Template.fromStack(stack).toJSON();
  }

  it('reports exactly the fake names, from rows, SEARCH, plain alarms and metric math', () => {
    const fake = graphedMetricNames(fakeTemplate(), METRICS_NAMESPACE);
    // Against a fixed emitted set, so this checks the collector alone.
    const emittedHere = new Set<string>([METRIC.eventsProcessed, METRIC.eventsFailed]);
    expect([...fake]).toEqual(expect.arrayContaining([...emittedHere]));
    expect(unemitted(fake, emittedHere)).toEqual([
      'NobodyEmitsThisAlarm',
      'NobodyEmitsThisMath',
      'NobodyEmitsThisRow',
      'NobodyEmitsThisSearch',
    ]);
  });

  it('reports a fake name added to the real stack’s graphed set', () => {
    expect(unemitted([...graphed, 'NobodyEmitsThis'], emitted.names)).toContain('NobodyEmitsThis');
  });

  it('refuses a SEARCH over the namespace that names no metric', () => {
    const stack = fakeStack('Vague');
    new Dashboard(stack, 'Dashboard').addWidgets(
      new GraphWidget({
        left: [
          new MathExpression({
            expression: `SEARCH('{${METRICS_NAMESPACE},service} service="x"', 'Sum', 300)`,
            period: Duration.minutes(5),
          }),
        ],
      }),
    );
    expect(() => graphedMetricNames(Template.fromStack(stack).toJSON(), METRICS_NAMESPACE)).toThrow(
      /names no MetricName/,
    );
  });
});

describe('scanEmittedMetrics', () => {
  it('counts names passed to addMetric: direct, multi-line, literal and through a lookup table', () => {
    const source = `
      const OUTCOME = { ok: METRIC.eventsProcessed, bad: METRIC.eventsFailed };
      metrics.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1);
      single.addMetric(
        METRIC.endToEndLag,
        MetricUnit.Milliseconds,
        5,
      );
      metrics.addMetric('LiteralName', MetricUnit.Count, 1);
      metrics.addMetric(OUTCOME[status], MetricUnit.Count, count);
    `;
    const scanned = scanEmittedMetrics(source, 'sample.ts');
    expect([...scanned.names].sort()).toEqual(
      [
        METRIC.webhookReceived,
        METRIC.endToEndLag,
        'LiteralName',
        METRIC.eventsProcessed,
        METRIC.eventsFailed,
      ].sort(),
    );
    expect(scanned.unresolved).toEqual([]);
  });

  it('does not count a METRIC name that is only mentioned, never passed to addMetric', () => {
    const source = `
      const unused = { lag: METRIC.endToEndLag };
      logger.info('lag', { metric: METRIC.processingLag });
      metrics.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1);
    `;
    expect([...scanEmittedMetrics(source, 'sample.ts').names]).toEqual([METRIC.webhookReceived]);
  });

  it('reports a name it cannot resolve instead of guessing', () => {
    const source = `function count(name: string) {\n  metrics.addMetric(name, MetricUnit.Count, 1);\n}`;
    const scanned = scanEmittedMetrics(source, 'sample.ts');
    expect(scanned.names.size).toBe(0);
    expect(scanned.unresolved).toEqual([
      'sample.ts:2: metrics.addMetric(name, MetricUnit.Count, 1)',
    ]);
  });
});
