/**
 * For random habits, settings changes (during a day, or after it but before its
 * assessment), verifications, repeated and concurrent assessments, concurrent
 * settlements (several settles of one user at once, as a double click, interleaved by
 * fast-check's scheduler with each other, with the day's assessments and with payment
 * webhooks), and payment outcomes (succeeded, payment_failed, canceled) delivered for
 * the same PaymentIntent in random order and multiplicity:
 * - every habit-day missed while the day began active and not free has exactly one
 *   penalty, of the amount the day began with;
 * - each delivered outcome does exactly what penalty-payments.ts documents (a succeeded
 *   after a failed still pays, a failed after a succeeded changes nothing, a duplicate
 *   changes nothing);
 * - no user ever holds two untouched PaymentIntents (a double click gets one), and every
 *   PaymentIntent handed out carries exactly the penalties it was created for;
 * - no penalty is paid twice: every succeeded PaymentIntent carrying a penalty but the
 *   one it is paid by is recorded as an overpayment (to refund), and none otherwise;
 * - no credit is spent twice: credits never go below zero, credits spent equal the
 *   penalties waived and no penalty is reported waived twice;
 * - the summaries and, per recipient and currency, the recipient totals equal a recount.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import { PenaltyConflictError } from '../../../functions/core/penalties/errors.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../../functions/core/penalties/habits.ts';
import { saveHabit } from '../../../functions/core/penalties/manage-habits.ts';
import {
  applyPenaltyPayment,
  outcomeOfPayment,
  type PenaltyPaymentResult,
} from '../../../functions/core/penalties/penalty-payments.ts';
import {
  type CreatedPaymentIntent,
  PaymentRejectedError,
  type PenaltyPaymentRequest,
  type PenaltyPaymentState,
  type PenaltyPaymentStatus,
  type PenaltyStatus,
  type TransitionCommit,
} from '../../../functions/core/penalties/ports.ts';
import {
  type SettlementResult,
  settlePenalties,
} from '../../../functions/core/penalties/settlement.ts';
import {
  addHabit,
  at,
  DAY,
  FakeGateway,
  fixedClock,
  noPause,
  settings,
} from './penalty-fixtures.ts';

const DAYS = ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04'];
const USERS = ['ann', 'ben', 'cy_d'];
const RECIPIENTS = ['r1', 'r2'];
const KINDS = ['succeeded', 'payment_failed', 'canceled'] as const;
type Kind = (typeof KINDS)[number];
type StripeState = 'open' | 'failed' | 'succeeded' | 'canceled';
type Payment = NonNullable<SettlementResult['payment']>;

/**
 * The Stripe adapter (stripe-penalty-payments.ts) as a fake: one PaymentIntent per
 * idempotency key, except that a replayed key whose intent failed (canceled first) or
 * was canceled gets a new one. Counts the PaymentIntents it creates, with the request
 * (penalties, amount) each was created for, and knows what each one is at Stripe.
 */
class StripeLikeGateway extends FakeGateway {
  readonly created = new Map<string, PenaltyPaymentRequest>();
  readonly states = new Map<string, StripeState>();
  /** PaymentIntents canceled here: Stripe owes a `payment_intent.canceled` webhook for each. */
  readonly canceledHere: string[] = [];

  override async createPenaltyPayment(request: PenaltyPaymentRequest) {
    this.requests.push(request);
    let key = request.idempotencyKey;
    for (;;) {
      const existing = this.intents.get(key);
      if (!existing) {
        const id = `pi_${this.created.size + 1}`;
        const intent: CreatedPaymentIntent = {
          paymentIntentId: id,
          clientSecret: `${id}_secret`,
          amount: request.amount,
          currency: request.currency,
        };
        this.intents.set(key, intent);
        this.created.set(id, structuredClone(request));
        this.states.set(id, 'open');
        return { ...intent };
      }
      const state = this.states.get(existing.paymentIntentId);
      if (state === 'failed') this.#cancel(existing.paymentIntentId);
      else if (state !== 'canceled') return { ...existing };
      key = `${key}:after:${existing.paymentIntentId}`;
    }
  }

