/**
 * The DESIGN §3 invariant: for any interleaving, duplication and reordering of
 * realistic per-customer histories, delivered in batches of any size (some of them
 * concurrently), the final state equals applying each history once, in order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InMemorySubscriptionStore } from '../../functions/adapters/memory/in-memory-subscription-store.ts';
import {
  applySubscriptionEvents,
  type QueuedEvent,
} from '../../functions/core/subscriptions/apply-subscription-events.ts';
import {
  type CustomerAccount,
  emptyAccount,
  foldFacts,
  isTerminal,
  projectUserView,
} from '../../functions/core/subscriptions/customer-account.ts';
import type { SubscriptionEventFact } from '../../functions/core/subscriptions/subscription-facts.ts';
import { bestView } from '../../functions/core/subscriptions/user-standing.ts';
import {
  deliver,
  expectedView,
  generateHistory,
  HISTORY_PRICE_TIER_MAP,
  historyFacts,
} from '../helpers/stripe-history.ts';

const priceTierMap = HISTORY_PRICE_TIER_MAP;
const clock = { now: () => 1_750_000_000_000 };

/** Last write wins, in history order, with no guard but "canceled is final". */
function naiveInOrder(customerId: string, facts: SubscriptionEventFact[]): CustomerAccount {
  const account = emptyAccount(customerId);
  for (const fact of facts) {
    if ('userId' in fact && fact.userId) account.userId = fact.userId;
    if (fact.kind === 'subscription') {
      const current = account.subscriptions[fact.snapshot.subscriptionId];
      if (!current || !isTerminal(current.status)) {
        account.subscriptions[fact.snapshot.subscriptionId] = {
          ...fact.snapshot,
          version: { created: 0, rank: 0, eventId: '' },
        };
      }
    }
    if (fact.kind === 'invoice') {
      account.invoices[fact.subscriptionId ?? ''] = {
        invoiceId: fact.invoiceId,
        invoiceCreated: fact.invoiceCreated,
        outcome: fact.outcome,
        amountCents: fact.amountCents,
        currency: fact.currency,
        version: { created: 0, rank: 0, eventId: '' },
      };
    }
  }
  return account;
}

const scenario = fc.record({
  seeds: fc.uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 6 }),
  deliverySeed: fc.integer(),
  duplicateRate: fc.double({ min: 0, max: 0.6, noNaN: true }),
  reorderWindow: fc.integer({ min: 0, max: 12 }),
  batchSizes: fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 8 }),
  parallelBatches: fc.integer({ min: 1, max: 3 }),
  // Packed: one failing commit aborts the others in its transaction, as on DynamoDB.
  packed: fc.boolean(),
});

