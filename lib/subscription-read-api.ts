import { Duration } from 'aws-cdk-lib';
import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import { SUBSCRIPTION_READ_PATH } from '../functions/commons/routes.ts';
import type { CreditAllowances } from '../functions/core/credits/allowances.ts';
import type { PriceTierMap } from '../functions/core/shared/tiers.ts';
import { BillingFunction } from './billing-function.ts';
import type { BillingHttpApi, RouteThrottle } from './billing-http-api.ts';

export interface SubscriptionReadApiProps {
  readonly api: BillingHttpApi;
  readonly billingTable: ITable;
  /** The fallback's snapshot commits a ledger page, like the consumer. */
  readonly ledgerTable: ITable;
  readonly ledgerRetentionDays: number;
  readonly priceTierMap: PriceTierMap;
  /** A new profile's first credit refresh uses these (firstRefresh). */
  readonly creditAllowances: CreditAllowances;
  /** The Stripe secret API key the fallback reads customers with. */
  readonly stripeApiKey: ISecret;
  /** Base URL of the Stripe API; unset: Stripe's own. */
  readonly stripeApiUrl?: string;
  /** @default 50 requests/s, burst 100 */
  readonly throttle?: RouteThrottle;
}

/**
 * `GET /users/{userId}/subscription` for the app's backend, authenticated with IAM
 * (SigV4). A hit reads one item. A miss asks Stripe once (read-through fallback) and
 * commits the answer as a snapshot through the subscription store, so the function has
 * the consumer's write grants on the billing and ledger tables, and reads the Stripe key.
 */
export class SubscriptionReadApi extends Construct {
  public readonly handler: BillingFunction;

  constructor(scope: Construct, id: string, props: SubscriptionReadApiProps) {
    super(scope, id);
    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/subscription-read.ts',
      serviceName: 'subscription-read',
      description: "Returns a user's current subscription and tier",
      // Stripe's 10 s deadline, then the snapshot commit, inside API Gateway's 29 s.
      timeout: Duration.seconds(15),
    })
      // The snapshot reads one account (GetItem, consistent), never a batch: no BatchGetItem.
      // TransactWriteItems is authorised per item action (Put account, Update profile).
      .bindTable(ENV.billingTableName, props.billingTable, ['GetItem', 'PutItem', 'UpdateItem'])
      .bindTable(ENV.subscriptionLedgerTableName, props.ledgerTable, ['PutItem'])
      .bindSecretReader(ENV.stripeApiKeySecretArn, props.stripeApiKey)
      .setEnvironment(ENV.priceTierMap, JSON.stringify(props.priceTierMap))
      .setEnvironment(ENV.creditAllowances, JSON.stringify(props.creditAllowances))
      .setEnvironment(ENV.ledgerRetentionDays, String(props.ledgerRetentionDays));
    if (props.stripeApiUrl) this.handler.setEnvironment(ENV.stripeApiUrl, props.stripeApiUrl);

    props.api.addRoute('SubscriptionRead', {
      method: HttpMethod.GET,
      path: SUBSCRIPTION_READ_PATH,
      handler: this.handler.function,
      authorizer: new HttpIamAuthorizer(),
      throttle: props.throttle ?? { rateLimit: 50, burstLimit: 100 },
    });
  }
}
