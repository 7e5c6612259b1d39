/** Refresh slots: a stable hash of the user id over 288 five-minute slots of the UTC day. */
import { describe, expect, it } from 'vitest';
import {
  NEVER_REFRESHED,
  periodAt,
  refreshSlotOf,
  SLOT_MINUTES,
  SLOTS_PER_DAY,
  slotAt,
  slotStart,
} from '../../../functions/core/credits/refresh-slot.ts';
import { at } from './credit-fixtures.ts';

describe('refreshSlotOf', () => {
  it('is stable across releases', () => {
    // Pinned once from the implementation (SHA-256, first 48 bits, mod 288). The slot is
    // stored on every profile and indexed: changing the hash moves every user to another
    // slot (a day refreshed twice or skipped, and a full backfill). Do not update these.
    expect(refreshSlotOf('demo-user')).toBe(271);
    expect(refreshSlotOf('user-1')).toBe(156);
    expect(refreshSlotOf('alice')).toBe(238);
    expect(refreshSlotOf('bob@example.com')).toBe(80);
    expect(refreshSlotOf('u_0000000001')).toBe(284);
  });

  it('is a whole slot of the day for any id, the same every call', () => {
    for (const id of ['', ' ', 'é', '🙂', 'x'.repeat(2_000), 'USER#1']) {
      const slot = refreshSlotOf(id);
      expect(Number.isInteger(slot) && slot >= 0 && slot < SLOTS_PER_DAY).toBe(true);
      expect(refreshSlotOf(id)).toBe(slot);
    }
  });

  it('spreads users evenly over the 288 slots', () => {
    const counts = new Array<number>(SLOTS_PER_DAY).fill(0);
    const users = 200_000;
    for (let i = 0; i < users; i++) counts[refreshSlotOf(`user-${i}`)]! += 1;
    const mean = users / SLOTS_PER_DAY;
    // About 694 users a slot, binomial spread about 26: 1.2x the mean is beyond 5 sigma.
    expect(Math.max(...counts) / mean).toBeLessThan(1.2);
    expect(Math.min(...counts) / mean).toBeGreaterThan(0.8);
  });
});

describe('slotAt, periodAt, slotStart', () => {
  it('has 288 slots of 5 minutes', () => {
    expect(SLOTS_PER_DAY).toBe(288);
    expect(SLOT_MINUTES).toBe(5);
  });

  it('midnight opens slot 0 of the new day', () => {
    const midnight = at('2026-12-03T00:00:00.000Z');
    expect(slotAt(midnight)).toBe(0);
    expect(periodAt(midnight)).toBe('2026-12-03');
    expect(slotStart('2026-12-03', 0)).toBe(midnight);
    // One millisecond before is the previous day's last slot.
    expect(slotAt(midnight - 1)).toBe(287);
    expect(periodAt(midnight - 1)).toBe('2026-12-02');
  });

  it('23:59:59.999 is the last slot of the same day', () => {
    const last = at('2026-12-03T23:59:59.999Z');
    expect(slotAt(last)).toBe(287);
    expect(periodAt(last)).toBe('2026-12-03');
    expect(new Date(slotStart('2026-12-03', 287)).toISOString()).toBe('2026-12-03T23:55:00.000Z');
  });

  it('slot boundaries fall on the 5 minutes', () => {
    expect(slotAt(at('2026-12-03T00:04:59.999Z'))).toBe(0);
    expect(slotAt(at('2026-12-03T00:05:00.000Z'))).toBe(1);
    expect(slotAt(at('2026-12-03T12:00:00.000Z'))).toBe(144);
    for (const slot of [0, 1, 143, 144, 287]) {
      expect(slotAt(slotStart('2026-12-03', slot))).toBe(slot);
      expect(slotAt(slotStart('2026-12-03', slot) + 299_999)).toBe(slot);
    }
  });

  it('crosses month, year and leap-day boundaries in UTC', () => {
    expect(periodAt(at('2028-02-29T23:59:59.999Z'))).toBe('2028-02-29');
    expect(periodAt(at('2028-03-01T00:00:00.000Z'))).toBe('2028-03-01');
    expect(periodAt(at('2026-12-31T23:59:59.999Z'))).toBe('2026-12-31');
    expect(new Date(slotStart('2027-01-01', 0)).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });

  it('never-refreshed sorts before every real period', () => {
    expect(NEVER_REFRESHED < '0001-01-01').toBe(true);
    expect(NEVER_REFRESHED < periodAt(0)).toBe(true);
  });
});
