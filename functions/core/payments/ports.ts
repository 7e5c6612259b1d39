/**
 * Ports of the payments context: what its use cases need from storage, and the read
 * model the payment routes (DESIGN §8.1) answer from. Adapters implement them.
 */
import type { CommitResult } from '../shared/event-batch.ts';
import type { LedgerEvent } from '../shared/event-ledger.ts';
import { InvalidCursorError, type Page } from '../shared/paging.ts';
import type { PaymentState } from './payment-state.ts';

export { type CommitResult, InvalidCursorError, type Page };

export const PAYMENT_STATUSES = [
  'processing',
  'succeeded',
  'failed',
  'canceled',
  'partially_refunded',
  'refunded',
  'disputed',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** The statuses a payment with a `paidAt` can have (the fold derives them from its success). */
export const PAID_STATUSES = [
  'succeeded',
  'partially_refunded',
  'refunded',
  'disputed',
] as const satisfies readonly PaymentStatus[];

export type PaymentPurpose = 'penalty' | 'subscription' | 'other';

export interface DisputeView {
  status: string;
  reason: string | null;
  amount: number;
}

/** One payment exactly as `GET /payments/{id}` answers it (DESIGN §8.1). */
export interface PaymentView {
  /** The PaymentIntent id (`pi_…`), or the charge id (`ch_…`) of a charge without one. */
  paymentId: string;
  /** The latest charge, when one is known. */
  chargeId: string | null;
  userId: string | null;
  customerId: string | null;
  /** Minor units. */
  amount: number;
  amountRefunded: number;
  /** Lower-case ISO currency. */
  currency: string;
  status: PaymentStatus;
  purpose: PaymentPurpose;
  penaltyIds: string[];
  /** ISO 8601 UTC: the PaymentIntent's `created` (the charge's for a charge without one). */
  createdAt: string;
  /** ISO 8601 UTC: when it first succeeded, else null. */
  paidAt: string | null;
  /** ISO 8601 UTC: when a refund first appeared, else null. */
  refundedAt: string | null;
  /** The last failure's code while the status is `failed`, else null. */
  failureCode: string | null;
  dispute: DisputeView | null;
}

/**
 * A change to the daily summary: add `count` and `amount` to the bucket of the
 * payments created on `date` (UTC) with this status and currency. Counts may be
 * negative (a payment leaving a bucket).
 */
export interface SummaryDelta {
  date: string;
  status: PaymentStatus;
  currency: string;
  count: number;
  amount: number;
}

export interface DailySummaryRow {
  status: PaymentStatus;
  gateway: 'stripe';
  currency: string;
  count: number;
  amount: number;
}

/** A payment as stored, with the revision used for optimistic concurrency. */
export interface StoredPayment {
  state: PaymentState;
  /** 0 when the payment does not exist yet. */
  revision: number;
  /** Fingerprints of the last events recorded for it, oldest first (see event-ledger.ts). */
  recentEvents: string[];
}

/** Everything one payment's events change, committed atomically or not at all. */
export interface PaymentCommit {
  paymentId: string;
  /** Revision read before folding; the commit fails if someone else wrote since. */
  expectedRevision: number;
  state: PaymentState;
  /**
   * The read model after this commit: the item's attributes and its index keys. Null
   * while the payment's own events have not arrived (only a refund, dispute or invoice
   * link of it so far): it is stored, but not listed or counted until its amount is known.
   */
  view: PaymentView | null;
  recentEvents: string[];
  ledger: { appliedAt: number; events: LedgerEvent[] };
  /** Daily summary changes this commit makes (empty when the bucket did not move). */
  summary: SummaryDelta[];
  /** Charge ids first seen in this commit: a `ch_…` → payment pointer is written for each. */
  newChargeIds: string[];
}

export interface PaymentStore {
  /** Reads payments with strong consistency; missing ones are absent from the map. */
  loadPayments(paymentIds: readonly string[]): Promise<Map<string, StoredPayment>>;
  commit(commit: PaymentCommit): Promise<CommitResult>;
  /**
   * Commits many payments, each atomically, packed into few transactions; results in
   * order. A payment named twice gets what two `commit` calls in that order would give.
   */
  commitAll(commits: readonly PaymentCommit[]): Promise<CommitResult[]>;
}

/** The customer → user link the subscription context keeps (read-only here). */
export interface CustomerDirectory {
  /** The linked user of each known customer; unknown or unlinked customers are absent. */
  userIdsOf(customerIds: readonly string[]): Promise<Map<string, string>>;
}

export interface UserPaymentsQuery {
  userId: string;
  status?: PaymentStatus;
  /** 1–100. */
  limit: number;
  cursor?: string;
}

export interface RefundsQuery {
  /** `YYYY-MM-DD`, inclusive. */
  from: string;
  /** `YYYY-MM-DD`, inclusive. */
  to: string;
  limit: number;
  cursor?: string;
}

export interface PaidPaymentsQuery {
  status: PaymentStatus;
  /** `YYYY-MM-DD`, inclusive. */
  paidFrom: string;
  /** `YYYY-MM-DD`, inclusive. */
  paidTo: string;
  limit: number;
  cursor?: string;
}

/**
 * Whether the suite knows a user: a profile exists (the subscription context writes it).
 * A payment names its user in Stripe metadata, with or without a profile, so a user's
 * history is unknown (404) only when it is empty and there is no profile either.
 */
export interface UserProfiles {
  exists(userId: string): Promise<boolean>;
}

/**
 * The read side behind the payment routes: every method is a key lookup or an index
 * query, never a scan. Cursors are opaque and bound to their query: one issued for
 * another query (another user, status or range) throws InvalidCursorError.
 */
export interface PaymentQueries {
  /** By `pi_…` or `ch_…` id (a charge of a PaymentIntent resolves to its payment). */
  getPayment(id: string): Promise<PaymentView | null>;
  /** Newest `createdAt` first. */
  listUserPayments(query: UserPaymentsQuery): Promise<Page<PaymentView>>;
  /** Refunded and partially refunded payments by `refundedAt` in range, oldest first. */
  listRefunds(query: RefundsQuery): Promise<Page<PaymentView>>;
  /** Payments of one status by `paidAt` in range, oldest first. */
  listPaid(query: PaidPaymentsQuery): Promise<Page<PaymentView>>;
  /** The pre-aggregated rows of payments created that UTC day; zero rows omitted. */
  dailySummary(date: string): Promise<DailySummaryRow[]>;
}
