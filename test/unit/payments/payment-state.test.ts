/**
 * The payment aggregate's rules (DESIGN §3, §8.1), one by one, each checked in every
 * arrival order of its facts.
 */
import { describe, expect, it } from 'vitest';
import type { PaymentFact } from '../../../functions/core/payments/payment-facts.ts';
import {
  applyPaymentFact,
  emptyPayment,
  foldPaymentFacts,
  knownChargeIds,
  type PaymentState,
  projectPayment,
  summaryDelta,
} from '../../../functions/core/payments/payment-state.ts';
import type { PaymentView } from '../../../functions/core/payments/ports.ts';
import {
  chargeFact,
  chargeSnapshot,
  checkoutFact,
  details,
  disputeFact,
  intentFact,
  invoiceLinkFact,
  refundFact,
  refundSnapshot,
  TEST_PAYMENT,
} from '../../helpers/payment-history.ts';

const PI = TEST_PAYMENT.paymentId;
const T = TEST_PAYMENT.created;
const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

function permutations<X>(items: readonly X[]): X[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [
      item,
      ...rest,
    ]),
  );
}

/** The view after applying the facts in every order; asserts they all agree, returns it. */
function viewInAnyOrder(facts: readonly PaymentFact[], paymentId: string = PI): PaymentView | null {
  const reference = foldPaymentFacts(paymentId, facts);
  for (const order of permutations(facts)) {
    expect(foldPaymentFacts(paymentId, order)).toEqual(reference);
    // Serialised equally too (record keys are kept sorted).
    expect(JSON.stringify(foldPaymentFacts(paymentId, order))).toBe(JSON.stringify(reference));
  }
  return projectPayment(reference);
}

