/**
 * Credits end to end through the local runtime: a subscribed user gets a profile with
 * a refresh slot and its first refresh; the operators' "run now" plans a slot and the
 * worker refreshes an unrefreshed user once; the schedule fires on the fast clock; bad
 * requests are 4xx.
 */

import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import { NEVER_REFRESHED, refreshSlotOf } from '../../functions/core/credits/refresh-slot.ts';
import { localDynamoDbClient } from '../../local/emulators.ts';
import { describeLocalRuntime } from '../../local/operations/target.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import { buildDefaultSample } from '../../local/send-sample.ts';
import { eventually, postWebhook, uniqueUserId, waitForSubscription } from './e2e-helpers.ts';

describe('credits through the local runtime', () => {
  let runtime: LocalRuntime;

  beforeAll(async () => {
    // 600x: a five-minute slot every half second of wall time.
    runtime = await startLocalRuntime({
      port: 0,
      inMemory: true,
      logLevel: 'warn',
      clockSpeed: 600,
    });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${runtime.apiUrl}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : {
            body: typeof body === 'string' ? body : JSON.stringify(body),
            headers: { 'content-type': 'application/json' },
          }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('gives a new user its first refresh when the profile is created, and refreshes nobody twice on the same day', async () => {
    const userId = uniqueUserId('credits');
    for (const event of buildDefaultSample({ userId, tier: 'silver' })) {
      expect((await postWebhook(runtime, event)).status).toBe(200);
    }
    await waitForSubscription(runtime, userId, (answer) => answer.tier === 'silver');
    const slot = refreshSlotOf(userId);
    const today = new Date().toISOString().slice(0, 10);
    // Refreshed in the commit that created the profile, with the tier it had then (free
    // when the customer came before the subscription, else silver): never left at 0
    // until its slot comes round tomorrow.
    const first = (await call('GET', `/users/${userId}/credits`)).body;
    expect(first).toMatchObject({ userId, tier: 'silver', refreshSlot: slot, period: today });
    expect([1, 5]).toContain(first.balance);
    expect(first.allowance).toBe(first.balance);

    // The slot's run today plans it and finds it refreshed already: nothing changes.
    const run = await call('POST', '/admin/credits/refresh', { slots: [slot], date: today });
    expect(run.status).toBe(200);
    await call('POST', '/admin/credits/refresh', { slots: [slot], date: today });
    const stats = await call('GET', `/admin/credits/stats?date=${today}`);
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ date: today, failed: 0 });
    // Give the workers time to have handled whatever the runs enqueued.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await call('GET', `/users/${userId}/credits`)).body).toMatchObject({
      balance: first.balance,
      period: today,
    });
  });

  it('refreshes, on demand for their slot, a user whose profile predates first refreshes; once', async () => {
    const userId = uniqueUserId('credits-old');
    const slot = refreshSlotOf(userId);
    const today = new Date().toISOString().slice(0, 10);
    // A profile as the suite wrote it before first refreshes: slotted, never refreshed.
    const documents = DynamoDBDocumentClient.from(localDynamoDbClient(runtime.dynamoEndpoint));
    await documents.send(
      new PutCommand({
        TableName: describeLocalRuntime(runtime).tables.billing,
        Item: {
          ...billingKeys.profile(userId),
          userId,
          tier: 'gold',
          refreshSlot: slot,
          creditPeriod: NEVER_REFRESHED,
          credits: 0,
        },
      }),
    );
    expect((await call('GET', `/users/${userId}/credits`)).body).toMatchObject({
      balance: 0,
      period: null,
    });
    const run = await call('POST', '/admin/credits/refresh', { slots: [slot], date: today });
    expect(run.status).toBe(200);
    expect(run.body.planned).toBeGreaterThanOrEqual(1);
    const credits = await eventually(
      async () => {
        const answer = await call('GET', `/users/${userId}/credits`);
        return answer.body.balance === 10 ? answer : undefined;
      },
      20_000,
      'the credits to be refreshed',
    );
    expect(credits.body).toMatchObject({ allowance: 10, period: today, refreshSlot: slot });
    // Running it again plans the slot again, but the user is refreshed once a day.
    await call('POST', '/admin/credits/refresh', { slots: [slot], date: today });
    const stats = await eventually(
      async () => {
        const answer = await call('GET', `/admin/credits/stats?date=${today}`);
        return Number(answer.body.refreshed) >= 1 ? answer : undefined;
      },
      20_000,
      'the stats to count the refresh',
    );
    expect(stats.body).toMatchObject({ date: today, failed: 0 });
    expect((await call('GET', `/users/${userId}/credits`)).body.balance).toBe(10);
  });

  it('fires the planner schedule on the fast clock', async () => {
    await eventually(
      async () => (Object.values(runtime.scheduler.fired()).some((n) => n >= 2) ? true : undefined),
      20_000,
      'the planner schedule to fire',
    );
  });

  it('answers 4xx for bad requests and unknown users', async () => {
    expect((await call('GET', '/users/nobody-here/credits')).status).toBe(404);
    const badSlot = await call('POST', '/admin/credits/refresh', { slots: [288] });
    expect(badSlot.status).toBe(400);
    expect(String((badSlot.body.error as { message: string }).message)).toMatch(/^slots/);
    const unknownField = await call('POST', '/admin/credits/refresh', { slot: 3 });
    expect(unknownField.status).toBe(400);
    expect(String((unknownField.body.error as { message: string }).message)).toContain('slot');
    expect((await call('POST', '/admin/credits/refresh', '{not json')).status).toBe(400);
    expect((await call('POST', '/admin/credits/refresh', { date: '2999-01-01' })).status).toBe(400);
    expect((await call('GET', '/admin/credits/stats?date=2026-02-30')).status).toBe(400);
    expect((await call('GET', '/admin/credits/stats?when=today')).status).toBe(400);
  });
});
