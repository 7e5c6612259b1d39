/**
 * The read-through fallback as a use case, without AWS: the in-memory store and a
 * scripted Stripe source built from real captured Stripe objects. A miss asks Stripe
 * once and stores a snapshot; the snapshot sits under the same order guard as the
 * webhooks (an older event cannot undo it, a newer one wins); concurrent misses share
 * one call; unknown users are remembered for a while.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { InMemoryStripeLookupLeases } from '../../../functions/adapters/memory/in-memory-lookup-leases.ts';
import { InMemorySubscriptionStore } from '../../../functions/adapters/memory/in-memory-subscription-store.ts';
import { applySubscriptionEvents } from '../../../functions/core/subscriptions/apply-subscription-events.ts';
import { emptyAccount } from '../../../functions/core/subscriptions/customer-account.ts';
import type {
  AccountCommit,
  CommitResult,
  StripeCustomerRecord,
  StripeCustomerSource,
} from '../../../functions/core/subscriptions/ports.ts';
import {
  SharedLookupRejectedError,
  StripeSourceUnavailableError,
} from '../../../functions/core/subscriptions/ports.ts';
import {
  type ReadThroughDeps,
  SubscriptionReadThrough,
} from '../../../functions/core/subscriptions/read-through.ts';
import { SNAPSHOT_EVENT_TYPE } from '../../../functions/core/subscriptions/subscription-facts.ts';
import { loadStripeEvent } from '../../helpers/fixtures.ts';
import { activeView } from '../../helpers/subscription-views.ts';

type StripeObject = Record<string, unknown> & { id: string };

const PRICE = 'price_1IDQm5JDPojXS6LNM31hxKzp';
const CUSTOMER = 'cus_IhGfebO16cMIGN';
/** The real subscription object of the captured `customer.subscription.updated` event. */
const realSubscription = () =>
  loadStripeEvent<{ created: number; data: { object: StripeObject } }>(
    'customer.subscription.updated.stripe-sync-engine',
  );
const realCustomer = (id: string, userId: string): StripeObject => {
  const customer = loadStripeEvent<{ data: { object: StripeObject } }>(
    'customer.created.WRAPPED.openapi-fixtures3',
  ).data.object;
  return { ...customer, id, metadata: { userId } };
};

/** A Stripe source that answers from a script and counts calls. */
class ScriptedStripe implements StripeCustomerSource {
  byUser = new Map<string, StripeCustomerRecord[]>();
  byId = new Map<string, StripeCustomerRecord>();
  calls: string[] = [];
  gate: Promise<void> | null = null;
  failWith: Error | null = null;
  paused?: () => boolean;

  async customerById(customerId: string) {
    this.calls.push(`id:${customerId}`);
    await this.gate;
    if (this.failWith) throw this.failWith;
    return this.byId.get(customerId) ?? null;
  }

  async customersOfUser(userId: string) {
    this.calls.push(`search:${userId}`);
    await this.gate;
    if (this.failWith) throw this.failWith;
    return this.byUser.get(userId) ?? [];
  }
}

let now: number;
let store: InMemorySubscriptionStore;
let stripe: ScriptedStripe;
let readThrough: SubscriptionReadThrough;
let leases: InMemoryStripeLookupLeases;
const clock = { now: () => now };
const priceTierMap = { [PRICE]: 'gold' as const };

/** A record of the real customer and subscription, fetched at `fetchedAt` (s). */
function record(
  userId: string,
  fetchedAt: number,
  subscription: Partial<StripeObject> = {},
): StripeCustomerRecord {
  const sub = realSubscription().data.object;
  return {
    customer: realCustomer(CUSTOMER, userId),
    subscriptions: [{ ...sub, ...subscription }],
    fetchedAt,
  };
}

beforeEach(() => {
  now = Date.UTC(2026, 11, 4, 12) as number;
  store = new InMemorySubscriptionStore();
  stripe = new ScriptedStripe();
  leases = new InMemoryStripeLookupLeases();
  readThrough = instance();
});

/** One read route instance (a Lambda instance) over the shared store and leases. */
function instance(deps: Partial<ReadThroughDeps> = {}): SubscriptionReadThrough {
  return new SubscriptionReadThrough({
    reader: store,
    source: stripe,
    store,
    leases,
    clock,
    priceTierMap,
    unknownUserTtlMs: 60_000,
    ...deps,
  });
}

