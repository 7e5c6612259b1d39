/**
 * Reading payment facts from real Stripe payloads of every API version the fixtures
 * cover (test/fixtures/SOURCES.md): 2020-era PaymentIntents with a `charges` list,
 * 2026 "dahlia" charges and disputes, refund updates, checkout sessions, the
 * current PaymentIntent shape (`latest_charge`) from stripe/openapi, and the basil
 * InvoicePayment of Stripe's API reference (test/fixtures/stripe-own/README.md).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  isPaymentEventType,
  PAYMENT_EVENT_TYPES,
  type PaymentFact,
  parsePenaltyIds,
  toPaymentFact,
} from '../../../functions/core/payments/payment-facts.ts';
import {
  MalformedEventError,
  parseEnvelope,
  type StripeEventEnvelope,
} from '../../../functions/core/shared/stripe-envelope.ts';
import { loadStripeObject } from '../../helpers/fixtures.ts';

const fixtureDir = new URL('../../fixtures/stripe/', import.meta.url);
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, fixtureDir), 'utf8'));

/** A full-envelope fixture, validated as ingress would. */
const eventFixture = (name: string): StripeEventEnvelope => parseEnvelope(readJson(`${name}.json`));

/** The `invoice_payment.paid` event built from Stripe's reference example. */
const invoicePaymentEvent = () =>
  JSON.parse(
    readFileSync(
      new URL('../../fixtures/stripe-own/invoice_payment.paid.basil.json', import.meta.url),
      'utf8',
    ),
  );

/** An object placed in an event envelope (for data-only fragments and canonical objects). */
function wrap(type: string, object: unknown, created = 1_700_000_000): StripeEventEnvelope {
  return parseEnvelope({
    id: 'evt_wrapped_1',
    object: 'event',
    type,
    created,
    livemode: false,
    api_version: '2022-11-15',
    data: { object },
  });
}

function factOf(event: StripeEventEnvelope): PaymentFact {
  const fact = toPaymentFact(event);
  if (fact === null) throw new Error(`no fact for ${event.type}`);
  return fact;
}

/** The named field's path in the MalformedEventError message. */
function expectMalformed(event: StripeEventEnvelope, field: string) {
  expect(() => toPaymentFact(event)).toThrow(MalformedEventError);
  expect(() => toPaymentFact(event)).toThrow(field);
}

describe('payment event types', () => {
  it('lists exactly the types of DESIGN §8.1, and invoice_payment.paid (the invoice link from basil on)', () => {
    expect([...PAYMENT_EVENT_TYPES].sort()).toEqual(
      [
        'payment_intent.created',
        'payment_intent.processing',
        'payment_intent.succeeded',
        'payment_intent.payment_failed',
        'payment_intent.canceled',
        'charge.succeeded',
        'charge.failed',
        'charge.refunded',
        'charge.refund.updated',
        'refund.created',
        'refund.updated',
        'charge.dispute.created',
        'charge.dispute.closed',
        'checkout.session.completed',
        'invoice_payment.paid',
      ].sort(),
    );
    expect(isPaymentEventType('charge.refund.updated')).toBe(true);
    expect(isPaymentEventType('invoice_payment.paid')).toBe(true);
    expect(isPaymentEventType('customer.subscription.updated')).toBe(false);
  });

  it('answers null for a type outside the payments context', () => {
    expect(toPaymentFact(eventFixture('customer.subscription.updated.stripe-sync-engine'))).toBe(
      null,
    );
  });
});

