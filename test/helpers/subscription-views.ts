/** A user's subscription view as the profile serves it, for store and contract tests. */

import type { Tier } from '../../functions/core/shared/tiers.ts';
import type { UserSubscriptionView } from '../../functions/core/subscriptions/customer-account.ts';

/** An active subscription of `tier` on `customerId`; `change` overrides any field. */
export function activeView(
  userId: string,
  customerId: string,
  tier: Tier,
  change: Partial<UserSubscriptionView> = {},
): UserSubscriptionView {
  return {
    userId,
    tier,
    status: 'active',
    stripeCustomerId: customerId,
    subscriptionId: 'sub_1',
    priceId: 'price_1',
    currentPeriodEnd: 1_900_000_000,
    cancelAtPeriodEnd: false,
    latestInvoiceOutcome: null,
    ...change,
  };
}
