/**
 * Penalties end to end through the local runtime: habits and a verification over the
 * API, the operators' assessment of two past days, settlement through the fake Stripe
 * (one PaymentIntent, idempotent), then Stripe's signed `payment_intent.succeeded`
 * through the webhook and the payments queue marks them paid exactly once.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  MAX_HABITS_PER_USER,
  withSettings,
} from '../../functions/core/penalties/habits.ts';
import { localDynamoDbClient } from '../../local/emulators.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import type { StripeEventJson } from '../../local/send-sample.ts';
import { eventually, postWebhook, uniqueUserId } from './e2e-helpers.ts';

const DAY = 86_400_000;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

describe('penalties through the local runtime', () => {
  let runtime: LocalRuntime;
  let dynamo: DynamoDBClient;

  beforeAll(async () => {
    runtime = await startLocalRuntime({ port: 0, inMemory: true, logLevel: 'warn' });
    dynamo = localDynamoDbClient(runtime.dynamoEndpoint);
  });
  afterAll(async () => {
    dynamo?.destroy();
    await runtime?.stop();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${runtime.apiUrl}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return {
      status: res.status,
      headers: res.headers,
      // biome-ignore lint/suspicious/noExplicitAny: the answers are checked field by field below
      body: (await res.json()) as Record<string, any>,
    };
  };

  /** A habit created days ago, so past days can be assessed for it (an HTTP PUT creates it now). */
  async function seedHabit(userId: string, habitId: string, penaltyAmount: number, daysAgo = 3) {
    const penaltiesTable = Object.values(runtime.tableNames).find((name) =>
      name.endsWith('-penalties'),
    );
    const store = new DynamoDbPenaltyStore({ client: dynamo, penaltiesTableName: penaltiesTable! });
    const habit = withSettings(
      { userId, habitId },
      {
        name: habitId,
        penaltyAmount,
        currency: 'usd',
        free: false,
        recipientId: 'charity-e2e',
        active: true,
      },
      null,
      new Date(Date.now() - daysAgo * DAY).toISOString(),
    );
    expect(
      await store.putHabit({
        habit,
        previous: null,
        freeHabitLimit: DEFAULT_FREE_HABIT_LIMITS.free,
        maxHabits: MAX_HABITS_PER_USER,
      }),
    ).toBe('written');
  }

  it('assesses missed days, settles through Stripe, and marks the penalties paid once', async () => {
    const userId = uniqueUserId('pen');
    const dayBefore = isoDate(Date.now() - 2 * DAY);
    const yesterday = isoDate(Date.now() - DAY);
    await seedHabit(userId, 'run', 500);
    await seedHabit(userId, 'read', 300);

    // Over the API: a habit edit, a verification, and the validation of both.
    const edit = await call('PUT', `/users/${userId}/habits/run`, {
      name: 'Run 5k',
      penaltyAmount: 500,
      currency: 'usd',
      free: false,
      recipientId: 'charity-e2e',
    });
    expect(edit.status).toBe(200);
    expect(
      (await call('PUT', `/users/${userId}/habits/read/verifications/${dayBefore}`)).status,
    ).toBe(200);
    const future = await call('PUT', `/users/${userId}/habits/read/verifications/2999-01-01`);
    expect(future.status).toBe(400);

    // The operators assess both days; running one again answers the same totals.
    const totals: Record<string, unknown>[] = [];
    for (const date of [dayBefore, yesterday]) {
      const assessed = await call('POST', '/admin/penalties/assess', { date });
      expect(assessed.status).toBe(200);
      expect(assessed.body.date).toBe(date);
      totals.push(assessed.body);
    }
    const again = await call('POST', '/admin/penalties/assess', { date: yesterday });
    expect(again.body).toEqual(totals[1]);
    const unpaid = await call('GET', `/users/${userId}/penalties?status=unpaid`);
    // run missed twice, read missed yesterday only (verified the day before).
    expect(unpaid.body.items.map((p: { penaltyId: string }) => p.penaltyId).sort()).toEqual(
      [
        `pen_${userId}_read_${yesterday}`,
        `pen_${userId}_run_${dayBefore}`,
        `pen_${userId}_run_${yesterday}`,
      ].sort(),
    );
    const habits = await call('GET', `/users/${userId}/habits`);
    const read = habits.body.items.find((h: { habitId: string }) => h.habitId === 'read');
    expect(read).toMatchObject({ currentStreak: 0, longestStreak: 1, lastAssessedDate: yesterday });

    // Settle: one PaymentIntent on the fake Stripe for all three (no credits).
    const settled = await call('POST', `/users/${userId}/penalties/settle`);
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ waived: [], creditsUsed: 0 });
    const payment = settled.body.payment;
    expect(payment).toMatchObject({ amount: 1300, currency: 'usd' });
    const intent = runtime.fakeStripe!.paymentIntents.get(payment.paymentIntentId);
    expect(intent?.metadata).toMatchObject({ purpose: 'penalty', userId });
    expect((await call('POST', `/users/${userId}/penalties/settle`)).status).toBe(409);
    expect((await call('GET', `/users/${userId}/penalties/summary`)).body).toMatchObject({
      unpaidCount: 0,
    });

    // Stripe says it succeeded, twice: paid once, the recipient's totals counted once.
    const succeeded = runtime.fakeStripe!.succeedPaymentIntent(payment.paymentIntentId);
    for (let i = 0; i < 2; i += 1) {
      expect((await postWebhook(runtime, succeeded as unknown as StripeEventJson)).status).toBe(
        200,
      );
    }
    const paid = await eventually(
      async () => {
        const answer = await call('GET', `/users/${userId}/penalties?status=paid`);
        return answer.body.items?.length === 3 ? answer : undefined;
      },
      20_000,
      'the penalties to be paid',
    );
    expect(
      paid.body.items.every((p: { paymentId: string }) => p.paymentId === payment.paymentIntentId),
    ).toBe(true);
    const recipient = await call('GET', '/recipients/charity-e2e/totals');
    expect(recipient.body).toEqual({
      recipientId: 'charity-e2e',
      penaltiesPaid: 3,
      amounts: [{ currency: 'usd', amount: 1300 }],
    });
    // Nothing left: settling again is a no-op, not a second charge.
    const nothing = await call('POST', `/users/${userId}/penalties/settle`);
    expect(nothing.body).toEqual({ waived: [], creditsUsed: 0, payment: null });
  });

  it('answers 503 with Retry-After when Stripe is down, and the penalties stay unpaid', async () => {
    const userId = uniqueUserId('pen');
    // A day the first test did not assess (an assessed day is complete and not re-run).
    const day = isoDate(Date.now() - 4 * DAY);
    await seedHabit(userId, 'walk', 200, 5);
    expect((await call('POST', '/admin/penalties/assess', { date: day })).status).toBe(200);
    runtime.fakeStripe!.injectFault({ kind: 'status', status: 500 }, 3, '/v1/payment_intents');
    const down = await call('POST', `/users/${userId}/penalties/settle`);
    expect(down.status).toBe(503);
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(down.body.error.code).toBeDefined();
    expect((await call('GET', `/users/${userId}/penalties/summary`)).body).toMatchObject({
      unpaidCount: 1,
      oldestUnpaidDate: day,
    });
    // Stripe is back: the same settlement goes through.
    const retried = await call('POST', `/users/${userId}/penalties/settle`);
    expect(retried.status).toBe(200);
    expect(retried.body.payment).toMatchObject({ amount: 200 });
  });
});
