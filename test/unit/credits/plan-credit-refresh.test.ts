/** The planner: due slots, catch-up, explicit slots, paging, a run that stops half-way. */
import { describe, expect, it } from 'vitest';
import type { InMemoryCreditStore } from '../../../functions/adapters/memory/in-memory-credit-store.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../../functions/core/credits/allowances.ts';
import {
  CreditRequestError,
  DEFAULT_ENQUEUE_BATCH,
  DEFAULT_PAGE_SIZE,
  dueSlots,
  isCalendarDate,
  type PlanDeps,
  planCreditRefresh,
  plannedPrefix,
  previousPeriod,
  slotLagMinutes,
} from '../../../functions/core/credits/plan-credit-refresh.ts';
import type { RefreshWork } from '../../../functions/core/credits/ports.ts';
import { refreshCredits } from '../../../functions/core/credits/refresh-credits.ts';
import { SLOTS_PER_DAY } from '../../../functions/core/credits/refresh-slot.ts';
import { at, fakes, userInSlot, usersInSlot } from './credit-fixtures.ts';

const today = '2026-12-03';
const yesterday = '2026-12-02';

/** Records every slot of `period` as planned (a day the planner ran through). */
async function planned(store: InMemoryCreditStore, period: string, slots = SLOTS_PER_DAY) {
  for (let slot = 0; slot < slots; slot++) await store.recordPlanned(period, slot, 0, 0);
}

function setup(users: string[], options: Partial<PlanDeps> = {}) {
  const { store, queue } = fakes(users);
  const deps: PlanDeps = { store, queue, runLog: store, ...options };
  return { store, queue, deps };
}

const ids = (works: RefreshWork[]) => works.map((w) => w.userId).sort();

async function work(store: InMemoryCreditStore, works: RefreshWork[], now: number) {
  return refreshCredits(works, {
    store,
    runLog: store,
    allowances: DEFAULT_CREDIT_ALLOWANCES,
    clock: { now: () => now },
  });
}