describe('PaymentIntent payloads', () => {
  it('reads a pre-2022-11-15 succeeded PaymentIntent with its `charges` list', () => {
    const fact = factOf(eventFixture('payment_intent.succeeded.stripe-ruby-mock'));
    expect(fact).toEqual({
      kind: 'payment_intent',
      type: 'payment_intent.succeeded',
      eventId: 'evt_000000000000000000000000',
      created: 1648320033,
      paymentId: 'pi_000000000000000000000000',
      userId: null,
      customerId: null,
      intentCreated: 1648320032,
      outcome: 'succeeded',
      details: { amount: 2000, currency: 'usd', purpose: 'other', penaltyIds: [] },
      failureCode: null,
      charges: [
        {
          chargeId: 'ch_000000000000000000000000',
          created: 1648320032,
          status: 'succeeded',
          amountRefunded: 0,
          failureCode: null,
          refunds: [],
        },
      ],
      latestChargeId: 'ch_000000000000000000000000',
    });
  });

  it('reads payment_intent.created (requires_payment_method, empty charges) as processing', () => {
    const fact = factOf(eventFixture('payment_intent.created.stripe-ruby-mock'));
    expect(fact).toMatchObject({
      kind: 'payment_intent',
      outcome: 'processing',
      charges: [],
      latestChargeId: null,
    });
  });

  it('reads payment_intent.payment_failed by its type (the object is back to requires_payment_method)', () => {
    const fact = factOf(eventFixture('payment_intent.payment_failed.stripe-sync-engine'));
    expect(fact).toMatchObject({
      kind: 'payment_intent',
      paymentId: 'pi_1IqxJOJDPojXS6LN9uOebAea',
      outcome: 'failed',
      // The fixture has no last_payment_error and no charge.
      failureCode: null,
      intentCreated: 1620984482,
      details: { amount: 1000, currency: 'usd' },
    });
  });

  it('reads the current shape (`latest_charge` as null, an id, or an expanded charge)', () => {
    const intent = loadStripeObject('payment_intent');
    const none = factOf(wrap('payment_intent.processing', intent));
    expect(none).toMatchObject({
      paymentId: 'pi_1PgafyB7WZ01zgkWSjxsAJo3',
      outcome: 'processing',
      charges: [],
      latestChargeId: null,
      details: { amount: 1099, currency: 'usd', purpose: 'other' },
    });

    const byId = factOf(wrap('payment_intent.succeeded', { ...intent, latest_charge: 'ch_9' }));
    expect(byId).toMatchObject({ outcome: 'succeeded', charges: [], latestChargeId: 'ch_9' });

    const charge = loadStripeObject('charge');
    const expanded = factOf(
      wrap('payment_intent.succeeded', { ...intent, status: 'succeeded', latest_charge: charge }),
    );
    expect(expanded).toMatchObject({
      latestChargeId: 'ch_1PgafuB7WZ01zgkWXYmPNZs8',
      charges: [{ chargeId: 'ch_1PgafuB7WZ01zgkWXYmPNZs8', created: 1234567890 }],
    });
  });

  it('takes the failure code from last_payment_error, else the latest charge', () => {
    const intent = loadStripeObject('payment_intent');
    const withCode = factOf(
      wrap('payment_intent.payment_failed', {
        ...intent,
        last_payment_error: {
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'lost_card',
        },
      }),
    );
    expect(withCode).toMatchObject({ outcome: 'failed', failureCode: 'card_declined' });
    const declineOnly = factOf(
      wrap('payment_intent.payment_failed', {
        ...intent,
        last_payment_error: { type: 'card_error', decline_code: 'lost_card' },
      }),
    );
    expect(declineOnly).toMatchObject({ failureCode: 'lost_card' });

    const legacy = readJson('payment_intent.succeeded.stripe-ruby-mock.json').data.object;
    legacy.status = 'requires_payment_method';
    legacy.charges.data[0].status = 'failed';
    legacy.charges.data[0].failure_code = 'expired_card';
    const fromCharge = factOf(wrap('payment_intent.payment_failed', legacy));
    expect(fromCharge).toMatchObject({ outcome: 'failed', failureCode: 'expired_card' });
    // Not failed: no failure code whatever the payload carries.
    expect(
      factOf(wrap('payment_intent.processing', { ...intent, last_payment_error: { code: 'x' } })),
    ).toMatchObject({ outcome: 'processing', failureCode: null });
  });

  it('takes the first listed charge as the latest (Stripe lists them newest first), whatever the ids', () => {
    const legacy = readJson('payment_intent.succeeded.stripe-ruby-mock.json').data.object;
    const [charge] = legacy.charges.data;
    // A retry that succeeded in the second its first charge failed.
    legacy.charges.data = [
      { ...charge, id: 'ch_a', created: 200 },
      { ...charge, id: 'ch_b', created: 200, status: 'failed' },
      { ...charge, id: 'ch_c', created: 100, status: 'failed' },
    ];
    const fact = factOf(wrap('payment_intent.succeeded', legacy));
    expect(fact).toMatchObject({ latestChargeId: 'ch_a' });
    expect(fact.kind === 'payment_intent' && fact.charges.map((c) => c.chargeId)).toEqual([
      'ch_a',
      'ch_b',
      'ch_c',
    ]);
  });

  it('reads a canceled PaymentIntent as canceled', () => {
    const intent = loadStripeObject('payment_intent');
    expect(
      factOf(wrap('payment_intent.canceled', { ...intent, status: 'canceled' })),
    ).toMatchObject({ outcome: 'canceled' });
  });

  it('reads purpose, penalty ids, user and customer from metadata and invoice', () => {
    const intent = loadStripeObject('payment_intent');
    const penalty = factOf(
      wrap('payment_intent.succeeded', {
        ...intent,
        currency: 'EUR',
        customer: { id: 'cus_exp', object: 'customer' },
        metadata: { purpose: 'penalty', penaltyIds: ' pen_1, pen_2,,pen_1 ', user_id: 'u-7' },
      }),
    );
    expect(penalty).toMatchObject({
      userId: 'u-7',
      customerId: 'cus_exp',
      details: { currency: 'eur', purpose: 'penalty', penaltyIds: ['pen_1', 'pen_2'] },
    });
    const subscription = factOf(
      wrap('payment_intent.succeeded', { ...intent, invoice: 'in_1', metadata: { userId: 'u-1' } }),
    );
    expect(subscription).toMatchObject({ userId: 'u-1', details: { purpose: 'subscription' } });
    expect(parsePenaltyIds(null)).toEqual([]);
    expect(parsePenaltyIds({ penaltyIds: '' })).toEqual([]);
  });
});

