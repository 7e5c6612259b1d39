import { describe, expect, it } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import {
  assessAccount,
  assessDate,
  assessHabit,
  MAX_TRANSACTION_ITEMS,
  planSlices,
} from '../../../functions/core/penalties/assessment.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  MAX_HABITS_PER_USER,
} from '../../../functions/core/penalties/habits.ts';
import { saveHabit, verifyHabit } from '../../../functions/core/penalties/manage-habits.ts';
import {
  ASSESSMENT_SHARDS,
  parsePenaltyId,
  penaltyIdOf,
} from '../../../functions/core/penalties/penalty-ids.ts';
import type {
  AssessableAccount,
  AssessableHabit,
} from '../../../functions/core/penalties/ports.ts';
import { addHabit, at, fixedClock, noPause, settings } from './penalty-fixtures.ts';

const habit = (overrides: Partial<AssessableHabit> = {}): AssessableHabit => ({
  userId: 'u1',
  habitId: 'h1',
  penaltyAmount: 300,
  currency: 'eur',
  free: false,
  recipientId: null,
  currentStreak: 2,
  longestStreak: 5,
  lastAssessedDate: '2026-11-30',
  active: true,
  earlierSettings: [],
  createdAt: '2026-11-01T08:00:00.000Z',
  verifiedDates: [],
  ...overrides,
});

const account = (
  habits: AssessableHabit[],
  overrides: Partial<AssessableAccount> = {},
): AssessableAccount => ({
  userId: habits[0]?.userId ?? 'u1',
  assessedThrough: '2026-11-30',
  verifications: 3,
  habitsVersion: 7,
  habits,
  ...overrides,
});

describe('assessHabit', () => {
  it('extends the streak on a verified day', () => {
    const result = assessHabit(
      habit({ verifiedDates: ['2026-11-29', '2026-12-01', '2026-12-02'] }),
      '2026-12-01',
      'now',
    );
    expect(result).toMatchObject({
      outcome: 'verified',
      currentStreak: 3,
      longestStreak: 5,
      penalty: null,
    });
    expect(
      assessHabit(habit({ currentStreak: 5, verifiedDates: ['2026-12-01'] }), '2026-12-01', 'now')
        ?.longestStreak,
    ).toBe(6);
  });

  it('resets the streak on a miss and creates the deterministic penalty unless free', () => {
    const missed = assessHabit(habit(), '2026-12-01', '2026-12-02T00:15:00.000Z');
    expect(missed).toMatchObject({ outcome: 'missed', currentStreak: 0, longestStreak: 5 });
    expect(missed?.penalty).toEqual({
      penaltyId: 'pen_u1_h1_2026-12-01',
      userId: 'u1',
      habitId: 'h1',
      date: '2026-12-01',
      amount: 300,
      currency: 'eur',
      recipientId: null,
      status: 'unpaid',
      paymentId: null,
      createdAt: '2026-12-02T00:15:00.000Z',
      updatedAt: '2026-12-02T00:15:00.000Z',
    });
    expect(assessHabit(habit({ free: true }), '2026-12-01', 'now')).toMatchObject({
      outcome: 'missed',
      penalty: null,
    });
  });

  it('skips a habit already assessed through the date or created after it', () => {
    expect(assessHabit(habit({ lastAssessedDate: '2026-12-01' }), '2026-12-01', 'now')).toBeNull();
    expect(assessHabit(habit({ lastAssessedDate: '2026-12-03' }), '2026-12-01', 'now')).toBeNull();
    expect(
      assessHabit(
        habit({ createdAt: '2026-12-02T00:00:00.000Z', lastAssessedDate: null }),
        '2026-12-01',
        'now',
      ),
    ).toBeNull();
    expect(
      assessHabit(
        habit({ createdAt: '2026-12-01T23:00:00.000Z', lastAssessedDate: null }),
        '2026-12-01',
        'now',
      ),
    ).not.toBeNull();
  });

  it('assesses a day with the settings it began with', () => {
    const was = {
      penaltyAmount: 900,
      currency: 'usd',
      free: false,
      recipientId: 'charity-9',
      active: true,
    };
    // Switched off on 12-02 (owes 12-01 and 12-02 as it was), made free on 12-01.
    const off = habit({
      active: false,
      free: true,
      lastAssessedDate: null,
      earlierSettings: [
        { through: '2026-11-30', ...was },
        { through: '2026-12-02', ...was, free: true },
      ],
    });
    expect(assessHabit(off, '2026-11-30', 'now')).toMatchObject({
      outcome: 'missed',
      penalty: { amount: 900, currency: 'usd', recipientId: 'charity-9' },
    });
    expect(assessHabit(off, '2026-12-01', 'now')).toMatchObject({
      outcome: 'missed',
      penalty: null,
    });
    expect(assessHabit(off, '2026-12-02', 'now')).toMatchObject({ outcome: 'missed' });
    expect(assessHabit(off, '2026-12-03', 'now')).toBeNull();
    expect(assessHabit(habit({ active: false }), '2026-12-01', 'now')).toBeNull();
  });
});

