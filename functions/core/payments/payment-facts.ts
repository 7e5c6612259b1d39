/**
 * Turns a raw Stripe event of the payments family (any API version an account pins)
 * into the one fact the payment aggregate needs. Shapes differ by version, so each
 * fact is read from every place Stripe has put it:
 * - a PaymentIntent's charges: `charges.data[]` before 2022-11-15, `latest_charge`
 *   (an id, or the expanded object) from then on;
 * - a charge's refunds: `refunds.data[]` before 2022-11-15, none after (the refund
 *   events carry them instead);
 * - a payment's invoice: `invoice` on the PaymentIntent or charge before 2025-03-31
 *   "basil"; from then on only the InvoicePayment of `invoice_payment.paid` links
 *   them (a fact of its own, joined into the payment's purpose).
 * Amounts stay integer minor units; currencies are lower-cased.
 */
import * as z from 'zod/mini';
import {
  EVENT_FAMILY_TYPES,
  type FamilyEventType,
  isFamilyEventType,
} from '../shared/event-families.ts';
import { penaltyIdsFromMetadata } from '../shared/penalty-metadata.ts';
import {
  idOf,
  idOrObject,
  MalformedEventError,
  metadataSchema,
  parseOrThrow,
  type StripeEventEnvelope,
  type StripeMetadata,
  userIdFrom,
} from '../shared/stripe-envelope.ts';
import type { PaymentPurpose } from './ports.ts';

/** The payments family's types, from the routing table ingress routes by. */
export const PAYMENT_EVENT_TYPES = EVENT_FAMILY_TYPES.payments;
export type PaymentEventType = FamilyEventType<'payments'>;

export function isPaymentEventType(type: string): type is PaymentEventType {
  return isFamilyEventType('payments', type);
}

export type PaymentIntentEventType = Extract<PaymentEventType, `payment_intent.${string}`>;
export type ChargeEventType = 'charge.succeeded' | 'charge.failed' | 'charge.refunded';
export type RefundEventType = 'charge.refund.updated' | 'refund.created' | 'refund.updated';
export type DisputeEventType = 'charge.dispute.created' | 'charge.dispute.closed';
export type InvoiceLinkEventType = 'invoice_payment.paid';

/** Where a payment's lifecycle stands according to one PaymentIntent or charge event. */
export type PaymentOutcome = 'processing' | 'succeeded' | 'failed' | 'canceled';

export const CHARGE_STATUSES = ['succeeded', 'pending', 'failed'] as const;
export type ChargeStatus = (typeof CHARGE_STATUSES)[number];

export const REFUND_STATUSES = [
  'pending',
  'requires_action',
  'succeeded',
  'failed',
  'canceled',
] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/** A refund as one payload shows it (refund objects change status over time). */
export interface RefundSnapshot {
  refundId: string;
  /** The refunded charge (for a refund listed on a charge: that charge). */
  chargeId: string | null;
  amount: number;
  status: RefundStatus;
  /** The refund's own `created` (seconds). */
  created: number;
}

/** A charge as one payload shows it. */
export interface ChargeSnapshot {
  chargeId: string;
  /** The charge's own `created` (seconds). */
  created: number;
  status: ChargeStatus;
  /** Cumulative over the charge's refunds, as of this payload. */
  amountRefunded: number;
  failureCode: string | null;
  /** Refunds listed on the charge (API versions before 2022-11-15); [] otherwise. */
  refunds: RefundSnapshot[];
}

/** What a PaymentIntent or charge says about the payment itself. */
export interface PaymentDetails {
  /** Gross, minor units. */
  amount: number;
  /** Lower-case ISO currency. */
  currency: string;
  purpose: PaymentPurpose;
  /** From `metadata.penaltyIds` (comma-separated); [] when absent. */
  penaltyIds: string[];
}

interface PaymentFactBase {
  eventId: string;
  /** The event's `created` (seconds). */
  created: number;
  /** The payment's key: the PaymentIntent id, else the charge id. */
  paymentId: string;
  /** From `metadata.userId` / `metadata.user_id` (a session: also `client_reference_id`). */
  userId: string | null;
  customerId: string | null;
}

export interface PaymentIntentFact extends PaymentFactBase {
  kind: 'payment_intent';
  type: PaymentIntentEventType;
  /** The PaymentIntent's own `created` (seconds). */
  intentCreated: number;
  outcome: PaymentOutcome;
  details: PaymentDetails;
  /** The failure's code (`last_payment_error`, else the latest charge's) when `outcome` is failed. */
  failureCode: string | null;
  /** Charges the payload carries: all of `charges.data`, or an expanded `latest_charge`. */
  charges: ChargeSnapshot[];
  /** `latest_charge` as sent (maybe only an id), else the first listed charge (the newest). */
  latestChargeId: string | null;
}

