/**
 * For random habits, settings changes (during a day, or after it but before its
 * assessment), verifications, repeated and concurrent assessments, settlements and
 * duplicated, reordered payment outcomes: every habit-day missed while the day began
 * active and not free has exactly one penalty, of the amount the day began with; no
 * penalty is paid twice, no credit is spent twice, and the summaries and recipient
 * totals equal a recount of the penalties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../../functions/core/penalties/habits.ts';
import { saveHabit } from '../../../functions/core/penalties/manage-habits.ts';
import { applyPenaltyPayment } from '../../../functions/core/penalties/penalty-payments.ts';
import { settlePenalties } from '../../../functions/core/penalties/settlement.ts';
import { addHabit, at, FakeGateway, fixedClock, noPause, settings } from './penalty-fixtures.ts';

const DAYS = ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04'];
const USERS = ['ann', 'ben', 'cy_d'];

const scenario = fc.record({
  habits: fc.array(
    fc.record({
      user: fc.constantFrom(...USERS),
      free: fc.boolean(),
      amount: fc.integer({ min: 50, max: 900 }),
      currency: fc.constantFrom('usd', 'eur'),
      recipient: fc.constantFrom('r1', 'r2', null),
    }),
    { minLength: 1, maxLength: 6 },
  ),
  verified: fc.array(fc.tuple(fc.nat(5), fc.nat(DAYS.length - 1)), { maxLength: 10 }),
  /**
   * Settings changes: on `day` at 18:00, or (`beforeAssessment`) the next day at 00:05,
   * before that day's assessment: the change must not reach back to the missed day.
   */
  changes: fc.array(
    fc.record({
      habit: fc.nat(5),
      day: fc.nat(DAYS.length - 1),
      beforeAssessment: fc.boolean(),
      active: fc.boolean(),
      free: fc.boolean(),
      amount: fc.integer({ min: 50, max: 900 }),
    }),
    { maxLength: 8 },
  ),
  credits: fc.array(fc.nat(3), { minLength: USERS.length, maxLength: USERS.length }),
  /** Per day: how many assessments of it run concurrently (1-3), and whether to settle after. */
  runs: fc.array(fc.record({ parallel: fc.integer({ min: 1, max: 3 }), settle: fc.boolean() }), {
    minLength: DAYS.length,
    maxLength: DAYS.length,
  }),
  /** Payment outcomes to deliver per settlement, in this order, duplicated as drawn. */
  deliveries: fc.array(fc.constantFrom('succeeded', 'failed', 'succeeded'), {
    minLength: 1,
    maxLength: 4,
  }),
});

