/**
 * The credits domain: stable slots, allowances, the refresh rule, the planner's due
 * slots (catch-up, paging, a run that stops half-way) and the stats, on the fakes.
 */
import { describe, expect, it } from 'vitest';
import { InMemoryCreditStore } from '../../../functions/adapters/memory/in-memory-credit-store.ts';
import { InMemoryRefreshQueue } from '../../../functions/adapters/memory/in-memory-refresh-queue.ts';
import {
  DEFAULT_CREDIT_ALLOWANCES,
  parseCreditAllowances,
} from '../../../functions/core/credits/allowances.ts';
import { creditAccountView, creditStats } from '../../../functions/core/credits/credit-stats.ts';
import {
  CreditRequestError,
  dueSlots,
  planCreditRefresh,
} from '../../../functions/core/credits/plan-credit-refresh.ts';
import { refreshCredits } from '../../../functions/core/credits/refresh-credits.ts';
import {
  periodAt,
  refreshSlotOf,
  SLOTS_PER_DAY,
  slotAt,
  slotStart,
} from '../../../functions/core/credits/refresh-slot.ts';
import { ConfigValueError } from '../../../functions/core/shared/config-values.ts';

const at = (iso: string) => Date.parse(iso);

/** A user id whose slot is `slot`. */
function userInSlot(slot: number, prefix: string): string {
  for (let i = 0; ; i++) if (refreshSlotOf(`${prefix}${i}`) === slot) return `${prefix}${i}`;
}

