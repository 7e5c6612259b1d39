/**
 * Identifiers of the penalties context. A penalty's id is deterministic,
 * `pen_{userId}_{habitId}_{date}` (DESIGN §8.3), so assessing a date twice names the
 * same penalty and creates nothing new. A habit id never contains `_`, so an id
 * splits back into its parts unambiguously even though user ids may contain it.
 */
import { createHash } from 'node:crypto';

export const HABIT_ID_RULE = 'must be 1-64 letters, digits or -';
export const HABIT_ID_PATTERN = /^[A-Za-z0-9-]{1,64}$/;

/** How many assessment shards the active habits are spread over (each a page sequence). */
export const ASSESSMENT_SHARDS = 16;

/**
 * How many partitions the settlement locks are spread over in the pending-settlement
 * index, so no single index partition takes every settlement's write.
 */
export const PENDING_SETTLEMENT_SHARDS = 8;

export function penaltyIdOf(userId: string, habitId: string, date: string): string {
  return `pen_${userId}_${habitId}_${date}`;
}

/** The parts of a penalty id, or null when it is not one (any such id is simply unknown). */
export function parsePenaltyId(
  penaltyId: string,
): { userId: string; habitId: string; date: string } | null {
  const match = /^pen_(.+)_([A-Za-z0-9-]{1,64})_(\d{4}-\d{2}-\d{2})$/.exec(penaltyId);
  if (!match) return null;
  const [, userId, habitId, date] = match as unknown as [string, string, string, string];
  if (userId.length > 128 || !/^[A-Za-z0-9._:@|+-]+$/.test(userId)) return null;
  return { userId, habitId, date };
}

/** The assessment shard of a user's habits: a stable hash, so one user's habits share a shard. */
export function assessmentShardOf(userId: string): number {
  return shardOf(userId, ASSESSMENT_SHARDS);
}

/** The pending-settlement shard of a user's lock: a stable hash, so taking and releasing agree. */
export function pendingSettlementShardOf(userId: string): number {
  return shardOf(userId, PENDING_SETTLEMENT_SHARDS);
}

function shardOf(userId: string, shards: number): number {
  return createHash('sha256').update(userId, 'utf8').digest().readUInt32BE(0) % shards;
}

/**
 * The idempotency key of a settlement's PaymentIntent: made from the penalty ids it
 * pays, so settling the same penalties again (a retry, a double click) creates no
 * second PaymentIntent, and from the Stripe customer it is created for: Stripe refuses
 * a key reused with other parameters, so a user whose customer changed between two
 * attempts gets a new intent instead of a refusal. Stripe keys are at most 255
 * characters: a digest.
 */
export function settlementIdempotencyKey(
  penaltyIds: readonly string[],
  customerId: string | null,
): string {
  const digest = createHash('sha256')
    .update(`${[...penaltyIds].sort().join(',')}|${customerId ?? ''}`, 'utf8')
    .digest('hex');
  return `penalty-settlement-${digest}`;
}
