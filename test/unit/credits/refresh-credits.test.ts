/** The refresh rule: the worker's use case over the in-memory store. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../../functions/core/credits/allowances.ts';
import type { RefreshOutcomes } from '../../../functions/core/credits/ports.ts';
import {
  errorMessage,
  RECENT_ERRORS_KEPT,
  refreshCredits,
} from '../../../functions/core/credits/refresh-credits.ts';
import { at, fakes, workFor } from './credit-fixtures.ts';

const period = '2026-12-03';
const now = at('2026-12-03T10:00:00Z');
const clock = { now: () => now };

function setup(users: Parameters<typeof fakes>[0] = []) {
  const { store } = fakes(users);
  const deps = { store, runLog: store, allowances: DEFAULT_CREDIT_ALLOWANCES, clock };
  return { store, deps };
}

describe('refreshCredits', () => {
  it('sets the balance to the allowance and stamps the period, once per period', async () => {
    const { store, deps } = setup();
    store.putProfile({ userId: 'u1', tier: 'gold', balance: 2, period: '2026-12-02' });
    const first = await refreshCredits([workFor('u1', 'gold', period)], deps);
    expect(first.results.map((r) => r.result)).toEqual(['refreshed']);
    expect(await store.getAccount('u1')).toMatchObject({
      balance: 10,
      allowance: 10,
      period,
      refreshedAt: now,
    });

    // Credits spent, then the same work again (redelivered, twice in one batch): nothing more.
    store.spend('u1', 7);
    const again = await refreshCredits(
      [workFor('u1', 'gold', period), workFor('u1', 'gold', period)],
      deps,
    );
    expect(again.results.map((r) => r.result)).toEqual(['already-refreshed', 'already-refreshed']);
    expect((await store.getAccount('u1'))?.balance).toBe(3);
    expect(store.refreshCount('u1', period)).toBe(1);
    expect(await store.readCounters(period)).toMatchObject({ refreshed: 1, skipped: 2, failed: 0 });

    // The next day: refreshed again; unused credits do not roll over.
    await refreshCredits([workFor('u1', 'gold', '2026-12-04')], deps);
    expect(await store.getAccount('u1')).toMatchObject({ balance: 10, period: '2026-12-04' });
  });

  it('refreshes a user at most once when the same work runs concurrently', async () => {
    const { store, deps } = setup([{ userId: 'u1', tier: 'bronze' }]);
    const works = Array.from({ length: 10 }, () => workFor('u1', 'bronze', period));
    const runs = await Promise.all([refreshCredits(works, deps), refreshCredits(works, deps)]);
    const refreshed = runs.flatMap((r) => r.results).filter((r) => r.result === 'refreshed');
    expect(refreshed).toHaveLength(1);
    expect(store.refreshCount('u1', period)).toBe(1);
  });

  it("grants the allowance of the tier the user has now, not the planner's", async () => {
    const { store, deps } = setup([{ userId: 'u2', tier: 'gold' }]);
    const result = await refreshCredits([workFor('u2', 'free', period)], deps);
    expect(result.results[0]?.result).toBe('refreshed');
    // One conditional write refused, one read, one write.
    expect(store.calls.get('refresh')).toBe(2);
    expect(store.calls.get('getAccount')).toBe(1);
    expect(await store.getAccount('u2')).toMatchObject({
      tier: 'gold',
      balance: 10,
      allowance: 10,
    });
  });

  it('uses the configured allowances', async () => {
    const { store, deps } = setup([{ userId: 'u3', tier: 'silver' }]);
    await refreshCredits([workFor('u3', 'silver', period)], {
      ...deps,
      allowances: { ...DEFAULT_CREDIT_ALLOWANCES, silver: 42 },
    });
    expect((await store.getAccount('u3'))?.balance).toBe(42);
  });

  it('fails a user whose tier changes again during the retry, with a clear error', async () => {
    const { store, deps } = setup([{ userId: 'u4', tier: 'free' }]);
    const tiers = ['bronze', 'silver'] as const;
    let changes = 0;
    // A subscription event lands just before each write.
    store.fault = (operation, userId) => {
      if (operation === 'refresh' && userId === 'u4') store.setTier('u4', tiers[changes++ % 2]!);
    };
    const result = await refreshCredits([workFor('u4', 'free', period)], deps);
    expect(result.results[0]).toMatchObject({
      result: 'failed',
      error: expect.stringMatching(/^tier-changed: /),
    });
    expect(result.outcomes).toMatchObject({ refreshed: 0, skipped: 0, failed: 1 });
    expect(store.refreshCount('u4', period)).toBe(0);
    // Redelivered once the tier settles: refreshed with the tier the user has then.
    store.fault = undefined;
    await refreshCredits([workFor('u4', 'free', period)], deps);
    expect(await store.getAccount('u4')).toMatchObject({ tier: 'silver', balance: 5 });
  });

  it('skips a user deleted since planning, and one refreshed while its tier changed', async () => {
    const { store, deps } = setup([
      { userId: 'gone', tier: 'free' },
      { userId: 'raced', tier: 'free' },
    ]);
    store.fault = (operation, userId) => {
      if (operation === 'refresh' && userId === 'gone') store.removeProfile('gone');
      if (operation === 'getAccount' && userId === 'raced') {
        // Another worker refreshed it (gold) between the refused write and this read.
        store.putProfile({ userId: 'raced', tier: 'gold', period });
      }
    };
    store.setTier('raced', 'gold');
    const result = await refreshCredits(
      [
        workFor('gone', 'free', period),
        workFor('raced', 'free', period),
        workFor('nobody', 'free', period),
      ],
      deps,
    );
    expect(result.results.map((r) => r.result)).toEqual([
      'no-profile',
      'already-refreshed',
      'no-profile',
    ]);
    expect(result.outcomes).toMatchObject({ refreshed: 0, skipped: 3, failed: 0 });
  });

  it('fails only the user whose write throws, with the message and no stack', async () => {
    const { store, deps } = setup([
      { userId: 'ok', tier: 'free' },
      { userId: 'broken', tier: 'free' },
    ]);
    store.fault = (operation, userId) => {
      if (operation === 'refresh' && userId === 'broken') {
        const error = new Error('Rate of requests exceeds the allowed throughput.');
        error.name = 'ThrottlingException';
        throw error;
      }
    };
    const result = await refreshCredits(
      [workFor('ok', 'free', period), workFor('broken', 'free', period)],
      deps,
    );
    expect(result.results.map((r) => r.result)).toEqual(['refreshed', 'failed']);
    const error = 'ThrottlingException: Rate of requests exceeds the allowed throughput.';
    expect(result.results[1]?.error).toBe(error);
    expect(result.outcomes.errors).toEqual([
      { userId: 'broken', error, at: '2026-12-03T10:00:00.000Z' },
    ]);
    expect((await store.readCounters(period))?.recentErrors).toEqual(result.outcomes.errors);
  });

  it('counts per period with one run-log write per period, and sums the refresh delay', async () => {
    const { store, deps } = setup(['a', 'b', 'c', 'd']);
    const recorded: { period: string; outcomes: RefreshOutcomes }[] = [];
    const runLog = {
      recordOutcomes: async (p: string, outcomes: RefreshOutcomes) => {
        recorded.push({ period: p, outcomes });
        await store.recordOutcomes(p, outcomes);
      },
    };
    const result = await refreshCredits(
      [
        workFor('a', 'silver', '2026-12-02', now - 60_000),
        workFor('b', 'silver', period, now - 1_000),
        workFor('c', 'silver', period, now - 2_000),
        workFor('c', 'silver', period, now - 2_000),
        workFor('d', 'silver', '2026-12-02', now - 500),
      ],
      { ...deps, runLog },
    );
    expect(recorded.map((r) => r.period).sort()).toEqual(['2026-12-02', period]);
    expect(recorded.find((r) => r.period === period)?.outcomes).toEqual({
      refreshed: 2,
      skipped: 1,
      failed: 0,
      totalMs: 3_000,
      errors: [],
    });
    expect(recorded.find((r) => r.period === '2026-12-02')?.outcomes.totalMs).toBe(60_500);
    expect(result.outcomes).toEqual({
      refreshed: 4,
      skipped: 1,
      failed: 0,
      totalMs: 63_500,
      errors: [],
    });
  });

  it('records nothing for an empty batch', async () => {
    const { store, deps } = setup();
    const result = await refreshCredits([], deps);
    expect(result).toEqual({
      results: [],
      outcomes: { refreshed: 0, skipped: 0, failed: 0, totalMs: 0, errors: [] },
    });
    expect(store.calls.get('recordOutcomes')).toBeUndefined();
  });

  it('keeps the newest 20 errors of a batch and of the period', async () => {
    const users = Array.from({ length: 30 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    const { store, deps } = setup(users);
    store.fault = (operation, userId) => {
      if (operation === 'refresh') throw new Error(`boom ${userId}`);
    };
    const result = await refreshCredits(
      users.map((u) => workFor(u, 'silver', period)),
      deps,
    );
    expect(result.outcomes.failed).toBe(30);
    expect(result.outcomes.errors).toHaveLength(RECENT_ERRORS_KEPT);
    expect(result.outcomes.errors.map((e) => e.userId)).toEqual(users.slice(10));
    await refreshCredits([workFor('f00', 'silver', period)], deps);
    const counters = await store.readCounters(period);
    expect(counters?.failed).toBe(31);
    // Newest first: the last batch's error, then the first batch's newest 19.
    expect(counters?.recentErrors.map((e) => e.userId)).toEqual([
      'f00',
      ...users.slice(11).reverse(),
    ]);
  });

  it('throws when the run log cannot record, after trying every period', async () => {
    const { store, deps } = setup(['a', 'b']);
    const periods: string[] = [];
    const runLog = {
      recordOutcomes: async (p: string) => {
        periods.push(p);
        if (p === period) throw new Error('run log down');
      },
    };
    await expect(
      refreshCredits([workFor('a', 'silver', period), workFor('b', 'silver', '2026-12-02')], {
        ...deps,
        runLog,
      }),
    ).rejects.toThrow('run log down');
    expect(periods.sort()).toEqual(['2026-12-02', period]);
    // The writes stand: a redelivery skips them.
    expect(store.refreshCount('a', period)).toBe(1);
  });
});

describe('refreshCredits: counts users once across deliveries', () => {
  const first = { redelivered: false, final: false };
  const retry = { redelivered: true, final: false };
  const last = { redelivered: true, final: true };

  it('counts a failure only on the final delivery, with its error', async () => {
    const { store, deps } = setup(['ok', 'broken']);
    store.fault = (operation, userId) => {
      if (operation === 'refresh' && userId === 'broken') throw new Error('boom');
    };
    const works = [workFor('ok', 'silver', period), workFor('broken', 'silver', period)];
    const early = await refreshCredits(works, deps, [first, first]);
    // The failure is still reported per item: the handler fails its message on it.
    expect(early.results.map((r) => r.result)).toEqual(['refreshed', 'failed']);
    expect(early.outcomes).toMatchObject({ refreshed: 1, skipped: 0, failed: 0, errors: [] });
    const again = await refreshCredits(works, deps, [retry, retry]);
    expect(again.outcomes).toMatchObject({ refreshed: 0, skipped: 0, failed: 0 });
    const final = await refreshCredits(works, deps, [last, last]);
    expect(final.outcomes).toMatchObject({ refreshed: 0, skipped: 0, failed: 1 });
    expect(await store.readCounters(period)).toMatchObject({
      refreshed: 1,
      skipped: 0,
      failed: 1,
      recentErrors: [{ userId: 'broken', error: 'boom' }],
    });
  });

  it('counts a refresh on a redelivery, and skips only on a first delivery', async () => {
    const { store, deps } = setup(['a', 'b']);
    store.putProfile({ userId: 'done', tier: 'silver', period });
    const works = [
      workFor('a', 'silver', period),
      workFor('done', 'silver', period),
      workFor('nobody', 'silver', period),
    ];
    const redelivered = await refreshCredits(works, deps, [retry, retry, retry]);
    expect(redelivered.results.map((r) => r.result)).toEqual([
      'refreshed',
      'already-refreshed',
      'no-profile',
    ]);
    expect(redelivered.outcomes).toMatchObject({ refreshed: 1, skipped: 0, failed: 0 });
    const firstTime = await refreshCredits([workFor('b', 'silver', period), ...works], deps, [
      first,
      first,
      first,
      first,
    ]);
    expect(firstTime.outcomes).toMatchObject({ refreshed: 1, skipped: 3, failed: 0 });
  });

  it('writes nothing to the run log when a delivery adds nothing', async () => {
    const { store, deps } = setup(['a']);
    store.putProfile({ userId: 'a', tier: 'silver', period });
    await refreshCredits([workFor('a', 'silver', period)], deps, [retry]);
    expect(store.calls.get('recordOutcomes')).toBeUndefined();
  });
});

describe('errorMessage', () => {
  it('names the error, never a stack, and bounds the length', () => {
    expect(errorMessage(new Error('plain'))).toBe('plain');
    const typed = new TypeError('bad');
    expect(errorMessage(typed)).toBe('TypeError: bad');
    expect(errorMessage('a string')).toBe('a string');
    expect(errorMessage(new Error('x'.repeat(2_000)))).toHaveLength(500);
    expect(errorMessage(new Error('at line'))).not.toContain('\n    at ');
  });
});
