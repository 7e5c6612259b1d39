/**
 * One user, several Stripe customers (a new checkout after a cancellation, a customer
 * moved from another user): the user's profile keeps the view of each customer linked
 * to the user, and shows the best of them. Each customer's view is exact under
 * reordering (its account is), so the best of them is too, whatever order the
 * customers' events arrive in. A customer linked to another user since is removed
 * from the old user's views in the same commit that moves it.
 */
import { tierRank } from '../shared/tiers.ts';
import { isEntitled, type UserSubscriptionView } from './customer-account.ts';

/** Customer id -> that customer's view, for the customers linked to one user. */
export type CustomerViews = Readonly<Record<string, UserSubscriptionView>>;

/**
 * Orders two views of one user, ascending: an entitled subscription above any other,
 * then the higher tier; then having had a subscription at all; then the later period
 * end (of entitled ones: the longer paid; of ended ones: the latest ended); then the
 * customer id, so that the best is the same for every arrival order.
 */
export function compareViews(a: UserSubscriptionView, b: UserSubscriptionView): number {
  const rank = (view: UserSubscriptionView) => {
    const entitled = view.status !== 'none' && isEntitled(view.status);
    return [
      entitled ? 1 : 0,
      entitled ? tierRank(view.tier) : 0,
      view.status === 'none' ? 0 : 1,
      view.currentPeriodEnd ?? 0,
    ];
  };
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < ra.length; i++) {
    if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
  }
  return a.stripeCustomerId < b.stripeCustomerId
    ? -1
    : a.stripeCustomerId > b.stripeCustomerId
      ? 1
      : 0;
}

/** The view the user's profile shows: the best of its customers', or null when it has none. */
export function bestView(views: CustomerViews): UserSubscriptionView | null {
  let best: UserSubscriptionView | null = null;
  for (const view of Object.values(views)) {
    if (best === null || compareViews(view, best) > 0) best = view;
  }
  return best;
}

/** The user's customer views after one customer's view changed, or (null) it left the user. */
export function withCustomerView(
  views: CustomerViews,
  customerId: string,
  view: UserSubscriptionView | null,
): CustomerViews {
  const { [customerId]: _replaced, ...others } = views;
  return view === null ? others : { ...others, [customerId]: view };
}

/**
 * The customer views of a profile written before profiles kept them: its one view,
 * as its customer's.
 */
export function customerViewsOfLegacy(view: UserSubscriptionView | null): CustomerViews {
  return view ? { [view.stripeCustomerId]: view } : {};
}
