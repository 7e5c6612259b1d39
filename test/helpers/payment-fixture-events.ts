/**
 * Raw Stripe payment events for handler and consumer tests, each built from one
 * captured fixture (test/fixtures/SOURCES.md) with only what a test must control
 * re-stamped: the event id and `created`, the object ids (PaymentIntent, charge,
 * refund, dispute), amount, currency, customer and `metadata` (userId, purpose,
 * penaltyIds). Everything else stays as Stripe sent it, so the consumer reads real
 * payload shapes: the 2020-era PaymentIntent with its `charges` list, the 2020-era
 * charge with its `refunds` list, the 2026 "dahlia" dispute and charge, and the
 * InvoicePayment of Stripe's API reference (test/fixtures/stripe-own/README.md).
 */

import { readFileSync } from 'node:fs';
import type { PaymentView } from '../../functions/core/payments/ports.ts';
import { loadStripeEvent, type StripeEventFixture, uniqueEventId } from './fixtures.ts';

type Json = Record<string, unknown>;

/** A Stripe event body as Stripe POSTs it (and as the queue carries it). */
export interface PaymentEventBody {
  id: string;
  object: 'event';
  type: string;
  created: number;
  data: { object: Json; previous_attributes?: Json };
  [key: string]: unknown;
}

/** One payment as a test sets it up. Times are epoch seconds. */
export interface FixturePayment {
  /** `pi_…`; for a charge without a PaymentIntent, equal to `chargeId`. */
  paymentId: string;
  chargeId: string;
  /** Written to `metadata.userId` when not null. */
  userId: string | null;
  customerId: string | null;
  amount: number;
  /** Lower-case ISO currency. */
  currency: string;
  /** The PaymentIntent's (or standalone charge's) own `created`. */
  created: number;
  /** The succeeded charge's own `created`. */
  chargeCreated: number;
  purpose: 'penalty' | 'subscription' | 'other';
  penaltyIds: string[];
}

let tagCounter = 0;

