import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { BillingTables } from './billing-tables.ts';
import { StripeEventQueue } from './stripe-event-queue.ts';
import {
  SUBSCRIPTION_CONSUMER_BATCHING_WINDOW,
  SUBSCRIPTION_CONSUMER_TIMEOUT,
} from './subscription-processing.ts';
import { WebhookSigningSecret } from './webhook-signing-secret.ts';

/**
 * The stateful half: tables, the event queue and its DLQ, and the signing secret.
 * Kept apart from the functions so redeploying code never risks replacing data.
 */
export class BillingDataStack extends Stack {
  public readonly tables: BillingTables;
  public readonly events: StripeEventQueue;
  public readonly signingSecret: WebhookSigningSecret;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.tables = new BillingTables(this, 'Tables');
    this.events = new StripeEventQueue(this, 'StripeEvents', {
      consumerTimeout: SUBSCRIPTION_CONSUMER_TIMEOUT,
      consumerBatchingWindow: SUBSCRIPTION_CONSUMER_BATCHING_WINDOW,
    });
    this.signingSecret = new WebhookSigningSecret(this, 'WebhookSigningSecret');

    new CfnOutput(this, 'WebhookSecretArn', {
      value: this.signingSecret.secret.secretArn,
      description: 'Put the Stripe signing secret (whsec_...) here after deploy',
    });
    new CfnOutput(this, 'EventQueueUrl', { value: this.events.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.events.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'BillingTableName', { value: this.tables.billing.tableName });
    new CfnOutput(this, 'EventsTableName', { value: this.tables.events.tableName });
  }
}
