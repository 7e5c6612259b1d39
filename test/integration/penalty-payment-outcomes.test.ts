/**
 * How a settlement's PaymentIntent ends, through the payments consumer, on DynamoDB
 * Local (the real payment, customer-directory and penalty stores) with the settlement
 * made by the penalties API against the fake Stripe (DESIGN §8.3):
 * `payment_intent.payment_failed` and `payment_intent.canceled` put the settlement's
 * penalties back to `unpaid` and release the user's pending settlement, so a new settle
 * works; `payment_intent.succeeded` delivered twice, in one batch and across batches,
 * with stale `processing` and `payment_failed` events after it, marks the penalties
 * paid once and counts them in the recipients' totals once.
 */
import { randomBytes } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import {
  DynamoDbCustomerDirectory,
  DynamoDbPaymentStore,
} from '../../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import { StaticSecretString } from '../../functions/adapters/secrets/secret-string.ts';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../../functions/adapters/stripe/stripe-client.ts';
import { StripePenaltyPaymentGateway } from '../../functions/adapters/stripe/stripe-penalty-payments.ts';
import { StripeCallPolicy } from '../../functions/adapters/stripe/stripe-resilience.ts';
import { assessDate } from '../../functions/core/penalties/assessment.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../functions/core/penalties/habits.ts';
import { saveHabit } from '../../functions/core/penalties/manage-habits.ts';
import { createPaymentConsumer } from '../../functions/payment-consumer.ts';
import { createPenaltyApiHandler } from '../../functions/penalty-api.ts';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';
import { penaltySettleEvent } from '../helpers/apigw-events.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { testCursorSeal } from '../helpers/cursor-seal.ts';
import { createPenaltiesTable } from '../helpers/penalty-table.ts';
import { sqsBatch } from '../helpers/sqs-events.ts';
import { at, fixedClock, settings } from '../unit/penalties/penalty-fixtures.ts';

const context = { functionName: 'test', awsRequestId: 'test' } as Context;
const quiet = () => ({
  logger: new Logger({ logLevel: 'SILENT' }),
  metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
});

let dynamo: DynamoDBClient;
let stripe: FakeStripe;
let billingTableName: string;
let paymentsTableName: string;

beforeAll(async () => {
  dynamo = emulatorClients().dynamo;
  stripe = await startFakeStripe();
  const tables = await createBillingTables(dynamo);
  billingTableName = tables.billingTableName;
  const payments = tables.byLocalName['billing-suite-payments'];
  if (!payments) throw new Error('the stack model has no payments table');
  paymentsTableName = payments;
});
afterAll(async () => {
  await stripe?.close();
});

let counter = 0;

/** A Stripe event for the fake's PaymentIntent as it is now, with `changes` and a chosen `created`. */
function intentEvent(
  type: string,
  paymentIntentId: string,
  created: number,
  changes: Record<string, unknown> = {},
) {
  const intent = stripe.paymentIntents.get(paymentIntentId);
  if (!intent) throw new Error(`the fake Stripe has no ${paymentIntentId}`);
  return {
    id: `evt_${randomBytes(12).toString('hex')}`,
    object: 'event',
    type,
    created,
    api_version: '2026-04-22.dahlia',
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: { object: { ...structuredClone(intent), ...changes } },
  };
}

/**
 * A user with two habits (run 5.00, read 3.00 USD, both for one recipient) missed on
 * two days: four unpaid penalties, 16.00 USD. Each world has its own penalties table;
 * the billing and payments tables are the file's.
 */
