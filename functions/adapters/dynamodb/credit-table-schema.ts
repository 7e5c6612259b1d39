/**
 * The credits context's shape on the billing table, in one module that the CDK
 * construct (`lib/billing-tables.ts`), the subscription store (which stamps a slot on
 * every profile it writes), the credit store and the backfill script all import, so
 * the attributes written and the index the stack creates cannot drift.
 *
 * On the profile item `USER#<userId>` / `PROFILE` (written by the subscription store,
 * credit fields owned by the credit store):
 *   refreshSlot        N  0-287, refreshSlotOf(userId); index partition key
 *   creditPeriod       S  UTC date of the last refresh, or NEVER_REFRESHED; index sort key
 *   credits            N  the balance
 *   creditAllowance    N  the allowance granted at the last refresh
 *   creditRefreshedAt  N  epoch ms of the last refresh
 *
 * The slot index `bySlot` (refreshSlot / creditPeriod, INCLUDE userId, tier): "the users
 * of slot s not yet refreshed for period P" is one paged query
 * `refreshSlot = :s AND creditPeriod < :p`. It is sparse: a profile without both
 * attributes (written before slots existed, until `npm run credits:backfill` or its
 * next subscription change) is not in it. Capacity: docs/credits-capacity.md.
 *
 * Run log items (pk / sk; keys in billing-table-keys.ts), one partition per credit period:
 *   CREDITS#<period> / RUN        counters (ADD), lastRunAt, plannedSlots (number set), errorSeq
 *   CREDITS#<period> / ERROR#<nn> the recent-errors ring: nn = seq mod 20, 00-19
 */
import { NEVER_REFRESHED, refreshSlotOf } from '../../core/credits/refresh-slot.ts';

/** Attribute names on the profile item. */
export const CREDIT_ATTRIBUTE = {
  userId: 'userId',
  tier: 'tier',
  refreshSlot: 'refreshSlot',
  period: 'creditPeriod',
  balance: 'credits',
  allowance: 'creditAllowance',
  refreshedAt: 'creditRefreshedAt',
} as const;

/** The slot index: its name, key attributes (types as DynamoDB spells them) and projection. */
export const CREDIT_SLOT_INDEX = {
  indexName: 'bySlot',
  partitionKey: { name: CREDIT_ATTRIBUTE.refreshSlot, type: 'N' },
  sortKey: { name: CREDIT_ATTRIBUTE.period, type: 'S' },
  /** Non-key attributes projected (INCLUDE): what the planner enqueues, nothing more. */
  projected: [CREDIT_ATTRIBUTE.userId, CREDIT_ATTRIBUTE.tier],
} as const;

/** Errors the run log keeps per period: the ring's size (keys: `billingKeys.creditError`). */
export const RECENT_ERRORS_KEPT = 20;

/**
 * The credit fields a profile gets when it is first written (or first touched after
 * this layout existed), as `if_not_exists` values so a refresh already stamped is kept.
 */
export function initialCreditFields(userId: string): {
  refreshSlot: number;
  period: string;
  balance: number;
} {
  return { refreshSlot: refreshSlotOf(userId), period: NEVER_REFRESHED, balance: 0 };
}
