/**
 * In-memory payments store, queries and customer directory with the same semantics
 * as the DynamoDB adapters (a contract suite runs against both): revision conflicts,
 * charge pointers, sparse reports, query-bound cursors (same codec), summaries that
 * move with a payment's status. For unit and property tests that need thousands of runs.
 */

import { commitInRounds } from '../../core/payments/commit-rounds.ts';
import {
  type CommitResult,
  type CustomerDirectory,
  type DailySummaryRow,
  InvalidCursorError,
  type Page,
  type PaidPaymentsQuery,
  type PaymentCommit,
  type PaymentQueries,
  type PaymentStatus,
  type PaymentStore,
  type PaymentView,
  type RefundsQuery,
  type StoredPayment,
  type UserPaymentsQuery,
} from '../../core/payments/ports.ts';
import { asError } from '../../core/shared/errors.ts';
import type { LedgerEvent } from '../../core/shared/event-ledger.ts';
import { cursorCodec, daysBetween, parseTimeKey } from '../paging/query-cursor.ts';

/** One commit's ledger page: the events it recorded. */
export interface PaymentLedgerPage {
  paymentId: string;
  revision: number;
  appliedAt: number;
  events: LedgerEvent[];
}

/** Where a fault can be injected. */
export type PaymentStoreFaultPoint =
  | { operation: 'commit'; commit: PaymentCommit }
  | {
      operation:
        | 'loadPayments'
        | 'getPayment'
        | 'listUserPayments'
        | 'listRefunds'
        | 'listPaid'
        | 'dailySummary'
        | 'userIdsOf';
    };

/**
 * Fault injection: called before every operation. For a commit, return a result to
 * force it (nothing of the commit is written) or throw to make it `failed`; for a
 * read, throw to make it reject. Return undefined to proceed.
 */
export type PaymentStoreFault = (point: PaymentStoreFaultPoint) => CommitResult | undefined;

export interface InMemoryPaymentStoreOptions {
  /**
   * `true` behaves like one DynamoDB transaction for all commits of a `commitAll` (one
   * per round when a payment repeats): if one is refused, the others are `aborted`; if
   * one fails, all fail. Default: each commit stands alone.
   */
  packed?: boolean;
  fault?: PaymentStoreFault;
}

/** Reports read more than this many days in one call (as the DynamoDB adapter). */
export const MAX_REPORT_DAYS = 366;

interface StoredRecord extends StoredPayment {
  /** Null until the payment's own events arrive: stored, but not listed or counted. */
  view: PaymentView | null;
}

const invalidCursor = (reason: string) => new InvalidCursorError(reason);

/** A position is the `<time>#<paymentId>` key of the last item returned. */
const historyCursor = cursorCodec<UserPaymentsQuery, string>({
  scope: 'payments.userHistory',
  params: (query) => ({ userId: query.userId, status: query.status ?? null }),
  parse: (position) => (parseTimeKey(position) ? (position as string) : undefined),
  invalid: invalidCursor,
});

const refundsCursor = cursorCodec<RefundsQuery, string>({
  scope: 'payments.refunds',
  params: (query) => ({ from: query.from, to: query.to }),
  parse: (position, query) => inRange(position, query.from, query.to),
  invalid: invalidCursor,
});

const paidCursor = cursorCodec<PaidPaymentsQuery, string>({
  scope: 'payments.paid',
  params: (query) => ({ status: query.status, paidFrom: query.paidFrom, paidTo: query.paidTo }),
  parse: (position, query) => inRange(position, query.paidFrom, query.paidTo),
  invalid: invalidCursor,
});

export class InMemoryPaymentStore implements PaymentStore, PaymentQueries, CustomerDirectory {
  readonly payments = new Map<string, StoredRecord>();
  /** Ledger pages per payment, oldest first. */
  readonly ledger = new Map<string, PaymentLedgerPage[]>();
  /** Charge id -> payment id, for charges of a PaymentIntent payment. */
  readonly chargePointers = new Map<string, string>();
  /** Customer id -> linked user id (null: known but unlinked), as the subscription context keeps it. */
  readonly customers = new Map<string, string | null>();
  /** date -> `status|currency` -> counters. */
  readonly summaries = new Map<string, Map<string, DailySummaryRow>>();
  /** Counts committed payments, for assertions on write amplification. */
  commits = 0;
  /** Replaceable at any time, to start or stop injecting faults. */
  fault: PaymentStoreFault | undefined;
  readonly #packed: boolean;