describe('charge payloads', () => {
  it('reads charge.succeeded (2026 dahlia shape, no refunds list)', () => {
    const fact = factOf(eventFixture('charge.succeeded.zulip'));
    expect(fact).toEqual({
      kind: 'charge',
      type: 'charge.succeeded',
      eventId: 'evt_3TbGBUJEe0yY0QKr1eTEBGsV',
      created: 1779783477,
      paymentId: 'pi_3TbGBUJEe0yY0QKr1NhtlhQp',
      userId: null,
      customerId: null,
      outcome: 'succeeded',
      details: { amount: 22200, currency: 'usd', purpose: 'other', penaltyIds: [] },
      charge: {
        chargeId: 'ch_3TbGBUJEe0yY0QKr18Sf1VVH',
        created: 1779783476,
        status: 'succeeded',
        amountRefunded: 0,
        failureCode: null,
        refunds: [],
      },
    });
  });

  it('reads charge.failed with its failure code', () => {
    const fact = factOf(eventFixture('charge.failed.zulip'));
    expect(fact).toMatchObject({
      kind: 'charge',
      outcome: 'failed',
      paymentId: 'pi_3TbGfyJEe0yY0QKr0V9PBbP9',
      charge: {
        chargeId: 'ch_3TbGfyJEe0yY0QKr0Nh9uVjd',
        status: 'failed',
        failureCode: 'card_declined',
      },
    });
  });

  it('reads a full charge.refunded (2020 shape, refunds listed, invoice → subscription)', () => {
    const fact = factOf(eventFixture('charge.refunded.stripe-sync-engine'));
    expect(fact).toMatchObject({
      kind: 'charge',
      outcome: 'succeeded',
      paymentId: 'pi_3Kl36gJDPojXS6LN02fQVtKR',
      customerId: 'cus_J7Mkgr8mvbl1eK',
      details: { amount: 2500, currency: 'usd', purpose: 'subscription' },
      charge: {
        chargeId: 'ch_3Kl36gJDPojXS6LN0DCM4A8l',
        amountRefunded: 2500,
        refunds: [
          {
            refundId: 're_3Kl36gJDPojXS6LN0eP4yPDz',
            chargeId: 'ch_3Kl36gJDPojXS6LN0DCM4A8l',
            amount: 2500,
            status: 'succeeded',
            created: 1649321738,
          },
        ],
      },
    });
  });

  it('reads the partial charge.refunded fragment (a listed refund belongs to its charge)', () => {
    const data = readJson('charge.refunded.partial.data-only.pay-rails.json');
    const fact = factOf(wrap('charge.refunded', data.object));
    expect(fact).toMatchObject({
      kind: 'charge',
      // The hand-assembled fixture's `payment_intent` is "pm_1234": taken as sent.
      paymentId: 'pm_1234',
      customerId: 'cus_0dUMWLtzCTagWs',
      details: { amount: 1500, currency: 'usd', purpose: 'other' },
      charge: {
        chargeId: 'ch_chargeid',
        amountRefunded: 500,
        refunds: [
          { refundId: 're_3LQOJoKXBGcbgpbZ10i9Mg75', chargeId: 'ch_chargeid', amount: 500 },
        ],
      },
    });
  });

  it('keys a charge without a PaymentIntent by its own id', () => {
    const fact = factOf(wrap('charge.succeeded', loadStripeObject('charge')));
    expect(fact).toMatchObject({ paymentId: 'ch_1PgafuB7WZ01zgkWXYmPNZs8' });
  });
});

