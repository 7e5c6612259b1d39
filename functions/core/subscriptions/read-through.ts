/**
 * The read route's use case (DESIGN §8.4): answer from the store; on a miss ask Stripe
 * once (the customer by the stored id, else by search on the user id in metadata),
 * store what it says as a snapshot (stripe-snapshot.ts), and answer that. The snapshot
 * writes the profile, so a user Stripe knows costs at most one Stripe call on this path.
 * Concurrent misses for one user make one Stripe call: within an instance they share
 * its promise; across instances (Lambda runs each request in its own) a lease on the
 * user does it, and the others wait for its view, or for how it ended. A user Stripe
 * does not know either is remembered for a short while, so a client polling an unknown
 * user is not a stream of Stripe searches.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';
import type { PriceTierMap } from '../shared/tiers.ts';
import type { UserSubscriptionView } from './customer-account.ts';
import {
  type LeaseOutcome,
  type LookupLease,
  SharedLookupRejectedError,
  type StripeCustomerRecord,
  type StripeCustomerSource,
  type StripeLookupLeases,
  StripeSourceUnavailableError,
  type SubscriptionStore,
  type UserLookup,
  type UserViewReader,
} from './ports.ts';
import { snapshotView, storeStripeSnapshot } from './stripe-snapshot.ts';
import { compareViews } from './user-standing.ts';

export interface ReadThroughDeps {
  reader: UserViewReader;
  source: StripeCustomerSource;
  store: SubscriptionStore;
  clock: Clock;
  priceTierMap: PriceTierMap;
  /** Makes the Stripe lookup of a user one at a time across the route's instances. */
  leases: StripeLookupLeases;
  /** How long a user Stripe does not know is answered 404 without asking again. Default 60 s. */
  unknownUserTtlMs?: number;
  /**
   * How long, after Stripe refused a user's lookup (a 4xx), the other instances answer
   * alike (500) without asking again. Short: a fix takes effect soon after. Default 5 s.
   */
  rejectedTtlMs?: number;
  /**
   * How long a lookup holds its user's lease before the others presume its instance
   * stopped. Default 12 s: Stripe's 10 s deadline, then the snapshot's commit.
   */
  leaseMs?: number;
  /** How long a request waits for another instance's lookup before a 503. Default 10 s. */
  waitMs?: number;
  /**
   * The whole Stripe lookup's deadline, however many calls it makes (by id, then the
   * search): DESIGN §8.4's overall deadline on a request path. Default 10 s; cut to
   * what is left of `waitMs` for a request that waited on another instance first.
   */
  stripeDeadlineMs?: number;
  /** Waits between looks at another instance's lookup (tests pass their own). */
  sleep?: (ms: number) => Promise<void>;
  onUnmappedPrice?: (priceIds: string[]) => void;
}

/**
 * Where the answer came from: the store, this request's Stripe lookup, another
 * request's lookup of the same user, or the memory of an unknown user.
 */
export type SubscriptionRead =
  | { view: UserSubscriptionView; source: 'store' | 'stripe' | 'shared-lookup' }
  | { view: null; source: 'store' | 'stripe' | 'shared-lookup' | 'remembered-unknown' };

/** Unknown users remembered per instance: bounded, oldest forgotten first. */
const UNKNOWN_USERS_REMEMBERED = 10_000;
/** Looks at another instance's lookup: first after 20 ms, then twice as long, at most 200 ms apart. */
const FIRST_LOOK_MS = 20;
const MAX_LOOK_MS = 200;

export class SubscriptionReadThrough {
  readonly #deps: ReadThroughDeps;
  readonly #inFlight = new Map<string, Promise<SubscriptionRead>>();
  /** userId -> epoch ms until which it is answered 404 without a Stripe call. */
  readonly #unknownUntil = new Map<string, number>();

  constructor(deps: ReadThroughDeps) {
    this.#deps = deps;
  }

