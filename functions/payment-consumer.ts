/**
 * SQS consumer of the payments family: records PaymentIntents, charges, refunds and
 * disputes exactly once (`applyPaymentEvents`). The batch and failure semantics are
 * the shared event consumer's (commons/event-consumer.ts).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import {
  DynamoDbCustomerDirectory,
  DynamoDbPaymentStore,
} from './adapters/dynamodb/dynamodb-payment-store.ts';
import { defaultDynamoDbClient } from './commons/aws-clients.ts';
import { lazyEnv, ledgerRetentionDaysEnv, requiredString } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import { createEventConsumer } from './commons/event-consumer.ts';
import { lazy } from './commons/lazy.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { applyPaymentEvents } from './core/payments/apply-payment-events.ts';
import type { CustomerDirectory, PaymentStore } from './core/payments/ports.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';

export interface PaymentConsumerDeps {
  store: PaymentStore;
  directory: CustomerDirectory;
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
    const { store, directory, clock = systemClock, logger, metrics } = resolve();
    return {
      clock,
      ...(logger ? { logger } : {}),
      ...(metrics ? { metrics } : {}),
      apply: (events) => applyPaymentEvents(events, { store, directory, clock }),
    };
  });
}

const consumerEnv = lazyEnv(
  z.object({
    [ENV.paymentsTableName]: requiredString(),
    [ENV.billingTableName]: requiredString(),
    [ENV.ledgerRetentionDays]: ledgerRetentionDaysEnv(),
  }),
);

/** Production wiring from env, built on the first invocation and reused while warm. */
const defaultDeps = lazy((): PaymentConsumerDeps => {
  const env = consumerEnv();
  const client = defaultDynamoDbClient();
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
  };
});

export const handler = withPowertools(createPaymentConsumer(defaultDeps));
