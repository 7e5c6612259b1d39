/**
 * SQS consumer (event source mapping with ReportBatchItemFailures) that keeps
 * subscription state exact. The whole batch goes to `applyStripeEvents` (so one
 * customer's burst folds into one transaction); the Powertools batch processor then
 * turns per-record outcomes into the partial batch response: only failed records
 * are retried, and a record that keeps failing reaches the DLQ through the queue's
 * redrive policy. Duplicates, stale and unhandled event types are acknowledged.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import { DynamoDbSubscriptionStore } from './adapters/dynamodb/dynamodb-subscription-store.ts';
import { defaultDynamoDbClient } from './commons/aws-clients.ts';
import { lazyEnv, requiredString } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import {
  clearEventCorrelation,
  setEventCorrelation,
  logger as sharedLogger,
  metrics as sharedMetrics,
} from './commons/powertools.ts';
import {
  type ApplyDeps,
  applyStripeEvents,
  type QueuedEvent,
  type RecordOutcome,
} from './core/apply-stripe-events.ts';
import { type Clock, type SubscriptionStore, systemClock } from './core/ports.ts';
import { type PriceTierMap, parsePriceTierMap } from './core/tiers.ts';

export interface SubscriptionConsumerDeps {
  store: SubscriptionStore;
  priceTierMap: PriceTierMap;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

const OUTCOME_METRIC: Record<RecordOutcome['status'], string> = {
  applied: METRIC.eventsProcessed,
  stale: METRIC.eventsOutOfOrder,
  duplicate: METRIC.eventsDuplicate,
  ignored: METRIC.eventsIgnored,
  failed: METRIC.eventsFailed,
};

/** Reads what the webhook put beside the body; absent attributes are fine (e.g. a redriven message). */
export function toQueuedEvent(record: SQSRecord): QueuedEvent {
  const receivedAt = Number(record.messageAttributes?.receivedAt?.stringValue);
  return {
    recordId: record.messageId,
    body: record.body,
    receivedAt: Number.isFinite(receivedAt) && receivedAt > 0 ? receivedAt : undefined,
  };
}

/** The consumer over explicit dependencies (a getter defers building them to the first call). */
export function createSubscriptionConsumer(
  deps: SubscriptionConsumerDeps | (() => SubscriptionConsumerDeps),
): BaseHandler<SQSEvent, SQSBatchResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event, context) => {
    const {
      store,
      priceTierMap,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    const applyDeps: ApplyDeps = {
      store,
      clock,
      priceTierMap,
      onUnmappedPrice: (priceIds, fact) => {
        // A configuration gap, not a bad event: the subscription is recorded on `free`
        // until PRICE_TIER_MAP (or the price's metadata.tier) names its tier.
        logger.warn('Price has no tier; add it to PRICE_TIER_MAP or set metadata.tier', {
          priceIds,
          eventId: fact.eventId,
          subscriptionId: fact.kind === 'subscription' ? fact.snapshot.subscriptionId : undefined,
        });
      },
    };
    const outcomes = await applyStripeEvents(event.Records.map(toQueuedEvent), applyDeps);
    const committedAt = clock.now();

    const counts: Record<RecordOutcome['status'], number> = {
      applied: 0,
      stale: 0,
      duplicate: 0,
      ignored: 0,
      failed: 0,
    };
    for (const record of event.Records) {
      const outcome = outcomes.get(record.messageId);
      if (!outcome) continue;
      counts[outcome.status] += 1;
      if (outcome.status === 'applied') {
        const sentAt = Number(record.attributes?.SentTimestamp);
        if (Number.isFinite(sentAt) && sentAt > 0) {
          metrics.addMetric(METRIC.processingLag, MetricUnit.Milliseconds, committedAt - sentAt);
        }
      }
      if (outcome.status === 'failed') {
        if (outcome.eventId) setEventCorrelation(outcome.eventId, logger);
        logger.error('Event failed; the queue will redeliver it', {
          messageId: record.messageId,
          eventType: outcome.type,
          receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 0),
          error: outcome.error,
        });
        clearEventCorrelation(logger);
      }
    }
    for (const [status, count] of Object.entries(counts) as [RecordOutcome['status'], number][]) {
      if (count > 0) metrics.addMetric(OUTCOME_METRIC[status], MetricUnit.Count, count);
    }
    logger.info('Batch applied', { records: event.Records.length, ...counts });

    // Powertools builds the partial batch response (and throws when every record
    // failed, which makes Lambda retry the whole batch, as it would anyway).
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(
      event,
      (record: SQSRecord) => {
        const outcome = outcomes.get(record.messageId);
        if (!outcome) throw new Error(`no outcome for record ${record.messageId}`);
        if (outcome.status === 'failed') throw outcome.error;
      },
      processor,
      { context, throwOnFullBatchFailure: false },
    );
  };
}

const consumerEnv = lazyEnv(
  z.object({
    [ENV.billingTableName]: requiredString(),
    [ENV.eventsTableName]: requiredString(),
    [ENV.priceTierMap]: z.optional(z.string()),
    // Stripe retries for 3 days: a shorter ledger would let a late retry look new.
    [ENV.ledgerRetentionDays]: z.optional(z.coerce.number().check(z.int(), z.gte(4), z.lte(3650))),
  }),
);

/** Production wiring from env, built on the first invocation and reused while warm. */
const defaultDeps = lazy((): SubscriptionConsumerDeps => {
  const env = consumerEnv();
  return {
    store: new DynamoDbSubscriptionStore({
      client: defaultDynamoDbClient(),
      billingTableName: env[ENV.billingTableName],
      eventsTableName: env[ENV.eventsTableName],
      ...(env[ENV.ledgerRetentionDays]
        ? { ledgerRetentionDays: env[ENV.ledgerRetentionDays] }
        : {}),
    }),
    priceTierMap: parsePriceTierMap(env[ENV.priceTierMap]),
  };
});

export const handler = withPowertools(createSubscriptionConsumer(defaultDeps));
