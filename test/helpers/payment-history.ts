/**
 * Payment facts and realistic payment histories for tests and the benchmark.
 *
 * - Typed factories (`intentFact`, `chargeFact`, `refundFact`, `disputeFact`,
 *   `checkoutFact`, `invoiceLinkFact`) for hand-written scenarios.
 * - `generatePaymentHistory(seed)`: several payments' lives as Stripe would emit
 *   them (created → maybe processing → failed attempts → succeeded, canceled or
 *   stuck; refunds that are partial, full, pending, canceled or failing later;
 *   disputes created and closed; checkout sessions; subscription payments of API
 *   2025-03-31 "basil" linked to their invoice only by `invoice_payment.paid`), as
 *   `PaymentFact`s in Stripe's order, with the view each payment must end with.
 *   Deterministic per seed.
 * - `toStripeEvent(fact, { apiVersion })`: the raw Stripe event body of a fact, built
 *   from the captured fixture payloads (test/fixtures/stripe, and stripe-own for the
 *   InvoicePayment), in the pre-2022-11-15 shape (`charges` list, `refunds` list), the
 *   later one (`latest_charge`), or basil's (no `invoice` on PaymentIntents and charges).
 *   For facts from the factories or the generator, `toPaymentFact` reads it back equal.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  type ChargeEventType,
  type ChargeFact,
  type ChargeSnapshot,
  type CheckoutPaymentFact,
  type DisputeEventType,
  type DisputeFact,
  type InvoiceLinkFact,
  intentOutcome,
  type PaymentDetails,
  type PaymentFact,
  type PaymentIntentEventType,
  type PaymentIntentFact,
  type PaymentOutcome,
  type RefundEventType,
  type RefundFact,
  type RefundSnapshot,
  type RefundStatus,
} from '../../functions/core/payments/payment-facts.ts';
import type { PaymentStatus, PaymentView } from '../../functions/core/payments/ports.ts';

// ---------------------------------------------------------------- factories

/** Defaults of the factories: one PaymentIntent of 20.00 USD. */
export const TEST_PAYMENT = {
  paymentId: 'pi_test_1',
  chargeId: 'ch_test_1',
  userId: 'user-1',
  customerId: 'cus_test_1',
  amount: 2000,
  currency: 'usd',
  /** 2025-06-15T12:00:00Z. */
  created: 1_749_988_800,
} as const;

let factoryCounter = 0;
/** A unique event id for a factory-made fact (when the test does not name one). */
function nextEventId(): string {
  factoryCounter += 1;
  return `evt_f${factoryCounter.toString(36).padStart(6, '0')}`;
}

export function details(overrides: Partial<PaymentDetails> = {}): PaymentDetails {
  return {
    amount: TEST_PAYMENT.amount,
    currency: TEST_PAYMENT.currency,
    purpose: 'other',
    penaltyIds: [],
    ...overrides,
  };
}

export function chargeSnapshot(overrides: Partial<ChargeSnapshot> = {}): ChargeSnapshot {
  return {
    chargeId: TEST_PAYMENT.chargeId,
    created: TEST_PAYMENT.created,
    status: 'succeeded',
    amountRefunded: 0,
    failureCode: null,
    refunds: [],
    ...overrides,
  };
}

export function refundSnapshot(overrides: Partial<RefundSnapshot> = {}): RefundSnapshot {
  return {
    refundId: 're_test_1',
    chargeId: TEST_PAYMENT.chargeId,
    amount: 500,
    status: 'succeeded',
    created: TEST_PAYMENT.created + 100,
    ...overrides,
  };
}

/** The PaymentIntent status a payload of this type and outcome shows. */
function intentStatus(type: PaymentIntentEventType, outcome: PaymentOutcome): string {
  if (outcome === 'succeeded') return 'succeeded';
  if (outcome === 'canceled') return 'canceled';
  return type === 'payment_intent.processing' ? 'processing' : 'requires_payment_method';
}

export function intentFact(
  type: PaymentIntentEventType,
  created: number,
  overrides: Partial<PaymentIntentFact> = {},
): PaymentIntentFact {
  return {
    kind: 'payment_intent',
    type,
    eventId: nextEventId(),
    created,
    paymentId: TEST_PAYMENT.paymentId,
    userId: TEST_PAYMENT.userId,
    customerId: TEST_PAYMENT.customerId,
    intentCreated: TEST_PAYMENT.created,
    outcome: intentOutcome(type, type === 'payment_intent.succeeded' ? 'succeeded' : ''),
    details: details(),
    failureCode: null,
    charges: [],
    latestChargeId: null,
    ...overrides,
  };
}

