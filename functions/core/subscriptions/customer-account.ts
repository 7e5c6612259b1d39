/**
 * The subscription state of one Stripe customer, and how events change it.
 *
 * Every object (the customer→user link, each subscription, each subscription's
 * latest invoice) keeps the version of the event that last set it. An event only
 * wins when its version is greater, so applying a set of events gives the same
 * state whatever their order or repetition: state is the maximum under a total
 * order, and the maximum does not depend on arrival order. Ties within one Stripe
 * second are broken by lifecycle rank (created < updated < deleted), then by event
 * id, so they too resolve the same way for every order.
 */

import { type Tier, tierRank } from '../shared/tiers.ts';
import type {
  EventStamp,
  InvoiceFact,
  SubscriptionEventFact,
  SubscriptionPrevious,
  SubscriptionSnapshot,
  SubscriptionStatus,
} from './subscription-facts.ts';

export interface Version {
  /** Stripe's event `created` (seconds). */
  created: number;
  /** Lifecycle rank within one second. */
  rank: number;
  eventId: string;
}

export interface SubscriptionState extends SubscriptionSnapshot {
  version: Version;
  /** The update's previous values, kept to place a later same-second update against it. */
  previous?: SubscriptionPrevious | null;
  /** Every update of `version`'s second and rank seen, by event id, when there was more than one. */
  peers?: TiedUpdate[];
}

/** One update of a tied second: its state, what it replaced, and its event. */
export interface TiedUpdate extends SubscriptionSnapshot {
  eventId: string;
  previous: SubscriptionPrevious | null;
}

export interface InvoiceState {
  invoiceId: string;
  invoiceCreated: number;
  outcome: InvoiceFact['outcome'];
  amountCents: number;
  currency: string | null;
  version: Version;
}

export interface CustomerAccount {
  customerId: string;
  userId: string | null;
  linkVersion: Version | null;
  customerVersion: Version | null;
  subscriptions: Record<string, SubscriptionState>;
  /** Latest invoice per subscription id ('' for invoices without a subscription). */
  invoices: Record<string, InvoiceState>;
  /**
   * Subscriptions whose last same-second updates the payloads could not order, with
   * that second: their state may be wrong until a resync (or a later event) settles it.
   */
  unresolvedTies?: Record<string, number>;
}

export type FactOutcome = 'applied' | 'stale';

/** Statuses after which a Stripe subscription can never become live again. */
const TERMINAL_STATUSES: ReadonlySet<SubscriptionStatus> = new Set([
  'canceled',
  'incomplete_expired',
]);
/** Statuses that grant the subscription's tier; past_due keeps access while Stripe retries. */
const ENTITLED_STATUSES: ReadonlySet<SubscriptionStatus> = new Set([
  'active',
  'trialing',
  'past_due',
]);