async function world(options: { credits?: number } = {}) {
  counter += 1;
  const userId = `u-outcome-${Date.now().toString(36)}-${counter}`;
  const recipientId = `charity-${userId}`;
  const penaltiesTableName = await createPenaltiesTable(dynamo);
  const store = new DynamoDbPenaltyStore({
    client: dynamo,
    penaltiesTableName,
    billingTableName,
  });
  if (options.credits !== undefined) {
    await DynamoDBDocumentClient.from(dynamo).send(
      new PutCommand({
        TableName: billingTableName,
        Item: { ...billingKeys.profile(userId), userId, tier: 'gold', credits: options.credits },
      }),
    );
  }
  const clock = fixedClock(at('2026-11-01'));
  const habitDeps = { store, clock, freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS };
  await saveHabit({ userId, habitId: 'run' }, settings({ recipientId }), habitDeps);
  await saveHabit(
    { userId, habitId: 'read' },
    settings({ name: 'Read', penaltyAmount: 300, recipientId }),
    habitDeps,
  );
  for (const date of ['2026-11-02', '2026-11-03']) {
    clock.time = at(date, '23:30:00');
    await assessDate(date, { store, clock });
  }
  const ids = {
    read2: `pen_${userId}_read_2026-11-02`,
    run2: `pen_${userId}_run_2026-11-02`,
    read3: `pen_${userId}_read_2026-11-03`,
    run3: `pen_${userId}_run_2026-11-03`,
  };

  const gateway = new StripePenaltyPaymentGateway({
    clients: new StripeClientSource(
      new StaticSecretString(stripe.secretKey, 'key', (message) => new Error(message)),
      parseStripeApiUrl(stripe.url),
    ),
    calls: new StripeCallPolicy({ initialBackoffMs: 5, maxBackoffMs: 20 }),
  });
  // The API and the consumer on the system clock, as deployed.
  const api = createPenaltyApiHandler({
    store,
    cursors: testCursorSeal(),
    gateway,
    freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
    ...quiet(),
  });
  const consumer = createPaymentConsumer({
    store: new DynamoDbPaymentStore({ client: dynamo, paymentsTableName }),
    directory: new DynamoDbCustomerDirectory({ client: dynamo, billingTableName }),
    penalties: store,
    ...quiet(),
  });

  const settle = async () => {
    const response = await api(penaltySettleEvent(userId), context);
    return { status: response.statusCode, body: JSON.parse(response.body as string) };
  };
  /** One SQS batch of the events, as the payments queue delivers it; every record must succeed. */
  const deliver = async (...events: { id: string; type: string }[]) => {
    const response = await consumer(sqsBatch(events.map((e) => JSON.stringify(e))), context);
    expect(response.batchItemFailures).toEqual([]);
  };
  /** Each penalty's status and the PaymentIntent it is pending under or paid by. */
  const statuses = async () => {
    const found = await store.getPenalties(Object.values(ids));
    return Object.fromEntries(
      Object.entries(ids).map(([name, id]) => {
        const penalty = found.get(id);
        return [name, penalty ? [penalty.status, penalty.paymentId] : null];
      }),
    );
  };
  const account = async () => {
    const found = await store.getAccount(userId);
    if (!found) throw new Error(`no account for ${userId}`);
    return found;
  };
  return { userId, recipientId, store, gateway, ids, settle, deliver, statuses, account };
}

type World = Awaited<ReturnType<typeof world>>;

/** What an unpaid (never settled, or returned) world looks like. */
async function expectAllUnpaid(w: World) {
  expect(await w.statuses()).toEqual({
    read2: ['unpaid', null],
    run2: ['unpaid', null],
    read3: ['unpaid', null],
    run3: ['unpaid', null],
  });
  expect(await w.account()).toMatchObject({
    unpaidCount: 4,
    unpaidAmount: [{ currency: 'usd', amount: 1600 }],
    pending: null,
  });
  expect(await w.store.recipientTotals(w.recipientId)).toBeNull();
}

/** Settles the four penalties into one PaymentIntent and checks they are pending under it. */
async function settleAll(w: World): Promise<string> {
  const settled = await w.settle();
  expect(settled.status).toBe(200);
  expect(settled.body).toMatchObject({ waived: [], creditsUsed: 0 });
  expect(settled.body.payment).toMatchObject({ amount: 1600, currency: 'usd' });
  expect([...settled.body.payment.penaltyIds].sort()).toEqual(Object.values(w.ids).sort());
  const pi: string = settled.body.payment.paymentIntentId;
  expect(await w.statuses()).toEqual({
    read2: ['pending', pi],
    run2: ['pending', pi],
    read3: ['pending', pi],
    run3: ['pending', pi],
  });
  expect(await w.account()).toMatchObject({
    unpaidCount: 0,
    pending: { paymentIntentId: pi },
  });
  // A second settle while this one is pending is refused, and changes nothing.
  const again = await w.settle();
  expect(again.status).toBe(409);
  expect(again.body.error.code).toBe('settlement_pending');
  return pi;
}

