import { describe, expect, it } from 'vitest';
import type { UserSubscriptionView } from '../../functions/core/subscriptions/customer-account.ts';
import {
  bestView,
  compareViews,
  customerViewsOfLegacy,
  withCustomerView,
} from '../../functions/core/subscriptions/user-standing.ts';

const view = (
  stripeCustomerId: string,
  change: Partial<UserSubscriptionView> = {},
): UserSubscriptionView => ({
  userId: 'user-1',
  tier: 'silver',
  status: 'active',
  stripeCustomerId,
  subscriptionId: `sub_${stripeCustomerId}`,
  priceId: 'price_silver',
  currentPeriodEnd: 1_800_000_000,
  cancelAtPeriodEnd: false,
  latestInvoiceOutcome: 'paid',
  ...change,
});

describe('bestView: one user, several customers', () => {
  it('prefers an entitled subscription to an ended one of a higher tier', () => {
    const ended = view('cus_a', {
      tier: 'free',
      status: 'canceled',
      currentPeriodEnd: 1_900_000_000,
    });
    const bronze = view('cus_b', { tier: 'bronze' });
    expect(bestView({ cus_a: ended, cus_b: bronze })).toBe(bronze);
  });

  it('prefers the higher tier among entitled ones, past_due included', () => {
    const gold = view('cus_a', { tier: 'gold', status: 'past_due', currentPeriodEnd: 1 });
    const silver = view('cus_b');
    expect(bestView({ cus_a: gold, cus_b: silver })).toBe(gold);
  });

  it('shows the latest ended one when none is entitled, and any subscription above none', () => {
    const older = view('cus_a', { tier: 'free', status: 'canceled', currentPeriodEnd: 100 });
    const newer = view('cus_b', { tier: 'free', status: 'unpaid', currentPeriodEnd: 200 });
    const none = view('cus_c', { tier: 'free', status: 'none', currentPeriodEnd: null });
    expect(bestView({ cus_a: older, cus_b: newer, cus_c: none })).toBe(newer);
    expect(bestView({ cus_c: none, cus_a: older })).toBe(older);
  });

  it('picks the same view whatever the order (customer id breaks exact ties)', () => {
    const a = view('cus_a');
    const b = view('cus_b');
    expect(bestView({ cus_a: a, cus_b: b })).toBe(b);
    expect(bestView({ cus_b: b, cus_a: a })).toBe(b);
    expect(compareViews(a, b)).toBeLessThan(0);
    expect(compareViews(a, a)).toBe(0);
  });

  it('is null for a user with no customers', () => {
    expect(bestView({})).toBeNull();
  });
});

describe('withCustomerView', () => {
  it('sets one customer and keeps the others; null removes the customer', () => {
    const a = view('cus_a');
    const b = view('cus_b', { tier: 'gold' });
    const both = withCustomerView({ cus_a: a }, 'cus_b', b);
    expect(both).toEqual({ cus_a: a, cus_b: b });
    expect(withCustomerView(both, 'cus_b', null)).toEqual({ cus_a: a });
    expect(withCustomerView(both, 'cus_missing', null)).toEqual(both);
  });

  it('reads a profile from before customer views as its one customer', () => {
    const a = view('cus_a');
    expect(customerViewsOfLegacy(a)).toEqual({ cus_a: a });
    expect(customerViewsOfLegacy(null)).toEqual({});
  });
});
