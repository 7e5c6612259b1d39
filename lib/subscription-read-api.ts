import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import { SUBSCRIPTION_READ_PATH } from '../functions/commons/routes.ts';
import { BillingFunction } from './billing-function.ts';
import type { BillingHttpApi, RouteThrottle } from './billing-http-api.ts';

export interface SubscriptionReadApiProps {
  readonly api: BillingHttpApi;
  readonly billingTable: ITable;
  /** @default 50 requests/s, burst 100 */
  readonly throttle?: RouteThrottle;
}

/**
 * `GET /users/{userId}/subscription` for the app's backend, authenticated with IAM
 * (SigV4). Reads one item: the function may only GetItem on the billing table.
 */
export class SubscriptionReadApi extends Construct {
  public readonly handler: BillingFunction;

  constructor(scope: Construct, id: string, props: SubscriptionReadApiProps) {
    super(scope, id);
    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/subscription-read.ts',
      serviceName: 'subscription-read',
      description: "Returns a user's current subscription and tier",
    }).bindTable(ENV.billingTableName, props.billingTable, ['GetItem']);

    props.api.addRoute('SubscriptionRead', {
      method: HttpMethod.GET,
      path: SUBSCRIPTION_READ_PATH,
      handler: this.handler.function,
      authorizer: new HttpIamAuthorizer(),
      throttle: props.throttle ?? { rateLimit: 50, burstLimit: 100 },
    });
  }
}