describe('penalties invariants', () => {
  it('hold under repeated and concurrent runs, settlements and reordered payment events', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const store = new InMemoryPenaltyStore();
        const gateway = new FakeGateway();
        const clock = fixedClock(at('2026-10-01'));
        const habits = s.habits.map((h, index) => ({ ...h, habitId: `h${index}` }));
        for (const h of habits) {
          await addHabit(store, h.user, h.habitId, '2026-10-01', {
            free: h.free,
            penaltyAmount: h.amount,
            currency: h.currency,
            recipientId: h.recipient,
          });
        }
        USERS.forEach((user, index) => {
          store.profiles.set(user, {
            tier: 'gold',
            credits: s.credits[index] ?? 0,
            customerId: null,
          });
        });
        const creditsBefore = new Map(USERS.map((user, index) => [user, s.credits[index] ?? 0]));
        for (const [habitIndex, dayIndex] of s.verified) {
          const h = habits[habitIndex % habits.length];
          if (h)
            await store.addVerification(
              { userId: h.user, habitId: h.habitId },
              DAYS[dayIndex] as string,
            );
        }
        const verifiedDays = new Set(
          s.verified.map(([habitIndex, dayIndex]) => {
            const h = habits[habitIndex % habits.length];
            return `${h?.user}/${h?.habitId}/${DAYS[dayIndex]}`;
          }),
        );
        // Each habit's settings over time: [from (ms), settings], creation first.
        const timelines = new Map(
          habits.map((h) => [
            h.habitId,
            [
              {
                from: at('2026-10-01'),
                active: true,
                free: h.free,
                amount: h.amount,
                currency: h.currency,
              },
            ],
          ]),
        );
        const change = async (c: (typeof s.changes)[number], time: number) => {
          const h = habits[c.habit % habits.length]!;
          await saveHabit(
            { userId: h.user, habitId: h.habitId },
            settings({
              active: c.active,
              free: c.free,
              penaltyAmount: c.free ? 0 : c.amount,
              currency: h.currency,
              recipientId: h.recipient,
            }),
            { store, clock: fixedClock(time), freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS },
          );
          timelines.get(h.habitId)!.push({
            from: time,
            active: c.active,
            free: c.free,
            amount: c.free ? 0 : c.amount,
            currency: h.currency,
          });
        };
        const settlements: { paymentIntentId: string; penaltyIds: string[] }[] = [];
        for (const [dayIndex, day] of DAYS.entries()) {
          const nextMidnight = at(day, '23:00:00') + 3_600_000;
          for (const c of s.changes.filter((c) => c.day === dayIndex && !c.beforeAssessment)) {
            await change(c, at(day, '18:00:00'));
          }
          for (const c of s.changes.filter((c) => c.day === dayIndex && c.beforeAssessment)) {
            await change(c, nextMidnight + 5 * 60_000);
          }
          clock.time = nextMidnight + 15 * 60_000;
          const run = s.runs[dayIndex] ?? { parallel: 1, settle: false };
          await Promise.all(
            Array.from({ length: run.parallel }, () =>
              assessDate(day, { store, clock, pause: noPause, concurrency: 2 }),
            ),
          );
          await assessDate(day, { store, clock, pause: noPause });
          if (!run.settle) continue;
          for (const user of USERS) {
            if (!(await store.getAccount(user))) continue;
            try {
              const result = await settlePenalties(user, { store, gateway, clock, pause: noPause });
              if (result.payment) settlements.push(result.payment);
            } catch (error) {
              expect((error as { code?: string }).code).toBe('settlement_pending');
            }
          }
          // Deliver outcomes for every settlement so far, duplicated and reordered as drawn.
          for (const settlement of settlements) {
            for (const outcome of s.deliveries) {
              await applyPenaltyPayment(
                { ...settlement, outcome: outcome as 'succeeded' | 'failed' },
                { store, clock, pause: noPause },
              );
            }
          }
        }

        // Exactly one penalty per habit-day missed that began active and not free, of the
        // amount the day began with (habits exist since before DAYS).
        const expected = new Map<string, number>();
        for (const h of habits) {
          for (const day of DAYS) {
            const began = timelines
              .get(h.habitId)!
              .filter((entry) => entry.from < at(day, '00:00:00'))
              .at(-1)!;
            if (began.active && !began.free && !verifiedDays.has(`${h.user}/${h.habitId}/${day}`)) {
              expected.set(`pen_${h.user}_${h.habitId}_${day}`, began.amount);
            }
          }
        }
        expect(new Map([...store.penalties.values()].map((p) => [p.penaltyId, p.amount]))).toEqual(
          expected,
        );

        // Summaries equal a recount; recipient totals count each paid penalty once.
        const penalties = [...store.penalties.values()];
        for (const user of USERS) {
          const unpaid = penalties.filter((p) => p.userId === user && p.status === 'unpaid');
          const account = await store.getAccount(user);
          if (!account) continue;
          expect(account.unpaidCount).toBe(unpaid.length);
          expect(account.oldestUnpaidDate).toBe(unpaid.map((p) => p.date).sort()[0] ?? null);
          const amounts = new Map<string, number>();
          for (const p of unpaid)
            amounts.set(p.currency, (amounts.get(p.currency) ?? 0) + p.amount);
          expect(account.unpaidAmount).toEqual(
            [...amounts]
              .map(([currency, amount]) => ({ currency, amount }))
              .sort((a, b) => a.currency.localeCompare(b.currency)),
          );
          // Credits: spent exactly once per waived penalty, never below zero.
          const waived = penalties.filter((p) => p.userId === user && p.status === 'waived').length;
          const credits = (await store.getUserBilling(user)).credits;
          expect(credits).toBeGreaterThanOrEqual(0);
          expect(credits).toBe((creditsBefore.get(user) ?? 0) - waived);
        }
        for (const recipient of ['r1', 'r2']) {
          const paid = penalties.filter((p) => p.recipientId === recipient && p.status === 'paid');
          const totals = await store.recipientTotals(recipient);
          expect(totals?.penaltiesPaid ?? 0).toBe(paid.length);
          const sum = paid.reduce((total, p) => total + p.amount, 0);
          expect((totals?.amounts ?? []).reduce((total, m) => total + m.amount, 0)).toBe(sum);
        }
      }),
      { numRuns: 60 },
    );
  });
});