describe('assessAccount', () => {
  it("assesses all of a user's habits in one write conditioned on what was read, and consumes the verifications up to the date", () => {
    const result = assessAccount(
      account([
        habit({ habitId: 'a', verifiedDates: ['2026-11-29', '2026-12-01', '2026-12-02'] }),
        habit({ habitId: 'b', currency: 'usd' }),
        habit({ habitId: 'c', free: true }),
        habit({ habitId: 'd', active: false, verifiedDates: ['2026-11-28'] }),
        habit({ habitId: 'e', createdAt: '2026-12-02T09:00:00.000Z', lastAssessedDate: null }),
      ]),
      '2026-12-01',
      '2026-12-02T00:15:00.000Z',
    );
    expect(result).toMatchObject({
      userId: 'u1',
      expectedAssessedThrough: '2026-11-30',
      expectedVerifications: 3,
      leavesAssessment: null,
    });
    expect(result?.habits.map((h) => [h.habitId, h.outcome, h.penalty?.penaltyId ?? null])).toEqual(
      [
        ['a', 'verified', null],
        ['b', 'missed', 'pen_u1_b_2026-12-01'],
        ['c', 'missed', null],
      ],
    );
    expect(result?.consumed).toEqual([
      { habitId: 'a', date: '2026-11-29' },
      { habitId: 'a', date: '2026-12-01' },
      { habitId: 'd', date: '2026-11-28' },
    ]);
    expect(result?.summary).toEqual({
      userId: 'u1',
      unpaidCount: 1,
      unpaidAmount: [{ currency: 'usd', amount: 300 }],
      unpaidDates: [{ date: '2026-12-01', count: 1 }],
    });
  });

  it('writes nothing for an account assessed through the date, or with nothing due and nothing to tidy', () => {
    expect(
      assessAccount(account([habit()], { assessedThrough: '2026-12-01' }), '2026-12-01', 'now'),
    ).toBeNull();
    expect(
      assessAccount(account([habit()], { assessedThrough: '2026-12-03' }), '2026-12-01', 'now'),
    ).toBeNull();
    const young = habit({ createdAt: '2026-12-02T09:00:00.000Z', lastAssessedDate: null });
    expect(assessAccount(account([young]), '2026-12-01', 'now')).toBeNull();
  });

  it('takes the account out of the assessment after the last day any habit owes, if no habit changed since read', () => {
    const was = { penaltyAmount: 900, currency: 'usd', free: false, recipientId: null };
    const off = habit({
      active: false,
      lastAssessedDate: null,
      earlierSettings: [{ through: '2026-12-02', ...was, active: true }],
    });
    const assess = (date: string) =>
      assessAccount(account([off], { assessedThrough: null }), date, 'now');
    expect(assess('2026-12-01')?.leavesAssessment).toBeNull();
    expect(assess('2026-12-02')?.leavesAssessment).toEqual({ habitsVersion: 7 });
    // Nothing owed any more: nothing assessed, the account only leaves.
    expect(assess('2026-12-03')).toMatchObject({
      habits: [],
      leavesAssessment: { habitsVersion: 7 },
    });
    // One habit still active keeps it in.
    expect(
      assessAccount(account([off, habit({ habitId: 'on' })]), '2026-12-02', 'now')
        ?.leavesAssessment,
    ).toBeNull();
  });

  it("fits one user's whole assessment in one transaction: the account, a penalty per habit, the shard's progress and start marker", () => {
    expect(1 + MAX_HABITS_PER_USER + 2).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
    const habits = Array.from({ length: MAX_HABITS_PER_USER }, (_, i) =>
      habit({ habitId: `h${i}` }),
    );
    const [slice, ...rest] = planSlices([{ account: account(habits), position: 'u1' }], {
      date: '2026-12-01',
      shard: 0,
      cursorBefore: null,
      lastPage: true,
      at: at('2026-12-02'),
    });
    expect(rest).toEqual([]);
    expect(slice?.counts.penaltiesCreated).toBe(MAX_HABITS_PER_USER);
  });
});

