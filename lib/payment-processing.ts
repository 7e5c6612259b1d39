import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import { BillingFunction } from './billing-function.ts';
import type { EventFamilyQueue } from './event-family-queue.ts';

export interface PaymentProcessingProps {
  /** The payments family's queue; its consumer settings are used as they are. */
  readonly events: EventFamilyQueue;
  readonly paymentsTable: ITable;
  /** Read only: the customer → user link the subscription consumer keeps. */
  readonly billingTable: ITable;
  readonly ledgerRetentionDays: number;
}

/**
 * The consumer of the payments family: records PaymentIntents, charges, refunds and
 * disputes exactly once, with its own queue, DLQ and concurrency, so a flood or a
 * poison record of payments never delays subscriptions (and the other way round).
 */
export class PaymentProcessing extends Construct {
  public readonly handler: BillingFunction;

  constructor(scope: Construct, id: string, props: PaymentProcessingProps) {
    super(scope, id);
    const { consumer } = props.events;
    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/payment-consumer.ts',
      serviceName: 'payment-consumer',
      description: 'Applies Stripe payment, refund and dispute events to DynamoDB',
      timeout: consumer.timeout,
      memorySize: consumer.memorySize,
    })
      .bindTable(ENV.paymentsTableName, props.paymentsTable, [
        'GetItem',
        'BatchGetItem',
        'PutItem',
        'UpdateItem',
        // Charge pointers, put in batches ahead of the transactions.
        'BatchWriteItem',
      ])
      .bindTable(ENV.billingTableName, props.billingTable, ['BatchGetItem'])
      .setEnvironment(ENV.ledgerRetentionDays, String(props.ledgerRetentionDays))
      .bindQueueConsumer(props.events);
  }
}