describe('refund payloads', () => {
  it('reads charge.refund.updated of a charge without a PaymentIntent (keyed by the charge)', () => {
    const fact = factOf(eventFixture('charge.refund.updated.stripe-ruby-mock'));
    expect(fact).toEqual({
      kind: 'refund',
      type: 'charge.refund.updated',
      eventId: 'evt_000000000000000000000000',
      created: 1648319945,
      paymentId: 'ch_000000000000000000000000',
      userId: null,
      customerId: null,
      refund: {
        refundId: 're_000000000000000000000000',
        chargeId: 'ch_000000000000000000000000',
        amount: 100,
        status: 'succeeded',
        created: 1648319945,
      },
    });
  });

  it('reads a refund that failed', () => {
    const fact = factOf(eventFixture('charge.refund.updated.refund-failed.zulip'));
    expect(fact).toMatchObject({
      kind: 'refund',
      paymentId: 'pi_1Gib60HLwdCOCoR7KJbTO3U7',
      refund: {
        refundId: 're_1Gib6ZHLwdCOCoR7VrzCnXlj',
        chargeId: 'ch_1Gib61HLwdCOCoR71rnkccye',
        amount: 30000000,
        status: 'failed',
        created: 1589439823,
      },
    });
  });

  it('reads refund.created and refund.updated (the canonical refund object)', () => {
    const refund = loadStripeObject('refund');
    for (const type of ['refund.created', 'refund.updated']) {
      expect(factOf(wrap(type, refund))).toMatchObject({
        kind: 'refund',
        type,
        paymentId: 'ch_1PgafuB7WZ01zgkWXYmPNZs8',
        refund: { refundId: 're_1Pgc72B7WZ01zgkWqPvrRrPE', amount: 100, status: 'succeeded' },
      });
    }
    expect(factOf(wrap('refund.created', { ...refund, payment_intent: 'pi_7' }))).toMatchObject({
      paymentId: 'pi_7',
    });
  });
});

