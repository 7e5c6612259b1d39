/**
 * Money owed back: a settlement PaymentIntent that pays penalties already waived or paid
 * by another payment is recorded as overpayments (exactly once, whatever the payment
 * events' duplicates), and the operators' refund run refunds each once, leaves them
 * open while Stripe is down, and goes on past one Stripe refuses.
 */
import { describe, expect, it } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import {
  markPenaltiesPaid,
  type PaymentSnapshot,
  settlePenaltyPayments,
} from '../../../functions/core/penalties/penalty-payments.ts';
import {
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
} from '../../../functions/core/penalties/ports.ts';
import {
  overpaymentRefundKey,
  refundOverpayments,
} from '../../../functions/core/penalties/refund-overpayments.ts';
import { settlePenalties } from '../../../functions/core/penalties/settlement.ts';
import { addHabit, at, FakeGateway, fixedClock, noPause } from './penalty-fixtures.ts';

const DAYS = ['2026-11-01', '2026-11-02', '2026-11-03'];

async function setUp() {
  const store = new InMemoryPenaltyStore();
  const clock = fixedClock(at('2026-11-01'));
  await addHabit(store, 'sam', 'run', '2026-10-01', { recipientId: 'charity' });
  store.profiles.set('sam', { tier: 'silver', credits: 0, customerId: 'cus_sam' });
  for (const day of DAYS) {
    clock.time = at(day, '23:59:00') + 60_000 * 20;
    await assessDate(day, { store, clock, pause: noPause });
  }
  const gateway = new FakeGateway();
  // One settlement: all three pending under one PaymentIntent.
  const settled = await settlePenalties('sam', { store, gateway, clock, pause: noPause });
  const payment = settled.payment!;
  return { store, clock, gateway, payment };
}

/** The payment consumer's step after a batch: the PaymentIntent has succeeded. */
async function deliverSucceeded(
  store: InMemoryPenaltyStore,
  clock: ReturnType<typeof fixedClock>,
  paymentIntentId: string,
  penaltyIds: readonly string[],
) {
  const snapshot: PaymentSnapshot = {
    status: 'succeeded',
    paidAt: new Date(clock.now()).toISOString(),
    purpose: 'penalty',
    penaltyIds,
  };
  const newly: string[] = [];
  const failures = await settlePenaltyPayments([paymentIntentId], {
    store,
    clock,
    pause: noPause,
    currentPayments: async () => new Map([[paymentIntentId, snapshot]]),
    onResult: (_id, _result, owed) => newly.push(...owed.map((o) => o.penaltyId)),
  });
  return Object.assign(failures, { newly });
}

describe('overpaid penalty payments', () => {
  it('records the pending PaymentIntent as an overpayment when an operator marked its penalty paid without naming a payment', async () => {
    const { store, clock, payment } = await setUp();
    const [first] = payment.penaltyIds;
    // Paid in cash; the operator knows no Stripe id. The payment sheet is still open.
    const marked = await markPenaltiesPaid([first!], null, { store, clock, pause: noPause });
    expect(marked.changed).toEqual([first]);
    expect((await store.getPenalties([first!])).get(first!)).toMatchObject({
      status: 'paid',
      paymentId: null,
    });
    // The user then pays the settlement too: that penalty is paid twice, and recorded so.
    const failures = await deliverSucceeded(
      store,
      clock,
      payment.paymentIntentId,
      payment.penaltyIds,
    );
    expect(failures.newly).toEqual([first]);
    expect(await store.listOverpayments({ all: true })).toEqual([
      expect.objectContaining({
        penaltyId: first,
        paymentIntentId: payment.paymentIntentId,
        settledAs: 'paid',
        settledBy: null,
      }),
    ]);
  });

  it('records a penalty paid when an operator had already marked it paid otherwise, once across duplicates', async () => {
    const { store, clock, payment } = await setUp();
    const [first, second] = payment.penaltyIds;
    // Paid by bank transfer, marked by an operator, while the settlement was pending.
    await markPenaltiesPaid([first!], 'bank-transfer-17', { store, clock, pause: noPause });
    // Counted (alarmed) on the first delivery only: later events of the PaymentIntent,
    // its refund's included, find it recorded already.
    const newly: string[][] = [];
    for (let delivery = 0; delivery < 3; delivery++) {
      const failures = await deliverSucceeded(
        store,
        clock,
        payment.paymentIntentId,
        payment.penaltyIds,
      );
      expect(failures.size).toBe(0);
      newly.push(failures.newly);
    }
    expect(newly).toEqual([[first], [], []]);
    const owed = await store.listOverpayments();
    expect(owed).toEqual([
      expect.objectContaining({
        paymentIntentId: payment.paymentIntentId,
        penaltyId: first,
        userId: 'sam',
        amount: 500,
        currency: 'usd',
        settledAs: 'paid',
        settledBy: 'bank-transfer-17',
        refundId: null,
      }),
    ]);
    // The others are paid by this PaymentIntent, and are not owed back.
    expect((await store.getPenalties([second!])).get(second!)).toMatchObject({
      status: 'paid',
      paymentId: payment.paymentIntentId,
    });
  });

  it('records a waived penalty that a PaymentIntent paid as well', async () => {
    const { store, clock } = await setUp();
    const penaltyId = 'pen_sam_run_2026-11-01';
    const penalty = (await store.getPenalties([penaltyId])).get(penaltyId)!;
    store.penalties.set(penaltyId, { ...penalty, status: 'waived', paymentId: null });
    await deliverSucceeded(store, clock, 'pi_late', [penaltyId]);
    expect(await store.listOverpayments()).toEqual([
      expect.objectContaining({ penaltyId, settledAs: 'waived', settledBy: null, amount: 500 }),
    ]);
  });

  it('fails the payment records when the overpayment cannot be recorded, so they are redelivered', async () => {
    const { store, clock, payment } = await setUp();
    await markPenaltiesPaid([payment.penaltyIds[0]!], 'bank-transfer-18', {
      store,
      clock,
      pause: noPause,
    });
    store.recordOverpayments = async () => {
      throw new Error('injected: store unavailable');
    };
    const failures = await deliverSucceeded(
      store,
      clock,
      payment.paymentIntentId,
      payment.penaltyIds,
    );
    expect(failures.get(payment.paymentIntentId)?.message).toContain('injected');
  });
});