export interface ChargeFact extends PaymentFactBase {
  kind: 'charge';
  type: ChargeEventType;
  /** succeeded for charge.succeeded and charge.refunded, failed for charge.failed. */
  outcome: 'succeeded' | 'failed';
  details: PaymentDetails;
  charge: ChargeSnapshot;
}

export interface RefundFact extends PaymentFactBase {
  kind: 'refund';
  type: RefundEventType;
  refund: RefundSnapshot;
}

export interface DisputeFact extends PaymentFactBase {
  kind: 'dispute';
  type: DisputeEventType;
  disputeId: string;
  chargeId: string | null;
  status: string;
  reason: string | null;
  amount: number;
}

/** A completed Checkout Session in `payment` mode. */
export interface CheckoutPaymentFact extends PaymentFactBase {
  kind: 'checkout';
  type: 'checkout.session.completed';
  sessionId: string;
  /** The session's own `created` (seconds). */
  sessionCreated: number;
  /** `payment_status` is `paid`. */
  paid: boolean;
  /** `amount_total`, when sent. */
  amount: number | null;
  currency: string | null;
  /** `penalty` when the session's metadata says so; a session says nothing of invoices. */
  purpose: 'penalty' | null;
  penaltyIds: string[];
  /** Whether `userId` came from metadata (it wins over `client_reference_id`). */
  userIdFromMetadata: boolean;
}

/**
 * An InvoicePayment (API 2025-03-31 "basil" and later): the payment pays an invoice,
 * so it is a subscription payment, whatever its own payloads say.
 */
export interface InvoiceLinkFact extends PaymentFactBase {
  kind: 'invoice_link';
  type: InvoiceLinkEventType;
  invoicePaymentId: string;
  invoiceId: string;
}

export type PaymentFact =
  | PaymentIntentFact
  | ChargeFact
  | RefundFact
  | DisputeFact
  | CheckoutPaymentFact
  | InvoiceLinkFact;

// Loose objects: Stripe adds fields in every API version; we read only what we need.
const amountSchema = z.int().check(z.nonnegative());
const currencySchema = z.string().check(z.minLength(1));

const refundSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  amount: amountSchema,
  status: z.enum(REFUND_STATUSES),
  created: z.int(),
  charge: z.nullish(idOrObject),
  payment_intent: z.nullish(idOrObject),
  customer: z.nullish(idOrObject),
  metadata: metadataSchema,
});
type RefundObject = z.infer<typeof refundSchema>;

const chargeSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  amount: amountSchema,
  currency: currencySchema,
  created: z.int(),
  status: z.enum(CHARGE_STATUSES),
  amount_refunded: z.nullish(amountSchema),
  failure_code: z.nullish(z.string()),
  payment_intent: z.nullish(idOrObject),
  customer: z.nullish(idOrObject),
  invoice: z.nullish(idOrObject),
  metadata: metadataSchema,
  refunds: z.nullish(z.looseObject({ data: z.array(refundSchema) })),
});
type ChargeObject = z.infer<typeof chargeSchema>;

const paymentIntentSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  amount: amountSchema,
  currency: currencySchema,
  created: z.int(),
  status: z.string().check(z.minLength(1)),
  customer: z.nullish(idOrObject),
  invoice: z.nullish(idOrObject),
  metadata: metadataSchema,
  last_payment_error: z.nullish(
    z.looseObject({ code: z.nullish(z.string()), decline_code: z.nullish(z.string()) }),
  ),
  charges: z.nullish(z.looseObject({ data: z.array(chargeSchema) })),
  latest_charge: z.nullish(z.union([z.string(), chargeSchema])),
});

const disputeSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  amount: amountSchema,
  status: z.string().check(z.minLength(1)),
  reason: z.nullish(z.string()),
  charge: z.nullish(idOrObject),
  payment_intent: z.nullish(idOrObject),
  metadata: metadataSchema,
});

/** `payment.type` says which reference is set; a `payment_record` is not a Stripe payment. */
const invoicePaymentSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  invoice: idOrObject,
  payment: z.looseObject({
    type: z.string().check(z.minLength(1)),
    payment_intent: z.nullish(idOrObject),
    charge: z.nullish(
      z.union([
        z.string(),
        z.looseObject({ id: z.string(), payment_intent: z.nullish(idOrObject) }),
      ]),
    ),
  }),
});