  override async cancelPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentState> {
    this.cancels.push(paymentIntentId);
    if (this.states.get(paymentIntentId) === 'succeeded') return 'succeeded';
    this.#cancel(paymentIntentId);
    return 'canceled';
  }

  override async getPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentStatus> {
    const intent = [...this.intents.values()].find((i) => i.paymentIntentId === paymentIntentId);
    if (!intent) throw new PaymentRejectedError('resource_missing');
    const state = this.states.get(paymentIntentId);
    return {
      ...intent,
      state: state === 'succeeded' || state === 'canceled' ? state : 'open',
    };
  }

  /** A payment event happened at Stripe (its webhook follows); succeeded and canceled are final. */
  happened(paymentIntentId: string, kind: Kind): void {
    const state = this.states.get(paymentIntentId);
    if (state === 'succeeded' || state === 'canceled') return;
    this.states.set(paymentIntentId, kind === 'payment_failed' ? 'failed' : kind);
  }

  #cancel(paymentIntentId: string): void {
    if (this.states.get(paymentIntentId) === 'canceled') return;
    this.states.set(paymentIntentId, 'canceled');
    this.canceledHere.push(paymentIntentId);
  }
}

/** `target` with every method call started only when the scheduler lets it. */
function viaScheduler<T extends object>(target: T, scheduler: fc.Scheduler, name: string): T {
  return new Proxy(target, {
    get(object, property) {
      const value = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        scheduler
          .schedule(Promise.resolve(), `${name}.${String(property)}`)
          .then(() => value.apply(object, args));
    },
  });
}

/** A payment event: for the `target`-th newest PaymentIntent handed out, `repeat` times. */
const paymentEvent = fc.record({
  target: fc.nat(5),
  kind: fc.constantFrom<Kind>('succeeded', 'succeeded', 'payment_failed', 'canceled'),
  repeat: fc.integer({ min: 1, max: 2 }),
});
type PaymentEvent = { target: number; kind: Kind; repeat: number };

