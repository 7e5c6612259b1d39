/**
 * The DESIGN §3 invariant for payments: for any duplication and reordering of
 * realistic payment histories, each payment's state equals applying its history once,
 * in order; the daily summary kept by per-event deltas equals the summary of the
 * final views; and the raw Stripe bodies of a history read back as the same facts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toPaymentFact } from '../../../functions/core/payments/payment-facts.ts';
import {
  applyPaymentFact,
  emptyPayment,
  foldPaymentFacts,
  type PaymentState,
  projectPayment,
  summaryDelta,
} from '../../../functions/core/payments/payment-state.ts';
import type { PaymentView, SummaryDelta } from '../../../functions/core/payments/ports.ts';
import { parseQueuedEvent } from '../../../functions/core/shared/stripe-envelope.ts';
import {
  BASIL_API_VERSION,
  deliver,
  type GeneratedPaymentHistory,
  generatePaymentHistory,
  historyEvents,
  historyFacts,
  paymentHistoryArbitrary,
  toStripeEvent,
} from '../../helpers/payment-history.ts';

type Summary = Map<string, { count: number; amount: number }>;

function addTo(summary: Summary, rows: readonly SummaryDelta[]) {
  for (const row of rows) {
    const key = `${row.date}|${row.status}|${row.currency}`;
    const current = summary.get(key) ?? { count: 0, amount: 0 };
    summary.set(key, { count: current.count + row.count, amount: current.amount + row.amount });
  }
}

/** Zero rows dropped, so "never touched" and "back to zero" compare equal. */
function nonZero(summary: Summary) {
  return Object.fromEntries(
    [...summary].filter(([, row]) => row.count !== 0 || row.amount !== 0).sort(),
  );
}

function inOrder(history: GeneratedPaymentHistory): Map<string, PaymentState> {
  return new Map(
    history.payments.map((payment) => [
      payment.paymentId,
      foldPaymentFacts(payment.paymentId, payment.facts),
    ]),
  );
}

