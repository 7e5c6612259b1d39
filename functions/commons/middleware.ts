/**
 * The one middy stack every Lambda is wrapped in: Powertools logger context (with
 * per-invocation keys reset so a correlation id never leaks into the next
 * invocation), EMF metrics flushed at the end of each invocation with a ColdStart
 * metric, and an X-Ray subsegment around the handler where tracing is possible.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger, metrics, tracer } from './powertools.ts';

export interface WithPowertoolsOptions {
  /**
   * Record the handler's response as trace metadata. Default false: responses can
   * carry user data and X-Ray metadata is not the place for it.
   */
  captureResponse?: boolean;
  /** Default: the shared logger. Pass the one injected into the handler, so its keys are reset too. */
  logger?: Logger;
  /** Default: the shared metrics. Pass the one injected into the handler, so it is flushed. */
  metrics?: Metrics;
}

/** A plain async Lambda handler, the shape every factory in `functions/` returns. */
export type BaseHandler<TEvent, TResult> = (event: TEvent, context: Context) => Promise<TResult>;

/**
 * Wraps `baseHandler` in the shared Powertools middleware. Errors the handler does
 * not catch still propagate to Lambda (after logging/metrics/tracing), so a queue
 * consumer's failure semantics are unchanged.
 */
export function withPowertools<TEvent, TResult>(
  baseHandler: BaseHandler<TEvent, TResult>,
  options: WithPowertoolsOptions = {},
) {
  const wrapped = middy<TEvent, TResult>(baseHandler);
  if (tracer) {
    wrapped.use(
      captureLambdaHandler(tracer, { captureResponse: options.captureResponse ?? false }),
    );
  }
  return wrapped
    .use(logMetrics(options.metrics ?? metrics, { captureColdStartMetric: true }))
    .use(injectLambdaContext(options.logger ?? logger, { resetKeys: true }));
}