describe('penalty ids', () => {
  it('split back into their parts even when the user id has underscores', () => {
    const id = penaltyIdOf('user_with_underscores', 'habit-1', '2026-12-01');
    expect(parsePenaltyId(id)).toEqual({
      userId: 'user_with_underscores',
      habitId: 'habit-1',
      date: '2026-12-01',
    });
    expect(parsePenaltyId('pen_u1_2026-12-01')).toBeNull();
    expect(parsePenaltyId('pay_u1_h1_2026-12-01')).toBeNull();
    expect(parsePenaltyId('pen_u#1_h1_2026-12-01')).toBeNull();
  });
});

describe('planSlices', () => {
  it('keeps every slice within one transaction, one user per account write, and moves the cursor over accounts not due', () => {
    const page = Array.from({ length: 60 }, (_, index) => ({
      account: account(
        [0, 1, 2].map((h) => habit({ userId: `u${index}`, habitId: `h${h}` })),
        { userId: `u${index}`, assessedThrough: index % 10 === 0 ? '2026-12-01' : '2026-11-30' },
      ),
      position: `u${String(index).padStart(3, '0')}`,
    }));
    const slices = planSlices(page, {
      date: '2026-12-01',
      shard: 3,
      cursorBefore: null,
      lastPage: true,
      at: at('2026-12-02'),
    });
    expect(slices.length).toBeGreaterThan(1);
    for (const slice of slices) {
      const items =
        1 +
        (slice.startsShard ? 1 : 0) +
        slice.assessments.length +
        slice.assessments.flatMap((a) => a.habits).filter((h) => h.penalty).length;
      expect(items).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
      const users = slice.assessments.map((a) => a.userId);
      expect(new Set(users).size).toBe(users.length);
    }
    expect(slices.flatMap((slice) => slice.assessments)).toHaveLength(54);
    expect(slices.reduce((sum, slice) => sum + slice.counts.penaltiesCreated, 0)).toBe(162);
    expect(slices.at(-1)).toMatchObject({ cursor: 'u059', done: true });
    // The shard's first slice (no cursor before it) marks the date started; no other does.
    expect(slices.map((slice) => slice.startsShard)).toEqual(slices.map((_, i) => i === 0));
    expect(slices.slice(0, -1).every((slice) => !slice.done)).toBe(true);
  });
});

