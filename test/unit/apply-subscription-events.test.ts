/**
 * The recent-events window: what tells a redelivery (acknowledged, not recorded
 * again, no write) from an out-of-order event (recorded as stale), and why it can
 * never lose an event.
 */
import { describe, expect, it } from 'vitest';
import { InMemorySubscriptionStore } from '../../functions/adapters/memory/in-memory-subscription-store.ts';
import { eventFingerprint, RECENT_EVENT_WINDOW } from '../../functions/core/shared/event-ledger.ts';
import { applySubscriptionEvents } from '../../functions/core/subscriptions/apply-subscription-events.ts';
import { foldFacts } from '../../functions/core/subscriptions/customer-account.ts';
import {
  generateHistory,
  HISTORY_PRICE_TIER_MAP,
  historyFacts,
} from '../helpers/stripe-history.ts';

const deps = (store: InMemorySubscriptionStore) => ({
  store,
  clock: { now: () => 1_750_000_000_000 },
  priceTierMap: HISTORY_PRICE_TIER_MAP,
});
const records = (bodies: string[], prefix: string) =>
  bodies.map((body, index) => ({ recordId: `${prefix}${index}`, body }));
const statuses = (outcomes: Map<string, { status: string }>) =>
  [...outcomes.values()].map((outcome) => outcome.status);

describe('applySubscriptionEvents: duplicates and the recent-events window', () => {
  const history = generateHistory(7);
  const bodies = history.events.map((event) => JSON.stringify(event));

  it('acknowledges a redelivered batch as duplicates and writes nothing', async () => {
    const store = new InMemorySubscriptionStore();
    await applySubscriptionEvents(records(bodies, 'a'), deps(store));
    const commits = store.commits;
    const again = await applySubscriptionEvents(records(bodies, 'b'), deps(store));
    expect(statuses(again).every((status) => status === 'duplicate')).toBe(true);
    expect(store.commits).toBe(commits);
    expect(store.ledger.get(history.customerId)).toHaveLength(1);
  });

  it('records an old event that was never seen as stale, in a new ledger page', async () => {
    const store = new InMemorySubscriptionStore();
    const [first, ...rest] = bodies;
    await applySubscriptionEvents(records(rest, 'a'), deps(store));
    const late = await applySubscriptionEvents(records([first!], 'b'), deps(store));
    expect(statuses(late)).toEqual(['stale']);
    const pages = store.ledger.get(history.customerId)!;
    expect(pages.map((page) => page.revision)).toEqual([1, 2]);
    expect(pages[1]!.events).toEqual([
      expect.objectContaining({ eventId: history.events[0]!.id, outcome: 'stale' }),
    ]);
    expect(store.accounts.get(history.customerId)?.account).toEqual(
      foldFacts(history.customerId, historyFacts(history)),
    );
  });

  it('keeps the last fingerprints only; an older redelivery is recorded again as stale, never applied', async () => {
    const store = new InMemorySubscriptionStore();
    const long = generateHistory(3);
    const many = Array.from({ length: RECENT_EVENT_WINDOW + 4 }, (_, index) => ({
      ...long.events.at(-1)!,
      id: `evt_filler${String(index).padStart(3, '0')}`,
      type: 'customer.updated',
      created: long.events.at(-1)!.created + 10 + index,
      data: { object: { ...long.events[0]!.data.object } },
    }));
    const all = [...long.events, ...many].map((event) => JSON.stringify(event));
    for (const [index, body] of all.entries()) {
      await applySubscriptionEvents(records([body], `r${index}`), deps(store));
    }
    const window = store.accounts.get(long.customerId)!.recentEvents;
    expect(window).toHaveLength(RECENT_EVENT_WINDOW);
    expect(window.at(-1)).toBe(eventFingerprint(many.at(-1)!.id));
    const recent = await applySubscriptionEvents(records([all.at(-1)!], 'x'), deps(store));
    expect(statuses(recent)).toEqual(['duplicate']);
    const old = await applySubscriptionEvents(records([all[0]!], 'y'), deps(store));
    expect(statuses(old)).toEqual(['stale']);
    const applied = store
      .allLedgerEvents()
      .filter((event) => event.eventId === long.events[0]!.id && event.outcome === 'applied');
    expect(applied).toHaveLength(1);
  });

  it('applies an event whose fingerprint is in the window when it changes state (a collision loses nothing)', async () => {
    const store = new InMemorySubscriptionStore();
    const [first, ...rest] = history.events;
    await applySubscriptionEvents(records([JSON.stringify(first)], 'a'), deps(store));
    const stored = store.accounts.get(history.customerId)!;
    // Pretend every upcoming event collides with a fingerprint already in the window.
    stored.recentEvents = rest.map((event) => eventFingerprint(event.id));
    const outcomes = await applySubscriptionEvents(
      records(
        rest.map((event) => JSON.stringify(event)),
        'b',
      ),
      deps(store),
    );
    expect(statuses(outcomes)).toContain('applied');
    expect(store.accounts.get(history.customerId)?.account).toEqual(
      foldFacts(history.customerId, historyFacts(history)),
    );
  });

  it('fingerprints are short and stable', () => {
    expect(eventFingerprint('evt_1NG8Du2eZvKYlo2CUI79vXWy')).toMatch(/^[\w-]{8}$/);
    expect(eventFingerprint('evt_a')).toBe(eventFingerprint('evt_a'));
    expect(eventFingerprint('evt_a')).not.toBe(eventFingerprint('evt_b'));
  });
});