describe('planCreditRefresh: the due slots', () => {
  it('plans every slot from the planned prefix up to the slot of now', async () => {
    const inSlot0 = usersInSlot(0, 5);
    const inSlot1 = usersInSlot(1, 1);
    const later = usersInSlot(200, 1);
    const { store, queue, deps } = setup([...inSlot0, ...inSlot1, ...later]);
    await planned(store, yesterday);
    const now = at('2026-12-03T00:07:00Z');
    const result = await planCreditRefresh({ now }, deps);
    expect(result).toEqual({
      planned: 6,
      slots: [
        { period: today, slot: 0, planned: 5 },
        { period: today, slot: 1, planned: 1 },
      ],
    });
    const works = queue.drain();
    expect(ids(works)).toEqual([...inSlot0, ...inSlot1].sort());
    expect(works).toContainEqual({
      userId: inSlot1[0],
      tier: 'silver',
      period: today,
      slot: 1,
      plannedAt: now,
    });
    expect(await store.plannedSlots(today)).toEqual([0, 1]);
    expect(await store.readCounters(today)).toMatchObject({ planned: 6, lastRunAt: now });
  });

  it('catches up a missed run with the next one', async () => {
    const users = [2, 3, 4, 5, 6, 7].map((slot) => userInSlot(slot, `m${slot}-`));
    const { store, queue, deps } = setup(users);
    await planned(store, yesterday);
    await planned(store, today, 2);
    // The runs of 00:10 to 00:25 were lost; the 00:30 run plans 2-6 (7 is not due).
    const result = await planCreditRefresh({ now: at('2026-12-03T00:30:00Z') }, deps);
    expect(result.slots.map((s) => s.slot)).toEqual([2, 3, 4, 5, 6]);
    expect(ids(queue.drain())).toEqual(users.slice(0, 5).sort());
    expect(plannedPrefix(await store.plannedSlots(today))).toBe(7);
  });

  it('plans nothing more for a late or repeated run', async () => {
    const { store, queue, deps } = setup(usersInSlot(0, 3));
    await planned(store, yesterday);
    await planCreditRefresh({ now: at('2026-12-03T00:06:00Z') }, deps);
    queue.drain();
    for (const iso of ['2026-12-03T00:06:00Z', '2026-12-03T00:01:00Z']) {
      expect(await planCreditRefresh({ now: at(iso) }, deps)).toEqual({ planned: 0, slots: [] });
    }
    expect(queue.batches).toEqual([]);
  });

  it("catches up yesterday's missed slots at the first run of a day, with yesterday's period", async () => {
    const late = userInSlot(285, 'late-');
    const early = userInSlot(0, 'early-');
    const { store, queue, deps } = setup([late, early]);
    // Yesterday's planner ran until 23:20; the runs from 23:25 on were lost.
    await planned(store, yesterday, 281);
    const first = await planCreditRefresh({ now: at('2026-12-03T00:01:00Z') }, deps);
    expect(first.slots.map((s) => `${s.period}#${s.slot}`)).toEqual([
      ...[281, 282, 283, 284, 285, 286, 287].map((slot) => `${yesterday}#${slot}`),
      `${today}#0`,
    ]);
    const works = queue.drain();
    expect(works).toContainEqual(
      expect.objectContaining({ userId: late, period: yesterday, slot: 285 }),
    );
    expect(works).toContainEqual(
      expect.objectContaining({ userId: early, period: today, slot: 0 }),
    );
    expect(await store.plannedSlots(yesterday)).toHaveLength(SLOTS_PER_DAY);
    // The day's later runs find yesterday complete.
    const next = await planCreditRefresh({ now: at('2026-12-03T00:05:00Z') }, deps);
    expect(next.slots).toEqual([{ period: today, slot: 1, planned: 0 }]);
  });

  it('catches up a whole day the planner missed, and nothing older', async () => {
    const user = userInSlot(100, 'u-');
    const { store, queue, deps } = setup([user]);
    // The planner ran on the 1st until 23:50, then nothing on the 2nd.
    await planned(store, '2026-12-01', 287);
    const result = await planCreditRefresh({ now: at('2026-12-03T00:00:00Z') }, deps);
    expect(result.slots.filter((s) => s.period === yesterday)).toHaveLength(SLOTS_PER_DAY);
    expect(result.slots.filter((s) => s.period === today)).toEqual([
      { period: today, slot: 0, planned: 0 },
    ]);
    expect(queue.drain()).toEqual([expect.objectContaining({ userId: user, period: yesterday })]);
    expect(await store.plannedSlots('2026-12-01')).toHaveLength(287);
  });

  it('does not backfill yesterday on a system that never planned before (first deploy)', async () => {
    const users = [userInSlot(0, 'new-'), userInSlot(100, 'old-')];
    const { store, queue, deps } = setup(users);
    const result = await planCreditRefresh({ now: at('2026-12-03T00:03:00Z') }, deps);
    expect(result).toEqual({ planned: 1, slots: [{ period: today, slot: 0, planned: 1 }] });
    expect(queue.drain()).toEqual([expect.objectContaining({ userId: users[0], period: today })]);
    expect(await store.plannedSlots(yesterday)).toEqual([]);
  });

  it('re-plans a slot an operator planned ahead of the prefix, once the prefix reaches it', async () => {
    const { store, deps } = setup([]);
    await planned(store, yesterday);
    await planned(store, today, 3);
    await store.recordPlanned(today, 5, 0, 0);
    const result = await planCreditRefresh({ now: at('2026-12-03T00:25:00Z') }, deps);
    // 0-2 and 5 planned: the prefix ends at 2, so 3-5 are due (5 again: harmless).
    expect(result.slots.map((s) => s.slot)).toEqual([3, 4, 5]);
  });
});

