/**
 * `GET /users/{userId}/subscription`: the user's tier and current subscription, from
 * one DynamoDB key lookup of the profile item. On a miss, when Stripe is configured,
 * the read-through fallback asks Stripe once and stores what it says (DESIGN §8.4);
 * Stripe down answers 503 with `Retry-After`.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { DynamoDbStripeLookupLeases } from './adapters/dynamodb/dynamodb-lookup-leases.ts';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from './adapters/dynamodb/dynamodb-subscription-store.ts';
import { defaultDynamoDbClient } from './commons/aws-clients.ts';
import {
  creditAllowancesEnv,
  lazyEnv,
  ledgerRetentionDaysEnv,
  requiredString,
} from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import {
  type HttpResponse,
  jsonResponse,
  MethodNotAllowedError,
  NotFoundError,
  ServiceUnavailableError,
  toHttpErrorResponse,
} from './commons/http.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import { parseParams, parseQuery, userIdParam } from './commons/request-params.ts';
import { stripeConfigured, stripeCustomerLookupFromEnv } from './commons/stripe-wiring.ts';
import { systemClock } from './core/shared/clock.ts';
import { parsePriceTierMap } from './core/shared/tiers.ts';
import type { UserSubscriptionView } from './core/subscriptions/customer-account.ts';
import { StripeSourceUnavailableError, type UserViewReader } from './core/subscriptions/ports.ts';
import { SubscriptionReadThrough } from './core/subscriptions/read-through.ts';
import { SnapshotConflictError } from './core/subscriptions/stripe-snapshot.ts';

export interface SubscriptionReadDeps {
  reader: UserViewReader;
  /** Asks Stripe on a store miss; without it a miss is a 404. */
  readThrough?: SubscriptionReadThrough;
  logger?: Logger;
  metrics?: Metrics;
}

// Built once: the read route is the hottest, and takes no query parameter.
const pathSchema = z.object({ userId: userIdParam() });
const noQuery = z.object({});

/** The JSON the read API answers with. */
export function toResponseBody(view: UserSubscriptionView) {
  return {
    userId: view.userId,
    tier: view.tier,
    status: view.status,
    stripeCustomerId: view.stripeCustomerId,
    subscriptionId: view.subscriptionId,
    priceId: view.priceId,
    currentPeriodEnd:
      view.currentPeriodEnd === null ? null : new Date(view.currentPeriodEnd * 1000).toISOString(),
    cancelAtPeriodEnd: view.cancelAtPeriodEnd,
    latestInvoiceOutcome: view.latestInvoiceOutcome,
  };
}

export function createSubscriptionReadHandler(
  deps: SubscriptionReadDeps | (() => SubscriptionReadDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const { reader, readThrough, logger = sharedLogger, metrics = sharedMetrics } = resolve();
    try {
      const method = event.requestContext?.http?.method?.toUpperCase();
      if (method !== 'GET') throw new MethodNotAllowedError(['GET']);
      parseQuery(event, noQuery);
      const { userId } = parseParams(pathSchema, { userId: event.pathParameters?.userId ?? '' });
      const read = readThrough
        ? await readThrough.read(userId).catch(toServiceError)
        : { view: await reader.getUserView(userId), source: 'store' };
      const { view } = read;
      if (read.source === 'stripe' && view) {
        metrics.addMetric(METRIC.subscriptionFallbackHits, MetricUnit.Count, 1);
      }
      if (!view) {
        metrics.addMetric(METRIC.subscriptionReadMisses, MetricUnit.Count, 1);
        throw new NotFoundError(`No subscription is known for user ${userId}.`, {
          code: 'user_not_found',
        });
      }
      metrics.addMetric(METRIC.subscriptionReads, MetricUnit.Count, 1);
      return jsonResponse(200, toResponseBody(view), { 'cache-control': 'no-store' });
    } catch (error) {
      return toHttpErrorResponse(error, logger);
    }
  };
}

/** Stripe unreachable (or the snapshot kept losing races): a 503 the caller may retry. */
function toServiceError(error: unknown): never {
  if (error instanceof StripeSourceUnavailableError) {
    throw new ServiceUnavailableError({
      cause: error,
      retryAfterSeconds: error.retryAfterSeconds,
      ...(error.paused ? { knownCondition: error.message } : {}),
    });
  }
  if (error instanceof SnapshotConflictError) {
    throw new ServiceUnavailableError({ cause: error, retryAfterSeconds: 1 });
  }
  throw error;
}

const readEnv = lazyEnv(
  z.object({
    [ENV.billingTableName]: requiredString(),
    // The fallback's snapshot commits like the consumer: these come with it.
    [ENV.subscriptionLedgerTableName]: z.optional(z.string()),
    [ENV.priceTierMap]: z.optional(z.string()),
    [ENV.ledgerRetentionDays]: ledgerRetentionDaysEnv(),
    [ENV.creditAllowances]: creditAllowancesEnv(),
  }),
);

/** Production wiring from env, built on the first invocation and reused while warm. */
const defaultDeps = lazy((): SubscriptionReadDeps => {
  const env = readEnv();
  const client = defaultDynamoDbClient();
  const billingTableName = env[ENV.billingTableName];
  const reader = new DynamoDbUserViewReader({ client, billingTableName });
  const ledgerTableName = env[ENV.subscriptionLedgerTableName];
  if (!ledgerTableName || !stripeConfigured()) {
    sharedLogger.warn('Read-through fallback off: a store miss answers 404', {
      missing: ledgerTableName ? 'Stripe API key' : ENV.subscriptionLedgerTableName,
    });
    return { reader };
  }
  const readThrough = new SubscriptionReadThrough({
    reader,
    source: stripeCustomerLookupFromEnv(),
    leases: new DynamoDbStripeLookupLeases({ client, billingTableName }),
    store: new DynamoDbSubscriptionStore({
      client,
      billingTableName,
      ledgerTableName,
      ledgerRetentionDays: env[ENV.ledgerRetentionDays],
      creditAllowances: env[ENV.creditAllowances],
    }),
    clock: systemClock,
    priceTierMap: parsePriceTierMap(env[ENV.priceTierMap]),
    onUnmappedPrice: (priceIds) => {
      sharedMetrics.addMetric(METRIC.unmappedPrices, MetricUnit.Count, priceIds.length);
      sharedLogger.warn('Price has no tier; add it to PRICE_TIER_MAP or set metadata.tier', {
        priceIds,
      });
    },
  });
  return { reader, readThrough };
});

export const handler = withPowertools(createSubscriptionReadHandler(defaultDeps));
