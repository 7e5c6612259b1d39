/**
 * Settlement (DESIGN §8.3): a user's unpaid penalties, oldest first; one credit waives
 * one penalty; the rest (those in the currency of the oldest one left, since one
 * PaymentIntent has one currency) are paid by one Stripe PaymentIntent carrying
 * `metadata.purpose=penalty` and their ids, created with an idempotency key made from
 * those ids. Stripe is called before anything is written, so Stripe being down changes
 * nothing; then one transaction waives, marks the paid ones `pending`, spends the
 * credits (never below zero) and takes the user's settlement lock (a second settlement
 * while one is pending is refused, until it is an hour old or none of its penalties is
 * pending under it any more: then its PaymentIntent is canceled at Stripe and its
 * penalties go back to unpaid, or to paid if it was paid;
 * the hourly sweep, settlement-sweep.ts, releases such settlements the same way).
 */
import type { Clock } from '../shared/clock.ts';
import { penaltyIdsThatFit } from '../shared/penalty-metadata.ts';
import { PenaltyConflictError, PenaltyNotFoundError } from './errors.ts';
import { settlementIdempotencyKey } from './penalty-ids.ts';
import { applyPenaltyPayment } from './penalty-payments.ts';
import { transition, transitionCommit } from './penalty-transitions.ts';
import type {
  CreatedPaymentIntent,
  Penalty,
  PenaltyPaymentGateway,
  PenaltyPaymentState,
  PenaltyStore,
  PendingSettlement,
} from './ports.ts';

/**
 * Most penalties one settlement handles: keeps its transaction (penalties, summary,
 * profile) under DynamoDB's 100 items and its ids within Stripe's metadata limits.
 * A user with more settles again for the rest.
 */
export const MAX_PENALTIES_PER_SETTLEMENT = 90;

/**
 * Stripe's largest amount for one PaymentIntent (eight digits of the minor unit); older
 * penalties past it are left for the next settlement, as are ids past what metadata holds.
 */
export const MAX_PAYMENT_AMOUNT = 99_999_999;

/** A pending settlement older than this is taken as abandoned: canceled at Stripe, settled anew. */
export const ABANDONED_SETTLEMENT_AFTER_MS = 60 * 60_000;

/** Whether a pending settlement is old enough to be taken as abandoned (an unreadable start never is). */
export function isAbandoned(pending: PendingSettlement, now: number): boolean {
  return now - Date.parse(pending.startedAt) >= ABANDONED_SETTLEMENT_AFTER_MS;
}

export interface SettlementPlan {
  waive: Penalty[];
  pay: Penalty[];
  /** Sum of `pay`'s amounts (0 when nothing is paid). */
  amount: number;
  currency: string | null;
}

/**
 * Oldest first: the first `credits` penalties are waived; the rest in the first remaining
 * currency are paid, as many from the oldest as one PaymentIntent can carry (its amount
 * and its metadata's ids).
 */
export function planSettlement(
  unpaidOldestFirst: readonly Penalty[],
  credits: number,
): SettlementPlan {
  const sorted = [...unpaidOldestFirst].sort(
    (a, b) => a.date.localeCompare(b.date) || a.penaltyId.localeCompare(b.penaltyId),
  );
  const waived = Math.max(0, Math.min(credits, sorted.length));
  const waive = sorted.slice(0, waived);
  const rest = sorted.slice(waived);
  const currency = rest[0]?.currency ?? null;
  const sameCurrency = rest.filter((penalty) => penalty.currency === currency);
  let withinAmount = 0;
  for (let amount = 0; withinAmount < sameCurrency.length; withinAmount += 1) {
    amount += sameCurrency[withinAmount]!.amount;
    if (amount > MAX_PAYMENT_AMOUNT) break;
  }
  const pay = sameCurrency.slice(
    0,
    penaltyIdsThatFit(sameCurrency.slice(0, withinAmount).map((penalty) => penalty.penaltyId)),
  );
  return { waive, pay, amount: pay.reduce((sum, penalty) => sum + penalty.amount, 0), currency };
}

