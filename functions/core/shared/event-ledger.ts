/**
 * The events ledger as every event family records it: each commit of an aggregate
 * (a customer's account, a payment) lists the Stripe events it recorded, in the same
 * transaction as the state they produced, so "recorded" and "applied" cannot disagree.
 */
import { createHash } from 'node:crypto';

/** One event as the ledger records it. Duplicates are not recorded again. */
export interface LedgerEvent {
  eventId: string;
  type: string;
  /** 'applied' changed state; 'stale' was older than what every object it touches holds. */
  outcome: 'applied' | 'stale';
  /** Epoch ms the webhook verified the event (from the queue message), if known. */
  receivedAt: number | null;
}

/** Fingerprints kept per aggregate: a burst and its redeliveries fit easily. */
export const RECENT_EVENT_WINDOW = 16;

/**
 * A short, stable fingerprint of an event id for an aggregate's recent-events window:
 * 48 bits of SHA-256, 8 characters. A collision could only mislabel a no-op as a duplicate.
 */
export function eventFingerprint(eventId: string): string {
  return createHash('sha256').update(eventId).digest('base64url').slice(0, 8);
}