export function chargeFact(
  type: ChargeEventType,
  created: number,
  overrides: Partial<ChargeFact> = {},
): ChargeFact {
  return {
    kind: 'charge',
    type,
    eventId: nextEventId(),
    created,
    paymentId: TEST_PAYMENT.paymentId,
    userId: TEST_PAYMENT.userId,
    customerId: TEST_PAYMENT.customerId,
    outcome: type === 'charge.failed' ? 'failed' : 'succeeded',
    details: details(),
    charge: chargeSnapshot(type === 'charge.failed' ? { status: 'failed' } : {}),
    ...overrides,
  };
}

export function refundFact(
  type: RefundEventType,
  created: number,
  refund: Partial<RefundSnapshot> = {},
  overrides: Partial<RefundFact> = {},
): RefundFact {
  return {
    kind: 'refund',
    type,
    eventId: nextEventId(),
    created,
    paymentId: TEST_PAYMENT.paymentId,
    userId: null,
    customerId: null,
    refund: refundSnapshot({ created, ...refund }),
    ...overrides,
  };
}

export function disputeFact(
  type: DisputeEventType,
  created: number,
  overrides: Partial<DisputeFact> = {},
): DisputeFact {
  return {
    kind: 'dispute',
    type,
    eventId: nextEventId(),
    created,
    paymentId: TEST_PAYMENT.paymentId,
    userId: null,
    customerId: null,
    disputeId: 'du_test_1',
    chargeId: TEST_PAYMENT.chargeId,
    status: type === 'charge.dispute.closed' ? 'lost' : 'needs_response',
    reason: 'fraudulent',
    amount: TEST_PAYMENT.amount,
    ...overrides,
  };
}

export function checkoutFact(
  created: number,
  overrides: Partial<CheckoutPaymentFact> = {},
): CheckoutPaymentFact {
  return {
    kind: 'checkout',
    type: 'checkout.session.completed',
    eventId: nextEventId(),
    created,
    paymentId: TEST_PAYMENT.paymentId,
    userId: TEST_PAYMENT.userId,
    customerId: TEST_PAYMENT.customerId,
    sessionId: 'cs_test_1',
    sessionCreated: TEST_PAYMENT.created,
    paid: true,
    amount: TEST_PAYMENT.amount,
    currency: TEST_PAYMENT.currency,
    purpose: null,
    penaltyIds: [],
    userIdFromMetadata: true,
    ...overrides,
  };
}

export function invoiceLinkFact(
  created: number,
  overrides: Partial<InvoiceLinkFact> = {},
): InvoiceLinkFact {
  return {
    kind: 'invoice_link',
    type: 'invoice_payment.paid',
    eventId: nextEventId(),
    created,
    paymentId: TEST_PAYMENT.paymentId,
    userId: null,
    customerId: null,
    invoicePaymentId: 'inpay_test_1',
    invoiceId: 'in_test_1',
    ...overrides,
  };
}

// ---------------------------------------------------------------- raw Stripe events

/** Before this version a PaymentIntent lists `charges` and a charge lists `refunds`. */
export const LEGACY_API_VERSION = '2020-08-27';
export const CURRENT_API_VERSION = '2022-11-15';
/** From this version on, PaymentIntents and charges carry no `invoice`. */
export const BASIL_API_VERSION = '2025-03-31.basil';

const fixtureDir = fileURLToPath(new URL('../fixtures/stripe/', import.meta.url));
const readJson = (name: string) => JSON.parse(readFileSync(`${fixtureDir}${name}`, 'utf8'));
const ownFixtureDir = fileURLToPath(new URL('../fixtures/stripe-own/', import.meta.url));

