/**
 * One contract, two implementations: the in-memory penalty store the use-case tests
 * rely on must behave like the DynamoDB adapter on DynamoDB Local. Each scenario runs
 * the real use cases (assessment, settlement, payment outcomes) over the store.
 */
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import {
  PENALTY_KEYS,
  UNPAID_DATE_PREFIX,
} from '../../functions/adapters/dynamodb/penalty-table-schema.ts';
import { InMemoryPenaltyStore } from '../../functions/adapters/memory/in-memory-penalty-store.ts';
import { assessAccount, assessDate } from '../../functions/core/penalties/assessment.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  MAX_HABITS_PER_USER,
  withSettings,
} from '../../functions/core/penalties/habits.ts';
import { saveHabit, verifyHabit } from '../../functions/core/penalties/manage-habits.ts';
import {
  ASSESSMENT_SHARDS,
  assessmentShardOf,
} from '../../functions/core/penalties/penalty-ids.ts';
import {
  applyPenaltyPayment,
  markPenaltiesPaid,
} from '../../functions/core/penalties/penalty-payments.ts';
import {
  transition,
  transitionCommit,
} from '../../functions/core/penalties/penalty-transitions.ts';
import {
  InvalidCursorError,
  type PenaltyStore,
  type UserBilling,
} from '../../functions/core/penalties/ports.ts';
import {
  ABANDONED_SETTLEMENT_AFTER_MS,
  settlePenalties,
} from '../../functions/core/penalties/settlement.ts';
import { sweepAbandonedSettlements } from '../../functions/core/penalties/settlement-sweep.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { createPenaltiesTable } from '../helpers/penalty-table.ts';
import {
  at,
  FakeGateway,
  fixedClock,
  noPause,
  settings,
} from '../unit/penalties/penalty-fixtures.ts';

interface Harness {
  store: PenaltyStore;
  setProfile(userId: string, profile: Omit<UserBilling, 'hasProfile'>): Promise<void>;
}

/** The users whose accounts the assessment would visit, across all shards. */
async function assessableUsers(store: PenaltyStore): Promise<Set<string>> {
  const users = new Set<string>();
  for (let shard = 0; shard < ASSESSMENT_SHARDS; shard += 1) {
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<PenaltyStore['accountsToAssess']>> =
        await store.accountsToAssess({ shard, limit: 100, cursor });
      for (const account of page.items) users.add(account.userId);
      cursor = page.nextCursor;
    } while (cursor !== null);
  }
  return users;
}

let counter = 0;
const fresh = (prefix: string) => `${prefix}${Date.now().toString(36)}${counter++}`;

