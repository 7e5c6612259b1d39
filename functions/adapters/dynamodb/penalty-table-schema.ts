/**
 * The penalties table's layout, in one module that the CDK construct
 * (`lib/penalty-tables.ts`) and the DynamoDB penalty store both import, so the
 * attributes written and the indexes the stack creates cannot drift.
 *
 * Items (pk / sk):
 *   USER#<userId>      / ACCOUNT                    the user's habits and everything the assessment moves, so one
 *                                                   write assesses all of them (DESIGN §8.3):
 *                                                   `habit#<habitId>` one map per habit: settings, earlierSettings
 *                                                     (the settings days not yet assessed began with), createdAt,
 *                                                     updatedAt (written by habit PUTs only);
 *                                                   `streak#<habitId>` {current, longest, last} (by the assessment only);
 *                                                   `verified` string set of `<habitId>/<date>` not yet assessed,
 *                                                   `verifications` (a count: any new one fails the assessment's
 *                                                   condition), `assessedThrough` (date), `habitsVersion` (a count
 *                                                   of habit writes); habits, freeHabits (the limits' counts);
 *                                                   unpaidCount, `unpaid#<currency>` amounts, `unpaidOn#<date>`
 *                                                   counts (the summary's oldest date; pruned at 0);
 *                                                   pending settlement;
 *                                                   while it is pending also `pendingShard` / `pendingSince` (the pending index);
 *                                                   while a habit is assessed (active, or with a day owed that it
 *                                                   began active) also `assessShard` / `assessKey` (the assessment index)
 *   USER#<userId>      / PENALTY#<date>#<habitId>   one penalty; `userStatus` = `<userId>#<status>` (the status index)
 *   RECIPIENT#<id>     / TOTALS                     penaltiesPaid, `paid#<currency>` amounts
 *   ASSESSMENT#<date>  / SHARD#<nn>                 one shard's progress: cursor, done, counts
 *   ASSESSMENTS        / <date>#<nn>                the shard's assessment of the date has committed
 *                                                   (is any later date started: one query; per shard,
 *                                                   so shards starting at once write no common item)
 *   OVERPAID           / <paymentIntentId>#<penaltyId>  a penalty paid when already settled: owed back
 *                                                   (rare, so one partition; `refundId` once refunded)
 *
 * Indexes:
 *   byStatus      userStatus / sk, ALL: a user's penalties of one status by date (newest
 *                 or oldest first), with any `fields`, one query.
 *   byAssessment  assessShard / assessKey, ALL: sparse, only accounts with a habit still
 *                 assessed; the assessment pages through each shard in user order.
 *   byPendingSettlement  pendingShard / pendingSince, INCLUDE userId: sparse, only
 *                 accounts holding a settlement lock (set with the lock, removed with
 *                 it); the hourly sweep finds the abandoned ones, oldest first in each
 *                 shard, without a scan. Shards: a hash of the user over a few values,
 *                 so no partition takes every settlement's write.
 */

/** The partition of every date's started-shard markers (`<date>#<nn>`), queried by date. */
export const ASSESSMENTS_STARTED_PK = 'ASSESSMENTS';

export const PENALTY_KEYS = {
  account: (userId: string) => ({ pk: `USER#${userId}`, sk: 'ACCOUNT' }),
  penalty: (userId: string, habitId: string, date: string) => ({
    pk: `USER#${userId}`,
    sk: `PENALTY#${date}#${habitId}`,
  }),
  recipient: (recipientId: string) => ({ pk: `RECIPIENT#${recipientId}`, sk: 'TOTALS' }),
  overpayment: (paymentIntentId: string, penaltyId: string) => ({
    pk: 'OVERPAID',
    sk: `${paymentIntentId}#${penaltyId}`,
  }),
  assessmentShard: (date: string, shard: number) => ({
    pk: `ASSESSMENT#${date}`,
    sk: `SHARD#${String(shard).padStart(2, '0')}`,
  }),
  assessmentStarted: (date: string, shard: number) => ({
    pk: ASSESSMENTS_STARTED_PK,
    sk: `${date}#${String(shard).padStart(2, '0')}`,
  }),
};

/** A habit's settings and its streaks: top-level attributes of the account, one per habit. */
export const HABIT_ATTRIBUTE_PREFIX = 'habit#';
export const STREAK_ATTRIBUTE_PREFIX = 'streak#';
export const PENALTY_SK_PREFIX = 'PENALTY#';
/** Per-currency amount attributes: top-level numbers, so ADD works without a map to exist. */
export const UNPAID_AMOUNT_PREFIX = 'unpaid#';
export const PAID_AMOUNT_PREFIX = 'paid#';
/** Per-date unpaid counts on the account, top-level for the same reason. */
export const UNPAID_DATE_PREFIX = 'unpaidOn#';

export const PENALTY_STATUS_INDEX = {
  indexName: 'byStatus',
  partitionKey: { name: 'userStatus', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
} as const;

export const ACCOUNT_ASSESSMENT_INDEX = {
  indexName: 'byAssessment',
  partitionKey: { name: 'assessShard', type: 'N' },
  sortKey: { name: 'assessKey', type: 'S' },
} as const;

/** Sparse: the account item carries its keys only while the user's settlement lock is held. */
export const PENDING_SETTLEMENT_INDEX = {
  indexName: 'byPendingSettlement',
  partitionKey: { name: 'pendingShard', type: 'N' },
  /** The lock's `startedAt` (ISO 8601 UTC, so it sorts by time). */
  sortKey: { name: 'pendingSince', type: 'S' },
  /** The sweep needs only whose lock it is; it re-reads the account by key. */
  nonKeyAttributes: ['userId'],
} as const;

export function userStatusKey(userId: string, status: string): string {
  return `${userId}#${status}`;
}

/** An entry of the account's `verified` set. */
export function verifiedEntryOf(habitId: string, date: string): string {
  return `${habitId}/${date}`;
}