describe('payment histories', () => {
  it('fold in order to the view the history implies', () => {
    fc.assert(
      fc.property(paymentHistoryArbitrary(), (history) => {
        for (const payment of history.payments) {
          const view = projectPayment(foldPaymentFacts(payment.paymentId, payment.facts));
          expect(view).toEqual(payment.expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('any duplication and reordering gives the in-order state, view and summary', () => {
    fc.assert(
      fc.property(
        paymentHistoryArbitrary(),
        fc.integer(),
        fc.double({ min: 0, max: 0.6, noNaN: true }),
        (history, deliverySeed, duplicateRate) => {
          const expected = inOrder(history);
          const states = new Map<string, PaymentState>();
          const views = new Map<string, PaymentView | null>();
          const summary: Summary = new Map();
          for (const fact of deliver(historyFacts(history), deliverySeed, duplicateRate)) {
            const before = states.get(fact.paymentId) ?? emptyPayment(fact.paymentId);
            const { state, outcome } = applyPaymentFact(before, fact);
            if (outcome === 'stale') expect(state).toBe(before);
            states.set(fact.paymentId, state);
            const view = projectPayment(state);
            addTo(summary, summaryDelta(views.get(fact.paymentId) ?? null, view));
            views.set(fact.paymentId, view);
          }

          const finalSummary: Summary = new Map();
          for (const [paymentId, state] of expected) {
            expect(states.get(paymentId)).toEqual(state);
            expect(JSON.stringify(states.get(paymentId))).toBe(JSON.stringify(state));
            const view = projectPayment(state);
            expect(views.get(paymentId)).toEqual(view);
            addTo(finalSummary, summaryDelta(null, view));
          }
          expect(nonZero(summary)).toEqual(nonZero(finalSummary));
          // Each payment counted once.
          const counted = [...finalSummary.values()].reduce((sum, row) => sum + row.count, 0);
          expect(counted).toBe([...expected.values()].filter((s) => projectPayment(s)).length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a second delivery of the whole history is stale throughout', () => {
    fc.assert(
      fc.property(paymentHistoryArbitrary(), fc.integer(), (history, deliverySeed) => {
        const states = inOrder(history);
        for (const fact of deliver(historyFacts(history), deliverySeed)) {
          const state = states.get(fact.paymentId)!;
          expect(applyPaymentFact(state, fact)).toEqual({ state, outcome: 'stale' });
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('raw Stripe bodies of a history', () => {
  it('read back as the same facts, in both API shapes', () => {
    fc.assert(
      fc.property(paymentHistoryArbitrary(), (history) => {
        const facts = historyFacts(history);
        const events = historyEvents(history);
        expect(events).toHaveLength(facts.length);
        events.forEach((event, index) => {
          // Through JSON text, as the consumer reads a queued body.
          expect(toPaymentFact(parseQueuedEvent(JSON.stringify(event)))).toEqual(facts[index]);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('carry the pre-2022-11-15 shape (charges and refunds lists) or the later one (latest_charge)', () => {
    let legacySeen = false;
    let currentSeen = false;
    for (let seed = 1; seed <= 40; seed++) {
      const history = generatePaymentHistory(seed);
      for (const event of historyEvents(history)) {
        const object = event.data.object;
        if (event.type.startsWith('payment_intent.')) {
          if (event.api_version < '2022-11-15') {
            legacySeen = true;
            expect(object).toHaveProperty('charges.data');
            expect(object).not.toHaveProperty('latest_charge');
          } else {
            currentSeen = true;
            expect(object).toHaveProperty('latest_charge');
            expect(object).not.toHaveProperty('charges');
          }
        }
        if (event.type === 'charge.refunded' && event.api_version >= '2022-11-15')
          expect(object).not.toHaveProperty('refunds');
      }
    }
    expect(legacySeen && currentSeen).toBe(true);
  });

  it('carry basil subscription payments: no invoice on their payloads, linked by invoice_payment.paid once paid', () => {
    let linked = 0;
    let unpaid = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const history = generatePaymentHistory(seed);
      for (const payment of history.payments) {
        if (payment.apiVersion !== BASIL_API_VERSION) continue;
        const events = historyEvents({ seed, payments: [payment] });
        for (const event of events) {
          const object = event.data.object;
          if (object.object === 'payment_intent' || object.object === 'charge')
            expect(object).not.toHaveProperty('invoice');
        }
        const links = events.filter((event) => event.type === 'invoice_payment.paid');
        if (payment.expected.paidAt === null) {
          // Stripe sends no invoice_payment.paid for an unpaid attempt.
          unpaid += 1;
          expect(links).toEqual([]);
          expect(payment.expected.purpose).toBe('other');
        } else {
          linked += 1;
          expect(links).toHaveLength(1);
          expect(payment.expected.purpose).toBe('subscription');
        }
      }
    }
    expect(linked).toBeGreaterThan(10);
    expect(unpaid).toBeGreaterThan(0);
  });

  it('are unique events with ids not in history order', () => {
    const history = generatePaymentHistory(7, { payments: 4 });
    const ids = historyEvents(history).map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).not.toEqual(ids);
    expect(toStripeEvent(history.payments[0]!.facts[0]!).object).toBe('event');
  });

  it('cover the interesting cases across seeds', () => {
    const statuses = new Set<string>();
    let sameSecond = 0;
    let refundFailures = 0;
    /** A retry that succeeded in its failed charge's second, the failed charge's id sorting last. */
    let sameSecondRetries = 0;
    for (let seed = 1; seed <= 200; seed++) {
      for (const payment of generatePaymentHistory(seed).payments) {
        const charges = new Map<string, { created: number; status: string }>();
        for (const fact of payment.facts)
          if (fact.kind === 'charge') charges.set(fact.charge.chargeId, fact.charge);
        const succeeded = [...charges].find(([, charge]) => charge.status === 'succeeded');
        if (
          succeeded &&
          [...charges].some(
            ([id, charge]) => charge.created === succeeded[1].created && id > succeeded[0],
          )
        )
          sameSecondRetries += 1;
        statuses.add(payment.expected.status);
        const times = payment.facts.map((fact) => fact.created);
        sameSecond += times.length - new Set(times).size;
        refundFailures += payment.facts.filter(
          (fact) => fact.kind === 'refund' && fact.refund.status === 'failed',
        ).length;
      }
    }
    expect([...statuses].sort()).toEqual(
      [
        'canceled',
        'disputed',
        'failed',
        'partially_refunded',
        'processing',
        'refunded',
        'succeeded',
      ].sort(),
    );
    expect(sameSecond).toBeGreaterThan(100);
    expect(refundFailures).toBeGreaterThan(10);
    expect(sameSecondRetries).toBeGreaterThan(5);
  });
});
