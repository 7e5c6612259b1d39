/**
 * The state of one payment (the aggregate stored per PaymentIntent, or per charge
 * without one), and how payment facts change it.
 *
 * Stripe delivers at least once and in any order, so every field is a join: a
 * minimum (first times), a maximum, or the value of the greatest version, where a
 * version is (event `created`, lifecycle rank, event id). A join is commutative,
 * associative and idempotent, so applying any permutation or repetition of a set of
 * facts gives the state of applying them once, in order. The read model is derived
 * from that state by `projectPayment`, never stored by hand.
 *
 * Ties within one Stripe second are broken by lifecycle rank (created < processing <
 * failed < canceled < succeeded < refund < dispute created < dispute closed), then
 * by event id: arbitrary but the same for every arrival order.
 */
import type {
  ChargeSnapshot,
  PaymentEventType,
  PaymentFact,
  RefundSnapshot,
  RefundStatus,
} from './payment-facts.ts';
import type { PaymentPurpose, PaymentStatus, PaymentView, SummaryDelta } from './ports.ts';

export interface Version {
  /** Stripe's event `created` (seconds). */
  created: number;
  /** Lifecycle rank within one second. */
  rank: number;
  eventId: string;
}

export type FactOutcome = 'applied' | 'stale';

export interface ChargeState {
  /** The charge's own `created`, once a payload with the charge object was seen. */
  created: number | null;
  /** The earliest event naming the charge: a bound on `created` when only its id is known. */
  seenAt: number;
  /** `amount_refunded` (cumulative) of the greatest-version payload of the charge. */
  snapshot: { amountRefunded: number; version: Version } | null;
  /**
   * The greatest (event `created`, rank) of the PaymentIntent payloads naming it their
   * latest charge; absent when none did. Tells a retry from the charge that failed in
   * the same second. No event id: the item must stay within 1 KB.
   */
  namedLatestAt?: NamedAt;
}

/** When a PaymentIntent payload named a charge its latest. */
export interface NamedAt {
  created: number;
  rank: number;
}

export interface RefundState {
  chargeId: string | null;
  amount: number;
  status: RefundStatus;
  /** The refund's own `created`. */
  created: number;
  /** Version of the payload these fields come from (the greatest seen). */
  version: Version;
  /**
   * The least version that showed it failed or canceled. A charge payload older than
   * that (and not older than the refund) still counted it in `amount_refunded`.
   */
  endedAt: Version | null;
}

/**
 * One payment, JSON-serialisable (stored compressed). Times are epoch seconds.
 * Records are kept with sorted keys, so equal states also serialise equally.
 */
export interface PaymentState {
  paymentId: string;
  /** The PaymentIntent's `created`, once a PaymentIntent payload was seen. */
  intentCreated: number | null;
  /** The Checkout Session's `created`: the creation time of last resort. */
  sessionCreated: number | null;
  /** From PaymentIntent or charge payloads (greatest version), else from a session. */
  details: { amount: number; currency: string; fromSession: boolean; version: Version } | null;
  customer: { id: string; version: Version } | null;
  /** Metadata beats `client_reference_id`, then the greatest version. */
  user: { id: string; fromMetadata: boolean; version: Version } | null;
  /**
   * The user linked to the customer by the subscriptions context, when no payload
   * named one: a fallback that never outranks a payload's user (see withLinkedUser).
   */
  linkedUserId: string | null;
  /**
   * The most specific seen: penalty > subscription > other. An invoice link (basil and
   * later) joins `subscription` alone: the payment stays unlisted until its own payload.
   */
  purpose: PaymentPurpose | null;
  /** From the greatest-version payload that lists any. */
  penalties: { ids: string[]; version: Version } | null;
  /** The earliest success seen; not null means succeeded, for good. */
  paidAt: number | null;
  /** The greatest-version non-success lifecycle (processing, failed, canceled). */
  lifecycle: { status: 'processing' | 'failed' | 'canceled'; version: Version } | null;
  /** The greatest-version failure (a code-less failure loses a tie to one with a code). */
  failure: { code: string | null; version: Version } | null;
  charges: Record<string, ChargeState>;
  refunds: Record<string, RefundState>;
  /** The earliest refund seen (a counting refund's `created`, or a refunded charge payload's event). */
  refundedAt: number | null;
  /** The greatest-version dispute payload. */
  dispute: {
    disputeId: string;
    status: string;
    reason: string | null;
    amount: number;
    version: Version;
  } | null;
}

