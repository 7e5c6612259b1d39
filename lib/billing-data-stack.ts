import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { EVENT_FAMILIES, type EventFamilyName } from '../functions/core/shared/event-families.ts';
import { BillingTables } from './billing-tables.ts';
import { CursorSigningKey } from './cursor-signing-key.ts';
import { ConsumedQueue, CREDIT_WORKER_SETTINGS, EventFamilyQueue } from './event-family-queue.ts';
import { PaymentTables } from './payment-tables.ts';
import { PenaltyTables } from './penalty-tables.ts';
import { StripeApiKey } from './stripe-api-key.ts';
import { WebhookSigningSecret } from './webhook-signing-secret.ts';

/** Construct id (and output prefix) of each family's queue. */
const QUEUE_IDS: Record<EventFamilyName, string> = {
  subscriptions: 'SubscriptionEvents',
  payments: 'PaymentEvents',
};

/**
 * The stateful half: tables, one event queue (and DLQ) per event family, the webhook
 * signing secret, the Stripe API key and the cursor signing key. Kept apart from the functions so redeploying
 * code never risks replacing data.
 */
export class BillingDataStack extends Stack {
  public readonly tables: BillingTables;
  public readonly paymentTables: PaymentTables;
  public readonly penaltyTables: PenaltyTables;
  public readonly eventQueues: Readonly<Record<EventFamilyName, EventFamilyQueue>>;
  /** Credit refresh work, planner → worker. */
  public readonly creditRefreshQueue: ConsumedQueue;
  public readonly signingSecret: WebhookSigningSecret;
  /** The Stripe secret API key penalty settlement calls Stripe with. */
  public readonly stripeApiKey: StripeApiKey;
  /** The key the paged routes seal their cursors with. */
  public readonly cursorSigningKey: CursorSigningKey;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.tables = new BillingTables(this, 'Tables');
    this.paymentTables = new PaymentTables(this, 'PaymentTables');
    this.penaltyTables = new PenaltyTables(this, 'PenaltyTables');
    this.eventQueues = Object.fromEntries(
      EVENT_FAMILIES.map((family) => [
        family,
        new EventFamilyQueue(this, QUEUE_IDS[family], { family }),
      ]),
    ) as Record<EventFamilyName, EventFamilyQueue>;
    this.creditRefreshQueue = new ConsumedQueue(this, 'CreditRefreshWork', {
      name: 'credit-refresh',
      consumer: CREDIT_WORKER_SETTINGS,
      // A refresh is for today: work older than a day is replanned by the next run anyway.
      retentionPeriod: Duration.days(1),
    });
    this.signingSecret = new WebhookSigningSecret(this, 'WebhookSigningSecret');
    this.stripeApiKey = new StripeApiKey(this, 'StripeApiKey');
    this.cursorSigningKey = new CursorSigningKey(this, 'CursorSigningKey');

    new CfnOutput(this, 'WebhookSecretArn', {
      value: this.signingSecret.secret.secretArn,
      description: 'Put the Stripe signing secret (whsec_...) here after deploy',
    });
    new CfnOutput(this, 'StripeApiKeySecretArn', {
      value: this.stripeApiKey.secret.secretArn,
      description:
        'Put the Stripe secret API key (sk_..., or a restricted rk_... key) here after deploy',
    });
    for (const family of EVENT_FAMILIES) {
      const events = this.eventQueues[family];
      new CfnOutput(this, `${QUEUE_IDS[family]}QueueUrl`, { value: events.queue.queueUrl });
      new CfnOutput(this, `${QUEUE_IDS[family]}DeadLetterQueueUrl`, {
        value: events.deadLetterQueue.queueUrl,
      });
    }
    new CfnOutput(this, 'CreditRefreshQueueUrl', { value: this.creditRefreshQueue.queue.queueUrl });
    new CfnOutput(this, 'CreditRefreshDeadLetterQueueUrl', {
      value: this.creditRefreshQueue.deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'BillingTableName', { value: this.tables.billing.tableName });
    new CfnOutput(this, 'SubscriptionLedgerTableName', {
      value: this.tables.subscriptionLedger.tableName,
    });
    new CfnOutput(this, 'PaymentsTableName', { value: this.paymentTables.payments.tableName });
    new CfnOutput(this, 'PenaltiesTableName', { value: this.penaltyTables.penalties.tableName });
  }
}
