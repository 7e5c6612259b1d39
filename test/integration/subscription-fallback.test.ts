/**
 * The read route's Stripe fallback as it runs: the handler, DynamoDB Local, and the real
 * Stripe SDK against the fake Stripe server, under the call policy (timeout, retries on
 * 429/5xx only, breaker, deadline). Stripe's own messages never reach the caller.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoDbStripeLookupLeases } from '../../functions/adapters/dynamodb/dynamodb-lookup-leases.ts';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { StaticSecretString } from '../../functions/adapters/secrets/secret-string.ts';
import {
  createStripeClient,
  parseStripeApiUrl,
  StripeClientSource,
} from '../../functions/adapters/stripe/stripe-client.ts';
import { StripeCustomerLookup } from '../../functions/adapters/stripe/stripe-customer-source.ts';
import {
  type StripeCallObserver,
  StripeCallPolicy,
  type StripeCallPolicyOptions,
} from '../../functions/adapters/stripe/stripe-resilience.ts';
import { systemClock } from '../../functions/core/shared/clock.ts';
import { SubscriptionReadThrough } from '../../functions/core/subscriptions/read-through.ts';
import { createSubscriptionConsumer } from '../../functions/subscription-consumer.ts';
import { createSubscriptionReadHandler } from '../../functions/subscription-read.ts';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';
import { httpApiEvent } from '../helpers/apigw-events.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { sqsBatch } from '../helpers/sqs-events.ts';

const context = { functionName: 'subscription-read', awsRequestId: 'test' } as Context;
const PRICE = 'price_gold_monthly';
const priceTierMap = { [PRICE]: 'gold' as const };

let stripe: FakeStripe;
let tables: Awaited<ReturnType<typeof createBillingTables>>;
let dynamo: ReturnType<typeof emulatorClients>['dynamo'];

beforeAll(async () => {
  stripe = await startFakeStripe();
  ({ dynamo } = emulatorClients());
  tables = await createBillingTables(dynamo);
});
afterAll(async () => {
  await stripe.close();
});
afterEach(() => {
  stripe.clearFaults();
  stripe.setLatency(0);
});

const observed = { calls: 0, opened: 0, rejected: 0 };
const observer: StripeCallObserver = {
  call: () => {
    observed.calls += 1;
  },
  circuitOpened: () => {
    observed.opened += 1;
  },
  circuitRejected: () => {
    observed.rejected += 1;
  },
};

/** The route with its own breaker (tests must not share one). */
function route(policy: StripeCallPolicyOptions = {}, logger?: Logger) {
  const store = new DynamoDbSubscriptionStore({ client: dynamo, ...tables });
  const reader = new DynamoDbUserViewReader({
    client: dynamo,
    billingTableName: tables.billingTableName,
  });
  const calls = new StripeCallPolicy(
    { initialBackoffMs: 5, maxBackoffMs: 20, ...policy },
    observer,
  );
  const key = new StaticSecretString(stripe.secretKey, 'key', (message) => new Error(message));
  const readThrough = new SubscriptionReadThrough({
    reader,
    source: new StripeCustomerLookup({
      clients: new StripeClientSource(key, parseStripeApiUrl(stripe.url)),
      calls,
    }),
    store,
    leases: new DynamoDbStripeLookupLeases({
      client: dynamo,
      billingTableName: tables.billingTableName,
    }),
    clock: systemClock,
    priceTierMap,
  });
  const handler = createSubscriptionReadHandler({
    reader,
    readThrough,
    ...(logger ? { logger } : {}),
  });
  const get = (userId: string) =>
    handler(
      httpApiEvent({
        path: `/users/${userId}/subscription`,
        routeKey: 'GET /users/{userId}/subscription',
        pathParameters: { userId },
      }),
      context,
    );
  return { get, calls, store };
}

let users = 0;
/** A user Stripe knows (customer with metadata.userId and a gold subscription) that the store does not. */
function stripeOnlyUser(): { userId: string; customerId: string; subscriptionId: string } {
  users += 1;
  const userId = `fallback-${Date.now()}-${users}`;
  const customerId = stripe.createCustomer({ metadata: { userId } }).data.object.id;
  const subscriptionId = stripe.createSubscription({ customer: customerId, priceId: PRICE }).data
    .object.id;
  return { userId, customerId, subscriptionId };
}

