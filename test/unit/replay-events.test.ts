/**
 * Replay as a use case: Stripe's events list (scripted, newest first, paged like the
 * API) handed to the family queues the routing table names, with the cursor saved after
 * each page so a stopped run resumes; replaying events already applied changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { InMemoryEventQueue } from '../../functions/adapters/memory/in-memory-event-queue.ts';
import { InMemorySubscriptionStore } from '../../functions/adapters/memory/in-memory-subscription-store.ts';
import {
  type ReplayProgress,
  replayStripeEvents,
  type StripeEventSource,
} from '../../functions/core/intake/replay-events.ts';
import { applySubscriptionEvents } from '../../functions/core/subscriptions/apply-subscription-events.ts';
import {
  expectedView,
  generateHistory,
  HISTORY_PRICE_TIER_MAP,
} from '../helpers/stripe-history.ts';

const clock = { now: () => 1_800_000_000_000 };

/** Stripe's list over `events` (any order given): newest first, `limit` a page, `starting_after`. */
function listOf(events: readonly unknown[], limit = 100) {
  const source: StripeEventSource & { calls: number; failOnCall?: number } = {
    calls: 0,
    async listEvents(query) {
      source.calls += 1;
      if (source.failOnCall === source.calls) throw new Error('Stripe unavailable');
      const newestFirst = [...events]
        .map((event) => event as { id: string; created: number; type: string })
        .filter((e) => e.created >= query.fromSeconds && e.created <= query.toSeconds)
        .filter((e) => query.types.length === 0 || query.types.includes(e.type))
        .sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
      const start = query.startingAfter
        ? newestFirst.findIndex((e) => e.id === query.startingAfter) + 1
        : 0;
      return {
        events: newestFirst.slice(start, start + limit),
        hasMore: start + limit < newestFirst.length,
      };
    },
  };
  return source;
}

const event = (id: string, type: string, created: number) => ({
  id,
  object: 'event',
  type,
  created,
  data: { object: { id: `obj_${id}`, object: 'thing' } },
});