describe('SubscriptionReadThrough', () => {
  it('answers a miss from Stripe once, stores it, and answers the next read from the store', async () => {
    stripe.byUser.set('user-1', [record('user-1', 1_700_000_000)]);
    const first = await readThrough.read('user-1');
    expect(first).toMatchObject({
      source: 'stripe',
      view: { userId: 'user-1', tier: 'gold', status: 'active', stripeCustomerId: CUSTOMER },
    });
    const second = await readThrough.read('user-1');
    expect(second).toEqual({ source: 'store', view: first.view });
    expect(stripe.calls).toEqual(['search:user-1']);
    // Recorded like any event: the ledger shows the snapshot's facts.
    const ledger = await store.readLedger(CUSTOMER);
    expect(ledger.flatMap((page) => page.events.map((event) => event.type))).toEqual([
      SNAPSHOT_EVENT_TYPE,
      SNAPSHOT_EVENT_TYPE,
    ]);
  });

  it('makes one Stripe call for 20 concurrent misses of one user', async () => {
    stripe.byUser.set('user-2', [record('user-2', 1_700_000_000)]);
    let open!: () => void;
    stripe.gate = new Promise((resolve) => {
      open = resolve;
    });
    const reads = Array.from({ length: 20 }, () => readThrough.read('user-2'));
    await new Promise((resolve) => setTimeout(resolve, 5));
    open();
    const answers = await Promise.all(reads);
    expect(stripe.calls).toEqual(['search:user-2']);
    expect(new Set(answers.map((answer) => answer.view?.tier))).toEqual(new Set(['gold']));
  });

  it('conditions the snapshot on the profile its lookup read; a webhook landing meanwhile makes it read again, and both views stay', async () => {
    stripe.byUser.set('user-7', [record('user-7', 1_700_000_000)]);
    let open!: () => void;
    stripe.gate = new Promise((resolve) => {
      open = resolve;
    });
    const sent: { commit: AccountCommit; result: CommitResult }[] = [];
    const commit = store.commit.bind(store);
    store.commit = async (planned) => {
      const result = await commit(planned);
      sent.push({ commit: planned, result });
      return result;
    };
    const reading = readThrough.read('user-7');
    await new Promise((resolve) => setTimeout(resolve, 5));
    // During the Stripe call, a webhook commits another customer of the same user.
    const other = 'cus_other';
    await commit({
      customerId: other,
      expectedRevision: 0,
      account: { ...emptyAccount(other), userId: 'user-7' },
      recentEvents: [],
      ledger: { appliedAt: now, events: [] },
      view: activeView('user-7', other, 'silver'),
      unlinkedUserId: null,
      newSubscriptionIds: [],
      resyncMark: null,
    });
    open();
    const answer = await reading;
    expect(answer).toMatchObject({
      source: 'stripe',
      view: { tier: 'gold', stripeCustomerId: CUSTOMER },
    });
    expect(
      sent.map(({ commit, result }) => [commit.profilesRead?.get('user-7'), result.status]),
    ).toEqual([
      [{ exists: false, views: {}, revision: 0 }, 'revision-conflict'],
      [undefined, 'committed'],
    ]);
    expect(Object.keys(store.customerViews.get('user-7') ?? {}).sort()).toEqual(
      [CUSTOMER, other].sort(),
    );
    expect(stripe.calls).toEqual(['search:user-7']);
  });

  it('answers a user Stripe does not know with no view, and asks again only after the TTL', async () => {
    expect(await readThrough.read('ghost')).toEqual({ view: null, source: 'stripe' });
    expect(await readThrough.read('ghost')).toEqual({ view: null, source: 'remembered-unknown' });
    expect(stripe.calls).toEqual(['search:ghost']);
    now += 60_001;
    stripe.byUser.set('ghost', [record('ghost', 1_700_000_100)]);
    expect((await readThrough.read('ghost')).view?.tier).toBe('gold');
    expect(stripe.calls).toEqual(['search:ghost', 'search:ghost']);
  });

  it('remembers a refusal only briefly: a read after the short TTL asks Stripe again', async () => {
    stripe.failWith = new Error('refused');
    await expect(readThrough.read('user-3')).rejects.toThrow('refused');
    stripe.failWith = null;
    stripe.byUser.set('user-3', [record('user-3', 1_700_000_000)]);
    now += 5_001;
    expect((await readThrough.read('user-3')).view?.tier).toBe('gold');
    expect(stripe.calls).toEqual(['search:user-3', 'search:user-3']);
  });

  describe('across instances (each Lambda instance serves one request at a time)', () => {
    /** Sleeps by moving the test clock: another instance's lookup is waited for in test time. */
    const clockSleep = async (ms: number) => {
      now += ms;
      await new Promise((resolve) => setImmediate(resolve));
    };

    it('makes one Stripe call for 20 concurrent misses in 20 instances; the others read its view', async () => {
      stripe.byUser.set('user-12', [record('user-12', 1_700_000_000)]);
      let open!: () => void;
      stripe.gate = new Promise((resolve) => {
        open = resolve;
      });
      const instances = Array.from({ length: 20 }, () => instance());
      const reads = instances.map((each) => each.read('user-12'));
      await new Promise((resolve) => setTimeout(resolve, 30));
      open();
      const answers = await Promise.all(reads);
      expect(stripe.calls).toEqual(['search:user-12']);
      expect(leases.acquired).toBe(1);
      expect(answers.map((answer) => answer.source).sort()).toEqual([
        ...Array(19).fill('shared-lookup'),
        'stripe',
      ]);
      expect(new Set(answers.map((answer) => answer.view?.tier))).toEqual(new Set(['gold']));
    });

    it('answers an unknown user 404 in the others from the outcome the one lookup left', async () => {
      let open!: () => void;
      stripe.gate = new Promise((resolve) => {
        open = resolve;
      });
      const reads = [instance(), instance(), instance()].map((each) => each.read('ghost-2'));
      await new Promise((resolve) => setTimeout(resolve, 30));
      open();
      expect(await Promise.all(reads)).toEqual(
        expect.arrayContaining([
          { view: null, source: 'stripe' },
          { view: null, source: 'shared-lookup' },
        ]),
      );
      // A later miss elsewhere, within the TTL: no Stripe call either; after it, asked again.
      expect(await instance().read('ghost-2')).toEqual({ view: null, source: 'shared-lookup' });
      expect(stripe.calls).toEqual(['search:ghost-2']);
      now += 60_001;
      await instance().read('ghost-2');
      expect(stripe.calls).toEqual(['search:ghost-2', 'search:ghost-2']);
    });

    it('answers 503 with the time left in the others when the one lookup finds Stripe unavailable', async () => {
      stripe.failWith = new StripeSourceUnavailableError('Stripe is down.', {
        retryAfterSeconds: 5,
      });
      let open!: () => void;
      stripe.gate = new Promise((resolve) => {
        open = resolve;
      });
      const reads = [instance(), instance(), instance()].map((each) =>
        each.read('user-13').catch((error: unknown) => error),
      );
      await new Promise((resolve) => setTimeout(resolve, 30));
      open();
      const failures = await Promise.all(reads);
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(StripeSourceUnavailableError);
        expect((failure as StripeSourceUnavailableError).retryAfterSeconds).toBe(5);
      }
      expect(stripe.calls).toEqual(['search:user-13']);
      // Once that time is over, the next miss asks again.
      stripe.failWith = null;
      stripe.byUser.set('user-13', [record('user-13', 1_700_000_000)]);
      now += 5_001;
      expect((await instance().read('user-13')).view?.tier).toBe('gold');
      expect(stripe.calls).toEqual(['search:user-13', 'search:user-13']);
    });

    it('answers the others as the one lookup Stripe refused (a 4xx) without asking Stripe again, until a short TTL ends', async () => {
      stripe.failWith = Object.assign(new Error('Stripe refused the lookup (resource_missing).'), {
        code: 'resource_missing',
      });
      let open!: () => void;
      stripe.gate = new Promise((resolve) => {
        open = resolve;
      });
      const reads = [instance(), instance(), instance()].map((each) =>
        each.read('user-18').catch((error: unknown) => error),
      );
      await new Promise((resolve) => setTimeout(resolve, 30));
      open();
      const failures = await Promise.all(reads);
      expect(stripe.calls).toEqual(['search:user-18']);
      // The one that asked has Stripe's refusal; the others are told of it (no 503:
      // asking again would be refused alike, so a client retrying gains nothing).
      expect(failures.filter((f) => f instanceof SharedLookupRejectedError)).toHaveLength(2);
      expect(
        failures.filter((f) => (f as Error).message.includes('resource_missing')),
      ).toHaveLength(1);
      expect(failures.some((f) => f instanceof StripeSourceUnavailableError)).toBe(false);
      expect(await leases.read('user-18')).toMatchObject({ state: 'rejected' });
      // A later miss within the TTL: no Stripe call either.
      await expect(instance().read('user-18')).rejects.toBeInstanceOf(SharedLookupRejectedError);
      expect(stripe.calls).toEqual(['search:user-18']);
      // Once it is over, a customer created since is found.
      stripe.failWith = null;
      stripe.byUser.set('user-18', [record('user-18', 1_700_000_000)]);
      now += 5_001;
      expect((await instance().read('user-18')).view?.tier).toBe('gold');
      expect(stripe.calls).toEqual(['search:user-18', 'search:user-18']);
    });

    it('bounds the Stripe call of a request that took over an expired lease by what is left of its wait', async () => {
      // The lease expires 100 ms before this request gives up waiting (test time).
      expect(await leases.acquire('user-19', 'stopped-instance', now, now + 9_900)).toBeNull();
      const hanging: StripeCustomerSource = {
        customerById: () => new Promise(() => {}),
        customersOfUser: () => new Promise(() => {}),
      };
      const startedAt = performance.now();
      const failure = await instance({
        source: hanging,
        sleep: clockSleep,
        waitMs: 10_000,
        stripeDeadlineMs: 2_000,
      })
        .read('user-19')
        .catch((error: unknown) => error);
      const elapsed = performance.now() - startedAt;
      expect(failure).toBeInstanceOf(StripeSourceUnavailableError);
      // Not the whole Stripe deadline: the 100 ms left of the wait (a fresh 2 s before).
      expect(elapsed).toBeLessThan(1_000);
    });

    it('takes over the lookup of an instance that stopped holding the lease, once the lease expires', async () => {
      stripe.byUser.set('user-14', [record('user-14', 1_700_000_000)]);
      expect(await leases.acquire('user-14', 'stopped-instance', now, now + 12_000)).toBeNull();
      const startedAt = now;
      const answer = await instance({ sleep: clockSleep, waitMs: 20_000 }).read('user-14');
      expect(answer).toMatchObject({ source: 'stripe', view: { tier: 'gold' } });
      expect(now - startedAt).toBeGreaterThanOrEqual(12_000);
      expect(stripe.calls).toEqual(['search:user-14']);
    });

    it('answers 503 once it has waited as long as it may for a lookup still running', async () => {
      expect(await leases.acquire('user-15', 'slow-instance', now, now + 60_000)).toBeNull();
      const startedAt = now;
      await expect(
        instance({ sleep: clockSleep, waitMs: 10_000 }).read('user-15'),
      ).rejects.toMatchObject({ name: 'StripeSourceUnavailableError', retryAfterSeconds: 1 });
      expect(now - startedAt).toBeGreaterThanOrEqual(10_000);
      expect(now - startedAt).toBeLessThan(10_000 + 200 + 1);
      expect(stripe.calls).toEqual([]);
    });

    it('writes no lease while Stripe calls are paused (the circuit is open): the 503 stays one read', async () => {
      stripe.paused = () => true;
      stripe.failWith = new StripeSourceUnavailableError('paused', { paused: true });
      await expect(readThrough.read('user-16')).rejects.toBeInstanceOf(
        StripeSourceUnavailableError,
      );
      expect(leases.acquired).toBe(0);
      expect(leases.leases.size).toBe(0);
    });
  });

  it('answers 503 at one overall deadline for the whole lookup, by id then by search (DESIGN §8.4)', async () => {
    const reader = {
      getUserView: async () => null,
      lookupUser: async () => ({ view: null, stripeCustomerId: 'cus_slow' }),
    };
    // Each call alone is within its own deadline; the two in a row are not.
    const slow = <T>(value: T) =>
      new Promise<T>((resolve) => setTimeout(() => resolve(value), 150));
    const source: StripeCustomerSource = {
      customerById: () => slow(null),
      customersOfUser: () => slow([record('user-17', 1_700_000_000)]),
    };
    const startedAt = performance.now();
    const failure = await instance({ reader, source, stripeDeadlineMs: 200 })
      .read('user-17')
      .catch((error: unknown) => error);
    const elapsed = performance.now() - startedAt;
    expect(failure).toBeInstanceOf(StripeSourceUnavailableError);
    expect((failure as StripeSourceUnavailableError).retryAfterSeconds).toBeGreaterThan(0);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(290);
    expect(await store.getUserView('user-17')).toBeNull();
  });

  it('starts from the stored customer id when the profile has one', async () => {
    const reader = {
      getUserView: async () => null,
      lookupUser: async () => ({ view: null, stripeCustomerId: CUSTOMER }),
    };
    stripe.byId.set(CUSTOMER, record('user-4', 1_700_000_000));
    const withKnownId = new SubscriptionReadThrough({
      reader,
      source: stripe,
      store,
      leases: new InMemoryStripeLookupLeases(),
      clock,
      priceTierMap,
    });
    expect((await withKnownId.read('user-4')).view?.stripeCustomerId).toBe(CUSTOMER);
    expect(stripe.calls).toEqual([`id:${CUSTOMER}`]);
  });

  it('falls back to the search when the stored customer is gone', async () => {
    const reader = {
      getUserView: async () => null,
      lookupUser: async () => ({ view: null, stripeCustomerId: 'cus_deleted' }),
    };
    stripe.byUser.set('user-5', [record('user-5', 1_700_000_000)]);
    const withGoneId = new SubscriptionReadThrough({
      reader,
      source: stripe,
      store,
      leases: new InMemoryStripeLookupLeases(),
      clock,
      priceTierMap,
    });
    expect((await withGoneId.read('user-5')).view?.tier).toBe('gold');
    expect(stripe.calls).toEqual(['id:cus_deleted', 'search:user-5']);
  });

  it('picks the customer giving the best standing when the user has several', async () => {
    const lapsed = record('user-6', 1_700_000_000, { status: 'canceled' });
    (lapsed.customer as StripeObject).id = 'cus_old';
    (lapsed.subscriptions[0] as StripeObject).customer = 'cus_old';
    (lapsed.subscriptions[0] as StripeObject).id = 'sub_old';
    const paying = record('user-6', 1_700_000_000);
    stripe.byUser.set('user-6', [lapsed, paying]);
    const answer = await readThrough.read('user-6');
    expect(answer.view).toMatchObject({ stripeCustomerId: CUSTOMER, tier: 'gold' });
  });

  it('does not answer with a customer now linked to another user', async () => {
    // The store already links the customer to user-7 (a webhook); Stripe's metadata
    // still names user-8 (stale metadata): user-8 gets no one else's subscription.
    stripe.byUser.set('user-7', [record('user-7', 1_700_000_000)]);
    await readThrough.read('user-7');
    const stale = record('user-8', 1_600_000_000);
    stripe.byUser.set('user-8', [stale]);
    expect(await readThrough.read('user-8')).toEqual({ view: null, source: 'stripe' });
  });

  describe('the snapshot under the order guard', () => {
    const applyEvent = (body: unknown) =>
      applySubscriptionEvents([{ recordId: 'r1', body: JSON.stringify(body) }], {
        store,
        clock,
        priceTierMap,
      });

    it('an event older than the snapshot does not undo it; a newer one wins', async () => {
      const event = realSubscription();
      stripe.byUser.set('user-9', [record('user-9', event.created + 10)]);
      await readThrough.read('user-9');

      const older = { ...event, id: 'evt_older', created: event.created + 9 };
      older.data.object = { ...older.data.object, status: 'past_due' };
      const [olderOutcome] = (await applyEvent(older)).values();
      expect(olderOutcome?.status).toBe('stale');
      expect((await store.getUserView('user-9'))?.status).toBe('active');

      const newer = { ...event, id: 'evt_newer', created: event.created + 11 };
      newer.data.object = { ...newer.data.object, status: 'past_due' };
      const [newerOutcome] = (await applyEvent(newer)).values();
      expect(newerOutcome?.status).toBe('applied');
      expect((await store.getUserView('user-9'))?.status).toBe('past_due');
    });

    it('an event of the snapshot second still wins (it may be a change the snapshot missed)', async () => {
      const event = realSubscription();
      stripe.byUser.set('user-10', [record('user-10', event.created)]);
      await readThrough.read('user-10');
      const sameSecond = { ...event, id: 'evt_same' };
      sameSecond.data.object = { ...sameSecond.data.object, cancel_at_period_end: true };
      await applyEvent(sameSecond);
      expect((await store.getUserView('user-10'))?.cancelAtPeriodEnd).toBe(true);
    });

    it('a snapshot older than stored events changes nothing of theirs', async () => {
      const event = realSubscription();
      event.data.object = { ...event.data.object, metadata: { userId: 'user-11' } };
      await applyEvent(event);
      const storedView = await store.getUserView('user-11');
      // A resync answer that was already out of date when it was stored.
      stripe.byId.set(CUSTOMER, record('user-11', event.created - 100, { status: 'unpaid' }));
      const reader = {
        getUserView: async () => null,
        lookupUser: async () => ({ view: null, stripeCustomerId: CUSTOMER }),
      };
      const read = await new SubscriptionReadThrough({
        reader,
        source: stripe,
        store,
        leases: new InMemoryStripeLookupLeases(),
        clock,
        priceTierMap,
      }).read('user-11');
      expect(read.view).toEqual(storedView);
    });
  });
});