const TYPE_RANK: Record<PaymentEventType, number> = {
  'payment_intent.created': 0,
  'payment_intent.processing': 1,
  'payment_intent.payment_failed': 2,
  'charge.failed': 2,
  // A PaymentIntent can be canceled after a failure, never the other way round.
  'payment_intent.canceled': 3,
  'payment_intent.succeeded': 4,
  'charge.succeeded': 4,
  'checkout.session.completed': 4,
  // Touches only the purpose, which is a join without versions.
  'invoice_payment.paid': 4,
  'charge.refunded': 5,
  'refund.created': 5,
  'refund.updated': 6,
  'charge.refund.updated': 6,
  'charge.dispute.created': 7,
  'charge.dispute.closed': 8,
};

/** Lifecycle order of a refund's statuses, to break ties within one second. */
const REFUND_STATUS_RANK: Record<RefundStatus, number> = {
  requires_action: 0,
  pending: 1,
  succeeded: 2,
  failed: 3,
  canceled: 3,
};

/** Refund statuses that count in `amountRefunded`. */
export function refundCounts(status: RefundStatus): boolean {
  return status === 'pending' || status === 'succeeded' || status === 'requires_action';
}

const PURPOSE_RANK: Record<PaymentPurpose, number> = { other: 0, subscription: 1, penalty: 2 };

