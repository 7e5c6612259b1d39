/**
 * Keys of the billing table's items, for every adapter that reads or writes them:
 * the subscription store owns them, other contexts read them (the payments context
 * finds a customer's user through the account item).
 */
export const billingKeys = {
  /** The customer's account: link to the user (top-level `userId`), subscriptions, revision. */
  account: (customerId: string) => ({ pk: `CUSTOMER#${customerId}`, sk: 'ACCOUNT' }),
  /** The user's profile. */
  profile: (userId: string) => ({ pk: `USER#${userId}`, sk: 'PROFILE' }),
  /** Subscription id -> customer pointer. */
  subscription: (subscriptionId: string) => ({
    pk: `SUBSCRIPTION#${subscriptionId}`,
    sk: 'SUBSCRIPTION',
  }),
};
