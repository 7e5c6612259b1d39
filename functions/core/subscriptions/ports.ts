/** Ports the subscription use cases depend on; adapters implement them. */
import type { CommitResult } from '../shared/event-batch.ts';
import type { LedgerEvent } from '../shared/event-ledger.ts';
import type { CustomerAccount, UserSubscriptionView } from './customer-account.ts';
import type { StripeCustomerRecord } from './subscription-facts.ts';
import type { CustomerViews } from './user-standing.ts';

export type { CommitResult, LedgerEvent, StripeCustomerRecord };

/** An account as stored, with the revision used for optimistic concurrency. */
export interface StoredAccount {
  account: CustomerAccount;
  /** 0 when the account does not exist yet. */
  revision: number;
  /**
   * Fingerprints of the last events recorded for this customer (oldest first). Used
   * only to tell a redelivered event ('duplicate') from an out-of-order one ('stale');
   * both change nothing, so a fingerprint collision can mislabel, never lose, an event.
   */
  recentEvents: string[];
}

/**
 * One ledger page: the events one commit recorded for one customer, written in the
 * same transaction as the state they produced, so "recorded" and "applied" can
 * never disagree. Keyed by (customerId, revision): one page per account revision.
 */
export interface LedgerPage {
  customerId: string;
  /** The account revision this commit wrote. */
  revision: number;
  userId: string | null;
  /** Epoch ms of the commit. */
  appliedAt: number;
  events: LedgerEvent[];
}

/** Everything one customer's events change, committed atomically or not at all. */
export interface AccountCommit {
  customerId: string;
  /** Revision read before folding; the commit fails if someone else wrote since. */
  expectedRevision: number;
  account: CustomerAccount;
  /** The account's recent-events window after this commit. */
  recentEvents: string[];
  ledger: { appliedAt: number; events: LedgerEvent[] };
  /**
   * This customer's view, set when it changed. The store keeps it among the views of
   * the user's customers on the profile, and the profile shows the best of them
   * (user-standing.ts), recomputed in the same atomic write.
   */
  view: UserSubscriptionView | null;
  /**
   * The user this customer was linked to before this commit, when it is now linked to
   * another: the customer's view is removed from that user's profile in the same write.
   */
  unlinkedUserId: string | null;
  /** Subscriptions seen for the first time: their id → customer pointer is written. */
  newSubscriptionIds: string[];
  /**
   * The account's resync mark (an unresolved same-second tie): `set` when its tied
   * subscriptions changed and some remain, `clear` when none remain, else null.
   */
  resyncMark: 'set' | 'clear' | null;
  /**
   * Profiles the caller has just read, by user id (the read route's lookup, before its
   * Stripe call): the store conditions the commit on them instead of reading them
   * again, one round trip less. A stale one only makes the commit lose its race.
   */
  profilesRead?: ReadonlyMap<string, ProfileViews>;
}

/** A user's profile as read: its customers' views and the revision a change of them is conditioned on. */
export interface ProfileViews {
  /** The profile item exists (only a new profile gets its first credit refresh). */
  exists: boolean;
  views: CustomerViews;
  /** 0 for a profile that has never kept customer views. */
  revision: number;
  /** The credit refresh the profile last had (its period and the allowance granted), when read. */
  credits?: { period: string; allowance: number };
}

/** A customer marked for a resync from Stripe by an unresolved same-second tie. */
export interface ResyncMark {
  customerId: string;
  /** Tied subscription id -> the second of the tie. */
  subscriptions: Record<string, number>;
  /** Epoch ms of the commit that marked it. */
  markedAt: number;
}

/** The open resync marks, for the operators' `resync --marked`. */
export interface ResyncMarkReader {
  listResyncMarks(): Promise<ResyncMark[]>;
}

export interface SubscriptionStore {
  /** Reads accounts with strong consistency; missing ones are absent from the map. */
  loadAccounts(customerIds: readonly string[]): Promise<Map<string, StoredAccount>>;
  commit(commit: AccountCommit): Promise<CommitResult>;
  /**
   * Commits many customers' changes, each atomically, packed into as few store
   * transactions as the store allows; results in the order of `commits`.
   */
  commitAll(commits: readonly AccountCommit[]): Promise<CommitResult[]>;
}