/** Just enough to tell whether a session is ours; other modes need not carry our fields. */
const checkoutModeSchema = z.looseObject({
  mode: z.string(),
  payment_intent: z.nullish(idOrObject),
});

const checkoutSessionSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  created: z.int(),
  customer: z.nullish(idOrObject),
  client_reference_id: z.nullish(z.string()),
  metadata: metadataSchema,
  amount_total: z.nullish(amountSchema),
  currency: z.nullish(z.string()),
  payment_status: z.nullish(z.string()),
});

/** The penalties a payment settles, from its metadata (layout: core/shared/penalty-metadata.ts). */
export function parsePenaltyIds(metadata: StripeMetadata): string[] {
  return penaltyIdsFromMetadata(metadata);
}

/** `penalty` by our metadata, `subscription` when Stripe links an invoice, else `other`. */
function purposeOf(metadata: StripeMetadata, invoice: string | null): PaymentPurpose {
  if (metadata?.purpose === 'penalty') return 'penalty';
  return invoice ? 'subscription' : 'other';
}

function detailsOf(object: {
  amount: number;
  currency: string;
  metadata?: StripeMetadata;
  invoice?: z.infer<typeof idOrObject> | null;
}): PaymentDetails {
  return {
    amount: object.amount,
    currency: object.currency.toLowerCase(),
    purpose: purposeOf(object.metadata, idOf(object.invoice)),
    penaltyIds: parsePenaltyIds(object.metadata),
  };
}

/**
 * The lifecycle a PaymentIntent event shows. The event type says what happened (a
 * failed PaymentIntent is back to `requires_payment_method`); a `succeeded` or
 * `canceled` object is final whatever the type.
 */
export function intentOutcome(type: PaymentIntentEventType, status: string): PaymentOutcome {
  if (type === 'payment_intent.succeeded' || status === 'succeeded') return 'succeeded';
  if (type === 'payment_intent.canceled' || status === 'canceled') return 'canceled';
  if (type === 'payment_intent.payment_failed') return 'failed';
  return 'processing';
}

function refundSnapshot(refund: RefundObject, parentChargeId: string | null): RefundSnapshot {
  return {
    refundId: refund.id,
    chargeId: parentChargeId ?? idOf(refund.charge),
    amount: refund.amount,
    status: refund.status,
    created: refund.created,
  };
}

function chargeSnapshot(charge: ChargeObject): ChargeSnapshot {
  return {
    chargeId: charge.id,
    created: charge.created,
    status: charge.status,
    amountRefunded: charge.amount_refunded ?? 0,
    failureCode: charge.failure_code ?? null,
    // A refund listed on a charge belongs to that charge, whatever its own field says.
    refunds: (charge.refunds?.data ?? []).map((refund) => refundSnapshot(refund, charge.id)),
  };
}

/** The payment a refund or dispute belongs to: its PaymentIntent, else its charge. */
function paymentKeyOf(
  type: string,
  paymentIntent: z.infer<typeof idOrObject> | null | undefined,
  charge: z.infer<typeof idOrObject> | null | undefined,
): string {
  const key = idOf(paymentIntent) ?? idOf(charge);
  if (!key) throw new MalformedEventError(`${type}: payment_intent and charge missing`);
  return key;
}

/**
 * The payment an InvoicePayment pays, keyed as refunds and disputes key it; null for
 * a `payment_record` (or a type Stripe adds later): no payment of ours.
 */
function invoicePaymentKeyOf(
  type: string,
  payment: z.infer<typeof invoicePaymentSchema>['payment'],
): string | null {
  if (payment.type === 'payment_intent') {
    const key = idOf(payment.payment_intent);
    if (!key) throw new MalformedEventError(`${type}: payment.payment_intent missing`);
    return key;
  }
  if (payment.type === 'charge') {
    const charge = payment.charge;
    // An expanded charge names its PaymentIntent, should it have one.
    const key =
      charge && typeof charge !== 'string'
        ? (idOf(charge.payment_intent) ?? charge.id)
        : (charge ?? null);
    if (!key) throw new MalformedEventError(`${type}: payment.charge missing`);
    return key;
  }
  return null;
}

/**
 * The payment fact of an event, or null when the event is not for the payments
 * context (another type, a Checkout Session not in `payment` mode or without a
 * PaymentIntent, an InvoicePayment of a payment record). Throws MalformedEventError,
 * naming the field, when a handled type lacks what is needed.
 */
