/**
 * How a settlement's payment ends (DESIGN §8.3): `payment_intent.succeeded` marks its
 * penalties `paid` and adds them to their recipients' totals, exactly once;
 * `payment_failed` or `canceled` puts its `pending` penalties back to `unpaid`. Both
 * release the user's settlement lock if it is this PaymentIntent's. Driven by the
 * payment's folded state (the payments context's order guard has already decided what
 * the PaymentIntent's status is), and idempotent by penalty status, so duplicates and
 * reordering change nothing twice. The operators' mark-paid is the same move by hand.
 */
import type { Clock } from '../shared/clock.ts';
import { asError } from '../shared/errors.ts';
import { parsePenaltyId } from './penalty-ids.ts';
import { commitTransitionsSafely, transition } from './penalty-transitions.ts';
import type { Overpayment, Penalty, PenaltyStore, PenaltyTransition } from './ports.ts';

export type PenaltyPaymentOutcome = 'succeeded' | 'failed';

/** A penalty payment as the payments context reports it. */
export interface PenaltyPayment {
  paymentIntentId: string;
  penaltyIds: readonly string[];
  /** `succeeded` once the payment has been paid (whatever refunds or disputes followed); `failed` when failed or canceled. */
  outcome: PenaltyPaymentOutcome;
}

/** The outcome a payment's current status means for its penalties, or null while it is still open. */
export function outcomeOfPayment(view: {
  status: string;
  paidAt: string | null;
}): PenaltyPaymentOutcome | null {
  if (view.paidAt !== null) return 'succeeded';
  if (view.status === 'failed' || view.status === 'canceled') return 'failed';
  return null;
}

export interface PenaltyPaymentResult {
  /** Penalties whose status this call changed. */
  changed: string[];
  /**
   * Paid by this PaymentIntent although already settled otherwise, waived by a credit or
   * paid by another payment (an abandoned settlement that succeeded after all, a
   * mark-paid): money the user is owed back. Recorded by settlePenaltyPayments.
   */
  overpaid: Overpayment[];
}

export interface PenaltyPaymentDeps {
  store: PenaltyStore;
  clock: Clock;
  pause?: (ms: number) => Promise<void>;
}

export async function applyPenaltyPayment(
  payment: PenaltyPayment,
  deps: PenaltyPaymentDeps,
): Promise<PenaltyPaymentResult> {
  const { paymentIntentId, outcome } = payment;
  const ids = payment.penaltyIds.filter((id) => parsePenaltyId(id) !== null);
  const owner = ids.length > 0 ? parsePenaltyId(ids[0] as string)?.userId : undefined;
  const overpaid = new Map<string, Overpayment>();
  const recordedAt = new Date(deps.clock.now()).toISOString();
  const plan = (penalties: Map<string, Penalty>): PenaltyTransition[] => {
    const transitions: PenaltyTransition[] = [];
    overpaid.clear(); // planned again after a conflict: from the penalties as they are now
    for (const id of ids) {
      const penalty = penalties.get(id);
      if (!penalty) continue;
      if (outcome === 'succeeded') {
        // Paid is final: money arrived, whichever settlement it was pending under.
        if (penalty.status === 'unpaid' || penalty.status === 'pending') {
          transitions.push(transition(penalty, 'paid', paymentIntentId));
        } else if (
          penalty.status === 'waived' ||
          (penalty.status === 'paid' && penalty.paymentId !== paymentIntentId)
        ) {
          overpaid.set(id, {
            paymentIntentId,
            penaltyId: id,
            userId: penalty.userId,
            amount: penalty.amount,
            currency: penalty.currency,
            settledAs: penalty.status,
            settledBy: penalty.status === 'paid' ? penalty.paymentId : null,
            recordedAt,
            refundId: null,
            refundedAt: null,
          });
        }
      } else if (penalty.status === 'pending' && penalty.paymentId === paymentIntentId) {
        transitions.push(transition(penalty, 'unpaid', null));
      }
    }
    return transitions;
  };
  const committed = await commitTransitionsSafely({
    store: deps.store,
    now: () => deps.clock.now(),
    pause: deps.pause ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    plan,
    penaltyIds: ids,
    ...(owner ? { releasePending: { userId: owner, paymentIntentId } } : {}),
  });
  return {
    changed: committed.map((change) => change.penalty.penaltyId),
    overpaid: [...overpaid.values()],
  };
}

