/**
 * The hourly sweep of abandoned settlements (core/penalties/settlement-sweep.ts) on the
 * in-memory store and the fake gateway: what it releases, what it leaves alone, and how
 * it stops.
 */
import { describe, expect, it, vi } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import { applyPenaltyPayment } from '../../../functions/core/penalties/penalty-payments.ts';
import {
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
} from '../../../functions/core/penalties/ports.ts';
import {
  ABANDONED_SETTLEMENT_AFTER_MS,
  releaseAbandonedSettlement,
  settlePenalties,
} from '../../../functions/core/penalties/settlement.ts';
import {
  SWEEP_MAX_USERS,
  sweepAbandonedSettlements,
} from '../../../functions/core/penalties/settlement-sweep.ts';
import { addHabit, at, FakeGateway, fixedClock, noPause } from './penalty-fixtures.ts';

const HOUR = ABANDONED_SETTLEMENT_AFTER_MS;
const MINUTE = 60_000;

/**
 * Each user misses `run` (5.00 USD to `charity`) on two days, then settles them, a
 * minute after the user before: one PaymentIntent and one lock each, the first user's
 * the oldest.
 */
async function world(users: string[]) {
  const store = new InMemoryPenaltyStore();
  const clock = fixedClock(at('2026-11-01'));
  for (const user of users) {
    await addHabit(store, user, 'run', '2026-10-01', { recipientId: 'charity' });
  }
  for (const day of ['2026-11-01', '2026-11-02']) {
    clock.time = at(day, '23:59:00') + 20 * MINUTE;
    await assessDate(day, { store, clock, pause: noPause });
  }
  const gateway = new FakeGateway();
  const payments = new Map<string, { paymentIntentId: string; penaltyIds: string[] }>();
  for (const user of users) {
    clock.time += MINUTE;
    const { payment } = await settlePenalties(user, { store, gateway, clock, pause: noPause });
    if (!payment) throw new Error(`${user} settled nothing`);
    payments.set(user, payment);
  }
  const lastLock = clock.time;
  const deps = { store, gateway, clock, pause: noPause };
  const intentOf = (user: string) => payments.get(user)?.paymentIntentId as string;
  return { store, clock, gateway, payments, intentOf, lastLock, deps };
}

const counts = (overrides: Partial<Record<string, unknown>> = {}) => ({
  released: 0,
  paid: 0,
  stillOpen: 0,
  failed: 0,
  skipped: 0,
  penaltiesPaid: 0,
  stoppedBy: null,
  errors: [],
  ...overrides,
});