describe('assessDate over the in-memory store', () => {
  async function world() {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02', '00:15:00'));
    await addHabit(store, 'alice', 'run', '2026-11-20');
    await addHabit(store, 'alice', 'read', '2026-11-20', { free: true, penaltyAmount: 0 });
    await addHabit(store, 'bob', 'gym', '2026-11-20', {
      currency: 'eur',
      recipientId: 'charity-2',
    });
    await addHabit(store, 'bob', 'late', '2026-12-02');
    await addHabit(store, 'carol', 'off', '2026-11-20', { active: false });
    clock.time = at('2026-12-01', '20:00:00');
    await verifyHabit({ userId: 'alice', habitId: 'run' }, '2026-12-01', { store, clock });
    clock.time = at('2026-12-02', '00:15:00');
    return { store, clock };
  }

  it('assesses every active habit once: streaks, penalties, summaries, counts', async () => {
    const { store, clock } = await world();
    const result = await assessDate('2026-12-01', { store, clock, pause: noPause });
    expect(result).toMatchObject({
      date: '2026-12-01',
      habits: 3,
      verified: 1,
      missed: 2,
      penaltiesCreated: 1,
      complete: true,
    });
    expect((await store.getHabit({ userId: 'alice', habitId: 'run' }))?.currentStreak).toBe(1);
    expect((await store.getHabit({ userId: 'alice', habitId: 'read' }))?.lastAssessedDate).toBe(
      '2026-12-01',
    );
    expect(
      (await store.getHabit({ userId: 'carol', habitId: 'off' }))?.lastAssessedDate,
    ).toBeNull();
    expect((await store.getHabit({ userId: 'bob', habitId: 'late' }))?.lastAssessedDate).toBeNull();
    expect([...store.penalties.keys()]).toEqual(['pen_bob_gym_2026-12-01']);
    expect(await store.getAccount('bob')).toMatchObject({
      unpaidCount: 1,
      unpaidAmount: [{ currency: 'eur', amount: 500 }],
    });
    expect((await store.readAssessment('2026-12-01')).length).toBe(ASSESSMENT_SHARDS);
  });

  it('creates nothing and moves no streak when run again or twice at once', async () => {
    const { store, clock } = await world();
    const [first, second] = await Promise.all([
      assessDate('2026-12-01', { store, clock, pause: noPause, concurrency: 2 }),
      assessDate('2026-12-01', { store, clock, pause: noPause, concurrency: 3 }),
    ]);
    const again = await assessDate('2026-12-01', { store, clock, pause: noPause });
    expect(first.thisRun.habits + second.thisRun.habits).toBe(3);
    expect(again.thisRun).toEqual({ habits: 0, verified: 0, missed: 0, penaltiesCreated: 0 });
    expect(again).toMatchObject({ habits: 3, penaltiesCreated: 1, complete: true });
    expect(store.penalties.size).toBe(1);
    expect((await store.getHabit({ userId: 'alice', habitId: 'run' }))?.currentStreak).toBe(1);
    expect(await store.getAccount('bob')).toMatchObject({ unpaidCount: 1 });
  });

  it('resumes a run stopped half-way from where it stopped', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02', '01:00:00'));
    for (let user = 0; user < 60; user++) await addHabit(store, `user${user}`, 'h', '2026-11-01');
    let pages = 0;
    const stopped = await assessDate('2026-12-01', {
      store,
      clock,
      pause: noPause,
      pageSize: 2,
      concurrency: 1,
      shouldStop: () => pages++ >= 5,
    });
    expect(stopped.complete).toBe(false);
    expect(stopped.habits).toBeGreaterThan(0);
    expect(stopped.habits).toBeLessThan(60);
    const resumed = await assessDate('2026-12-01', { store, clock, pause: noPause, pageSize: 2 });
    expect(resumed).toMatchObject({ complete: true, habits: 60, missed: 60, penaltiesCreated: 60 });
    expect(resumed.thisRun.habits).toBe(60 - stopped.habits);
    expect(store.penalties.size).toBe(60);
  });

  it('reads the next page of a shard while the current one commits', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02', '01:00:00'));
    for (let user = 0; user < 60; user++) await addHabit(store, `user${user}`, 'h', '2026-11-01');
    const log: string[] = [];
    const read = store.accountsToAssess.bind(store);
    const commit = store.commitAssessment.bind(store);
    store.accountsToAssess = async (query) => {
      log.push(`read ${query.shard}`);
      return read(query);
    };
    store.commitAssessment = async (slice) => {
      log.push(`commit ${slice.shard}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
      log.push(`committed ${slice.shard}`);
      return commit(slice);
    };
    const result = await assessDate('2026-12-01', {
      store,
      clock,
      pause: noPause,
      pageSize: 2,
      concurrency: 1,
    });
    expect(result).toMatchObject({ complete: true, habits: 60, penaltiesCreated: 60 });
    // One shard at a time, so two reads in a row mean the second page was asked for before
    // the first one's commit (one read then its commits, in turn, would never do that).
    const readAhead = log.filter((entry, i) => entry.startsWith('read') && log[i - 1] === entry);
    expect(readAhead.length).toBeGreaterThan(10);
    // And the commits stay in page order, one at a time.
    const commits = log.filter((entry) => !entry.startsWith('read'));
    commits.forEach((entry, i) => {
      expect(entry.startsWith(i % 2 === 0 ? 'commit ' : 'committed ')).toBe(true);
    });
  });

  it('fails with the commit error when a commit fails, leaving no page read ahead unhandled', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02', '01:00:00'));
    for (let user = 0; user < 60; user++) await addHabit(store, `user${user}`, 'h', '2026-11-01');
    const read = store.accountsToAssess.bind(store);
    let reads = 0;
    store.accountsToAssess = async (query) => {
      reads += 1;
      // The page read ahead fails too, after the commit has: nothing may await it any more.
      if (reads > 1) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        throw new Error('read failed');
      }
      return read(query);
    };
    store.commitAssessment = async () => {
      throw new Error('commit failed');
    };
    await expect(
      assessDate('2026-12-01', { store, clock, pause: noPause, pageSize: 2, concurrency: 1 }),
    ).rejects.toThrow('commit failed');
    // Give the failing read time to settle: an unhandled rejection fails this test run.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(reads).toBe(2);
  });

  it('when a shard fails, the others stop at their next page and the run answers only once nothing commits any more', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02', '01:00:00'));
    for (let user = 0; user < 200; user++) await addHabit(store, `user${user}`, 'h', '2026-11-01');
    const commit = store.commitAssessment.bind(store);
    let inFlight = 0;
    let commitsAfterAnswer = 0;
    let answered = false;
    const counted: number[] = [];
    store.commitAssessment = async (slice) => {
      if (answered) commitsAfterAnswer += 1;
      inFlight += 1;
      await new Promise((resolve) => setTimeout(resolve, 1 + (slice.shard % 3)));
      inFlight -= 1;
      if (slice.shard === 5) throw new Error('commit failed');
      return commit(slice);
    };
    const run = assessDate('2026-12-01', {
      store,
      clock,
      pause: noPause,
      pageSize: 2,
      concurrency: 4,
      onCommitted: (counts) => counted.push(counts.penaltiesCreated),
    });
    await expect(run).rejects.toThrow('commit failed');
    answered = true;
    expect(inFlight).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(commitsAfterAnswer).toBe(0);
    // Stopped early: far from every shard done, and every commit that landed was reported.
    const created = store.penalties.size;
    expect(created).toBeGreaterThan(0);
    expect(created).toBeLessThan(200);
    expect(counted.reduce((sum, n) => sum + n, 0)).toBe(created);
  });

  it('re-plans a habit verified between the read and the write', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02', '00:15:00'));
    await addHabit(store, 'dora', 'walk', '2026-11-01');
    const original = store.commitAssessment.bind(store);
    let raced = false;
    store.commitAssessment = async (commit) => {
      if (!raced) {
        raced = true;
        await store.addVerification({ userId: 'dora', habitId: 'walk' }, '2026-12-01');
      }
      return original(commit);
    };
    const result = await assessDate('2026-12-01', { store, clock, pause: noPause });
    expect(result).toMatchObject({ verified: 1, missed: 0, penaltiesCreated: 0 });
    expect(store.penalties.size).toBe(0);
  });
});

describe('habits and verifications', () => {
  it('enforces the tier free-habit limit with a 409-worthy conflict, and counts only active free habits', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02'));
    const deps = { store, clock, freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS };
    await saveHabit({ userId: 'eve', habitId: 'a' }, settings({ free: true }), deps);
    await expect(
      saveHabit({ userId: 'eve', habitId: 'b' }, settings({ free: true }), deps),
    ).rejects.toMatchObject({
      code: 'free_habit_limit',
    });
    expect(await store.getHabit({ userId: 'eve', habitId: 'b' })).toBeNull();
    await saveHabit({ userId: 'eve', habitId: 'a' }, settings({ free: true, active: false }), deps);
    await saveHabit({ userId: 'eve', habitId: 'b' }, settings({ free: true }), deps);
    store.profiles.set('eve', { tier: 'bronze', credits: 0, customerId: null });
    await saveHabit({ userId: 'eve', habitId: 'c' }, settings({ free: true }), deps);
    expect((await store.getAccount('eve'))?.freeHabits).toBe(2);
  });

  it('refuses a future date and a date already assessed; verifying twice is fine', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-12-02', '00:15:00'));
    await addHabit(store, 'finn', 'x', '2026-11-01');
    const key = { userId: 'finn', habitId: 'x' };
    await verifyHabit(key, '2026-12-02', { store, clock });
    await verifyHabit(key, '2026-12-02', { store, clock });
    await expect(verifyHabit(key, '2026-12-03', { store, clock })).rejects.toMatchObject({
      code: 'invalid_parameter',
    });
    await assessDate('2026-12-01', { store, clock, pause: noPause });
    await expect(verifyHabit(key, '2026-12-01', { store, clock })).rejects.toThrow(
      /already assessed/,
    );
    await expect(
      verifyHabit({ userId: 'finn', habitId: 'nope' }, '2026-12-01', { store, clock }),
    ).rejects.toMatchObject({
      code: 'habit_not_found',
    });
  });
});
