/**
 * The payment consumer's use case: apply one batch of queued Stripe payment events
 * exactly once. The batch mechanics (group, fold, commit, re-read after a lost race)
 * are the shared `applyEventBatch`; this file says what a payment aggregate is: one
 * PaymentIntent (or a charge without one), its ledger page, its charge pointers and
 * its move between daily summary buckets, all in one commit.
 */
import type { Clock } from '../shared/clock.ts';
import {
  applyEventBatch,
  type EventFamily,
  foldWithWindow,
  type PendingFact,
  type PlannedCommit,
  type QueuedEvent,
  type RecordOutcome,
} from '../shared/event-batch.ts';
import { isFamilyEventType } from '../shared/event-families.ts';
import { type PaymentFact, toPaymentFact } from './payment-facts.ts';
import {
  applyPaymentFact,
  emptyPayment,
  knownChargeIds,
  projectPayment,
  summaryDelta,
  withLinkedUser,
} from './payment-state.ts';
import type { CustomerDirectory, PaymentCommit, PaymentStore, StoredPayment } from './ports.ts';

export interface ApplyPaymentDeps {
  store: PaymentStore;
  /** Finds the user of a payment whose metadata does not name one. */
  directory: CustomerDirectory;
  clock: Clock;
  /** Attempts on write races before the remaining records fail (and are redelivered). Default 6. */
  maxAttempts?: number;
  /** Waits before resending commits whose pack failed. Default: a timer. */
  pause?: (ms: number) => Promise<void>;
}

/** Applies a batch; never throws for a single bad record, reports it as failed instead. */
export function applyPaymentEvents(
  events: readonly QueuedEvent[],
  deps: ApplyPaymentDeps,
): Promise<Map<string, RecordOutcome>> {
  return applyEventBatch(events, paymentFamily(deps), {
    clock: deps.clock,
    ...(deps.maxAttempts ? { maxAttempts: deps.maxAttempts } : {}),
    ...(deps.pause ? { pause: deps.pause } : {}),
  });
}

function paymentFamily(
  deps: ApplyPaymentDeps,
): EventFamily<PaymentFact, StoredPayment, PaymentCommit> {
  const { store } = deps;
  /** customer → user, read once per batch for the facts whose metadata names no user. */
  let linkedUsers = new Map<string, string>();
  return {
    toFact(envelope) {
      if (!isFamilyEventType('payments', envelope.type)) return { ignored: 'unhandled event type' };
      return (
        toPaymentFact(envelope) ?? {
          ignored: 'not a payment (checkout session in another mode, or a payment record)',
        }
      );
    },
    aggregateKey: (fact) => fact.paymentId,
    async prepare(facts) {
      // Only customers whose payloads name no user; a payment's stored customer is not
      // known yet here, and a payload without a customer cannot be linked anyway.
      const customers = new Set<string>();
      for (const fact of facts) {
        if (fact.userId === null && fact.customerId !== null) customers.add(fact.customerId);
      }
      linkedUsers = customers.size > 0 ? await deps.directory.userIdsOf([...customers]) : new Map();
    },
    plan: (paymentId, facts, stored, appliedAt) =>
      planPaymentCommit(paymentId, facts, stored, appliedAt, linkedUsers),
    storedAfter: (commit) => ({
      state: commit.state,
      revision: commit.expectedRevision + 1,
      recentEvents: commit.recentEvents,
    }),
    load: (keys) => store.loadPayments(keys),
    commit: (commit) => store.commit(commit),
    commitAll: (commits) => store.commitAll(commits),
  };
}

/**
 * Folds one payment's facts over its stored state into a commit. Pure. A payment
 * whose payloads name no user takes the user linked to its customer, when known.
 */
export function planPaymentCommit(
  paymentId: string,
  facts: readonly PendingFact<PaymentFact>[],
  stored: StoredPayment | undefined,
  appliedAt: number,
  linkedUsers: ReadonlyMap<string, string> = new Map(),
): PlannedCommit<PaymentCommit> {
  const before = stored?.state ?? emptyPayment(paymentId);
  const fold = foldWithWindow(before, stored?.recentEvents ?? [], facts, applyPaymentFact);
  if (fold.recorded.length === 0) return { outcomes: fold.outcomes, commit: null };
  const customerId = fold.after.customer?.id;
  const after = withLinkedUser(fold.after, customerId ? linkedUsers.get(customerId) : undefined);
  const viewBefore = projectPayment(before);
  const viewAfter = projectPayment(after);
  const chargesBefore = new Set(knownChargeIds(before));
  return {
    outcomes: fold.outcomes,
    commit: {
      paymentId,
      expectedRevision: stored?.revision ?? 0,
      state: after,
      view: viewAfter,
      recentEvents: fold.recentEvents,
      ledger: { appliedAt, events: fold.recorded },
      summary: summaryDelta(viewBefore, viewAfter),
      newChargeIds: knownChargeIds(after).filter(
        (chargeId) => chargeId !== paymentId && !chargesBefore.has(chargeId),
      ),
    },
  };
}
