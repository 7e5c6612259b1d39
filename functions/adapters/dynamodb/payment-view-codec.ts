/**
 * The payment view as stored on the payment item and projected to its four indexes:
 * one JSON string holding the fields in a fixed order, with times as epoch
 * milliseconds. As a DynamoDB map the view is ~320 bytes, 130 of them its field names
 * and 60 its ISO times; this is ~190. That keeps nearly every payment item under the
 * 1 KB that a transactional write bills as 2 units instead of 4 (docs/payments-capacity.md).
 *
 * Layout v1: `[1, paymentId, chargeId, userId, customerId, amount, amountRefunded,
 * currency, status, purpose, penaltyIds, createdAt, paidAt, refundedAt, failureCode,
 * dispute]`, dispute as `[status, reason, amount]` or null. The leading 1 is the
 * layout's version: a new layout takes a new number and this module reads both.
 * Items written before this codec hold the view as a map, read as is.
 */
import type { PaymentPurpose, PaymentStatus, PaymentView } from '../../core/payments/ports.ts';

const LAYOUT_V1 = 1;

export function encodePaymentView(view: PaymentView): string {
  return JSON.stringify([
    LAYOUT_V1,
    view.paymentId,
    view.chargeId,
    view.userId,
    view.customerId,
    view.amount,
    view.amountRefunded,
    view.currency,
    view.status,
    view.purpose,
    view.penaltyIds,
    encodeTime(view.createdAt),
    encodeTime(view.paidAt),
    encodeTime(view.refundedAt),
    view.failureCode,
    view.dispute ? [view.dispute.status, view.dispute.reason, view.dispute.amount] : null,
  ]);
}

/** Reads what `encodePaymentView` wrote, or a view stored as a map; throws on anything else. */
export function decodePaymentView(stored: unknown): PaymentView {
  if (typeof stored !== 'string') {
    if (stored && typeof stored === 'object' && 'paymentId' in stored) return stored as PaymentView;
    throw new Error(`payment view: unreadable stored value (${typeof stored})`);
  }
  const fields = JSON.parse(stored) as unknown[];
  if (!Array.isArray(fields) || fields[0] !== LAYOUT_V1) {
    throw new Error(`payment view: unknown layout ${JSON.stringify(fields?.[0])}`);
  }
  const [
    ,
    paymentId,
    chargeId,
    userId,
    customerId,
    amount,
    amountRefunded,
    currency,
    status,
    purpose,
    penaltyIds,
    createdAt,
    paidAt,
    refundedAt,
    failureCode,
    dispute,
  ] = fields as [
    number,
    string,
    string | null,
    string | null,
    string | null,
    number,
    number,
    string,
    PaymentStatus,
    PaymentPurpose,
    string[],
    number | string,
    number | string | null,
    number | string | null,
    string | null,
    [string, string | null, number] | null,
  ];
  return {
    paymentId,
    chargeId,
    userId,
    customerId,
    amount,
    amountRefunded,
    currency,
    status,
    purpose,
    penaltyIds,
    createdAt: decodeTime(createdAt),
    paidAt: paidAt === null ? null : decodeTime(paidAt),
    refundedAt: refundedAt === null ? null : decodeTime(refundedAt),
    failureCode,
    dispute: dispute ? { status: dispute[0], reason: dispute[1], amount: dispute[2] } : null,
  };
}

/** Epoch ms when that reads back as the same ISO string; the string itself otherwise. */
function encodeTime<T extends string | null>(iso: T): number | T {
  if (iso === null) return iso;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso ? ms : iso;
}

function decodeTime(stored: number | string): string {
  return typeof stored === 'number' ? new Date(stored).toISOString() : stored;
}
