import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import type { CreditAllowances } from '../functions/core/credits/allowances.ts';
import type { PriceTierMap } from '../functions/core/shared/tiers.ts';
import { BillingFunction } from './billing-function.ts';
import type { EventFamilyQueue } from './event-family-queue.ts';

export interface SubscriptionProcessingProps {
  /** The subscriptions family's queue; its consumer settings are used as they are. */
  readonly events: EventFamilyQueue;
  readonly billingTable: ITable;
  readonly ledgerTable: ITable;
  readonly priceTierMap: PriceTierMap;
  /** A new profile's first credit refresh uses these (firstRefresh). */
  readonly creditAllowances: CreditAllowances;
  readonly ledgerRetentionDays: number;
}

/**
 * The consumer of the subscriptions family: applies customer, subscription and
 * invoice events to accounts and profiles, with partial batch failures and the
 * family's own queue, DLQ and concurrency (see CONSUMER_SETTINGS).
 */
export class SubscriptionProcessing extends Construct {
  public readonly handler: BillingFunction;

  constructor(scope: Construct, id: string, props: SubscriptionProcessingProps) {
    super(scope, id);
    const { consumer } = props.events;
    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/subscription-consumer.ts',
      serviceName: 'subscription-consumer',
      description: 'Applies Stripe subscription events to DynamoDB',
      timeout: consumer.timeout,
      memorySize: consumer.memorySize,
    })
      // TransactWriteItems is authorised per item action, hence no TransactWriteItems here.
      .bindTable(ENV.billingTableName, props.billingTable, [
        'GetItem',
        'BatchGetItem',
        'PutItem',
        'UpdateItem',
      ])
      // The consumer only appends ledger pages; operators read them.
      .bindTable(ENV.subscriptionLedgerTableName, props.ledgerTable, ['PutItem'])
      .setEnvironment(ENV.priceTierMap, JSON.stringify(props.priceTierMap))
      .setEnvironment(ENV.creditAllowances, JSON.stringify(props.creditAllowances))
      .setEnvironment(ENV.ledgerRetentionDays, String(props.ledgerRetentionDays))
      .bindQueueConsumer(props.events);
  }
}
