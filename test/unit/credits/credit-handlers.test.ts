/**
 * The credit handlers over the in-memory fakes: the worker reports only the messages
 * holding a failed user; the planner plans by the schedule's time; the read route
 * answers the contract's fields.
 */
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { InMemoryCreditStore } from '../../../functions/adapters/memory/in-memory-credit-store.ts';
import { InMemoryRefreshQueue } from '../../../functions/adapters/memory/in-memory-refresh-queue.ts';
import { encodeRefreshMessage } from '../../../functions/adapters/sqs/sqs-refresh-queue.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../../functions/core/credits/allowances.ts';
import { creditStats } from '../../../functions/core/credits/credit-stats.ts';
import { refreshSlotOf } from '../../../functions/core/credits/refresh-slot.ts';
import { createCreditPlanner } from '../../../functions/credit-planner.ts';
import { createCreditReadHandler } from '../../../functions/credit-read.ts';
import { createCreditWorker } from '../../../functions/credit-worker.ts';
import { httpApiEvent } from '../../helpers/apigw-events.ts';
import { sqsBatch } from '../../helpers/sqs-events.ts';

const context = {
  functionName: 'credit-test',
  awsRequestId: 'req-1',
  getRemainingTimeInMillis: () => 60_000,
} as Context;
const silent = {
  info: () => undefined,
  error: () => undefined,
  warn: () => undefined,
  debug: () => undefined,
};
const metrics = { addMetric: () => undefined };
const period = '2026-12-03';
const work = (userId: string) => ({
  userId,
  tier: 'bronze' as const,
  period,
  slot: refreshSlotOf(userId),
  plannedAt: Date.parse('2026-12-03T10:00:00Z'),
});

describe('credit worker', () => {
  it('fails only the message holding a user whose write failed; the rest are refreshed', async () => {
    const store = new InMemoryCreditStore();
    for (const userId of ['a', 'b', 'c', 'd']) store.putProfile({ userId, tier: 'bronze' });
    store.fault = (operation, userId) => {
      if (operation === 'refresh' && userId === 'c') throw new Error('ThrottlingException');
    };
    const handler = createCreditWorker({
      store,
      allowances: DEFAULT_CREDIT_ALLOWANCES,
      maxReceiveCount: 5,
      clock: { now: () => Date.parse('2026-12-03T10:00:01Z') },
      logger: silent as never,
      metrics: metrics as never,
    });
    const event = sqsBatch([
      encodeRefreshMessage([work('a'), work('b')]),
      encodeRefreshMessage([work('c'), work('d')]),
      'not json',
    ]);
    const response = await handler(event, context);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [event.Records[1]!.messageId, event.Records[2]!.messageId].sort(),
    );
    for (const userId of ['a', 'b', 'd']) {
      expect((await store.getAccount(userId))?.balance).toBe(3);
    }
    expect((await store.getAccount('c'))?.balance).toBe(0);
    // The redelivered message refreshes c and leaves d alone.
    store.fault = undefined;
    await handler(sqsBatch([encodeRefreshMessage([work('c'), work('d')])]), context);
    expect(store.refreshWrites.get(`d|${period}`)).toBe(1);
    expect(store.refreshWrites.get(`c|${period}`)).toBe(1);
  });
});

