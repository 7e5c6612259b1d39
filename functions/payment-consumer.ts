/**
 * SQS consumer of the payments family: records PaymentIntents, charges, refunds and
 * disputes exactly once (`applyPaymentEvents`), then settles the penalties of every
 * penalty PaymentIntent the batch touched (`settlePenaltyPayments`: paid once on
 * success, back to unpaid on failure), from the payment's committed state. A record
 * whose penalties could not be settled fails and is redelivered; the redelivery is a
 * duplicate for the payment and settles the penalties. The batch and failure semantics
 * are the shared event consumer's (commons/event-consumer.ts).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import {
  DynamoDbCustomerDirectory,
  DynamoDbPaymentStore,
} from './adapters/dynamodb/dynamodb-payment-store.ts';
import { DynamoDbPenaltyStore } from './adapters/dynamodb/dynamodb-penalty-store.ts';
import { defaultDynamoDbClient } from './commons/aws-clients.ts';
import { lazyEnv, ledgerRetentionDaysEnv, requiredString } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import { createEventConsumer } from './commons/event-consumer.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { logPruneFailure } from './commons/penalty-wiring.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import { applyPaymentEvents } from './core/payments/apply-payment-events.ts';
import { projectPayment } from './core/payments/payment-state.ts';
import type { CustomerDirectory, PaymentStore } from './core/payments/ports.ts';
import { type PaymentSnapshot, settlePenaltyPayments } from './core/penalties/penalty-payments.ts';
import type { PenaltyStore } from './core/penalties/ports.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';
import type { QueuedEvent, RecordOutcome } from './core/shared/event-batch.ts';
import { PENALTY_PURPOSE } from './core/shared/penalty-metadata.ts';
import { parseQueuedEvent } from './core/shared/stripe-envelope.ts';

export interface PaymentConsumerDeps {
  store: PaymentStore;
  directory: CustomerDirectory;
  /** Absent: penalty payments are recorded as payments only (no penalties context deployed). */
  penalties?: PenaltyStore;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

/** The consumer over explicit dependencies (a getter defers building them to the first call). */
export function createPaymentConsumer(
  deps: PaymentConsumerDeps | (() => PaymentConsumerDeps),
): BaseHandler<SQSEvent, SQSBatchResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return createEventConsumer(() => {
    const { store, directory, penalties, clock = systemClock, logger, metrics } = resolve();
    return {
      clock,
      ...(logger ? { logger } : {}),
      ...(metrics ? { metrics } : {}),
      apply: async (events) => {
        const outcomes = await applyPaymentEvents(events, { store, directory, clock });
        if (penalties) {
          await settlePenaltiesOf(events, outcomes, {
            store,
            penalties,
            clock,
            logger: logger ?? sharedLogger,
            metrics: metrics ?? sharedMetrics,
          });
        }
        return outcomes;
      },
    };
  });
}

/** The penalty PaymentIntents among the batch's recorded events, and their records. */
function penaltyIntentsOf(
  events: readonly QueuedEvent[],
  outcomes: Map<string, RecordOutcome>,
): Map<string, string[]> {
  const records = new Map<string, string[]>();
  for (const event of events) {
    const status = outcomes.get(event.recordId)?.status;
    if (status !== 'applied' && status !== 'stale' && status !== 'duplicate') continue;
    let object: Record<string, unknown>;
    try {
      object = parseQueuedEvent(event.body).data.object;
    } catch {
      continue;
    }
    const metadata = object.metadata as Record<string, unknown> | null | undefined;
    if (object.object !== 'payment_intent' || metadata?.purpose !== PENALTY_PURPOSE) continue;
    const id = String(object.id);
    records.set(id, [...(records.get(id) ?? []), event.recordId]);
  }
  return records;
}

async function settlePenaltiesOf(
  events: readonly QueuedEvent[],
  outcomes: Map<string, RecordOutcome>,
  deps: {
    store: PaymentStore;
    penalties: PenaltyStore;
    clock: Clock;
    logger: Logger;
    metrics: Metrics;
  },
): Promise<void> {
  const intents = penaltyIntentsOf(events, outcomes);
  if (intents.size === 0) return;
  const failures = await settlePenaltyPayments([...intents.keys()], {
    store: deps.penalties,
    clock: deps.clock,
    currentPayments: async (ids) => {
      const stored = await deps.store.loadPayments(ids);
      const snapshots = new Map<string, PaymentSnapshot>();
      for (const [id, payment] of stored) {
        const view = projectPayment(payment.state);
        if (view) snapshots.set(id, view);
      }
      return snapshots;
    },
    onResult: (paymentIntentId, result, owed) => {
      const paid = result.changed.length;
      if (paid > 0) {
        deps.metrics.addMetric(METRIC.penaltiesPaid, MetricUnit.Count, paid);
        deps.logger.info('Penalty payment settled', { paymentIntentId, changed: paid });
      }
      // Counted once per penalty: later events of the same PaymentIntent (its refund
      // included) find the same overpayment already recorded.
      if (owed.length > 0) {
        deps.metrics.addMetric(METRIC.penaltiesOverpaid, MetricUnit.Count, owed.length);
        deps.logger.warn('Penalty paid when already settled: refund due (npm run ops -- refunds)', {
          paymentIntentId,
          penaltyIds: owed.map((o) => o.penaltyId),
        });
      }
    },
  });
  for (const [paymentIntentId, error] of failures) {
    for (const recordId of intents.get(paymentIntentId) ?? []) {
      const outcome = outcomes.get(recordId);
      outcomes.set(recordId, {
        status: 'failed',
        eventId: outcome && 'eventId' in outcome ? outcome.eventId : null,
        type: outcome && 'type' in outcome ? outcome.type : null,
        error,
      });
    }
  }
}

const consumerEnv = lazyEnv(
  z.object({
    [ENV.paymentsTableName]: requiredString(),
    [ENV.billingTableName]: requiredString(),
    [ENV.penaltiesTableName]: z.optional(requiredString()),
    [ENV.ledgerRetentionDays]: ledgerRetentionDaysEnv(),
  }),
);

/** Production wiring from env, built on the first invocation and reused while warm. */
const defaultDeps = lazy((): PaymentConsumerDeps => {
  const env = consumerEnv();
  const client = defaultDynamoDbClient();
  const penaltiesTableName = env[ENV.penaltiesTableName];
  return {
    store: new DynamoDbPaymentStore({
      client,
      paymentsTableName: env[ENV.paymentsTableName],
      ledgerRetentionDays: env[ENV.ledgerRetentionDays],
    }),
    directory: new DynamoDbCustomerDirectory({
      client,
      billingTableName: env[ENV.billingTableName],
    }),
    ...(penaltiesTableName
      ? {
          penalties: new DynamoDbPenaltyStore({
            client,
            penaltiesTableName,
            billingTableName: env[ENV.billingTableName],
            onPruneFailure: logPruneFailure,
          }),
        }
      : {}),
  };
});

export const handler = withPowertools(createPaymentConsumer(defaultDeps));
