/**
 * Penalties end to end through the local runtime, every step over HTTP as the app
 * backend, the operators and Stripe would make it: habits created and edited and a
 * verification through the user routes, the operators' assessment of two past days,
 * settlement through the fake Stripe (one PaymentIntent, idempotent), then Stripe's
 * signed `payment_intent.succeeded` through the webhook and the payments queue marks
 * them paid exactly once.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findFreePort } from '../../local/emulators.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import type { StripeEventJson } from '../../local/send-sample.ts';
import { eventually, postWebhook, uniqueUserId } from './e2e-helpers.ts';

const DAY = 86_400_000;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

const habitBody = (name: string, penaltyAmount: number) => ({
  name,
  penaltyAmount,
  currency: 'usd',
  free: false,
  recipientId: 'charity-e2e',
});

/**
 * The emulator ports of every runtime of this file: handler modules are imported once
 * per process and keep their clients, so a second runtime in the process must reuse them.
 */
let emulatorPorts: Promise<{ dynamoPort: number; sqsPort: number }> | undefined;
/**
 * The environment as this file found it: a runtime writes its settings into
 * process.env (STRIPE_API_URL among them), and a second one reading them back would
 * take the first one's fake Stripe for an external Stripe and not expose it.
 */
const initialEnv = { ...process.env };

/**
 * A local runtime of its own (fresh, in memory) for the scenarios of one describe. An
 * assessed date is the whole runtime's (every habit is visited once for it), and a
 * date a later one has passed can no longer be assessed (409 date_superseded): so
 * scenarios that each assess their own past days do not share a runtime.
 */