describe('planCreditRefresh: explicit slots and dates', () => {
  it('plans exactly the slots asked, for today by default, in order and once each', async () => {
    const users = [3, 7, 250].map((slot) => userInSlot(slot, `x${slot}-`));
    const { store, queue, deps } = setup([...users, userInSlot(0, 'due-')]);
    const now = at('2026-12-03T00:02:00Z');
    const result = await planCreditRefresh({ now, slots: [7, 250, 3, 7] }, deps);
    expect(result.slots).toEqual([
      { period: today, slot: 3, planned: 1 },
      { period: today, slot: 7, planned: 1 },
      { period: today, slot: 250, planned: 1 },
    ]);
    expect(ids(queue.drain())).toEqual(users.sort());
    // No due-slot logic: neither slot 0 nor yesterday was looked at.
    expect(store.calls.get('plannedSlots')).toBeUndefined();
    expect(await store.plannedSlots(today)).toEqual([3, 7, 250]);
  });

  it('plans the slots asked of a past date, for that period', async () => {
    const user = userInSlot(5, 'p-');
    const { store, queue, deps } = setup([user]);
    store.putProfile({ userId: user, tier: 'gold', period: '2026-11-30' });
    const result = await planCreditRefresh(
      { now: at('2026-12-03T09:00:00Z'), slots: [5], period: '2026-12-01' },
      deps,
    );
    expect(result).toEqual({ planned: 1, slots: [{ period: '2026-12-01', slot: 5, planned: 1 }] });
    expect(queue.drain()).toEqual([
      expect.objectContaining({ userId: user, tier: 'gold', period: '2026-12-01' }),
    ]);
  });

  it('plans the rest of a past date when no slots are asked (and not the day before it)', async () => {
    const { store, deps } = setup([]);
    await planned(store, '2026-12-01', 100);
    const result = await planCreditRefresh(
      { now: at('2026-12-03T09:00:00Z'), period: '2026-12-01' },
      deps,
    );
    expect(result.slots.map((s) => s.slot)).toEqual(Array.from({ length: 188 }, (_, i) => 100 + i));
    expect(result.slots.every((s) => s.period === '2026-12-01')).toBe(true);
  });

  it.each([
    [{ slots: [288] }, 'slots'],
    [{ slots: [-1] }, 'slots'],
    [{ slots: [1.5] }, 'slots'],
    [{ slots: [Number.NaN] }, 'slots'],
    [{ slots: [] }, 'slots'],
    [{ period: '2026-12-04' }, 'date'],
    [{ period: '2026-02-30' }, 'date'],
    [{ period: '2026-2-03' }, 'date'],
    [{ period: 'yesterday' }, 'date'],
    [{ slots: [1], period: '2027-01-01' }, 'date'],
  ])('refuses %j, naming %s, before reading anything', async (request, field) => {
    const { store, queue, deps } = setup([userInSlot(1, 'v-')]);
    const attempt = planCreditRefresh({ now: at('2026-12-03T12:00:00Z'), ...request }, deps);
    await expect(attempt).rejects.toBeInstanceOf(CreditRequestError);
    const error = await attempt.catch((e: CreditRequestError) => e);
    expect(error).toMatchObject({ name: 'CreditRequestError', field });
    expect((error as Error).message.startsWith(`${field} `)).toBe(true);
    expect(store.calls.size).toBe(0);
    expect(queue.enqueued).toBe(0);
  });

  it('refuses a bad clock or page settings as programming errors', async () => {
    const { deps } = setup([]);
    await expect(planCreditRefresh({ now: Number.NaN }, deps)).rejects.toBeInstanceOf(RangeError);
    const now = at('2026-12-03T12:00:00Z');
    await expect(planCreditRefresh({ now }, { ...deps, pageSize: 0 })).rejects.toThrow(/pageSize/);
    await expect(planCreditRefresh({ now }, { ...deps, enqueueBatch: 2.5 })).rejects.toThrow(
      /enqueueBatch/,
    );
  });
});

