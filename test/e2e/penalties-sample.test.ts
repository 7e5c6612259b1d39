/**
 * `npm run send-sample -- --penalties` against a real local runtime, over two days as a
 * newcomer lives them: on the first day the habits are created and one is done, but a
 * habit is assessed from the day it was created, so there is nothing to assess; the
 * next day the sample (the real command, in a child process) assesses the day before:
 * the undone non-free habit costs its penalty, the free one and the done one nothing,
 * and the penalty is settled: without credits through the fake Stripe, paid by the
 * signed `payment_intent.succeeded` the sample sends; for a subscriber, waived with a
 * credit; a settlement left pending is finished. Run again, it changes nothing and
 * fails at nothing. And with no suite running, it says so and exits 1.
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findFreePort } from '../../local/emulators.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import {
  buildDefaultSample,
  runPenaltySample,
  SAMPLE_DONE_HABIT,
  SAMPLE_HABITS,
  SAMPLE_RECIPIENT_ID,
} from '../../local/send-sample.ts';
import { eventually, getJson, postWebhook, uniqueUserId } from './e2e-helpers.ts';

const DAY = 86_400_000;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** `npm run send-sample -- --penalties …` as a child process: its exit code and what it printed. */
async function sendSampleCommand(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'local/send-sample.ts', '--penalties', ...args],
      {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '', ...env },
        timeout: 60_000,
      },
    );
    return { code: 0, out: `${stdout}${stderr}` };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: `${failed.stdout}${failed.stderr}` };
  }
}

