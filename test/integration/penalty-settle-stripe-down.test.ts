/**
 * `POST /users/{userId}/penalties/settle` when Stripe is down (DESIGN §8.3, §8.4): the
 * penalties API handler on DynamoDB Local with the real Stripe gateway against the
 * fake Stripe, failing with 500s until the gateway's circuit breaker opens. Every
 * settle answers 503 with `Retry-After`, never Stripe's message, and changes nothing:
 * not the user's credits, not a penalty's status, not the pending settlement. Once the
 * breaker is open, Stripe is not even called.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import { StaticSecretString } from '../../functions/adapters/secrets/secret-string.ts';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../../functions/adapters/stripe/stripe-client.ts';
import { StripePenaltyPaymentGateway } from '../../functions/adapters/stripe/stripe-penalty-payments.ts';
import { StripeCallPolicy } from '../../functions/adapters/stripe/stripe-resilience.ts';
import { METRIC } from '../../functions/commons/metric-names.ts';
import { assessDate } from '../../functions/core/penalties/assessment.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../functions/core/penalties/habits.ts';
import { saveHabit } from '../../functions/core/penalties/manage-habits.ts';
import { ABANDONED_SETTLEMENT_AFTER_MS } from '../../functions/core/penalties/settlement.ts';
import { createPenaltyApiHandler } from '../../functions/penalty-api.ts';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';
import { penaltySettleEvent } from '../helpers/apigw-events.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { testCursorSeal } from '../helpers/cursor-seal.ts';
import { createPenaltiesTable } from '../helpers/penalty-table.ts';
import { at, fixedClock, settings } from '../unit/penalties/penalty-fixtures.ts';

const context = { functionName: 'test', awsRequestId: 'test' } as Context;
/** Opens after two consecutive failures (one attempt per call), for a minute. */
const BREAKER = { maxAttempts: 1, breakerThreshold: 2, breakerOpenMs: 60_000 };

let dynamo: DynamoDBClient;
let stripe: FakeStripe;
let billingTableName: string;

beforeAll(async () => {
  dynamo = emulatorClients().dynamo;
  stripe = await startFakeStripe();
  ({ billingTableName } = await createBillingTables(dynamo));
});
afterAll(async () => {
  await stripe?.close();
});
afterEach(() => {
  stripe.clearFaults();
  stripe.setLatency(0);
});

let counter = 0;

/**
 * A user with one credit and a Stripe customer, two habits missed on two days (four
 * unpaid penalties, 16.00 USD), and the penalties API on its own penalties table with
 * its own Stripe call policy (so its own breaker) and a clock the test moves.
 */
async function world(options: { settleStripeDeadlineMs?: number } = {}) {
  counter += 1;
  const userId = `u-down-${Date.now().toString(36)}-${counter}`;
  const penaltiesTableName = await createPenaltiesTable(dynamo);
  const store = new DynamoDbPenaltyStore({ client: dynamo, penaltiesTableName, billingTableName });
  const documents = DynamoDBDocumentClient.from(dynamo);
  await documents.send(
    new PutCommand({
      TableName: billingTableName,
      Item: {
        ...billingKeys.profile(userId),
        userId,
        tier: 'gold',
        credits: 1,
        stripeCustomerId: `cus_${userId.replaceAll('-', '')}`,
      },
    }),
  );
  const clock = fixedClock(at('2026-11-01'));
  const habitDeps = { store, clock, freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS };
  await saveHabit({ userId, habitId: 'run' }, settings(), habitDeps);
  await saveHabit(
    { userId, habitId: 'read' },
    settings({ name: 'Read', penaltyAmount: 300 }),
    habitDeps,
  );
  for (const date of ['2026-11-02', '2026-11-03']) {
    clock.time = at(date, '23:30:00');
    await assessDate(date, { store, clock });
  }
  clock.time = at('2026-11-04', '09:00:00');

  const calls = new StripeCallPolicy({ initialBackoffMs: 5, maxBackoffMs: 20, ...BREAKER });
  const gateway = new StripePenaltyPaymentGateway({
    clients: new StripeClientSource(
      new StaticSecretString(stripe.secretKey, 'key', (message) => new Error(message)),
      parseStripeApiUrl(stripe.url),
    ),
    calls,
  });
  const metrics = new Metrics({ namespace: 'Test', serviceName: 'test' });
  const addMetric = vi.spyOn(metrics, 'addMetric');
  const api = createPenaltyApiHandler({
    store,
    cursors: testCursorSeal(),
    gateway,
    clock,
    freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics,
    ...options,
  });
  const settle = async () => {
    const response = await api(penaltySettleEvent(userId), context);
    return {
      status: response.statusCode,
      headers: response.headers ?? {},
      body: JSON.parse(response.body as string),
    };
  };

  /**
   * Everything a settle could change: every item of the penalties table (penalties,
   * the unpaid summary and the pending settlement on the account item, recipients'
   * totals), the user's profile (credits), and the PaymentIntents at Stripe.
   */
  const state = async () => {
    const items: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await dynamo.send(
        new ScanCommand({
          TableName: penaltiesTableName,
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey as never } : {}),
        }),
      );
      items.push(...(page.Items ?? []).map((item) => JSON.stringify(item)));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const { Item: profile } = await documents.send(
      new GetCommand({
        TableName: billingTableName,
        Key: billingKeys.profile(userId),
        ConsistentRead: true,
      }),
    );
    const intents = [...stripe.paymentIntents.values()]
      .filter((intent) => intent.metadata.userId === userId)
      .map((intent) => [intent.id, intent.status]);
    return { penalties: items.sort(), profile, intents };
  };
  const failuresCounted = () =>
    addMetric.mock.calls.filter(([name]) => name === METRIC.penaltySettlementFailures).length;
  const stripeRequests = () => stripe.requests.length;
  return { userId, store, clock, calls, settle, state, failuresCounted, stripeRequests };
}