describe('planCreditRefresh: paging', () => {
  it('pages through a slot and enqueues in batches of enqueueBatch, a page at a time', async () => {
    const users = usersInSlot(9, 7);
    const { store, queue, deps } = setup(users, { pageSize: 2, enqueueBatch: 3 });
    const events: string[] = [];
    const usersDue = store.usersDue.bind(store);
    store.usersDue = async (query) => {
      const page = await usersDue(query);
      events.push(`page:${page.items.length}`);
      return page;
    };
    const enqueue = queue.enqueue.bind(queue);
    queue.enqueue = async (works) => {
      events.push(`enqueue:${works.length}`);
      await enqueue(works);
    };
    const result = await planCreditRefresh({ now: at('2026-12-03T12:00:00Z'), slots: [9] }, deps);
    expect(result.planned).toBe(7);
    // The first batch leaves before the slot is read to the end.
    expect(events).toEqual([
      'page:2',
      'page:2',
      'enqueue:3',
      'page:2',
      'enqueue:3',
      'page:1',
      'enqueue:1',
    ]);
    expect(ids(queue.drain())).toEqual([...users].sort());
  });

  it('defaults to pages of 100 and batches of 250', async () => {
    expect(DEFAULT_PAGE_SIZE).toBe(100);
    expect(DEFAULT_ENQUEUE_BATCH).toBe(250);
    const users = usersInSlot(4, 260);
    const { store, queue, deps } = setup(users);
    const limits: number[] = [];
    const usersDue = store.usersDue.bind(store);
    store.usersDue = (query) => {
      limits.push(query.limit);
      return usersDue(query);
    };
    await planCreditRefresh({ now: at('2026-12-03T12:00:00Z'), slots: [4] }, deps);
    expect(limits).toEqual([100, 100, 100]);
    expect(queue.batches.map((b) => b.length)).toEqual([250, 10]);
  });

  it('lists each user once while workers refresh the slot under it', async () => {
    const users = usersInSlot(11, 9);
    const { store, queue, deps } = setup(users, { pageSize: 2, enqueueBatch: 1 });
    const enqueue = queue.enqueue.bind(queue);
    const now = at('2026-12-03T12:00:00Z');
    // A worker takes each batch as soon as it is queued: those users leave the index.
    queue.enqueue = async (works) => {
      await enqueue(works);
      await work(store, [...works], now);
    };
    await planCreditRefresh({ now, slots: [11] }, deps);
    expect(ids(queue.drain())).toEqual([...users].sort());
    for (const user of users) expect(store.refreshCount(user, today)).toBe(1);
  });

  it('skips users already refreshed for the period', async () => {
    const users = usersInSlot(12, 3);
    const { store, queue, deps } = setup(users);
    store.putProfile({ userId: users[0]!, tier: 'free', period: today });
    const result = await planCreditRefresh({ now: at('2026-12-03T12:00:00Z'), slots: [12] }, deps);
    expect(result.planned).toBe(2);
    expect(ids(queue.drain())).toEqual(users.slice(1).sort());
  });
});