describe('the penalties sample against the local runtime', () => {
  let runtime: LocalRuntime;

  beforeAll(async () => {
    runtime = await startLocalRuntime({ port: 0, inMemory: true, logLevel: 'warn' });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  // biome-ignore lint/suspicious/noExplicitAny: the answers are checked field by field below
  const get = (path: string) => getJson<Record<string, any>>(runtime, path);
  const command = (userId: string) =>
    sendSampleCommand(['--url', runtime.apiUrl, '--user', userId], {
      STRIPE_WEBHOOK_SECRET: runtime.webhookSecret,
    });

  /**
   * Day one is yesterday: the runtime (in this process) and the sample share the clock,
   * so the habits are created, and one done, a day ago. What the sample printed.
   */
  async function firstDay(userId: string): Promise<string> {
    const lines: string[] = [];
    vi.setSystemTime(Date.now() - DAY);
    try {
      await runPenaltySample({
        apiUrl: runtime.apiUrl,
        userId,
        webhookSecret: runtime.webhookSecret,
        print: (line) => lines.push(line),
      });
    } finally {
      vi.useRealTimers();
    }
    return lines.join('\n');
  }

  /** Only the undone non-free habit costs: none for the free one, none for the one done. */
  async function onlyPenaltyOf(userId: string, yesterday: string) {
    const penalties = await get(`/users/${userId}/penalties`);
    expect(penalties.body.items).toHaveLength(1);
    const [penalty] = penalties.body.items;
    expect(penalty).toMatchObject({
      penaltyId: `pen_${userId}_sample-read_${yesterday}`,
      habitId: 'sample-read',
      date: yesterday,
      amount: SAMPLE_HABITS['sample-read'].penaltyAmount,
      currency: 'usd',
    });
    return penalty;
  }

  const intentsOf = (userId: string) =>
    [...runtime.fakeStripe!.paymentIntents.values()].filter((pi) => pi.metadata.userId === userId);

  it('creates the habits on the first day, charges the missed one the next, and re-runs idempotently', {
    timeout: 120_000,
  }, async () => {
    const payer = uniqueUserId('sample-payer');
    // Subscribed on the second day, as in the README's walk-through: credits first.
    const subscriber = uniqueUserId('sample-subscriber');
    // Settled by hand, the payment still pending, before the sample runs.
    const interrupted = uniqueUserId('sample-interrupted');
    const yesterday = isoDate(Date.now() - DAY);

    for (const userId of [payer, subscriber, interrupted]) {
      const printed = await firstDay(userId);
      expect(printed).toContain('sample-meditate -> 201 created');
      expect(printed).toContain('created today');
      expect(printed).toContain('nothing to settle');
      const created = await get(`/users/${userId}/habits`);
      expect(created.body.items.map((h: { habitId: string }) => h.habitId).sort()).toEqual(
        Object.keys(SAMPLE_HABITS).sort(),
      );
      expect(
        created.body.items.every((h: { createdAt: string }) => h.createdAt.startsWith(yesterday)),
      ).toBe(true);
      expect((await get(`/users/${userId}/penalties`)).body.items).toEqual([]);
    }

    // The next day, the real command. No credits: a PaymentIntent, paid by the event sent.
    const paid = await command(payer);
    expect(paid.out).toContain(`Assessment of ${yesterday}`);
    expect(paid.out).toContain('The payment consumer marked 1 penalty paid');
    expect(paid.code).toBe(0);
    const penalty = await onlyPenaltyOf(payer, yesterday);
    expect(penalty.status).toBe('paid');
    expect(intentsOf(payer)).toEqual([
      expect.objectContaining({ id: penalty.paymentId, amount: 300, currency: 'usd' }),
    ]);
    expect(intentsOf(payer)[0]?.metadata).toMatchObject({
      purpose: 'penalty',
      penaltyIds: penalty.penaltyId,
    });
    expect((await get(`/payments/${penalty.paymentId}`)).body).toMatchObject({
      userId: payer,
      status: 'succeeded',
      purpose: 'penalty',
      penaltyIds: [penalty.penaltyId],
    });
    expect((await get(`/users/${payer}/penalties/summary`)).body).toMatchObject({
      unpaidCount: 0,
    });
    const streaks = Object.fromEntries(
      (await get(`/users/${payer}/habits`)).body.items.map(
        (h: { habitId: string; currentStreak: number; lastAssessedDate: string }) => [
          h.habitId,
          [h.currentStreak, h.lastAssessedDate],
        ],
      ),
    );
    expect(streaks).toEqual({
      'sample-meditate': [0, yesterday],
      'sample-read': [0, yesterday],
      [SAMPLE_DONE_HABIT]: [1, yesterday],
    });

    // A subscriber (silver: 5 credits a day): the penalty is waived with a credit, no payment.
    for (const event of buildDefaultSample({ userId: subscriber, tier: 'silver' })) {
      expect((await postWebhook(runtime, event)).status).toBe(200);
    }
    await eventually(
      async () => {
        const credits = await get(`/users/${subscriber}/credits`);
        return credits.body.balance === 5 ? credits : undefined;
      },
      20_000,
      "the subscriber's credits",
    );
    const waived = await command(subscriber);
    expect(waived.out).toContain('1 penalty waived, one credit each');
    expect(waived.code).toBe(0);
    expect((await onlyPenaltyOf(subscriber, yesterday)).status).toBe('waived');
    expect((await get(`/users/${subscriber}/credits`)).body.balance).toBe(4);
    expect(intentsOf(subscriber)).toEqual([]);

    // A settlement left pending (by hand, or an interrupted run): the sample finishes it.
    const byHand = await fetch(`${runtime.apiUrl}/users/${interrupted}/penalties/settle`, {
      method: 'POST',
    });
    expect(byHand.status).toBe(200);
    const finished = await command(interrupted);
    expect(finished.out).toContain('The payment consumer marked 1 penalty paid');
    expect(finished.code).toBe(0);
    const pendingOne = await onlyPenaltyOf(interrupted, yesterday);
    expect(pendingOne.status).toBe('paid');
    expect(intentsOf(interrupted).map((pi) => pi.id)).toEqual([pendingOne.paymentId]);

    // Again the same day: no second penalty, no second payment or credit, no failure.
    for (const userId of [payer, subscriber, interrupted]) {
      const before = (await get(`/users/${userId}/penalties`)).body.items;
      const again = await command(userId);
      expect(again.out).toContain('-> 200 already there');
      expect(again.out).toContain('nothing to settle');
      expect(again.code).toBe(0);
      expect((await get(`/users/${userId}/penalties`)).body.items).toEqual(before);
    }
    expect(intentsOf(payer)).toHaveLength(1);
    expect(intentsOf(interrupted)).toHaveLength(1);
    expect((await get(`/users/${subscriber}/credits`)).body.balance).toBe(4);
    expect((await get(`/recipients/${SAMPLE_RECIPIENT_ID}/totals`)).body).toEqual({
      recipientId: SAMPLE_RECIPIENT_ID,
      penaltiesPaid: 2,
      amounts: [{ currency: 'usd', amount: 600 }],
    });
  });

  it('says clearly that no suite is running, and exits 1', { timeout: 60_000 }, async () => {
    const nobody = `http://127.0.0.1:${await findFreePort()}`;
    const result = await sendSampleCommand(['--url', nobody]);
    expect(result.code).toBe(1);
    expect(result.out).toContain(`Nothing answers at ${nobody}. Start the suite first`);
  });
});