/** A tag for ids no other test (or test run) uses: letters and digits only. */
export function uniquePaymentTag(): string {
  tagCounter += 1;
  return `T${Date.now().toString(36)}${process.pid.toString(36)}${tagCounter.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** A payment with fresh ids (`pi_<tag>`, `ch_<tag>`), 20.00 USD unless overridden. */
export function fixturePayment(
  overrides: Partial<FixturePayment> & Pick<FixturePayment, 'created'>,
): FixturePayment {
  const tag = uniquePaymentTag();
  return {
    paymentId: `pi_${tag}`,
    chargeId: `ch_${tag}`,
    userId: null,
    customerId: null,
    amount: 2000,
    currency: 'usd',
    chargeCreated: overrides.created + 60,
    purpose: 'other',
    penaltyIds: [],
    ...overrides,
  };
}

/** ISO 8601 UTC of an epoch-seconds time, as the read API answers it. */
export const isoOf = (seconds: number) => new Date(seconds * 1000).toISOString();

/** Epoch seconds of an ISO 8601 UTC time. */
export const secondsOf = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** The body `GET /payments/{id}` answers for a paid payment whose events all landed. */
export function expectedPaymentView(payment: FixturePayment, overrides: Partial<PaymentView> = {}) {
  return {
    paymentId: payment.paymentId,
    chargeId: payment.chargeId,
    userId: payment.userId,
    customerId: payment.customerId,
    amount: payment.amount,
    amountRefunded: 0,
    currency: payment.currency,
    status: 'succeeded',
    purpose: payment.purpose,
    penaltyIds: payment.penaltyIds,
    createdAt: isoOf(payment.created),
    paidAt: isoOf(payment.chargeCreated),
    refundedAt: null,
    failureCode: null,
    dispute: null,
    ...overrides,
  };
}

function metadataOf(payment: FixturePayment): Record<string, string> {
  const metadata: Record<string, string> = {};
  if (payment.userId !== null) metadata.userId = payment.userId;
  if (payment.purpose === 'penalty') metadata.purpose = 'penalty';
  if (payment.penaltyIds.length > 0) metadata.penaltyIds = payment.penaltyIds.join(',');
  return metadata;
}

const invoiceOf = (payment: FixturePayment) =>
  payment.purpose === 'subscription' ? `in_${payment.paymentId.slice(3)}` : null;

/**
 * A PaymentIntent fixture made this payment's (ids, amount, customer, invoice, metadata);
 * with `charges`, also its embedded `charges` list (the 2020-08-27 shape).
 */
function intentOf(intent: Json, payment: FixturePayment, charges?: Json[]): Json {
  return {
    ...intent,
    id: payment.paymentId,
    amount: payment.amount,
    currency: payment.currency,
    created: payment.created,
    customer: payment.customerId,
    invoice: invoiceOf(payment),
    metadata: metadataOf(payment),
    ...(charges
      ? {
          charges: {
            ...(intent.charges as Json),
            data: charges,
            total_count: charges.length,
            url: `/v1/charges?payment_intent=${payment.paymentId}`,
          },
        }
      : {}),
  };
}

/** The embedded charges of a 2020-08-27 PaymentIntent fixture (the template charge first). */
const chargesOf = (intent: Json) => (intent.charges as { data: Json[] }).data;

/** The fixture's envelope with a fresh event id, a chosen `created` and a new object. */
function restamp(
  fixture: StripeEventFixture,
  created: number,
  object: (template: Json) => Json,
): PaymentEventBody {
  const event = loadStripeEvent<PaymentEventBody>(fixture);
  const { previous_attributes: _previous, ...data } = event.data;
  return {
    ...event,
    id: uniqueEventId(),
    created,
    data: { ...data, object: object(structuredClone(event.data.object)) },
  };
}

/** The succeeded charge of a payment, in the 2020-era shape (with its `refunds` list). */
function legacyCharge(
  template: Json,
  payment: FixturePayment,
  refunds: readonly RefundSpec[],
  refundTemplate: Json | null,
): Json {
  const refunded = refunds.reduce((sum, refund) => sum + refund.amount, 0);
  const list = (template.refunds ?? {}) as Json;
  return {
    ...template,
    id: payment.chargeId,
    amount: payment.amount,
    amount_captured: payment.amount,
    amount_refunded: refunded,
    refunded: refunded >= payment.amount,
    captured: true,
    paid: true,
    status: 'succeeded',
    created: payment.chargeCreated,
    currency: payment.currency,
    customer: payment.customerId,
    invoice: invoiceOf(payment),
    payment_intent: payment.paymentId === payment.chargeId ? null : payment.paymentId,
    metadata: metadataOf(payment),
    refunds: {
      ...list,
      data: refunds.map((refund) => ({
        ...(refundTemplate ?? {}),
        id: refund.refundId,
        amount: refund.amount,
        created: refund.created,
        currency: payment.currency,
        charge: payment.chargeId,
        payment_intent: payment.paymentId === payment.chargeId ? null : payment.paymentId,
        status: 'succeeded',
      })),
      total_count: refunds.length,
      url: `/v1/charges/${payment.chargeId}/refunds`,
    },
  };
}

/** `payment_intent.created` (stripe-ruby-mock, API 2020-08-27): requires_payment_method. */
export function intentCreatedEvent(
  payment: FixturePayment,
  at = payment.created,
): PaymentEventBody {
  return restamp('payment_intent.created.stripe-ruby-mock', at, (intent) =>
    intentOf(intent, payment, []),
  );
}

/**
 * `payment_intent.succeeded` (stripe-ruby-mock, API 2020-08-27): the old shape, with
 * the succeeded charge in the embedded `charges` list and no `latest_charge`.
 */
export function intentSucceededEvent(
  payment: FixturePayment,
  at = payment.chargeCreated,
): PaymentEventBody {
  return restamp('payment_intent.succeeded.stripe-ruby-mock', at, (intent) => ({
    ...intentOf(intent, payment, [legacyCharge(chargesOf(intent)[0]!, payment, [], null)]),
    amount_received: payment.amount,
  }));
}

/** `payment_intent.payment_failed` (stripe-sync-engine, API 2020-03-02) with a card error. */
export function intentFailedEvent(
  payment: FixturePayment,
  at: number,
  code = 'card_declined',
): PaymentEventBody {
  return restamp('payment_intent.payment_failed.stripe-sync-engine', at, (intent) => ({
    ...intentOf(intent, payment),
    latest_charge: payment.chargeId,
    last_payment_error: {
      type: 'card_error',
      code,
      decline_code: 'generic_decline',
      message: 'Your card was declined.',
    },
  }));
}

export interface RefundSpec {
  refundId: string;
  amount: number;
  /** The refund's own `created`. */
  created: number;
}

/**
 * `charge.refunded` (stripe-sync-engine, API 2020-03-02): the charge with its
 * cumulative `amount_refunded` and every refund so far in its `refunds` list.
 */
export function chargeRefundedEvent(
  payment: FixturePayment,
  at: number,
  refunds: readonly RefundSpec[],
): PaymentEventBody {
  return restamp('charge.refunded.stripe-sync-engine', at, (charge) => {
    const refundTemplate = (charge.refunds as { data: Json[] }).data[0]!;
    return legacyCharge(charge, payment, refunds, refundTemplate);
  });
}

/** `charge.succeeded` (zulip, API 2026-04-22.dahlia, no `refunds` list). */
export function chargeSucceededEvent(
  payment: FixturePayment,
  at = payment.chargeCreated,
): PaymentEventBody {
  return restamp('charge.succeeded.zulip', at, (charge) => {
    const { refunds: _none, ...rest } = legacyCharge(charge, payment, [], null);
    return rest;
  });
}

interface DisputeSpec {
  disputeId?: string;
  amount?: number;
  reason?: string;
}

/** A dispute fixture made a dispute of the payment's charge (`du_<payment>` by default). */
function disputeOf(
  object: Json,
  payment: FixturePayment,
  dispute: DisputeSpec,
  created: number,
  status: string,
): Json {
  return {
    ...object,
    id: dispute.disputeId ?? `du_${payment.paymentId.slice(3)}`,
    amount: dispute.amount ?? payment.amount,
    currency: payment.currency,
    charge: payment.chargeId,
    payment_intent: payment.paymentId === payment.chargeId ? null : payment.paymentId,
    created,
    status,
    reason: dispute.reason ?? 'product_not_received',
    metadata: {},
  };
}

/** `charge.dispute.created` (zulip, API 2026-04-22.dahlia): a `du_…` dispute of the charge. */
export function disputeCreatedEvent(
  payment: FixturePayment,
  at: number,
  dispute: DisputeSpec = {},
): PaymentEventBody {
  return restamp('charge.dispute.created.zulip', at, (object) =>
    disputeOf(object, payment, dispute, at, 'needs_response'),
  );
}

/** A `checkout.session.completed` in subscription mode (pay-rails data in Stripe's envelope). */
export function subscriptionCheckoutEvent(at: number): PaymentEventBody {
  return restamp('checkout.session.completed.mode-subscription.WRAPPED.pay-rails', at, (s) => s);
}

/** A `customer.created` (stripe/openapi canonical customer in Stripe's envelope). */
export function customerCreatedEvent(at: number): PaymentEventBody {
  return restamp('customer.created.WRAPPED.openapi-fixtures3', at, (customer) => customer);
}

const invoicePaymentFixture = readFileSync(
  new URL('../fixtures/stripe-own/invoice_payment.paid.basil.json', import.meta.url),
  'utf8',
);

/**
 * `invoice_payment.paid` (Stripe API reference example, API 2025-03-31.basil): the
 * InvoicePayment linking the payment to `in_<tag>`, by its PaymentIntent, or by its
 * charge for a charge without one; `reference`, when given, is its `payment`.
 */
export function invoicePaymentPaidEvent(
  payment: FixturePayment,
  at: number,
  reference?: Json,
): PaymentEventBody {
  const event = JSON.parse(invoicePaymentFixture) as PaymentEventBody;
  const byCharge = payment.paymentId === payment.chargeId;
  const tag = payment.paymentId.slice(3);
  return {
    ...event,
    id: uniqueEventId(),
    created: at,
    data: {
      object: {
        ...event.data.object,
        id: `inpay_${tag}`,
        amount_paid: payment.amount,
        amount_requested: payment.amount,
        created: at,
        currency: payment.currency,
        invoice: `in_${tag}`,
        payment:
          reference ??
          (byCharge
            ? { type: 'charge', charge: payment.chargeId }
            : { type: 'payment_intent', payment_intent: payment.paymentId }),
        status_transitions: { canceled_at: null, paid_at: at },
      },
    },
  };
}

/**
 * The event as an account on 2025-03-31.basil or later gets it: no `invoice` on the
 * PaymentIntent or charge, and a PaymentIntent names its `latest_charge` instead of
 * listing `charges`.
 */
export function asBasil(event: PaymentEventBody): PaymentEventBody {
  const { invoice: _invoice, charges, ...object } = event.data.object;
  if (object.object === 'payment_intent') {
    const listed = (charges as { data?: Json[] } | undefined)?.data ?? [];
    object.latest_charge = listed[0]?.id ?? null;
  }
  return { ...event, api_version: '2025-03-31.basil', data: { ...event.data, object } };
}

// ---- Builders for the remaining payment event types (additive) ----

/** A failed charge attempt of a payment (its own `ch_…` id and `created`). */
export interface FailedChargeSpec {
  chargeId: string;
  /** The failed charge's own `created`. */
  created: number;
  /** `failure_code`; default `card_declined`. */
  code?: string;
}

/** A fresh `ch_…` id for another charge attempt of `payment`. */
export function otherChargeId(payment: FixturePayment, suffix: string): string {
  return `ch_${suffix}${payment.paymentId.slice(3)}`;
}

/** A failed charge of a payment, in the 2020-era shape (on a PaymentIntent's `charges` list). */
function legacyFailedCharge(
  template: Json,
  payment: FixturePayment,
  failed: FailedChargeSpec,
): Json {
  const { refunds: _list, ...charge } = legacyCharge(template, payment, [], null);
  return {
    ...charge,
    id: failed.chargeId,
    created: failed.created,
    amount_captured: 0,
    captured: false,
    paid: false,
    status: 'failed',
    failure_code: failed.code ?? 'card_declined',
    failure_message: 'Your card was declined.',
    refunds: {
      object: 'list',
      data: [],
      has_more: false,
      total_count: 0,
      url: `/v1/charges/${failed.chargeId}/refunds`,
    },
  };
}

/**
 * `charge.failed` (zulip, API 2026-04-22.dahlia, no `refunds` list): the declined
 * attempt `failed.chargeId` of the payment, with its `failure_code`.
 */
export function chargeFailedEvent(
  payment: FixturePayment,
  at: number,
  failed: FailedChargeSpec,
): PaymentEventBody {
  return restamp('charge.failed.zulip', at, (charge) => ({
    ...charge,
    id: failed.chargeId,
    amount: payment.amount,
    currency: payment.currency,
    created: failed.created,
    customer: payment.customerId,
    payment_intent: payment.paymentId === payment.chargeId ? null : payment.paymentId,
    metadata: metadataOf(payment),
    failure_code: failed.code ?? 'card_declined',
  }));
}

/**
 * `charge.refunded` as an account on API 2022-11-15 or later gets it (the
 * stripe-sync-engine capture without its `refunds` list): only the cumulative
 * `amount_refunded` tells the refunds; the refund events carry them one by one.
 */
export function chargeRefundedUnlistedEvent(
  payment: FixturePayment,
  at: number,
  amountRefunded: number,
): PaymentEventBody {
  return restamp('charge.refunded.stripe-sync-engine', at, (charge) => {
    const { refunds: _list, ...rest } = legacyCharge(charge, payment, [], null);
    return { ...rest, amount_refunded: amountRefunded, refunded: amountRefunded >= payment.amount };
  });
}

export type RefundEventType = 'refund.created' | 'refund.updated' | 'charge.refund.updated';
export type RefundStatusSpec = 'pending' | 'requires_action' | 'succeeded' | 'failed' | 'canceled';

/**
 * A Refund event of the payment's charge. A failed (or canceled) refund is the zulip
 * `charge.refund.updated` capture of a refund failure (failure_reason and failure
 * balance transaction kept); any other status is the stripe-ruby-mock
 * `charge.refund.updated` refund. Both carry the same Refund object Stripe sends with
 * `refund.created` / `refund.updated` (API 2022-11-15 on), so those take the envelope
 * `type`. `payment_intent` is null for a charge without a PaymentIntent.
 */
export function refundEvent(
  type: RefundEventType,
  payment: FixturePayment,
  at: number,
  refund: RefundSpec & { status: RefundStatusSpec },
): PaymentEventBody {
  const ended = refund.status === 'failed' || refund.status === 'canceled';
  const fixture = ended
    ? 'charge.refund.updated.refund-failed.zulip'
    : 'charge.refund.updated.stripe-ruby-mock';
  const event = restamp(fixture, at, (object) => ({
    ...object,
    id: refund.refundId,
    amount: refund.amount,
    currency: payment.currency,
    created: refund.created,
    charge: payment.chargeId,
    payment_intent: payment.paymentId === payment.chargeId ? null : payment.paymentId,
    status: refund.status,
  }));
  return { ...event, type };
}

/**
 * `charge.dispute.closed` (zulip, API 2026-04-22.dahlia, a lost chargeback): the
 * dispute `disputeCreatedEvent` opens (same `du_…` id by default), closed `won` or `lost`.
 */
export function disputeClosedEvent(
  payment: FixturePayment,
  at: number,
  dispute: DisputeSpec & {
    status: 'won' | 'lost';
    /** The dispute's own `created`; default `at`. */
    created?: number;
  },
): PaymentEventBody {
  return restamp('charge.dispute.closed.zulip', at, (object) =>
    disputeOf(object, payment, dispute, dispute.created ?? at, dispute.status),
  );
}

/**
 * `payment_intent.processing` (the stripe-ruby-mock PaymentIntent of API 2020-08-27,
 * status `processing`): an async payment (ACH, SEPA) whose charge `payment.chargeId`
 * is still `pending` in the `charges` list (`asBasil` turns it into `latest_charge`).
 */
export function intentProcessingEvent(
  payment: FixturePayment,
  at = payment.chargeCreated,
): PaymentEventBody {
  const event = restamp('payment_intent.succeeded.stripe-ruby-mock', at, (intent) => ({
    ...intentOf(intent, payment, [
      {
        ...legacyCharge(chargesOf(intent)[0]!, payment, [], null),
        paid: false,
        status: 'pending',
      },
    ]),
    amount_received: 0,
    status: 'processing',
  }));
  return { ...event, type: 'payment_intent.processing' };
}

/**
 * `payment_intent.canceled` (the stripe-ruby-mock PaymentIntent of API 2020-08-27,
 * status `canceled`): with its declined attempt in the `charges` list when one is
 * given (`asBasil` turns it into `latest_charge`), else with no charge.
 */
export function intentCanceledEvent(
  payment: FixturePayment,
  at: number,
  failed?: FailedChargeSpec,
): PaymentEventBody {
  const event = restamp('payment_intent.succeeded.stripe-ruby-mock', at, (intent) => ({
    ...intentOf(
      intent,
      payment,
      failed ? [legacyFailedCharge(chargesOf(intent)[0]!, payment, failed)] : [],
    ),
    amount_received: 0,
    status: 'canceled',
    canceled_at: at,
    cancellation_reason: 'abandoned',
    payment_method: null,
  }));
  return { ...event, type: 'payment_intent.canceled' };
}

/**
 * `checkout.session.completed` in `payment` mode (stripe-sync-engine, API 2020-03-02):
 * the session `cs_test_<tag>` that paid the payment's PaymentIntent, its metadata the
 * payment's (`metadata.userId` when the payment has a user). `clientReferenceId`
 * names the user the way a Checkout integration without metadata does.
 */
export function paymentCheckoutEvent(
  payment: FixturePayment,
  at: number,
  session: {
    /** The session's own `created`; default the PaymentIntent's. */
    created?: number;
    paymentStatus?: 'paid' | 'unpaid' | 'no_payment_required';
    clientReferenceId?: string;
    /** `payment_intent`; default the payment's id. */
    paymentIntent?: string | null;
  } = {},
): PaymentEventBody {
  const created = session.created ?? payment.created;
  return restamp('checkout.session.completed.mode-payment.stripe-sync-engine', at, (object) => ({
    ...object,
    id: `cs_test_${payment.paymentId.slice(3)}`,
    created,
    expires_at: created + 86_400,
    amount_subtotal: payment.amount,
    amount_total: payment.amount,
    currency: payment.currency,
    customer: payment.customerId,
    client_reference_id: session.clientReferenceId ?? null,
    metadata: metadataOf(payment),
    payment_intent: session.paymentIntent === undefined ? payment.paymentId : session.paymentIntent,
    payment_status: session.paymentStatus ?? 'paid',
  }));
}
