import { HttpMethod, type HttpRoute } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ENV, EVENT_QUEUE_URL_ENV } from '../functions/commons/env-names.ts';
import { WEBHOOK_PATH } from '../functions/commons/routes.ts';
import { BillingFunction } from './billing-function.ts';
import type { BillingHttpApi, RouteThrottle } from './billing-http-api.ts';
import type { EventFamilyQueue } from './event-family-queue.ts';

export interface WebhookIngressProps {
  readonly api: BillingHttpApi;
  /** Every family's queue: verified events go to those of the families that consume them. */
  readonly queues: readonly EventFamilyQueue[];
  /** The Stripe signing secret; the function may only read it. */
  readonly signingSecret: ISecret;
  /** The Stripe mode whose events are applied; the other's are acknowledged and counted. */
  readonly stripeMode?: 'live' | 'test';
  /** @default 100 requests/s, burst 200 (Stripe delivers in bursts after an outage) */
  readonly throttle?: RouteThrottle;
}

/**
 * `POST /webhooks/stripe`: verifies the Stripe signature and enqueues the raw event.
 * No API Gateway authorizer: Stripe cannot sign with SigV4 or a JWT; the signature
 * check in the function is the authentication.
 */
export class WebhookIngress extends Construct {
  public readonly handler: BillingFunction;
  /** Full URL to give Stripe as the webhook endpoint. */
  public readonly url: string;
  /** The one route without an authorizer (cdk-nag APIG4 acknowledged in nag-suppressions.ts). */
  public readonly route: HttpRoute;

  constructor(scope: Construct, id: string, props: WebhookIngressProps) {
    super(scope, id);
    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/webhook-ingress.ts',
      serviceName: 'webhook-ingress',
      description: 'Verifies Stripe webhooks and enqueues them',
    }).bindSecretReader(ENV.webhookSecretArn, props.signingSecret);
    if (props.stripeMode) {
      this.handler.setEnvironment(ENV.stripeLivemode, String(props.stripeMode === 'live'));
    }
    // The function may only SendMessage, and only to the family queues.
    for (const events of props.queues) {
      this.handler.bindQueueSender(EVENT_QUEUE_URL_ENV[events.family], events.queue);
    }

    this.route = props.api.addRoute('StripeWebhook', {
      method: HttpMethod.POST,
      path: WEBHOOK_PATH,
      handler: this.handler.function,
      throttle: props.throttle ?? { rateLimit: 100, burstLimit: 200 },
    });
    this.url = `${props.api.url}${WEBHOOK_PATH.slice(1)}`;
  }
}
