/**
 * The payment state as stored on the payment item (`state`): JSON deflated with the
 * preset dictionary below, so its field names and usual fragments cost a few bits
 * each. About 185 bytes for a typical payment against 350 with brotli, which with the
 * compact view (payment-view-codec.ts) keeps nearly every payment item under 1 KB.
 * Items written before hold brotli; both read back.
 */
import type { PaymentState } from '../../core/payments/payment-state.ts';
import {
  decodeCompressedJson,
  encodeCompressedJson,
  type PresetDictionary,
} from './compressed-json.ts';

/**
 * Dictionary 1: a payment state's skeleton with every optional part present (user,
 * lifecycle, failure, charges, refunds, dispute) and common values. Part of the
 * stored format: do not edit; a better one gets id 2 and is added to the list.
 */
const PAYMENT_STATE_DICTIONARY_1: PresetDictionary = {
  id: 1,
  bytes: Buffer.from(
    [
      '"status":"requires_action","status":"pending","reason":"product_not_received",',
      '"reason":"fraudulent","status":"needs_response","status":"won","status":"lost",',
      '"code":"card_declined","code":"expired_card","code":"insufficient_funds",',
      '"code":"processing_error","currency":"eur","currency":"gbp","purpose":"penalty",',
      '"purpose":"subscription","penalties":{"ids":["pen_user-","version":',
      '{"paymentId":"pi_3","intentCreated":17,"sessionCreated":null,"details":{"amount":',
      '"currency":"usd","fromSession":false,"version":{"created":17,"rank":2,"eventId":"evt_3',
      '"}},"customer":{"id":"cus_","version":{"created":17,"rank":4,"eventId":"evt_1',
      '"}},"user":{"id":"user-","fromMetadata":true,"version":{"created":17,"rank":4,"eventId":"evt_',
      '"}},"linkedUserId":null,"purpose":"other","penalties":null,"paidAt":17,',
      '"lifecycle":{"status":"processing","version":{"created":17,"rank":1,"eventId":"evt_',
      '"}},"failure":{"code":null,"version":{"created":17,"rank":2,"eventId":"evt_',
      '"}},"charges":{"ch_3":{"created":17,"seenAt":17,"snapshot":{"amountRefunded":0,',
      '"version":{"created":17,"rank":5,"eventId":"evt_3"}}}},"refunds":{"re_3":{"chargeId":"ch_3',
      '","amount":100,"status":"succeeded","created":17,"version":{"created":17,"rank":6,',
      '"eventId":"evt_"},"endedAt":null},"re_3"},"refundedAt":null,"dispute":{"disputeId":"du_',
      '","status":"warning_needs_response","reason":"general","amount":',
      ',"version":{"created":17,"rank":7,"eventId":"evt_"}}}',
    ].join(''),
  ),
};

const DICTIONARIES = [PAYMENT_STATE_DICTIONARY_1];

export function encodePaymentState(state: PaymentState): Uint8Array {
  return encodeCompressedJson(state, PAYMENT_STATE_DICTIONARY_1);
}

/** Reads `state` as `encodePaymentState` wrote it, as brotli (older items), or as a plain map. */
export function decodePaymentState(stored: unknown): PaymentState {
  return decodeCompressedJson<PaymentState>(stored, DICTIONARIES);
}
