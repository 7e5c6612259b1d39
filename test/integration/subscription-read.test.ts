import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { createSubscriptionConsumer } from '../../functions/subscription-consumer.ts';
import { createSubscriptionReadHandler } from '../../functions/subscription-read.ts';
import { httpApiEvent } from '../helpers/apigw-events.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { loadStripeEvent } from '../helpers/fixtures.ts';
import { sqsBatch } from '../helpers/sqs-events.ts';

const context = { functionName: 'subscription-read', awsRequestId: 'test' } as Context;
let read: ReturnType<typeof createSubscriptionReadHandler>;

const get = (userId: string, method = 'GET') =>
  read(
    httpApiEvent({
      method,
      path: `/users/${encodeURIComponent(userId)}/subscription`,
      routeKey: `${method} /users/{userId}/subscription`,
      pathParameters: { userId },
    }),
    context,
  );

beforeAll(async () => {
  const { dynamo } = emulatorClients();
  const tables = await createBillingTables(dynamo);
  read = createSubscriptionReadHandler({
    reader: new DynamoDbUserViewReader({
      client: dynamo,
      billingTableName: tables.billingTableName,
    }),
  });
  // Real payloads: a subscription-mode checkout links cus_IhGfebO16cMIGN (the
  // customer of the 2020-era subscription fixture) to user-read-1.
  const checkout = loadStripeEvent<{ data: { object: Record<string, unknown> } }>(
    'checkout.session.completed.mode-subscription.WRAPPED.pay-rails',
  );
  checkout.data.object.customer = 'cus_IhGfebO16cMIGN';
  checkout.data.object.client_reference_id = 'user-read-1';
  const subscription = loadStripeEvent('customer.subscription.updated.stripe-sync-engine');
  const consumer = createSubscriptionConsumer({
    store: new DynamoDbSubscriptionStore({ client: dynamo, ...tables }),
    priceTierMap: { price_1IDQm5JDPojXS6LNM31hxKzp: 'bronze' },
  });
  const response = await consumer(
    sqsBatch([JSON.stringify(checkout), JSON.stringify(subscription)]),
    context,
  );
  expect(response.batchItemFailures).toEqual([]);
});

describe('GET /users/{userId}/subscription', () => {
  it('answers the stored view as JSON with the contract fields', async () => {
    const response = await get('user-read-1');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(JSON.parse(response.body)).toEqual({
      userId: 'user-read-1',
      tier: 'bronze',
      status: 'active',
      stripeCustomerId: 'cus_IhGfebO16cMIGN',
      subscriptionId: 'sub_JLEPMp81LApOJl',
      priceId: 'price_1IDQm5JDPojXS6LNM31hxKzp',
      currentPeriodEnd: new Date(1621572344 * 1000).toISOString(),
      cancelAtPeriodEnd: false,
      latestInvoiceOutcome: null,
    });
  });

  it('answers 404 with a JSON error for an unknown user', async () => {
    const response = await get('user-nobody');
    expect(response.statusCode).toBe(404);
    expect(JSON.parse(response.body)).toEqual({
      error: { code: 'user_not_found', message: 'No subscription is known for user user-nobody.' },
    });
  });

  it('answers 400 for a user id that is not a valid id', async () => {
    const response = await get('bad id with spaces');
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error).toEqual({
      code: 'invalid_parameter',
      message: 'userId must be 1-128 letters, digits or . _ : @ | + -.',
    });
    expect((await get('x'.repeat(129))).statusCode).toBe(400);
  });

  it('answers 400 naming an unknown query parameter, as every route does', async () => {
    const response = await read(
      httpApiEvent({
        method: 'GET',
        path: '/users/user-read-1/subscription',
        routeKey: 'GET /users/{userId}/subscription',
        pathParameters: { userId: 'user-read-1' },
        queryStringParameters: { x: '1' },
      }),
      context,
    );
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error).toEqual({
      code: 'unknown_parameter',
      message: 'Unknown query parameter: x.',
    });
  });

  it('answers 405 for another method', async () => {
    const response = await get('user-read-1', 'DELETE');
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('GET');
  });

  it('answers a generic 500 without internals when the table is unreachable', async () => {
    const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
    const broken = createSubscriptionReadHandler({
      reader: new DynamoDbUserViewReader({
        client: new DynamoDBClient({
          endpoint: 'http://127.0.0.1:9',
          region: 'us-east-1',
          credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
          maxAttempts: 1,
        }),
        billingTableName: 'whatever',
      }),
    });
    const response = await broken(
      httpApiEvent({ path: '/users/u1/subscription', pathParameters: { userId: 'u1' } }),
      context,
    );
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|whatever/);
  });
});