export function isTerminal(status: SubscriptionStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

export function isEntitled(status: SubscriptionStatus): boolean {
  return ENTITLED_STATUSES.has(status);
}

/** Lexicographic order on (created, rank, eventId). */
export function compareVersions(a: Version, b: Version): number {
  if (a.created !== b.created) return a.created - b.created;
  if (a.rank !== b.rank) return a.rank - b.rank;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

function isNewer(candidate: Version, current: Version | null): boolean {
  return current === null || compareVersions(candidate, current) > 0;
}

const TYPE_RANK: Record<string, number> = {
  // A snapshot read from Stripe's API: before every event of its own second (snapshotFacts).
  'stripe.snapshot': -1,
  'customer.created': 0,
  'customer.subscription.created': 0,
  'checkout.session.completed': 1,
  'customer.updated': 1,
  'customer.subscription.updated': 1,
  'invoice.payment_failed': 1,
  'invoice.paid': 2,
  'customer.subscription.deleted': 2,
};

export function versionOf(stamp: EventStamp & { type: string }): Version {
  return { created: stamp.created, rank: TYPE_RANK[stamp.type] ?? 1, eventId: stamp.eventId };
}

/**
 * Where a subscription event leaves the stored state: `replace` with a newer (or final)
 * state, `keep` the stored one, or `tie`: an update of the same second and lifecycle
 * rank as the stored one, placed among all that second's updates (settleTie).
 */
function placeSubscription(
  candidate: SubscriptionState,
  current: SubscriptionState | undefined,
): 'replace' | 'keep' | 'tie' {
  if (!current) return 'replace';
  const candidateTerminal = isTerminal(candidate.status);
  const currentTerminal = isTerminal(current.status);
  if (candidateTerminal !== currentTerminal) return candidateTerminal ? 'replace' : 'keep';
  const { version: a } = candidate;
  const { version: b } = current;
  if (a.created === b.created && a.rank === b.rank) return 'tie';
  return isNewer(a, b) ? 'replace' : 'keep';
}

/** The snapshot fields `previous_attributes` can name. */
const PLACED_FIELDS = ['status', 'cancelAtPeriodEnd', 'currentPeriodEnd', 'priceIds'] as const;

/**
 * Whether `later` directly follows `earlier`: the values `later` replaced are
 * `earlier`'s, and every field it did not change equals `earlier`'s.
 */
function follows(later: TiedUpdate, earlier: TiedUpdate): boolean {
  const previous = later.previous;
  if (!previous) return false;
  return PLACED_FIELDS.every((field) => {
    const before = field in previous ? previous[field] : later[field];
    return JSON.stringify(before) === JSON.stringify(earlier[field]);
  });
}

function sameSnapshot(a: SubscriptionSnapshot, b: SubscriptionSnapshot): boolean {
  return (
    a.status === b.status &&
    a.tier === b.tier &&
    a.cancelAtPeriodEnd === b.cancelAtPeriodEnd &&
    a.currentPeriodEnd === b.currentPeriodEnd &&
    a.createdAt === b.createdAt &&
    JSON.stringify(a.priceIds) === JSON.stringify(b.priceIds)
  );
}

function tiedUpdateOf(state: SubscriptionState): TiedUpdate {
  const { version, previous, peers: _peers, ...snapshot } = state;
  return { ...snapshot, eventId: version.eventId, previous: previous ?? null };
}

/**
 * The last of one second's updates of a subscription, from the whole set seen so far
 * (so the answer does not depend on arrival order): the one no other update follows.
 * Unresolved when there is no such update or several with different states (no
 * previous attributes, or A→B→A); the greatest event id is then kept, deterministic
 * but unproven, and the caller marks the subscription for a resync.
 */
function settleTie(peers: readonly TiedUpdate[]): { last: TiedUpdate; resolved: boolean } {
  const byId = [...peers].sort((a, b) => (a.eventId < b.eventId ? -1 : 1));
  const sinks = byId.filter((x) => !byId.some((y) => y !== x && follows(y, x)));
  const pool = sinks.length > 0 ? sinks : byId;
  const last = pool.at(-1)!;
  return { last, resolved: pool.every((update) => sameSnapshot(update, last)) };
}

/**
 * A later invoice (by the invoice's own `created`) supersedes an earlier one; events
 * of the same invoice follow the event version (a retried payment that succeeds
 * after failing ends `paid`).
 */
function invoiceWins(
  fact: InvoiceFact,
  version: Version,
  current: InvoiceState | undefined,
): boolean {
  if (!current) return true;
  if (fact.invoiceCreated !== current.invoiceCreated)
    return fact.invoiceCreated > current.invoiceCreated;
  return isNewer(version, current.version);
}

export function emptyAccount(customerId: string): CustomerAccount {
  return {
    customerId,
    userId: null,
    linkVersion: null,
    customerVersion: null,
    subscriptions: {},
    invoices: {},
  };
}

/**
 * Applies one fact to an account without mutating it. `stale` means the event is
 * older than what every object it touches already holds: recorded, not applied.
 */
export function applyFact(
  account: CustomerAccount,
  fact: SubscriptionEventFact,
): { account: CustomerAccount; outcome: FactOutcome } {
  const version = versionOf(fact);
  let next = account;
  let changed = false;

  if ('userId' in fact && fact.userId !== null && isNewer(version, next.linkVersion)) {
    next = { ...next, userId: fact.userId, linkVersion: version };
    changed = true;
  }

  switch (fact.kind) {
    case 'customer':
    case 'checkout-completed':
      if (isNewer(version, next.customerVersion)) {
        next = { ...next, customerVersion: version };
        changed = true;
      }
      break;
    case 'subscription': {
      const step = applySubscriptionFact(next, fact, version);
      if (step) {
        next = step;
        changed = true;
      }
      break;
    }
    case 'invoice': {
      const key = fact.subscriptionId ?? '';
      if (invoiceWins(fact, version, next.invoices[key])) {
        next = {
          ...next,
          invoices: {
            ...next.invoices,
            [key]: {
              invoiceId: fact.invoiceId,
              invoiceCreated: fact.invoiceCreated,
              outcome: fact.outcome,
              amountCents: fact.amountCents,
              currency: fact.currency,
              version,
            },
          },
        };
        changed = true;
      }
      break;
    }
  }
  return { account: next, outcome: changed ? 'applied' : 'stale' };
}

/** The account after a subscription fact, or null when the fact changes nothing. */
function applySubscriptionFact(
  account: CustomerAccount,
  fact: Extract<SubscriptionEventFact, { kind: 'subscription' }>,
  version: Version,
): CustomerAccount | null {
  const id = fact.snapshot.subscriptionId;
  const current = account.subscriptions[id];
  const candidate: SubscriptionState = { ...fact.snapshot, version, previous: fact.previous };
  const placement = placeSubscription(candidate, current);
  if (placement === 'keep') return null;
  let state: SubscriptionState = candidate;
  let resolved = true;
  if (placement === 'tie' && current) {
    const peers = current.peers ?? [tiedUpdateOf(current)];
    if (peers.some((peer) => peer.eventId === version.eventId)) return null; // seen already
    const all = [...peers, tiedUpdateOf(candidate)].sort((a, b) =>
      a.eventId < b.eventId ? -1 : 1,
    );
    const settled = settleTie(all);
    resolved = settled.resolved;
    const { eventId, previous, ...snapshot } = settled.last;
    state = { ...snapshot, version: { ...version, eventId }, previous, peers: all };
  }
  const ties = { ...account.unresolvedTies };
  if (resolved) delete ties[id];
  else ties[id] = version.created;
  const { unresolvedTies: _old, ...rest } = account;
  return {
    ...rest,
    subscriptions: { ...account.subscriptions, [id]: state },
    ...(Object.keys(ties).length > 0 ? { unresolvedTies: ties } : {}),
  };
}

/** What the read API serves and the profile item stores. */
export interface UserSubscriptionView {
  userId: string;
  tier: Tier;
  status: SubscriptionStatus | 'none';
  stripeCustomerId: string;
  subscriptionId: string | null;
  priceId: string | null;
  /** Epoch seconds, or null when unknown or no subscription. */
  currentPeriodEnd: number | null;
  cancelAtPeriodEnd: boolean;
  latestInvoiceOutcome: InvoiceFact['outcome'] | null;
}

/**
 * The user's current subscription: the best-tier entitled one (newest on a tie),
 * else the most recently created one, so a lapsed user still sees why they are free.
 */
export function currentSubscription(account: CustomerAccount): SubscriptionState | null {
  let best: SubscriptionState | null = null;
  for (const candidate of Object.values(account.subscriptions)) {
    if (best === null || ranksAbove(candidate, best)) best = candidate;
  }
  return best;
}

function ranksAbove(a: SubscriptionState, b: SubscriptionState): boolean {
  const aEntitled = isEntitled(a.status);
  const bEntitled = isEntitled(b.status);
  if (aEntitled !== bEntitled) return aEntitled;
  if (aEntitled) {
    const byTier = tierRank(a.tier) - tierRank(b.tier);
    if (byTier !== 0) return byTier > 0;
  }
  if (a.createdAt !== b.createdAt) return a.createdAt > b.createdAt;
  return a.subscriptionId > b.subscriptionId;
}

/** The user's view, or null while the customer is not linked to a user. */
export function projectUserView(account: CustomerAccount): UserSubscriptionView | null {
  if (account.userId === null) return null;
  const current = currentSubscription(account);
  return {
    userId: account.userId,
    tier: current && isEntitled(current.status) ? current.tier : 'free',
    status: current?.status ?? 'none',
    stripeCustomerId: account.customerId,
    subscriptionId: current?.subscriptionId ?? null,
    priceId: current?.priceIds[0] ?? null,
    currentPeriodEnd: current?.currentPeriodEnd ?? null,
    cancelAtPeriodEnd: current?.cancelAtPeriodEnd ?? false,
    latestInvoiceOutcome: current
      ? (account.invoices[current.subscriptionId]?.outcome ?? null)
      : null,
  };
}

export function sameView(a: UserSubscriptionView | null, b: UserSubscriptionView | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The reference semantics: apply each fact once, in order. Used by tests and the benchmark. */
export function foldFacts(
  customerId: string,
  facts: readonly SubscriptionEventFact[],
): CustomerAccount {
  let account = emptyAccount(customerId);
  for (const fact of facts) account = applyFact(account, fact).account;
  return account;
}
