/**
 * The hourly sweep of abandoned settlements (DESIGN §8.3). A user who closes the payment
 * sheet leaves an unpaid PaymentIntent open at Stripe, and Stripe sends no webhook for
 * it: its penalties would stay `pending` (owed, yet not in the unpaid summary) until the
 * user settles again, which an app that offers settling only when something is unpaid
 * never does. The sweep lists the locks older than ABANDONED_SETTLEMENT_AFTER_MS from
 * the store's pending index and releases each exactly as a settle would
 * (releaseAbandonedSettlement): paid if Stripe says so, else back to unpaid.
 *
 * A bounded number of users per run, oldest lock first, until `shouldStop`; the next
 * hourly run takes the rest. Stripe unavailable ends the run at once (every next call
 * would fail too); what was released before stays released.
 */
import { asError } from '../shared/errors.ts';
import { PaymentGatewayUnavailableError } from './ports.ts';
import {
  ABANDONED_SETTLEMENT_AFTER_MS,
  isAbandoned,
  releaseAbandonedSettlement,
  type SettleDeps,
} from './settlement.ts';

/** Most users one run looks at: a few hundred Stripe calls fit well in its Lambda's time. */
export const SWEEP_MAX_USERS = 500;

export interface SweepDeps extends SettleDeps {
  /** @default SWEEP_MAX_USERS */
  maxUsers?: number;
  /** Asked before each user: true ends the run (the Lambda's time is running out). */
  shouldStop?: () => boolean;
}

export interface SweepResult {
  /** Locks released with their penalties back to unpaid (the PaymentIntent canceled). */
  released: number;
  /** Locks released with their penalties paid: Stripe says the PaymentIntent succeeded after all. */
  paid: number;
  /** Left as they were: the PaymentIntent is still processing at Stripe. */
  stillOpen: number;
  /** Releases that failed; the next run tries them again. */
  failed: number;
  /** Listed, but released or retaken since (the index lags the account). */
  skipped: number;
  /** Penalties the `paid` releases marked paid. */
  penaltiesPaid: number;
  /** Why the run ended before its list did, if it did. */
  stoppedBy: 'stripe-unavailable' | 'time' | null;
  /** What failed, by user (for the run's log line). */
  errors: { userId: string; error: Error }[];
}

export async function sweepAbandonedSettlements(deps: SweepDeps): Promise<SweepResult> {
  const { store, clock } = deps;
  const shouldStop = deps.shouldStop ?? (() => false);
  const result: SweepResult = {
    released: 0,
    paid: 0,
    stillOpen: 0,
    failed: 0,
    skipped: 0,
    penaltiesPaid: 0,
    stoppedBy: null,
    errors: [],
  };
  // Listed when taken strictly before the cutoff: a lock exactly an hour old is
  // abandoned too, as settle takes it (isAbandoned).
  const cutoff = new Date(clock.now() - ABANDONED_SETTLEMENT_AFTER_MS + 1).toISOString();
  const userIds = await store.abandonedSettlements(cutoff, deps.maxUsers ?? SWEEP_MAX_USERS);
  for (const userId of userIds) {
    if (shouldStop()) {
      result.stoppedBy = 'time';
      break;
    }
    try {
      // The index is eventually consistent: act on the account as it is now.
      const pending = (await store.getAccount(userId))?.pending;
      if (!pending || !isAbandoned(pending, clock.now())) {
        result.skipped += 1;
        continue;
      }
      const { state, changed } = await releaseAbandonedSettlement(pending, deps);
      if (state === 'open') result.stillOpen += 1;
      else if (state === 'succeeded') {
        result.paid += 1;
        result.penaltiesPaid += changed.length;
      } else result.released += 1;
    } catch (error) {
      result.failed += 1;
      result.errors.push({ userId, error: asError(error) });
      // Every next Stripe call would fail the same way: the next hourly run retries.
      if (error instanceof PaymentGatewayUnavailableError) {
        result.stoppedBy = 'stripe-unavailable';
        break;
      }
    }
  }
  return result;
}
