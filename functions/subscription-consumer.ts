/**
 * SQS consumer of the subscriptions family: keeps accounts, profiles and the
 * subscription ledger exact (`applySubscriptionEvents`). The batch and failure
 * semantics are the shared event consumer's (commons/event-consumer.ts).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import { DynamoDbSubscriptionStore } from './adapters/dynamodb/dynamodb-subscription-store.ts';
import { defaultDynamoDbClient } from './commons/aws-clients.ts';
import {
  creditAllowancesEnv,
  lazyEnv,
  ledgerRetentionDaysEnv,
  requiredString,
} from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import { createEventConsumer } from './commons/event-consumer.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import type { Clock } from './core/shared/clock.ts';
import { systemClock } from './core/shared/clock.ts';
import { type PriceTierMap, parsePriceTierMap } from './core/shared/tiers.ts';
import { applySubscriptionEvents } from './core/subscriptions/apply-subscription-events.ts';
import type { SubscriptionStore } from './core/subscriptions/ports.ts';

export interface SubscriptionConsumerDeps {
  store: SubscriptionStore;
  priceTierMap: PriceTierMap;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

/** The consumer over explicit dependencies (a getter defers building them to the first call). */
export function createSubscriptionConsumer(
  deps: SubscriptionConsumerDeps | (() => SubscriptionConsumerDeps),
): BaseHandler<SQSEvent, SQSBatchResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return createEventConsumer(() => {
    const {
      store,
      priceTierMap,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    return {
      clock,
      logger,
      metrics,
      apply: (events) =>
        applySubscriptionEvents(events, {
          store,
          clock,
          priceTierMap,
          onUnmappedPrice: (priceIds, fact) => {
            // A configuration gap, not a bad event: the subscription is recorded on `free`
            // until PRICE_TIER_MAP (or the price's metadata.tier) names its tier.
            metrics.addMetric(METRIC.unmappedPrices, MetricUnit.Count, priceIds.length);
            logger.warn('Price has no tier; add it to PRICE_TIER_MAP or set metadata.tier', {
              priceIds,
              eventId: fact.eventId,
              subscriptionId:
                fact.kind === 'subscription' ? fact.snapshot.subscriptionId : undefined,
            });
          },
          onUnresolvedTie: (customerId, subscriptionIds) => {
            // Not an error of the event: the state may be wrong until `npm run ops -- resync --marked`.
            metrics.addMetric(METRIC.subscriptionTiesUnresolved, MetricUnit.Count, 1);
            logger.warn('Same-second updates could not be ordered; customer marked for resync', {
              customerId,
              subscriptionIds,
            });
          },
        }),
    };
  });
}

const consumerEnv = lazyEnv(
  z.object({
    [ENV.billingTableName]: requiredString(),
    [ENV.subscriptionLedgerTableName]: requiredString(),
    [ENV.priceTierMap]: z.optional(z.string()),
    [ENV.ledgerRetentionDays]: ledgerRetentionDaysEnv(),
    [ENV.creditAllowances]: creditAllowancesEnv(),
  }),
);

/** Production wiring from env, built on the first invocation and reused while warm. */
const defaultDeps = lazy((): SubscriptionConsumerDeps => {
  const env = consumerEnv();
  return {
    store: new DynamoDbSubscriptionStore({
      client: defaultDynamoDbClient(),
      billingTableName: env[ENV.billingTableName],
      ledgerTableName: env[ENV.subscriptionLedgerTableName],
      ledgerRetentionDays: env[ENV.ledgerRetentionDays],
      creditAllowances: env[ENV.creditAllowances],
    }),
    priceTierMap: parsePriceTierMap(env[ENV.priceTierMap]),
  };
});

export const handler = withPowertools(createSubscriptionConsumer(defaultDeps));
