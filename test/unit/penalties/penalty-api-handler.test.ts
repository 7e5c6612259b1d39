/**
 * The penalties user routes (DESIGN §8.3) over the in-memory store and a fake gateway:
 * each route's answer, and every bad input a clear 400/404/409 that changes nothing.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { METRIC } from '../../../functions/commons/metric-names.ts';
import { ConflictError } from '../../../functions/commons/penalty-http.ts';
import { PENALTY_ROUTES } from '../../../functions/commons/routes.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  type FreeHabitLimits,
  MAX_HABITS_PER_USER,
} from '../../../functions/core/penalties/habits.ts';
import {
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
  PENALTY_FIELDS,
} from '../../../functions/core/penalties/ports.ts';
import { createPenaltyAdminHandler } from '../../../functions/penalty-admin.ts';
import { createPenaltyApiHandler } from '../../../functions/penalty-api.ts';
import { httpApiEvent } from '../../helpers/apigw-events.ts';
import { testCursorSeal } from '../../helpers/cursor-seal.ts';
import { at, FakeGateway, fixedClock } from './penalty-fixtures.ts';

const context = {} as Context;

function world(options: { freeHabitLimits?: FreeHabitLimits } = {}) {
  const store = new InMemoryPenaltyStore();
  const gateway = new FakeGateway();
  const clock = fixedClock(at('2026-12-03', '09:00:00'));
  const logger = new Logger({ logLevel: 'SILENT' });
  const metrics = new Metrics({ namespace: 'Test', serviceName: 'test' });
  const handler = createPenaltyApiHandler({
    store,
    cursors: testCursorSeal(),
    gateway,
    clock,
    freeHabitLimits: options.freeHabitLimits ?? DEFAULT_FREE_HABIT_LIMITS,
    logger,
    metrics,
  });
  // The operators' routes (mark-paid) over the same store.
  const admin = createPenaltyAdminHandler({ store, clock, logger, metrics });
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
    const routeHandler = route.startsWith('/admin/') ? admin : handler;
    const response = await routeHandler(
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
  return { store, gateway, clock, metrics, call, putHabit, habit };
}

/**
 * Everything the in-memory store holds, deep-copied: accounts (habits with their
 * verified dates, summaries and the pending settlement), penalties, recipients'
 * totals, assessment progress, overpayments, profiles (credits) and the commit count.
 */
function contents(store: InMemoryPenaltyStore) {
  return structuredClone({
    accounts: [...store.accounts],
    penalties: [...store.penalties],
    recipients: [...store.recipients],
    assessments: [...store.assessments],
    overpayments: [...store.overpayments],
    profiles: [...store.profiles],
    commits: store.commits,
  });
}