function contract(name: string, make: () => Promise<Harness>) {
  describe(`PenaltyStore contract: ${name}`, () => {
    it('habits: create, update under the limits, stale writes refused, list and verify', async () => {
      const { store, setProfile } = await make();
      const user = fresh('u');
      const clock = fixedClock(at('2026-12-02'));
      const deps = { store, clock, freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS };
      const { created } = await saveHabit(
        { userId: user, habitId: 'a' },
        settings({ free: true }),
        deps,
      );
      expect(created).toBe(true);
      await expect(
        saveHabit({ userId: user, habitId: 'b' }, settings({ free: true }), deps),
      ).rejects.toMatchObject({ code: 'free_habit_limit' });
      await setProfile(user, { tier: 'bronze', credits: 0, customerId: null });
      await saveHabit({ userId: user, habitId: 'b' }, settings({ free: true }), deps);
      clock.time += 1000;
      const updated = await saveHabit(
        { userId: user, habitId: 'a' },
        settings({ free: false, name: 'Swim', recipientId: null }),
        deps,
      );
      expect(updated).toMatchObject({ created: false, habit: { name: 'Swim', recipientId: null } });
      const stale = await store.putHabit({
        habit: { ...updated.habit, name: 'Late' },
        previous: { ...updated.habit, updatedAt: '2000-01-01T00:00:00.000Z' },
        freeHabitLimit: 3,
        maxHabits: 100,
      });
      expect(stale).toBe('conflict');
      expect(await store.getAccount(user)).toMatchObject({ habits: 2, freeHabits: 1 });
      const habits = await store.listHabits(user);
      expect(habits.map((habit) => [habit.habitId, habit.name, habit.free])).toEqual([
        ['a', 'Swim', false],
        ['b', 'Run', true],
      ]);
      expect(await store.addVerification({ userId: user, habitId: 'a' }, '2026-12-01')).toBe(
        'recorded',
      );
      expect(await store.addVerification({ userId: user, habitId: 'a' }, '2026-12-01')).toBe(
        'recorded',
      );
      expect(await store.addVerification({ userId: user, habitId: 'zz' }, '2026-12-01')).toBe(
        'no-habit',
      );
    });

    it('habits: a first habit refused by a limit leaves no account, no habit, nothing to assess', async () => {
      const { store } = await make();
      const clock = fixedClock(at('2026-12-02'));
      const nothingFor = async (user: string) => {
        expect(await store.getAccount(user), user).toBeNull();
        expect(await store.listHabits(user), user).toEqual([]);
        expect(await store.getHabit({ userId: user, habitId: 'a' }), user).toBeNull();
        expect(await assessableUsers(store), user).not.toContain(user);
      };
      // A tier allowed no free habit (the config takes 0): its first free habit is refused.
      const noFree = fresh('z');
      await expect(
        saveHabit({ userId: noFree, habitId: 'a' }, settings({ free: true, penaltyAmount: 0 }), {
          store,
          clock,
          freeHabitLimits: { ...DEFAULT_FREE_HABIT_LIMITS, free: 0 },
        }),
      ).rejects.toMatchObject({ code: 'free_habit_limit' });
      await nothingFor(noFree);
      // The habit-count limit, on the store's own write: nothing either.
      const full = fresh('z');
      const first = withSettings(
        { userId: full, habitId: 'a' },
        settings(),
        null,
        new Date(clock.now()).toISOString(),
      );
      expect(
        await store.putHabit({ habit: first, previous: null, freeHabitLimit: 1, maxHabits: 0 }),
      ).toBe('habit-limit');
      await nothingFor(full);
      // The same first habit within the limits is written: the refusals were the limits'.
      expect(
        await store.putHabit({ habit: first, previous: null, freeHabitLimit: 1, maxHabits: 1 }),
      ).toBe('written');
      expect(await store.getAccount(full)).toMatchObject({ userId: full, habits: 1 });
    });

    it('assessment: streaks, penalties, summaries; again or concurrently creates nothing', async () => {
      const { store } = await make();
      const clock = fixedClock(at('2026-11-20'));
      const deps = { store, clock, freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS };
      const users = Array.from({ length: 12 }, () => fresh('a'));
      for (const [index, user] of users.entries()) {
        await saveHabit(
          { userId: user, habitId: 'run' },
          settings({ currency: index % 2 ? 'eur' : 'usd' }),
          deps,
        );
        await saveHabit(
          { userId: user, habitId: 'free' },
          settings({ free: true, penaltyAmount: 0 }),
          deps,
        );
        if (index % 3 === 0)
          await verifyHabit({ userId: user, habitId: 'run' }, '2026-12-01', {
            store,
            clock: fixedClock(at('2026-12-01')),
          });
      }
      clock.time = at('2026-12-02', '00:15:00');
      const [one, two] = await Promise.all([
        assessDate('2026-12-01', { store, clock, pause: noPause, pageSize: 5 }),
        assessDate('2026-12-01', { store, clock, pause: noPause, pageSize: 7 }),
      ]);
      expect(one.thisRun.habits + two.thisRun.habits).toBe(24);
      const again = await assessDate('2026-12-01', { store, clock, pause: noPause });
      expect(again).toMatchObject({
        habits: 24,
        verified: 4,
        missed: 20,
        penaltiesCreated: 8,
        complete: true,
      });
      expect(again.thisRun.habits).toBe(0);
      const summaries = await Promise.all(users.map((user) => store.getAccount(user)));
      expect(summaries.reduce((sum, account) => sum + (account?.unpaidCount ?? 0), 0)).toBe(8);
      const verified = (await store.listHabits(users[0] as string)).find(
        (h) => h.habitId === 'run',
      );
      expect(verified).toMatchObject({
        currentStreak: 1,
        longestStreak: 1,
        lastAssessedDate: '2026-12-01',
      });
      expect(
        await store.addVerification({ userId: users[1] as string, habitId: 'run' }, '2026-12-01'),
      ).toBe('already-assessed');
      const missed = await store.getPenalties([`pen_${users[1]}_run_2026-12-01`]);
      expect([...missed.values()]).toMatchObject([
        { status: 'unpaid', amount: 500, currency: 'eur', recipientId: 'charity-1' },
      ]);
    });

    it('a day is assessed with the settings it began with: switching off, making free or cheaper before its assessment changes nothing for it', async () => {
      const { store } = await make();
      const deps = (time: number) => ({
        store,
        clock: fixedClock(time),
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
      const [quits, freebie, cheaper, toggles, early] = ['q', 'f', 'c', 't', 'e'].map(fresh) as [
        string,
        string,
        string,
        string,
        string,
      ];
      const run = (userId: string) => ({ userId, habitId: 'run' });
      for (const user of [quits, freebie, cheaper, toggles]) {
        await saveHabit(run(user), settings(), deps(at('2026-11-20')));
      }
      // Missed 12-01, then changed at 00:05, before the assessment of 12-01 ran.
      const early05 = deps(at('2026-12-02', '00:05:00'));
      await saveHabit(run(quits), settings({ active: false }), early05);
      await saveHabit(run(freebie), settings({ free: true, penaltyAmount: 0 }), early05);
      await saveHabit(run(cheaper), settings({ penaltyAmount: 100 }), early05);
      // Off on the evening of a missed day, back on the next morning: that next day began off.
      await saveHabit(
        run(toggles),
        settings({ active: false }),
        deps(at('2026-12-01', '22:00:00')),
      );
      await saveHabit(run(toggles), settings(), deps(at('2026-12-02', '00:10:00')));
      // Created and switched off the same day: its settings of that day are the last ones.
      await saveHabit(run(early), settings(), deps(at('2026-12-01', '09:00:00')));
      await saveHabit(run(early), settings({ active: false }), deps(at('2026-12-01', '10:00:00')));

      const clock = fixedClock(at('2026-12-02', '00:15:00'));
      const assess = async (date: string, time: number) => {
        clock.time = time;
        return await assessDate(date, { store, clock, pause: noPause });
      };
      expect(await assess('2026-12-01', at('2026-12-02', '00:15:00'))).toMatchObject({
        habits: 4,
        missed: 4,
        penaltiesCreated: 4,
      });
      const penaltyOf = async (user: string, date: string) =>
        (await store.getPenalties([`pen_${user}_run_${date}`])).get(`pen_${user}_run_${date}`);
      for (const user of [quits, freebie, cheaper, toggles]) {
        expect(await penaltyOf(user, '2026-12-01'), user).toMatchObject({ amount: 500 });
      }
      expect(await store.getHabit(run(quits))).toMatchObject({
        active: false,
        earlierSettings: [expect.objectContaining({ through: '2026-12-02', active: true })],
        lastAssessedDate: '2026-12-01',
      });
      expect(await assessableUsers(store)).toEqual(new Set([quits, freebie, cheaper, toggles]));
      // The day of the change began with the old settings too (quits verified it).
      await verifyHabit(run(quits), '2026-12-02', {
        store,
        clock: fixedClock(at('2026-12-02', '18:00:00')),
      });
      expect(await assess('2026-12-02', at('2026-12-03', '00:15:00'))).toMatchObject({
        habits: 3,
        verified: 1,
        missed: 2,
        penaltiesCreated: 2,
      });
      expect(await penaltyOf(cheaper, '2026-12-02')).toMatchObject({ amount: 500 });
      expect(await penaltyOf(toggles, '2026-12-02')).toBeUndefined();
      expect(await assessableUsers(store)).toEqual(new Set([freebie, cheaper, toggles]));
      // From the next day on, the new settings.
      expect(await assess('2026-12-03', at('2026-12-04', '00:15:00'))).toMatchObject({
        habits: 3,
        missed: 3,
        penaltiesCreated: 2,
      });
      expect(await penaltyOf(cheaper, '2026-12-03')).toMatchObject({ amount: 100 });
      expect(await penaltyOf(freebie, '2026-12-03')).toBeUndefined();
      const unpaid = async (user: string) => (await store.getAccount(user))?.unpaidCount;
      expect(await Promise.all([quits, freebie, cheaper, toggles, early].map(unpaid))).toEqual([
        1, 2, 3, 2, 0,
      ]);
    });

    it('an owing habit switched back on before its last assessment commits stays in the assessment', async () => {
      const { store } = await make();
      const user = fresh('r');
      const key = { userId: user, habitId: 'run' };
      const deps = (time: number) => ({
        store,
        clock: fixedClock(time),
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
      await saveHabit(key, settings(), deps(at('2026-11-20')));
      await saveHabit(key, settings({ active: false }), deps(at('2026-12-01', '20:00:00')));
      const [read] = await store.reloadAccounts([user]);
      const assessment = assessAccount(
        read!,
        '2026-12-01',
        new Date(at('2026-12-02')).toISOString(),
      );
      expect(assessment?.leavesAssessment).toEqual({ habitsVersion: read!.habitsVersion });
      // Switched back on between the read and the commit: the commit must not drop it.
      await saveHabit(key, settings(), deps(at('2026-12-02', '00:14:00')));
      const result = await store.commitAssessment({
        date: '2026-12-01',
        shard: assessmentShardOf(user),
        cursor: null,
        done: false,
        startsShard: false,
        assessments: [assessment!],
        counts: { habits: 1, verified: 0, missed: 1, penaltiesCreated: 1 },
        at: at('2026-12-02', '00:15:00'),
      });
      expect(result).toEqual({ status: 'conflict', users: [user] });
      expect(await assessableUsers(store)).toEqual(new Set([user]));
    });

    it('assessment killed half-way (a commit fails mid-run) resumes to the exact same result', async () => {
      const { store } = await make();
      const clock = fixedClock(at('2026-11-20'));
      const deps = { store, clock, freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS };
      const users = Array.from({ length: 30 }, () => fresh('k'));
      for (const [index, user] of users.entries()) {
        await saveHabit({ userId: user, habitId: 'run' }, settings(), deps);
        if (index % 4 === 0)
          await verifyHabit({ userId: user, habitId: 'run' }, '2026-12-01', {
            store,
            clock: fixedClock(at('2026-12-01')),
          });
      }
      clock.time = at('2026-12-02', '00:15:00');
      // The process dies at the fourth page's commit: Lambda timeout, crash, throttling.
      let commits = 0;
      const dying = new Proxy(store, {
        get(target, property, receiver) {
          if (property === 'commitAssessment') {
            return async (...args: Parameters<PenaltyStore['commitAssessment']>) => {
              commits += 1;
              if (commits === 4) throw new Error('killed');
              return await target.commitAssessment(...args);
            };
          }
          const value = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      await expect(
        assessDate('2026-12-01', {
          store: dying,
          clock,
          pause: noPause,
          pageSize: 3,
          concurrency: 1,
        }),
      ).rejects.toThrow('killed');
      const partial = await store.readAssessment('2026-12-01');
      expect(partial.filter((shard) => shard.done).length).toBeLessThan(16);

      const resumed = await assessDate('2026-12-01', { store, clock, pause: noPause, pageSize: 3 });
      expect(resumed).toMatchObject({
        habits: 30,
        verified: 8,
        missed: 22,
        penaltiesCreated: 22,
        complete: true,
      });
      const habits = (await Promise.all(users.map((user) => store.listHabits(user)))).flat();
      expect(habits.every((habit) => habit.lastAssessedDate === '2026-12-01')).toBe(true);
      // No streak moved twice: verified habits are at 1, missed at 0.
      expect(habits.filter((habit) => habit.currentStreak === 1)).toHaveLength(8);
      expect(habits.every((habit) => habit.currentStreak <= 1)).toBe(true);
      const accounts = await Promise.all(users.map((user) => store.getAccount(user)));
      expect(accounts.reduce((sum, account) => sum + (account?.unpaidCount ?? 0), 0)).toBe(22);
    });

    it('tells the first later date whose assessment has committed anything', async () => {
      const { store } = await make();
      const user = fresh('s');
      const clock = fixedClock(at('2026-12-05'));
      await saveHabit({ userId: user, habitId: 'h' }, settings(), {
        store,
        clock: fixedClock(at('2026-11-20')),
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
      expect(await store.assessmentStartedAfter('2026-11-01')).toBeNull();
      await assessDate('2026-12-01', { store, clock, pause: noPause });
      await assessDate('2026-12-03', { store, clock, pause: noPause });
      expect(await store.assessmentStartedAfter('2026-11-01')).toBe('2026-12-01');
      expect(await store.assessmentStartedAfter('2026-12-01')).toBe('2026-12-03');
      expect(await store.assessmentStartedAfter('2026-12-02')).toBe('2026-12-03');
      expect(await store.assessmentStartedAfter('2026-12-03')).toBeNull();
      // A run that stopped before its first commit has started nothing.
      await assessDate('2026-12-04', { store, clock, pause: noPause, shouldStop: () => true });
      expect(await store.assessmentStartedAfter('2026-12-03')).toBeNull();
    });

    it('penalties: newest first, by status, selected fields, cursor bound to its query', async () => {
      const { store } = await make();
      const user = fresh('p');
      const clock = fixedClock(at('2026-10-01'));
      await saveHabit({ userId: user, habitId: 'h' }, settings(), {
        store,
        clock,
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
      const days = ['2026-10-01', '2026-10-02', '2026-10-03', '2026-10-04', '2026-10-05'];
      for (const day of days) {
        clock.time = at(day) + 86_400_000;
        await assessDate(day, { store, clock, pause: noPause });
      }
      const first = await store.listPenalties({ userId: user, limit: 2 });
      expect(first.items.map((p) => p.date)).toEqual(['2026-10-05', '2026-10-04']);
      const second = await store.listPenalties({
        userId: user,
        limit: 2,
        cursor: first.nextCursor as string,
      });
      const third = await store.listPenalties({
        userId: user,
        limit: 2,
        cursor: second.nextCursor as string,
      });
      expect([...second.items, ...third.items].map((p) => p.date)).toEqual([
        '2026-10-03',
        '2026-10-02',
        '2026-10-01',
      ]);
      expect(third.nextCursor).toBeNull();
      await markPenaltiesPaid([`pen_${user}_h_2026-10-02`], null, { store, clock, pause: noPause });
      const paid = await store.listPenalties({
        userId: user,
        status: 'paid',
        limit: 10,
        fields: ['penaltyId', 'status'],
      });
      expect(paid).toEqual({
        items: [{ penaltyId: `pen_${user}_h_2026-10-02`, status: 'paid' }],
        nextCursor: null,
      });
      const unpaid = await store.listPenalties({ userId: user, status: 'unpaid', limit: 3 });
      expect(unpaid.items.map((p) => p.date)).toEqual(['2026-10-05', '2026-10-04', '2026-10-03']);
      await expect(
        store.listPenalties({
          userId: user,
          status: 'paid',
          limit: 2,
          cursor: first.nextCursor as string,
        }),
      ).rejects.toBeInstanceOf(InvalidCursorError);
      expect((await store.oldestUnpaid(user, 1)).map((p) => p.date)).toEqual(['2026-10-01']);
      expect(await store.getAccount(user)).toMatchObject({
        unpaidCount: 4,
        unpaidAmount: [{ currency: 'usd', amount: 2000 }],
      });
    });

    it('settlement: credits spent once, lock held, payment outcome exactly once, recipient totals', async () => {
      const { store, setProfile } = await make();
      const user = fresh('s');
      const clock = fixedClock(at('2026-09-01'));
      await saveHabit({ userId: user, habitId: 'h' }, settings({ recipientId: `r-${user}` }), {
        store,
        clock,
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
      for (const day of ['2026-09-01', '2026-09-02', '2026-09-03']) {
        clock.time = at(day) + 86_400_000;
        await assessDate(day, { store, clock, pause: noPause });
      }
      await setProfile(user, { tier: 'gold', credits: 1, customerId: 'cus_1' });
      const gateway = new FakeGateway();
      const result = await settlePenalties(user, { store, gateway, clock, pause: noPause });
      expect(result).toMatchObject({ waived: [`pen_${user}_h_2026-09-01`], creditsUsed: 1 });
      expect((await store.getUserBilling(user)).credits).toBe(0);
      await expect(
        settlePenalties(user, { store, gateway, clock, pause: noPause }),
      ).rejects.toMatchObject({
        code: 'settlement_pending',
      });
      const payment = result.payment as NonNullable<typeof result.payment>;
      const outcome = { paymentIntentId: payment.paymentIntentId, penaltyIds: payment.penaltyIds };
      const runs = await Promise.all([
        applyPenaltyPayment({ ...outcome, outcome: 'succeeded' }, { store, clock, pause: noPause }),
        applyPenaltyPayment({ ...outcome, outcome: 'succeeded' }, { store, clock, pause: noPause }),
      ]);
      expect(runs.flatMap((run) => run.changed).sort()).toEqual([...payment.penaltyIds].sort());
      await applyPenaltyPayment(
        { ...outcome, outcome: 'failed' },
        { store, clock, pause: noPause },
      );
      expect(await store.recipientTotals(`r-${user}`)).toEqual({
        recipientId: `r-${user}`,
        penaltiesPaid: 2,
        amounts: [{ currency: 'usd', amount: 1000 }],
      });
      expect(await store.getAccount(user)).toMatchObject({
        unpaidCount: 0,
        pending: null,
        unpaidAmount: [],
      });
      expect(await settlePenalties(user, { store, gateway, clock, pause: noPause })).toEqual({
        waived: [],
        creditsUsed: 0,
        payment: null,
      });
    });

    it('a transition planned under one PaymentIntent is refused once the penalty is pending under another', async () => {
      const { store, setProfile } = await make();
      const user = fresh('r');
      const clock = fixedClock(at('2026-09-01'));
      await saveHabit({ userId: user, habitId: 'h' }, settings(), {
        store,
        clock,
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
      clock.time = at('2026-09-02');
      await assessDate('2026-09-01', { store, clock, pause: noPause });
      await setProfile(user, { tier: 'gold', credits: 0, customerId: null });
      const gateway = new FakeGateway();
      const penaltyId = `pen_${user}_h_2026-09-01`;
      const first = await settlePenalties(user, { store, gateway, clock, pause: noPause });
      const underFirst = (await store.getPenalties([penaltyId])).get(penaltyId)!;
      expect(underFirst).toMatchObject({
        status: 'pending',
        paymentId: first.payment?.paymentIntentId,
      });

      clock.time += ABANDONED_SETTLEMENT_AFTER_MS; // released and settled anew
      const second = await settlePenalties(user, { store, gateway, clock, pause: noPause });
      const secondIntent = second.payment?.paymentIntentId;
      expect(secondIntent).toBeDefined();
      expect(secondIntent).not.toBe(first.payment?.paymentIntentId);

      // Same status as read (pending), another PaymentIntent: refused, nothing moved.
      const stale = transitionCommit([transition(underFirst, 'unpaid', null)], clock.now());
      expect(await store.commitTransitions(stale)).toEqual({
        status: 'conflict',
        reason: 'penalty-changed',
      });
      expect((await store.getPenalties([penaltyId])).get(penaltyId)).toMatchObject({
        status: 'pending',
        paymentId: secondIntent,
      });
      expect(await store.getAccount(user)).toMatchObject({
        unpaidCount: 0,
        pending: { paymentIntentId: secondIntent },
      });
      // A late failure of the first PaymentIntent leaves the second settlement alone.
      const late = await applyPenaltyPayment(
        {
          paymentIntentId: first.payment!.paymentIntentId,
          penaltyIds: [penaltyId],
          outcome: 'failed',
        },
        { store, clock, pause: noPause },
      );
      expect(late.changed).toEqual([]);
      expect((await store.getPenalties([penaltyId])).get(penaltyId)?.paymentId).toBe(secondIntent);
    });

    it('pending index: a lock is listed once older than the cutoff, oldest first across shards, never fresh, gone once released', async () => {
      const { store } = await make();
      const clock = fixedClock(at('2026-07-01'));
      // Enough users that their locks fall in several shards.
      const users = Array.from({ length: 6 }, () => fresh('p'));
      for (const user of users) {
        await saveHabit({ userId: user, habitId: 'h' }, settings(), {
          store,
          clock,
          freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
        });
      }
      clock.time = at('2026-07-02');
      await assessDate('2026-07-01', { store, clock, pause: noPause });
      const gateway = new FakeGateway();
      // Locks a minute apart, the last user's first: the list follows the locks, not the ids.
      const order = [...users].reverse();
      const first = clock.time + 60_000;
      for (const user of order) {
        clock.time += 60_000;
        await settlePenalties(user, { store, gateway, clock, pause: noPause });
      }
      const lockedBefore = (ms: number) =>
        store.abandonedSettlements(new Date(ms).toISOString(), 10);
      expect(await lockedBefore(clock.time + 1)).toEqual(order);
      // A lock taken at the cutoff is not before it; nothing older.
      expect(await lockedBefore(first)).toEqual([]);
      expect(await lockedBefore(first + 2 * 60_000)).toEqual(order.slice(0, 2));
      expect(await store.abandonedSettlements(new Date(clock.time + 1).toISOString(), 3)).toEqual(
        order.slice(0, 3),
      );

      // Released by its webhook: gone from the list.
      const oldest = (await store.getAccount(order[0] as string))?.pending;
      if (!oldest) throw new Error('no lock');
      await applyPenaltyPayment(
        {
          paymentIntentId: oldest.paymentIntentId,
          penaltyIds: oldest.penaltyIds,
          outcome: 'failed',
        },
        { store, clock, pause: noPause },
      );
      expect(await lockedBefore(clock.time + 1)).toEqual(order.slice(1));

      // Released by the sweep an hour after the second lock: gone too, penalties unpaid again.
      clock.time = first + 60_000 + ABANDONED_SETTLEMENT_AFTER_MS;
      expect(
        await sweepAbandonedSettlements({ store, gateway, clock, pause: noPause }),
      ).toMatchObject({ released: 1, paid: 0, stillOpen: 0, failed: 0, skipped: 0 });
      expect(await lockedBefore(clock.time + 1)).toEqual(order.slice(2));
      expect(await store.getAccount(order[1] as string)).toMatchObject({
        pending: null,
        unpaidCount: 1,
        unpaidAmount: [{ currency: 'usd', amount: 500 }],
      });

      // Paid: no unpaid count moves, so the lock goes in a release item of its own; gone too.
      const third = (await store.getAccount(order[2] as string))?.pending;
      if (!third) throw new Error('no lock');
      await applyPenaltyPayment(
        {
          paymentIntentId: third.paymentIntentId,
          penaltyIds: third.penaltyIds,
          outcome: 'succeeded',
        },
        { store, clock, pause: noPause },
      );
      expect(await lockedBefore(clock.time + 1)).toEqual(order.slice(3));
      expect(await store.abandonedSettlements(new Date(clock.time + 1).toISOString(), 0)).toEqual(
        [],
      );
    });

    it('summary: the oldest unpaid date follows assessment, settlement, a failed payment and mark-paid', async () => {
      const { store, setProfile } = await make();
      const user = fresh('o');
      const clock = fixedClock(at('2026-09-01'));
      await saveHabit({ userId: user, habitId: 'h' }, settings(), {
        store,
        clock,
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
      const oldest = async () => (await store.getAccount(user))?.oldestUnpaidDate;
      expect(await oldest()).toBeNull();
      for (const day of ['2026-09-01', '2026-09-02', '2026-09-03']) {
        clock.time = at(day) + 86_400_000;
        await assessDate(day, { store, clock, pause: noPause });
      }
      expect(await oldest()).toBe('2026-09-01');
      await setProfile(user, { tier: 'gold', credits: 1, customerId: 'cus_1' });
      const settled = await settlePenalties(user, {
        store,
        gateway: new FakeGateway(),
        clock,
        pause: noPause,
      });
      expect(await oldest()).toBeNull();
      const payment = settled.payment as NonNullable<typeof settled.payment>;
      await applyPenaltyPayment(
        {
          paymentIntentId: payment.paymentIntentId,
          penaltyIds: payment.penaltyIds,
          outcome: 'failed',
        },
        { store, clock, pause: noPause },
      );
      expect(await oldest()).toBe('2026-09-02');
      await markPenaltiesPaid([`pen_${user}_h_2026-09-02`], null, { store, clock, pause: noPause });
      expect(await oldest()).toBe('2026-09-03');
      await markPenaltiesPaid([`pen_${user}_h_2026-09-03`], null, { store, clock, pause: noPause });
      expect(await store.getAccount(user)).toMatchObject({
        unpaidCount: 0,
        oldestUnpaidDate: null,
      });
    });

    it('mark-paid: 60 users, each paying its own recipient, split into transactions the store accepts', async () => {
      const { store } = await make();
      const clock = fixedClock(at('2026-08-01'));
      const users = Array.from({ length: 60 }, () => fresh('m'));
      await Promise.all(
        users.map((user) =>
          saveHabit({ userId: user, habitId: 'h' }, settings({ recipientId: `r-${user}` }), {
            store,
            clock,
            freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
          }),
        ),
      );
      clock.time = at('2026-08-02');
      await assessDate('2026-08-01', { store, clock, pause: noPause });
      const ids = users.map((user) => `pen_${user}_h_2026-08-01`);
      // 180 items in all (penalty, unpaid summary, recipient totals each): two transactions at least.
      const result = await markPenaltiesPaid(ids, 'pi_manual', { store, clock, pause: noPause });
      expect(result).toEqual({ changed: ids, alreadyPaid: [], notFound: [] });
      for (const user of users) {
        expect(await store.recipientTotals(`r-${user}`)).toEqual({
          recipientId: `r-${user}`,
          penaltiesPaid: 1,
          amounts: [{ currency: 'usd', amount: 500 }],
        });
        expect(await store.getAccount(user)).toMatchObject({ unpaidCount: 0, unpaidAmount: [] });
      }
    });

    it('overpayments: recorded once per PaymentIntent and penalty, listed oldest first until refunded', async () => {
      const { store } = await make();
      const pi = `pi_over_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      const owed = (penaltyId: string, recordedAt: string) => ({
        paymentIntentId: pi,
        penaltyId,
        userId: 'u-over',
        amount: 500,
        currency: 'eur',
        settledAs: 'waived' as const,
        settledBy: null,
        recordedAt,
        refundId: null,
        refundedAt: null,
      });
      const mine = async (all = false) =>
        (await store.listOverpayments({ all })).filter((o) => o.paymentIntentId === pi);
      const firstTime = await store.recordOverpayments([
        owed('pen_u-over_h_2026-11-02', '2026-11-05T10:00:00.000Z'),
        owed('pen_u-over_h_2026-11-01', '2026-11-05T09:00:00.000Z'),
      ]);
      expect(firstTime.map((o) => o.penaltyId)).toEqual([
        'pen_u-over_h_2026-11-02',
        'pen_u-over_h_2026-11-01',
      ]);
      // Recorded again (a redelivered payment event): the first record stays, and it is
      // not answered as new.
      expect(
        await store.recordOverpayments([
          owed('pen_u-over_h_2026-11-01', '2026-11-06T00:00:00.000Z'),
        ]),
      ).toEqual([]);
      expect((await mine()).map((o) => [o.penaltyId, o.recordedAt])).toEqual([
        ['pen_u-over_h_2026-11-01', '2026-11-05T09:00:00.000Z'],
        ['pen_u-over_h_2026-11-02', '2026-11-05T10:00:00.000Z'],
      ]);
      const key = { paymentIntentId: pi, penaltyId: 'pen_u-over_h_2026-11-01' };
      await store.markOverpaymentRefunded(key, {
        refundId: 're_1',
        refundedAt: '2026-11-07T00:00:00.000Z',
      });
      // A second mark keeps the first refund; recording again does not reopen it.
      await store.markOverpaymentRefunded(key, {
        refundId: 're_2',
        refundedAt: '2026-11-08T00:00:00.000Z',
      });
      await store.recordOverpayments([owed('pen_u-over_h_2026-11-01', '2026-11-09T00:00:00.000Z')]);
      expect((await mine()).map((o) => o.penaltyId)).toEqual(['pen_u-over_h_2026-11-02']);
      expect((await mine(true))[0]).toMatchObject({ ...key, refundId: 're_1' });
    });
  });
}

contract('in-memory', async () => {
  const store = new InMemoryPenaltyStore();
  return {
    store,
    setProfile: async (userId, profile) => {
      store.profiles.set(userId, profile);
    },
  };
});

contract('DynamoDB Local', async () => {
  const { dynamo } = emulatorClients();
  const { billingTableName } = await createBillingTables(dynamo);
  const penaltiesTableName = await createPenaltiesTable(dynamo);
  const documents = DynamoDBDocumentClient.from(dynamo);
  return {
    store: new DynamoDbPenaltyStore({ client: dynamo, penaltiesTableName, billingTableName }),
    setProfile: async (userId, profile) => {
      await documents.send(
        new PutCommand({
          TableName: billingTableName,
          Item: {
            ...billingKeys.profile(userId),
            userId,
            tier: profile.tier,
            credits: profile.credits,
            ...(profile.customerId ? { stripeCustomerId: profile.customerId } : {}),
          },
        }),
      );
    },
  };
});

describe('DynamoDbPenaltyStore: the per-date unpaid counts on the account item', () => {
  const clock = fixedClock(at('2026-07-01'));
  /** A user with `habitIds`, created on the first of `dates` and assessed (missed) on each. */
  async function setUp(habitIds: readonly string[], dates: readonly string[]) {
    const { dynamo } = emulatorClients();
    const { billingTableName } = await createBillingTables(dynamo);
    const penaltiesTableName = await createPenaltiesTable(dynamo);
    const store = new DynamoDbPenaltyStore({
      client: dynamo,
      penaltiesTableName,
      billingTableName,
    });
    const documents = DynamoDBDocumentClient.from(dynamo);
    const user = fresh('d');
    clock.time = at(dates[0] as string);
    for (const habitId of habitIds) {
      await saveHabit({ userId: user, habitId }, settings(), {
        store,
        clock,
        freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      });
    }
    for (const day of dates) {
      clock.time = at(day) + 86_400_000;
      await assessDate(day, { store, clock, pause: noPause });
    }
    const account = async () =>
      (
        await documents.send(
          new GetCommand({ TableName: penaltiesTableName, Key: PENALTY_KEYS.account(user) }),
        )
      ).Item ?? {};
    const dateCounts = async () =>
      Object.fromEntries(
        Object.entries(await account()).filter(([name]) => name.startsWith(UNPAID_DATE_PREFIX)),
      );
    return { store, documents, penaltiesTableName, user, dateCounts };
  }

  it('removes a date once nothing of it is unpaid, so the item does not grow with every date', async () => {
    const { store, user, dateCounts } = await setUp(['a', 'b'], ['2026-07-01', '2026-07-02']);
    expect(await dateCounts()).toEqual({
      [`${UNPAID_DATE_PREFIX}2026-07-01`]: 2,
      [`${UNPAID_DATE_PREFIX}2026-07-02`]: 2,
    });
    await markPenaltiesPaid([`pen_${user}_a_2026-07-01`], null, { store, clock, pause: noPause });
    expect(await dateCounts()).toEqual({
      [`${UNPAID_DATE_PREFIX}2026-07-01`]: 1,
      [`${UNPAID_DATE_PREFIX}2026-07-02`]: 2,
    });
    await markPenaltiesPaid([`pen_${user}_b_2026-07-01`, `pen_${user}_a_2026-07-02`], null, {
      store,
      clock,
      pause: noPause,
    });
    expect(await dateCounts()).toEqual({ [`${UNPAID_DATE_PREFIX}2026-07-02`]: 1 });
    expect((await store.getAccount(user))?.oldestUnpaidDate).toBe('2026-07-02');
  });

  it('marks 99 penalties of one user on 99 dates paid in one transaction, then prunes every date', async () => {
    const dates = Array.from({ length: 99 }, (_, day) =>
      new Date(at('2026-03-01') + day * 86_400_000).toISOString().slice(0, 10),
    );
    const { store, user, dateCounts } = await setUp(['h'], dates);
    expect(await store.getAccount(user)).toMatchObject({
      unpaidCount: 99,
      oldestUnpaidDate: dates[0],
    });
    // One user's 99 penalties and the account: one transaction of 100 items, whose
    // account update carries 99 date counts (well within DynamoDB's expression limits).
    const ids = dates.map((date) => `pen_${user}_h_${date}`);
    const result = await markPenaltiesPaid(ids, null, { store, clock, pause: noPause });
    expect(result.changed).toHaveLength(99);
    expect(await store.getAccount(user)).toMatchObject({ unpaidCount: 0, oldestUnpaidDate: null });
    expect(await dateCounts()).toEqual({});
  });

  it('an account kept before the per-date counts reads its oldest date from the index until its old penalties are settled', async () => {
    const { store, documents, penaltiesTableName, user, dateCounts } = await setUp(
      ['a', 'b'],
      ['2026-07-01', '2026-07-02'],
    );
    // As an account written before this change: counts and amounts, no dates.
    const legacy = Object.keys(await dateCounts());
    await documents.send(
      new UpdateCommand({
        TableName: penaltiesTableName,
        Key: PENALTY_KEYS.account(user),
        UpdateExpression: `REMOVE ${legacy.map((_, index) => `#d${index}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(legacy.map((name, i) => [`#d${i}`, name])),
      }),
    );
    expect(await store.getAccount(user)).toMatchObject({
      unpaidCount: 4,
      oldestUnpaidDate: '2026-07-01',
    });
    await markPenaltiesPaid([`pen_${user}_a_2026-07-01`, `pen_${user}_b_2026-07-01`], null, {
      store,
      clock,
      pause: noPause,
    });
    expect((await store.getAccount(user))?.oldestUnpaidDate).toBe('2026-07-02');
    clock.time = at('2026-07-03') + 86_400_000;
    await assessDate('2026-07-03', { store, clock, pause: noPause });
    await markPenaltiesPaid([`pen_${user}_a_2026-07-02`, `pen_${user}_b_2026-07-02`], null, {
      store,
      clock,
      pause: noPause,
    });
    // The old penalties are all gone: the counts alone answer again.
    expect(await store.getAccount(user)).toMatchObject({
      unpaidCount: 2,
      oldestUnpaidDate: '2026-07-03',
    });
  });
});

describe("DynamoDbPenaltyStore: a user's habits on the account item", () => {
  it('assesses a user with the most habits allowed in one transaction, every habit missed, and again the next day', async () => {
    const { dynamo } = emulatorClients();
    const { billingTableName } = await createBillingTables(dynamo);
    const penaltiesTableName = await createPenaltiesTable(dynamo);
    const real = new DynamoDbPenaltyStore({ client: dynamo, penaltiesTableName, billingTableName });
    const user = fresh('m');
    const clock = fixedClock(at('2026-06-01'));
    const habitIds = Array.from({ length: MAX_HABITS_PER_USER }, (_, i) => `habit-${i}`);
    const deps = { store: real, clock, freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS };
    for (const [i, habitId] of habitIds.entries()) {
      // Long names, three currencies, a recipient each: an item near its largest.
      await saveHabit(
        { userId: user, habitId },
        settings({
          name: `${habitId} `.repeat(12),
          currency: ['usd', 'eur', 'gbp'][i % 3] as string,
          recipientId: `recipient-${i}`,
        }),
        deps,
      );
    }
    await expect(
      saveHabit({ userId: user, habitId: 'one-more' }, settings(), deps),
    ).rejects.toMatchObject({ code: 'habit_limit' });
    const commits: string[] = [];
    const store = new Proxy(real, {
      get(target, property, receiver) {
        if (property === 'commitAssessment') {
          return async (...args: Parameters<PenaltyStore['commitAssessment']>) => {
            const result = await target.commitAssessment(...args);
            commits.push(`${args[0].assessments.length} ${result.status}`);
            return result;
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    for (const habitId of habitIds.slice(0, 30)) {
      await verifyHabit({ userId: user, habitId }, '2026-06-01', { store, clock });
    }
    for (const [day, missed] of [
      ['2026-06-01', MAX_HABITS_PER_USER - 30],
      ['2026-06-02', MAX_HABITS_PER_USER],
    ] as const) {
      commits.length = 0;
      clock.time = at(day) + 86_400_000;
      const result = await assessDate(day, { store, clock, pause: noPause });
      expect(result, day).toMatchObject({ habits: MAX_HABITS_PER_USER, missed, complete: true });
      // The account and all its penalties in one transaction (other shards commit empty slices).
      expect(
        commits.filter((commit) => !commit.startsWith('0 ')),
        day,
      ).toEqual(['1 committed']);
    }
    expect(await real.getAccount(user)).toMatchObject({
      habits: MAX_HABITS_PER_USER,
      unpaidCount: 2 * MAX_HABITS_PER_USER - 30,
      oldestUnpaidDate: '2026-06-01',
    });
    const habits = await real.listHabits(user);
    expect(habits.find((habit) => habit.habitId === 'habit-0')).toMatchObject({
      currentStreak: 0,
      longestStreak: 1,
      lastAssessedDate: '2026-06-02',
    });
    const { Item } = await DynamoDBDocumentClient.from(dynamo).send(
      new GetCommand({ TableName: penaltiesTableName, Key: PENALTY_KEYS.account(user) }),
    );
    expect(Buffer.byteLength(JSON.stringify(Item))).toBeLessThan(100_000);
  });
});
