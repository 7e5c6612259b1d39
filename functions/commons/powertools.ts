/**
 * The one Logger, Metrics and Tracer shared by every function, so that all of them
 * log the same JSON shape and publish into the same metrics namespace.
 *
 * Service name, log level and namespace come from the standard Powertools env
 * (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_NAMESPACE) set
 * by the function construct; the namespace falls back to METRICS_NAMESPACE so local
 * runs and tests publish where the dashboard looks. Constructing these touches no
 * network (the tracer only talks to the X-Ray daemon over UDP when a segment closes).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { METRICS_NAMESPACE } from './metric-names.ts';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME || 'billing-suite';

export const logger = new Logger({ serviceName });

export const metrics = new Metrics({
  serviceName,
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || METRICS_NAMESPACE,
  // Metrics' own warnings go through the JSON logger (and its level), not console.
  logger,
});

/**
 * Whether a Tracer could trace here. Powertools' own rule disables it when
 * POWERTOOLS_TRACE_ENABLED is "false" or outside Lambda (no AWS_EXECUTION_ENV); this
 * test is never stricter than that rule, so no trace the Tracer would send is lost.
 */
export function tracingPossible(env: Record<string, string | undefined>): boolean {
  return (
    (env.POWERTOOLS_TRACE_ENABLED ?? '').trim().toLowerCase() !== 'false' &&
    (env.AWS_EXECUTION_ENV ?? '') !== ''
  );
}

/**
 * The Tracer where tracing is possible (deployed functions run with active tracing),
 * otherwise undefined. Importing it loads the X-Ray SDK, whose cls-hooked context
 * turns on async hooks for the whole process at import, traced or not: every await
 * then costs about ten times more (0.14 -> 1.7 us on Node 20 here), in the SDK and
 * everything else. So where it cannot trace (tests, the local runtime, the
 * benchmark) it is not imported at all.
 */
export const tracer: Tracer | undefined = tracingPossible(process.env)
  ? new (await import('@aws-lambda-powertools/tracer')).Tracer({ serviceName })
  : undefined;

/**
 * Makes the Stripe event id the correlation id of every following log line (as
 * `correlation_id`, plus `eventId` for queries that name it). The keys are temporary:
 * the shared middleware resets them at the end of each invocation; a batch consumer
 * that handles several events per invocation calls `clearEventCorrelation` between records.
 */
export function setEventCorrelation(eventId: string, target: Logger = logger): void {
  target.appendKeys({ correlation_id: eventId, eventId });
}

/** Removes what `setEventCorrelation` added. */
export function clearEventCorrelation(target: Logger = logger): void {
  target.removeKeys(['correlation_id', 'eventId']);
}