describe('applySubscriptionEvents: exactly-once under at-least-once, out-of-order delivery', () => {
  it('converges to the in-order state for every delivery', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const histories = s.seeds.map((seed) => generateHistory(seed));
        const bodies = deliver(histories, s.deliverySeed, {
          duplicateRate: s.duplicateRate,
          reorderWindow: s.reorderWindow,
        });
        const store = new InMemorySubscriptionStore({ packed: s.packed });
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
        // Records that fail (races lost past the retry budget) come back later, as SQS
        // redelivers them after the visibility timeout.
        for (let index = 0; index < batches.length && index < 500; index += s.parallelBatches) {
          const group = batches.slice(index, index + s.parallelBatches);
          const results = await Promise.all(
            group.map((batch) => applySubscriptionEvents(batch, { store, clock, priceTierMap })),
          );
          results.forEach((outcomes, position) => {
            const retry = group[position]!.filter(
              (record) => outcomes.get(record.recordId)?.status === 'failed',
            );
            if (retry.length > 0) batches.push(retry);
          });
        }

        const recorded = store.allLedgerEvents();
        for (const history of histories) {
          const facts = historyFacts(history);
          const reference = foldFacts(history.customerId, facts);
          expect(store.accounts.get(history.customerId)?.account).toEqual(reference);
          const view = projectUserView(reference);
          expect(view).toEqual(projectUserView(naiveInOrder(history.customerId, facts)));
          expect((await store.getUserView(history.userId)) ?? null).toEqual(view);
          // Every event is in the ledger, and none was applied twice. (A redelivery that
          // comes back after the recent-events window is recorded again, as stale.)
          for (const fact of facts) {
            const records = recorded.filter((event) => event.eventId === fact.eventId);
            expect(records.length).toBeGreaterThanOrEqual(1);
            expect(
              records.filter((event) => event.outcome === 'applied').length,
            ).toBeLessThanOrEqual(1);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('shows each user the best standing across all their customers, and drops a customer moved to someone else', async () => {
    const users = ['user-multi-a', 'user-multi-b'];
    const customers = fc.record({
      seed: fc.integer({ min: 1, max: 1_000_000 }),
      user: fc.constantFrom(0, 1),
      movesTo: fc.option(fc.constantFrom(0, 1), { freq: 3 }),
    });
    const multiScenario = fc.record({
      customers: fc.uniqueArray(customers, { minLength: 2, maxLength: 5, selector: (c) => c.seed }),
      deliverySeed: fc.integer(),
      duplicateRate: fc.double({ min: 0, max: 0.5, noNaN: true }),
      reorderWindow: fc.integer({ min: 0, max: 12 }),
      batchSize: fc.integer({ min: 1, max: 20 }),
      parallelBatches: fc.integer({ min: 1, max: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(multiScenario, async (s) => {
        const histories = s.customers.map((customer) =>
          generateHistory(customer.seed, {
            prefix: 'multi',
            userId: users[customer.user]!,
            ...(customer.movesTo === null ? {} : { movesTo: users[customer.movesTo]! }),
          }),
        );
        const bodies = deliver(histories, s.deliverySeed, {
          duplicateRate: s.duplicateRate,
          reorderWindow: s.reorderWindow,
        });
        const store = new InMemorySubscriptionStore();
        let pending = bodies.map((body, index) => ({ recordId: `r${index}`, body }));
        for (let round = 0; pending.length > 0 && round < 20; round++) {
          const batches: QueuedEvent[][] = [];
          for (let index = 0; index < pending.length; index += s.batchSize) {
            batches.push(pending.slice(index, index + s.batchSize));
          }
          const retry: QueuedEvent[] = [];
          for (let index = 0; index < batches.length; index += s.parallelBatches) {
            const group = batches.slice(index, index + s.parallelBatches);
            const results = await Promise.all(
              group.map((batch) => applySubscriptionEvents(batch, { store, clock, priceTierMap })),
            );
            results.forEach((outcomes, position) => {
              for (const record of group[position]!) {
                if (outcomes.get(record.recordId)?.status === 'failed') retry.push(record);
              }
            });
          }
          pending = retry;
        }
        expect(pending).toEqual([]);

        // Each customer's view, in order; each user's: the best of the customers it ends with.
        const inOrder = histories.map(expectedView);
        for (const userId of users) {
          const own = Object.fromEntries(
            inOrder.flatMap((view) =>
              view && view.userId === userId ? [[view.stripeCustomerId, view]] : [],
            ),
          );
          expect((await store.getUserView(userId)) ?? null).toEqual(bestView(own));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('folds a batch per customer: one commit per customer, not per event', async () => {
    const histories = [generateHistory(11), generateHistory(12), generateHistory(13)];
    const bodies = histories.flatMap((history) =>
      history.events.map((event) => JSON.stringify(event)),
    );
    const store = new InMemorySubscriptionStore();
    const outcomes = await applySubscriptionEvents(
      bodies.map((body, index) => ({ recordId: `r${index}`, body })),
      { store, clock, priceTierMap },
    );
    expect(store.commits).toBe(3);
    expect(
      [...outcomes.values()].every(
        (outcome) => outcome.status === 'applied' || outcome.status === 'stale',
      ),
    ).toBe(true);
  });
});
