/**
 * The DESIGN §3 invariant for payments, through the use case and a store: for any
 * duplication, reordering and interleaving of realistic payment histories (refunds,
 * refund failures, disputes), delivered in batches of any size, some concurrently,
 * every payment ends as applying its history once, in order, and the daily summary
 * equals a recount of the final payments (each counted once, under its final status).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InMemoryPaymentStore } from '../../functions/adapters/memory/in-memory-payment-store.ts';
import { applyPaymentEvents } from '../../functions/core/payments/apply-payment-events.ts';
import type { DailySummaryRow, PaymentView } from '../../functions/core/payments/ports.ts';
import type { QueuedEvent } from '../../functions/core/shared/event-batch.ts';
import { deliver, generatePaymentHistory, historyEvents } from '../helpers/payment-history.ts';

const clock = { now: () => 1_750_000_000_000 };

/** The summary rows the final views add up to, in the store's order. */
function recount(views: readonly PaymentView[], date: string): DailySummaryRow[] {
  const rows = new Map<string, DailySummaryRow>();
  for (const view of views) {
    if (view.createdAt.slice(0, 10) !== date) continue;
    const key = `${view.status}|${view.currency}`;
    const row = rows.get(key) ?? {
      status: view.status,
      gateway: 'stripe' as const,
      currency: view.currency,
      count: 0,
      amount: 0,
    };
    row.count += 1;
    row.amount += view.amount;
    rows.set(key, row);
  }
  return [...rows.values()];
}

const byBucket = (rows: readonly DailySummaryRow[]) =>
  [...rows].sort((a, b) => `${a.status}|${a.currency}`.localeCompare(`${b.status}|${b.currency}`));

const scenario = fc.record({
  seeds: fc.uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 4 }),
  deliverySeed: fc.integer(),
  duplicateRate: fc.double({ min: 0, max: 0.6, noNaN: true }),
  batchSizes: fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 6 }),
  parallelBatches: fc.integer({ min: 1, max: 3 }),
  packed: fc.boolean(),
});

describe('applyPaymentEvents: exactly-once under at-least-once, out-of-order delivery', () => {
  it('converges to the in-order payments and an exact daily summary for every delivery', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const histories = s.seeds.map((seed, index) =>
          generatePaymentHistory(seed, { prefix: `h${index}` }),
        );
        const bodies = deliver(
          histories.flatMap((history) => historyEvents(history).map((e) => JSON.stringify(e))),
          s.deliverySeed,
          s.duplicateRate,
        );
        const store = new InMemoryPaymentStore({ packed: s.packed });
        const batches: QueuedEvent[][] = [];
        for (let index = 0, turn = 0; index < bodies.length; turn++) {
          const size = s.batchSizes[turn % s.batchSizes.length]!;
          batches.push(
            bodies
              .slice(index, index + size)
              .map((body, offset) => ({ recordId: `r${index + offset}`, body })),
          );
          index += size;
        }
        // Failed records (races lost past the retry budget) come back later, as SQS redelivers.
        for (let index = 0; index < batches.length && index < 500; index += s.parallelBatches) {
          const group = batches.slice(index, index + s.parallelBatches);
          const results = await Promise.all(
            group.map((batch) => applyPaymentEvents(batch, { store, directory: store, clock })),
          );
          results.forEach((outcomes, position) => {
            const retry = group[position]!.filter(
              (record) => outcomes.get(record.recordId)?.status === 'failed',
            );
            if (retry.length > 0) batches.push(retry);
          });
        }

        const views: PaymentView[] = [];
        for (const payment of histories.flatMap((history) => history.payments)) {
          const view = await store.getPayment(payment.paymentId);
          expect(view).toEqual(payment.expected);
          views.push(view!);
        }
        const dates = new Set(views.map((view) => view.createdAt.slice(0, 10)));
        for (const date of dates) {
          expect(byBucket(await store.dailySummary(date))).toEqual(byBucket(recount(views, date)));
        }
      }),
      { numRuns: 120 },
    );
  });
});
