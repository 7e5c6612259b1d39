/**
 * How the operations page sees the handlers' metrics: a tap on the Powertools
 * `Metrics` instance the hosted functions share (functions/commons/powertools.ts).
 * Each time it publishes (the `logMetrics` middleware at the end of every invocation,
 * a full buffer, a `singleMetric()`), the tap hands the EMF document it is about to
 * write to every registered sink, then lets Powertools go on as usual: printed to
 * stdout when metrics are enabled, dropped when POWERTOOLS_METRICS_DISABLED (the local
 * default, so the EMF blobs do not drown the log) — the sinks get it either way.
 *
 * The handlers are not changed: this wraps the instance's own `publishStoredMetrics`
 * and `singleMetric` (whose instances are tapped in turn). Installed once per
 * instance; sinks come and go with the runtimes of the process.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';

export type EmfSink = (document: unknown) => void;

const sinks = new Set<EmfSink>();
const tapped = new WeakSet<object>();

/** The part of `Metrics` the tap wraps (public API of @aws-lambda-powertools/metrics 2.x). */
type Tappable = Pick<
  Metrics,
  'publishStoredMetrics' | 'singleMetric' | 'hasStoredMetrics' | 'serializeMetrics'
>;

/** Wraps `metrics` (idempotent) so that what it publishes reaches the sinks. */
export function tapMetrics<T extends Tappable>(metrics: T): T {
  if (tapped.has(metrics)) return metrics;
  tapped.add(metrics);
  const publish = metrics.publishStoredMetrics.bind(metrics);
  const single = metrics.singleMetric.bind(metrics);
  metrics.publishStoredMetrics = () => {
    if (sinks.size > 0 && metrics.hasStoredMetrics()) {
      let document: unknown;
      try {
        document = metrics.serializeMetrics();
      } catch {
        document = undefined; // Powertools' own publish reports the problem.
      }
      if (document !== undefined) {
        for (const sink of sinks) {
          try {
            sink(document);
          } catch {
            // A sink must never break the handler that published.
          }
        }
      }
    }
    return publish();
  };
  metrics.singleMetric = () => tapMetrics(single());
  return metrics;
}

/** Registers `sink`; the returned function removes it. */
export function addEmfSink(sink: EmfSink): () => void {
  sinks.add(sink);
  return () => {
    sinks.delete(sink);
  };
}
