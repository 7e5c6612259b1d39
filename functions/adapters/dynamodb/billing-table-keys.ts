/**
 * Keys of the billing table's items, for every adapter that reads or writes them:
 * the subscription store owns them, other contexts read them (the payments context
 * finds a customer's user through the account item). The credits context stamps its
 * fields on the profile and keeps its run log here (layout: credit-table-schema.ts).
 */
/** Sort key prefix of the recent-errors ring items of the credit run log. */
export const CREDIT_ERROR_SK_PREFIX = 'ERROR#';

export const billingKeys = {
  /** The customer's account: link to the user (top-level `userId`), subscriptions, revision. */
  account: (customerId: string) => ({ pk: `CUSTOMER#${customerId}`, sk: 'ACCOUNT' }),
  /** The user's profile. */
  profile: (userId: string) => ({ pk: `USER#${userId}`, sk: 'PROFILE' }),
  /** The read route's lease on the user's Stripe lookup (one lookup at a time across instances). */
  stripeLookup: (userId: string) => ({ pk: `USER#${userId}`, sk: 'STRIPE_LOOKUP' }),
  /** Subscription id -> customer pointer. */
  subscription: (subscriptionId: string) => ({
    pk: `SUBSCRIPTION#${subscriptionId}`,
    sk: 'SUBSCRIPTION',
  }),
  /** A customer marked for a resync (unresolved same-second tie); all marks share one partition. */
  resyncMark: (customerId: string) => ({ pk: 'RESYNC', sk: `CUSTOMER#${customerId}` }),
  /** The credit run log of one period (UTC date): counters, planned slots, error sequence. */
  creditRun: (period: string) => ({ pk: `CREDITS#${period}`, sk: 'RUN' }),
  /** One position (0-19) of a period's recent-errors ring, in the run log's partition. */
  creditError: (period: string, position: number) => ({
    pk: `CREDITS#${period}`,
    sk: `${CREDIT_ERROR_SK_PREFIX}${String(position).padStart(2, '0')}`,
  }),
};