type World = Awaited<ReturnType<typeof world>>;

/** A 503 as the contract says: Retry-After, a generic error, nothing of Stripe's own. */
function expectUnavailable(response: Awaited<ReturnType<World['settle']>>) {
  expect(response.status).toBe(503);
  expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(response.body.error.code).toBe('service_unavailable');
  expect(JSON.stringify(response.body)).not.toMatch(/stripe|injected|fault|500/i);
}

describe('settle while Stripe is failing and its circuit breaker opens', () => {
  it('answers 503 with Retry-After and changes no credit, penalty or pending settlement; once open, Stripe is not called', async () => {
    const w = await world();
    const before = await w.state();
    expect(before.intents).toEqual([]);
    expect(await w.store.getAccount(w.userId)).toMatchObject({ unpaidCount: 4, pending: null });

    // Stripe answers 500s: each settle fails once and the second opens the breaker.
    stripe.injectFault({ kind: 'status', status: 500 }, 10, '/v1/payment_intents');
    for (let i = 0; i < BREAKER.breakerThreshold; i += 1) {
      expectUnavailable(await w.settle());
      expect(await w.state()).toEqual(before);
    }
    expect(w.calls.state).toBe('open');

    // Open: answered at once from the breaker, with the time until it lets a call through.
    const requests = w.stripeRequests();
    const open = await w.settle();
    expectUnavailable(open);
    expect(Number(open.headers['retry-after'])).toBeGreaterThan(30);
    expect(w.stripeRequests()).toBe(requests);
    expect(await w.state()).toEqual(before);
    const profile = before.profile as { credits: number };
    expect(profile.credits).toBe(1);
    expect(await w.store.getAccount(w.userId)).toMatchObject({
      unpaidCount: 4,
      unpaidAmount: [{ currency: 'usd', amount: 1600 }],
      pending: null,
    });
    // Every 503 is a settlement failure for the alarm.
    expect(w.failuresCounted()).toBe(3);
  });

  it('leaves an abandoned pending settlement pending when its cancel cannot reach Stripe', async () => {
    const w = await world();
    // Stripe up: one credit waives the oldest penalty, the other three are pending.
    const settled = await w.settle();
    expect(settled.status).toBe(200);
    expect(settled.body.creditsUsed).toBe(1);
    const pi: string = settled.body.payment.paymentIntentId;
    const pending = await w.state();
    expect(pending.intents).toEqual([[pi, 'requires_payment_method']]);
    expect(pending.profile).toMatchObject({ credits: 0 });
    expect(await w.store.getAccount(w.userId)).toMatchObject({
      unpaidCount: 0,
      pending: { paymentIntentId: pi },
    });

    // Over an hour later the settlement is taken as abandoned: settling again first
    // cancels its PaymentIntent, and Stripe fails until the breaker opens.
    w.clock.time += ABANDONED_SETTLEMENT_AFTER_MS + 60_000;
    stripe.injectFault({ kind: 'status', status: 500 }, 10, '/v1/payment_intents');
    for (let i = 0; i < BREAKER.breakerThreshold; i += 1) {
      expectUnavailable(await w.settle());
      expect(await w.state()).toEqual(pending);
    }
    expect(w.calls.state).toBe('open');
    const requests = w.stripeRequests();
    expectUnavailable(await w.settle());
    expect(w.stripeRequests()).toBe(requests);
    // Still pending under the same PaymentIntent, still open at Stripe, no credit back.
    expect(await w.state()).toEqual(pending);
    expect(await w.store.getAccount(w.userId)).toMatchObject({
      unpaidCount: 0,
      pending: { paymentIntentId: pi },
    });
    expect(w.failuresCounted()).toBe(3);
  });

  it('answers 503 at the request deadline when Stripe is slow, before any one call would time out, and changes nothing', async () => {
    const w = await world({ settleStripeDeadlineMs: 400 });
    const before = await w.state();
    // Each answer takes 1.5 s: well within one call's 10 s, past the settle's 400 ms.
    stripe.setLatency(1_500);
    const started = Date.now();
    const response = await w.settle();
    const elapsed = Date.now() - started;
    expectUnavailable(response);
    expect(elapsed).toBeLessThan(1_400);
    stripe.setLatency(0);
    // The PaymentIntent may exist at Stripe (its request was sent); nothing of ours moved.
    const after = await w.state();
    expect(after.penalties).toEqual(before.penalties);
    expect(after.profile).toEqual(before.profile);
  });
});
