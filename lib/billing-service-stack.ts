import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { PriceTierMap } from '../functions/core/tiers.ts';
import type { BillingDataStack } from './billing-data-stack.ts';
import { BillingHttpApi } from './billing-http-api.ts';
import { Observability } from './observability.ts';
import { SubscriptionProcessing } from './subscription-processing.ts';
import { SubscriptionReadApi } from './subscription-read-api.ts';
import { WebhookIngress } from './webhook-ingress.ts';

export interface BillingServiceStackProps extends StackProps {
  readonly data: BillingDataStack;
  readonly priceTierMap: PriceTierMap;
  readonly ledgerRetentionDays: number;
  readonly alarmEmail?: string;
}

/** The stateless half: functions, the HTTP API, the event source mapping, observability. */
export class BillingServiceStack extends Stack {
  public readonly api: BillingHttpApi;
  public readonly webhook: WebhookIngress;
  public readonly processing: SubscriptionProcessing;
  public readonly readApi: SubscriptionReadApi;
  public readonly observability: Observability;

  constructor(scope: Construct, id: string, props: BillingServiceStackProps) {
    super(scope, id, props);
    const { data } = props;

    this.api = new BillingHttpApi(this, 'HttpApi');
    this.webhook = new WebhookIngress(this, 'WebhookIngress', {
      api: this.api,
      queue: data.events.queue,
      signingSecret: data.signingSecret.secret,
    });
    this.processing = new SubscriptionProcessing(this, 'SubscriptionProcessing', {
      queue: data.events.queue,
      queueVisibilityTimeout: data.events.visibilityTimeout,
      billingTable: data.tables.billing,
      eventsTable: data.tables.events,
      priceTierMap: props.priceTierMap,
      ledgerRetentionDays: props.ledgerRetentionDays,
    });
    this.readApi = new SubscriptionReadApi(this, 'SubscriptionReadApi', {
      api: this.api,
      billingTable: data.tables.billing,
    });
    this.observability = new Observability(this, 'Observability', {
      functions: [this.webhook.handler, this.processing.handler, this.readApi.handler],
      webhook: this.webhook.handler,
      consumer: this.processing.handler,
      queue: data.events.queue,
      deadLetterQueue: data.events.deadLetterQueue,
      httpApi: this.api.httpApi,
      ...(props.alarmEmail ? { alarmEmail: props.alarmEmail } : {}),
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url });
    new CfnOutput(this, 'WebhookUrl', {
      value: this.webhook.url,
      description: 'Stripe webhook endpoint URL',
    });
    new CfnOutput(this, 'DashboardName', { value: this.observability.dashboard.dashboardName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.observability.alarmTopic.topicArn });
  }
}