function deepFreeze<X>(value: X): X {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const succeededCharge = (created = T + 1, overrides = {}) =>
  chargeFact('charge.succeeded', created, { charge: chargeSnapshot({ created, ...overrides }) });
const refundedCharge = (created: number, amountRefunded: number) =>
  chargeFact('charge.refunded', created, {
    charge: chargeSnapshot({ created: T + 1, amountRefunded }),
  });

describe('projection', () => {
  it('projects nothing for an empty payment or one known only by a refund or dispute', () => {
    expect(projectPayment(emptyPayment(PI))).toBe(null);
    expect(viewInAnyOrder([refundFact('refund.created', T + 50)])).toBe(null);
    expect(viewInAnyOrder([disputeFact('charge.dispute.created', T + 50)])).toBe(null);
  });

  it('projects a created PaymentIntent as processing, with every field', () => {
    const view = viewInAnyOrder([intentFact('payment_intent.created', T)]);
    expect(view).toEqual({
      paymentId: PI,
      chargeId: null,
      userId: 'user-1',
      customerId: 'cus_test_1',
      amount: 2000,
      amountRefunded: 0,
      currency: 'usd',
      status: 'processing',
      purpose: 'other',
      penaltyIds: [],
      createdAt: '2025-06-15T12:00:00.000Z',
      paidAt: null,
      refundedAt: null,
      failureCode: null,
      dispute: null,
    });
  });

  it('keeps a JSON-serialisable state', () => {
    const state = foldPaymentFacts(PI, [
      intentFact('payment_intent.succeeded', T + 2, { latestChargeId: 'ch_test_1' }),
      succeededCharge(),
      refundFact('refund.created', T + 50),
      disputeFact('charge.dispute.created', T + 60),
    ]);
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
  });
});

describe('refunds', () => {
  it('a partial then a full refund ends refunded, in any order (charge payloads)', () => {
    const view = viewInAnyOrder([
      succeededCharge(),
      refundedCharge(T + 100, 500),
      refundedCharge(T + 200, 2000),
    ]);
    expect(view).toMatchObject({
      status: 'refunded',
      amountRefunded: 2000,
      refundedAt: iso(T + 100),
    });
  });

  it('a partial then a full refund ends refunded, in any order (refund objects, same second)', () => {
    const view = viewInAnyOrder([
      succeededCharge(),
      refundFact('refund.created', T + 100, { refundId: 're_1', amount: 500 }),
      refundFact('refund.created', T + 100, { refundId: 're_2', amount: 1500 }),
      chargeFact('charge.refunded', T + 100, {
        charge: chargeSnapshot({ created: T + 1, amountRefunded: 500 }),
      }),
    ]);
    expect(view).toMatchObject({ status: 'refunded', amountRefunded: 2000 });
  });

  it('two charge payloads in one second: the larger cumulative refund wins, whatever the ids', () => {
    const partial = { ...refundedCharge(T + 100, 500), eventId: 'evt_zzz' };
    const full = { ...refundedCharge(T + 100, 2000), eventId: 'evt_aaa' };
    expect(viewInAnyOrder([succeededCharge(), partial, full])).toMatchObject({
      status: 'refunded',
      amountRefunded: 2000,
    });
  });

  it('one refund in one second: its later status wins, whatever the ids and event types', () => {
    const listed = chargeFact('charge.refunded', T + 100, {
      eventId: 'evt_aaa',
      charge: chargeSnapshot({
        amountRefunded: 500,
        refunds: [refundSnapshot({ status: 'succeeded', created: T + 100 })],
      }),
    });
    const pending = refundFact(
      'refund.created',
      T + 100,
      { status: 'pending' },
      { eventId: 'evt_zzz' },
    );
    const failed = refundFact(
      'refund.updated',
      T + 100,
      { status: 'failed' },
      { eventId: 'evt_000' },
    );
    const succeeded = refundFact(
      'refund.updated',
      T + 100,
      { status: 'succeeded' },
      { eventId: 'evt_zzz2' },
    );
    const state = foldPaymentFacts(PI, [listed, pending]);
    expect(state.refunds.re_test_1?.status).toBe('succeeded');
    expect(viewInAnyOrder([succeededCharge(), failed, succeeded])).toMatchObject({
      status: 'succeeded',
      amountRefunded: 0,
    });
  });

  it('a partial refund is partially_refunded', () => {
    expect(viewInAnyOrder([succeededCharge(), refundedCharge(T + 100, 500)])).toMatchObject({
      status: 'partially_refunded',
      amountRefunded: 500,
    });
  });

  it('never goes back to succeeded on a stale success event', () => {
    const refunded = foldPaymentFacts(PI, [succeededCharge(), refundedCharge(T + 100, 2000)]);
    const stale = applyPaymentFact(
      refunded,
      intentFact('payment_intent.succeeded', T + 2, {
        charges: [chargeSnapshot({ created: T + 1 })],
        latestChargeId: 'ch_test_1',
      }),
    );
    expect(projectPayment(stale.state)).toMatchObject({ status: 'refunded', amountRefunded: 2000 });
    // A duplicate of the older charge payload changes nothing at all.
    expect(applyPaymentFact(stale.state, succeededCharge()).outcome).toBe('stale');
  });

  it('counts a refund whatever its later updates, by its latest status', () => {
    const view = viewInAnyOrder([
      succeededCharge(),
      refundFact('refund.created', T + 100, { status: 'pending' }),
      refundFact('refund.updated', T + 100, { status: 'succeeded', created: T + 100 }),
    ]);
    expect(view).toMatchObject({ status: 'partially_refunded', amountRefunded: 500 });
  });

  it('a failed refund stops counting (refund objects only)', () => {
    const view = viewInAnyOrder([
      succeededCharge(),
      refundFact('refund.created', T + 100, { status: 'succeeded' }),
      refundFact('charge.refund.updated', T + 900, { status: 'failed', created: T + 100 }),
    ]);
    expect(view).toMatchObject({
      status: 'succeeded',
      amountRefunded: 0,
      // A refund did appear, once.
      refundedAt: iso(T + 100),
    });
  });

  it('a refund failing after a charge payload counted it is taken off that payload', () => {
    const facts = [
      succeededCharge(),
      refundFact('refund.created', T + 100, { refundId: 're_1', amount: 500 }),
      refundedCharge(T + 100, 500),
      refundFact('refund.updated', T + 900, {
        refundId: 're_1',
        amount: 500,
        status: 'failed',
        created: T + 100,
      }),
    ];
    expect(viewInAnyOrder(facts)).toMatchObject({ status: 'succeeded', amountRefunded: 0 });
    // A later refund and a charge payload that no longer counts the failed one.
    const later = [
      ...facts,
      refundFact('refund.created', T + 1000, { refundId: 're_2', amount: 300, created: T + 1000 }),
      refundedCharge(T + 1000, 300),
    ];
    expect(viewInAnyOrder(later)).toMatchObject({
      status: 'partially_refunded',
      amountRefunded: 300,
    });
  });

  it('a charge payload taken after a refund failed is not reduced again by a later update of it', () => {
    // re_1 fails at T+50; the payload at T+60 counts only re_2 (known by no refund event);
    // another update of the failed re_1 arrives at T+70.
    const view = viewInAnyOrder([
      succeededCharge(),
      refundFact('refund.created', T + 10, { refundId: 're_1', amount: 500 }),
      refundFact('refund.updated', T + 50, {
        refundId: 're_1',
        amount: 500,
        status: 'failed',
        created: T + 10,
      }),
      refundedCharge(T + 60, 300),
      refundFact('charge.refund.updated', T + 70, {
        refundId: 're_1',
        amount: 500,
        status: 'failed',
        created: T + 10,
      }),
    ]);
    expect(view).toMatchObject({ status: 'partially_refunded', amountRefunded: 300 });
  });

  it('a refund seen only as failed never sets refundedAt', () => {
    expect(
      viewInAnyOrder([
        succeededCharge(),
        refundFact('charge.refund.updated', T + 900, { status: 'failed' }),
      ]),
    ).toMatchObject({ status: 'succeeded', amountRefunded: 0, refundedAt: null });
  });

  it('a canceled refund stops counting; requires_action counts', () => {
    expect(
      viewInAnyOrder([
        succeededCharge(),
        refundFact('refund.created', T + 100, { status: 'requires_action' }),
      ]),
    ).toMatchObject({ status: 'partially_refunded', amountRefunded: 500 });
    expect(
      viewInAnyOrder([
        succeededCharge(),
        refundFact('refund.created', T + 100, { status: 'requires_action' }),
        refundFact('refund.updated', T + 100, { status: 'canceled', created: T + 100 }),
      ]),
    ).toMatchObject({ status: 'succeeded', amountRefunded: 0 });
  });

  it('reads refunds listed on a charge (before 2022-11-15)', () => {
    const listed = chargeFact('charge.refunded', T + 300, {
      charge: chargeSnapshot({
        amountRefunded: 700,
        refunds: [
          refundSnapshot({ refundId: 're_a', amount: 200, created: T + 100 }),
          refundSnapshot({ refundId: 're_b', amount: 500, created: T + 300 }),
        ],
      }),
    });
    const view = viewInAnyOrder([
      listed,
      refundFact('refund.updated', T + 400, {
        refundId: 're_b',
        amount: 500,
        status: 'failed',
        created: T + 300,
      }),
    ]);
    expect(view).toMatchObject({ amountRefunded: 200, refundedAt: iso(T + 100) });
  });

  it('counts a refund once when one payload names its charge and a later one does not', () => {
    const listed = chargeFact('charge.refunded', T + 100, {
      charge: chargeSnapshot({
        amountRefunded: 500,
        refunds: [refundSnapshot({ refundId: 're_a', amount: 500, created: T + 100 })],
      }),
    });
    const created = refundFact('refund.created', T + 100, {
      refundId: 're_a',
      chargeId: null,
      created: T + 100,
    });
    const updated = refundFact('refund.updated', T + 200, {
      refundId: 're_a',
      chargeId: null,
      created: T + 100,
    });
    expect(viewInAnyOrder([listed, created, updated])).toMatchObject({
      status: 'partially_refunded',
      amountRefunded: 500,
    });
  });

  it('a charge.refunded without refund objects dates the refund by its event', () => {
    expect(viewInAnyOrder([succeededCharge(), refundedCharge(T + 100, 2000)])).toMatchObject({
      refundedAt: iso(T + 100),
    });
  });
});

describe('disputes', () => {
  it('a dispute is never lost to a later charge update', () => {
    const view = viewInAnyOrder([
      succeededCharge(),
      disputeFact('charge.dispute.created', T + 100),
      refundedCharge(T + 200, 500),
      succeededCharge(T + 1),
    ]);
    expect(view).toMatchObject({
      status: 'disputed',
      amountRefunded: 500,
      dispute: { status: 'needs_response', reason: 'fraudulent', amount: 2000 },
    });
  });

  it('a closed dispute stays disputed and shows its outcome, even closed in the same second', () => {
    const view = viewInAnyOrder([
      succeededCharge(),
      disputeFact('charge.dispute.created', T + 100, { eventId: 'evt_z' }),
      disputeFact('charge.dispute.closed', T + 100, { eventId: 'evt_a', status: 'won' }),
    ]);
    expect(view).toMatchObject({ status: 'disputed', dispute: { status: 'won' } });
  });

  it('a dispute shows success even before the success event arrives', () => {
    const view = viewInAnyOrder([
      intentFact('payment_intent.created', T),
      disputeFact('charge.dispute.created', T + 100),
    ]);
    expect(view).toMatchObject({ status: 'disputed', paidAt: iso(T + 100), chargeId: 'ch_test_1' });
  });
});

describe('lifecycle', () => {
  it('a failed then succeeded PaymentIntent ends succeeded, in any order', () => {
    const view = viewInAnyOrder([
      intentFact('payment_intent.created', T),
      chargeFact('charge.failed', T + 1, {
        charge: chargeSnapshot({
          chargeId: 'ch_1',
          created: T + 1,
          status: 'failed',
          failureCode: 'card_declined',
        }),
      }),
      intentFact('payment_intent.payment_failed', T + 1, {
        failureCode: 'card_declined',
        latestChargeId: 'ch_1',
      }),
      succeededCharge(T + 5, { chargeId: 'ch_2' }),
      intentFact('payment_intent.succeeded', T + 5, { latestChargeId: 'ch_2' }),
    ]);
    expect(view).toMatchObject({
      status: 'succeeded',
      chargeId: 'ch_2',
      paidAt: iso(T + 5),
      failureCode: null,
    });
  });

  it('a failure in the same second as the success still ends succeeded', () => {
    expect(
      viewInAnyOrder([
        intentFact('payment_intent.payment_failed', T + 1, { eventId: 'evt_zzz' }),
        intentFact('payment_intent.succeeded', T + 1, { eventId: 'evt_aaa' }),
      ]),
    ).toMatchObject({ status: 'succeeded' });
  });

  it('shows the failure code only while failed, and the latest failure wins', () => {
    const failures = [
      intentFact('payment_intent.created', T),
      intentFact('payment_intent.payment_failed', T + 1, { failureCode: 'card_declined' }),
      chargeFact('charge.failed', T + 10, {
        charge: chargeSnapshot({
          chargeId: 'ch_2',
          created: T + 10,
          status: 'failed',
          failureCode: 'expired_card',
        }),
      }),
    ];
    expect(viewInAnyOrder(failures)).toMatchObject({
      status: 'failed',
      failureCode: 'expired_card',
    });
    // A retry in progress: processing again, no failure code shown.
    const retry = [...failures, intentFact('payment_intent.processing', T + 20)];
    expect(viewInAnyOrder(retry)).toMatchObject({ status: 'processing', failureCode: null });
  });

  it('prefers a failure with a code within one second (PaymentIntent and charge of one attempt)', () => {
    expect(
      viewInAnyOrder([
        intentFact('payment_intent.payment_failed', T + 1, {
          eventId: 'evt_zzz',
          failureCode: null,
        }),
        chargeFact('charge.failed', T + 1, {
          eventId: 'evt_aaa',
          charge: chargeSnapshot({ status: 'failed', failureCode: 'card_declined' }),
        }),
      ]),
    ).toMatchObject({ status: 'failed', failureCode: 'card_declined' });
  });

  it('ranks processing after created and canceled after failed within one second', () => {
    expect(
      viewInAnyOrder([
        intentFact('payment_intent.processing', T, { eventId: 'evt_a' }),
        intentFact('payment_intent.created', T, { eventId: 'evt_z' }),
      ]),
    ).toMatchObject({ status: 'processing' });
    expect(
      viewInAnyOrder([
        intentFact('payment_intent.canceled', T + 1, { eventId: 'evt_a' }),
        intentFact('payment_intent.payment_failed', T + 1, { eventId: 'evt_z', failureCode: 'x' }),
      ]),
    ).toMatchObject({ status: 'canceled', failureCode: null });
  });

  it('dates paidAt by the earliest success seen', () => {
    const view = viewInAnyOrder([
      refundFact('refund.created', T + 100),
      intentFact('payment_intent.succeeded', T + 3),
      checkoutFact(T + 4),
      succeededCharge(T + 2),
    ]);
    expect(view).toMatchObject({ paidAt: iso(T + 2) });
  });

  it('dates an async payment paid when it succeeded, not when its charge was created', () => {
    const settled = T + 3 * 86_400;
    const view = viewInAnyOrder([
      intentFact('payment_intent.processing', T),
      chargeFact('charge.succeeded', settled, { charge: chargeSnapshot({ created: T }) }),
      intentFact('payment_intent.succeeded', settled),
    ]);
    expect(view).toMatchObject({ status: 'succeeded', paidAt: iso(settled) });
  });

  it('treats an unpaid checkout session as no success', () => {
    expect(
      viewInAnyOrder([
        intentFact('payment_intent.processing', T + 1),
        checkoutFact(T + 2, { paid: false }),
      ]),
    ).toMatchObject({ status: 'processing', paidAt: null });
  });
});

describe('created time and latest charge', () => {
  it('takes createdAt from the PaymentIntent, else the earliest charge, else the session', () => {
    expect(viewInAnyOrder([succeededCharge(T + 30)])).toMatchObject({ createdAt: iso(T + 30) });
    expect(
      viewInAnyOrder([succeededCharge(T + 30), intentFact('payment_intent.succeeded', T + 31)]),
    ).toMatchObject({ createdAt: iso(T) });
    expect(viewInAnyOrder([checkoutFact(T + 40, { sessionCreated: T - 5 })])).toMatchObject({
      createdAt: iso(T - 5),
      amount: 2000,
      status: 'succeeded',
    });
  });

  it('keys a charge without a PaymentIntent by the charge, dated by the charge', () => {
    const charge = succeededCharge(T + 7, { chargeId: 'ch_alone' });
    const view = viewInAnyOrder([{ ...charge, paymentId: 'ch_alone' }], 'ch_alone');
    expect(view).toMatchObject({
      paymentId: 'ch_alone',
      chargeId: 'ch_alone',
      createdAt: iso(T + 7),
    });
  });

  it('takes the latest charge by created; an id-only charge is dated by the first event naming it', () => {
    const failed = chargeFact('charge.failed', T + 10, {
      charge: chargeSnapshot({ chargeId: 'ch_old', created: T + 10, status: 'failed' }),
    });
    // The refund names the charge that succeeded later, whose own payload is missing.
    const refund = refundFact('refund.created', T + 50, { chargeId: 'ch_new' });
    expect(viewInAnyOrder([failed, refund])).toMatchObject({ chargeId: 'ch_new' });
    // Once its payload arrives it is dated by its own created.
    const payload = succeededCharge(T + 20, { chargeId: 'ch_new' });
    expect(viewInAnyOrder([failed, refund, payload])).toMatchObject({ chargeId: 'ch_new' });
    expect(knownChargeIds(foldPaymentFacts(PI, [failed, refund]))).toEqual(['ch_new', 'ch_old']);
  });

  it('at equal time prefers a charge with a known created', () => {
    const known = succeededCharge(T + 10, { chargeId: 'ch_a' });
    const idOnly = disputeFact('charge.dispute.created', T + 10, { chargeId: 'ch_z' });
    expect(viewInAnyOrder([known, idOnly])).toMatchObject({ chargeId: 'ch_a' });
  });

  it('takes the charge the PaymentIntent names latest when a retry succeeds in the second its charge failed', () => {
    // Stripe ids say nothing of order: the failed charge's id sorts last here.
    const failedCharge = chargeFact('charge.failed', T + 10, {
      charge: chargeSnapshot({ chargeId: 'ch_z_failed', created: T + 10, status: 'failed' }),
    });
    const intentFailed = intentFact('payment_intent.payment_failed', T + 10, {
      outcome: 'failed',
      latestChargeId: 'ch_z_failed',
    });
    const okCharge = succeededCharge(T + 10, { chargeId: 'ch_a_ok' });
    const intentSucceeded = intentFact('payment_intent.succeeded', T + 10, {
      latestChargeId: 'ch_a_ok',
    });
    expect(viewInAnyOrder([failedCharge, intentFailed, okCharge, intentSucceeded])).toMatchObject({
      status: 'succeeded',
      chargeId: 'ch_a_ok',
    });
    // Only the PaymentIntent's events, naming their charges by id.
    expect(viewInAnyOrder([intentFailed, intentSucceeded])).toMatchObject({ chargeId: 'ch_a_ok' });
    // The succeeded charge's own event missing: the failed one's known created does not win.
    expect(viewInAnyOrder([failedCharge, intentFailed, intentSucceeded])).toMatchObject({
      chargeId: 'ch_a_ok',
    });
    // Before 2022-11-15: the charges list, newest first.
    const listed = intentFact('payment_intent.succeeded', T + 10, {
      charges: [okCharge.charge, failedCharge.charge],
      latestChargeId: 'ch_a_ok',
    });
    expect(viewInAnyOrder([failedCharge, intentFailed, listed])).toMatchObject({
      chargeId: 'ch_a_ok',
    });
  });
});

describe('identity, amount and purpose', () => {
  it('takes the user from metadata over client_reference_id, and never forgets it', () => {
    const view = viewInAnyOrder([
      intentFact('payment_intent.created', T, { userId: 'user-meta' }),
      checkoutFact(T + 50, { userId: 'user-ref', userIdFromMetadata: false }),
      // Later payloads without a user or customer do not erase them.
      { ...succeededCharge(T + 60), userId: null },
      { ...succeededCharge(T + 70), userId: null, customerId: null },
    ]);
    expect(view).toMatchObject({ userId: 'user-meta', customerId: 'cus_test_1' });
    expect(
      viewInAnyOrder([
        intentFact('payment_intent.created', T, { userId: null }),
        checkoutFact(T + 50, { userId: 'user-ref', userIdFromMetadata: false }),
      ]),
    ).toMatchObject({ userId: 'user-ref' });
  });

  it('takes amount and currency from the latest PaymentIntent or charge payload, over a session', () => {
    const view = viewInAnyOrder([
      intentFact('payment_intent.created', T, { details: details({ amount: 1000 }) }),
      intentFact('payment_intent.succeeded', T + 5, { details: details({ amount: 1500 }) }),
      checkoutFact(T + 9, { amount: 999, currency: 'eur' }),
    ]);
    expect(view).toMatchObject({ amount: 1500, currency: 'usd' });
  });

  it('keeps the most specific purpose and the latest penalty ids', () => {
    const view = viewInAnyOrder([
      intentFact('payment_intent.created', T, {
        details: details({ purpose: 'penalty', penaltyIds: ['pen_1'] }),
      }),
      intentFact('payment_intent.succeeded', T + 5, {
        details: details({ purpose: 'penalty', penaltyIds: ['pen_1', 'pen_2'] }),
      }),
      // A charge payload without our metadata says nothing against it.
      succeededCharge(T + 5),
    ]);
    expect(view).toMatchObject({ purpose: 'penalty', penaltyIds: ['pen_1', 'pen_2'] });
    expect(
      viewInAnyOrder([
        succeededCharge(T + 5),
        intentFact('payment_intent.succeeded', T + 5, {
          details: details({ purpose: 'subscription' }),
        }),
      ]),
    ).toMatchObject({ purpose: 'subscription' });
  });
});

describe('invoice links (API 2025-03-31.basil and later)', () => {
  // Basil payloads carry no invoice: the PaymentIntent and charge facts say `other`.
  const created = () => intentFact('payment_intent.created', T);
  const succeeded = () =>
    intentFact('payment_intent.succeeded', T + 2, { latestChargeId: 'ch_test_1' });

  it('makes the payment a subscription payment whether the link comes before, between or after its events', () => {
    const facts = [created(), succeededCharge(T + 2), succeeded(), invoiceLinkFact(T + 3)];
    expect(viewInAnyOrder(facts)).toMatchObject({
      purpose: 'subscription',
      status: 'succeeded',
      paidAt: iso(T + 2),
      createdAt: iso(T),
    });
    for (const order of permutations(facts)) {
      let state = emptyPayment(PI);
      let linked = false;
      for (const fact of order) {
        state = applyPaymentFact(state, fact).state;
        linked ||= fact.kind === 'invoice_link';
        const view = projectPayment(state);
        // Other until the link is known, subscription for good from then on.
        if (view) expect(view.purpose).toBe(linked ? 'subscription' : 'other');
      }
    }
  });

  it('projects nothing for a link alone (nor with a refund or dispute), like a refund before its payment', () => {
    const alone = foldPaymentFacts(PI, [invoiceLinkFact(T + 3)]);
    expect(alone).toEqual({ ...emptyPayment(PI), purpose: 'subscription' });
    expect(projectPayment(alone)).toBe(null);
    expect(summaryDelta(null, projectPayment(alone))).toEqual([]);
    expect(
      viewInAnyOrder([
        invoiceLinkFact(T + 3),
        refundFact('refund.created', T + 50),
        disputeFact('charge.dispute.created', T + 60),
      ]),
    ).toBe(null);
  });

  it('keeps penalty by metadata over a link, and the link over later payloads without invoice', () => {
    expect(viewInAnyOrder([invoiceLinkFact(T + 3), succeeded()])).toMatchObject({
      purpose: 'subscription',
    });
    expect(
      viewInAnyOrder([
        invoiceLinkFact(T + 3),
        intentFact('payment_intent.succeeded', T + 2, {
          details: details({ purpose: 'penalty', penaltyIds: ['pen_1'] }),
        }),
      ]),
    ).toMatchObject({ purpose: 'penalty', penaltyIds: ['pen_1'] });
  });

  it('applies a link once: a duplicate, or a link of a payment whose payload named its invoice, is stale', () => {
    const link = invoiceLinkFact(T + 3);
    const base = deepFreeze(foldPaymentFacts(PI, [created()]));
    const first = applyPaymentFact(base, link);
    expect(first.outcome).toBe('applied');
    expect(first.state).toEqual({ ...base, purpose: 'subscription' });
    const again = applyPaymentFact(deepFreeze(first.state), link);
    expect(again).toEqual({ state: first.state, outcome: 'stale' });
    expect(applyPaymentFact(first.state, invoiceLinkFact(T + 9)).outcome).toBe('stale');
    // A payload of before basil already named the invoice.
    const named = foldPaymentFacts(PI, [
      intentFact('payment_intent.created', T, { details: details({ purpose: 'subscription' }) }),
    ]);
    expect(applyPaymentFact(named, link)).toEqual({ state: named, outcome: 'stale' });
  });

  it('links a charge without a PaymentIntent by the charge', () => {
    const charge = succeededCharge(T + 7, { chargeId: 'ch_alone' });
    const view = viewInAnyOrder(
      [{ ...charge, paymentId: 'ch_alone' }, invoiceLinkFact(T + 8, { paymentId: 'ch_alone' })],
      'ch_alone',
    );
    expect(view).toMatchObject({
      paymentId: 'ch_alone',
      chargeId: 'ch_alone',
      purpose: 'subscription',
      createdAt: iso(T + 7),
    });
  });
});

describe('apply', () => {
  it('never mutates the state and says stale when nothing changed', () => {
    const facts = [
      intentFact('payment_intent.created', T),
      succeededCharge(),
      refundFact('refund.created', T + 100),
      disputeFact('charge.dispute.created', T + 200),
    ];
    let state: PaymentState = deepFreeze(emptyPayment(PI));
    for (const fact of facts) {
      const applied = applyPaymentFact(state, fact);
      expect(applied.outcome).toBe('applied');
      state = deepFreeze(applied.state);
    }
    for (const fact of facts) {
      const again = applyPaymentFact(state, fact);
      expect(again.outcome).toBe('stale');
      expect(again.state).toBe(state);
    }
    // Older than everything it touches: superseded, so stale too.
    const older = applyPaymentFact(state, intentFact('payment_intent.processing', T - 10));
    expect(older.outcome).toBe('stale');
    expect(older.state).toBe(state);
    // A newer user id is applied.
    expect(
      applyPaymentFact(state, intentFact('payment_intent.created', T + 300, { userId: 'user-2' }))
        .outcome,
    ).toBe('applied');
  });

  it('rejects a fact of another payment', () => {
    expect(() =>
      applyPaymentFact(emptyPayment('pi_other'), intentFact('payment_intent.created', T)),
    ).toThrow(/pi_test_1/);
  });
});

describe('summaryDelta', () => {
  const view = (overrides: Partial<PaymentView> = {}): PaymentView => ({
    ...projectPayment(foldPaymentFacts(PI, [intentFact('payment_intent.succeeded', T)]))!,
    ...overrides,
  });

  it('adds a new payment to its bucket', () => {
    expect(summaryDelta(null, view())).toEqual([
      { date: '2025-06-15', status: 'succeeded', currency: 'usd', count: 1, amount: 2000 },
    ]);
  });

  it('changes nothing when the bucket and amount stay', () => {
    expect(summaryDelta(view(), view({ amountRefunded: 5, chargeId: 'ch_x' }))).toEqual([]);
    expect(summaryDelta(null, null)).toEqual([]);
  });

  it('moves a payment whose status changed, with its gross amount', () => {
    expect(summaryDelta(view(), view({ status: 'refunded', amountRefunded: 2000 }))).toEqual([
      { date: '2025-06-15', status: 'succeeded', currency: 'usd', count: -1, amount: -2000 },
      { date: '2025-06-15', status: 'refunded', currency: 'usd', count: 1, amount: 2000 },
    ]);
  });

  it('moves a payment whose created day or currency changed', () => {
    expect(summaryDelta(view(), view({ createdAt: '2025-06-14T23:59:59.000Z' }))).toEqual([
      { date: '2025-06-15', status: 'succeeded', currency: 'usd', count: -1, amount: -2000 },
      { date: '2025-06-14', status: 'succeeded', currency: 'usd', count: 1, amount: 2000 },
    ]);
    expect(summaryDelta(view(), view({ currency: 'eur', amount: 1800 }))).toEqual([
      { date: '2025-06-15', status: 'succeeded', currency: 'usd', count: -1, amount: -2000 },
      { date: '2025-06-15', status: 'succeeded', currency: 'eur', count: 1, amount: 1800 },
    ]);
  });

  it('changes only the amount when the amount changed within the bucket', () => {
    expect(summaryDelta(view(), view({ amount: 2500 }))).toEqual([
      { date: '2025-06-15', status: 'succeeded', currency: 'usd', count: 0, amount: 500 },
    ]);
  });

  it('removes a payment that no longer projects', () => {
    expect(summaryDelta(view(), null)).toEqual([
      { date: '2025-06-15', status: 'succeeded', currency: 'usd', count: -1, amount: -2000 },
    ]);
  });
});