  async read(userId: string): Promise<SubscriptionRead> {
    const lookup = await this.#deps.reader.lookupUser(userId);
    if (lookup.view) return { view: lookup.view, source: 'store' };
    const remembered = this.#unknownUntil.get(userId);
    if (remembered !== undefined) {
      if (remembered > this.#deps.clock.now()) return { view: null, source: 'remembered-unknown' };
      this.#unknownUntil.delete(userId);
    }
    let read = this.#inFlight.get(userId);
    if (!read) {
      read = this.#shared(userId, lookup).finally(() => this.#inFlight.delete(userId));
      this.#inFlight.set(userId, read);
    }
    return await read;
  }

  /** The miss of a user, looked up in Stripe once among all instances. */
  async #shared(userId: string, lookup: UserLookup): Promise<SubscriptionRead> {
    const { clock, leases, source } = this.#deps;
    // Calls paused (circuit open): the source answers 503 at once; no lease is written.
    const giveUpAt = clock.now() + (this.#deps.waitMs ?? 10_000);
    if (source.paused?.()) return await this.#fromStripe(userId, lookup, giveUpAt);
    const leaseMs = this.#deps.leaseMs ?? 12_000;
    let latest = lookup;
    for (;;) {
      const token = randomUUID();
      const now = clock.now();
      const live = await leases.acquire(userId, token, now, now + leaseMs);
      if (live === null) return await this.#holding(userId, latest, token, giveUpAt);
      const waited = await this.#waitFor(userId, live, giveUpAt);
      if ('read' in waited) return waited.read;
      // That lookup ended with neither a view nor an outcome (it failed, or its
      // instance stopped): this request takes the lease and asks.
      latest = waited.lookup;
    }
  }

  /** Asks Stripe holding the user's lease, then ends the lease as the others need. */
  async #holding(
    userId: string,
    lookup: UserLookup,
    token: string,
    giveUpAt: number,
  ): Promise<SubscriptionRead> {
    const { clock, leases } = this.#deps;
    // Best effort: a lease not ended makes the others wait until it expires.
    const end = (outcome: LeaseOutcome) =>
      leases.end(userId, token, outcome).catch(() => undefined);
    let records: StripeCustomerRecord[];
    try {
      records = await this.#ask(userId, lookup, giveUpAt);
    } catch (error) {
      // Stripe down: the others answer 503 for its Retry-After. Stripe refused (a 4xx):
      // asking again at once would be refused alike, so for a short while they answer
      // as this request does rather than each asking.
      await end(
        error instanceof StripeSourceUnavailableError
          ? { state: 'unavailable', untilMs: clock.now() + error.retryAfterSeconds * 1000 }
          : { state: 'rejected', untilMs: clock.now() + (this.#deps.rejectedTtlMs ?? 5_000) },
      );
      throw error;
    }
    let read: SubscriptionRead;
    try {
      read = await this.#answer(userId, lookup, records);
    } catch (error) {
      // The store failed, not Stripe: the next request asks again.
      await end({ state: 'released' });
      throw error;
    }
    // With a view the others find it in the store (the lease just expires); without
    // one they are told, and answer 404 alike for as long as this instance does.
    if (!read.view) {
      await end({ state: 'unknown', untilMs: this.#unknownUntil.get(userId) ?? clock.now() });
    }
    return read;
  }

  /**
   * Waits for another instance's lookup of the user: its view in the store, or the
   * outcome it left. `lookup` when it ended with neither, for this request to ask.
   */
  async #waitFor(
    userId: string,
    lease: LookupLease,
    giveUpAt: number,
  ): Promise<{ read: SubscriptionRead } | { lookup: UserLookup }> {
    const { clock, leases, reader } = this.#deps;
    const sleep = this.#deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    let current = lease;
    let pauseMs = FIRST_LOOK_MS;
    for (;;) {
      const now = clock.now();
      if (current.untilMs > now && current.state === 'unknown') {
        this.#rememberUnknown(userId, current.untilMs);
        return { read: { view: null, source: 'shared-lookup' } };
      }
      if (current.untilMs > now && current.state === 'rejected') {
        throw new SharedLookupRejectedError();
      }
      if (current.untilMs > now && current.state === 'unavailable') {
        throw new StripeSourceUnavailableError(
          'Stripe could not be asked; another request for this user has just found so.',
          { retryAfterSeconds: Math.max(1, Math.ceil((current.untilMs - now) / 1000)) },
        );
      }
      if (now >= giveUpAt) {
        throw new StripeSourceUnavailableError(
          'Another request for this user is still asking Stripe.',
          { retryAfterSeconds: 1 },
        );
      }
      await sleep(pauseMs);
      pauseMs = Math.min(pauseMs * 2, MAX_LOOK_MS);
      const [lookup, next] = await Promise.all([reader.lookupUser(userId), leases.read(userId)]);
      if (lookup.view) return { read: { view: lookup.view, source: 'shared-lookup' } };
      if (!next || next.untilMs <= clock.now()) return { lookup };
      current = next;
    }
  }

  async #fromStripe(
    userId: string,
    lookup: UserLookup,
    giveUpAt: number,
  ): Promise<SubscriptionRead> {
    return await this.#answer(userId, lookup, await this.#ask(userId, lookup, giveUpAt));
  }

  /**
   * The user's customers in Stripe, within the Stripe deadline and what is left of the
   * request's wait: a request that took over an expired lease late must still answer
   * before the function's timeout.
   */
  async #ask(
    userId: string,
    lookup: UserLookup,
    giveUpAt: number,
  ): Promise<StripeCustomerRecord[]> {
    const ms = Math.min(this.#deps.stripeDeadlineMs ?? 10_000, giveUpAt - this.#deps.clock.now());
    if (ms <= 0) {
      throw new StripeSourceUnavailableError('No time is left to ask Stripe.', {
        retryAfterSeconds: 1,
      });
    }
    return await withinDeadline(this.#customersOf(userId, lookup.stripeCustomerId), ms);
  }

  /** The best of the records, stored as a snapshot, as this user's answer. */
  async #answer(
    userId: string,
    lookup: UserLookup,
    records: readonly StripeCustomerRecord[],
  ): Promise<SubscriptionRead> {
    const knownCustomerId = lookup.stripeCustomerId;
    const best = this.#best(records);
    if (!best) {
      this.#rememberUnknown(userId, this.#unknownExpiry());
      return { view: null, source: 'stripe' };
    }
    // Found by search: the store has no profile for this user, so most likely no account.
    // The profile the lookup read conditions the commit: no second read of it.
    const stored = await storeStripeSnapshot(best, {
      ...this.#deps,
      expectNew: !knownCustomerId,
      ...(lookup.profile ? { profilesRead: new Map([[userId, lookup.profile]]) } : {}),
    });
    // The stored account may link the customer to someone else (moved since): not this user's.
    if (stored.view?.userId !== userId) {
      this.#rememberUnknown(userId, this.#unknownExpiry());
      return { view: null, source: 'stripe' };
    }
    return { view: stored.view, source: 'stripe' };
  }

  /** The user's customers in Stripe: by the stored id, else by the search on metadata. */
  async #customersOf(
    userId: string,
    knownCustomerId: string | null,
  ): Promise<StripeCustomerRecord[]> {
    const { source } = this.#deps;
    if (knownCustomerId) {
      const record = await source.customerById(knownCustomerId);
      if (record) return [record];
    }
    return await source.customersOfUser(userId);
  }

  /** The customer whose subscriptions give the user the best standing (several checkouts). */
  #best(records: readonly StripeCustomerRecord[]): StripeCustomerRecord | null {
    let best: { record: StripeCustomerRecord; view: UserSubscriptionView | null } | null = null;
    for (const record of records) {
      const view = snapshotView(record, this.#deps.priceTierMap);
      const better =
        !best || (view !== null && (best.view === null || compareViews(view, best.view) > 0));
      if (better) best = { record, view };
    }
    return best?.record ?? null;
  }

  #unknownExpiry(): number {
    return this.#deps.clock.now() + (this.#deps.unknownUserTtlMs ?? 60_000);
  }

  #rememberUnknown(userId: string, untilMs: number): void {
    if (this.#unknownUntil.size >= UNKNOWN_USERS_REMEMBERED) {
      const oldest = this.#unknownUntil.keys().next().value;
      if (oldest !== undefined) this.#unknownUntil.delete(oldest);
    }
    this.#unknownUntil.set(userId, untilMs);
  }
}

/**
 * `work`, or a 503-worthy error once `ms` have passed: the caller is answered at the
 * deadline; a call still in flight ends by its own timeout.
 */
async function withinDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new StripeSourceUnavailableError(`Stripe did not answer within ${ms} ms.`, {
            retryAfterSeconds: 5,
          }),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