describe('refundOverpayments', () => {
  async function owed() {
    const { store, clock, payment } = await setUp();
    await markPenaltiesPaid(payment.penaltyIds.slice(0, 2), 'bank-transfer-19', {
      store,
      clock,
      pause: noPause,
    });
    await deliverSucceeded(store, clock, payment.paymentIntentId, payment.penaltyIds);
    expect(await store.listOverpayments()).toHaveLength(2);
    return { store, clock, payment };
  }

  it('refunds each overpaid penalty once, for its amount, and marks it refunded', async () => {
    const { store, clock, payment } = await owed();
    const gateway = new FakeGateway();
    expect(
      (await refundOverpayments({ store, gateway, clock }, { dryRun: true })).map((o) => o.outcome),
    ).toEqual(['would-refund', 'would-refund']);
    expect(gateway.refunds.size).toBe(0);

    const outcomes = await refundOverpayments({ store, gateway, clock });
    expect(outcomes.map((o) => o.outcome)).toEqual(['refunded', 'refunded']);
    expect([...gateway.refunds.values()]).toEqual([
      expect.objectContaining({ paymentIntentId: payment.paymentIntentId, amount: 500 }),
      expect.objectContaining({ paymentIntentId: payment.paymentIntentId, amount: 500 }),
    ]);
    expect(await store.listOverpayments()).toEqual([]);
    const all = await store.listOverpayments({ all: true });
    expect(all.every((o) => o.refundId?.startsWith('re_fake'))).toBe(true);
    // A second run refunds nothing; an interrupted one, run again, reuses the same keys.
    expect(await refundOverpayments({ store, gateway, clock })).toEqual([]);
    expect(new Set(all.map(overpaymentRefundKey)).size).toBe(2);
    expect(gateway.refunds.size).toBe(2);
  });

  it('leaves them open while Stripe is down, and goes on past one Stripe refuses', async () => {
    const { store, clock } = await owed();
    const gateway = new FakeGateway();
    gateway.failWith = new PaymentGatewayUnavailableError('Stripe is down.');
    const down = await refundOverpayments({ store, gateway, clock });
    expect(down.map((o) => o.outcome)).toEqual(['not-attempted', 'not-attempted']);
    expect(await store.listOverpayments()).toHaveLength(2);

    let calls = 0;
    const refusing = {
      refundPenaltyPayment: async (request: Parameters<FakeGateway['refundPenaltyPayment']>[0]) => {
        calls += 1;
        if (calls === 1) throw new PaymentRejectedError('charge_already_refunded');
        return await new FakeGateway().refundPenaltyPayment(request);
      },
    };
    const mixed = await refundOverpayments({ store, gateway: refusing, clock });
    expect(mixed.map((o) => o.outcome)).toEqual(['refused', 'refunded']);
    expect(mixed[0]).toMatchObject({ error: 'charge_already_refunded' });
    expect(await store.listOverpayments()).toHaveLength(1);
  });
});
