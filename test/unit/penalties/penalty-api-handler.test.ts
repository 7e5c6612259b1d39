/**
 * The penalties user routes (DESIGN §8.3) over the in-memory store and a fake gateway:
 * each route's answer, and every bad input a clear 400/404/409 that changes nothing.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { PENALTY_ROUTES } from '../../../functions/commons/routes.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../../functions/core/penalties/habits.ts';
import {
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
} from '../../../functions/core/penalties/ports.ts';
import { createPenaltyApiHandler } from '../../../functions/penalty-api.ts';
import { httpApiEvent } from '../../helpers/apigw-events.ts';
import { at, FakeGateway, fixedClock } from './penalty-fixtures.ts';

const context = {} as Context;

function world() {
  const store = new InMemoryPenaltyStore();
  const gateway = new FakeGateway();
  const clock = fixedClock(at('2026-12-03', '09:00:00'));
  const handler = createPenaltyApiHandler({
    store,
    gateway,
    clock,
    freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
  });
  async function call(
    method: string,
    route: string,
    pathParameters: Record<string, string>,
    options: { body?: unknown; query?: Record<string, string> } = {},
  ) {
    const path = Object.entries(pathParameters).reduce(
      (p, [name, value]) => p.replace(`{${name}}`, encodeURIComponent(value)),
      route,
    );
    const response = await handler(
      httpApiEvent({
        method,
        path,
        routeKey: `${method} ${route}`,
        pathParameters,
        ...(options.query ? { queryStringParameters: options.query } : {}),
        ...(options.body === undefined
          ? {}
          : {
              body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
            }),
      }),
      context,
    );
    return {
      status: response.statusCode,
      headers: response.headers ?? {},
      body: response.body ? JSON.parse(response.body as string) : undefined,
    };
  }
  const habit = {
    name: 'Run',
    penaltyAmount: 500,
    currency: 'usd',
    free: false,
    recipientId: 'charity-1',
  };
  const putHabit = (userId: string, habitId: string, body: unknown = habit) =>
    call('PUT', PENALTY_ROUTES.habit, { userId, habitId }, { body });
  return { store, gateway, clock, call, putHabit, habit };
}

/** Habits created on 2026-11-30, both missed on 12-01 and 12-02 (two penalties each for u1). */
async function withPenalties() {
  const w = world();
  w.clock.time = at('2026-11-30', '08:00:00');
  await w.putHabit('u1', 'run');
  await w.putHabit('u1', 'read', { ...w.habit, name: 'Read', penaltyAmount: 300 });
  for (const date of ['2026-12-01', '2026-12-02']) {
    w.clock.time = at(date, '23:30:00');
    await assessDate(date, { store: w.store, clock: w.clock });
  }
  w.clock.time = at('2026-12-03', '09:00:00');
  return w;
}

describe('habits', () => {
  it('creates (201), updates (200) and lists habits with their streaks', async () => {
    const w = world();
    const created = await w.putHabit('u1', 'run');
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      habitId: 'run',
      ...w.habit,
      active: true,
      currentStreak: 0,
    });
    const updated = await w.putHabit('u1', 'run', { ...w.habit, name: 'Run 5k' });
    expect(updated.status).toBe(200);
    expect(updated.body.name).toBe('Run 5k');
    const list = await w.call('GET', PENALTY_ROUTES.habits, { userId: 'u1' });
    expect(list.status).toBe(200);
    expect(list.body.nextCursor).toBeNull();
    expect(list.body.items.map((h: { name: string }) => h.name)).toEqual(['Run 5k']);
  });

  it("refuses a free habit past the tier's limit with 409", async () => {
    const w = world();
    const free = { ...w.habit, free: true, penaltyAmount: 0 };
    expect((await w.putHabit('u1', 'a', free)).status).toBe(201);
    const over = await w.putHabit('u1', 'b', free);
    expect(over.status).toBe(409);
    expect(over.body.error.message).toMatch(/free habit/);
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ penaltyAmount: -1 }, 'penaltyAmount'],
    [{ penaltyAmount: 1.5 }, 'penaltyAmount'],
    [{ penaltyAmount: 0 }, 'penaltyAmount'],
    [{ currency: 'USD' }, 'currency'],
    [{ free: 'yes' }, 'free'],
    [{ color: 'red' }, 'color'],
  ])('refuses body %j with a 400 naming %s', async (change, field) => {
    const w = world();
    const response = await w.putHabit('u1', 'run', { ...w.habit, ...change });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toContain(field);
    expect(w.store.habits.size).toBe(0);
  });

  it('refuses a bad habit id, malformed JSON and an unknown user', async () => {
    const w = world();
    expect((await w.putHabit('u1', 'no_underscores')).body.error.message).toContain('habitId');
    expect((await w.putHabit('u1', 'run', '{nope')).status).toBe(400);
    const unknown = await w.call('GET', PENALTY_ROUTES.habits, { userId: 'nobody' });
    expect(unknown.status).toBe(404);
  });
});