/** Values no route takes for `userId`: a space, a slash, a `#`, too long, empty. */
const BAD_USER_IDS = ['a b', 'u/1', 'u#1', 'x'.repeat(129), ''];

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

  it('keeps a paused habit paused and its recipient when an update leaves them out; recipientId null clears it', async () => {
    const w = world();
    await w.putHabit('u1', 'run', { ...w.habit, active: false });
    const { recipientId: _left, ...withoutRecipient } = w.habit;
    const renamed = await w.putHabit('u1', 'run', { ...withoutRecipient, name: 'Run 5k' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Run 5k', active: false, recipientId: 'charity-1' });
    expect(await w.store.getHabit({ userId: 'u1', habitId: 'run' })).toMatchObject({
      active: false,
      recipientId: 'charity-1',
    });
    const cleared = await w.putHabit('u1', 'run', { ...w.habit, recipientId: null });
    expect(cleared.body).toMatchObject({ active: false, recipientId: null });
    const resumed = await w.putHabit('u1', 'run', { ...withoutRecipient, active: true });
    expect(resumed.body).toMatchObject({ active: true, recipientId: null });
    // On creation the left-out ones take their defaults: active, no recipient.
    const created = await w.putHabit('u1', 'read', withoutRecipient);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ active: true, recipientId: null });
  });

  it('answers a habit changed on a later day without the settings still owed to past days', async () => {
    const w = world();
    w.clock.time = at('2026-12-01', '09:00:00');
    await w.putHabit('u1', 'run');
    w.clock.time = at('2026-12-03', '00:05:00');
    const updated = await w.putHabit('u1', 'run', { ...w.habit, free: true, penaltyAmount: 0 });
    expect(updated.status).toBe(200);
    expect((await w.store.getHabit({ userId: 'u1', habitId: 'run' }))?.earlierSettings).toEqual([
      expect.objectContaining({ through: '2026-12-03', free: false }),
    ]);
    const list = await w.call('GET', PENALTY_ROUTES.habits, { userId: 'u1' });
    for (const body of [updated.body, list.body.items[0]]) {
      expect(body).toMatchObject({ habitId: 'run', free: true });
      expect(Object.keys(body)).not.toContain('earlierSettings');
    }
  });

  it('pages habits newest first with limit and a cursor bound to the user; a foreign or forged cursor is a 400', async () => {
    const w = world();
    const ids = ['a', 'b', 'c', 'd', 'e'];
    for (const [index, habitId] of ids.entries()) {
      w.clock.time = at('2026-12-01', `0${index}:00:00`);
      expect((await w.putHabit('u1', habitId)).status).toBe(201);
    }
    await w.putHabit('u2', 'x');
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await w.call(
        'GET',
        PENALTY_ROUTES.habits,
        { userId: 'u1' },
        { query: { limit: '2', ...(cursor ? { cursor } : {}) } },
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((h: { habitId: string }) => h.habitId));
      cursor = page.body.nextCursor ?? undefined;
      pages += 1;
    } while (cursor);
    expect(seen).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(pages).toBe(3);
    // The default page is 25: all five at once, no cursor.
    const all = await w.call('GET', PENALTY_ROUTES.habits, { userId: 'u1' });
    expect(all.body).toMatchObject({ nextCursor: null });
    expect(all.body.items).toHaveLength(5);

    const first = await w.call(
      'GET',
      PENALTY_ROUTES.habits,
      { userId: 'u1' },
      { query: { limit: '2' } },
    );
    const foreign = await w.call(
      'GET',
      PENALTY_ROUTES.habits,
      { userId: 'u2' },
      { query: { cursor: first.body.nextCursor } },
    );
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.message).toMatch(/cursor/);
    const forged = await w.call(
      'GET',
      PENALTY_ROUTES.habits,
      { userId: 'u1' },
      { query: { cursor: `${first.body.nextCursor}x` } },
    );
    expect(forged.status).toBe(400);
    for (const limit of ['0', '101', 'two']) {
      const bad = await w.call(
        'GET',
        PENALTY_ROUTES.habits,
        { userId: 'u1' },
        { query: { limit } },
      );
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toContain('limit');
    }
  });

  /** What the routes and the store show of a user's habits: to compare around a refused write. */
  async function habitsSeen(w: ReturnType<typeof world>, userId: string) {
    const [list, summary] = await Promise.all([
      w.call('GET', PENALTY_ROUTES.habits, { userId }, { query: { limit: '100' } }),
      w.call('GET', PENALTY_ROUTES.summary, { userId }),
    ]);
    return { list, summary, account: await w.store.getAccount(userId), store: contents(w.store) };
  }

  it("refuses a free habit past the tier's limit with 409 free_habit_limit, and changes nothing", async () => {
    const w = world();
    const free = { ...w.habit, free: true, penaltyAmount: 0 };
    expect((await w.putHabit('u1', 'a', free)).status).toBe(201);
    const before = await habitsSeen(w, 'u1');
    expect(before.list.body.items.map((h: { habitId: string }) => h.habitId)).toEqual(['a']);
    expect(before.account).toMatchObject({ habits: 1, freeHabits: 1 });

    const over = await w.putHabit('u1', 'b', free);
    expect(over.status).toBe(409);
    expect(over.body.error).toEqual({
      code: 'free_habit_limit',
      message: 'The free tier allows 1 active free habit; this one would be over the limit.',
    });
    expect(await habitsSeen(w, 'u1')).toEqual(before);
    expect(await w.store.getHabit({ userId: 'u1', habitId: 'b' })).toBeNull();
  });

  it("refuses turning a habit free past the tier's limit with 409, leaving the habit as it was", async () => {
    const w = world();
    const free = { ...w.habit, free: true, penaltyAmount: 0 };
    expect((await w.putHabit('u1', 'a', free)).status).toBe(201);
    expect((await w.putHabit('u1', 'b')).status).toBe(201);
    const before = await habitsSeen(w, 'u1');
    const stored = await w.store.getHabit({ userId: 'u1', habitId: 'b' });
    expect(stored).toMatchObject({ free: false, penaltyAmount: 500 });

    w.clock.time += 60_000;
    const over = await w.putHabit('u1', 'b', { ...free, name: 'Read' });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('free_habit_limit');
    expect(over.body.error.message).toContain('allows 1 active free habit');
    expect(await habitsSeen(w, 'u1')).toEqual(before);
    expect(await w.store.getHabit({ userId: 'u1', habitId: 'b' })).toEqual(stored);
  });

  it('refuses a first free habit when the tier allows none: no account is created (GET habits stays 404)', async () => {
    const w = world({ freeHabitLimits: { ...DEFAULT_FREE_HABIT_LIMITS, free: 0 } });
    const before = contents(w.store);
    const over = await w.putHabit('u1', 'a', { ...w.habit, free: true, penaltyAmount: 0 });
    expect(over.status).toBe(409);
    expect(over.body.error).toEqual({
      code: 'free_habit_limit',
      message: 'The free tier allows 0 active free habits; this one would be over the limit.',
    });
    expect(contents(w.store)).toEqual(before);
    expect(await w.store.getAccount('u1')).toBeNull();
    for (const route of [PENALTY_ROUTES.habits, PENALTY_ROUTES.summary]) {
      const unknown = await w.call('GET', route, { userId: 'u1' });
      expect(unknown.status, route).toBe(404);
      expect(unknown.body.error.code, route).toBe('user_not_found');
    }
    // The same user's first habit that is not free is taken: the refusal was the limit's.
    expect((await w.putHabit('u1', 'a')).status).toBe(201);
    expect((await w.call('GET', PENALTY_ROUTES.habits, { userId: 'u1' })).status).toBe(200);
  });

  it(`refuses a habit past the ${MAX_HABITS_PER_USER}-habit limit with 409 habit_limit, and changes nothing`, async () => {
    const w = world();
    for (let index = 0; index < MAX_HABITS_PER_USER; index += 1) {
      expect((await w.putHabit('u1', `h${index}`)).status).toBe(201);
    }
    const before = await habitsSeen(w, 'u1');
    expect(before.list.body.items).toHaveLength(90);
    expect(before.account).toMatchObject({ habits: 90 });

    const over = await w.putHabit('u1', 'one-more');
    expect(over.status).toBe(409);
    expect(over.body.error).toEqual({
      code: 'habit_limit',
      message: 'A user may hold at most 90 habits.',
    });
    expect(await habitsSeen(w, 'u1')).toEqual(before);
    expect(await w.store.getHabit({ userId: 'u1', habitId: 'one-more' })).toBeNull();
    // The limit counts habits, not writes: one of the 90 is still updated.
    w.clock.time += 60_000;
    expect((await w.putHabit('u1', 'h0', { ...w.habit, name: 'Run 5k' })).status).toBe(200);
  });

  /** Bodies each with one bad field (the rest valid), and the field the 400 must name. */
  const BAD_HABIT_BODIES: [Record<string, unknown>, string][] = [
    [{ name: '' }, 'name'],
    [{ penaltyAmount: -1 }, 'penaltyAmount'],
    [{ penaltyAmount: 1.5 }, 'penaltyAmount'],
    [{ penaltyAmount: 0 }, 'penaltyAmount'],
    // Below Stripe's smallest charge: settling such penalties alone would always be refused.
    [{ penaltyAmount: 49 }, 'penaltyAmount'],
    [{ penaltyAmount: 29, currency: 'gbp' }, 'penaltyAmount'],
    [{ name: 'Run\nevery day' }, 'name'],
    [{ name: 'Run\u0007' }, 'name'],
    [{ currency: 'USD' }, 'currency'],
    [{ currency: 'abc' }, 'currency'],
    // ISO 4217's test and "no currency" codes are not money.
    [{ currency: 'xts' }, 'currency'],
    [{ currency: 'xxx' }, 'currency'],
    [{ free: 'yes' }, 'free'],
    [{ color: 'red' }, 'color'],
    // One past the largest amount one PaymentIntent can carry (Stripe's eight digits).
    [{ penaltyAmount: 100_000_000 }, 'penaltyAmount'],
    [{ active: 'false' }, 'active'],
    [{ active: 1 }, 'active'],
    [{ active: null }, 'active'],
    [{ recipientId: 'a b' }, 'recipientId'],
    [{ recipientId: 'r/1' }, 'recipientId'],
    [{ recipientId: '' }, 'recipientId'],
    [{ recipientId: 'r'.repeat(129) }, 'recipientId'],
    [{ recipientId: 42 }, 'recipientId'],
  ];

  it.each(BAD_HABIT_BODIES)(
    'refuses body %j with a 400 naming %s, creating nothing',
    async (change, field) => {
      const w = world();
      const before = contents(w.store);
      const response = await w.putHabit('u1', 'run', { ...w.habit, ...change });
      expect(response.status).toBe(400);
      expect(response.body.error.message).toContain(field);
      expect(await w.store.listHabits('u1')).toEqual([]);
      expect(contents(w.store)).toEqual(before);
      expect((await w.call('GET', PENALTY_ROUTES.habits, { userId: 'u1' })).status).toBe(404);
    },
  );

  it.each(BAD_HABIT_BODIES)(
    'refuses an update with body %j with a 400 naming %s, leaving the habit as it was',
    async (change, field) => {
      const w = world();
      expect((await w.putHabit('u1', 'run')).status).toBe(201);
      const before = contents(w.store);
      w.clock.time += 60_000;
      const response = await w.putHabit('u1', 'run', { ...w.habit, ...change });
      expect(response.status).toBe(400);
      expect(response.body.error.message).toContain(field);
      expect(contents(w.store)).toEqual(before);
    },
  );

  it.each(['name', 'penaltyAmount', 'currency', 'free'])(
    'refuses a body without %s with a 400 saying it is required, creating nothing',
    async (field) => {
      const w = world();
      const before = contents(w.store);
      const body = Object.fromEntries(Object.entries(w.habit).filter(([key]) => key !== field));
      const response = await w.putHabit('u1', 'run', body);
      expect(response.status).toBe(400);
      expect(response.body.error).toEqual({
        code: 'invalid_parameter',
        message: `${field} is required.`,
      });
      expect(contents(w.store)).toEqual(before);
    },
  );

  it("takes a penalty of exactly the largest amount one payment carries (Stripe's eight digits)", async () => {
    const w = world();
    const response = await w.putHabit('u1', 'run', { ...w.habit, penaltyAmount: 99_999_999 });
    expect(response.status).toBe(201);
    expect(response.body.penaltyAmount).toBe(99_999_999);
  });

  it("takes a penalty of exactly Stripe's smallest charge, and says what that is when below it", async () => {
    const w = world();
    const below = await w.putHabit('u1', 'run', { ...w.habit, penaltyAmount: 49, currency: 'usd' });
    expect(below.body.error.message).toContain("at least 50 (Stripe's smallest charge in usd");
    const at = await w.putHabit('u1', 'run', { ...w.habit, penaltyAmount: 50, currency: 'usd' });
    expect(at.status).toBe(201);
    // A free habit never costs a penalty: its amount is not charged.
    const free = await w.putHabit('u1', 'walk', { ...w.habit, free: true, penaltyAmount: 10 });
    expect(free.status).toBe(201);
  });

  it('takes any currency in use and names with any printable characters', async () => {
    const w = world();
    for (const [habitId, change] of [
      ['jpy', { currency: 'jpy', name: 'Laufen 🏃 — 毎日' }],
      ['eur', { currency: 'eur', name: '  Swim  ' }],
    ] as const) {
      const response = await w.putHabit('u1', habitId, { ...w.habit, ...change });
      expect(response.status, habitId).toBe(201);
      expect(response.body.currency).toBe(change.currency);
    }
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

  it('refuses a date before the habit was created, and records nothing', async () => {
    const w = await withPenalties();
    const created = await w.call(
      'PUT',
      PENALTY_ROUTES.habit,
      { userId: 'u1', habitId: 'swim' },
      { body: { name: 'Swim', penaltyAmount: 300, currency: 'usd', free: false } },
    );
    expect(created.status).toBe(201);
    const createdOn = String(created.body.createdAt).slice(0, 10);
    const dayBefore = new Date(Date.parse(createdOn) - 86_400_000).toISOString().slice(0, 10);
    const before = contents(w.store);
    const early = await w.call('PUT', PENALTY_ROUTES.verification, {
      userId: 'u1',
      habitId: 'swim',
      date: dayBefore,
    });
    expect(early.status).toBe(400);
    expect(early.body.error.message).toContain(`date ${dayBefore} is before the habit was created`);
    expect(contents(w.store)).toEqual(before);
    const onTheDay = await w.call('PUT', PENALTY_ROUTES.verification, {
      userId: 'u1',
      habitId: 'swim',
      date: createdOn,
    });
    expect(onTheDay.status).toBe(200);
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
    // Every attribute a full item has can be selected, the user id included.
    const selected = await w.call(
      'GET',
      PENALTY_ROUTES.penalties,
      { userId: 'u1' },
      { query: { fields: 'userId,status', limit: '1' } },
    );
    expect(selected.body.items).toEqual([{ userId: 'u1', status: 'unpaid' }]);
    expect(Object.keys(all.body.items[0]).sort()).toEqual([...PENALTY_FIELDS].sort());
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

  it('refuses with a 400 a cursor this deployment did not seal, or sealed for another list', async () => {
    const w = await withPenalties();
    const first = await w.call(
      'GET',
      PENALTY_ROUTES.penalties,
      { userId: 'u1' },
      { query: { limit: '1' } },
    );
    const sealed = first.body.nextCursor as string;
    const storeCursor = sealed.slice(0, sealed.lastIndexOf('.'));
    for (const cursor of [
      storeCursor,
      `${storeCursor}.${'A'.repeat(22)}`,
      (await testCursorSeal().seal(PENALTY_ROUTES.penalties, storeCursor)) as string,
    ]) {
      const response = await w.call(
        'GET',
        PENALTY_ROUTES.penalties,
        { userId: 'u1' },
        { query: { limit: '1', cursor } },
      );
      expect(response.status).toBe(400);
      expect(response.body.error.message).toContain('cursor');
    }
    const next = await w.call(
      'GET',
      PENALTY_ROUTES.penalties,
      { userId: 'u1' },
      { query: { limit: '1', cursor: sealed } },
    );
    expect(next.status).toBe(200);
    expect(next.body.items).toHaveLength(1);
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

  it('keeps the oldest unpaid date on the account item as penalties are settled and marked paid', async () => {
    const w = await withPenalties();
    const oldest = async () =>
      (await w.call('GET', PENALTY_ROUTES.summary, { userId: 'u1' })).body.oldestUnpaidDate;
    const unpaid = (await w.call('GET', PENALTY_ROUTES.penalties, { userId: 'u1' })).body.items as {
      penaltyId: string;
      date: string;
    }[];
    const onFirstDay = unpaid.filter((p) => p.date === '2026-12-01').map((p) => p.penaltyId);
    const later = unpaid.filter((p) => p.date !== '2026-12-01').map((p) => p.penaltyId);
    expect(onFirstDay.length).toBeGreaterThan(0);
    expect(later.length).toBeGreaterThan(0);
    // The index is never asked: the date comes from the one account item.
    const listing = vi.spyOn(w.store, 'oldestUnpaid');
    await w.call('POST', PENALTY_ROUTES.markPaid, {}, { body: { penaltyIds: onFirstDay } });
    expect(await oldest()).toBe('2026-12-02');
    await w.call('POST', PENALTY_ROUTES.markPaid, {}, { body: { penaltyIds: later } });
    expect(await oldest()).toBeNull();
    expect(listing).not.toHaveBeenCalled();
  });

  it('answers a user with a profile but no habit yet with empty lists and an empty summary', async () => {
    const w = await withPenalties();
    w.store.profiles.set('newcomer', { tier: 'free', credits: 0, customerId: null });
    const user = { userId: 'newcomer' };
    expect(await w.call('GET', PENALTY_ROUTES.habits, user)).toMatchObject({
      status: 200,
      body: { items: [], nextCursor: null },
    });
    expect(await w.call('GET', PENALTY_ROUTES.penalties, user)).toMatchObject({
      status: 200,
      body: { items: [], nextCursor: null },
    });
    expect(await w.call('GET', PENALTY_ROUTES.summary, user)).toMatchObject({
      status: 200,
      body: { userId: 'newcomer', unpaidCount: 0, unpaidAmount: [], oldestUnpaidDate: null },
    });
    expect(await w.call('POST', PENALTY_ROUTES.settle, user)).toMatchObject({
      status: 200,
      body: { waived: [], creditsUsed: 0, payment: null },
    });
    expect(w.gateway.requests).toHaveLength(0);
    expect(w.store.accounts.has('newcomer')).toBe(false);
  });
});

/** Every penalty of the user (all statuses), the summary, and the whole store: around a refused settle. */
async function settlementSeen(w: ReturnType<typeof world>, userId: string) {
  const [penalties, summary] = await Promise.all([
    w.call('GET', PENALTY_ROUTES.penalties, { userId }, { query: { limit: '100' } }),
    w.call('GET', PENALTY_ROUTES.summary, { userId }),
  ]);
  expect(penalties.body.nextCursor).toBeNull();
  return { penalties: penalties.body.items, summary: summary.body, store: contents(w.store) };
}

const statusesOf = (penalties: { status: string }[]) => penalties.map((p) => p.status).sort();

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

    const before = await settlementSeen(w, 'u1');
    expect(statusesOf(before.penalties)).toEqual(['pending', 'pending', 'pending', 'waived']);
    const again = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    expect(again.status).toBe(409);
    expect(w.gateway.requests).toHaveLength(1);
    // Refused whole: no penalty moved, the summary and the lock as they were.
    expect(await settlementSeen(w, 'u1')).toEqual(before);
    // A caller whose first response was lost takes the same payment sheet up again.
    expect(again.body.error).toEqual({
      code: 'settlement_pending',
      message: expect.stringContaining(settled.body.payment.paymentIntentId),
      payment: settled.body.payment,
    });
  });

  it('refuses a second settle while one is pending even with new unpaid penalties and credits: nothing waived, nothing charged', async () => {
    const w = await withPenalties();
    w.clock.time = at('2026-12-03', '23:45:00');
    const settled = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    expect(settled.status).toBe(200);
    expect(settled.body.payment.penaltyIds).toHaveLength(4);
    // Within the hour (not yet abandoned): 12-03 is assessed, both habits missed, and credits arrive.
    w.clock.time = at('2026-12-04', '00:15:00');
    await assessDate('2026-12-03', { store: w.store, clock: w.clock });
    w.store.profiles.set('u1', { tier: 'gold', credits: 2, customerId: 'cus_1' });
    w.clock.time = at('2026-12-04', '00:20:00');
    const before = await settlementSeen(w, 'u1');
    expect(statusesOf(before.penalties)).toEqual([
      'pending',
      'pending',
      'pending',
      'pending',
      'unpaid',
      'unpaid',
    ]);
    expect(before.summary).toMatchObject({ unpaidCount: 2, oldestUnpaidDate: '2026-12-03' });

    const again = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('settlement_pending');
    expect(await settlementSeen(w, 'u1')).toEqual(before);
    expect((await w.store.getUserBilling('u1')).credits).toBe(2);
    expect(w.gateway.requests).toHaveLength(1);
    expect(w.gateway.cancels).toEqual([]);
  });

  it('never logs the client secret a 409 settlement_pending answers with, nor a 5xx', async () => {
    const w = await withPenalties();
    const settled = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
    const secret = settled.body.payment.clientSecret as string;
    const lines: string[] = [];
    const capture = (chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    };
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    try {
      const handler = createPenaltyApiHandler({
        store: w.store,
        cursors: testCursorSeal(),
        gateway: w.gateway,
        clock: w.clock,
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
        logger: new Logger({ logLevel: 'DEBUG' }),
        metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
      });
      const event = httpApiEvent({
        method: 'POST',
        path: '/users/u1/penalties/settle',
        routeKey: `POST ${PENALTY_ROUTES.settle}`,
        pathParameters: { userId: 'u1' },
      });
      const again = await handler(event, context);
      expect(again.statusCode).toBe(409);
      expect(again.body).toContain(secret);
      // The same error logged whole, as a 5xx would be, still leaves the details out.
      const conflict = new ConflictError('settlement_pending', 'x', {
        details: { payment: settled.body.payment },
      });
      new Logger({ logLevel: 'DEBUG' }).error('Request failed', { error: conflict });
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(lines.some((line) => line.includes('Request rejected'))).toBe(true);
    expect(lines.some((line) => line.includes('Request failed'))).toBe(true);
    expect(lines.filter((line) => line.includes(secret))).toEqual([]);
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

  describe('the PenaltySettlementFailures metric', () => {
    const failuresCounted = (w: ReturnType<typeof world>) => {
      const spy = vi.spyOn(w.metrics, 'addMetric');
      return () =>
        spy.mock.calls.filter(([name]) => name === METRIC.penaltySettlementFailures).length;
    };

    it('does not count a 409 settlement_pending (a second settle while one is pending)', async () => {
      const w = await withPenalties();
      expect((await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' })).status).toBe(200);
      const counted = failuresCounted(w);
      const again = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('settlement_pending');
      expect(counted()).toBe(0);
    });

    it('does not count a 409 settlement_conflict (penalties moving under every attempt)', async () => {
      const w = await withPenalties();
      vi.spyOn(w.store, 'commitTransitions').mockResolvedValue({
        status: 'conflict',
        reason: 'penalty-changed',
      });
      const counted = failuresCounted(w);
      const response = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('settlement_conflict');
      expect(counted()).toBe(0);
    });

    it('does not count a 404 unknown user nor a 400 bad request', async () => {
      const w = await withPenalties();
      const counted = failuresCounted(w);
      expect((await w.call('POST', PENALTY_ROUTES.settle, { userId: 'nobody' })).status).toBe(404);
      expect((await w.call('POST', PENALTY_ROUTES.settle, { userId: 'a b' })).status).toBe(400);
      expect(counted()).toBe(0);
    });

    it('counts a 503 (Stripe unavailable) once', async () => {
      const w = await withPenalties();
      w.gateway.failWith = new PaymentGatewayUnavailableError('down', { retryAfterSeconds: 3 });
      const counted = failuresCounted(w);
      expect((await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' })).status).toBe(503);
      expect(counted()).toBe(1);
    });

    it('counts an unexpected error (500) once', async () => {
      const w = await withPenalties();
      vi.spyOn(w.store, 'getUserBilling').mockRejectedValue(new Error('table gone'));
      const counted = failuresCounted(w);
      const response = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
      expect(response.status).toBe(500);
      expect(JSON.stringify(response.body)).not.toContain('table gone');
      expect(counted()).toBe(1);
    });

    it('counts Stripe refusing the payment (409 payment_rejected)', async () => {
      const w = await withPenalties();
      const counted = failuresCounted(w);
      w.gateway.failWith = new PaymentRejectedError('amount_too_small');
      const rejected = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' });
      expect(rejected.status).toBe(409);
      expect(rejected.body.error.code).toBe('payment_rejected');
      expect(counted()).toBe(1);
    });
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

describe('bad input on every route: a 400 naming the field, and nothing changed', () => {
  /** Each route with valid parameters and body, so only the one bad part is wrong. */
  const ROUTES: {
    method: string;
    route: string;
    params: Record<string, string>;
    body?: unknown;
  }[] = [
    { method: 'PUT', route: PENALTY_ROUTES.habit, params: { userId: 'u1', habitId: 'run' } },
    { method: 'GET', route: PENALTY_ROUTES.habits, params: { userId: 'u1' } },
    {
      method: 'PUT',
      route: PENALTY_ROUTES.verification,
      params: { userId: 'u1', habitId: 'run', date: '2026-12-03' },
    },
    { method: 'GET', route: PENALTY_ROUTES.penalties, params: { userId: 'u1' } },
    { method: 'GET', route: PENALTY_ROUTES.summary, params: { userId: 'u1' } },
    { method: 'POST', route: PENALTY_ROUTES.settle, params: { userId: 'u1' } },
    { method: 'GET', route: PENALTY_ROUTES.recipientTotals, params: { recipientId: 'charity-1' } },
    {
      method: 'POST',
      route: PENALTY_ROUTES.markPaid,
      params: {},
      body: { penaltyIds: ['pen_u1_run_2026-12-01'] },
    },
    { method: 'POST', route: PENALTY_ROUTES.assess, params: {}, body: { date: '2026-12-02' } },
  ];
  const bodyOf = (w: ReturnType<typeof world>, entry: (typeof ROUTES)[number]) =>
    entry.route === PENALTY_ROUTES.habit ? w.habit : entry.body;

  it.each(ROUTES.map((entry) => [`${entry.method} ${entry.route}`, entry] as const))(
    '%s: an unknown query parameter is a 400 naming it',
    async (_name, entry) => {
      const w = await withPenalties();
      w.store.profiles.set('u1', { tier: 'gold', credits: 2, customerId: 'cus_1' });
      const before = contents(w.store);
      const body = bodyOf(w, entry);
      const response = await w.call(entry.method, entry.route, entry.params, {
        query: { verbose: '1' },
        ...(body === undefined ? {} : { body }),
      });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('unknown_parameter');
      expect(response.body.error.message).toContain('verbose');
      expect(contents(w.store)).toEqual(before);
      expect(w.gateway.requests).toHaveLength(0);
    },
  );

  const userRoutes = ROUTES.filter((entry) => 'userId' in entry.params);
  it.each(
    userRoutes.flatMap((entry) =>
      BAD_USER_IDS.map((userId) => [`${entry.method} ${entry.route}`, userId, entry] as const),
    ),
  )('%s: userId %j is a 400 naming userId', async (_name, userId, entry) => {
    const w = await withPenalties();
    w.store.profiles.set('u1', { tier: 'gold', credits: 2, customerId: 'cus_1' });
    const before = contents(w.store);
    const body = bodyOf(w, entry);
    const response = await w.call(
      entry.method,
      entry.route,
      { ...entry.params, userId },
      body === undefined ? {} : { body },
    );
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_parameter');
    expect(response.body.error.message).toMatch(/^userId /);
    expect(contents(w.store)).toEqual(before);
    expect(w.gateway.requests).toHaveLength(0);
  });

  it('GET penalties and PUT verification answer 404 for an unknown user', async () => {
    const w = await withPenalties();
    const before = contents(w.store);
    const penalties = await w.call('GET', PENALTY_ROUTES.penalties, { userId: 'nobody' });
    expect(penalties.status).toBe(404);
    const verification = await w.call('PUT', PENALTY_ROUTES.verification, {
      userId: 'nobody',
      habitId: 'run',
      date: '2026-12-03',
    });
    expect(verification.status).toBe(404);
    expect(contents(w.store)).toEqual(before);
  });

  describe('PUT verification', () => {
    const valid = { userId: 'u1', habitId: 'run', date: '2026-12-03' };
    it.each([
      [{ date: '2026-12-1' }, 'date'],
      [{ date: '2026-02-30' }, 'date'],
      [{ date: '12/03/2026' }, 'date'],
      [{ date: 'yesterday' }, 'date'],
      [{ date: '2026-12-03T00:00:00Z' }, 'date'],
      // Future and already assessed: well-formed, refused by the rule.
      [{ date: '2026-12-04' }, 'date'],
      [{ date: '2026-12-02' }, 'date'],
      [{ habitId: 'run_5k' }, 'habitId'],
      [{ habitId: 'a b' }, 'habitId'],
      [{ habitId: 'h'.repeat(65) }, 'habitId'],
    ])('refuses %j with a 400 naming %s and records nothing', async (change, field) => {
      const w = await withPenalties();
      const before = contents(w.store);
      const response = await w.call('PUT', PENALTY_ROUTES.verification, { ...valid, ...change });
      expect(response.status).toBe(400);
      expect(response.body.error.message).toContain(field);
      expect(contents(w.store)).toEqual(before);
    });

    it('refuses a body with a 400 naming its field, and records nothing', async () => {
      const w = await withPenalties();
      const before = contents(w.store);
      const response = await w.call('PUT', PENALTY_ROUTES.verification, valid, {
        body: { done: true },
      });
      expect(response.status).toBe(400);
      expect(response.body.error.message).toContain('done');
      expect(contents(w.store)).toEqual(before);
      // The same request without the body is recorded: the 400 was the body's.
      expect((await w.call('PUT', PENALTY_ROUTES.verification, valid)).status).toBe(200);
      expect(contents(w.store)).not.toEqual(before);
    });
  });

  describe('POST settle', () => {
    it.each([
      [{ all: true }, 'all'],
      ['{nope', 'JSON'],
      [[1], 'object'],
    ])(
      'refuses body %j with a 400 (%s): no credit spent, no penalty moved, Stripe not called',
      async (body, field) => {
        const w = await withPenalties();
        w.store.profiles.set('u1', { tier: 'gold', credits: 2, customerId: 'cus_1' });
        const before = contents(w.store);
        const response = await w.call('POST', PENALTY_ROUTES.settle, { userId: 'u1' }, { body });
        expect(response.status).toBe(400);
        expect(response.body.error.message).toContain(field);
        expect(contents(w.store)).toEqual(before);
        expect(w.gateway.requests).toHaveLength(0);
        expect((await w.store.getAccount('u1'))?.pending).toBeNull();
      },
    );
  });

  describe('POST mark-paid', () => {
    const unpaidId = 'pen_u1_run_2026-12-01';
    it.each([
      [{ penaltyIds: [unpaidId], paymentId: 'nope' }, 'paymentId'],
      [{ penaltyIds: [unpaidId], paymentId: 42 }, 'paymentId'],
      [{ penaltyIds: [unpaidId], note: 'by hand' }, 'note'],
      [{ penaltyIds: [unpaidId, ''] }, 'penaltyIds'],
      [{ penaltyIds: [unpaidId, 'p'.repeat(301)] }, 'penaltyIds'],
      [
        { penaltyIds: [unpaidId, ...Array.from({ length: 100 }, (_, i) => `pen_u1_x_${i}`)] },
        'penaltyIds',
      ],
      [{ penaltyIds: unpaidId }, 'penaltyIds'],
      [{}, 'penaltyIds'],
      ['{nope', 'JSON'],
    ])('refuses %j with a 400 naming %s and marks nothing paid', async (body, field) => {
      const w = await withPenalties();
      const before = contents(w.store);
      const response = await w.call('POST', PENALTY_ROUTES.markPaid, {}, { body });
      expect(response.status).toBe(400);
      expect(response.body.error.message).toContain(field);
      expect(contents(w.store)).toEqual(before);
      expect(w.store.penalties.get(unpaidId)?.status).toBe('unpaid');
    });
  });

  it('GET penalties refuses a malformed fields list, limit and status, naming each', async () => {
    const w = await withPenalties();
    for (const [query, field] of [
      [{ fields: '' }, 'fields'],
      [{ fields: 'amount,,date' }, 'fields'],
      [{ limit: 'ten' }, 'limit'],
      [{ limit: '-1' }, 'limit'],
      [{ status: 'unpaid,paid' }, 'status'],
    ] as const) {
      const response = await w.call('GET', PENALTY_ROUTES.penalties, { userId: 'u1' }, { query });
      expect(response.status, JSON.stringify(query)).toBe(400);
      expect(response.body.error.message).toContain(field);
    }
  });

  it('GET recipient totals refuses malformed recipient ids, naming recipientId', async () => {
    const w = world();
    for (const recipientId of ['', 'a/b', 'r'.repeat(129), 'a#b']) {
      const response = await w.call('GET', PENALTY_ROUTES.recipientTotals, { recipientId });
      expect(response.status, recipientId).toBe(400);
      expect(response.body.error.message).toContain('recipientId');
    }
  });
});