  constructor(options: InMemoryPaymentStoreOptions = {}) {
    this.#packed = options.packed ?? false;
    this.fault = options.fault;
  }

  /** Links (or, with null, unlinks) a customer, as the subscription consumer would. */
  linkCustomer(customerId: string, userId: string | null): void {
    this.customers.set(customerId, userId);
  }

  // ---- PaymentStore --------------------------------------------------------------

  async loadPayments(paymentIds: readonly string[]): Promise<Map<string, StoredPayment>> {
    this.fault?.({ operation: 'loadPayments' });
    const found = new Map<string, StoredPayment>();
    for (const paymentId of paymentIds) {
      const stored = this.payments.get(paymentId);
      if (stored) {
        found.set(paymentId, {
          state: structuredClone(stored.state),
          revision: stored.revision,
          recentEvents: [...stored.recentEvents],
        });
      }
    }
    return found;
  }

  async commit(commit: PaymentCommit): Promise<CommitResult> {
    const refused = this.#check(commit);
    if (refused) return refused;
    this.#apply(commit);
    return { status: 'committed' };
  }

  async commitAll(commits: readonly PaymentCommit[]): Promise<CommitResult[]> {
    if (this.#packed) {
      // As the DynamoDB adapter: a payment's n-th commit of the call goes in the n-th
      // transaction, so each sees the one before it.
      return await commitInRounds(commits, (round) => this.#commitPacked(round));
    }
    const results: CommitResult[] = [];
    for (const commit of commits) results.push(await this.commit(commit));
    return results;
  }

  /** Commits of distinct payments as one transaction: all or none. */
  #commitPacked(commits: readonly PaymentCommit[]): CommitResult[] {
    const checks = commits.map((commit) => this.#check(commit));
    const failed = checks.find((check) => check?.status === 'failed');
    if (failed) return commits.map(() => failed);
    if (checks.some((check) => check !== null)) {
      return checks.map((check) => check ?? { status: 'aborted' });
    }
    for (const commit of commits) this.#apply(commit);
    return commits.map(() => ({ status: 'committed' }));
  }

  async readLedger(paymentId: string): Promise<PaymentLedgerPage[]> {
    return structuredClone(this.ledger.get(paymentId) ?? []);
  }

  /** Every ledger event, all payments: for assertions on what was recorded. */
  allLedgerEvents(): LedgerEvent[] {
    return [...this.ledger.values()].flatMap((pages) => pages.flatMap((page) => page.events));
  }

  // ---- PaymentQueries ------------------------------------------------------------

  async getPayment(id: string): Promise<PaymentView | null> {
    this.fault?.({ operation: 'getPayment' });
    const own = this.payments.get(id);
    if (own?.view) return structuredClone(own.view);
    const pointer = id.startsWith('ch_') ? this.chargePointers.get(id) : undefined;
    const target = pointer ? this.payments.get(pointer) : undefined;
    return target?.view ? structuredClone(target.view) : null;
  }

  async listUserPayments(query: UserPaymentsQuery): Promise<Page<PaymentView>> {
    this.fault?.({ operation: 'listUserPayments' });
    const after = query.cursor ? historyCursor.decode(query, query.cursor) : undefined;
    const sorted = this.#views((view) => view.userId === query.userId)
      .filter((view) => !query.status || view.status === query.status)
      .map((view) => ({ key: `${view.createdAt}#${view.paymentId}`, view }))
      .sort((a, b) => compare(b.key, a.key))
      .filter((entry) => after === undefined || entry.key < after);
    return page(sorted, query.limit, (key) => historyCursor.encode(query, key));
  }

  async listRefunds(query: RefundsQuery): Promise<Page<PaymentView>> {
    this.fault?.({ operation: 'listRefunds' });
    checkRange(query.from, query.to);
    const after = query.cursor ? refundsCursor.decode(query, query.cursor) : undefined;
    const sorted = this.#views(
      (view) => view.amountRefunded > 0 && inDays(view.refundedAt, query.from, query.to),
    )
      .map((view) => ({ key: `${view.refundedAt}#${view.paymentId}`, view }))
      .sort((a, b) => compare(a.key, b.key))
      .filter((entry) => after === undefined || entry.key > after);
    return page(sorted, query.limit, (key) => refundsCursor.encode(query, key));
  }