/** The events ledger, read back for audits, operators and the benchmark's checks. */
export interface LedgerReader {
  /** A customer's ledger pages, oldest first. */
  readLedger(customerId: string): Promise<LedgerPage[]>;
}

/** What the profile says of a user: the view, and the Stripe customer id once known. */
export interface UserLookup {
  view: UserSubscriptionView | null;
  stripeCustomerId: string | null;
  /** The profile as this lookup read it, for a commit the same request makes next. */
  profile?: ProfileViews;
}

/** The read model behind the read API. */
export interface UserViewReader {
  getUserView(userId: string): Promise<UserSubscriptionView | null>;
  /** The same one key lookup, with the customer id the read-through fallback starts from. */
  lookupUser(userId: string): Promise<UserLookup>;
}

/** Stripe's API as the read-through fallback and the resync read it. */
export interface StripeCustomerSource {
  /**
   * The customer and its subscriptions (current ones only unless `allSubscriptions`);
   * null when Stripe has no such customer or it was deleted.
   */
  customerById(
    customerId: string,
    options?: { allSubscriptions?: boolean },
  ): Promise<StripeCustomerRecord | null>;
  /** Customers whose metadata names the user (`userId` or `user_id`), with current subscriptions. */
  customersOfUser(userId: string): Promise<StripeCustomerRecord[]>;
  /** Calls are paused (the circuit is open): a call now fails at once, without a request. */
  paused?(): boolean;
}

/**
 * A user's Stripe lookup as the read route's instances share it: running (until
 * `untilMs`, when it is presumed dead), or ended without a view and remembered until
 * `untilMs` so the others answer alike: `unknown` (Stripe has no such user, 404),
 * `unavailable` (Stripe could not be asked: 503 for its Retry-After) or `rejected`
 * (Stripe refused the lookup, a 4xx: 500, for a short while).
 */
export interface LookupLease {
  state: 'running' | LeaseEndState;
  /** Epoch ms. */
  untilMs: number;
}

/** How a lookup ended without a view, remembered for the others. */
export type LeaseEndState = 'unknown' | 'unavailable' | 'rejected';

/** How the holder ends its lease: an outcome remembered until `untilMs`, or just released. */
export type LeaseOutcome = { state: LeaseEndState; untilMs: number } | { state: 'released' };

/**
 * One Stripe lookup per user at a time across every instance of the read route: a
 * Lambda instance serves one request at a time, so concurrent misses of one user run
 * in different instances, and only a shared lease makes them one Stripe call.
 */
export interface StripeLookupLeases {
  /**
   * Takes the user's lease, running until `untilMs`, unless another one is live at
   * `nowMs`: null when taken, else the live lease.
   */
  acquire(
    userId: string,
    token: string,
    nowMs: number,
    untilMs: number,
  ): Promise<LookupLease | null>;
  /** The user's lease (live or not), null when there is none. */
  read(userId: string): Promise<LookupLease | null>;
  /**
   * Ends the lease `token` holds: with how the lookup ended, remembered until
   * `untilMs`, or just released. Nothing if another instance has taken it since.
   */
  end(userId: string, token: string, outcome: LeaseOutcome): Promise<void>;
}

/**
 * Another request's Stripe lookup of this user was refused moments ago (a 4xx: a
 * request Stripe will refuse alike until something changes); answered as that request
 * answered, without asking Stripe again.
 */
export class SharedLookupRejectedError extends Error {
  constructor() {
    super('Stripe refused the lookup of this user in another request moments ago.');
    this.name = 'SharedLookupRejectedError';
  }
}

/** Stripe could not be asked (down, breaker open, key refused): the caller answers 503. */
export class StripeSourceUnavailableError extends Error {
  readonly retryAfterSeconds: number;
  /** Stripe calls are paused (the circuit is open): known and alarmed, not a new failure. */
  readonly paused: boolean;

  constructor(
    message: string,
    options?: ErrorOptions & { retryAfterSeconds?: number; paused?: boolean },
  ) {
    super(message, options);
    this.name = 'StripeSourceUnavailableError';
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 5;
    this.paused = options?.paused ?? false;
  }
}
