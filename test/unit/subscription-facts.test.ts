import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MalformedEventError, parseEnvelope } from '../../functions/core/shared/stripe-envelope.ts';
import {
  type SubscriptionEventType,
  toSubscriptionFact,
} from '../../functions/core/subscriptions/subscription-facts.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/stripe/${name}`, import.meta.url), 'utf8'));

const factOf = (event: unknown, map: Record<string, 'bronze' | 'silver' | 'gold'> = {}) => {
  const envelope = parseEnvelope(event);
  return toSubscriptionFact({ ...envelope, type: envelope.type as SubscriptionEventType }, map);
};

describe('toSubscriptionFact on real payloads', () => {
  it('reads a 2020-era subscription: period on the subscription, tier from the price map', () => {
    const event = fixture('customer.subscription.updated.stripe-sync-engine.json');
    const fact = factOf(event, { price_1IDQm5JDPojXS6LNM31hxKzp: 'silver' });
    expect(fact).toMatchObject({
      kind: 'subscription',
      customerId: 'cus_IhGfebO16cMIGN',
      eventId: 'evt_1IlavxJDPojXS6LNGNOrPWFQ',
      snapshot: {
        subscriptionId: 'sub_JLEPMp81LApOJl',
        status: 'active',
        tier: 'silver',
        currentPeriodEnd: 1621572344,
        cancelAtPeriodEnd: false,
      },
    });
  });

  it('reads a basil subscription: period on the items, tier from price metadata over the map', () => {
    const object = fixture('openapi-canonical/subscription.object.openapi-fixtures3.json');
    object.items.data[0].price.metadata = { tier: 'Gold' };
    object.items.data[0].current_period_end = 1_800_000_000;
    const event = {
      ...fixture('customer.subscription.created.stripe-sync-engine.json'),
      data: { object },
    };
    const fact = factOf(event, { [object.items.data[0].price.id]: 'bronze' });
    expect(fact).toMatchObject({
      kind: 'subscription',
      snapshot: { tier: 'gold', currentPeriodEnd: 1_800_000_000, cancelAtPeriodEnd: true },
    });
  });

  it('reports unmapped prices and grants nothing for them', () => {
    const fact = factOf(fixture('customer.subscription.created.stripe-sync-engine.json'));
    expect(fact).toMatchObject({
      snapshot: { tier: 'free' },
      unmappedPriceIds: [expect.stringMatching(/^price_/)],
    });
  });

  it('treats a deleted subscription as canceled whatever the payload status says', () => {
    const event = fixture('customer.subscription.deleted.stripe-sync-engine.json');
    event.data.object.status = 'active';
    expect(factOf(event)).toMatchObject({ deleted: true, snapshot: { status: 'canceled' } });
  });

  it('finds an invoice subscription in the old place and under parent (basil)', () => {
    expect(factOf(fixture('invoice.paid.stripe-sync-engine.json'))).toMatchObject({
      kind: 'invoice',
      outcome: 'paid',
      subscriptionId: 'sub_JsuPyCPhXWfZar',
      customerId: 'cus_JsuO3bmrj0QlAw',
    });
    const basil = fixture('invoice.payment_failed.data-only.pay-rails.json');
    const event = {
      ...fixture('invoice.paid.stripe-sync-engine.json'),
      type: 'invoice.payment_failed',
      data: basil,
    };
    expect(factOf(event)).toMatchObject({
      kind: 'invoice',
      outcome: 'payment_failed',
      subscriptionId: 'sub_1234',
      customerId: 'cus_1234',
    });
  });

  it('links a subscription-mode checkout through client_reference_id or metadata.userId', () => {
    const event = fixture('checkout.session.completed.mode-subscription.WRAPPED.pay-rails.json');
    event.data.object.client_reference_id = 'user-42';
    expect(factOf(event)).toMatchObject({
      kind: 'checkout-completed',
      userId: 'user-42',
      customerId: 'cus_M5wW9RPFk9xNZ5',
      subscriptionId: 'sub_1LNkeSKXBGcbgpbZ7jMqOPSi',
    });
    event.data.object.metadata = { userId: 'user-7' };
    expect(factOf(event)).toMatchObject({ userId: 'user-7' });
  });

  it('ignores a checkout with no customer (nothing to link)', () => {
    const event = fixture('checkout.session.completed.mode-subscription.WRAPPED.pay-rails.json');
    event.data.object.customer = null;
    expect(factOf(event)).toBeNull();
  });

  it('reads customer.created with or without a userId', () => {
    const event = fixture('customer.created.WRAPPED.openapi-fixtures3.json');
    expect(factOf(event)).toMatchObject({
      kind: 'customer',
      userId: null,
      customerId: 'cus_QXg1o8vcGmoR32',
    });
    event.data.object.metadata = { userId: 'user-9' };
    expect(factOf(event)).toMatchObject({ userId: 'user-9' });
  });

  it('rejects malformed payloads of handled types with a MalformedEventError naming the field', () => {
    const event = fixture('customer.subscription.updated.stripe-sync-engine.json');
    event.data.object.status = 'weird';
    expect(() => factOf(event)).toThrow(MalformedEventError);
    expect(() => factOf(event)).toThrow(/status/);
    expect(() => parseEnvelope({ id: 'nope', object: 'event' })).toThrow(MalformedEventError);
  });
});