  async listPaid(query: PaidPaymentsQuery): Promise<Page<PaymentView>> {
    this.fault?.({ operation: 'listPaid' });
    checkRange(query.paidFrom, query.paidTo);
    const after = query.cursor ? paidCursor.decode(query, query.cursor) : undefined;
    const sorted = this.#views(
      (view) => view.status === query.status && inDays(view.paidAt, query.paidFrom, query.paidTo),
    )
      .map((view) => ({ key: `${view.paidAt}#${view.paymentId}`, view }))
      .sort((a, b) => compare(a.key, b.key))
      .filter((entry) => after === undefined || entry.key > after);
    return page(sorted, query.limit, (key) => paidCursor.encode(query, key));
  }

  async dailySummary(date: string): Promise<DailySummaryRow[]> {
    this.fault?.({ operation: 'dailySummary' });
    return [...(this.summaries.get(date)?.values() ?? [])]
      .filter((row) => row.count !== 0 || row.amount !== 0)
      .map((row) => ({ ...row }))
      .sort((a, b) => compare(a.status, b.status) || compare(a.currency, b.currency));
  }

  // ---- CustomerDirectory ---------------------------------------------------------

  async userIdsOf(customerIds: readonly string[]): Promise<Map<string, string>> {
    this.fault?.({ operation: 'userIdsOf' });
    const links = new Map<string, string>();
    for (const customerId of customerIds) {
      const userId = this.customers.get(customerId);
      if (userId) links.set(customerId, userId);
    }
    return links;
  }

  // ---- internals -----------------------------------------------------------------

  #check(commit: PaymentCommit): CommitResult | null {
    try {
      const forced = this.fault?.({ operation: 'commit', commit });
      if (forced) return forced;
    } catch (error) {
      return { status: 'failed', error: asError(error) };
    }
    const currentRevision = this.payments.get(commit.paymentId)?.revision ?? 0;
    if (currentRevision !== commit.expectedRevision) return { status: 'revision-conflict' };
    return null;
  }

  #apply(commit: PaymentCommit): void {
    const revision = commit.expectedRevision + 1;
    const pages = this.ledger.get(commit.paymentId) ?? [];
    pages.push({
      paymentId: commit.paymentId,
      revision,
      appliedAt: commit.ledger.appliedAt,
      events: structuredClone(commit.ledger.events),
    });
    this.ledger.set(commit.paymentId, pages);
    this.payments.set(commit.paymentId, {
      state: structuredClone(commit.state),
      revision,
      recentEvents: [...commit.recentEvents],
      view: structuredClone(commit.view),
    });
    for (const chargeId of commit.newChargeIds) {
      if (chargeId !== commit.paymentId) this.chargePointers.set(chargeId, commit.paymentId);
    }
    for (const delta of commit.summary) {
      const day = this.summaries.get(delta.date) ?? new Map<string, DailySummaryRow>();
      this.summaries.set(delta.date, day);
      const key = `${delta.status}|${delta.currency}`;
      const row = day.get(key) ?? {
        status: delta.status as PaymentStatus,
        gateway: 'stripe' as const,
        currency: delta.currency,
        count: 0,
        amount: 0,
      };
      row.count += delta.count;
      row.amount += delta.amount;
      day.set(key, row);
    }
    this.commits += 1;
  }

  #views(predicate: (view: PaymentView) => boolean): PaymentView[] {
    return [...this.payments.values()]
      .flatMap((stored) => (stored.view ? [stored.view] : []))
      .filter(predicate)
      .map((view) => structuredClone(view));
  }
}

function page(
  sorted: { key: string; view: PaymentView }[],
  limit: number,
  encode: (key: string) => string,
): Page<PaymentView> {
  const items = sorted.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map((entry) => entry.view),
    nextCursor: sorted.length > limit && last ? encode(last.key) : null,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function inDays(iso: string | null, from: string, to: string): boolean {
  if (iso === null) return false;
  const date = iso.slice(0, 10);
  return date >= from && date <= to;
}

/** A `<time>#<id>` key of a day in `[from, to]`. */
function inRange(position: unknown, from: string, to: string): string | undefined {
  const parsed = parseTimeKey(position);
  return parsed && parsed.date >= from && parsed.date <= to ? (position as string) : undefined;
}

function checkRange(from: string, to: string): void {
  const span = daysBetween(from, to);
  if (Number.isNaN(span) || span >= MAX_REPORT_DAYS) {
    throw new RangeError(`report range must be valid dates at most ${MAX_REPORT_DAYS} days apart`);
  }
}
