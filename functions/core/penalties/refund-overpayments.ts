/**
 * Gives back what a settlement PaymentIntent took for penalties already settled (waived
 * by a credit, or paid by another payment): one partial refund of that PaymentIntent per
 * overpaid penalty, for the penalty's amount. The refund's idempotency key is made from
 * the PaymentIntent and the penalty, so a refund interrupted before it was recorded,
 * and issued again, is one refund at Stripe (for 24 h; the record stops it after that).
 * Run by an operator (`npm run ops -- refunds --issue`), since money going out wants a
 * person to have looked first.
 */
import type { Clock } from '../shared/clock.ts';
import {
  type Overpayment,
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
  type PenaltyPaymentGateway,
  type PenaltyStore,
} from './ports.ts';

export interface RefundOverpaymentsDeps {
  store: Pick<PenaltyStore, 'listOverpayments' | 'markOverpaymentRefunded'>;
  gateway: Pick<PenaltyPaymentGateway, 'refundPenaltyPayment'>;
  clock: Clock;
}

export type RefundOutcome =
  | { overpayment: Overpayment; outcome: 'refunded'; refundId: string }
  | { overpayment: Overpayment; outcome: 'would-refund' }
  /** Stripe refused this one (e.g. already refunded by hand): left open, the rest go on. */
  | { overpayment: Overpayment; outcome: 'refused'; error: string }
  /** Stripe could not be reached: this one and the rest are left open for the next run. */
  | { overpayment: Overpayment; outcome: 'not-attempted'; error: string };

export function overpaymentRefundKey(overpayment: Overpayment): string {
  return `penalty-overpaid:${overpayment.paymentIntentId}:${overpayment.penaltyId}`;
}

export async function refundOverpayments(
  deps: RefundOverpaymentsDeps,
  options: { dryRun?: boolean; onEach?: (outcome: RefundOutcome) => void } = {},
): Promise<RefundOutcome[]> {
  const outcomes: RefundOutcome[] = [];
  const report = (outcome: RefundOutcome) => {
    outcomes.push(outcome);
    options.onEach?.(outcome);
  };
  let unreachable: string | null = null;
  for (const overpayment of await deps.store.listOverpayments()) {
    if (options.dryRun) {
      report({ overpayment, outcome: 'would-refund' });
      continue;
    }
    if (unreachable) {
      report({ overpayment, outcome: 'not-attempted', error: unreachable });
      continue;
    }
    try {
      const refundId = await deps.gateway.refundPenaltyPayment({
        paymentIntentId: overpayment.paymentIntentId,
        amount: overpayment.amount,
        penaltyIds: [overpayment.penaltyId],
        idempotencyKey: overpaymentRefundKey(overpayment),
      });
      await deps.store.markOverpaymentRefunded(overpayment, {
        refundId,
        refundedAt: new Date(deps.clock.now()).toISOString(),
      });
      report({ overpayment, outcome: 'refunded', refundId });
    } catch (error) {
      if (error instanceof PaymentGatewayUnavailableError) {
        unreachable = error.message;
        report({ overpayment, outcome: 'not-attempted', error: unreachable });
      } else if (error instanceof PaymentRejectedError) {
        report({ overpayment, outcome: 'refused', error: error.code });
      } else {
        throw error;
      }
    }
  }
  return outcomes;
}
