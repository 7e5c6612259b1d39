/**
 * Resync as a use case: one customer rebuilt from Stripe's current objects (canceled
 * subscriptions included) through the snapshot path, repairing a tier computed before
 * the price→tier map was fixed, never rolling back a newer event.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { InMemorySubscriptionStore } from '../../../functions/adapters/memory/in-memory-subscription-store.ts';
import { applySubscriptionEvents } from '../../../functions/core/subscriptions/apply-subscription-events.ts';
import type {
  StripeCustomerRecord,
  StripeCustomerSource,
} from '../../../functions/core/subscriptions/ports.ts';
import {
  resyncCustomer,
  resyncMarked,
  resyncUser,
} from '../../../functions/core/subscriptions/resync.ts';
import { loadStripeEvent } from '../../helpers/fixtures.ts';

type StripeObject = Record<string, unknown> & { id: string };
const CUSTOMER = 'cus_IhGfebO16cMIGN';
const PRICE = 'price_1IDQm5JDPojXS6LNM31hxKzp';
const clock = { now: () => 1_800_000_000_000 };

const subscriptionEvent = (userId: string) => {
  const event = loadStripeEvent<{ id: string; created: number; data: { object: StripeObject } }>(
    'customer.subscription.updated.stripe-sync-engine',
  );
  event.data.object = { ...event.data.object, metadata: { userId } };
  return event;
};

class ScriptedStripe implements StripeCustomerSource {
  records = new Map<string, StripeCustomerRecord>();
  byUser = new Map<string, StripeCustomerRecord[]>();
  asked: { id: string; all: boolean }[] = [];
  async customerById(id: string, options?: { allSubscriptions?: boolean }) {
    this.asked.push({ id, all: options?.allSubscriptions === true });
    return this.records.get(id) ?? null;
  }
  async customersOfUser(userId: string) {
    return this.byUser.get(userId) ?? [];
  }
}

let store: InMemorySubscriptionStore;
let stripe: ScriptedStripe;
beforeEach(() => {
  store = new InMemorySubscriptionStore();
  stripe = new ScriptedStripe();
});

const recordAt = (userId: string, fetchedAt: number, status = 'active'): StripeCustomerRecord => ({
  customer: { id: CUSTOMER, object: 'customer', metadata: { userId } },
  subscriptions: [{ ...subscriptionEvent(userId).data.object, status }],
  fetchedAt,
});

describe('resync', () => {
  it('repairs a tier computed before the price→tier map was fixed', async () => {
    const event = subscriptionEvent('user-r1');
    // The map did not know the price: the webhook recorded the user as free.
    await applySubscriptionEvents([{ recordId: 'r', body: JSON.stringify(event) }], {
      store,
      clock,
      priceTierMap: {},
    });
    expect((await store.getUserView('user-r1'))?.tier).toBe('free');

    stripe.records.set(CUSTOMER, recordAt('user-r1', event.created + 3_600));
    const outcome = await resyncCustomer(CUSTOMER, {
      source: stripe,
      reader: store,
      store,
      clock,
      priceTierMap: { [PRICE]: 'gold' },
    });
    expect(outcome).toMatchObject({
      outcome: 'resynced',
      subscriptions: 1,
      view: { tier: 'gold' },
    });
    expect((await store.getUserView('user-r1'))?.tier).toBe('gold');
    // Every subscription is asked for, canceled ones included.
    expect(stripe.asked).toEqual([{ id: CUSTOMER, all: true }]);
  });

  it('never rolls back an event newer than what Stripe answered', async () => {
    const event = subscriptionEvent('user-r2');
    const priceTierMap = { [PRICE]: 'gold' as const };
    await applySubscriptionEvents([{ recordId: 'r', body: JSON.stringify(event) }], {
      store,
      clock,
      priceTierMap,
    });
    stripe.records.set(CUSTOMER, recordAt('user-r2', event.created - 60, 'past_due'));
    await resyncCustomer(CUSTOMER, { source: stripe, reader: store, store, clock, priceTierMap });
    expect((await store.getUserView('user-r2'))?.status).toBe('active');
  });

  it('changes nothing for a customer Stripe does not know', async () => {
    expect(
      await resyncCustomer('cus_gone', {
        source: stripe,
        reader: store,
        store,
        clock,
        priceTierMap: {},
      }),
    ).toEqual({ customerId: 'cus_gone', outcome: 'unknown-to-stripe' });
    expect(await store.loadAccounts(['cus_gone'])).toEqual(new Map());
  });

  it('refuses a customer of the other Stripe mode than the target, storing nothing', async () => {
    const live = recordAt('user-r6', 1_700_000_000);
    live.customer = { ...(live.customer as object), livemode: true };
    stripe.records.set(CUSTOMER, live);
    const deps = {
      source: stripe,
      reader: store,
      store,
      clock,
      priceTierMap: { [PRICE]: 'gold' as const },
    };
    await expect(resyncCustomer(CUSTOMER, { ...deps, livemode: false })).rejects.toThrow(
      /live-mode customer, for a test-mode target/,
    );
    expect(await store.loadAccounts([CUSTOMER])).toEqual(new Map());
    // Of the target's mode, it is stored.
    await resyncCustomer(CUSTOMER, { ...deps, livemode: true });
    expect((await store.getUserView('user-r6'))?.tier).toBe('gold');
  });

  it('resyncs every customer of a user: the profile’s and those Stripe finds by metadata', async () => {
    const event = subscriptionEvent('user-r3');
    const priceTierMap = { [PRICE]: 'gold' as const };
    await applySubscriptionEvents([{ recordId: 'r', body: JSON.stringify(event) }], {
      store,
      clock,
      priceTierMap,
    });
    stripe.records.set(CUSTOMER, recordAt('user-r3', event.created + 10));
    const other: StripeCustomerRecord = {
      customer: { id: 'cus_second', object: 'customer', metadata: { userId: 'user-r3' } },
      subscriptions: [],
      fetchedAt: event.created + 10,
    };
    stripe.byUser.set('user-r3', [other]);
    stripe.records.set('cus_second', other);
    const outcomes = await resyncUser('user-r3', {
      source: stripe,
      reader: store,
      store,
      clock,
      priceTierMap,
    });
    // The profile's customer first, then the one found by metadata. The second has no
    // subscription: the profile still shows the best of the two, the paying one.
    expect(outcomes.map((o) => [o.customerId, o.outcome])).toEqual([
      [CUSTOMER, 'resynced'],
      ['cus_second', 'resynced'],
    ]);
    expect(await store.getUserView('user-r3')).toMatchObject({
      tier: 'gold',
      stripeCustomerId: CUSTOMER,
    });
    expect(Object.keys(store.customerViews.get('user-r3') ?? {}).sort()).toEqual(
      [CUSTOMER, 'cus_second'].sort(),
    );
  });

  it('resyncs every customer marked by an unresolved tie, and the marks clear', async () => {
    const priceTierMap = { [PRICE]: 'gold' as const };
    const blind = (id: string, status: string) => {
      const event = subscriptionEvent('user-r4');
      event.id = id;
      event.data.object = { ...event.data.object, status };
      delete (event.data as { previous_attributes?: unknown }).previous_attributes;
      return event;
    };
    const a = blind('evt_tie_a', 'past_due');
    const b = blind('evt_tie_b', 'unpaid');
    await applySubscriptionEvents(
      [a, b].map((event) => ({ recordId: event.id, body: JSON.stringify(event) })),
      { store, clock, priceTierMap },
    );
    expect((await store.listResyncMarks()).map((m) => m.customerId)).toEqual([CUSTOMER]);
    stripe.records.set(CUSTOMER, recordAt('user-r4', a.created + 30, 'active'));
    const outcomes = await resyncMarked({
      source: stripe,
      reader: store,
      store,
      marks: store,
      clock,
      priceTierMap,
    });
    expect(outcomes).toMatchObject([{ customerId: CUSTOMER, outcome: 'resynced' }]);
    expect(await store.listResyncMarks()).toEqual([]);
    expect((await store.getUserView('user-r4'))?.status).toBe('active');
  });
});