/** Lexicographic order on (created, rank, eventId). */
export function compareVersions(a: Version, b: Version): number {
  if (a.created !== b.created) return a.created - b.created;
  if (a.rank !== b.rank) return a.rank - b.rank;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

export function paymentVersionOf(fact: {
  created: number;
  type: PaymentEventType;
  eventId: string;
}): Version {
  return { created: fact.created, rank: TYPE_RANK[fact.type], eventId: fact.eventId };
}

export function emptyPayment(paymentId: string): PaymentState {
  return {
    paymentId,
    intentCreated: null,
    sessionCreated: null,
    details: null,
    customer: null,
    user: null,
    linkedUserId: null,
    purpose: null,
    penalties: null,
    paidAt: null,
    lifecycle: null,
    failure: null,
    charges: {},
    refunds: {},
    refundedAt: null,
    dispute: null,
  };
}

// ---- joins: each returns `current` itself when the candidate does not change it ----

function minOf(current: number | null, candidate: number | null): number | null {
  if (candidate === null) return current;
  return current === null || candidate < current ? candidate : current;
}

/** The candidate when it is greater than `current` under `compare`, else `current`. */
function greatest<T>(current: T | null, candidate: T, compare: (a: T, b: T) => number): T {
  return current === null || compare(candidate, current) > 0 ? candidate : current;
}

const byVersion = (a: { version: Version }, b: { version: Version }) =>
  compareVersions(a.version, b.version);

function set<K extends keyof PaymentState>(
  state: PaymentState,
  key: K,
  value: PaymentState[K],
): PaymentState {
  return state[key] === value ? state : { ...state, [key]: value };
}

/** A record with one entry replaced; keys stay sorted so equal states serialise equally. */
function withEntry<T>(record: Record<string, T>, key: string, value: T): Record<string, T> {
  if (key in record) return { ...record, [key]: value };
  const keys = [...Object.keys(record), key].sort();
  const next: Record<string, T> = {};
  for (const k of keys) next[k] = k === key ? value : (record[k] as T);
  return next;
}

function joinCharge(
  state: PaymentState,
  chargeId: string,
  seenAt: number,
  created: number | null,
  snapshot: ChargeState['snapshot'],
  namedAt: NamedAt | null = null,
): PaymentState {
  const current = state.charges[chargeId];
  const named =
    namedAt === null
      ? (current?.namedLatestAt ?? null)
      : greatest(current?.namedLatestAt ?? null, namedAt, compareNamedAt);
  const next: ChargeState = {
    ...(current
      ? {
          created: minOf(current.created, created),
          seenAt: Math.min(current.seenAt, seenAt),
          snapshot:
            snapshot === null ? current.snapshot : greatest(current.snapshot, snapshot, bySnapshot),
        }
      : { created, seenAt, snapshot }),
    // Absent rather than null: charges stored before it read the same.
    ...(named === null ? {} : { namedLatestAt: named }),
  };
  if (
    current &&
    current.created === next.created &&
    current.seenAt === next.seenAt &&
    current.snapshot === next.snapshot &&
    current.namedLatestAt === next.namedLatestAt
  )
    return state;
  return { ...state, charges: withEntry(state.charges, chargeId, next) };
}

function compareNamedAt(a: NamedAt, b: NamedAt): number {
  return a.created - b.created || a.rank - b.rank;
}

/**
 * Charge payloads by version; within one second and rank the larger `amount_refunded`
 * wins (refunds only add up until one fails, which is later).
 */
function bySnapshot(
  a: NonNullable<ChargeState['snapshot']>,
  b: NonNullable<ChargeState['snapshot']>,
) {
  if (a.version.created !== b.version.created) return a.version.created - b.version.created;
  if (a.version.rank !== b.version.rank) return a.version.rank - b.version.rank;
  if (a.amountRefunded !== b.amountRefunded) return a.amountRefunded - b.amountRefunded;
  return compareVersions(a.version, b.version);
}

/** Refund payloads by event time, then the refund's own lifecycle, then the version. */
function byRefundPayload(
  a: { status: RefundStatus; version: Version },
  b: { status: RefundStatus; version: Version },
) {
  if (a.version.created !== b.version.created) return a.version.created - b.version.created;
  const byStatus = REFUND_STATUS_RANK[a.status] - REFUND_STATUS_RANK[b.status];
  return byStatus !== 0 ? byStatus : compareVersions(a.version, b.version);
}

function minVersion(current: Version | null, candidate: Version | null): Version | null {
  if (candidate === null) return current;
  return current === null || compareVersions(candidate, current) < 0 ? candidate : current;
}

function joinRefund(state: PaymentState, refund: RefundSnapshot, version: Version): PaymentState {
  const current = state.refunds[refund.refundId];
  const counts = refundCounts(refund.status);
  const endedAt = minVersion(current?.endedAt ?? null, counts ? null : version);
  const wins = !current || byRefundPayload({ status: refund.status, version }, current) > 0;
  // A refund's charge never changes, but a payload may omit it (`charge` null): keep
  // it once any payload named it, or the refund counts beside its charge's total too.
  const chargeId = current?.chargeId ?? refund.chargeId;
  let next = state;
  if (wins || endedAt !== current.endedAt || chargeId !== current.chargeId) {
    const entry: RefundState = wins
      ? {
          chargeId,
          amount: refund.amount,
          status: refund.status,
          created: refund.created,
          version,
          endedAt,
        }
      : { ...current, chargeId, endedAt };
    next = { ...next, refunds: withEntry(next.refunds, refund.refundId, entry) };
  }
  if (counts) next = set(next, 'refundedAt', minOf(next.refundedAt, refund.created));
  return next;
}

function joinChargeSnapshot(
  state: PaymentState,
  charge: ChargeSnapshot,
  version: Version,
): PaymentState {
  let next = joinCharge(state, charge.chargeId, version.created, charge.created, {
    amountRefunded: charge.amountRefunded,
    version,
  });
  // Paid no later than the event showing the charge succeeded: not the charge's own
  // `created`, which an async payment (ACH, SEPA) has days before it succeeds.
  if (charge.status === 'succeeded')
    next = set(next, 'paidAt', minOf(next.paidAt, version.created));
  if (charge.amountRefunded > 0)
    next = set(next, 'refundedAt', minOf(next.refundedAt, version.created));
  for (const refund of charge.refunds)
    next = joinRefund(next, { ...refund, chargeId: charge.chargeId }, version);
  return next;
}

function joinDetails(
  state: PaymentState,
  amount: number,
  currency: string,
  fromSession: boolean,
  version: Version,
): PaymentState {
  const candidate = { amount, currency, fromSession, version };
  // PaymentIntent and charge payloads beat a session's `amount_total`, then by version.
  const winner = greatest(state.details, candidate, (a, b) =>
    a.fromSession !== b.fromSession
      ? a.fromSession
        ? -1
        : 1
      : compareVersions(a.version, b.version),
  );
  return set(state, 'details', winner);
}

function joinPurpose(state: PaymentState, purpose: PaymentPurpose | null): PaymentState {
  if (purpose === null) return state;
  const current = state.purpose;
  return current !== null && PURPOSE_RANK[current] >= PURPOSE_RANK[purpose]
    ? state
    : set(state, 'purpose', purpose);
}

function joinPenalties(state: PaymentState, ids: string[], version: Version): PaymentState {
  if (ids.length === 0) return state;
  return set(state, 'penalties', greatest(state.penalties, { ids, version }, byVersion));
}

function joinIdentity(state: PaymentState, fact: PaymentFact, version: Version): PaymentState {
  let next = state;
  if (fact.customerId !== null) {
    const candidate = { id: fact.customerId, version };
    next = set(next, 'customer', greatest(next.customer, candidate, byVersion));
  }
  if (fact.userId !== null) {
    const fromMetadata = fact.kind !== 'checkout' || fact.userIdFromMetadata;
    const candidate = { id: fact.userId, fromMetadata, version };
    const winner = greatest(next.user, candidate, (a, b) =>
      a.fromMetadata !== b.fromMetadata ? (a.fromMetadata ? 1 : -1) : byVersion(a, b),
    );
    next = set(next, 'user', winner);
  }
  return next;
}

function joinSuccess(state: PaymentState, at: number): PaymentState {
  return set(state, 'paidAt', minOf(state.paidAt, at));
}

function joinLifecycle(
  state: PaymentState,
  status: 'processing' | 'failed' | 'canceled',
  version: Version,
  failureCode: string | null,
): PaymentState {
  let next = set(state, 'lifecycle', greatest(state.lifecycle, { status, version }, byVersion));
  if (status === 'failed') {
    const candidate = { code: failureCode, version };
    const winner = greatest(next.failure, candidate, (a, b) => {
      const byTime = a.version.created - b.version.created || a.version.rank - b.version.rank;
      if (byTime !== 0) return byTime;
      if ((a.code === null) !== (b.code === null)) return a.code === null ? -1 : 1;
      return compareVersions(a.version, b.version);
    });
    next = set(next, 'failure', winner);
  }
  return next;
}

/**
 * Applies one fact without mutating the state. `stale` means the fact changed
 * nothing: a duplicate, or older than everything it touches.
 */
export function applyPaymentFact(
  state: PaymentState,
  fact: PaymentFact,
): { state: PaymentState; outcome: FactOutcome } {
  if (fact.paymentId !== state.paymentId)
    throw new Error(`fact of ${fact.paymentId} applied to payment ${state.paymentId}`);
  const version = paymentVersionOf(fact);
  let next = joinIdentity(state, fact, version);

  switch (fact.kind) {
    case 'payment_intent': {
      next = set(next, 'intentCreated', minOf(next.intentCreated, fact.intentCreated));
      next = joinDetails(next, fact.details.amount, fact.details.currency, false, version);
      next = joinPurpose(next, fact.details.purpose);
      next = joinPenalties(next, fact.details.penaltyIds, version);
      if (fact.outcome === 'succeeded') next = joinSuccess(next, fact.created);
      else next = joinLifecycle(next, fact.outcome, version, fact.failureCode);
      for (const charge of fact.charges) next = joinChargeSnapshot(next, charge, version);
      if (fact.latestChargeId !== null) {
        const namedAt = { created: version.created, rank: version.rank };
        next = joinCharge(next, fact.latestChargeId, fact.created, null, null, namedAt);
      }
      break;
    }
    case 'charge': {
      next = joinDetails(next, fact.details.amount, fact.details.currency, false, version);
      next = joinPurpose(next, fact.details.purpose);
      next = joinPenalties(next, fact.details.penaltyIds, version);
      if (fact.outcome === 'succeeded') next = joinSuccess(next, fact.created);
      else next = joinLifecycle(next, 'failed', version, fact.charge.failureCode);
      next = joinChargeSnapshot(next, fact.charge, version);
      break;
    }
    case 'refund': {
      // Only a succeeded charge can be refunded.
      next = joinSuccess(next, fact.created);
      next = joinRefund(next, fact.refund, version);
      if (fact.refund.chargeId !== null)
        next = joinCharge(next, fact.refund.chargeId, fact.created, null, null);
      break;
    }
    case 'dispute': {
      // Only a succeeded charge can be disputed.
      next = joinSuccess(next, fact.created);
      if (fact.chargeId !== null) next = joinCharge(next, fact.chargeId, fact.created, null, null);
      const candidate = {
        disputeId: fact.disputeId,
        status: fact.status,
        reason: fact.reason,
        amount: fact.amount,
        version,
      };
      next = set(next, 'dispute', greatest(next.dispute, candidate, byVersion));
      break;
    }
    case 'checkout': {
      next = set(next, 'sessionCreated', minOf(next.sessionCreated, fact.sessionCreated));
      if (fact.amount !== null && fact.currency !== null)
        next = joinDetails(next, fact.amount, fact.currency, true, version);
      next = joinPurpose(next, fact.purpose);
      next = joinPenalties(next, fact.penaltyIds, version);
      if (fact.paid) next = joinSuccess(next, fact.created);
      break;
    }
    case 'invoice_link':
      // Only the purpose: the InvoicePayment's amount and status are the invoice's view
      // of the payment, and its own events tell both.
      next = joinPurpose(next, 'subscription');
      break;
  }
  return next === state ? { state, outcome: 'stale' } : { state: next, outcome: 'applied' };
}

/** The reference semantics: apply each fact once, in order. Used by tests and the benchmark. */
export function foldPaymentFacts(paymentId: string, facts: readonly PaymentFact[]): PaymentState {
  let state = emptyPayment(paymentId);
  for (const fact of facts) state = applyPaymentFact(state, fact).state;
  return state;
}

/** Every charge id the payment knows: each gets a `ch_…` → payment pointer. */
export function knownChargeIds(state: PaymentState): string[] {
  return Object.keys(state.charges);
}

/**
 * The latest charge: greatest (time, named, known, id), where time is the charge's
 * own `created`, or for a charge known only by id (a `latest_charge` string, a
 * refund's or dispute's `charge`) the earliest event that named it, which is no
 * earlier than its creation. At equal time (a retry in the second its charge failed)
 * the charge a newer PaymentIntent payload named latest wins, then one with a known
 * `created`.
 */
export function latestChargeId(state: PaymentState): string | null {
  let best: { id: string; time: number; named: NamedAt | null; known: number } | null = null;
  for (const [id, charge] of Object.entries(state.charges)) {
    const candidate = {
      id,
      time: charge.created ?? charge.seenAt,
      named: charge.namedLatestAt ?? null,
      known: charge.created === null ? 0 : 1,
    };
    const newer =
      best === null ||
      (candidate.time - best.time ||
        compareNamed(candidate.named, best.named) ||
        candidate.known - best.known ||
        (id > best.id ? 1 : -1)) > 0;
    if (newer) best = candidate;
  }
  return best?.id ?? null;
}

/** Named beats never named; then the later naming. */
function compareNamed(a: NamedAt | null, b: NamedAt | null): number {
  if (a === null || b === null) return (a === null ? 0 : 1) - (b === null ? 0 : 1);
  return compareNamedAt(a, b);
}

/**
 * Refunded amount. Per charge, the larger of (a) the refunds known one by one that
 * still count and (b) the charge's latest cumulative `amount_refunded`, less the
 * refunds it still counted that have failed or been canceled since. (b) covers
 * refunds known only through the charge (no refund event seen); (a) covers refunds
 * newer than the latest charge payload.
 */
export function amountRefunded(state: PaymentState): number {
  const bySum = new Map<string, number>();
  for (const refund of Object.values(state.refunds)) {
    const key = refund.chargeId ?? '';
    bySum.set(key, (bySum.get(key) ?? 0) + (refundCounts(refund.status) ? refund.amount : 0));
  }
  let total = 0;
  for (const [chargeId, charge] of Object.entries(state.charges)) {
    const snapshot = charge.snapshot;
    let fromCharge = 0;
    if (snapshot !== null) {
      fromCharge = snapshot.amountRefunded;
      for (const refund of Object.values(state.refunds)) {
        if (
          refund.chargeId === chargeId &&
          !refundCounts(refund.status) &&
          refund.endedAt !== null &&
          refund.created <= snapshot.version.created &&
          compareVersions(refund.endedAt, snapshot.version) > 0
        )
          fromCharge -= refund.amount;
      }
    }
    total += Math.max(bySum.get(chargeId) ?? 0, fromCharge, 0);
    bySum.delete(chargeId);
  }
  for (const sum of bySum.values()) total += sum;
  return total;
}

function earliestChargeCreated(state: PaymentState): number | null {
  let earliest: number | null = null;
  for (const charge of Object.values(state.charges)) earliest = minOf(earliest, charge.created);
  return earliest;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * The state with `userId` as its customer's linked user, when no payload named a user
 * and none was linked yet; else `state` itself. A link is looked up when the payment
 * is written, so a payment recorded before its customer was linked stays without a
 * user until a later event of it (or a resync).
 */
export function withLinkedUser(state: PaymentState, userId: string | undefined): PaymentState {
  if (!userId || state.user !== null || state.linkedUserId !== null) return state;
  return { ...state, linkedUserId: userId };
}

/**
 * The read model (`GET /payments/{id}`), or null while no PaymentIntent, charge or
 * session payload has told the payment's amount and currency (e.g. only a refund,
 * dispute or invoice link has arrived so far).
 */
export function projectPayment(state: PaymentState): PaymentView | null {
  const details = state.details;
  if (details === null) return null;
  const created = state.intentCreated ?? earliestChargeCreated(state) ?? state.sessionCreated;
  if (created === null) return null;
  const refunded = amountRefunded(state);
  const base: PaymentStatus =
    state.paidAt !== null ? 'succeeded' : (state.lifecycle?.status ?? 'processing');
  const status: PaymentStatus =
    state.dispute !== null
      ? 'disputed'
      : refunded > 0 && refunded >= details.amount
        ? 'refunded'
        : refunded > 0
          ? 'partially_refunded'
          : base;
  return {
    paymentId: state.paymentId,
    chargeId: latestChargeId(state),
    userId: state.user?.id ?? state.linkedUserId ?? null,
    customerId: state.customer?.id ?? null,
    amount: details.amount,
    amountRefunded: refunded,
    currency: details.currency,
    status,
    purpose: state.purpose ?? 'other',
    penaltyIds: state.penalties ? [...state.penalties.ids] : [],
    createdAt: iso(created),
    paidAt: state.paidAt === null ? null : iso(state.paidAt),
    refundedAt: state.refundedAt === null ? null : iso(state.refundedAt),
    failureCode: status === 'failed' ? (state.failure?.code ?? null) : null,
    dispute: state.dispute
      ? { status: state.dispute.status, reason: state.dispute.reason, amount: state.dispute.amount }
      : null,
  };
}

/**
 * The daily summary changes between two views of one payment: it leaves the bucket
 * (created UTC date, status, currency) of `before` and joins the one of `after`,
 * with its gross amount. One row per bucket touched (so a store may apply each as
 * one atomic add); [] when nothing moved.
 */
export function summaryDelta(
  before: PaymentView | null,
  after: PaymentView | null,
): SummaryDelta[] {
  const rows: SummaryDelta[] = [];
  const add = (view: PaymentView | null, sign: 1 | -1) => {
    if (view === null) return;
    const date = view.createdAt.slice(0, 10);
    let row = rows.find(
      (r) => r.date === date && r.status === view.status && r.currency === view.currency,
    );
    if (!row) {
      row = { date, status: view.status, currency: view.currency, count: 0, amount: 0 };
      rows.push(row);
    }
    row.count += sign;
    row.amount += sign * view.amount;
  };
  add(before, -1);
  add(after, 1);
  return rows.filter((row) => row.count !== 0 || row.amount !== 0);
}
