import { Annotations, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { CreditAllowances } from '../functions/core/credits/allowances.ts';
import type { FreeHabitLimits } from '../functions/core/penalties/habits.ts';
import type { PriceTierMap } from '../functions/core/shared/tiers.ts';
import { ApiAccess } from './api-access.ts';
import type { BillingDataStack } from './billing-data-stack.ts';
import { BillingHttpApi } from './billing-http-api.ts';
import { CreditRefresh } from './credit-refresh.ts';
import { Observability } from './observability.ts';
import { PaymentProcessing } from './payment-processing.ts';
import { PaymentReadApi } from './payment-read-api.ts';
import { Penalties } from './penalties.ts';
import { SubscriptionProcessing } from './subscription-processing.ts';
import { SubscriptionReadApi } from './subscription-read-api.ts';
import { WebhookIngress } from './webhook-ingress.ts';

export interface BillingServiceStackProps extends StackProps {
  readonly data: BillingDataStack;
  readonly priceTierMap: PriceTierMap;
  readonly ledgerRetentionDays: number;
  readonly creditAllowances: CreditAllowances;
  readonly freeHabitLimits: FreeHabitLimits;
  readonly assessmentDeadlineHour: number;
  /** Base URL of the Stripe API for the penalty settlement; unset: Stripe's own. */
  readonly stripeApiUrl?: string;
  /** Roles given invoke rights on the user routes, and on the admin and report routes. */
  readonly appBackendRoleArns?: readonly string[];
  readonly operatorRoleArns?: readonly string[];
  /** The Stripe mode the webhook applies events of; absent: both. */
  readonly stripeMode?: 'live' | 'test';
  readonly alarmEmail?: string;
}

/** The stateless half: functions, the HTTP API, the event source mappings, observability. */
export class BillingServiceStack extends Stack {
  public readonly api: BillingHttpApi;
  public readonly webhook: WebhookIngress;
  public readonly processing: SubscriptionProcessing;
  public readonly paymentProcessing: PaymentProcessing;
  public readonly readApi: SubscriptionReadApi;
  public readonly access: ApiAccess;
  public readonly paymentReadApi: PaymentReadApi;
  public readonly credits: CreditRefresh;
  public readonly penalties: Penalties;
  public readonly observability: Observability;

  constructor(scope: Construct, id: string, props: BillingServiceStackProps) {
    super(scope, id, props);
    const { data } = props;
    const { subscriptions, payments } = data.eventQueues;

    this.api = new BillingHttpApi(this, 'HttpApi');
    this.webhook = new WebhookIngress(this, 'WebhookIngress', {
      api: this.api,
      queues: Object.values(data.eventQueues),
      signingSecret: data.signingSecret.secret,
      ...(props.stripeMode ? { stripeMode: props.stripeMode } : {}),
    });
    if (!props.stripeMode) {
      Annotations.of(this).addWarningV2(
        'billing:no-stripe-mode',
        'No stripeMode is set: the webhook applies events of live and test mode alike (set -c stripeMode=live for production).',
      );
    }
    this.processing = new SubscriptionProcessing(this, 'SubscriptionProcessing', {
      events: subscriptions,
      billingTable: data.tables.billing,
      ledgerTable: data.tables.subscriptionLedger,
      priceTierMap: props.priceTierMap,
      creditAllowances: props.creditAllowances,
      ledgerRetentionDays: props.ledgerRetentionDays,
    });
    this.paymentProcessing = new PaymentProcessing(this, 'PaymentProcessing', {
      events: payments,
      paymentsTable: data.paymentTables.payments,
      billingTable: data.tables.billing,
      penaltiesTable: data.penaltyTables.penalties,
      ledgerRetentionDays: props.ledgerRetentionDays,
    });
    this.readApi = new SubscriptionReadApi(this, 'SubscriptionReadApi', {
      api: this.api,
      billingTable: data.tables.billing,
      ledgerTable: data.tables.subscriptionLedger,
      ledgerRetentionDays: props.ledgerRetentionDays,
      priceTierMap: props.priceTierMap,
      creditAllowances: props.creditAllowances,
      stripeApiKey: data.stripeApiKey.secret,
      ...(props.stripeApiUrl ? { stripeApiUrl: props.stripeApiUrl } : {}),
    });
    this.paymentReadApi = new PaymentReadApi(this, 'PaymentReadApi', {
      api: this.api,
      paymentsTable: data.paymentTables.payments,
      billingTable: data.tables.billing,
      cursorSigningKey: data.cursorSigningKey.secret,
    });
    this.credits = new CreditRefresh(this, 'CreditRefresh', {
      api: this.api,
      billingTable: data.tables.billing,
      refreshQueue: data.creditRefreshQueue,
      allowances: props.creditAllowances,
    });
    this.penalties = new Penalties(this, 'Penalties', {
      api: this.api,
      penaltiesTable: data.penaltyTables.penalties,
      billingTable: data.tables.billing,
      stripeApiKey: data.stripeApiKey.secret,
      cursorSigningKey: data.cursorSigningKey.secret,
      freeHabitLimits: props.freeHabitLimits,
      assessmentDeadlineHour: props.assessmentDeadlineHour,
      ...(props.stripeApiUrl ? { stripeApiUrl: props.stripeApiUrl } : {}),
    });
    // After every route: the invoke policies list them.
    this.access = new ApiAccess(this, 'ApiAccess', {
      api: this.api,
      appBackendRoleArns: props.appBackendRoleArns ?? [],
      operatorRoleArns: props.operatorRoleArns ?? [],
    });
    this.observability = new Observability(this, 'Observability', {
      functions: [
        this.webhook.handler,
        this.processing.handler,
        this.paymentProcessing.handler,
        this.readApi.handler,
        this.paymentReadApi.handler,
        this.credits.planner,
        this.credits.worker,
        this.credits.reader,
        this.credits.admin,
        this.penalties.api,
        this.penalties.admin,
        this.penalties.assessor,
        this.penalties.settlementSweeper,
      ],
      credits: {
        refreshQueue: data.creditRefreshQueue,
        planner: this.credits.planner,
        worker: this.credits.worker,
        scheduleDeadLetterQueue: this.credits.scheduleDeadLetterQueue,
      },
      penalties: {
        api: this.penalties.api,
        admin: this.penalties.admin,
        assessor: this.penalties.assessor,
        settlementSweeper: this.penalties.settlementSweeper,
        paymentConsumer: this.paymentProcessing.handler,
        scheduleDeadLetterQueue: this.penalties.scheduleDeadLetterQueue,
      },
      webhook: this.webhook.handler,
      consumers: [
        { events: subscriptions, handler: this.processing.handler },
        { events: payments, handler: this.paymentProcessing.handler },
      ],
      httpApi: this.api.httpApi,
      stripe: {
        subscriptionRead: this.readApi.handler,
        callers: [this.readApi.handler, this.penalties.api, this.penalties.settlementSweeper],
      },
      ...(props.alarmEmail ? { alarmEmail: props.alarmEmail } : {}),
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url });
    new CfnOutput(this, 'WebhookUrl', {
      value: this.webhook.url,
      description: 'Stripe webhook endpoint URL',
    });
    new CfnOutput(this, 'DashboardName', { value: this.observability.dashboard.dashboardName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.observability.alarmTopic.topicArn });
    // The operators' replay and resync refuse a Stripe key of the other mode (local/operations/target.ts).
    if (props.stripeMode) new CfnOutput(this, 'StripeMode', { value: props.stripeMode });
    // The operators' `dlq:list` lists these (local/operations/target.ts).
    new CfnOutput(this, 'CreditRefreshScheduleDeadLetterQueueUrl', {
      value: this.credits.scheduleDeadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'PenaltyAssessmentScheduleDeadLetterQueueUrl', {
      value: this.penalties.scheduleDeadLetterQueue.queueUrl,
    });
    // The operators' `resync` writes what the subscription consumer writes, so it needs
    // the configuration the functions were deployed with (local/operations/target.ts):
    // without the map, every price lacking `metadata.tier` would resolve to free.
    new CfnOutput(this, 'PriceTierMap', {
      value: JSON.stringify(props.priceTierMap),
      description: 'Stripe price id -> tier the functions use (priceTierMap context), as JSON',
    });
    new CfnOutput(this, 'CreditAllowances', {
      value: JSON.stringify(props.creditAllowances),
      description: 'Tier -> daily credits the functions use (creditAllowances context), as JSON',
    });
    new CfnOutput(this, 'LedgerRetentionDays', {
      value: String(props.ledgerRetentionDays),
      description: 'Days a ledger page is kept (ledgerRetentionDays context)',
    });
    // Said plainly at deploy time: alarms without a subscriber reach no one.
    new CfnOutput(this, 'AlarmNotifications', {
      value: props.alarmEmail
        ? `alarms e-mail ${props.alarmEmail} (confirm the subscription e-mail)`
        : 'NONE: no one is notified of alarms; deploy with -c alarmEmail=... or subscribe to AlarmTopicArn',
    });
    if (!props.alarmEmail) {
      Annotations.of(this).addWarningV2(
        'billing:no-alarm-subscriber',
        'No alarmEmail is set: alarms go to an SNS topic with no subscriber, so no one is notified.',
      );
    }
  }
}