describe('verifications', () => {
  it('records a verification idempotently and refuses future or assessed dates', async () => {
    const w = await withPenalties();
    const params = { userId: 'u1', habitId: 'run', date: '2026-12-03' };
    const first = await w.call('PUT', PENALTY_ROUTES.verification, params);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ ...params, verified: true });
    expect((await w.call('PUT', PENALTY_ROUTES.verification, params)).status).toBe(200);

    const future = await w.call('PUT', PENALTY_ROUTES.verification, {
      ...params,
      date: '2026-12-04',
    });
    expect(future.status).toBe(400);
    expect(future.body.error.message).toContain('date');
    const assessed = await w.call('PUT', PENALTY_ROUTES.verification, {
      ...params,
      date: '2026-12-01',
    });
    expect(assessed.status).toBe(400);
    const noHabit = await w.call('PUT', PENALTY_ROUTES.verification, {
      ...params,
      habitId: 'swim',
    });
    expect(noHabit.status).toBe(404);
  });
});

describe('penalties and the summary', () => {
  it('lists newest first, filters by status, pages and selects fields', async () => {
    const w = await withPenalties();
    const all = await w.call('GET', PENALTY_ROUTES.penalties, { userId: 'u1' });
    expect(all.status).toBe(200);
    expect(all.body.items.map((p: { date: string }) => p.date)).toEqual([
      '2026-12-02',
      '2026-12-02',
      '2026-12-01',
      '2026-12-01',
    ]);
    const page = await w.call(
      'GET',
      PENALTY_ROUTES.penalties,
      { userId: 'u1' },
      { query: { status: 'unpaid', limit: '3', fields: 'penaltyId,amount' } },
    );
    expect(page.body.items).toHaveLength(3);
    expect(Object.keys(page.body.items[0]).sort()).toEqual(['amount', 'penaltyId']);
    const rest = await w.call(
      'GET',
      PENALTY_ROUTES.penalties,
      { userId: 'u1' },
      { query: { status: 'unpaid', limit: '3', cursor: page.body.nextCursor } },
    );
    expect(rest.body.items).toHaveLength(1);
    expect(rest.body.nextCursor).toBeNull();
  });

  it.each([
    [{ status: 'late' }, 'status'],
    [{ limit: '0' }, 'limit'],
    [{ limit: '101' }, 'limit'],
    [{ cursor: 'garbage' }, 'cursor'],
    [{ fields: 'amount,secret' }, 'fields'],
    [{ sort: 'asc' }, 'sort'],
  ])('refuses query %j with a 400 naming %s', async (query, field) => {
    const w = await withPenalties();
    const response = await w.call('GET', PENALTY_ROUTES.penalties, { userId: 'u1' }, { query });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toContain(field);
  });

  it('summarizes unpaid penalties from the account item', async () => {
    const w = await withPenalties();
    const summary = await w.call('GET', PENALTY_ROUTES.summary, { userId: 'u1' });
    expect(summary.body).toEqual({
      userId: 'u1',
      unpaidCount: 4,
      unpaidAmount: [{ currency: 'usd', amount: 1600 }],
      oldestUnpaidDate: '2026-12-01',
    });
    expect((await w.call('GET', PENALTY_ROUTES.summary, { userId: 'nobody' })).status).toBe(404);
  });
});

describe('settlement', () => {
  it('waives with credits, pays the rest with one PaymentIntent, and refuses a second while pending', async () => {
    const w = await withPenalties();
    w.store.profiles.set('u1', { tier: 'gold', credits: 1, customerId: 'cus_1' });
    const settled = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    expect(settled.status).toBe(200);
    expect(settled.body.waived).toHaveLength(1);
    expect(settled.body.creditsUsed).toBe(1);
    expect(settled.body.payment).toMatchObject({ amount: 1300, currency: 'usd' });
    expect(settled.body.payment.penaltyIds).toHaveLength(3);
    expect(w.gateway.requests).toHaveLength(1);
    expect(w.gateway.requests[0]).toMatchObject({ userId: 'u1', customerId: 'cus_1' });

    const again = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    expect(again.status).toBe(409);
    expect(w.gateway.requests).toHaveLength(1);
  });

  it('answers 503 with Retry-After when Stripe is down, and changes nothing', async () => {
    const w = await withPenalties();
    w.gateway.failWith = new PaymentGatewayUnavailableError('down', { retryAfterSeconds: 12 });
    const response = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('12');
    expect(JSON.stringify(response.body)).not.toContain('down');
    const summary = await w.call('GET', PENALTY_ROUTES.summary, { userId: 'u1' });
    expect(summary.body.unpaidCount).toBe(4);
  });

  it("answers 409 payment_rejected with Stripe's code when Stripe refuses", async () => {
    const w = await withPenalties();
    w.gateway.failWith = new PaymentRejectedError('amount_too_small');
    const response = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('payment_rejected');
  });

  it('refuses a body and an unknown user', async () => {
    const w = await withPenalties();
    const body = await w.call(
      'POST',
      PENALTY_ROUTES.settle,
      { userId: 'u1' },
      { body: { all: true } },
    );
    expect(body.status).toBe(400);
    expect(body.body.error.message).toContain('all');
    expect((await w.call('POST', PENALTY_ROUTES.settle, { userId: 'nobody' })).status).toBe(404);
  });
});

describe('recipient totals', () => {
  it('answers zeros for a recipient nothing was paid to, and refuses a bad id', async () => {
    const w = world();
    const totals = await w.call('GET', PENALTY_ROUTES.recipientTotals, {
      recipientId: 'charity-9',
    });
    expect(totals.body).toEqual({ recipientId: 'charity-9', penaltiesPaid: 0, amounts: [] });
    const bad = await w.call('GET', PENALTY_ROUTES.recipientTotals, { recipientId: 'a b' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('recipientId');
  });
});