type Json = Record<string, unknown>;
const legacyIntent: Json = readJson('payment_intent.succeeded.stripe-ruby-mock.json').data.object;
const templates = {
  legacyIntent,
  intent: readJson('openapi-canonical/payment_intent.object.openapi-fixtures3.json') as Json,
  legacyCharge: (legacyIntent.charges as { data: Json[] }).data[0] as Json,
  charge: readJson('charge.succeeded.zulip.json').data.object as Json,
  refund: readJson('charge.refund.updated.stripe-ruby-mock.json').data.object as Json,
  legacyDispute: readJson('charge.dispute.created.stripe-ruby-mock.json').data.object as Json,
  dispute: readJson('charge.dispute.created.zulip.json').data.object as Json,
  session: readJson('checkout.session.completed.mode-payment.stripe-sync-engine.json').data
    .object as Json,
  invoicePayment: JSON.parse(
    readFileSync(`${ownFixtureDir}invoice_payment.paid.basil.json`, 'utf8'),
  ).data.object as Json,
};

/** A raw Stripe event body, as Stripe POSTs it. */
export interface StripeEventJson {
  id: string;
  object: 'event';
  type: string;
  created: number;
  livemode: boolean;
  api_version: string;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  data: { object: Json };
}

export interface ToStripeEventOptions {
  /** Default CURRENT_API_VERSION. */
  apiVersion?: string;
  /** Currency of refund, dispute and InvoicePayment objects (their facts do not carry it). Default usd. */
  currency?: string;
  /** `amount_paid` of an InvoicePayment (its fact does not carry it). Default 2000. */
  amount?: number;
}

const isLegacy = (apiVersion: string) => apiVersion < CURRENT_API_VERSION;
const isBasil = (apiVersion: string) => apiVersion >= BASIL_API_VERSION;

function metadataOf(userId: string | null, purpose: string | null, penaltyIds: string[]): Json {
  const metadata: Json = {};
  if (userId) metadata.userId = userId;
  if (purpose === 'penalty') metadata.purpose = 'penalty';
  if (penaltyIds.length > 0) metadata.penaltyIds = penaltyIds.join(',');
  return metadata;
}

/** An invoice id for a subscription payment (the id is not read back, only its presence). */
const invoiceOf = (purpose: string, paymentId: string) =>
  purpose === 'subscription' ? `in_for_${paymentId}` : null;

interface ChargeContext {
  paymentIntent: string | null;
  userId: string | null;
  customerId: string | null;
  details: PaymentDetails;
}

function refundObject(
  refund: RefundSnapshot,
  paymentIntent: string | null,
  currency: string,
  extra: { userId?: string | null; customerId?: string | null } = {},
): Json {
  const object: Json = {
    ...structuredClone(templates.refund),
    id: refund.refundId,
    amount: refund.amount,
    status: refund.status,
    created: refund.created,
    charge: refund.chargeId,
    payment_intent: paymentIntent,
    currency,
    metadata: metadataOf(extra.userId ?? null, null, []),
  };
  if (extra.customerId) object.customer = extra.customerId;
  if (refund.status === 'failed') object.failure_reason = 'expired_or_canceled_card';
  return object;
}

function chargeObject(charge: ChargeSnapshot, context: ChargeContext, legacy: boolean): Json {
  const { details } = context;
  const succeeded = charge.status === 'succeeded';
  const object: Json = {
    ...structuredClone(legacy ? templates.legacyCharge : templates.charge),
    id: charge.chargeId,
    amount: details.amount,
    amount_captured: succeeded ? details.amount : 0,
    amount_refunded: charge.amountRefunded,
    refunded: details.amount > 0 && charge.amountRefunded >= details.amount,
    captured: succeeded,
    paid: succeeded,
    created: charge.created,
    currency: details.currency,
    status: charge.status,
    failure_code: charge.failureCode,
    failure_message: charge.failureCode ? 'Your card was declined.' : null,
    payment_intent: context.paymentIntent,
    customer: context.customerId,
    invoice: invoiceOf(details.purpose, context.paymentIntent ?? charge.chargeId),
    metadata: metadataOf(context.userId, details.purpose, details.penaltyIds),
  };
  if (legacy || charge.refunds.length > 0) {
    object.refunds = {
      object: 'list',
      data: charge.refunds.map((refund) =>
        refundObject(refund, context.paymentIntent, details.currency),
      ),
      has_more: false,
      total_count: charge.refunds.length,
      url: `/v1/charges/${charge.chargeId}/refunds`,
    };
  } else {
    delete object.refunds;
  }
  return object;
}

