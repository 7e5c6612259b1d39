import { describe, expect, it } from 'vitest';
import type { Tier } from '../../functions/core/shared/tiers.ts';
import {
  applyFact,
  compareVersions,
  emptyAccount,
  foldFacts,
  projectUserView,
  versionOf,
} from '../../functions/core/subscriptions/customer-account.ts';
import type {
  SubscriptionEventFact,
  SubscriptionFact,
  SubscriptionStatus,
} from '../../functions/core/subscriptions/subscription-facts.ts';

const customerId = 'cus_1';
const link = (eventId: string, created: number, userId = 'user-1'): SubscriptionEventFact => ({
  kind: 'checkout-completed',
  type: 'checkout.session.completed',
  eventId,
  created,
  customerId,
  userId,
  subscriptionId: 'sub_1',
  mode: 'subscription',
});

const subscription = (
  eventId: string,
  created: number,
  status: SubscriptionStatus,
  options: { tier?: Tier; type?: string; subscriptionId?: string; createdAt?: number } = {},
): SubscriptionFact => ({
  kind: 'subscription',
  type: options.type ?? 'customer.subscription.updated',
  eventId,
  created,
  customerId,
  userId: null,
  deleted: options.type === 'customer.subscription.deleted',
  previous: null,
  unmappedPriceIds: [],
  snapshot: {
    subscriptionId: options.subscriptionId ?? 'sub_1',
    status,
    tier: options.tier ?? 'silver',
    priceIds: ['price_1'],
    currentPeriodEnd: 2_000_000_000,
    cancelAtPeriodEnd: false,
    createdAt: options.createdAt ?? 100,
  },
});

describe('order guard', () => {
  it('ignores an event older than the stored state of its object', () => {
    const newer = applyFact(emptyAccount(customerId), subscription('evt_b', 200, 'past_due'));
    const older = applyFact(newer.account, subscription('evt_a', 100, 'active'));
    expect(older.outcome).toBe('stale');
    expect(older.account.subscriptions.sub_1?.status).toBe('past_due');
  });

  it('never revives a deleted subscription, even with a newer updated event', () => {
    const deleted = foldFacts(customerId, [
      subscription('evt_del', 100, 'canceled', { type: 'customer.subscription.deleted' }),
    ]);
    const late = applyFact(deleted, subscription('evt_upd', 500, 'active'));
    expect(late.outcome).toBe('stale');
    expect(late.account.subscriptions.sub_1?.status).toBe('canceled');
  });

  it('resolves same-second ties by lifecycle rank, then event id, whatever the arrival order', () => {
    const created = subscription('evt_z', 100, 'incomplete', {
      type: 'customer.subscription.created',
    });
    const updated = subscription('evt_a', 100, 'active');
    const forward = foldFacts(customerId, [created, updated]);
    const backward = foldFacts(customerId, [updated, created]);
    expect(forward).toEqual(backward);
    expect(forward.subscriptions.sub_1?.status).toBe('active');
    expect(compareVersions(versionOf(updated), versionOf(created))).toBeGreaterThan(0);
  });

  it('counts a re-applied event as stale and changes nothing', () => {
    const once = applyFact(emptyAccount(customerId), subscription('evt_1', 100, 'active'));
    const twice = applyFact(once.account, subscription('evt_1', 100, 'active'));
    expect(twice.outcome).toBe('stale');
    expect(twice.account).toEqual(once.account);
  });
});

describe('user view', () => {
  it('is absent until the customer is linked to a user', () => {
    const account = foldFacts(customerId, [subscription('evt_1', 100, 'active')]);
    expect(projectUserView(account)).toBeNull();
    const linked = applyFact(account, link('evt_2', 101)).account;
    expect(projectUserView(linked)).toMatchObject({
      userId: 'user-1',
      tier: 'silver',
      status: 'active',
      stripeCustomerId: customerId,
      subscriptionId: 'sub_1',
    });
  });

  it.each([
    ['active', 'gold'],
    ['trialing', 'gold'],
    ['past_due', 'gold'],
    ['unpaid', 'free'],
    ['canceled', 'free'],
    ['incomplete', 'free'],
    ['incomplete_expired', 'free'],
    ['paused', 'free'],
  ] as const)('a %s subscription leaves the user on %s', (status, tier) => {
    const account = foldFacts(customerId, [
      link('evt_0', 1),
      subscription('evt_1', 100, status, { tier: 'gold' }),
    ]);
    expect(projectUserView(account)).toMatchObject({ tier, status });
  });

  it('prefers an entitled subscription over a newer lapsed one, and the best tier among entitled', () => {
    const account = foldFacts(customerId, [
      link('evt_0', 1),
      subscription('evt_1', 100, 'active', {
        subscriptionId: 'sub_a',
        tier: 'bronze',
        createdAt: 50,
      }),
      subscription('evt_2', 101, 'active', {
        subscriptionId: 'sub_b',
        tier: 'gold',
        createdAt: 60,
      }),
      subscription('evt_3', 102, 'canceled', {
        subscriptionId: 'sub_c',
        tier: 'gold',
        createdAt: 70,
      }),
    ]);
    expect(projectUserView(account)).toMatchObject({ subscriptionId: 'sub_b', tier: 'gold' });
  });

  it('shows the latest invoice outcome of the current subscription', () => {
    const account = foldFacts(customerId, [
      link('evt_0', 1),
      subscription('evt_1', 100, 'past_due'),
      {
        kind: 'invoice',
        type: 'invoice.payment_failed',
        eventId: 'evt_2',
        created: 101,
        customerId,
        invoiceId: 'in_1',
        invoiceCreated: 101,
        subscriptionId: 'sub_1',
        outcome: 'payment_failed',
        amountCents: 900,
        currency: 'usd',
      },
    ]);
    expect(projectUserView(account)).toMatchObject({
      latestInvoiceOutcome: 'payment_failed',
      tier: 'silver',
    });
  });
});
