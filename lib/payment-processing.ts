import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import { BillingFunction } from './billing-function.ts';
import type { EventFamilyQueue } from './event-family-queue.ts';
import { PAYMENT_CONSUMER_PENALTY_ACTIONS } from './penalties.ts';

export interface PaymentProcessingProps {
  /** The payments family's queue; its consumer settings are used as they are. */
  readonly events: EventFamilyQueue;
  readonly paymentsTable: ITable;
  /** Read only: the customer → user link the subscription consumer keeps. */
  readonly billingTable: ITable;
  /**
   * The penalties table: after each batch the consumer settles the penalties of every
   * penalty PaymentIntent it recorded (paid once on success, unpaid again on failure).
   * Absent: penalty PaymentIntents are recorded as payments only.
   */
  readonly penaltiesTable?: ITable;
  readonly ledgerRetentionDays: number;
}

/**
 * The consumer of the payments family: records PaymentIntents, charges, refunds and
 * disputes exactly once, then settles the penalties of the penalty PaymentIntents it
 * recorded, with its own queue, DLQ and concurrency, so a flood or a poison record of
 * payments never delays subscriptions (and the other way round).
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
      ])
      .bindTable(ENV.billingTableName, props.billingTable, ['BatchGetItem'])
      .setEnvironment(ENV.ledgerRetentionDays, String(props.ledgerRetentionDays))
      .bindQueueConsumer(props.events);
    if (props.penaltiesTable) {
      // Settling a penalty PaymentIntent (PAYMENT_CONSUMER_PENALTY_ACTIONS says which
      // actions and why). Never credits: the billing table stays read-only here.
      this.handler.bindTable(
        ENV.penaltiesTableName,
        props.penaltiesTable,
        PAYMENT_CONSUMER_PENALTY_ACTIONS,
      );
    }
  }
}