describe('credit worker stats: users, not deliveries', () => {
  const MAX_RECEIVES = 5;
  const users = Array.from({ length: 25 }, (_, i) => `u${String(i).padStart(2, '0')}`);

  /** 25 users in one message; `flaky` fails its first `failures` writes. */
  function setup(flaky: string, failures: number) {
    const store = new InMemoryCreditStore();
    for (const userId of users) store.putProfile({ userId, tier: 'bronze' });
    let failed = 0;
    store.fault = (operation, userId) => {
      if (operation === 'refresh' && userId === flaky && failed < failures) {
        failed += 1;
        throw new Error('ThrottlingException');
      }
    };
    const published = new Map<string, number>();
    const handler = createCreditWorker({
      store,
      allowances: DEFAULT_CREDIT_ALLOWANCES,
      maxReceiveCount: MAX_RECEIVES,
      clock: { now: () => Date.parse('2026-12-03T10:00:01Z') },
      logger: silent as never,
      metrics: {
        addMetric: (name: string, _unit: unknown, value: number) =>
          published.set(name, (published.get(name) ?? 0) + value),
      } as never,
    });
    const plan = () => sqsBatch([encodeRefreshMessage(users.map(work))]).Records[0]!;
    const message = plan();
    /** `record` (default: the one message) on its `receive`-th delivery, as SQS redelivers it. */
    const deliver = (receive: number, record = message) =>
      handler(
        {
          Records: [
            {
              ...record,
              attributes: { ...record.attributes, ApproximateReceiveCount: String(receive) },
            },
          ],
        },
        context,
      );
    const stats = async () =>
      creditStats(period, await store.readCounters(period), Date.parse('2026-12-03T12:00:00Z'));
    return { store, plan, deliver, stats, published };
  }

  it('a user failing 4 times then refreshed counts once as refreshed: none failed or skipped', async () => {
    const { store, deliver, stats, published } = setup('u07', 4);
    for (let receive = 1; receive <= 4; receive++) {
      expect((await deliver(receive)).batchItemFailures).toHaveLength(1);
    }
    expect((await deliver(5)).batchItemFailures).toEqual([]);
    for (const userId of users) expect(store.refreshCount(userId, period)).toBe(1);
    expect(await stats()).toMatchObject({ refreshed: 25, failed: 0, skipped: 0, successRate: 1 });
    expect(Object.fromEntries(published)).toMatchObject({
      CreditsRefreshed: 25,
      CreditsFailed: 0,
      CreditsSkipped: 0,
    });
  });

  it('a user failing every receive counts failed once, on the last receive before the DLQ', async () => {
    const { deliver, stats, published } = setup('u07', Number.POSITIVE_INFINITY);
    for (let receive = 1; receive <= MAX_RECEIVES; receive++) {
      expect((await deliver(receive)).batchItemFailures).toHaveLength(1);
      const expectedFailed = receive === MAX_RECEIVES ? 1 : 0;
      expect(await stats(), `receive ${receive}`).toMatchObject({
        refreshed: 24,
        failed: expectedFailed,
        skipped: 0,
      });
    }
    const final = await stats();
    expect(final.successRate).toBeCloseTo(24 / 25);
    expect(final.recentErrors.map((e) => e.userId)).toEqual(['u07']);
    expect(published.get('CreditsFailed')).toBe(1);
  });

  it('counts users already refreshed by other work as skipped once, on the first receive only', async () => {
    const { plan, deliver, stats } = setup('none', 0);
    await deliver(1);
    // The same users planned again (an operator's run): their work changes nothing.
    const duplicate = plan();
    await deliver(1, duplicate);
    await deliver(2, duplicate);
    expect(await stats()).toMatchObject({ refreshed: 25, skipped: 25, failed: 0, successRate: 1 });
  });
});

describe('credit planner', () => {
  it("plans by the schedule's time, not the invocation's", async () => {
    const store = new InMemoryCreditStore();
    let user = '';
    for (let i = 0; !user; i++) if (refreshSlotOf(`p${i}`) === 121) user = `p${i}`;
    store.putProfile({ userId: user, tier: 'gold' });
    const queue = new InMemoryRefreshQueue();
    const planner = createCreditPlanner({
      store,
      queue,
      clock: { now: () => Date.parse('2030-01-01T00:00:00Z') },
      logger: silent as never,
      metrics: metrics as never,
    });
    // Slot 121 starts at 10:05.
    const result = await planner({ scheduledTime: '2026-12-03T10:05:00Z' }, context);
    expect(result.planned).toBe(1);
    expect(queue.drain()).toEqual([
      expect.objectContaining({ userId: user, period: '2026-12-03', slot: 121 }),
    ]);
  });

  it('publishes a slot planned 35 minutes after its start as a lag of 35 minutes', async () => {
    const store = new InMemoryCreditStore();
    // Planned through slot 119 (09:55); the runs of 10:00-10:30 were missed.
    for (let slot = 0; slot < 120; slot++) {
      await store.recordPlanned('2026-12-03', slot, 0, Date.parse('2026-12-03T09:55:00Z'));
    }
    const lags: number[] = [];
    const planner = createCreditPlanner({
      store,
      queue: new InMemoryRefreshQueue(),
      logger: silent as never,
      metrics: {
        addMetric: (name: string, _unit: unknown, value: number) => {
          if (name === 'CreditSlotLag') lags.push(value);
        },
      } as never,
    });
    await planner({ scheduledTime: '2026-12-03T10:35:00Z' }, context);
    expect(lags).toEqual([35]);
    await planner({ scheduledTime: '2026-12-03T10:40:00Z' }, context);
    expect(lags).toEqual([35, 0]);
  });
});

describe('credit read route', () => {
  it('answers the contract fields, 404 for an unknown user and 400 for a bad id', async () => {
    const store = new InMemoryCreditStore();
    store.putProfile({ userId: 'alice', tier: 'silver', balance: 2, period: '2026-12-02' });
    const handler = createCreditReadHandler({
      store,
      clock: { now: () => Date.parse('2026-12-03T10:02:00Z') },
      logger: silent as never,
    });
    const get = (userId: string) =>
      handler(
        httpApiEvent({
          method: 'GET',
          routeKey: 'GET /users/{userId}/credits',
          path: `/users/${userId}/credits`,
          pathParameters: { userId },
        }),
        context,
      );
    const ok = await get('alice');
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({
      userId: 'alice',
      balance: 2,
      allowance: 0,
      tier: 'silver',
      period: '2026-12-02',
      refreshSlot: 238,
      nextRefreshAt: '2026-12-03T19:50:00.000Z',
    });
    expect((await get('nobody')).statusCode).toBe(404);
    const bad = await get('bad id!');
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).error.message).toMatch(/^userId /);
  });
});