describe('sweepAbandonedSettlements', () => {
  it('releases a settlement abandoned for an hour back to unpaid, and the summary counts its penalties again', async () => {
    const { store, clock, gateway, payments, intentOf, deps } = await world(['sam']);
    expect(await store.getAccount('sam')).toMatchObject({ unpaidCount: 0, unpaidAmount: [] });
    clock.time += HOUR;

    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ released: 1 }));
    expect(gateway.cancels).toEqual([intentOf('sam')]);
    expect(await store.getAccount('sam')).toMatchObject({
      unpaidCount: 2,
      unpaidAmount: [{ currency: 'usd', amount: 1000 }],
      pending: null,
    });
    const penalties = await store.getPenalties(payments.get('sam')?.penaltyIds ?? []);
    expect([...penalties.values()].map((p) => [p.status, p.paymentId])).toEqual([
      ['unpaid', null],
      ['unpaid', null],
    ]);
    expect(await store.abandonedSettlements(new Date(clock.time + 1).toISOString(), 10)).toEqual(
      [],
    );
    // Settled again: a new PaymentIntent, and the late `canceled` webhook of the old one changes nothing.
    const again = await settlePenalties('sam', { ...deps });
    expect(again.payment?.paymentIntentId).not.toBe(intentOf('sam'));
    const late = await applyPenaltyPayment(
      {
        paymentIntentId: intentOf('sam'),
        penaltyIds: again.payment?.penaltyIds ?? [],
        outcome: 'failed',
      },
      deps,
    );
    expect(late.changed).toEqual([]);
    expect((await store.getAccount('sam'))?.pending?.paymentIntentId).toBe(
      again.payment?.paymentIntentId,
    );
  });

  it('marks the penalties paid when Stripe says the abandoned PaymentIntent succeeded, and the recipient totals count them once', async () => {
    const { store, clock, gateway, payments, intentOf, deps } = await world(['sam']);
    clock.time += HOUR + MINUTE;
    gateway.cancelAnswer = 'succeeded';

    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ paid: 1, penaltiesPaid: 2 }));
    // Its late `succeeded` webhook and a second run change nothing more.
    const late = await applyPenaltyPayment(
      {
        paymentIntentId: intentOf('sam'),
        penaltyIds: payments.get('sam')?.penaltyIds ?? [],
        outcome: 'succeeded',
      },
      deps,
    );
    expect(late).toEqual({ changed: [], overpaid: [] });
    expect(await sweepAbandonedSettlements(deps)).toEqual(counts());
    expect(await store.recipientTotals('charity')).toEqual({
      recipientId: 'charity',
      penaltiesPaid: 2,
      amounts: [{ currency: 'usd', amount: 1000 }],
    });
    expect(await store.getAccount('sam')).toMatchObject({ unpaidCount: 0, pending: null });
  });

  it('leaves a settlement whose PaymentIntent is still processing as it is, and tries it again next run', async () => {
    const { store, clock, gateway, deps } = await world(['sam']);
    clock.time += 2 * HOUR;
    gateway.cancelAnswer = 'open';
    const before = structuredClone([...store.penalties.values()]);
    const lock = (await store.getAccount('sam'))?.pending;

    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ stillOpen: 1 }));
    expect([...store.penalties.values()]).toEqual(before);
    expect((await store.getAccount('sam'))?.pending).toEqual(lock);
    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ stillOpen: 1 }));
    expect(gateway.cancels).toHaveLength(2);
  });

  it('leaves a settlement younger than an hour alone without calling Stripe; at an hour it is released', async () => {
    const { store, clock, gateway, deps } = await world(['sam']);
    const lock = (await store.getAccount('sam'))?.pending;
    clock.time += HOUR - 1;

    expect(await sweepAbandonedSettlements(deps)).toEqual(counts());
    expect(gateway.cancels).toEqual([]);
    expect((await store.getAccount('sam'))?.pending).toEqual(lock);

    clock.time += 1;
    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ released: 1 }));
  });

  it('stops when Stripe is unavailable: the user released before stays released, the rest are unchanged, the error is reported', async () => {
    const { store, clock, gateway, intentOf, deps } = await world(['ann', 'bob', 'cat']);
    clock.time += HOUR + 10 * MINUTE;
    const down = new PaymentGatewayUnavailableError('Stripe is unavailable', {
      retryAfterSeconds: 30,
    });
    const cancel = gateway.cancelPenaltyPayment.bind(gateway);
    // Stripe goes down after the first cancel.
    vi.spyOn(gateway, 'cancelPenaltyPayment').mockImplementation(async (id) => {
      if (gateway.cancels.length >= 1) gateway.failWith = down;
      return cancel(id);
    });
    const locks = async () =>
      Object.fromEntries(
        await Promise.all(
          ['bob', 'cat'].map(async (user) => [user, (await store.getAccount(user))?.pending]),
        ),
      );
    const lockedBefore = await locks();
    const pendingBefore = structuredClone(
      [...store.penalties.values()].filter((p) => p.userId !== 'ann'),
    );

    const result = await sweepAbandonedSettlements(deps);
    expect(result).toEqual(
      counts({
        released: 1,
        failed: 1,
        stoppedBy: 'stripe-unavailable',
        errors: [{ userId: 'bob', error: down }],
      }),
    );
    // Oldest first; after the failure nobody else is tried.
    expect(gateway.cancels).toEqual([intentOf('ann'), intentOf('bob')]);
    expect(await store.getAccount('ann')).toMatchObject({ unpaidCount: 2, pending: null });
    expect(await locks()).toEqual(lockedBefore);
    expect([...store.penalties.values()].filter((p) => p.userId !== 'ann')).toEqual(pendingBefore);

    // Stripe back: the next run releases the rest.
    gateway.failWith = null;
    vi.mocked(gateway.cancelPenaltyPayment).mockRestore();
    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ released: 2 }));
  });

  it('goes on past a user whose cancel Stripe refuses, and reports that user', async () => {
    const { store, clock, gateway, intentOf, deps } = await world(['ann', 'bob', 'cat']);
    clock.time += HOUR + 10 * MINUTE;
    const refused = new PaymentRejectedError('resource_missing');
    const cancel = gateway.cancelPenaltyPayment.bind(gateway);
    vi.spyOn(gateway, 'cancelPenaltyPayment').mockImplementation(async (id) => {
      if (id === intentOf('bob')) throw refused;
      return cancel(id);
    });

    expect(await sweepAbandonedSettlements(deps)).toEqual(
      counts({ released: 2, failed: 1, errors: [{ userId: 'bob', error: refused }] }),
    );
    expect((await store.getAccount('bob'))?.pending).not.toBeNull();
    expect((await store.getAccount('cat'))?.pending).toBeNull();
  });

  it('skips a listed user whose lock is gone or newer when re-read (the index lags the account)', async () => {
    const { store, clock, gateway, payments, intentOf, deps } = await world(['sam']);
    clock.time += HOUR + MINUTE;
    // The webhook released the lock and the user settled again, but the index still says old.
    await applyPenaltyPayment(
      {
        paymentIntentId: intentOf('sam'),
        penaltyIds: payments.get('sam')?.penaltyIds ?? [],
        outcome: 'failed',
      },
      deps,
    );
    await settlePenalties('sam', deps);
    const fresh = (await store.getAccount('sam'))?.pending;
    vi.spyOn(store, 'abandonedSettlements').mockResolvedValue(['sam', 'nobody']);

    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ skipped: 2 }));
    expect(gateway.cancels).toEqual([]);
    expect((await store.getAccount('sam'))?.pending).toEqual(fresh);
  });

  it('takes at most maxUsers users a run, oldest lock first (500 by default)', async () => {
    const { store, clock, deps } = await world(['ann', 'bob', 'cat']);
    clock.time += HOUR + 10 * MINUTE;
    const list = vi.spyOn(store, 'abandonedSettlements');

    expect(await sweepAbandonedSettlements({ ...deps, maxUsers: 2 })).toEqual(
      counts({ released: 2 }),
    );
    expect(list).toHaveBeenLastCalledWith(expect.any(String), 2);
    const pending = async (user: string) => (await store.getAccount(user))?.pending ?? null;
    expect(await pending('ann')).toBeNull();
    expect(await pending('bob')).toBeNull();
    expect(await pending('cat')).not.toBeNull();

    expect(await sweepAbandonedSettlements(deps)).toEqual(counts({ released: 1 }));
    expect(list).toHaveBeenLastCalledWith(expect.any(String), SWEEP_MAX_USERS);
    expect(SWEEP_MAX_USERS).toBe(500);
  });

  it('stops taking users when told to, leaving the rest for the next run', async () => {
    const { store, clock, gateway, intentOf, deps } = await world(['ann', 'bob', 'cat']);
    clock.time += HOUR + 10 * MINUTE;
    let asked = 0;
    const result = await sweepAbandonedSettlements({ ...deps, shouldStop: () => asked++ >= 1 });
    expect(result).toEqual(counts({ released: 1, stoppedBy: 'time' }));
    expect(gateway.cancels).toEqual([intentOf('ann')]);
    expect((await store.getAccount('bob'))?.pending).not.toBeNull();
  });
});

describe('releaseAbandonedSettlement', () => {
  it('is what settle releases through too: open changes nothing, canceled puts the penalties back', async () => {
    const { store, clock, gateway, payments, deps } = await world(['sam']);
    clock.time += HOUR;
    const lock = (await store.getAccount('sam'))?.pending;
    if (!lock) throw new Error('no lock');

    gateway.cancelAnswer = 'open';
    expect(await releaseAbandonedSettlement(lock, deps)).toEqual({ state: 'open', changed: [] });
    expect((await store.getAccount('sam'))?.pending).toEqual(lock);
    // The user's settle meets the same answer: still pending.
    await expect(settlePenalties('sam', deps)).rejects.toMatchObject({
      code: 'settlement_pending',
    });

    gateway.cancelAnswer = 'canceled';
    expect(await releaseAbandonedSettlement(lock, deps)).toEqual({
      state: 'canceled',
      changed: payments.get('sam')?.penaltyIds,
    });
    expect(await store.getAccount('sam')).toMatchObject({ unpaidCount: 2, pending: null });
  });
});
