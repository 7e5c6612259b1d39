import { describe, expect, it } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import { settlementIdempotencyKey } from '../../../functions/core/penalties/penalty-ids.ts';
import {
  applyPenaltyPayment,
  markPenaltiesPaid,
  outcomeOfPayment,
} from '../../../functions/core/penalties/penalty-payments.ts';
import {
  PaymentGatewayUnavailableError,
  type Penalty,
} from '../../../functions/core/penalties/ports.ts';
import {
  ABANDONED_SETTLEMENT_AFTER_MS,
  MAX_PAYMENT_AMOUNT,
  planSettlement,
  settlePenalties,
} from '../../../functions/core/penalties/settlement.ts';
import {
  penaltyIdsFromMetadata,
  penaltyIdsMetadata,
  penaltyIdsThatFit,
} from '../../../functions/core/shared/penalty-metadata.ts';
import { addHabit, at, FakeGateway, fixedClock, noPause } from './penalty-fixtures.ts';

const penalty = (date: string, overrides: Partial<Penalty> = {}): Penalty => ({
  penaltyId: `pen_u_h_${date}`,
  userId: 'u',
  habitId: 'h',
  date,
  amount: 100,
  currency: 'usd',
  recipientId: null,
  status: 'unpaid',
  paymentId: null,
  createdAt: 'x',
  updatedAt: 'x',
  ...overrides,
});

describe('planSettlement', () => {
  it('waives the oldest with credits and pays the rest of the oldest remaining currency', () => {
    const plan = planSettlement(
      [
        penalty('2026-11-03'),
        penalty('2026-11-01'),
        penalty('2026-11-02', { currency: 'eur' }),
        penalty('2026-11-04'),
      ],
      1,
    );
    expect(plan.waive.map((p) => p.date)).toEqual(['2026-11-01']);
    expect(plan.pay.map((p) => p.date)).toEqual(['2026-11-02']);
    expect(plan).toMatchObject({ amount: 100, currency: 'eur' });
    expect(planSettlement([penalty('2026-11-01')], 5)).toMatchObject({
      pay: [],
      amount: 0,
      currency: null,
    });
    expect(planSettlement([penalty('2026-11-01'), penalty('2026-11-02')], 0).amount).toBe(200);
  });

  it('pays from the oldest only as much as one PaymentIntent takes', () => {
    const large = ['2026-11-01', '2026-11-02', '2026-11-03'].map((date) =>
      penalty(date, { amount: 40_000_000 }),
    );
    const plan = planSettlement(large, 0);
    expect(plan.pay.map((p) => p.date)).toEqual(['2026-11-01', '2026-11-02']);
    expect(plan.amount).toBe(80_000_000);
    expect(plan.amount).toBeLessThanOrEqual(MAX_PAYMENT_AMOUNT);
  });

  it('pays no more penalties than their ids fit in the metadata: 80 of the longest ids', () => {
    const userId = 'u'.repeat(128);
    const habitId = 'h'.repeat(64);
    const days = Array.from({ length: 90 }, (_, index) =>
      new Date(Date.UTC(2026, 7, 1) + index * 86_400_000).toISOString().slice(0, 10),
    );
    const long = days.map((date) =>
      penalty(date, { userId, habitId, penaltyId: `pen_${userId}_${habitId}_${date}` }),
    );
    expect(long[0]!.penaltyId).toHaveLength(208);
    const plan = planSettlement(long, 0);
    expect(plan.pay).toHaveLength(80);
    expect(plan.pay.map((p) => p.date)).toEqual(days.slice(0, 80));
    expect(plan.amount).toBe(8_000);
    const ids = plan.pay.map((p) => p.penaltyId);
    expect(penaltyIdsFromMetadata(penaltyIdsMetadata(ids))).toEqual(ids);
  });
});

describe('penaltyIdsThatFit', () => {
  it('is the longest head penaltyIdsMetadata can carry, for ids of every length', () => {
    for (const length of [20, 40, 99, 166, 167, 208, 249, 250, 251, 500]) {
      const ids = Array.from({ length: 2000 }, (_, index) => `${index}_`.padEnd(length, 'x'));
      const fit = penaltyIdsThatFit(ids);
      expect(fit).toBeGreaterThan(0);
      expect(fit).toBeLessThan(ids.length);
      const carried = penaltyIdsFromMetadata(penaltyIdsMetadata(ids.slice(0, fit)));
      expect(carried).toEqual(ids.slice(0, fit));
      expect(() => penaltyIdsMetadata(ids.slice(0, fit + 1))).toThrow(RangeError);
    }
    expect(penaltyIdsThatFit(['a', 'b,c', 'd'])).toBe(1);
    expect(penaltyIdsThatFit([])).toBe(0);
  });
});