const stripeRequests = (userId: string) =>
  stripe.requests.filter((request) => JSON.stringify(request.params).includes(userId)).length;

describe('GET /users/{userId}/subscription on a store miss', () => {
  it('asks Stripe once, answers 200, and answers the next reads from the store', async () => {
    const { get } = route();
    const { userId, customerId, subscriptionId } = stripeOnlyUser();
    const first = await get(userId);
    expect(first.statusCode).toBe(200);
    expect(JSON.parse(first.body)).toMatchObject({
      userId,
      tier: 'gold',
      status: 'active',
      stripeCustomerId: customerId,
      subscriptionId,
      priceId: PRICE,
    });
    expect(stripeRequests(userId)).toBe(1);
    // A fresh instance (another Lambda) reads it from DynamoDB: no Stripe call ever again.
    const second = await route().get(userId);
    expect(second.statusCode).toBe(200);
    expect(JSON.parse(second.body)).toEqual(JSON.parse(first.body));
    expect(stripeRequests(userId)).toBe(1);
  });

  it('finds what was created through the Stripe SDK itself (the fake speaks the API)', async () => {
    const sdk = createStripeClient(stripe.secretKey, parseStripeApiUrl(stripe.url));
    const userId = `fallback-sdk-${Date.now()}`;
    const customer = await sdk.customers.create({ metadata: { userId } });
    const subscription = await sdk.subscriptions.create({
      customer: customer.id,
      items: [{ price: PRICE }],
    });
    const response = await route().get(userId);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({
      tier: 'gold',
      stripeCustomerId: customer.id,
      subscriptionId: subscription.id,
    });
    // Cancelled through the API: the event lands in the events list for a replay.
    await sdk.subscriptions.cancel(subscription.id);
    const listed = await sdk.events.list({ types: ['customer.subscription.deleted'], limit: 100 });
    expect(listed.data.map((event) => (event.data.object as { id: string }).id)).toContain(
      subscription.id,
    );
  });

  it('answers 404 for a user Stripe does not know either', async () => {
    const response = await route().get('fallback-nobody');
    expect(response.statusCode).toBe(404);
    expect(JSON.parse(response.body).error.code).toBe('user_not_found');
  });

  it('makes one Stripe call for 20 concurrent misses', async () => {
    const { get } = route();
    const { userId } = stripeOnlyUser();
    stripe.setLatency(50);
    const responses = await Promise.all(Array.from({ length: 20 }, () => get(userId)));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(20).fill(200));
    expect(stripeRequests(userId)).toBe(1);
  });

  it('makes one Stripe call for 20 concurrent misses in 20 instances (each Lambda instance its own process)', async () => {
    const instances = Array.from({ length: 20 }, () => route());
    const { userId } = stripeOnlyUser();
    stripe.setLatency(50);
    const responses = await Promise.all(instances.map(({ get }) => get(userId)));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(20).fill(200));
    expect(new Set(responses.map((response) => response.body)).size).toBe(1);
    expect(stripeRequests(userId)).toBe(1);
  });

  it('answers 404 in every instance after one Stripe search for a user Stripe does not know', async () => {
    const instances = Array.from({ length: 5 }, () => route());
    const userId = `fallback-nobody-shared-${Date.now().toString(36)}`;
    stripe.setLatency(50);
    const responses = await Promise.all(instances.map(({ get }) => get(userId)));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(5).fill(404));
    // A later miss in another instance is answered from the outcome left, without asking.
    expect((await route().get(userId)).statusCode).toBe(404);
    expect(stripeRequests(userId)).toBe(1);
  });

  it('answers 503 with Retry-After in every instance when the one lookup finds Stripe down', async () => {
    const instances = Array.from({ length: 5 }, () => route());
    const { userId } = stripeOnlyUser();
    stripe.setLatency(20);
    stripe.injectFault({ kind: 'status', status: 500 }, 3, '/v1/customers');
    const responses = await Promise.all(instances.map(({ get }) => get(userId)));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(5).fill(503));
    for (const response of responses)
      expect(Number(response.headers?.['retry-after'])).toBeGreaterThan(0);
    // One lookup: its three attempts, not three per instance.
    expect(stripeRequests(userId)).toBe(3);
  });

  it('retries a 429 and answers 200', async () => {
    const { get } = route();
    const { userId } = stripeOnlyUser();
    stripe.injectFault({ kind: 'status', status: 429 }, 1, '/v1/customers');
    const response = await get(userId);
    expect(response.statusCode).toBe(200);
    expect(stripeRequests(userId)).toBe(2);
  });

  it('does not retry a 400, and answers a generic 500 without Stripe’s message', async () => {
    const { get } = route();
    const { userId } = stripeOnlyUser();
    stripe.injectFault(
      { kind: 'status', status: 400, type: 'invalid_request_error', code: 'parameter_unknown' },
      1,
      '/v1/customers',
    );
    const response = await get(userId);
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toMatch(/Injected|parameter_unknown|stripe/i);
    expect(stripeRequests(userId)).toBe(1);
  });

  it('answers 503 with Retry-After when Stripe keeps failing, opens the breaker, then half-opens and closes', async () => {
    const log = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
    const { get, calls } = route(
      { breakerThreshold: 3, breakerOpenMs: 300 },
      log as unknown as Logger,
    );
    const { userId } = stripeOnlyUser();
    const openedBefore = observed.opened;
    stripe.injectFault({ kind: 'status', status: 500 }, 3, '/v1/customers');
    const failed = await get(userId);
    expect(failed.statusCode).toBe(503);
    expect(Number(failed.headers['retry-after'])).toBeGreaterThan(0);
    expect(failed.body).not.toMatch(/Injected/);
    expect(stripeRequests(userId)).toBe(3);
    expect(calls.state).toBe('open');
    expect(observed.opened).toBe(openedBefore + 1);

    // Open: answered at once, Stripe not called.
    const startedAt = performance.now();
    const refused = await get(userId);
    expect(refused.statusCode).toBe(503);
    expect(performance.now() - startedAt).toBeLessThan(100);
    expect(stripeRequests(userId)).toBe(3);
    // The failure that opened the breaker is an error with its cause; while it stays open
    // (alarmed on already), each refusal is a one-line warning, not an error per request.
    expect(log.error).toHaveBeenCalledTimes(1);
    expect(log.warn).toHaveBeenCalledWith(
      'Request answered 503',
      expect.objectContaining({ reason: expect.stringContaining('circuit open') }),
    );

    // After the open period one trial call goes through; it succeeds and closes the breaker.
    // (cockatiel moves to half-open on that call, not on a timer.)
    await new Promise((resolve) => setTimeout(resolve, 350));
    const recovered = await get(userId);
    expect(recovered.statusCode).toBe(200);
    expect(calls.state).toBe('closed');
    expect(stripeRequests(userId)).toBe(4);
  });

  it('answers 503 at the deadline when Stripe hangs', async () => {
    const { get } = route({ attemptTimeoutMs: 150, deadlineMs: 400 });
    const { userId } = stripeOnlyUser();
    stripe.injectFault({ kind: 'hang' }, 5, '/v1/customers');
    const startedAt = performance.now();
    const response = await get(userId);
    const elapsed = performance.now() - startedAt;
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBeDefined();
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1_500);
  });

  it('keeps the snapshot against an older webhook and takes a newer one', async () => {
    const { get } = route();
    const { userId, subscriptionId } = stripeOnlyUser();
    const stored = stripe.subscriptions.get(subscriptionId)!;
    expect((await get(userId)).statusCode).toBe(200);
    const snapshotAt = Math.floor(Date.now() / 1000);

    const consumer = createSubscriptionConsumer({
      store: new DynamoDbSubscriptionStore({ client: dynamo, ...tables }),
      priceTierMap,
    });
    const update = (id: string, created: number, status: string) =>
      JSON.stringify({
        id,
        object: 'event',
        type: 'customer.subscription.updated',
        created,
        data: { object: { ...stored, status } },
      });
    // An event from before the snapshot (delivered late) cannot undo it.
    await consumer(sqsBatch([update(`evt_old_${userId}`, snapshotAt - 60, 'incomplete')]), context);
    expect(JSON.parse((await get(userId)).body).status).toBe('active');
    // A later change wins as always.
    await consumer(sqsBatch([update(`evt_new_${userId}`, snapshotAt + 60, 'past_due')]), context);
    expect(JSON.parse((await get(userId)).body).status).toBe('past_due');
    expect(stripeRequests(userId)).toBe(1);
  });
});