describe('dispute payloads', () => {
  it('reads a dispute created and closed (2026 shape, `du_` id)', () => {
    const created = factOf(eventFixture('charge.dispute.created.zulip'));
    const closed = factOf(eventFixture('charge.dispute.closed.zulip'));
    const common = {
      kind: 'dispute',
      paymentId: 'pi_3TbG44JEe0yY0QKr0OnHpigY',
      disputeId: 'du_1TbG46JEe0yY0QKr8P0G3pa3',
      chargeId: 'ch_3TbG44JEe0yY0QKr0aPnlMSQ',
      reason: 'product_not_received',
      amount: 2200,
    };
    expect(created).toMatchObject({
      ...common,
      type: 'charge.dispute.created',
      status: 'needs_response',
    });
    expect(closed).toMatchObject({ ...common, type: 'charge.dispute.closed', status: 'lost' });
  });

  it('keys a dispute without a PaymentIntent by its charge', () => {
    expect(factOf(eventFixture('charge.dispute.created.stripe-ruby-mock'))).toMatchObject({
      paymentId: 'ch_000000000000000000000000',
      status: 'warning_needs_response',
      reason: 'fraudulent',
      amount: 100,
    });
  });
});

describe('checkout sessions', () => {
  it('reads a payment-mode session as a fact of its PaymentIntent', () => {
    const fact = factOf(eventFixture('checkout.session.completed.mode-payment.stripe-sync-engine'));
    expect(fact).toEqual({
      kind: 'checkout',
      type: 'checkout.session.completed',
      eventId: 'evt_T8nSaZqtPudigUMqnnbY4D4v',
      created: 1619697430,
      paymentId: 'pi_1IqxJOJDPojXS6LN9uOebAea',
      userId: null,
      customerId: 'cus_IhGfebO16cMIGN',
      sessionId: 'cs_live_9RBjcHiy2i5p99Tf1MYM90c3SHK1grU0E6Ae6pKWR2KPA4ZiuKiB2X1Y3X',
      sessionCreated: 1756310605,
      paid: true,
      amount: 999,
      currency: 'eur',
      purpose: null,
      penaltyIds: [],
      userIdFromMetadata: false,
    });
  });

  it('takes the user from metadata first, then client_reference_id', () => {
    const session = readJson('checkout.session.completed.mode-payment.stripe-sync-engine.json');
    session.data.object.client_reference_id = 'u-ref';
    expect(factOf(parseEnvelope(session))).toMatchObject({
      userId: 'u-ref',
      userIdFromMetadata: false,
    });
    session.data.object.metadata = { userId: 'u-meta', purpose: 'penalty', penaltyIds: 'p1' };
    expect(factOf(parseEnvelope(session))).toMatchObject({
      userId: 'u-meta',
      userIdFromMetadata: true,
      purpose: 'penalty',
      penaltyIds: ['p1'],
    });
  });

  it('answers null for a subscription-mode session or one without a PaymentIntent', () => {
    expect(
      toPaymentFact(eventFixture('checkout.session.completed.mode-subscription.WRAPPED.pay-rails')),
    ).toBe(null);
    const session = readJson('checkout.session.completed.mode-payment.stripe-sync-engine.json');
    session.data.object.payment_intent = null;
    expect(toPaymentFact(parseEnvelope(session))).toBe(null);
    session.data.object.mode = 'setup';
    expect(toPaymentFact(parseEnvelope(session))).toBe(null);
  });
});