async function withPenalties(days: string[], credits: number) {
  const store = new InMemoryPenaltyStore();
  const clock = fixedClock(at('2026-11-01'));
  await addHabit(store, 'sam', 'run', '2026-10-01', { recipientId: 'charity' });
  store.profiles.set('sam', { tier: 'silver', credits, customerId: 'cus_sam' });
  for (const day of days) {
    clock.time = at(day, '23:59:00') + 60_000 * 20;
    await assessDate(day, { store, clock, pause: noPause });
  }
  return { store, clock, gateway: new FakeGateway() };
}

describe('settlePenalties', () => {
  it('waives with credits, charges the rest once, locks until the payment ends', async () => {
    const { store, clock, gateway } = await withPenalties(
      ['2026-11-01', '2026-11-02', '2026-11-03'],
      1,
    );
    const result = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    expect(result.waived).toEqual(['pen_sam_run_2026-11-01']);
    expect(result.creditsUsed).toBe(1);
    expect(result.payment).toMatchObject({
      amount: 1000,
      currency: 'usd',
      penaltyIds: ['pen_sam_run_2026-11-02', 'pen_sam_run_2026-11-03'],
      clientSecret: expect.stringContaining('_secret_'),
    });
    expect(gateway.requests[0]).toMatchObject({
      customerId: 'cus_sam',
      idempotencyKey: settlementIdempotencyKey(
        ['pen_sam_run_2026-11-02', 'pen_sam_run_2026-11-03'],
        'cus_sam',
      ),
    });
    // The key follows the ids (any order) and the customer.
    const key = gateway.requests[0]!.idempotencyKey;
    expect(
      settlementIdempotencyKey(['pen_sam_run_2026-11-03', 'pen_sam_run_2026-11-02'], 'cus_sam'),
    ).toBe(key);
    expect(
      settlementIdempotencyKey(['pen_sam_run_2026-11-02', 'pen_sam_run_2026-11-03'], 'cus_new'),
    ).not.toBe(key);
    expect((await store.getUserBilling('sam')).credits).toBe(0);
    expect(await store.getAccount('sam')).toMatchObject({ unpaidCount: 0, unpaidAmount: [] });
    await expect(
      settlePenalties('sam', { store, gateway, clock, pause: noPause }),
    ).rejects.toMatchObject({
      code: 'settlement_pending',
    });

    const paymentIntentId = result.payment?.paymentIntentId as string;
    const ids = result.payment?.penaltyIds as string[];
    const paid = await applyPenaltyPayment(
      { paymentIntentId, penaltyIds: ids, outcome: 'succeeded' },
      { store, clock, pause: noPause },
    );
    const again = await applyPenaltyPayment(
      { paymentIntentId, penaltyIds: ids, outcome: 'succeeded' },
      { store, clock, pause: noPause },
    );
    const stale = await applyPenaltyPayment(
      { paymentIntentId, penaltyIds: ids, outcome: 'failed' },
      { store, clock, pause: noPause },
    );
    expect(paid.changed).toEqual(ids);
    expect(again.changed).toEqual([]);
    expect(stale.changed).toEqual([]);
    expect(await store.recipientTotals('charity')).toEqual({
      recipientId: 'charity',
      penaltiesPaid: 2,
      amounts: [{ currency: 'usd', amount: 1000 }],
    });
    expect((await store.getAccount('sam'))?.pending).toBeNull();
  });

  it('puts the penalties back to unpaid when the payment fails, and the retry reuses the PaymentIntent', async () => {
    const { store, clock, gateway } = await withPenalties(['2026-11-01', '2026-11-02'], 0);
    const first = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    const ids = first.payment?.penaltyIds as string[];
    const failed = await applyPenaltyPayment(
      {
        paymentIntentId: first.payment?.paymentIntentId as string,
        penaltyIds: ids,
        outcome: 'failed',
      },
      { store, clock, pause: noPause },
    );
    expect(failed.changed).toEqual(ids);
    expect(await store.getAccount('sam')).toMatchObject({ unpaidCount: 2, pending: null });
    const second = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    expect(second.payment?.paymentIntentId).toBe(first.payment?.paymentIntentId);
    expect(gateway.intents.size).toBe(1);
  });

  it('takes a settlement pending for an hour as abandoned: cancels it, then settles anew', async () => {
    const { store, clock, gateway } = await withPenalties(['2026-11-01', '2026-11-02'], 0);
    const first = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    const abandoned = first.payment?.paymentIntentId as string;

    clock.time += ABANDONED_SETTLEMENT_AFTER_MS - 1_000;
    await expect(
      settlePenalties('sam', { store, gateway, clock, pause: noPause }),
    ).rejects.toMatchObject({ code: 'settlement_pending' });
    expect(gateway.cancels).toEqual([]);

    clock.time += 2_000;
    const second = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    expect(gateway.cancels).toEqual([abandoned]);
    expect(second.payment?.penaltyIds).toEqual(first.payment?.penaltyIds);
    expect((await store.getAccount('sam'))?.pending).toMatchObject({
      penaltyIds: first.payment?.penaltyIds,
    });
    // Its late `canceled` webhook changes nothing of the new settlement.
    const late = await applyPenaltyPayment(
      {
        paymentIntentId: abandoned,
        penaltyIds: first.payment?.penaltyIds as string[],
        outcome: 'failed',
      },
      { store, clock, pause: noPause },
    );
    expect(second.payment?.paymentIntentId).not.toBe(abandoned);
    expect(late.changed).toEqual([]);
    expect((await store.getAccount('sam'))?.pending?.paymentIntentId).toBe(
      second.payment?.paymentIntentId,
    );
  });

  it('marks an abandoned settlement paid when Stripe says it was paid after all', async () => {
    const { store, clock, gateway } = await withPenalties(['2026-11-01'], 0);
    await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    clock.time += ABANDONED_SETTLEMENT_AFTER_MS + 1;
    gateway.cancelAnswer = 'succeeded';
    const result = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    expect(result).toEqual({ waived: [], creditsUsed: 0, payment: null });
    expect(await store.getAccount('sam')).toMatchObject({ unpaidCount: 0, pending: null });
    expect(await store.recipientTotals('charity')).toMatchObject({ penaltiesPaid: 1 });
    expect(gateway.requests).toHaveLength(1);
  });

  it('keeps the lock while the abandoned payment is still processing', async () => {
    const { store, clock, gateway } = await withPenalties(['2026-11-01'], 0);
    await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    clock.time += ABANDONED_SETTLEMENT_AFTER_MS + 1;
    gateway.cancelAnswer = 'open';
    await expect(
      settlePenalties('sam', { store, gateway, clock, pause: noPause }),
    ).rejects.toMatchObject({ code: 'settlement_pending' });
    expect((await store.getAccount('sam'))?.pending).not.toBeNull();
  });

  it('releases a lock at once when an operator marked every penalty under it paid', async () => {
    const { store, clock, gateway } = await withPenalties(['2026-11-01', '2026-11-02'], 0);
    const first = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    const [older, newer] = (first.payment?.penaltyIds ?? []) as string[];
    await markPenaltiesPaid([older as string], null, { store, clock, pause: noPause });
    // One is still pending under the PaymentIntent: the settlement is still on.
    await expect(
      settlePenalties('sam', { store, gateway, clock, pause: noPause }),
    ).rejects.toMatchObject({ code: 'settlement_pending' });
    expect(gateway.cancels).toEqual([]);

    await markPenaltiesPaid([newer as string], null, { store, clock, pause: noPause });
    // Well within the hour: nothing is pending under it any more, so the lock goes and its
    // PaymentIntent is canceled (the payment sheet can no longer charge for them twice).
    const second = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    expect(second).toEqual({ waived: [], creditsUsed: 0, payment: null });
    expect(gateway.cancels).toEqual([first.payment?.paymentIntentId]);
    expect(await store.getAccount('sam')).toMatchObject({ pending: null, unpaidCount: 0 });
    expect([...store.penalties.values()].map((p) => p.status)).toEqual(['paid', 'paid']);
  });

  it('answers a settle whose response was lost with 409 carrying the same payment, while Stripe can still take it', async () => {
    const { store, clock, gateway } = await withPenalties(['2026-11-01', '2026-11-02'], 0);
    const first = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    const retry = () => settlePenalties('sam', { store, gateway, clock, pause: noPause });
    await expect(retry()).rejects.toMatchObject({
      code: 'settlement_pending',
      details: { payment: first.payment },
    });
    expect(gateway.requests).toHaveLength(1);
    // Paid, or canceled, at Stripe already (its webhook not in yet): nothing to take up.
    for (const state of ['succeeded', 'canceled'] as const) {
      gateway.stateAnswer = state;
      await expect(retry()).rejects.toMatchObject({ code: 'settlement_pending', details: {} });
    }
    // Stripe unreachable: still the 409 naming the PaymentIntent, nothing changed.
    gateway.stateAnswer = 'open';
    gateway.failWith = new PaymentGatewayUnavailableError('down');
    await expect(retry()).rejects.toMatchObject({ code: 'settlement_pending', details: {} });
    gateway.failWith = null;
    // One of its penalties marked paid: its amount no longer matches what is owed.
    await markPenaltiesPaid([first.payment?.penaltyIds[0] as string], null, {
      store,
      clock,
      pause: noPause,
    });
    await expect(retry()).rejects.toMatchObject({ code: 'settlement_pending', details: {} });
    expect(gateway.cancels).toEqual([]);
  });

  it('changes nothing when Stripe is unavailable', async () => {
    const { store, clock, gateway } = await withPenalties(['2026-11-01', '2026-11-02'], 1);
    gateway.failWith = new PaymentGatewayUnavailableError('down', { retryAfterSeconds: 7 });
    const before = structuredClone([...store.penalties.values()]);
    await expect(
      settlePenalties('sam', { store, gateway, clock, pause: noPause }),
    ).rejects.toMatchObject({
      retryAfterSeconds: 7,
    });
    expect([...store.penalties.values()]).toEqual(before);
    expect((await store.getUserBilling('sam')).credits).toBe(1);
    expect((await store.getAccount('sam'))?.pending).toBeNull();
  });

  it('answers nothing to settle, and 404 for an unknown user', async () => {
    const { store, clock, gateway } = await withPenalties([], 3);
    expect(await settlePenalties('sam', { store, gateway, clock })).toEqual({
      waived: [],
      creditsUsed: 0,
      payment: null,
    });
    await expect(settlePenalties('nobody', { store, gateway, clock })).rejects.toMatchObject({
      code: 'user_not_found',
    });
    expect(gateway.requests).toHaveLength(0);
  });
});

