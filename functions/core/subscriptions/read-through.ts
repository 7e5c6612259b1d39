/**
 * The read route's use case (DESIGN §8.4): answer from the store; on a miss ask Stripe
 * once (the customer by the stored id, else by search on the user id in metadata),
 * store what it says as a snapshot (stripe-snapshot.ts), and answer that. The snapshot
 * writes the profile, so a user Stripe knows costs at most one Stripe call on this path.
 * Concurrent misses for one user share one Stripe call; a user Stripe does not know
 * either is remembered for a short while, so a client polling an unknown user is not
 * a stream of Stripe searches.
 */
import type { Clock } from '../shared/clock.ts';
import type { PriceTierMap } from '../shared/tiers.ts';
import type { UserSubscriptionView } from './customer-account.ts';
import type {
  StripeCustomerRecord,
  StripeCustomerSource,
  SubscriptionStore,
  UserLookup,
  UserViewReader,
} from './ports.ts';
import { snapshotView, storeStripeSnapshot } from './stripe-snapshot.ts';
import { compareViews } from './user-standing.ts';

export interface ReadThroughDeps {
  reader: UserViewReader;
  source: StripeCustomerSource;
  store: SubscriptionStore;
  clock: Clock;
  priceTierMap: PriceTierMap;
  /** How long a user Stripe does not know is answered 404 without asking again. Default 60 s. */
  unknownUserTtlMs?: number;
  onUnmappedPrice?: (priceIds: string[]) => void;
}

export type SubscriptionRead =
  | { view: UserSubscriptionView; source: 'store' | 'stripe' }
  | { view: null; source: 'store' | 'stripe' | 'remembered-unknown' };

/** Unknown users remembered per instance: bounded, oldest forgotten first. */
const UNKNOWN_USERS_REMEMBERED = 10_000;

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
      read = this.#fromStripe(userId, lookup).finally(() => this.#inFlight.delete(userId));
      this.#inFlight.set(userId, read);
    }
    return await read;
  }

  async #fromStripe(userId: string, lookup: UserLookup): Promise<SubscriptionRead> {
    const { source } = this.#deps;
    const knownCustomerId = lookup.stripeCustomerId;
    let records: StripeCustomerRecord[] = [];
    if (knownCustomerId) {
      const record = await source.customerById(knownCustomerId);
      if (record) records = [record];
    }
    if (records.length === 0) records = await source.customersOfUser(userId);
    const best = this.#best(records);
    if (!best) {
      this.#rememberUnknown(userId);
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
      this.#rememberUnknown(userId);
      return { view: null, source: 'stripe' };
    }
    return { view: stored.view, source: 'stripe' };
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

  #rememberUnknown(userId: string): void {
    if (this.#unknownUntil.size >= UNKNOWN_USERS_REMEMBERED) {
      const oldest = this.#unknownUntil.keys().next().value;
      if (oldest !== undefined) this.#unknownUntil.delete(oldest);
    }
    this.#unknownUntil.set(
      userId,
      this.#deps.clock.now() + (this.#deps.unknownUserTtlMs ?? 60_000),
    );
  }
}