const scenario = fc.record({
  habits: fc.array(
    fc.record({
      user: fc.constantFrom(...USERS),
      free: fc.boolean(),
      amount: fc.integer({ min: 50, max: 900 }),
      currency: fc.constantFrom('usd', 'eur'),
      recipient: fc.constantFrom('r1', 'r1', 'r2', null),
    }),
    { minLength: 2, maxLength: 6 },
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
  runs: fc.array(
    fc.record({
      /** How many assessments of the day run concurrently (then one more, alone). */
      parallel: fc.integer({ min: 1, max: 3 }),
      settle: fc.boolean(),
      /** Settle while the day's concurrent assessments run, instead of after them. */
      overlap: fc.boolean(),
      /** Per user, how many settles start at once (a double or triple click). */
      clicks: fc.array(fc.integer({ min: 1, max: 3 }), {
        minLength: USERS.length,
        maxLength: USERS.length,
      }),
      /** Webhooks for earlier PaymentIntents arriving while the settles run. */
      during: fc.array(paymentEvent, { maxLength: 3 }),
      /** Webhooks delivered one by one after the settles, each checked against its documented result. */
      after: fc.array(paymentEvent, { maxLength: 8 }),
      /** Settle again ten minutes later (the settlement lock still fresh). */
      again: fc.boolean(),
    }),
    { minLength: DAYS.length, maxLength: DAYS.length },
  ),
  scheduler: fc.scheduler(),
});

/** How often the cases the assertions are about came up, over all runs (checked after). */
const seen = {
  multiClickRounds: 0,
  orphanIntents: 0,
  resumed: 0,
  released: 0,
  duplicateOutcomes: 0,
  succeededAfterFailed: 0,
  failedAfterSucceeded: 0,
  overpaid: 0,
  paidInTwoCurrencies: 0,
};

const invariants = () =>
  fc.asyncProperty(scenario, async (s) => {
    let paidInTwoCurrencies = false;
    const store = new InMemoryPenaltyStore();
    const gateway = new StripeLikeGateway();
    // What the concurrent settles, assessments and webhooks use: each call to the store
    // or to Stripe starts when the scheduler says.
    const concurrentStore = viaScheduler(store, s.scheduler, 'store');
    const concurrentGateway = viaScheduler(gateway, s.scheduler, 'stripe');
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

    /** PaymentIntents handed out to users (settle answers, 409s resuming one): id → user. */
    const handed = new Map<string, string>();
    const handedOrder: string[] = [];
    /** Committed settlements' answers. */
    const settled: { userId: string; result: SettlementResult }[] = [];
    /** PaymentIntents whose succeeded / failed outcome has been applied. */
    const succeeded = new Set<string>();
    const failed = new Set<string>();
    /** Outcomes delivered per PaymentIntent (for duplicates). */
    const delivered = new Map<string, Kind[]>();
    /** Webhooks whose handling failed (kept conflicting): delivered again, as SQS would. */
    const redeliveries: { paymentIntentId: string; kind: Kind }[] = [];

    const hand = (userId: string, payment: Payment, inRound: Set<string>) => {
      const request = gateway.created.get(payment.paymentIntentId);
      expect(request, 'a PaymentIntent handed out was created by the gateway').toBeDefined();
      expect(request!.userId).toBe(userId);
      expect(payment.penaltyIds).toEqual(request!.penaltyIds);
      expect({ amount: payment.amount, currency: payment.currency }).toEqual({
        amount: request!.amount,
        currency: request!.currency,
      });
      const carried = request!.penaltyIds.map((id) => store.penalties.get(id));
      expect(carried.every((p) => p?.userId === userId && p.currency === request!.currency)).toBe(
        true,
      );
      expect(request!.amount).toBe(carried.reduce((sum, p) => sum + (p?.amount ?? 0), 0));
      if (!handed.has(payment.paymentIntentId)) handedOrder.push(payment.paymentIntentId);
      handed.set(payment.paymentIntentId, userId);
      inRound.add(payment.paymentIntentId);
    };

    const settle = async (userId: string, inRound: Set<string>) => {
      let result: SettlementResult;
      try {
        result = await settlePenalties(userId, {
          store: concurrentStore,
          gateway: concurrentGateway,
          clock,
          pause: noPause,
        });
      } catch (error) {
        // Refused while another settlement is pending (offering it again when it can
        // still be paid whole), or after conflicting too often: nothing else.
        expect(error).toBeInstanceOf(PenaltyConflictError);
        const { code, details } = error as PenaltyConflictError;
        expect(['settlement_pending', 'settlement_conflict']).toContain(code);
        const payment = details.payment as Payment | undefined;
        if (payment) {
          seen.resumed += 1;
          hand(userId, payment, inRound);
        }
        return;
      }
      settled.push({ userId, result });
      if (result.payment) hand(userId, result.payment, inRound);
    };

    const statuses = () =>
      new Map(
        [...store.penalties].map(([id, p]) => [
          id,
          { status: p.status as PenaltyStatus, paymentId: p.paymentId },
        ]),
      );

    /**
     * Delivers one payment event to applyPenaltyPayment. `checked`: alone, and its
     * effect compared with what penalty-payments.ts documents.
     */
    const deliver = async (paymentIntentId: string, kind: Kind, checked: boolean) => {
      const request = gateway.created.get(paymentIntentId)!;
      gateway.happened(paymentIntentId, kind);
      const outcome = outcomeOfPayment({
        status: kind === 'payment_failed' ? 'failed' : kind,
        paidAt: kind === 'succeeded' ? new Date(clock.now()).toISOString() : null,
      });
      expect(outcome).toBe(kind === 'succeeded' ? 'succeeded' : 'failed');
      if (!outcome) return;
      const earlier = delivered.get(paymentIntentId) ?? [];
      if (earlier.includes(kind)) seen.duplicateOutcomes += 1;
      delivered.set(paymentIntentId, [...earlier, kind]);
      const before = statuses();
      const wasSucceeded = succeeded.has(paymentIntentId);
      const wasFailed = failed.has(paymentIntentId);
      const lockBefore = checked
        ? ((await store.getAccount(request.userId))?.pending?.paymentIntentId ?? null)
        : null;
      let result: PenaltyPaymentResult;
      try {
        result = await applyPenaltyPayment(
          { paymentIntentId, penaltyIds: request.penaltyIds, outcome },
          { store: checked ? store : concurrentStore, clock, pause: noPause },
        );
      } catch (error) {
        // Only under concurrent writers: the record fails and SQS delivers it again.
        expect(checked).toBe(false);
        expect(String(error)).toMatch(/kept conflicting/);
        redeliveries.push({ paymentIntentId, kind });
        return;
      }
      await store.recordOverpayments(result.overpaid);
      seen.overpaid += result.overpaid.length;
      (outcome === 'succeeded' ? succeeded : failed).add(paymentIntentId);
      if (!checked) return;

      // Exactly the documented move: succeeded pays what is unpaid or pending (paid is
      // final, whichever settlement it was pending under) and reports what was waived
      // or paid by another PaymentIntent as overpaid; failed puts back to unpaid only
      // what is pending under this PaymentIntent. Nothing else changes.
      const expected = new Map(before);
      const changed: string[] = [];
      const overpaid: { penaltyId: string; settledAs: string; settledBy: string | null }[] = [];
      for (const id of request.penaltyIds) {
        const p = before.get(id);
        expect(p, `${id} exists`).toBeDefined();
        if (!p) continue;
        if (outcome === 'succeeded') {
          if (p.status === 'unpaid' || p.status === 'pending') {
            expected.set(id, { status: 'paid', paymentId: paymentIntentId });
            changed.push(id);
          } else if (p.status === 'waived' || p.paymentId !== paymentIntentId) {
            overpaid.push({
              penaltyId: id,
              settledAs: p.status,
              settledBy: p.status === 'paid' ? p.paymentId : null,
            });
          }
        } else if (p.status === 'pending' && p.paymentId === paymentIntentId) {
          expected.set(id, { status: 'unpaid', paymentId: null });
          changed.push(id);
        }
      }
      const after = statuses();
      if (outcome === 'failed' && wasSucceeded) {
        // A failed (or canceled) after a succeeded changes nothing.
        seen.failedAfterSucceeded += 1;
        expect(result.changed, 'failed after succeeded').toEqual([]);
        expect(after, 'failed after succeeded').toEqual(before);
      }
      if (outcome === 'succeeded' && wasFailed) {
        // A succeeded after a failed still pays: none of its penalties is left owed.
        seen.succeededAfterFailed += 1;
        for (const id of request.penaltyIds) {
          expect(['paid', 'waived'], `succeeded after failed: ${id}`).toContain(
            after.get(id)?.status,
          );
        }
      }
      expect(after).toEqual(expected);
      expect([...result.changed].sort()).toEqual(changed.sort());
      expect(
        result.overpaid
          .map(({ penaltyId, settledAs, settledBy }) => ({ penaltyId, settledAs, settledBy }))
          .sort((a, b) => a.penaltyId.localeCompare(b.penaltyId)),
      ).toEqual(overpaid.sort((a, b) => a.penaltyId.localeCompare(b.penaltyId)));
      // Either outcome releases the user's lock if it is this PaymentIntent's, only then.
      const lockAfter = (await store.getAccount(request.userId))?.pending?.paymentIntentId ?? null;
      expect(lockAfter).toBe(lockBefore === paymentIntentId ? null : lockBefore);
    };

    /** The `target`-th newest of `ids`. */
    const pick = (ids: readonly string[], target: number) =>
      ids.length === 0 ? undefined : ids[ids.length - 1 - (target % ids.length)];

    /** One round of concurrent settles (all users, `clicks` each), maybe with assessments and webhooks. */
    const round = async (
      day: string,
      run: (typeof s.runs)[number],
      options: { assessments: boolean; during: PaymentEvent[] },
    ) => {
      const earlier = [...handedOrder];
      const createdBefore = gateway.created.size;
      const inRound = new Map(USERS.map((user) => [user, new Set<string>()]));
      const tasks: Promise<unknown>[] = [];
      if (options.assessments) {
        for (let i = 0; i < run.parallel; i += 1) {
          tasks.push(
            assessDate(day, {
              store: concurrentStore,
              clock,
              pause: noPause,
              concurrency: 2,
            }).catch((error) => expect(String(error)).toMatch(/kept failing/)),
          );
        }
      }
      USERS.forEach((user, index) => {
        const clicks = run.clicks[index] ?? 1;
        for (let click = 0; click < clicks; click += 1) {
          tasks.push(settle(user, inRound.get(user)!));
        }
      });
      let webhooks = 0;
      for (const event of options.during) {
        const target = pick(earlier, event.target);
        if (!target) continue;
        for (let i = 0; i < event.repeat; i += 1) {
          webhooks += 1;
          tasks.push(deliver(target, event.kind, false));
        }
      }
      await s.scheduler.waitFor(Promise.all(tasks));
      await s.scheduler.waitIdle();
      if (run.clicks.some((clicks) => clicks > 1)) seen.multiClickRounds += 1;
      const handedNow = new Set(handedOrder);
      for (let i = createdBefore; i < gateway.created.size; i += 1) {
        if (!handedNow.has(`pi_${i + 1}`)) seen.orphanIntents += 1;
      }
      if (webhooks === 0) {
        // A double click gets one PaymentIntent: the settles of one user hand out at most one.
        for (const [user, ids] of inRound) {
          expect([...ids], `PaymentIntents handed to ${user} in one round`).toHaveLength(
            Math.min(ids.size, 1),
          );
        }
      }
    };

    /** Webhooks one by one: redeliveries, those drawn, then the canceled ones Stripe owes. */
    const deliverAfter = async (events: PaymentEvent[]) => {
      for (const { paymentIntentId, kind } of redeliveries.splice(0)) {
        await deliver(paymentIntentId, kind, true);
      }
      for (const event of events) {
        const target = pick(handedOrder, event.target);
        if (!target) continue;
        for (let i = 0; i < event.repeat; i += 1) await deliver(target, event.kind, true);
      }
      for (const paymentIntentId of gateway.canceledHere.splice(0)) {
        seen.released += 1;
        if (handed.has(paymentIntentId)) await deliver(paymentIntentId, 'canceled', true);
      }
    };

    /** The invariants that hold whenever nothing is running. */
    const checkpoint = async () => {
      const penalties = [...store.penalties.values()];
      for (const user of USERS) {
        const mine = penalties.filter((p) => p.userId === user);
        const account = await store.getAccount(user);
        if (!account) {
          expect(mine).toEqual([]);
          continue;
        }
        // Summaries equal a recount.
        const unpaid = mine.filter((p) => p.status === 'unpaid');
        expect(account.unpaidCount).toBe(unpaid.length);
        expect(account.oldestUnpaidDate).toBe(unpaid.map((p) => p.date).sort()[0] ?? null);
        const amounts = new Map<string, number>();
        for (const p of unpaid) amounts.set(p.currency, (amounts.get(p.currency) ?? 0) + p.amount);
        expect(account.unpaidAmount).toEqual(
          [...amounts]
            .map(([currency, amount]) => ({ currency, amount }))
            .sort((a, b) => a.currency.localeCompare(b.currency)),
        );
        // Pending penalties are pending under the user's one settlement lock.
        const lock = account.pending;
        for (const p of mine.filter((p) => p.status === 'pending')) {
          expect(lock?.paymentIntentId, `lock over pending ${p.penaltyId}`).toBe(p.paymentId);
          expect(lock?.penaltyIds).toContain(p.penaltyId);
        }
        if (lock) expect(handed.get(lock.paymentIntentId)).toBe(user);
        // No user holds two PaymentIntents that can still be paid untouched: at most
        // one, the lock's (so no two of them carry the same penalty).
        const open = [...handed]
          .filter(([id, owner]) => owner === user && gateway.states.get(id) === 'open')
          .map(([id]) => id);
        expect(open.length, `open PaymentIntents of ${user}`).toBeLessThanOrEqual(1);
        if (open.length === 1) expect(lock?.paymentIntentId).toBe(open[0]);
        // Credits: spent exactly once per waived penalty, never below zero.
        const waived = mine.filter((p) => p.status === 'waived');
        const credits = (await store.getUserBilling(user)).credits;
        expect(credits).toBeGreaterThanOrEqual(0);
        expect(credits).toBe((creditsBefore.get(user) ?? 0) - waived.length);
        const answers = settled.filter((entry) => entry.userId === user);
        expect(answers.reduce((sum, { result }) => sum + result.creditsUsed, 0)).toBe(
          waived.length,
        );
        expect(answers.flatMap(({ result }) => result.waived).sort()).toEqual(
          waived.map((p) => p.penaltyId).sort(),
        );
      }
      // No penalty paid twice: of the succeeded PaymentIntents carrying a penalty, the
      // one it is paid by keeps the money and every other one is an overpayment (to
      // refund); a waived penalty keeps none, an unpaid or pending one got none.
      const carrying = (penaltyId: string) =>
        [...succeeded]
          .filter((id) => gateway.created.get(id)?.penaltyIds.includes(penaltyId))
          .sort();
      const overpayments = [...store.overpayments.values()];
      for (const p of penalties) {
        if (p.paymentId !== null) expect(handed.has(p.paymentId)).toBe(true);
        const paidBy = carrying(p.penaltyId);
        const refunded = overpayments
          .filter((o) => o.penaltyId === p.penaltyId)
          .map((o) => o.paymentIntentId)
          .sort();
        if (p.status === 'paid') {
          expect(paidBy, `succeeded PaymentIntents of paid ${p.penaltyId}`).toContain(p.paymentId);
          expect(refunded, `overpayments of ${p.penaltyId}`).toEqual(
            paidBy.filter((id) => id !== p.paymentId),
          );
        } else {
          if (p.status !== 'pending') expect(p.paymentId).toBeNull();
          expect(refunded, `overpayments of ${p.status} ${p.penaltyId}`).toEqual(
            p.status === 'waived' ? paidBy : [],
          );
          if (p.status !== 'waived') expect(paidBy).toEqual([]);
        }
      }
      // Recipient totals: each paid penalty counted once, amounts per currency.
      expect([...store.recipients.keys()].every((r) => RECIPIENTS.includes(r))).toBe(true);
      for (const recipient of RECIPIENTS) {
        const paid = penalties.filter((p) => p.recipientId === recipient && p.status === 'paid');
        const byCurrency = new Map<string, number>();
        for (const p of paid)
          byCurrency.set(p.currency, (byCurrency.get(p.currency) ?? 0) + p.amount);
        if (byCurrency.size > 1) paidInTwoCurrencies = true;
        const totals = await store.recipientTotals(recipient);
        expect(totals?.penaltiesPaid ?? 0).toBe(paid.length);
        expect(totals?.amounts ?? []).toEqual(
          [...byCurrency]
            .map(([currency, amount]) => ({ currency, amount }))
            .sort((a, b) => a.currency.localeCompare(b.currency)),
        );
      }
    };

    for (const [dayIndex, day] of DAYS.entries()) {
      const nextMidnight = at(day, '23:00:00') + 3_600_000;
      for (const c of s.changes.filter((c) => c.day === dayIndex && !c.beforeAssessment)) {
        await change(c, at(day, '18:00:00'));
      }
      for (const c of s.changes.filter((c) => c.day === dayIndex && c.beforeAssessment)) {
        await change(c, nextMidnight + 5 * 60_000);
      }
      clock.time = nextMidnight + 15 * 60_000;
      const run = s.runs[dayIndex]!;
      if (run.settle && run.overlap) {
        await round(day, run, { assessments: true, during: run.during });
      } else {
        await Promise.all(
          Array.from({ length: run.parallel }, () =>
            assessDate(day, { store, clock, pause: noPause, concurrency: 2 }),
          ),
        );
      }
      await assessDate(day, { store, clock, pause: noPause });
      if (run.settle && !run.overlap) {
        await round(day, run, { assessments: false, during: run.during });
      }
      await deliverAfter(run.after);
      await checkpoint();
      if (run.settle && run.again) {
        clock.time += 10 * 60_000;
        await round(day, run, { assessments: false, during: [] });
        await deliverAfter([]);
        await checkpoint();
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
    if (paidInTwoCurrencies) seen.paidInTwoCurrencies += 1;
    expect(new Map([...store.penalties.values()].map((p) => [p.penaltyId, p.amount]))).toEqual(
      expected,
    );
  });

describe('penalties invariants', () => {
  let passed = false;
  afterAll(() => {
    // The cases the assertions are about came up (checked only when the property held).
    if (passed) {
      for (const [name, count] of Object.entries(seen)) expect(count, name).toBeGreaterThan(0);
    }
  });

  it('hold under repeated and concurrent runs, settlements and reordered payment events', async () => {
    await fc.assert(invariants(), { numRuns: 250 });
    passed = true;
  });
});

/**
 * Regression: found by the property above (about one run in a thousand; kept: seed
 * -1884979475, path "571:71:86:86") and minimised by hand below.
 *
 * Two settles of one user (a double click; equally the hourly sweep and a settle, or
 * two deliveries of a PaymentIntent's failure) find the same abandoned settlement pi_1.
 * The first cancels pi_1, reads its penalty pending under pi_1 and plans it back to
 * unpaid, but commits late. The second releases pi_1 itself, settles anew and hands the
 * user pi_2 with the penalty pending under it. When the store conditioned a transition
 * on the status read alone, the first then put the penalty back to unpaid although it
 * was pending under pi_2, found nothing pending under pi_2, canceled the PaymentIntent
 * the user was just handed and handed out pi_3. The store now conditions on the
 * PaymentIntent read as well, so the late commit is refused and re-planned.
 */
describe('a stale release never puts back a penalty pending under a newer PaymentIntent', () => {
  it('a double click on an abandoned settlement hands out one PaymentIntent', async () => {
    const store = new InMemoryPenaltyStore();
    const gateway = new StripeLikeGateway();
    const clock = fixedClock(at('2026-11-02', '00:15:00'));
    await addHabit(store, 'ben', 'h1', '2026-10-01', { penaltyAmount: 55 });
    store.profiles.set('ben', { tier: 'gold', credits: 0, customerId: null });
    await assessDate('2026-11-01', { store, clock, pause: noPause });
    const penaltyId = 'pen_ben_h1_2026-11-01';
    const abandoned = await settlePenalties('ben', { store, gateway, clock, pause: noPause });
    expect(abandoned.payment?.penaltyIds).toEqual([penaltyId]);
    clock.time += DAY; // the payment sheet was closed: the settlement is abandoned

    // Click A: its first commit (releasing pi_1) waits until click B is done.
    let reachedCommit!: () => void;
    const atCommit = new Promise<void>((resolve) => {
      reachedCommit = resolve;
    });
    let proceed!: () => void;
    const held = new Promise<void>((resolve) => {
      proceed = resolve;
    });
    let holding = true;
    const slowStore = new Proxy(store, {
      get(object, property) {
        if (property === 'commitTransitions') {
          return async (commit: TransitionCommit) => {
            if (holding) {
              holding = false;
              reachedCommit();
              await held;
            }
            return object.commitTransitions(commit);
          };
        }
        const value = Reflect.get(object, property, object);
        return typeof value === 'function' ? value.bind(object) : value;
      },
    });
    const clickA = settlePenalties('ben', {
      store: slowStore,
      gateway,
      clock,
      pause: noPause,
    }).catch((error: unknown) => error);
    await atCommit;
    const clickB = await settlePenalties('ben', { store, gateway, clock, pause: noPause });
    const handedToB = clickB.payment?.paymentIntentId;
    expect(clickB.payment?.penaltyIds).toEqual([penaltyId]);
    proceed();
    const answerToA = await clickA;

    // B's settlement stands: its penalty stays pending under it, its PaymentIntent open,
    // and A is refused while it is pending (offered B's PaymentIntent again).
    expect(store.penalties.get(penaltyId)).toMatchObject({
      status: 'pending',
      paymentId: handedToB,
    });
    expect(gateway.states.get(handedToB as string)).toBe('open');
    expect(answerToA).toBeInstanceOf(PenaltyConflictError);
  });

  it('the property holds on its kept counterexample', async () => {
    await fc.assert(invariants(), {
      seed: -1884979475,
      path: '571:71:86:86',
      endOnFailure: true,
    });
  });
});