describe('markPenaltiesPaid', () => {
  it('says which changed, which were already paid or waived, which are unknown; idempotent', async () => {
    const { store, clock, gateway } = await withPenalties(
      ['2026-11-01', '2026-11-02', '2026-11-03'],
      1,
    );
    await settlePenalties('sam', { store, gateway, clock, pause: noPause });
    const ids = [
      'pen_sam_run_2026-11-01',
      'pen_sam_run_2026-11-02',
      'pen_sam_run_2026-11-09',
      'garbage',
    ];
    const first = await markPenaltiesPaid(ids, 'pi_manual', { store, clock, pause: noPause });
    expect(first).toEqual({
      changed: ['pen_sam_run_2026-11-02'],
      alreadyPaid: ['pen_sam_run_2026-11-01'],
      notFound: ['pen_sam_run_2026-11-09', 'garbage'],
    });
    const second = await markPenaltiesPaid(ids, 'pi_manual', { store, clock, pause: noPause });
    expect(second.changed).toEqual([]);
    expect((await store.recipientTotals('charity'))?.penaltiesPaid).toBe(1);
  });

  it('marks 100 penalties of 100 users, each paid to its own recipient, in transactions of at most 100 items', async () => {
    const store = new InMemoryPenaltyStore();
    const clock = fixedClock(at('2026-11-02'));
    const users = Array.from({ length: 100 }, (_, index) => `user${index}`);
    for (const user of users) {
      await addHabit(store, user, 'run', '2026-10-01', { recipientId: `r-${user}` });
    }
    await assessDate('2026-11-01', { store, clock, pause: noPause });
    const ids = users.map((user) => `pen_${user}_run_2026-11-01`);
    const commitsBefore = store.commits;
    const result = await markPenaltiesPaid(ids, 'pi_manual', { store, clock, pause: noPause });
    expect(result).toEqual({ changed: ids, alreadyPaid: [], notFound: [] });
    // Three items a penalty (itself, its user's summary, its recipient's totals): 4 transactions.
    expect(store.commits - commitsBefore).toBe(4);
    for (const user of users) {
      expect((await store.recipientTotals(`r-${user}`))?.penaltiesPaid).toBe(1);
      expect(await store.getAccount(user)).toMatchObject({ unpaidCount: 0 });
    }
  });
});

describe('outcomeOfPayment', () => {
  it('reads paid from paidAt whatever followed, failed from failed or canceled', () => {
    expect(outcomeOfPayment({ status: 'refunded', paidAt: '2026-01-01T00:00:00Z' })).toBe(
      'succeeded',
    );
    expect(outcomeOfPayment({ status: 'canceled', paidAt: null })).toBe('failed');
    expect(outcomeOfPayment({ status: 'processing', paidAt: null })).toBeNull();
  });
});