function localRuntime() {
  let runtime: LocalRuntime | undefined;
  beforeAll(async () => {
    emulatorPorts ??= Promise.all([findFreePort(), findFreePort()]).then(
      ([dynamoPort, sqsPort]) => ({ dynamoPort, sqsPort }),
    );
    runtime = await startLocalRuntime({
      port: 0,
      inMemory: true,
      logLevel: 'warn',
      env: initialEnv,
      ...(await emulatorPorts),
    });
  });
  afterAll(async () => {
    await runtime?.stop();
  });
  const current = () => {
    if (!runtime) throw new Error('the local runtime did not start');
    return runtime;
  };

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${current().apiUrl}${path}`, {
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

  /**
   * Creates habits through `PUT /users/{userId}/habits/{habitId}` as of `daysAgo` days
   * ago. The route stamps a new habit's `createdAt` with the server's clock, a habit is
   * only assessed for days from its creation on, and only past days can be assessed:
   * so the (in-process) runtime's clock is set back while the habits are created, and
   * only then. Everything else runs on the real clock.
   */
  async function createHabitsAsOf(
    daysAgo: number,
    userId: string,
    habits: Record<string, { name: string; penaltyAmount: number }>,
  ) {
    const createdAt = Date.now() - daysAgo * DAY;
    vi.setSystemTime(createdAt);
    try {
      for (const [habitId, { name, penaltyAmount }] of Object.entries(habits)) {
        const created = await call(
          'PUT',
          `/users/${userId}/habits/${habitId}`,
          habitBody(name, penaltyAmount),
        );
        expect(created.status).toBe(201);
        expect(created.body).toMatchObject({
          habitId,
          ...habitBody(name, penaltyAmount),
          active: true,
          currentStreak: 0,
          longestStreak: 0,
          lastAssessedDate: null,
          createdAt: new Date(createdAt).toISOString(),
        });
      }
    } finally {
      vi.useRealTimers();
    }
  }

  return { runtime: current, call, createHabitsAsOf };
}

describe('penalties through the local runtime: habits to paid', () => {
  const { runtime, call, createHabitsAsOf } = localRuntime();

  it('assesses missed days, settles through Stripe, and marks the penalties paid once', async () => {
    const userId = uniqueUserId('pen');
    const dayBefore = isoDate(Date.now() - 2 * DAY);
    const yesterday = isoDate(Date.now() - DAY);
    // Over the API: two habits, created three days ago; none of them is assessed yet.
    await createHabitsAsOf(3, userId, {
      run: { name: 'Run', penaltyAmount: 500 },
      read: { name: 'Read', penaltyAmount: 300 },
    });
    const listed = await call('GET', `/users/${userId}/habits`);
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((h: { habitId: string }) => h.habitId).sort()).toEqual([
      'read',
      'run',
    ]);
    const badHabit = await call('PUT', `/users/${userId}/habits/run`, {
      ...habitBody('Run', 500),
      currency: 'USD',
    });
    expect(badHabit.status).toBe(400);
    expect(badHabit.body.error.message).toContain('currency');

    // A habit edit (now), a verification, and the validation of the verification.
    const edit = await call('PUT', `/users/${userId}/habits/run`, habitBody('Run 5k', 500));
    expect(edit.status).toBe(200);
    expect(edit.body).toMatchObject({ name: 'Run 5k', penaltyAmount: 500 });
    // An edit keeps the habit's creation day, so the past days are still assessed.
    expect(edit.body.createdAt).toBe(
      listed.body.items.find((h: { habitId: string }) => h.habitId === 'run').createdAt,
    );
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
    // The date's totals again; this run itself assessed and created nothing.
    expect(again.body).toEqual({
      ...totals[1],
      thisRun: { habits: 0, verified: 0, missed: 0, penaltiesCreated: 0 },
    });
    expect(totals[1]?.thisRun).toMatchObject({ penaltiesCreated: 2 });
    const unpaid = await call('GET', `/users/${userId}/penalties?status=unpaid`);
    // run missed twice, read missed yesterday only (verified the day before).
    expect(unpaid.body.items.map((p: { penaltyId: string }) => p.penaltyId).sort()).toEqual(
      [
        `pen_${userId}_read_${yesterday}`,
        `pen_${userId}_run_${dayBefore}`,
        `pen_${userId}_run_${yesterday}`,
      ].sort(),
    );
    expect((await call('GET', `/users/${userId}/penalties/summary`)).body).toEqual({
      userId,
      unpaidCount: 3,
      unpaidAmount: [{ currency: 'usd', amount: 1300 }],
      oldestUnpaidDate: dayBefore,
    });
    const habits = await call('GET', `/users/${userId}/habits`);
    const read = habits.body.items.find((h: { habitId: string }) => h.habitId === 'read');
    expect(read).toMatchObject({ currentStreak: 0, longestStreak: 1, lastAssessedDate: yesterday });
    const run = habits.body.items.find((h: { habitId: string }) => h.habitId === 'run');
    expect(run).toMatchObject({
      name: 'Run 5k',
      currentStreak: 0,
      longestStreak: 0,
      lastAssessedDate: yesterday,
    });
    // An assessed day can no longer be verified.
    const late = await call('PUT', `/users/${userId}/habits/run/verifications/${yesterday}`);
    expect(late.status).toBe(400);
    expect(late.body.error.message).toContain('date');

    // Settle: one PaymentIntent on the fake Stripe for all three (no credits).
    const settled = await call('POST', `/users/${userId}/penalties/settle`);
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ waived: [], creditsUsed: 0 });
    const payment = settled.body.payment;
    expect(payment).toMatchObject({ amount: 1300, currency: 'usd' });
    const intent = runtime().fakeStripe!.paymentIntents.get(payment.paymentIntentId);
    expect(intent?.metadata).toMatchObject({ purpose: 'penalty', userId });
    // Settled again (its response lost): 409, carrying the same payment to take up again.
    const resumed = await call('POST', `/users/${userId}/penalties/settle`);
    expect(resumed.status).toBe(409);
    expect(resumed.body.error).toMatchObject({ code: 'settlement_pending', payment });
    expect((await call('GET', `/users/${userId}/penalties/summary`)).body).toMatchObject({
      unpaidCount: 0,
      oldestUnpaidDate: null,
    });

    // Stripe says it succeeded, twice: paid once, the recipient's totals counted once.
    const succeeded = runtime().fakeStripe!.succeedPaymentIntent(payment.paymentIntentId);
    for (let i = 0; i < 2; i += 1) {
      expect((await postWebhook(runtime(), succeeded as unknown as StripeEventJson)).status).toBe(
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
});

describe('penalties through the local runtime: Stripe down', () => {
  const { runtime, call, createHabitsAsOf } = localRuntime();

  it('answers 503 with Retry-After when Stripe is down, and the penalties stay unpaid', async () => {
    const userId = uniqueUserId('pen');
    const day = isoDate(Date.now() - 4 * DAY);
    await createHabitsAsOf(5, userId, { walk: { name: 'Walk', penaltyAmount: 200 } });
    expect((await call('POST', '/admin/penalties/assess', { date: day })).status).toBe(200);
    runtime().fakeStripe!.injectFault({ kind: 'status', status: 500 }, 3, '/v1/payment_intents');
    const down = await call('POST', `/users/${userId}/penalties/settle`);
    expect(down.status).toBe(503);
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(down.body.error.code).toBeDefined();
    expect((await call('GET', `/users/${userId}/penalties/summary`)).body).toMatchObject({
      unpaidCount: 1,
      oldestUnpaidDate: day,
    });
    // Nothing was charged or left pending.
    const intents = [...runtime().fakeStripe!.paymentIntents.values()];
    expect(intents.filter((pi) => pi.metadata.userId === userId)).toEqual([]);
    const listed = await call('GET', `/users/${userId}/penalties?fields=penaltyId,status`);
    expect(listed.body.items).toEqual([
      { penaltyId: `pen_${userId}_walk_${day}`, status: 'unpaid' },
    ]);
    // Stripe is back: the same settlement goes through.
    const retried = await call('POST', `/users/${userId}/penalties/settle`);
    expect(retried.status).toBe(200);
    expect(retried.body.payment).toMatchObject({ amount: 200 });
  });
});