export interface SettlementResult {
  waived: string[];
  creditsUsed: number;
  payment: {
    paymentIntentId: string;
    amount: number;
    currency: string;
    clientSecret: string;
    penaltyIds: string[];
  } | null;
}

function nothingSettled(): SettlementResult {
  return { waived: [], creditsUsed: 0, payment: null };
}

export interface SettleDeps {
  store: PenaltyStore;
  gateway: PenaltyPaymentGateway;
  clock: Clock;
  pause?: (ms: number) => Promise<void>;
}

export interface AbandonedSettlementRelease {
  /** What the PaymentIntent is now at Stripe; `open` (processing) left everything as it was. */
  state: PenaltyPaymentState;
  /** Penalties whose status the release changed: to paid (`succeeded`) or back to unpaid. */
  changed: string[];
}

/**
 * Releases an abandoned settlement: one nobody finished (the payment sheet closed)
 * never gets a webhook, since an unpaid PaymentIntent just stays open. Its PaymentIntent
 * is canceled at Stripe, then the move its webhook would have made is made (idempotent
 * with it): paid if Stripe says it was paid after all, else back to unpaid; the lock
 * goes either way. A PaymentIntent Stripe cannot cancel now (processing) is left alone.
 * The user's next settle and the hourly sweep both release through here, so they
 * cannot drift. Throws what the gateway throws, with nothing changed.
 */
export async function releaseAbandonedSettlement(
  pending: PendingSettlement,
  deps: SettleDeps,
): Promise<AbandonedSettlementRelease> {
  const state = await deps.gateway.cancelPenaltyPayment(pending.paymentIntentId);
  if (state === 'open') return { state, changed: [] };
  const { changed } = await applyPenaltyPayment(
    {
      paymentIntentId: pending.paymentIntentId,
      penaltyIds: pending.penaltyIds,
      outcome: state === 'succeeded' ? 'succeeded' : 'failed',
    },
    { store: deps.store, clock: deps.clock, ...(deps.pause ? { pause: deps.pause } : {}) },
  );
  return { state, changed };
}