export interface MarkPaidResult {
  changed: string[];
  alreadyPaid: string[];
  notFound: string[];
}

/**
 * The operators' batch mark-paid (≤ 100 ids, idempotent): unpaid or pending penalties
 * become `paid` with `paymentId`, or with none when it is not given; paid and waived
 * ones are already settled; unknown ids are reported, not failed. Without a
 * `paymentId` a pending penalty is not credited to the PaymentIntent it was pending
 * under: that payment may still go through on the user's payment sheet, and if it
 * does it must be recorded as an overpayment (to refund), not taken as this one.
 * An operator who marks it paid because that very payment's event was lost names it.
 */
export async function markPenaltiesPaid(
  penaltyIds: readonly string[],
  paymentId: string | null,
  deps: PenaltyPaymentDeps,
): Promise<MarkPaidResult> {
  const unique = [...new Set(penaltyIds)];
  const known = unique.filter((id) => parsePenaltyId(id) !== null);
  const found = await deps.store.getPenalties(known);
  const notFound = unique.filter((id) => !found.has(id));
  const committed = await commitTransitionsSafely({
    store: deps.store,
    now: () => deps.clock.now(),
    pause: deps.pause ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    penaltyIds: [...found.keys()],
    plan: (penalties) =>
      [...penalties.values()]
        .filter((penalty) => penalty.status === 'unpaid' || penalty.status === 'pending')
        .map((penalty) => transition(penalty, 'paid', paymentId)),
  });
  const changed = new Set(committed.map((change) => change.penalty.penaltyId));
  return {
    changed: unique.filter((id) => changed.has(id)),
    alreadyPaid: unique.filter((id) => found.has(id) && !changed.has(id)),
    notFound,
  };
}

/** A payment's current state as the payments context knows it (after the batch's commits). */
export interface PaymentSnapshot {
  status: string;
  paidAt: string | null;
  purpose: string;
  penaltyIds: readonly string[];
}

/**
 * After a payment batch: brings the penalties of every penalty PaymentIntent the batch
 * touched in line with the payment's current state. Runs for applied, stale and
 * duplicate events alike (it is idempotent), so a crash between the payment's commit
 * and this step is repaired by the redelivery. Returns the PaymentIntents it could not
 * settle (their records must fail and be redelivered).
 */
export async function settlePenaltyPayments(
  paymentIntentIds: readonly string[],
  deps: PenaltyPaymentDeps & {
    currentPayments: (ids: readonly string[]) => Promise<Map<string, PaymentSnapshot>>;
    /** `newlyOverpaid`: of `result.overpaid`, those recorded for the first time. */
    onResult?: (
      paymentIntentId: string,
      result: PenaltyPaymentResult,
      newlyOverpaid: readonly Overpayment[],
    ) => void;
  },
): Promise<Map<string, Error>> {
  const failures = new Map<string, Error>();
  if (paymentIntentIds.length === 0) return failures;
  let payments: Map<string, PaymentSnapshot>;
  try {
    payments = await deps.currentPayments(paymentIntentIds);
  } catch (error) {
    for (const id of paymentIntentIds) failures.set(id, asError(error));
    return failures;
  }
  await Promise.all(
    paymentIntentIds.map(async (paymentIntentId) => {
      const payment = payments.get(paymentIntentId);
      if (payment?.purpose !== 'penalty' || payment.penaltyIds.length === 0) return;
      const outcome = outcomeOfPayment(payment);
      if (!outcome) return;
      try {
        const result = await applyPenaltyPayment(
          { paymentIntentId, penaltyIds: payment.penaltyIds, outcome },
          deps,
        );
        // Durable before the records are acknowledged: a failure here redelivers them,
        // and recording again is harmless (keyed by PaymentIntent and penalty).
        const newlyOverpaid =
          result.overpaid.length > 0 ? await deps.store.recordOverpayments(result.overpaid) : [];
        deps.onResult?.(paymentIntentId, result, newlyOverpaid);
      } catch (error) {
        failures.set(paymentIntentId, asError(error));
      }
    }),
  );
  return failures;
}