function intentObject(fact: PaymentIntentFact, legacy: boolean): Json {
  const { details } = fact;
  const context: ChargeContext = {
    paymentIntent: fact.paymentId,
    userId: fact.userId,
    customerId: fact.customerId,
    details,
  };
  const object: Json = {
    ...structuredClone(legacy ? templates.legacyIntent : templates.intent),
    id: fact.paymentId,
    amount: details.amount,
    amount_received: fact.outcome === 'succeeded' ? details.amount : 0,
    currency: details.currency,
    created: fact.intentCreated,
    status: intentStatus(fact.type, fact.outcome),
    canceled_at: fact.outcome === 'canceled' ? fact.created : null,
    customer: fact.customerId,
    invoice: invoiceOf(details.purpose, fact.paymentId),
    metadata: metadataOf(fact.userId, details.purpose, details.penaltyIds),
    last_payment_error: fact.failureCode
      ? { type: 'card_error', code: fact.failureCode, message: 'Your card was declined.' }
      : null,
  };
  if (legacy) {
    delete object.latest_charge;
    object.charges = {
      object: 'list',
      data: fact.charges.map((charge) => chargeObject(charge, context, true)),
      has_more: false,
      total_count: fact.charges.length,
      url: `/v1/charges?payment_intent=${fact.paymentId}`,
    };
  } else {
    delete object.charges;
    if (fact.charges.length > 1)
      throw new Error('a PaymentIntent of 2022-11-15 or later carries at most its latest charge');
    const [latest] = fact.charges;
    object.latest_charge = latest ? chargeObject(latest, context, false) : fact.latestChargeId;
  }
  return object;
}

function disputeObject(fact: DisputeFact, legacy: boolean, currency: string): Json {
  return {
    ...structuredClone(legacy ? templates.legacyDispute : templates.dispute),
    id: fact.disputeId,
    amount: fact.amount,
    status: fact.status,
    reason: fact.reason,
    charge: fact.chargeId,
    payment_intent: fact.paymentId !== fact.chargeId ? fact.paymentId : null,
    created: fact.created,
    currency,
    metadata: metadataOf(fact.userId, null, []),
  };
}

function invoicePaymentObject(fact: InvoiceLinkFact, amount: number, currency: string): Json {
  const byCharge = fact.paymentId.startsWith('ch_');
  return {
    ...structuredClone(templates.invoicePayment),
    id: fact.invoicePaymentId,
    amount_paid: amount,
    amount_requested: amount,
    created: fact.created,
    currency,
    invoice: fact.invoiceId,
    payment: byCharge
      ? { type: 'charge', charge: fact.paymentId }
      : { type: 'payment_intent', payment_intent: fact.paymentId },
    status_transitions: { canceled_at: null, paid_at: fact.created },
  };
}

function sessionObject(fact: CheckoutPaymentFact): Json {
  const fromMetadata = fact.userIdFromMetadata ? fact.userId : null;
  return {
    ...structuredClone(templates.session),
    id: fact.sessionId,
    mode: 'payment',
    created: fact.sessionCreated,
    payment_intent: fact.paymentId,
    customer: fact.customerId,
    client_reference_id: fact.userIdFromMetadata ? null : fact.userId,
    metadata: metadataOf(fromMetadata, fact.purpose, fact.penaltyIds),
    amount_subtotal: fact.amount,
    amount_total: fact.amount,
    currency: fact.currency,
    payment_status: fact.paid ? 'paid' : 'unpaid',
    subscription: null,
    invoice: null,
  };
}

/** The event Stripe would send for this fact (`toPaymentFact` reads the fact back). */
export function toStripeEvent(
  fact: PaymentFact,
  options: ToStripeEventOptions = {},
): StripeEventJson {
  const apiVersion = options.apiVersion ?? CURRENT_API_VERSION;
  const legacy = isLegacy(apiVersion);
  const currency = options.currency ?? 'usd';
  let object: Json;
  switch (fact.kind) {
    case 'payment_intent':
      object = intentObject(fact, legacy);
      break;
    case 'charge':
      object = chargeObject(
        fact.charge,
        {
          paymentIntent: fact.paymentId !== fact.charge.chargeId ? fact.paymentId : null,
          userId: fact.userId,
          customerId: fact.customerId,
          details: fact.details,
        },
        legacy,
      );
      break;
    case 'refund': {
      const { refund } = fact;
      const paymentIntent = fact.paymentId !== refund.chargeId ? fact.paymentId : null;
      object = refundObject(refund, paymentIntent, currency, fact);
      break;
    }
    case 'dispute':
      object = disputeObject(fact, legacy, currency);
      break;
    case 'checkout':
      object = sessionObject(fact);
      break;
    case 'invoice_link':
      object = invoicePaymentObject(fact, options.amount ?? 2000, currency);
      break;
  }
  // Basil removed the field: its payloads do not even carry it as null.
  if (isBasil(apiVersion) && (fact.kind === 'payment_intent' || fact.kind === 'charge')) {
    delete object.invoice;
    const latest = object.latest_charge;
    if (latest && typeof latest === 'object') delete (latest as Json).invoice;
  }
  return {
    id: fact.eventId,
    object: 'event',
    type: fact.type,
    created: fact.created,
    livemode: false,
    api_version: apiVersion,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: { object },
  };
}

