import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { PAYMENT_INDEXES } from '../functions/adapters/dynamodb/payment-table-schema.ts';
import { ENV } from '../functions/commons/env-names.ts';
import { PAYMENT_ROUTES } from '../functions/commons/routes.ts';
import { BillingFunction } from './billing-function.ts';
import type { BillingHttpApi, RouteThrottle } from './billing-http-api.ts';

export interface PaymentReadApiProps {
  readonly api: BillingHttpApi;
  readonly paymentsTable: ITable;
  /** Read for one thing: whether a user with no payments has a profile (else 404). */
  readonly billingTable: ITable;
  /** The key the history and report cursors are sealed with. */
  readonly cursorSigningKey: ISecret;
  /** @default 50 requests/s, burst 100 per route */
  readonly throttle?: RouteThrottle;
}

/**
 * The payment lookups and reports of DESIGN §8.1 for the app backend and operators,
 * IAM-authorised (SigV4). One function serves the five GET routes: each answer is a
 * key lookup or an index query, so the function may only GetItem, BatchGetItem and
 * Query the payments table and its indexes, and GetItem a profile in the billing table
 * (an empty history of a user with no profile is a 404).
 */
export class PaymentReadApi extends Construct {
  public readonly handler: BillingFunction;

  constructor(scope: Construct, id: string, props: PaymentReadApiProps) {
    super(scope, id);
    this.handler = new BillingFunction(this, 'Handler', {
      entry: 'functions/payment-read.ts',
      serviceName: 'payment-read',
      description: 'Payment lookups, user payment history and payment reports',
    })
      .bindTable(
        ENV.paymentsTableName,
        props.paymentsTable,
        ['GetItem', 'BatchGetItem', 'Query'],
        PAYMENT_INDEXES.map((index) => index.indexName),
      )
      .bindTable(ENV.billingTableName, props.billingTable, ['GetItem'])
      .bindSecretReader(ENV.cursorKeySecretArn, props.cursorSigningKey);

    const routes: [string, string][] = [
      ['PaymentById', PAYMENT_ROUTES.payment],
      ['UserPayments', PAYMENT_ROUTES.userPayments],
      ['RefundsReport', PAYMENT_ROUTES.refundsReport],
      ['PaymentsReport', PAYMENT_ROUTES.paymentsReport],
      ['DailySummary', PAYMENT_ROUTES.dailySummary],
    ];
    for (const [routeId, path] of routes) {
      props.api.addRoute(routeId, {
        method: HttpMethod.GET,
        path,
        handler: this.handler.function,
        authorizer: new HttpIamAuthorizer(),
        throttle: props.throttle ?? { rateLimit: 50, burstLimit: 100 },
      });
    }
  }
}