/** Plans and commits a settlement; re-plans when penalties or credits changed between read and write. */
export async function settlePenalties(userId: string, deps: SettleDeps): Promise<SettlementResult> {
  const { store, gateway, clock } = deps;
  const pause = deps.pause ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
  let released: string | null = null;
  for (let attempt = 1; ; attempt += 1) {
    const account = await store.getAccount(userId);
    if (!account) {
      // A user with a profile but no habit yet has nothing to settle; nobody else is known.
      if ((await store.getUserBilling(userId)).hasProfile) return nothingSettled();
      throw new PenaltyNotFoundError(
        'user_not_found',
        `No penalties are known for user ${userId}.`,
      );
    }
    if (account.pending) {
      // Past an hour a pending settlement is taken as abandoned: released, then settled
      // anew. So is one with nothing left pending under it: an operator marked its
      // penalties paid, and its lock would otherwise refuse the user for the hour.
      const { pending } = account;
      if (released === pending.paymentIntentId) throw pendingConflict(pending.paymentIntentId);
      if (!isAbandoned(pending, clock.now())) {
        const stillPending = await stillPendingUnder(pending, store);
        if (stillPending.length > 0) {
          // Offered again only whole: its amount pays for every one of its penalties.
          const whole = stillPending.length === pending.penaltyIds.length;
          throw pendingConflict(
            pending.paymentIntentId,
            whole ? await resumablePayment(pending.paymentIntentId, stillPending, gateway) : null,
          );
        }
      }
      const { state } = await releaseAbandonedSettlement(pending, { store, gateway, clock, pause });
      if (state === 'open') throw pendingConflict(pending.paymentIntentId);
      released = pending.paymentIntentId;
      continue;
    }

    // The status index is eventually consistent: confirm each candidate by key.
    const candidates = await store.oldestUnpaid(userId, MAX_PENALTIES_PER_SETTLEMENT);
    const current = await store.getPenalties(candidates.map((penalty) => penalty.penaltyId));
    const unpaid = candidates.flatMap((penalty) => {
      const fresh = current.get(penalty.penaltyId);
      return fresh?.status === 'unpaid' ? [fresh] : [];
    });
    if (unpaid.length === 0) return nothingSettled();

    const billing = await store.getUserBilling(userId);
    const plan = planSettlement(unpaid, billing.credits);
    let intent: CreatedPaymentIntent | null = null;
    if (plan.pay.length > 0 && plan.currency) {
      const penaltyIds = plan.pay.map((penalty) => penalty.penaltyId);
      intent = await gateway.createPenaltyPayment({
        userId,
        customerId: billing.customerId,
        amount: plan.amount,
        currency: plan.currency,
        penaltyIds,
        idempotencyKey: settlementIdempotencyKey(penaltyIds, billing.customerId),
      });
    }
    const at = clock.now();
    const transitions = [
      ...plan.waive.map((penalty) => transition(penalty, 'waived', null)),
      ...plan.pay.map((penalty) => transition(penalty, 'pending', intent?.paymentIntentId ?? null)),
    ];
    const result = await store.commitTransitions(
      transitionCommit(transitions, at, {
        ...(plan.waive.length > 0 ? { creditsUsed: { userId, count: plan.waive.length } } : {}),
        ...(intent
          ? {
              lockPending: {
                userId,
                settlement: {
                  paymentIntentId: intent.paymentIntentId,
                  penaltyIds: plan.pay.map((penalty) => penalty.penaltyId),
                  startedAt: new Date(at).toISOString(),
                },
              },
            }
          : {}),
      }),
    );
    if (result.status === 'committed') {
      return {
        waived: plan.waive.map((penalty) => penalty.penaltyId),
        creditsUsed: plan.waive.length,
        payment: intent
          ? {
              paymentIntentId: intent.paymentIntentId,
              amount: intent.amount,
              currency: intent.currency,
              clientSecret: intent.clientSecret,
              penaltyIds: plan.pay.map((penalty) => penalty.penaltyId),
            }
          : null,
      };
    }
    if (result.status === 'conflict' && result.reason === 'settlement-pending') {
      throw pendingConflict(null);
    }
    // Penalties or credits moved under us (an assessment, a concurrent settlement, a
    // refresh): plan again. The PaymentIntent created for the old plan is never
    // confirmed (its client secret was not handed out); the same ids reuse it.
    if (attempt >= 3) {
      throw new PenaltyConflictError(
        'settlement_conflict',
        'The penalties changed while settling; try again.',
      );
    }
    await pause(Math.round(30 * 2 ** attempt * (0.5 + Math.random())));
  }
}

/** The settlement's penalties still pending under its PaymentIntent (read by key). */
async function stillPendingUnder(
  pending: PendingSettlement,
  store: PenaltyStore,
): Promise<string[]> {
  const penalties = await store.getPenalties(pending.penaltyIds);
  return pending.penaltyIds.filter((id) => {
    const penalty = penalties.get(id);
    return penalty?.status === 'pending' && penalty.paymentId === pending.paymentIntentId;
  });
}

/**
 * The pending settlement's payment as a settle answers it, while it can still be paid:
 * a caller whose settle response was lost takes its payment sheet up again from the 409
 * instead of waiting out the hour. Null when Stripe says it is no longer open (its
 * webhook settles it) or cannot be asked now: the 409 still names the PaymentIntent.
 */
async function resumablePayment(
  paymentIntentId: string,
  penaltyIds: string[],
  gateway: PenaltyPaymentGateway,
): Promise<SettlementResult['payment']> {
  try {
    const intent = await gateway.getPenaltyPayment(paymentIntentId);
    if (intent.state !== 'open') return null;
    const { amount, currency, clientSecret } = intent;
    return { paymentIntentId, amount, currency, clientSecret, penaltyIds };
  } catch {
    return null;
  }
}

function pendingConflict(
  paymentIntentId: string | null,
  payment: SettlementResult['payment'] = null,
): PenaltyConflictError {
  return new PenaltyConflictError(
    'settlement_pending',
    paymentIntentId
      ? `An earlier settlement (${paymentIntentId}) is still pending; it completes when its payment succeeds or fails.`
      : 'An earlier settlement is still pending; it completes when its payment succeeds or fails.',
    payment ? { payment } : {},
  );
}