// ---------------------------------------------------------------- generated histories

/** mulberry32: small, fast, good enough for test data. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What applying a payment's facts once, in order, must give (the fields that the history decides). */
export type ExpectedPayment = Pick<
  PaymentView,
  | 'paymentId'
  | 'chargeId'
  | 'userId'
  | 'customerId'
  | 'amount'
  | 'amountRefunded'
  | 'currency'
  | 'status'
  | 'purpose'
  | 'penaltyIds'
  | 'createdAt'
  | 'paidAt'
  | 'refundedAt'
  | 'failureCode'
  | 'dispute'
>;

export interface GeneratedPayment {
  paymentId: string;
  apiVersion: string;
  /** In the order Stripe created them. */
  facts: PaymentFact[];
  expected: ExpectedPayment;
}

export interface GeneratedPaymentHistory {
  seed: number;
  payments: GeneratedPayment[];
}

export interface PaymentHistoryOptions {
  /** Number of payments (default 1–4 at random). */
  payments?: number;
  /** Namespaces ids so many histories can share one table. Default `gen`. */
  prefix?: string;
  /** Unix seconds near which the payments start. Default: a few minutes before a UTC midnight. */
  start?: number;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const FAILURE_CODES = ['card_declined', 'expired_card', 'insufficient_funds', 'processing_error'];
const CURRENCIES = ['usd', 'eur', 'inr'];

/**
 * Several payments' lives, each as Stripe emits it. Events are often in the same
 * second (the hard case for ordering); event ids are random, not in history order.
 * Payments start near a UTC midnight, so partial views can fall on another day than
 * the final one.
 */
export function generatePaymentHistory(
  seed: number,
  options: PaymentHistoryOptions = {},
): GeneratedPaymentHistory {
  const random = seededRandom(seed);
  const count = options.payments ?? 1 + Math.floor(random() * 4);
  const prefix = options.prefix ?? 'gen';
  const start = options.start ?? 1_750_032_000 - Math.floor(random() * 600);
  const usedEventIds = new Set<string>();
  const eventId = () => {
    let id: string;
    do
      id = `evt_${Math.floor(random() * 36 ** 10)
        .toString(36)
        .padStart(10, '0')}`;
    while (usedEventIds.has(id));
    usedEventIds.add(id);
    return id;
  };
  const payments: GeneratedPayment[] = [];
  for (let index = 0; index < count; index++) {
    const tag = `${prefix}${seed}n${index}`;
    payments.push(generatePayment(random, eventId, tag, start + Math.floor(random() * 300)));
  }
  return { seed, payments };
}

function generatePayment(
  random: () => number,
  eventId: () => string,
  tag: string,
  start: number,
): GeneratedPayment {
  const chance = (p: number) => random() < p;
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const legacy = chance(0.5);
  const withoutIntent = chance(0.12);
  // Stripe ids are random: whether a retry's charge id sorts after the first one's
  // varies by payment, so no rule can lean on id order.
  const idsDescend = [...tag].reduce((sum, char) => sum + char.charCodeAt(0), 0) % 2 === 1;
  const chargeIdOf = (attempt: number) => `ch_${tag}a${idsDescend ? 9 - attempt : attempt}`;
  const paymentId = withoutIntent ? chargeIdOf(0) : `pi_${tag}`;
  const userId = `user-${tag}`;
  // Where the user id is: PaymentIntent/charge metadata, only a checkout session, or nowhere.
  const userSource = withoutIntent
    ? pick(['metadata', 'none'] as const)
    : pick(['metadata', 'metadata', 'session', 'none'] as const);
  const customerId = chance(0.7) ? `cus_${tag}` : null;
  const purpose = pick(['penalty', 'subscription', 'other', 'other'] as const);
  // Basil and later: no `invoice` on the payment's payloads; `invoice_payment.paid`
  // links it once paid (an unpaid one reads as `other`).
  const basil = !legacy && purpose === 'subscription' && chance(0.5);
  const apiVersion = legacy ? LEGACY_API_VERSION : basil ? BASIL_API_VERSION : CURRENT_API_VERSION;
  const paymentDetails: PaymentDetails = {
    amount: 100 * (1 + Math.floor(random() * 60)),
    currency: pick(CURRENCIES),
    purpose: basil ? 'other' : purpose,
    penaltyIds:
      purpose === 'penalty'
        ? Array.from({ length: 1 + Math.floor(random() * 3) }, (_, k) => `pen_${tag}k${k}`)
        : [],
  };
  const metadataUser = userSource === 'metadata' ? userId : null;

  let clock = start;
  /** Often 0 s (same-second bursts), at least `min`. */
  const tick = (min = 0) => {
    clock += Math.max(min, chance(0.45) ? 0 : 1 + Math.floor(random() * 90));
    return clock;
  };
  const facts: PaymentFact[] = [];
  const base = () => ({ eventId: eventId(), paymentId });

  const intentCreated = clock;
  const charges: ChargeSnapshot[] = [];
  const refunds: RefundSnapshot[] = [];
  let lastFailureCode: string | null = null;
  let succeeded: ChargeSnapshot | null = null;
  let lifecycle: 'processing' | 'failed' | 'canceled' = 'processing';
  let sessionUser = false;

  const intentEvent = (
    type: PaymentIntentEventType,
    outcome: PaymentOutcome,
    failureCode: string | null = null,
  ) => {
    const created = clock;
    // Legacy payloads list every charge so far, newest first; later ones name the
    // latest by id, or (now and then) expand it.
    const snapshots = charges.map((charge) => structuredClone(charge)).reverse();
    const latest = snapshots[0] ?? null;
    const expand = !legacy && latest !== null && chance(0.25);
    facts.push({
      ...base(),
      kind: 'payment_intent',
      type,
      created,
      userId: metadataUser,
      customerId,
      intentCreated,
      outcome,
      details: paymentDetails,
      failureCode,
      charges: legacy ? snapshots : expand && latest ? [latest] : [],
      latestChargeId: latest?.chargeId ?? null,
    });
  };
  const chargeSnapshotNow = (charge: ChargeSnapshot): ChargeSnapshot => ({
    ...structuredClone(charge),
    amountRefunded: refunds
      .filter((refund) => refund.status !== 'failed' && refund.status !== 'canceled')
      .reduce((sum, refund) => sum + refund.amount, 0),
    refunds: legacy ? refunds.map((refund) => ({ ...refund })) : [],
  });
  const chargeEvent = (type: ChargeEventType, charge: ChargeSnapshot) => {
    facts.push({
      ...base(),
      kind: 'charge',
      type,
      created: clock,
      userId: metadataUser,
      customerId,
      outcome: type === 'charge.failed' ? 'failed' : 'succeeded',
      details: paymentDetails,
      charge: chargeSnapshotNow(charge),
    });
  };
  const refundEvent = (type: RefundEventType, refund: RefundSnapshot) => {
    facts.push({
      ...base(),
      kind: 'refund',
      type,
      created: clock,
      userId: null,
      customerId: null,
      refund: { ...refund },
    });
  };

  // --- the payment itself
  if (!withoutIntent) {
    intentEvent('payment_intent.created', 'processing');
    if (chance(0.3)) {
      tick();
      intentEvent('payment_intent.processing', 'processing');
    }
  }
  const failures = withoutIntent ? (chance(0.2) ? 1 : 0) : pick([0, 0, 1, 2]);
  for (let attempt = 0; attempt < failures; attempt++) {
    // A new attempt starts at least a second after the last one ended.
    const created = tick(attempt === 0 ? 0 : 1);
    const code = pick(FAILURE_CODES);
    const charge: ChargeSnapshot = {
      chargeId: chargeIdOf(charges.length),
      created,
      status: 'failed',
      amountRefunded: 0,
      failureCode: code,
      refunds: [],
    };
    charges.push(charge);
    lastFailureCode = code;
    lifecycle = 'failed';
    chargeEvent('charge.failed', charge);
    if (!withoutIntent) {
      tick();
      intentEvent('payment_intent.payment_failed', 'failed', code);
    }
  }
  const ending = withoutIntent
    ? failures > 0
      ? 'none'
      : 'succeeded'
    : pick(['succeeded', 'succeeded', 'succeeded', 'canceled', 'none'] as const);
  if (ending === 'succeeded') {
    // A retry may succeed in the very second the last attempt failed.
    const created = tick();
    succeeded = {
      chargeId: chargeIdOf(charges.length),
      created,
      status: 'succeeded',
      amountRefunded: 0,
      failureCode: null,
      refunds: [],
    };
    charges.push(succeeded);
    chargeEvent('charge.succeeded', succeeded);
    if (!withoutIntent) {
      tick();
      intentEvent('payment_intent.succeeded', 'succeeded');
    }
    if (basil) {
      tick();
      facts.push({
        ...base(),
        kind: 'invoice_link',
        type: 'invoice_payment.paid',
        created: clock,
        userId: null,
        customerId: null,
        invoicePaymentId: `inpay_${tag}`,
        invoiceId: `in_${tag}`,
      });
    }
  } else if (ending === 'canceled') {
    tick(1);
    lifecycle = 'canceled';
    intentEvent('payment_intent.canceled', 'canceled');
  }
  // A payment-mode checkout session completes once the payment went through (or is
  // pending, for async methods).
  if (!withoutIntent && purpose !== 'subscription' && (userSource === 'session' || chance(0.3))) {
    if (ending === 'succeeded' || (ending === 'none' && failures === 0)) {
      tick();
      sessionUser = userSource === 'session';
      facts.push({
        ...base(),
        kind: 'checkout',
        type: 'checkout.session.completed',
        created: clock,
        userId: userSource !== 'none' ? userId : null,
        customerId,
        sessionId: `cs_test_${tag}`,
        sessionCreated: intentCreated,
        paid: ending === 'succeeded',
        amount: paymentDetails.amount,
        currency: paymentDetails.currency,
        purpose: purpose === 'penalty' ? 'penalty' : null,
        penaltyIds: purpose === 'penalty' ? paymentDetails.penaltyIds : [],
        // metadata or client_reference_id at random when only the session knows the user.
        userIdFromMetadata: userSource === 'metadata' || (userSource === 'session' && chance(0.5)),
      });
    }
  }

  // --- refunds and disputes of the succeeded charge
  let firstRefundAt: number | null = null;
  let dispute: DisputeFact | null = null;
  if (succeeded) {
    const charge = succeeded;
    const counted = () =>
      refunds
        .filter((refund) => refund.status !== 'failed' && refund.status !== 'canceled')
        .reduce((sum, refund) => sum + refund.amount, 0);
    const refundCount = pick([0, 0, 1, 1, 2, 3]);
    for (let k = 0; k < refundCount; k++) {
      const remaining = paymentDetails.amount - counted();
      if (remaining <= 0) break;
      // Refunds are created in distinct seconds (a charge payload then counts every
      // refund created up to its second).
      const created = tick(1);
      firstRefundAt ??= created;
      const amount = chance(0.4) ? remaining : 1 + Math.floor(random() * remaining);
      const initial = pick(['succeeded', 'succeeded', 'pending', 'requires_action'] as const);
      const refund: RefundSnapshot = {
        refundId: `re_${tag}r${k}`,
        chargeId: charge.chargeId,
        amount,
        status: initial,
        created,
      };
      refunds.push(refund);
      const refundType = () =>
        pick(['refund.updated', 'charge.refund.updated'] as const satisfies RefundEventType[]);
      refundEvent('refund.created', refund);
      if (chance(0.7)) {
        tick();
        chargeEvent('charge.refunded', charge);
      }
      let next: RefundStatus | null = null;
      if (initial === 'pending') next = 'succeeded';
      if (initial === 'requires_action') next = chance(0.5) ? 'canceled' : 'succeeded';
      if (next) {
        // Often in the same second as the refund itself.
        tick();
        refund.status = next;
        refundEvent(refundType(), refund);
      }
      if (refund.status === 'succeeded' && chance(0.2)) {
        // The bank rejects the refund (at times at once): the money goes back to the merchant.
        tick();
        refund.status = 'failed';
        refundEvent(refundType(), refund);
        if (chance(0.3)) refundEvent(refundType(), refund);
      }
    }
    if (counted() < paymentDetails.amount && chance(0.25)) {
      tick(1);
      const disputeBase = {
        paymentId,
        userId: null,
        customerId: null,
        disputeId: `du_${tag}`,
        chargeId: charge.chargeId,
        reason: pick(['fraudulent', 'product_not_received', 'duplicate']),
        amount: paymentDetails.amount - counted(),
      };
      dispute = {
        ...disputeBase,
        eventId: eventId(),
        kind: 'dispute',
        type: 'charge.dispute.created',
        created: clock,
        status: pick(['needs_response', 'warning_needs_response']),
      };
      facts.push(dispute);
      if (chance(0.5)) {
        tick();
        dispute = {
          ...disputeBase,
          eventId: eventId(),
          kind: 'dispute',
          type: 'charge.dispute.closed',
          created: clock,
          status: pick(['won', 'lost']),
        };
        facts.push(dispute);
      }
    }
  }

  // --- what the in-order fold must give
  const refunded = refunds
    .filter((refund) => refund.status !== 'failed' && refund.status !== 'canceled')
    .reduce((sum, refund) => sum + refund.amount, 0);
  const baseStatus: PaymentStatus = succeeded ? 'succeeded' : lifecycle;
  const status: PaymentStatus = dispute
    ? 'disputed'
    : refunded >= paymentDetails.amount
      ? 'refunded'
      : refunded > 0
        ? 'partially_refunded'
        : baseStatus;
  const expected: ExpectedPayment = {
    paymentId,
    chargeId: charges.at(-1)?.chargeId ?? null,
    userId: metadataUser ?? (sessionUser ? userId : null),
    customerId,
    amount: paymentDetails.amount,
    amountRefunded: refunded,
    currency: paymentDetails.currency,
    status,
    purpose: basil && !succeeded ? 'other' : purpose,
    penaltyIds: paymentDetails.penaltyIds,
    createdAt: iso(withoutIntent ? charges[0]!.created : intentCreated),
    paidAt: succeeded ? iso(succeeded.created) : null,
    refundedAt: firstRefundAt === null ? null : iso(firstRefundAt),
    failureCode: status === 'failed' ? lastFailureCode : null,
    dispute: dispute
      ? { status: dispute.status, reason: dispute.reason, amount: dispute.amount }
      : null,
  };
  return { paymentId, apiVersion, facts, expected };
}

/** Every fact of a history, payments interleaved by time (a stable merge). */
export function historyFacts(history: GeneratedPaymentHistory): PaymentFact[] {
  return history.payments
    .flatMap((payment, index) => payment.facts.map((fact, position) => ({ fact, index, position })))
    .sort((a, b) => a.fact.created - b.fact.created || a.index - b.index || a.position - b.position)
    .map(({ fact }) => fact);
}

/** The raw Stripe event bodies of a history, in the order of `historyFacts`. */
export function historyEvents(history: GeneratedPaymentHistory): StripeEventJson[] {
  const byPayment = new Map(history.payments.map((payment) => [payment.paymentId, payment]));
  return historyFacts(history).map((fact) => {
    const payment = byPayment.get(fact.paymentId)!;
    return toStripeEvent(fact, {
      apiVersion: payment.apiVersion,
      currency: payment.expected.currency,
      amount: payment.expected.amount,
    });
  });
}

/**
 * A delivery as Stripe and SQS might make it: each item sent once or more (at
 * `duplicateRate`, up to 3 times), then fully shuffled.
 */
export function deliver<T>(items: readonly T[], seed: number, duplicateRate = 0.3): T[] {
  const random = seededRandom(seed);
  const out: T[] = [];
  for (const item of items) {
    out.push(item);
    while (out.length < items.length * 4 && random() < duplicateRate) out.push(item);
  }
  for (let index = out.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [out[index], out[other]] = [out[other]!, out[index]!];
  }
  return out;
}

/** fast-check: a generated history of 1–4 payments (shrinks towards fewer payments). */
export function paymentHistoryArbitrary(): fc.Arbitrary<GeneratedPaymentHistory> {
  return fc
    .record({
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      payments: fc.integer({ min: 1, max: 4 }),
    })
    .map(({ seed, payments }) => generatePaymentHistory(seed, { payments }));
}