export function toPaymentFact(event: StripeEventEnvelope): PaymentFact | null {
  const type = event.type;
  if (!isPaymentEventType(type)) return null;
  const stamp = { eventId: event.id, created: event.created };
  const object = event.data.object;
  switch (type) {
    case 'payment_intent.created':
    case 'payment_intent.processing':
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed':
    case 'payment_intent.canceled': {
      const intent = parseOrThrow(paymentIntentSchema, object, type);
      const latest = intent.latest_charge;
      const charges = (intent.charges?.data ?? []).map(chargeSnapshot);
      if (latest && typeof latest !== 'string' && !charges.some((c) => c.chargeId === latest.id))
        charges.push(chargeSnapshot(latest));
      // Stripe lists charges newest first: `created` cannot tell a retry in the same second.
      const latestChargeId = idOf(latest) ?? intent.charges?.data[0]?.id ?? null;
      const outcome = intentOutcome(type, intent.status);
      const latestSnapshot = charges.find((c) => c.chargeId === latestChargeId) ?? null;
      const error = intent.last_payment_error;
      return {
        ...stamp,
        kind: 'payment_intent',
        type,
        paymentId: intent.id,
        userId: userIdFrom(intent.metadata),
        customerId: idOf(intent.customer),
        intentCreated: intent.created,
        outcome,
        details: detailsOf(intent),
        failureCode:
          outcome === 'failed'
            ? (error?.code ?? error?.decline_code ?? latestSnapshot?.failureCode ?? null)
            : null,
        charges,
        latestChargeId,
      };
    }
    case 'charge.succeeded':
    case 'charge.failed':
    case 'charge.refunded': {
      const charge = parseOrThrow(chargeSchema, object, type);
      return {
        ...stamp,
        kind: 'charge',
        type,
        paymentId: idOf(charge.payment_intent) ?? charge.id,
        userId: userIdFrom(charge.metadata),
        customerId: idOf(charge.customer),
        outcome: type === 'charge.failed' ? 'failed' : 'succeeded',
        details: detailsOf(charge),
        charge: chargeSnapshot(charge),
      };
    }
    case 'charge.refund.updated':
    case 'refund.created':
    case 'refund.updated': {
      const refund = parseOrThrow(refundSchema, object, type);
      return {
        ...stamp,
        kind: 'refund',
        type,
        paymentId: paymentKeyOf(type, refund.payment_intent, refund.charge),
        userId: userIdFrom(refund.metadata),
        customerId: idOf(refund.customer),
        refund: refundSnapshot(refund, null),
      };
    }
    case 'charge.dispute.created':
    case 'charge.dispute.closed': {
      const dispute = parseOrThrow(disputeSchema, object, type);
      return {
        ...stamp,
        kind: 'dispute',
        type,
        paymentId: paymentKeyOf(type, dispute.payment_intent, dispute.charge),
        userId: userIdFrom(dispute.metadata),
        customerId: null,
        disputeId: dispute.id,
        chargeId: idOf(dispute.charge),
        status: dispute.status,
        reason: dispute.reason ?? null,
        amount: dispute.amount,
      };
    }
    case 'invoice_payment.paid': {
      const invoicePayment = parseOrThrow(invoicePaymentSchema, object, type);
      const paymentId = invoicePaymentKeyOf(type, invoicePayment.payment);
      if (paymentId === null) return null;
      return {
        ...stamp,
        kind: 'invoice_link',
        type,
        paymentId,
        // An InvoicePayment names no user or customer; the payment's own events do.
        userId: null,
        customerId: null,
        invoicePaymentId: invoicePayment.id,
        invoiceId: idOf(invoicePayment.invoice)!,
      };
    }
    case 'checkout.session.completed': {
      const mode = parseOrThrow(checkoutModeSchema, object, type);
      if (mode.mode !== 'payment') return null;
      const paymentId = idOf(mode.payment_intent);
      if (!paymentId) return null;
      const session = parseOrThrow(checkoutSessionSchema, object, type);
      const fromMetadata = userIdFrom(session.metadata);
      return {
        ...stamp,
        kind: 'checkout',
        type,
        paymentId,
        userId: fromMetadata ?? userIdFrom(null, session.client_reference_id),
        customerId: idOf(session.customer),
        sessionId: session.id,
        sessionCreated: session.created,
        paid: session.payment_status === 'paid',
        amount: session.amount_total ?? null,
        currency: session.currency ? session.currency.toLowerCase() : null,
        purpose: session.metadata?.purpose === 'penalty' ? 'penalty' : null,
        penaltyIds: parsePenaltyIds(session.metadata),
        userIdFromMetadata: fromMetadata !== null,
      };
    }
  }
}
