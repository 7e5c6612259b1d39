import { describe, expect, it } from 'vitest';
import { customerOfEvent, SpreadMeter, spreadOfDelivery } from '../../bench/delivery-order.ts';
import {
  deliver,
  deliverInBursts,
  generateHistory,
  type StripeEventJson,
} from '../helpers/stripe-history.ts';

const histories = Array.from({ length: 40 }, (_, i) => generateHistory(i + 1, { prefix: 'bo' }));
const ids = (bodies: string[]) => bodies.map((body) => (JSON.parse(body) as StripeEventJson).id);
const allIds = histories.flatMap((h) => h.events.map((e) => e.id));

describe('bursty delivery order (deliverInBursts)', () => {
  it('without noise, starts customers in turn, at most `activeCustomers` unfinished at once', () => {
    const order = ids(
      deliverInBursts(histories, 5, { activeCustomers: 3, duplicateRate: 0, reorderWindow: 0 }),
    );
    expect([...order].sort()).toEqual([...allIds].sort());
    const customerOf = customerOfEvent(histories);
    const position = new Map(histories.map((h, index) => [h.customerId, index]));
    const remaining = new Map(histories.map((h) => [h.customerId, h.events.length]));
    const live = new Set<string>();
    let finished = 0;
    for (const id of order) {
      const customer = customerOf.get(id)!;
      if (!live.has(customer)) {
        // The (i+1)-th customer can start only once i+1-3 customers have finished.
        expect(finished).toBeGreaterThanOrEqual(position.get(customer)! + 1 - 3);
        live.add(customer);
      }
      remaining.set(customer, remaining.get(customer)! - 1);
      if (remaining.get(customer) === 0) {
        live.delete(customer);
        finished += 1;
      }
      expect(live.size).toBeLessThanOrEqual(3);
    }
  });

  it("keeps each customer's events in Stripe's order before the noise", () => {
    const order = ids(deliverInBursts(histories, 9, { duplicateRate: 0, reorderWindow: 0 }));
    for (const history of histories) {
      const own = history.events.map((e) => e.id);
      expect(order.filter((id) => own.includes(id))).toEqual(own);
    }
  });

  it('adds duplicates and reordering like deliver, and is deterministic per seed', () => {
    const a = deliverInBursts(histories, 3, { duplicateRate: 0.2, reorderWindow: 6 });
    expect(deliverInBursts(histories, 3, { duplicateRate: 0.2, reorderWindow: 6 })).toEqual(a);
    expect(new Set(ids(a))).toEqual(new Set(allIds));
    expect(a.length).toBeGreaterThan(allIds.length);
  });

  it('makes batches far less spread over customers than the uniform order', () => {
    const customerOf = customerOfEvent(histories);
    const bursty = spreadOfDelivery(deliverInBursts(histories, 1, {}), 50, customerOf);
    const uniform = spreadOfDelivery(deliver(histories, 1, {}), 50, customerOf);
    expect(bursty.meanEventsPerCustomer).toBeGreaterThan(2 * uniform.meanEventsPerCustomer);
  });
});

describe('batch spread', () => {
  it('averages records per distinct customer over batches, ignoring unknown records', () => {
    const meter = new SpreadMeter();
    meter.add(['a', 'a', 'b', 'b']);
    meter.add(['a', 'b', 'c', 'd', undefined]);
    meter.add([undefined]);
    expect(meter.summary()).toEqual({
      batches: 2,
      records: 8,
      meanEventsPerCustomer: 1.5,
      meanCustomers: 3,
    });
  });
});
