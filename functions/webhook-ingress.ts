/**
 * Lambda behind `POST /webhooks/stripe` (HTTP API, payload v2): extracts the raw
 * body and signature, runs `acceptStripeWebhook`, and answers 200 only once the
 * event is in SQS. 4xx for what the caller got wrong, 503 when the queue or the
 * secret is unavailable (Stripe retries non-2xx for days, so nothing is lost).
 * Never calls Stripe's API or DynamoDB, and never logs the body, the signature or the secret.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import {
  WebhookSecretUnavailableError,
  webhookSecretProviderFromConfig,
} from './adapters/secrets/webhook-secret-provider.ts';
import { SqsEventQueue } from './adapters/sqs/sqs-event-queue.ts';
import { StripeSignatureVerifier } from './adapters/stripe/stripe-signature-verifier.ts';
import { createSqsClient } from './commons/aws-clients.ts';
import { lazyEnv, optionalNonBlank } from './commons/env.ts';
import { ENV, EVENT_QUEUE_URL_ENV } from './commons/env-names.ts';
import {
  BadRequestError,
  getHeader,
  type HttpError,
  type HttpResponse,
  jsonResponse,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  rawBodyBytes,
  ServiceUnavailableError,
  toHttpErrorResponse,
} from './commons/http.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC, METRIC_DIMENSION } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import {
  setEventCorrelation,
  logger as sharedLogger,
  metrics as sharedMetrics,
} from './commons/powertools.ts';
import { routePathOf, WEBHOOK_PATH } from './commons/routes.ts';
import {
  acceptStripeWebhook,
  EnqueueFailedError,
  type EventQueue,
  MAX_WEBHOOK_BODY_BYTES,
  type RejectionReason,
  type SignatureVerifier,
} from './core/intake/webhook-intake.ts';
import type { Clock } from './core/shared/clock.ts';
import type { EventFamilyName } from './core/shared/event-families.ts';

const ALLOWED_METHODS = ['POST'] as const;

export interface WebhookIngressDeps {
  verifier: SignatureVerifier;
  queue: EventQueue;
  /** The Stripe mode the stack serves (STRIPE_LIVEMODE); undefined: no check. */
  livemode?: boolean;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: the shared Powertools logger. */
  logger?: Logger;
  /** Default: the shared Powertools metrics. */
  metrics?: Metrics;
}

type RouteRejection = 'not_found' | 'method_not_allowed';

/**
 * The path the request was for. `routeKey` names the matched route ('POST /webhooks/stripe');
 * behind a `$default` or `ANY` route, fall back to `rawPath`, which carries the stage
 * name as a prefix on a non-default stage.
 */
function requestedPath(event: APIGatewayProxyEventV2): string {
  const routePath = routePathOf(event);
  if (routePath && !routePath.includes('{')) return routePath;
  const rawPath = event.rawPath ?? event.requestContext?.http?.path ?? '';
  const stage = event.requestContext?.stage;
  if (stage && stage !== '$default' && rawPath.startsWith(`/${stage}/`)) {
    return rawPath.slice(stage.length + 1);
  }
  return rawPath;
}

function routeError(event: APIGatewayProxyEventV2): [RouteRejection, HttpError] | undefined {
  if (requestedPath(event) !== WEBHOOK_PATH) return ['not_found', new NotFoundError()];
  const method = event.requestContext?.http?.method?.toUpperCase() ?? '';
  if (!(ALLOWED_METHODS as readonly string[]).includes(method)) {
    return ['method_not_allowed', new MethodNotAllowedError(ALLOWED_METHODS)];
  }
  return undefined;
}

function rejectionError(reason: RejectionReason, message: string): HttpError {
  if (reason === 'payload_too_large') return new PayloadTooLargeError(MAX_WEBHOOK_BODY_BYTES);
  return new BadRequestError(message, { code: reason });
}

