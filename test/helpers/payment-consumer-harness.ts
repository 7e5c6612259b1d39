/**
 * What the payment store's and consumer's integration tests share: the two tables they
 * write and read (as the stack defines them), the read API over them as the app
 * backend calls it (the view a paid payment answers is `expectedPaymentView`, in
 * payment-fixture-events.ts).
 */
import {
  CreateTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { DynamoDbPaymentStore } from '../../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import { DynamoDbUserProfiles } from '../../functions/adapters/dynamodb/dynamodb-user-profiles.ts';
import {
  createPaymentsTableInput,
  PAYMENT_TTL_ATTRIBUTE,
} from '../../functions/adapters/dynamodb/payment-table-schema.ts';
import { createPaymentReadHandler } from '../../functions/payment-read.ts';
import { httpApiEvent } from './apigw-events.ts';
import { uniqueName } from './aws-clients.ts';
import { testCursorSeal } from './cursor-seal.ts';

export interface PaymentConsumerTables {
  paymentsTableName: string;
  billingTableName: string;
}

/** A payments table as the stack defines it, and a billing table as far as the directory reads it. */
export async function createPaymentConsumerTables(
  dynamo: DynamoDBClient,
  prefix: string,
): Promise<PaymentConsumerTables> {
  const paymentsTableName = uniqueName(`${prefix}-payments`);
  const billingTableName = uniqueName(`${prefix}-billing`);
  await dynamo.send(new CreateTableCommand(createPaymentsTableInput(paymentsTableName)));
  await dynamo.send(
    new UpdateTimeToLiveCommand({
      TableName: paymentsTableName,
      TimeToLiveSpecification: { AttributeName: PAYMENT_TTL_ATTRIBUTE, Enabled: true },
    }),
  );
  await dynamo.send(
    new CreateTableCommand({
      TableName: billingTableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
    }),
  );
  return { paymentsTableName, billingTableName };
}

/** The payment read API over the tables, one method per route the tests read, for one day's reports. */
export function paymentReadRoutes(
  dynamo: DynamoDBClient,
  tables: PaymentConsumerTables,
  day: string,
) {
  const context = { functionName: 'payment-read', awsRequestId: 'test' } as Context;
  const queries = new DynamoDbPaymentStore({
    client: dynamo,
    paymentsTableName: tables.paymentsTableName,
  });
  const profiles = new DynamoDbUserProfiles({
    client: dynamo,
    billingTableName: tables.billingTableName,
  });
  const read = createPaymentReadHandler({ queries, profiles, cursors: testCursorSeal() });
  const get = async (route: string, path: string, query?: Record<string, string>) => {
    const pathParameters: Record<string, string> = {};
    const params: string[] = route.match(/\{(\w+)\}/g) ?? [];
    const values = path.split('/');
    route.split('/').forEach((part, index) => {
      if (params.includes(part))
        pathParameters[part.slice(1, -1)] = decodeURIComponent(values[index]!);
    });
    const response = await read(
      httpApiEvent({
        path,
        routeKey: `GET ${route}`,
        ...(params.length > 0 ? { pathParameters } : {}),
        ...(query ? { queryStringParameters: query } : {}),
      }),
      context,
    );
    return { status: response.statusCode, body: JSON.parse(response.body) as unknown };
  };
  return {
    /** The store the routes read, for what no route shows (the ledger). */
    store: queries,
    payment: (id: string) => get('/payments/{id}', `/payments/${id}`),
    userPayments: (userId: string) => get('/users/{userId}/payments', `/users/${userId}/payments`),
    summary: (date = day) => get('/reports/daily-summary', '/reports/daily-summary', { date }),
    refunds: () => get('/reports/refunds', '/reports/refunds', { from: day, to: day }),
    paid: (status: string) =>
      get('/reports/payments', '/reports/payments', { status, paidFrom: day, paidTo: day }),
  };
}