describe('invoice payments (API 2025-03-31.basil and later)', () => {
  it('reads the reference InvoicePayment as a link of its PaymentIntent to its invoice', () => {
    expect(factOf(parseEnvelope(invoicePaymentEvent()))).toEqual({
      kind: 'invoice_link',
      type: 'invoice_payment.paid',
      eventId: 'evt_1M3USa2eZvKYlo2CinpayPd1',
      created: 1391288554,
      paymentId: 'pi_103Q0w2eZvKYlo2C364X582Z',
      userId: null,
      customerId: null,
      invoicePaymentId: 'inpay_1M3USa2eZvKYlo2CBjuwbq0N',
      invoiceId: 'in_103Q0w2eZvKYlo2C5PYwf6Wf',
    });
  });

  it('keys the link as refunds and disputes: the PaymentIntent, else the charge; expanded references by id', () => {
    const event = invoicePaymentEvent();
    const withPayment = (payment: unknown, invoice: unknown = 'in_1') => {
      event.data.object.payment = payment;
      event.data.object.invoice = invoice;
      return factOf(parseEnvelope(event));
    };
    expect(withPayment({ type: 'charge', charge: 'ch_1' })).toMatchObject({ paymentId: 'ch_1' });
    const charge = loadStripeObject('charge');
    expect(withPayment({ type: 'charge', charge })).toMatchObject({
      paymentId: 'ch_1PgafuB7WZ01zgkWXYmPNZs8',
    });
    expect(
      withPayment({ type: 'charge', charge: { ...charge, payment_intent: 'pi_of_charge' } }),
    ).toMatchObject({ paymentId: 'pi_of_charge' });
    const intent = loadStripeObject('payment_intent');
    expect(
      withPayment(
        { type: 'payment_intent', payment_intent: intent },
        { id: 'in_expanded', object: 'invoice' },
      ),
    ).toMatchObject({ paymentId: 'pi_1PgafyB7WZ01zgkWSjxsAJo3', invoiceId: 'in_expanded' });
  });

  it('answers null for an InvoicePayment of a payment record (not a Stripe payment)', () => {
    const event = invoicePaymentEvent();
    expect(toPaymentFact(parseEnvelope(event))).toMatchObject({ kind: 'invoice_link' });
    event.data.object.payment = { type: 'payment_record', payment_record: 'prec_1' };
    expect(toPaymentFact(parseEnvelope(event))).toBe(null);
  });

  it('throws MalformedEventError when the invoice or the named payment is missing', () => {
    const event = invoicePaymentEvent();
    const object = event.data.object;
    expectMalformed(wrap('invoice_payment.paid', { ...object, invoice: null }), 'invoice');
    expectMalformed(wrap('invoice_payment.paid', { ...object, payment: undefined }), 'payment');
    expectMalformed(
      wrap('invoice_payment.paid', { ...object, payment: { type: 'payment_intent' } }),
      'payment.payment_intent missing',
    );
    expectMalformed(
      wrap('invoice_payment.paid', { ...object, payment: { type: 'charge', charge: null } }),
      'payment.charge missing',
    );
  });
});

describe('malformed payloads', () => {
  it('throws MalformedEventError naming the missing or bad field', () => {
    const intent = loadStripeObject('payment_intent');
    expectMalformed(wrap('payment_intent.succeeded', { ...intent, amount: undefined }), 'amount');
    expectMalformed(wrap('payment_intent.succeeded', { ...intent, amount: '10' }), 'amount');
    expectMalformed(wrap('payment_intent.created', { ...intent, created: null }), 'created');
    expectMalformed(
      wrap('payment_intent.succeeded', { ...intent, latest_charge: { id: 'ch_1' } }),
      'latest_charge',
    );

    const charge = loadStripeObject('charge');
    expectMalformed(wrap('charge.succeeded', { ...charge, currency: undefined }), 'currency');
    expectMalformed(wrap('charge.refunded', { ...charge, status: 'mystery' }), 'status');
    expectMalformed(
      wrap('charge.refunded', { ...charge, refunds: { data: [{ id: 're_1' }] } }),
      'refunds.data.0.amount',
    );

    const refund = loadStripeObject('refund');
    expectMalformed(wrap('refund.updated', { ...refund, status: undefined }), 'status');
    expectMalformed(
      wrap('refund.created', { ...refund, charge: null, payment_intent: null }),
      'payment_intent and charge missing',
    );

    const dispute = readJson('charge.dispute.created.zulip.json').data.object;
    expectMalformed(wrap('charge.dispute.created', { ...dispute, amount: '22' }), 'amount');
    expectMalformed(
      wrap('charge.dispute.closed', { ...dispute, charge: null, payment_intent: null }),
      'payment_intent and charge missing',
    );

    const session = readJson('checkout.session.completed.mode-payment.stripe-sync-engine.json');
    expectMalformed(
      wrap('checkout.session.completed', { ...session.data.object, mode: 3 }),
      'mode',
    );
  });

  it('names the event type in the message', () => {
    const intent = loadStripeObject('payment_intent');
    expect(() =>
      toPaymentFact(wrap('payment_intent.succeeded', { ...intent, amount: -1 })),
    ).toThrow(/^payment_intent\.succeeded: amount/);
  });
});