describe('replayStripeEvents', () => {
  const events = [
    ...Array.from({ length: 230 }, (_, i) => event(`evt_${i}`, 'invoice.paid', 1_000 + i)),
    event('evt_checkout', 'checkout.session.completed', 2_000),
    event('evt_unrouted', 'balance.available', 2_001),
    { id: 'evt_broken', object: 'event', type: 'invoice.paid', created: 2_002 },
  ];
  const range = { fromSeconds: 0, toSeconds: 10_000, types: [], dryRun: false };

  it('sends every routed event to each family that consumes it, page by page', async () => {
    const queue = new InMemoryEventQueue();
    const pages: ReplayProgress[] = [];
    const progress = await replayStripeEvents(range, {
      source: listOf(events),
      queue,
      clock,
      onPage: (p) => void pages.push(p),
    });
    expect(progress).toMatchObject({
      listed: 233,
      enqueued: 231,
      byFamily: { subscriptions: 231, payments: 1 },
      unrouted: 1,
      malformed: ['evt_broken'],
      pages: 3,
      done: true,
    });
    expect(pages.map((p) => p.listed)).toEqual([100, 200, 233]);
    const sent = queue.peek('subscriptions');
    expect(new Set(sent.map((m) => m.eventId)).size).toBe(231);
    expect(queue.peek('payments').map((m) => m.eventId)).toEqual(['evt_checkout']);
    // The body is the event as Stripe lists it; the consumers parse it as a webhook's.
    const checkout = sent.find((m) => m.eventId === 'evt_checkout')!;
    expect(JSON.parse(checkout.body)).toEqual(events[230]);
    expect(checkout).toMatchObject({
      eventType: 'checkout.session.completed',
      receivedAt: 1_800_000_000_000,
    });
  });

  it('sends nothing on a dry run and counts the same', async () => {
    const queue = new InMemoryEventQueue();
    const progress = await replayStripeEvents(
      { ...range, dryRun: true },
      {
        source: listOf(events),
        queue,
        clock,
      },
    );
    expect(progress.enqueued).toBe(231);
    expect(queue.peek('subscriptions')).toEqual([]);
  });

  it('passes the range and types to Stripe', async () => {
    const queue = new InMemoryEventQueue();
    const progress = await replayStripeEvents(
      { ...range, fromSeconds: 1_100, toSeconds: 1_149, types: ['invoice.paid'] },
      { source: listOf(events), queue, clock },
    );
    expect(progress.enqueued).toBe(50);
  });

  it('resumes after a stop from the last finished page, losing nothing', async () => {
    const queue = new InMemoryEventQueue();
    const source = listOf(events);
    source.failOnCall = 2;
    let saved: ReplayProgress | undefined;
    await expect(
      replayStripeEvents(range, {
        source,
        queue,
        clock,
        onPage: (p) => {
          saved = p;
        },
      }),
    ).rejects.toThrow('Stripe unavailable');
    expect(saved).toMatchObject({ pages: 1, listed: 100, done: false });
    const resumed = await replayStripeEvents(
      { ...range, resumeFrom: saved! },
      { source, queue, clock },
    );
    expect(resumed).toMatchObject({ listed: 233, enqueued: 231, done: true });
    const ids = queue.peek('subscriptions').map((m) => m.eventId);
    expect(new Set(ids).size).toBe(231);
    expect(ids.length).toBe(231);
    // A finished run given again sends nothing more.
    await replayStripeEvents({ ...range, resumeFrom: resumed }, { source, queue, clock });
    expect(queue.peek('subscriptions').length).toBe(231);
  });

  it('refuses events of the other Stripe mode than the target before sending any of their page', async () => {
    const queue = new InMemoryEventQueue();
    const mixed = [
      { ...event('evt_test', 'invoice.paid', 1_000), livemode: false },
      { ...event('evt_live', 'invoice.paid', 1_001), livemode: true },
    ];
    await expect(
      replayStripeEvents({ ...range, livemode: false }, { source: listOf(mixed), queue, clock }),
    ).rejects.toThrow(/evt_live, a live-mode event, for a test-mode target/);
    expect(queue.peek('subscriptions')).toEqual([]);
  });

  it('escapes the characters SQS refuses (U+FFFE, U+FFFF) instead of failing the replay half-way', async () => {
    const sqsLike = new InMemoryEventQueue();
    const enqueue = sqsLike.enqueue.bind(sqsLike);
    // What SQS answers InvalidMessageContents to.
    sqsLike.enqueue = async (queued, family) => {
      if (/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(queued.body)) {
        throw new Error('InvalidMessageContents');
      }
      return await enqueue(queued, family);
    };
    const odd = event('evt_odd', 'invoice.paid', 1_000);
    odd.data.object = { ...odd.data.object, id: 'obj_\uFFFF\uFFFE' };
    const progress = await replayStripeEvents(range, {
      source: listOf([odd, event('evt_plain', 'invoice.paid', 999)]),
      queue: sqsLike,
      clock,
    });
    expect(progress).toMatchObject({ listed: 2, enqueued: 2 });
    const body = sqsLike.peek('subscriptions').find((m) => m.eventId === 'evt_odd')?.body ?? '';
    expect(JSON.parse(body).data.object.id).toBe('obj_\uFFFF\uFFFE');
  });

  it('refuses a reversed range and more than 20 types', async () => {
    const deps = { source: listOf([]), queue: new InMemoryEventQueue(), clock };
    await expect(
      replayStripeEvents({ ...range, fromSeconds: 5, toSeconds: 4 }, deps),
    ).rejects.toThrow(RangeError);
    const types = Array.from({ length: 21 }, (_, i) => `type.${i}`);
    await expect(replayStripeEvents({ ...range, types }, deps)).rejects.toThrow(/at most 20/);
  });

  it('replaying a history already applied changes nothing', async () => {
    const history = generateHistory(11);
    const store = new InMemorySubscriptionStore();
    const priceTierMap = HISTORY_PRICE_TIER_MAP;
    const apply = (bodies: string[]) =>
      applySubscriptionEvents(
        bodies.map((body, i) => ({ recordId: `r${i}`, body })),
        { store, clock, priceTierMap },
      );
    await apply(history.events.map((e) => JSON.stringify(e)));
    const before = await store.getUserView(history.userId);
    expect(before).toEqual(expectedView(history));
    const ledgerBefore = store.allLedgerEvents().length;

    const queue = new InMemoryEventQueue();
    await replayStripeEvents(range, { source: listOf(history.events), queue, clock });
    const outcomes = await apply(queue.drain('subscriptions').map((m) => m.body));
    expect(
      [...outcomes.values()].every((o) => o.status === 'duplicate' || o.status === 'stale'),
    ).toBe(true);
    expect(await store.getUserView(history.userId)).toEqual(before);
    // Nothing applied: whatever the ledger records of the replay is a no-op (stale/duplicate).
    const replayed = store.allLedgerEvents().slice(ledgerBefore);
    expect(replayed.every((entry) => entry.outcome === 'stale')).toBe(true);
  });
});
