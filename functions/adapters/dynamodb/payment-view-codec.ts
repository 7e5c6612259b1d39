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
import type { PaymentView } from '../../core/payments/ports.ts';

const LAYOUT_V1 = 1;

/** Fields stored as they are, in layout order. */
const PLAIN_FIELDS = [
  'paymentId',
  'chargeId',
  'userId',
  'customerId',
  'amount',
  'amountRefunded',
  'currency',
  'status',
  'purpose',
  'penaltyIds',
] as const;
/** ISO times, stored as epoch ms, after the plain fields. */
const TIME_FIELDS = ['createdAt', 'paidAt', 'refundedAt'] as const;

export function encodePaymentView(view: PaymentView): string {
  return JSON.stringify([
    LAYOUT_V1,
    ...PLAIN_FIELDS.map((field) => view[field]),
    ...TIME_FIELDS.map((field) => encodeTime(view[field])),
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
  const values = JSON.parse(stored) as unknown[];
  if (!Array.isArray(values) || values[0] !== LAYOUT_V1) {
    throw new Error(`payment view: unknown layout ${JSON.stringify(values?.[0])}`);
  }
  const view: Record<string, unknown> = {};
  let index = 1;
  for (const field of PLAIN_FIELDS) view[field] = values[index++];
  for (const field of TIME_FIELDS) {
    const time = values[index++] as number | string | null;
    view[field] = typeof time === 'number' ? new Date(time).toISOString() : time;
  }
  view.failureCode = values[index++];
  const dispute = values[index] as [string, string | null, number] | null;
  view.dispute = dispute ? { status: dispute[0], reason: dispute[1], amount: dispute[2] } : null;
  return view as unknown as PaymentView;
}

/** Epoch ms when that reads back as the same ISO string; the string itself otherwise. */
function encodeTime(iso: string | null): number | string | null {
  if (iso === null) return iso;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso ? ms : iso;
}
