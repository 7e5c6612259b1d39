import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import { BillingFunction } from './billing-function.ts';
import type { BillingHttpApi, RouteThrottle } from './billing-http-api.ts';

export const WEBHOOK_PATH = '/webhooks/stripe';

export interface WebhookIngressProps {
  readonly api: BillingHttpApi;
  /** Where verified events go; the function may only SendMessage to it. */
  readonly queue: IQueue;
  /** The Stripe signing secret; the function may only read it. */
  readonly signingSecret: ISecret;
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

  constructor(scope: Construct, id: string, props: WebhookIngressProps) {
    super(scope, id);
    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/webhook-ingress.ts',
      serviceName: 'webhook-ingress',
      description: 'Verifies Stripe webhooks and enqueues them',
    })
      .bindQueueSender(ENV.eventQueueUrl, props.queue)
      .bindSecretReader(ENV.webhookSecretArn, props.signingSecret);

    props.api.addRoute('StripeWebhook', {
      method: HttpMethod.POST,
      path: WEBHOOK_PATH,
      handler: this.handler.function,
      throttle: props.throttle ?? { rateLimit: 100, burstLimit: 200 },
    });
    this.url = `${props.api.url}${WEBHOOK_PATH.slice(1)}`;
  }
}