describe('payment_intent.payment_failed through the payments consumer', () => {
  it('puts the penalties back to unpaid and releases the pending settlement, once; a new settle gets a new PaymentIntent that a late payment_failed of the first cannot touch', async () => {
    const w = await world();
    await expectAllUnpaid(w);
    const pi = await settleAll(w);

    const failed = stripe.failPaymentIntent(pi);
    await w.deliver(failed);
    await expectAllUnpaid(w);
    // Redelivered, alone and twice in one batch: nothing moves again.
    await w.deliver(failed);
    await w.deliver(failed, failed);
    await expectAllUnpaid(w);

    // Settling again works, with a new PaymentIntent: the failed one is canceled, so its
    // payment_failed, redelivered late, concerns no penalty of the new settlement.
    const resettled = await w.settle();
    expect(resettled.status).toBe(200);
    const retry: string = resettled.body.payment.paymentIntentId;
    expect(retry).not.toBe(pi);
    expect(resettled.body.payment).toMatchObject({ amount: 1600 });
    expect(stripe.paymentIntents.get(pi)?.status).toBe('canceled');
    expect(await w.account()).toMatchObject({
      unpaidCount: 0,
      pending: { paymentIntentId: retry },
    });
    await w.deliver(failed);
    expect(Object.values(await w.statuses())).toEqual(Array(4).fill(['pending', retry]));
    expect(await w.account()).toMatchObject({
      unpaidCount: 0,
      pending: { paymentIntentId: retry },
    });

    // Paid this time: all four paid by it, counted once.
    await w.deliver(stripe.succeedPaymentIntent(retry));
    expect(Object.values(await w.statuses())).toEqual(Array(4).fill(['paid', retry]));
    expect(await w.account()).toMatchObject({ unpaidCount: 0, pending: null });
    expect(await w.store.recipientTotals(w.recipientId)).toEqual({
      recipientId: w.recipientId,
      penaltiesPaid: 4,
      amounts: [{ currency: 'usd', amount: 1600 }],
    });
  });
});

describe('payment_intent.canceled through the payments consumer', () => {
  it('puts the penalties back to unpaid and releases the pending settlement; a new settle gets a new PaymentIntent', async () => {
    const w = await world();
    const first = await settleAll(w);

    expect(await w.gateway.cancelPenaltyPayment(first)).toBe('canceled');
    const canceled = intentEvent('payment_intent.canceled', first, Math.floor(Date.now() / 1000));
    await w.deliver(canceled, canceled);
    await expectAllUnpaid(w);

    // A canceled PaymentIntent cannot be paid: settling again creates another one.
    const resettled = await w.settle();
    expect(resettled.status).toBe(200);
    const second: string = resettled.body.payment.paymentIntentId;
    expect(second).not.toBe(first);
    expect(stripe.paymentIntents.get(second)?.status).toBe('requires_payment_method');
    expect(resettled.body.payment).toMatchObject({ amount: 1600, currency: 'usd' });

    // The first one's cancellation redelivered late touches nothing of the second.
    await w.deliver(canceled);
    expect(Object.values(await w.statuses())).toEqual(Array(4).fill(['pending', second]));
    expect(await w.account()).toMatchObject({
      unpaidCount: 0,
      pending: { paymentIntentId: second },
    });
  });
});

describe('duplicated and reordered delivery through the payments consumer', () => {
  it('succeeded twice, then stale processing and payment_failed: paid once, totals once, nothing pending', async () => {
    // One credit: the oldest penalty is waived, the other three paid by the PaymentIntent.
    const w = await world({ credits: 1 });
    const settled = await w.settle();
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ waived: [w.ids.read2], creditsUsed: 1 });
    expect(settled.body.payment).toMatchObject({ amount: 1300, currency: 'usd' });
    const pi: string = settled.body.payment.paymentIntentId;

    // What Stripe sent, in the order it happened: processing, a declined card, then paid.
    const now = Math.floor(Date.now() / 1000);
    const processing = intentEvent('payment_intent.processing', pi, now - 30, {
      status: 'processing',
    });
    const declined = intentEvent('payment_intent.payment_failed', pi, now - 20, {
      status: 'requires_payment_method',
      last_payment_error: { type: 'card_error', code: 'card_declined' },
    });
    const succeeded = { ...stripe.succeedPaymentIntent(pi), created: now };

    const paid = {
      read2: ['waived', null],
      run2: ['paid', pi],
      read3: ['paid', pi],
      run3: ['paid', pi],
    };
    const totals = {
      recipientId: w.recipientId,
      penaltiesPaid: 3,
      amounts: [{ currency: 'usd', amount: 1300 }],
    };
    const expectPaidOnce = async () => {
      expect(await w.statuses()).toEqual(paid);
      expect(await w.account()).toMatchObject({ unpaidCount: 0, unpaidAmount: [], pending: null });
      expect(await w.store.recipientTotals(w.recipientId)).toEqual(totals);
    };

    // Delivered out of order and at least once: succeeded first, then again in the same
    // batch as the stale processing, then the stale failure with succeeded once more.
    await w.deliver(succeeded);
    await expectPaidOnce();
    await w.deliver(succeeded, processing);
    await expectPaidOnce();
    await w.deliver(declined, succeeded);
    await w.deliver(processing);
    await expectPaidOnce();
    // Nothing was overpaid (the waived penalty was never in the PaymentIntent).
    const owed = await w.store.listOverpayments({ all: true });
    expect(owed.filter((o) => o.userId === w.userId)).toEqual([]);

    // Nothing left to settle, and no second charge.
    const nothing = await w.settle();
    expect(nothing.status).toBe(200);
    expect(nothing.body).toEqual({ waived: [], creditsUsed: 0, payment: null });
  });
});
