/** The stats route's figures and a user's credits view. */
import { describe, expect, it } from 'vitest';
import {
  type CreditCounters,
  creditAccountView,
  creditStats,
} from '../../../functions/core/credits/credit-stats.ts';
import type { CreditAccount } from '../../../functions/core/credits/ports.ts';
import { NEVER_REFRESHED } from '../../../functions/core/credits/refresh-slot.ts';
import { at } from './credit-fixtures.ts';

const now = at('2026-12-03T10:02:00Z');
const slots = (count: number) => Array.from({ length: count }, (_, i) => i);

const counters = (overrides: Partial<NonNullable<CreditCounters>> = {}): CreditCounters => ({
  planned: 10,
  refreshed: 8,
  skipped: 1,
  failed: 2,
  totalMs: 800,
  lastRunAt: at('2026-12-03T10:00:00Z'),
  recentErrors: [],
  ...overrides,
});

describe('creditStats', () => {
  it('derives the rate, the average, the runs and the slots behind from the counters', () => {
    const recentErrors = [
      { userId: 'u1', error: 'ThrottlingException: slow down', at: '2026-12-03T09:00:00.000Z' },
    ];
    expect(creditStats('2026-12-03', counters({ recentErrors }), now, slots(100))).toEqual({
      date: '2026-12-03',
      planned: 10,
      refreshed: 8,
      skipped: 1,
      failed: 2,
      successRate: 0.8,
      averageMs: 100,
      lastRunAt: '2026-12-03T10:00:00.000Z',
      nextRunAt: '2026-12-03T10:05:00.000Z',
      // Slots 0-120 are due by 10:02 (121 slots); 0-99 are planned.
      slotsBehind: 21,
      recentErrors,
    });
  });

  it('answers a day that never ran: rate 1, average 0, no last run', () => {
    expect(creditStats('2026-12-03', null, now)).toEqual({
      date: '2026-12-03',
      planned: 0,
      refreshed: 0,
      skipped: 0,
      failed: 0,
      successRate: 1,
      averageMs: 0,
      lastRunAt: null,
      nextRunAt: '2026-12-03T10:05:00.000Z',
      slotsBehind: 121,
      recentErrors: [],
    });
    expect(creditStats('2026-12-03', counters({ refreshed: 0, failed: 0 }), now)).toMatchObject({
      successRate: 1,
      averageMs: 0,
    });
    expect(creditStats('2026-12-03', counters({ refreshed: 0, failed: 3 }), now).successRate).toBe(
      0,
    );
  });

  it('rounds the average to whole milliseconds', () => {
    expect(
      creditStats('2026-12-03', counters({ refreshed: 3, totalMs: 1_000 }), now).averageMs,
    ).toBe(333);
  });

  it('counts slots behind from the planned prefix only, never below 0', () => {
    // Slot 50 planned out of order does not count; 0-9 do.
    expect(creditStats('2026-12-03', null, now, [...slots(10), 50]).slotsBehind).toBe(111);
    // An operator planned the whole day ahead: nothing behind.
    expect(creditStats('2026-12-03', null, now, slots(288)).slotsBehind).toBe(0);
    // At 00:00 slot 0 is due.
    expect(creditStats('2026-12-03', null, at('2026-12-03T00:00:00Z')).slotsBehind).toBe(1);
    expect(creditStats('2026-12-03', null, at('2026-12-03T23:59:59.999Z')).slotsBehind).toBe(288);
  });

  it('a past day: all 288 slots were due, no next run; a future day: nothing due', () => {
    expect(creditStats('2026-12-02', counters(), now, slots(280))).toMatchObject({
      slotsBehind: 8,
      nextRunAt: null,
      lastRunAt: '2026-12-03T10:00:00.000Z',
    });
    expect(creditStats('2026-12-01', null, now)).toMatchObject({
      slotsBehind: 288,
      nextRunAt: null,
    });
    expect(creditStats('2026-12-04', null, now)).toMatchObject({ slotsBehind: 0, nextRunAt: null });
  });

  it('the next run is the start of the next slot, strictly after now', () => {
    const stats = (iso: string) => creditStats(iso.slice(0, 10), null, at(iso)).nextRunAt;
    expect(stats('2026-12-03T10:05:00.000Z')).toBe('2026-12-03T10:10:00.000Z');
    expect(stats('2026-12-03T10:09:59.999Z')).toBe('2026-12-03T10:10:00.000Z');
    expect(stats('2026-12-03T23:57:00.000Z')).toBe('2026-12-04T00:00:00.000Z');
  });
});

describe('creditAccountView', () => {
  const account: CreditAccount = {
    userId: 'alice',
    tier: 'silver',
    balance: 4,
    allowance: 5,
    period: '2026-12-02',
    // Slot 238 starts at 19:50.
    refreshSlot: 238,
    refreshedAt: at('2026-12-02T19:50:03Z'),
  };

  it('answers the contract fields; the next refresh is today when the slot is still ahead', () => {
    expect(creditAccountView(account, now)).toEqual({
      userId: 'alice',
      balance: 4,
      allowance: 5,
      tier: 'silver',
      period: '2026-12-02',
      refreshSlot: 238,
      nextRefreshAt: '2026-12-03T19:50:00.000Z',
    });
    // At the slot's very start, it is still today's.
    expect(creditAccountView(account, at('2026-12-03T19:50:00Z')).nextRefreshAt).toBe(
      '2026-12-03T19:50:00.000Z',
    );
  });

  it("is tomorrow's slot once refreshed today, or once the slot has passed", () => {
    expect(creditAccountView({ ...account, period: '2026-12-03' }, now).nextRefreshAt).toBe(
      '2026-12-04T19:50:00.000Z',
    );
    expect(creditAccountView(account, at('2026-12-03T19:50:00.001Z')).nextRefreshAt).toBe(
      '2026-12-04T19:50:00.000Z',
    );
    // Slot 0 (00:00): tomorrow's midnight, whatever the period.
    expect(creditAccountView({ ...account, refreshSlot: 0 }, now).nextRefreshAt).toBe(
      '2026-12-04T00:00:00.000Z',
    );
  });

  it('a user never refreshed: period null, the next slot start', () => {
    const fresh = {
      ...account,
      balance: 0,
      allowance: 0,
      period: NEVER_REFRESHED,
      refreshedAt: null,
    };
    expect(creditAccountView(fresh, now)).toMatchObject({
      period: null,
      balance: 0,
      allowance: 0,
      nextRefreshAt: '2026-12-03T19:50:00.000Z',
    });
    expect(creditAccountView({ ...fresh, refreshSlot: 1 }, now).nextRefreshAt).toBe(
      '2026-12-04T00:05:00.000Z',
    );
  });
});
