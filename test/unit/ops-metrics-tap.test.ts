/**
 * The tap that hands the handlers' metrics to the operations page: with a real
 * Powertools `Metrics` and its real `logMetrics` middleware, every published EMF
 * document reaches the sinks — metrics disabled (the local default) or not, single
 * metrics too — and the handler's own behaviour is unchanged.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseEmf } from '../../local/ops/collector.ts';
import { addEmfSink, tapMetrics } from '../../local/ops/metrics-tap.ts';

const context = { functionName: 'Fn' } as Context;

function names(documents: unknown[]): string[] {
  return documents.flatMap((d) => parseEmf(d).map((m) => `${m.name}=${m.values.join('+')}`));
}

describe('tapMetrics', () => {
  const removers: Array<() => void> = [];
  afterEach(() => {
    for (const remove of removers.splice(0)) remove();
    vi.unstubAllEnvs();
  });
  const collect = () => {
    const documents: unknown[] = [];
    removers.push(addEmfSink((d) => documents.push(d)));
    return documents;
  };

  it('sees what a handler published through the middleware, though metrics are disabled', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    const metrics = tapMetrics(new Metrics({ namespace: 'BillingSuite', serviceName: 'svc' }));
    const stdout = vi.spyOn(process.stdout, 'write');
    const documents = collect();
    const handler = middy(async () => {
      metrics.addMetric('WebhookReceived', MetricUnit.Count, 1);
      metrics.addMetric('ProcessingLag', MetricUnit.Milliseconds, 40);
      metrics.addMetric('ProcessingLag', MetricUnit.Milliseconds, 60);
      const single = metrics.singleMetric();
      single.addDimension('reason', 'bad_signature');
      single.addMetric('WebhookRejected', MetricUnit.Count, 1);
      return 'done';
    }).use(logMetrics(metrics));

    expect(await handler({}, context)).toBe('done');
    expect(names(documents)).toEqual([
      'WebhookRejected=1',
      'WebhookReceived=1',
      'ProcessingLag=40+60',
    ]);
    expect(parseEmf(documents[0])[0]!.dimensions).toEqual({
      service: 'svc',
      reason: 'bad_signature',
    });
    // Disabled: nothing printed, as before the tap.
    expect(stdout.mock.calls.some(([chunk]) => String(chunk).includes('_aws'))).toBe(false);
    stdout.mockRestore();

    // The buffer was cleared by the publish: the next invocation starts empty.
    await handler({}, context);
    expect(names(documents)).toHaveLength(6);
  });

  it('still prints the EMF line when metrics are enabled', () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const metrics = tapMetrics(new Metrics({ namespace: 'BillingSuite', serviceName: 'svc' }));
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const documents = collect();
    metrics.addMetric('PenaltiesCreated', MetricUnit.Count, 3);
    metrics.publishStoredMetrics();
    const printed = stdout.mock.calls
      .map(([chunk]) => String(chunk))
      .filter((l) => l.includes('_aws'));
    stdout.mockRestore();
    expect(names(documents)).toEqual(['PenaltiesCreated=3']);
    expect(printed).toHaveLength(1);
    // The same document, but the timestamp: Powertools may stamp the printed copy a millisecond later.
    const withoutTime = (doc: unknown) => {
      const copy = structuredClone(doc) as { _aws: { Timestamp?: number } };
      delete copy._aws.Timestamp;
      return copy;
    };
    expect(withoutTime(JSON.parse(printed[0]!))).toEqual(withoutTime(documents[0]));
  });

  it('is installed once per instance, survives a throwing sink, and stops at removal', () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    const metrics = new Metrics({ namespace: 'BillingSuite', serviceName: 'svc' });
    expect(tapMetrics(tapMetrics(metrics))).toBe(metrics);
    removers.push(
      addEmfSink(() => {
        throw new Error('broken sink');
      }),
    );
    const seen: unknown[] = [];
    const remove = addEmfSink((d) => seen.push(d));
    metrics.addMetric('EventsProcessed', MetricUnit.Count, 2);
    expect(() => metrics.publishStoredMetrics()).not.toThrow();
    expect(names(seen)).toEqual(['EventsProcessed=2']);

    remove();
    metrics.addMetric('EventsProcessed', MetricUnit.Count, 2);
    metrics.publishStoredMetrics();
    expect(seen).toHaveLength(1);
    expect(metrics.hasStoredMetrics()).toBe(false);
  });
});