describe('refresh slots', () => {
  it('are stable across releases (changing these moves every user to another slot)', () => {
    expect(refreshSlotOf('demo-user')).toBe(271);
    expect(refreshSlotOf('user-1')).toBe(156);
    expect(refreshSlotOf('alice')).toBe(238);
    expect(refreshSlotOf('bob@example.com')).toBe(80);
    expect(refreshSlotOf('u_0000000001')).toBe(284);
  });

  it('spread users evenly over the 288 slots', () => {
    const counts = new Array<number>(SLOTS_PER_DAY).fill(0);
    const users = 200_000;
    for (let i = 0; i < users; i++) counts[refreshSlotOf(`user-${i}`)]! += 1;
    const mean = users / SLOTS_PER_DAY;
    // At ~694 users a slot the binomial spread is ~26; 1.2x the mean is > 5 sigma.
    expect(Math.max(...counts) / mean).toBeLessThan(1.2);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it('map moments to slots and periods at the edges of the UTC day', () => {
    expect(slotAt(at('2026-12-03T00:00:00.000Z'))).toBe(0);
    expect(slotAt(at('2026-12-03T00:04:59.999Z'))).toBe(0);
    expect(slotAt(at('2026-12-03T00:05:00.000Z'))).toBe(1);
    expect(slotAt(at('2026-12-03T23:59:59.999Z'))).toBe(287);
    expect(periodAt(at('2026-12-03T23:59:59.999Z'))).toBe('2026-12-03');
    expect(new Date(slotStart('2026-12-03', 287)).toISOString()).toBe('2026-12-03T23:55:00.000Z');
  });
});

describe('allowances', () => {
  it('default to free 1, bronze 3, silver 5, gold 10 and take partial overrides', () => {
    expect(parseCreditAllowances(undefined)).toEqual(DEFAULT_CREDIT_ALLOWANCES);
    expect(parseCreditAllowances('{"gold":12}')).toEqual({
      ...DEFAULT_CREDIT_ALLOWANCES,
      gold: 12,
    });
  });

  it.each(['{"platinum":1}', '{"gold":-1}', '{"gold":1.5}', '{"gold":1001}', '[1]', '{gold'])(
    'refuses %s',
    (value) => {
      expect(() => parseCreditAllowances(value)).toThrow(ConfigValueError);
    },
  );
});

describe('the refresh rule', () => {
  const clock = { now: () => at('2026-12-03T10:00:00Z') };
  const work = (userId: string, tier: 'free' | 'gold', period = '2026-12-03') => ({
    userId,
    tier,
    period,
    slot: refreshSlotOf(userId),
    plannedAt: at('2026-12-03T09:59:59Z'),
  });

  it('sets the balance to the allowance once per period, whatever happens after', async () => {
    const store = new InMemoryCreditStore();
    store.putProfile({ userId: 'u1', tier: 'gold', balance: 2, period: '2026-12-02' });
    const deps = { store, runLog: store, allowances: DEFAULT_CREDIT_ALLOWANCES, clock };
    const first = await refreshCredits([work('u1', 'gold')], deps);
    expect(first.results[0]!.result).toBe('refreshed');
    expect((await store.getAccount('u1'))?.balance).toBe(10);
    // Spent some, then the work runs again: nothing is granted twice.
    store.profiles.set('u1', { ...store.profiles.get('u1')!, balance: 3 });
    const again = await refreshCredits([work('u1', 'gold'), work('u1', 'gold')], deps);
    expect(again.results.map((r) => r.result)).toEqual(['already-refreshed', 'already-refreshed']);
    expect((await store.getAccount('u1'))?.balance).toBe(3);
    expect(await store.readCounters('2026-12-03')).toMatchObject({ refreshed: 1, skipped: 2 });
  });

  it("grants the allowance of the tier the user has now, not the planner's", async () => {
    const store = new InMemoryCreditStore();
    store.putProfile({ userId: 'u2', tier: 'gold' });
    const deps = { store, runLog: store, allowances: DEFAULT_CREDIT_ALLOWANCES, clock };
    const result = await refreshCredits([work('u2', 'free')], deps);
    expect(result.results[0]!.result).toBe('refreshed');
    expect(await store.getAccount('u2')).toMatchObject({ tier: 'gold', balance: 10 });
  });

  it('skips a user without a profile and fails only the user whose write fails', async () => {
    const store = new InMemoryCreditStore();
    store.putProfile({ userId: 'ok', tier: 'free' });
    store.putProfile({ userId: 'broken', tier: 'free' });
    store.fault = (operation, userId) => {
      if (operation === 'refresh' && userId === 'broken') throw new Error('ThrottlingException');
    };
    const deps = { store, runLog: store, allowances: DEFAULT_CREDIT_ALLOWANCES, clock };
    const result = await refreshCredits(
      [work('ok', 'free'), work('broken', 'free'), work('gone', 'free')],
      deps,
    );
    expect(result.results.map((r) => r.result)).toEqual(['refreshed', 'failed', 'no-profile']);
    expect(result.outcomes).toMatchObject({ refreshed: 1, failed: 1, skipped: 1 });
    const counters = await store.readCounters('2026-12-03');
    expect(counters?.recentErrors).toEqual([
      { userId: 'broken', error: 'ThrottlingException', at: '2026-12-03T10:00:00.000Z' },
    ]);
  });
});

describe('the planner', () => {
  const setup = (users: string[]) => {
    const store = new InMemoryCreditStore();
    for (const userId of users) store.putProfile({ userId, tier: 'silver' });
    const queue = new InMemoryRefreshQueue();
    return { store, queue, deps: { store, queue, runLog: store, pageSize: 2, enqueueBatch: 3 } };
  };

  it('plans every slot due since the last planned one, paging through each', async () => {
    const inSlot0 = [0, 1, 2, 3, 4].map((i) => userInSlot(0, `a${i}-`));
    const inSlot1 = [userInSlot(1, 'b-')];
    const later = [userInSlot(200, 'c-')];
    const { store, queue, deps } = setup([...inSlot0, ...inSlot1, ...later]);
    const result = await planCreditRefresh({ now: at('2026-12-03T00:07:00Z') }, deps);
    expect(result.slots.filter((s) => s.period === '2026-12-03')).toEqual([
      { period: '2026-12-03', slot: 0, planned: 5 },
      { period: '2026-12-03', slot: 1, planned: 1 },
    ]);
    expect(
      queue
        .drain()
        .map((w) => w.userId)
        .sort(),
    ).toEqual([...inSlot0, ...inSlot1].sort());
    expect(await store.plannedSlots('2026-12-03')).toEqual([0, 1]);
    // The next run plans only what is newly due.
    const next = await planCreditRefresh({ now: at('2026-12-03T00:10:00Z') }, deps);
    expect(next.slots.filter((s) => s.period === '2026-12-03').map((s) => s.slot)).toEqual([2]);
  });

  it("catches up yesterday's missed slots at the first run of a day", async () => {
    const missed = userInSlot(287, 'late-');
    const { store, queue, deps } = setup([missed]);
    // Yesterday's planner ran until 23:50, then the 23:55 run was lost.
    for (let slot = 0; slot < 287; slot++) await store.recordPlanned('2026-12-02', slot, 0, 0);
    await planCreditRefresh({ now: at('2026-12-03T00:01:00Z') }, deps);
    expect(queue.drain()).toContainEqual(
      expect.objectContaining({ userId: missed, period: '2026-12-02', slot: 287 }),
    );
  });

  it('re-plans a slot whose run stopped half-way; the refresh stays once', async () => {
    const users = [0, 1, 2, 3].map((i) => userInSlot(5, `h${i}-`));
    const { store, queue, deps: base } = setup(users);
    const deps = { ...base, enqueueBatch: 2 };
    let sends = 0;
    queue.fault = () => {
      if (++sends === 2) throw new Error('SQS unavailable');
    };
    await expect(
      planCreditRefresh({ now: at('2026-12-03T00:26:00Z'), slots: [5] }, deps),
    ).rejects.toThrow('SQS unavailable');
    expect(await store.plannedSlots('2026-12-03')).toEqual([]);
    queue.fault = undefined;
    await planCreditRefresh({ now: at('2026-12-03T00:27:00Z'), slots: [5] }, deps);
    expect(await store.plannedSlots('2026-12-03')).toEqual([5]);
    const work = queue.drain();
    const clock = { now: () => at('2026-12-03T00:28:00Z') };
    await refreshCredits(work, {
      store,
      runLog: store,
      allowances: DEFAULT_CREDIT_ALLOWANCES,
      clock,
    });
    for (const userId of users) expect(store.refreshWrites.get(`${userId}|2026-12-03`)).toBe(1);
  });

  it('refuses a slot out of range or a future date, naming the field', async () => {
    const { deps } = setup([]);
    const now = at('2026-12-03T12:00:00Z');
    await expect(planCreditRefresh({ now, slots: [288] }, deps)).rejects.toThrow(
      CreditRequestError,
    );
    await expect(planCreditRefresh({ now, slots: [1.5] }, deps)).rejects.toThrow(/^slots /);
    await expect(planCreditRefresh({ now, period: '2026-12-04' }, deps)).rejects.toThrow(/^date /);
    await expect(planCreditRefresh({ now, period: '2026-02-30' }, deps)).rejects.toThrow(/^date /);
  });

  it('knows which slots are due', () => {
    expect(dueSlots('2026-12-03', at('2026-12-03T00:12:00Z'), [0])).toEqual([1, 2]);
    expect(dueSlots('2026-12-02', at('2026-12-03T00:12:00Z'), [])).toHaveLength(288);
    expect(dueSlots('2026-12-04', at('2026-12-03T00:12:00Z'), [])).toEqual([]);
  });
});

describe('stats and the account view', () => {
  const now = at('2026-12-03T10:02:00Z');

  it('derives rate, average, next run and slots behind from the counters', () => {
    const stats = creditStats(
      '2026-12-03',
      {
        planned: 10,
        refreshed: 8,
        skipped: 1,
        failed: 2,
        totalMs: 800,
        lastRunAt: at('2026-12-03T10:00:00Z'),
        recentErrors: [],
      },
      now,
      Array.from({ length: 100 }, (_, i) => i),
    );
    expect(stats).toEqual({
      date: '2026-12-03',
      planned: 10,
      refreshed: 8,
      skipped: 1,
      failed: 2,
      successRate: 0.8,
      averageMs: 100,
      lastRunAt: '2026-12-03T10:00:00.000Z',
      nextRunAt: '2026-12-03T10:05:00.000Z',
      // Slots 0-120 are due by 10:02; 0-99 are planned.
      slotsBehind: 21,
      recentErrors: [],
    });
    expect(creditStats('2026-12-01', null, now)).toMatchObject({
      planned: 0,
      successRate: 1,
      nextRunAt: null,
      slotsBehind: 288,
    });
  });

  it('tells the user when the next refresh comes', () => {
    const account = {
      userId: 'alice',
      tier: 'silver' as const,
      balance: 4,
      allowance: 5,
      period: '2026-12-02',
      refreshSlot: 238,
      refreshedAt: null,
    };
    // Slot 238 starts at 19:50: still ahead today, and today's refresh has not happened.
    expect(creditAccountView(account, now)).toEqual({
      userId: 'alice',
      balance: 4,
      allowance: 5,
      tier: 'silver',
      period: '2026-12-02',
      refreshSlot: 238,
      nextRefreshAt: '2026-12-03T19:50:00.000Z',
    });
    expect(creditAccountView({ ...account, period: '2026-12-03' }, now).nextRefreshAt).toBe(
      '2026-12-04T19:50:00.000Z',
    );
    expect(creditAccountView({ ...account, period: '0000-00-00' }, now).period).toBeNull();
  });
});