describe('planCreditRefresh: a run that stops half-way', () => {
  it('does not record a slot it could not enqueue whole; the next run plans it again', async () => {
    const users = usersInSlot(5, 4);
    const { store, queue, deps } = setup(users, { pageSize: 2, enqueueBatch: 2 });
    await planned(store, yesterday);
    await planned(store, today, 5);
    let sends = 0;
    queue.fault = () => {
      if (++sends === 2) throw new Error('SQS unavailable');
    };
    await expect(planCreditRefresh({ now: at('2026-12-03T00:26:00Z') }, deps)).rejects.toThrow(
      'SQS unavailable',
    );
    expect(await store.plannedSlots(today)).toEqual([0, 1, 2, 3, 4]);
    expect(queue.enqueued).toBe(2);

    queue.fault = undefined;
    const retry = await planCreditRefresh({ now: at('2026-12-03T00:30:00Z') }, deps);
    expect(retry.slots.map((s) => s.slot)).toEqual([5, 6]);
    expect(await store.plannedSlots(today)).toContain(5);
    // Two users were queued twice: each is refreshed once.
    const works = queue.drain();
    expect(works).toHaveLength(6);
    await work(store, works, at('2026-12-03T00:31:00Z'));
    for (const user of users) expect(store.refreshCount(user, today)).toBe(1);
    expect(await store.readCounters(today)).toMatchObject({ refreshed: 4, skipped: 2 });
  });

  it('keeps the slots planned before an index failure and resumes at the failed one', async () => {
    const { store, deps } = setup([]);
    await planned(store, yesterday);
    store.fault = (operation) => {
      if (operation === 'usersDue' && (store.calls.get('usersDue') ?? 0) === 3) {
        throw new Error('ProvisionedThroughputExceededException');
      }
    };
    await expect(planCreditRefresh({ now: at('2026-12-03T00:30:00Z') }, deps)).rejects.toThrow(
      'ProvisionedThroughputExceededException',
    );
    expect(await store.plannedSlots(today)).toEqual([0, 1]);
    store.fault = undefined;
    const retry = await planCreditRefresh({ now: at('2026-12-03T00:35:00Z') }, deps);
    expect(retry.slots.map((s) => s.slot)).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it('plans a slot again when recording it failed after its users were queued', async () => {
    const users = usersInSlot(0, 2);
    const { store, queue, deps } = setup(users);
    await planned(store, yesterday);
    store.fault = (operation) => {
      if (operation === 'recordPlanned') throw new Error('run log down');
    };
    await expect(planCreditRefresh({ now: at('2026-12-03T00:00:30Z') }, deps)).rejects.toThrow(
      'run log down',
    );
    store.fault = undefined;
    const retry = await planCreditRefresh({ now: at('2026-12-03T00:01:00Z') }, deps);
    expect(retry.slots).toEqual([{ period: today, slot: 0, planned: 2 }]);
    expect(queue.enqueued).toBe(4);
  });
});

describe('due-slot helpers', () => {
  it('plannedPrefix counts the slots planned from 0 without a gap', () => {
    expect(plannedPrefix([])).toBe(0);
    expect(plannedPrefix([1, 2])).toBe(0);
    expect(plannedPrefix([2, 0, 1, 4])).toBe(3);
    expect(plannedPrefix(Array.from({ length: 288 }, (_, i) => i))).toBe(288);
  });

  it('dueSlots: after the prefix up to now; a whole past day; nothing of a future one', () => {
    const now = at('2026-12-03T00:12:00Z');
    expect(dueSlots(today, now, [0])).toEqual([1, 2]);
    expect(dueSlots(today, now, [0, 1, 2, 3])).toEqual([]);
    expect(dueSlots(today, now, [0, 2])).toEqual([1, 2]);
    expect(dueSlots(yesterday, now, [])).toHaveLength(288);
    expect(
      dueSlots(
        yesterday,
        now,
        Array.from({ length: 287 }, (_, i) => i),
      ),
    ).toEqual([287]);
    expect(dueSlots('2026-12-04', now, [])).toEqual([]);
    expect(dueSlots(today, at('2026-12-03T23:59:59.999Z'), [])).toHaveLength(288);
  });

  it('previousPeriod and isCalendarDate', () => {
    expect(previousPeriod('2026-03-01')).toBe('2026-02-28');
    expect(previousPeriod('2028-03-01')).toBe('2028-02-29');
    expect(previousPeriod('2027-01-01')).toBe('2026-12-31');
    expect(isCalendarDate('2028-02-29')).toBe(true);
    expect(isCalendarDate('2026-02-29')).toBe(false);
    expect(isCalendarDate('2026-13-01')).toBe(false);
    expect(isCalendarDate('0000-00-00')).toBe(false);
  });
});

describe('slotLagMinutes: the CreditSlotLag figure', () => {
  const day = '2026-12-03';

  it('is 0 for a slot planned as it starts, and for a run that planned nothing', () => {
    expect(slotLagMinutes(at('2026-12-03T10:00:00Z'), [{ period: day, slot: 120 }])).toBe(0);
    expect(slotLagMinutes(at('2026-12-03T10:00:00Z'), [])).toBe(0);
  });

  it('is the minutes since the start of the most overdue slot: 35 for a slot planned 35 minutes late', () => {
    // Slots 120-127 (10:00-10:35) caught up by the 10:35 run: slot 120 started 35 minutes ago.
    const caughtUp = Array.from({ length: 8 }, (_, i) => ({ period: day, slot: 120 + i }));
    const lag = slotLagMinutes(at('2026-12-03T10:35:00Z'), caughtUp);
    expect(lag).toBe(35);
    // Above the CreditSlotBehind threshold (30): the alarm fires.
    expect(lag).toBeGreaterThan(30);
  });

  it("counts yesterday's slots caught up after midnight from their own start", () => {
    const lag = slotLagMinutes(at('2026-12-03T00:10:00Z'), [
      { period: '2026-12-02', slot: 287 },
      { period: day, slot: 0 },
    ]);
    expect(lag).toBe(15);
  });
});
