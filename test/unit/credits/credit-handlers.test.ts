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
