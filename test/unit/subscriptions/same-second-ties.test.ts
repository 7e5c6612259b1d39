/**
 * Two updates of one subscription in the same second, built from a real captured
 * `customer.subscription.updated` payload: placed by their `previous_attributes`, never
 * by event ids (Stripe does not promise they sort in time), in every arrival order; where
 * the payloads cannot tell, the account is marked for a resync, the same in every order.
 */
import { describe, expect, it } from 'vitest';
import { InMemorySubscriptionStore } from '../../../functions/adapters/memory/in-memory-subscription-store.ts';
import { applySubscriptionEvents } from '../../../functions/core/subscriptions/apply-subscription-events.ts';
import { loadStripeEvent } from '../../helpers/fixtures.ts';

type Event = {
  id: string;
  created: number;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
};

const CUSTOMER = 'cus_IhGfebO16cMIGN';
const clock = { now: () => 1_800_000_000_000 };
const priceTierMap = { price_1IDQm5JDPojXS6LNM31hxKzp: 'gold' as const };

/** The real event with `id`, `status` and the previous attributes given. */
function update(id: string, status: string, previous?: Record<string, unknown>): Event {
  const event = loadStripeEvent<Event>('customer.subscription.updated.stripe-sync-engine');
  event.id = id;
  event.data.object = { ...event.data.object, status, metadata: { userId: 'user-tie' } };
  if (previous) event.data.previous_attributes = previous;
  else delete event.data.previous_attributes;
  return event;
}

async function applyInOrder(events: Event[]) {
  const store = new InMemorySubscriptionStore();
  for (const event of events) {
    await applySubscriptionEvents([{ recordId: event.id, body: JSON.stringify(event) }], {
      store,
      clock,
      priceTierMap,
    });
  }
  return {
    view: await store.getUserView('user-tie'),
    ties: store.accounts.get(CUSTOMER)?.account.unresolvedTies,
  };
}

describe('same-second updates of one subscription', () => {
  // The later update has the SMALLER id: the old id rule would have recorded it as stale.
  const first = update('evt_zzz_first', 'active', { metadata: { test: null } });
  const second = update('evt_aaa_second', 'past_due', { status: 'active' });

  it('are ordered by previous_attributes whatever the arrival order and the ids', async () => {
    for (const order of [
      [first, second],
      [second, first],
    ]) {
      const { view, ties } = await applyInOrder(order);
      expect(view?.status).toBe('past_due');
      expect(ties).toBeUndefined();
    }
  });

  it('settle a chain of three, delivered backwards', async () => {
    const third = update('evt_mmm_third', 'unpaid', { status: 'past_due' });
    for (const order of [
      [third, second, first],
      [second, third, first],
      [first, third, second],
    ]) {
      const { view, ties } = await applyInOrder(order);
      expect(view?.status).toBe('unpaid');
      expect(ties).toBeUndefined();
    }
  });

  it('without previous attributes, are marked for a resync, the same in every order', async () => {
    const a = update('evt_blind_a', 'past_due');
    const b = update('evt_blind_b', 'unpaid');
    const results = [await applyInOrder([a, b]), await applyInOrder([b, a])];
    expect(results[0]).toEqual(results[1]);
    expect(results[0]!.ties).toEqual({ [String(a.data.object.id)]: a.created });
  });

  it('that go A→B→A cannot be ordered: marked', async () => {
    const away = update('evt_away', 'past_due', { status: 'active' });
    const back = update('evt_back', 'active', { status: 'past_due' });
    const results = [await applyInOrder([away, back]), await applyInOrder([back, away])];
    expect(results[0]).toEqual(results[1]);
    expect(results[0]!.ties).toBeDefined();
  });

  it('a later event settles a marked subscription', async () => {
    const a = update('evt_blind_c', 'past_due');
    const b = update('evt_blind_d', 'unpaid');
    const later = update('evt_later', 'active', { status: 'unpaid' });
    later.created += 5;
    const { view, ties } = await applyInOrder([a, b, later]);
    expect(view?.status).toBe('active');
    expect(ties).toBeUndefined();
  });
});
