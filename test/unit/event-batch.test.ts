/**
 * The shared batch engine's failure rules, through the payments family and the packed
 * in-memory store (one store transaction for all commits of a call, as on DynamoDB):
 * a commit the store refuses fails its own records only, after being resent alone.
 */
import { describe, expect, it } from 'vitest';
import { InMemoryPaymentStore } from '../../functions/adapters/memory/in-memory-payment-store.ts';
import { applyPaymentEvents } from '../../functions/core/payments/apply-payment-events.ts';
import { toPaymentFact } from '../../functions/core/payments/payment-facts.ts';
import { parseQueuedEvent } from '../../functions/core/shared/stripe-envelope.ts';
import { generatePaymentHistory, historyEvents } from '../helpers/payment-history.ts';

const clock = { now: () => 1_750_000_000_000 };

function batchOf(histories: ReturnType<typeof generatePaymentHistory>[]) {
  return histories
    .flatMap((history) => historyEvents(history))
    .map((event, index) => ({ recordId: `r${index}`, body: JSON.stringify(event) }));
}

describe('applyEventBatch: a failure stays with its own aggregate', () => {
  it('lands every other payment when one commit of the shared pack is refused', async () => {
    const histories = [1, 2, 3, 4].map((seed) =>
      generatePaymentHistory(seed, { payments: 2, prefix: `p${seed}` }),
    );
    const poisoned = histories[0]!.payments[0]!.paymentId;
    const store = new InMemoryPaymentStore({ packed: true });
    store.fault = (point) => {
      if (point.operation === 'commit' && point.commit.paymentId === poisoned) {
        throw new Error('ValidationException: item too large');
      }
      return undefined;
    };
    const pauses: number[] = [];
    const records = batchOf(histories);
    const outcomes = await applyPaymentEvents(records, {
      store,
      directory: store,
      clock,
      pause: async (ms) => {
        pauses.push(ms);
      },
    });

    const failedIds = new Set<string>();
    for (const record of records) {
      const outcome = outcomes.get(record.recordId)!;
      const paymentId = toPaymentFact(parseQueuedEvent(record.body))?.paymentId;
      expect(outcome.status === 'failed', `${record.recordId} of ${paymentId}`).toBe(
        paymentId === poisoned,
      );
      if (outcome.status === 'failed') failedIds.add(String(outcome.eventId));
    }
    expect(failedIds.size).toBeGreaterThan(0);
    for (const payment of histories.flatMap((h) => h.payments)) {
      const view = await store.getPayment(payment.paymentId);
      expect(view).toEqual(payment.paymentId === poisoned ? null : payment.expected);
    }
    // The resend came after a jittered wait, not at once.
    expect(pauses.length).toBeGreaterThan(0);
  });

  it('still fails everything when the store is down for everyone', async () => {
    const histories = [5, 6].map((seed) => generatePaymentHistory(seed, { prefix: `d${seed}` }));
    const store = new InMemoryPaymentStore({ packed: true });
    store.fault = (point) => {
      if (point.operation === 'commit') throw new Error('ServiceUnavailable');
      return undefined;
    };
    const records = batchOf(histories);
    const outcomes = await applyPaymentEvents(records, {
      store,
      directory: store,
      clock,
      pause: async () => undefined,
    });
    expect([...outcomes.values()].every((outcome) => outcome.status === 'failed')).toBe(true);
  });
});
