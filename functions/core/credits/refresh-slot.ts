/**
 * Where in the UTC day a user's credits are refreshed: one of 288 five-minute slots,
 * a stable hash of the user id, so the day's refreshes are spread evenly instead of
 * all at midnight. Stable across releases: the slot is stored on the profile and
 * indexed, and tests pin known ids to their slots.
 */
import { createHash } from 'node:crypto';

export const SLOT_MINUTES = 5;
export const SLOTS_PER_DAY = (24 * 60) / SLOT_MINUTES;

/** The slot of `userId`: the first 48 bits of SHA-256 of the id, modulo 288. */
export function refreshSlotOf(userId: string): number {
  const digest = createHash('sha256').update(userId, 'utf8').digest();
  return digest.readUIntBE(0, 6) % SLOTS_PER_DAY;
}

/** The slot a moment falls in (epoch ms, UTC). */
export function slotAt(epochMs: number): number {
  const minutes = Math.floor((epochMs % 86_400_000) / 60_000);
  return Math.floor(minutes / SLOT_MINUTES);
}

/** The UTC date (`YYYY-MM-DD`) of a moment: the credit period it belongs to. */
export function periodAt(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

/** When `slot` of `period` starts (epoch ms). */
export function slotStart(period: string, slot: number): number {
  return Date.parse(`${period}T00:00:00.000Z`) + slot * SLOT_MINUTES * 60_000;
}

/** The credit period stamped on a profile that was never refreshed: before every real date. */
export const NEVER_REFRESHED = '0000-00-00';