/** The webhook handler over explicit dependencies (a getter defers building them to the first call). */
export function createWebhookIngressHandler(
  deps: WebhookIngressDeps | (() => WebhookIngressDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const {
      verifier,
      queue,
      clock,
      livemode,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    metrics.addMetric(METRIC.webhookReceived, MetricUnit.Count, 1);

    const reject = (reason: string, error: HttpError): HttpResponse => {
      const single = metrics.singleMetric();
      single.addDimension(METRIC_DIMENSION.reason, reason);
      single.addMetric(METRIC.webhookRejected, MetricUnit.Count, 1);
      return toHttpErrorResponse(error, logger);
    };

    const badRoute = routeError(event);
    if (badRoute) return reject(...badRoute);

    try {
      const result = await acceptStripeWebhook(
        {
          rawBody: rawBodyBytes(event),
          signatureHeader: getHeader(event.headers, 'stripe-signature'),
        },
        {
          verifier,
          queue,
          ...(clock ? { clock } : {}),
          ...(livemode === undefined ? {} : { livemode }),
        },
      );
      if (result.outcome === 'rejected') {
        return reject(result.reason, rejectionError(result.reason, result.message));
      }
      setEventCorrelation(result.eventId, logger);
      if (result.outcome === 'wrong_mode') {
        // A misconfigured endpoint, not a bad delivery: acknowledged (a 4xx would be
        // retried for days), counted and alarmed; a replay brings events back once fixed.
        metrics.addMetric(METRIC.webhookWrongMode, MetricUnit.Count, 1);
        logger.warn('Webhook of the other Stripe mode acknowledged, not queued', {
          eventType: result.eventType,
          livemode: result.livemode,
        });
        return jsonResponse(200, { received: true });
      }
      if (result.families.length === 0) {
        // No family consumes this type (an endpoint subscribed to more than we handle):
        // acknowledged so Stripe stops retrying, counted so the gap is visible.
        const single = metrics.singleMetric();
        single.addDimension(METRIC_DIMENSION.eventType, result.eventType);
        single.addMetric(METRIC.webhookUnrouted, MetricUnit.Count, 1);
        // And without the type: the series the alarm watches.
        metrics.addMetric(METRIC.webhookUnrouted, MetricUnit.Count, 1);
        logger.debug('Webhook acknowledged, no family consumes it', {
          eventType: result.eventType,
        });
        return jsonResponse(200, { received: true });
      }
      metrics.addMetric(METRIC.webhookEnqueued, MetricUnit.Count, 1);
      // Debug, not info: the ledger records every event with its receivedAt, and a
      // line per webhook would be the largest log cost of the suite. Rejections and
      // failures always log; the DEBUG log level shows successes too.
      logger.debug('Webhook enqueued', { eventType: result.eventType });
      return jsonResponse(200, { received: true });
    } catch (error) {
      if (error instanceof EnqueueFailedError) {
        if (error.eventId) setEventCorrelation(error.eventId, logger);
        metrics.addMetric(METRIC.webhookEnqueueFailed, MetricUnit.Count, 1);
        return toHttpErrorResponse(new ServiceUnavailableError({ cause: error }), logger);
      }
      if (error instanceof WebhookSecretUnavailableError) {
        return toHttpErrorResponse(new ServiceUnavailableError({ cause: error }), logger);
      }
      return toHttpErrorResponse(error, logger);
    }
  };
}

const ingressEnv = lazyEnv(
  z
    .object({
      [EVENT_QUEUE_URL_ENV.subscriptions]: z.url(),
      [EVENT_QUEUE_URL_ENV.payments]: z.url(),
      [ENV.webhookSecretArn]: optionalNonBlank(),
      [ENV.webhookSecret]: optionalNonBlank(),
      [ENV.stripeLivemode]: z.optional(z.enum(['true', 'false'])),
    })
    .check(
      z.refine((env) => Boolean(env[ENV.webhookSecretArn] || env[ENV.webhookSecret]), {
        message: `set ${ENV.webhookSecretArn} (deployed) or ${ENV.webhookSecret} (local only)`,
        path: [ENV.webhookSecretArn],
        // Report this with any other problem at once, not after the others are fixed.
        when: () => true,
      }),
    ),
);

/** Dependencies from the environment, built on the first invocation and then reused. */
export const webhookIngressDepsFromEnv = lazy((): WebhookIngressDeps => {
  const env = ingressEnv();
  const mode = env[ENV.stripeLivemode];
  return {
    ...(mode === undefined ? {} : { livemode: mode === 'true' }),
    verifier: new StripeSignatureVerifier(
      webhookSecretProviderFromConfig({
        secret: env[ENV.webhookSecret],
        secretArn: env[ENV.webhookSecretArn],
      }),
    ),
    queue: new SqsEventQueue({
      queueUrls: {
        subscriptions: env[EVENT_QUEUE_URL_ENV.subscriptions],
        payments: env[EVENT_QUEUE_URL_ENV.payments],
      } satisfies Record<EventFamilyName, string>,
      // Stripe waits for the answer: keep the worst case (3 attempts) well inside it.
      client: createSqsClient({
        connectionTimeoutMs: 1_000,
        requestTimeoutMs: 2_000,
        maxAttempts: 3,
      }),
    }),
  };
});

export const handler = withPowertools(createWebhookIngressHandler(webhookIngressDepsFromEnv));
