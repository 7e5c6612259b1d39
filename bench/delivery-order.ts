/**
 * The two delivery orders the benchmark feeds, and how spread over customers the
 * batches they make are. The consumer writes one transaction per customer per batch,
 * so events per customer per batch is what its batching can save.
 *
 * - bursty (`deliverInBursts`): at most `activeCustomers` customers deliver at once,
 *   as when each customer action makes Stripe emit several events within seconds;
 *   the target figures use it.
 * - uniform (`deliver`): every customer's whole life interleaved evenly with every
 *   other's, so a batch of 50 holds ~45 customers: the worst case for batching.
 */
import {
  type DeliveryNoise,
  deliver,
  deliverInBursts,
  type GeneratedHistory,
} from '../test/helpers/stripe-history.ts';

export type DeliveryOrder = 'bursty' | 'uniform';

export const ORDER_DESCRIPTION: Record<DeliveryOrder, string> = {
  bursty:
    'bursty order (a few customers active at once, each sending its events; real Stripe traffic comes in per-customer bursts)',
  uniform:
    'uniform order (every customer interleaved evenly with all others: the worst case for per-customer batching)',
};

export function deliverInOrder(
  order: DeliveryOrder,
  histories: readonly GeneratedHistory[],
  seed: number,
  options: DeliveryNoise & { activeCustomers: number },
): string[] {
  return order === 'bursty'
    ? deliverInBursts(histories, seed, options)
    : deliver(histories, seed, {
        ...(options.duplicateRate === undefined ? {} : { duplicateRate: options.duplicateRate }),
        ...(options.reorderWindow === undefined ? {} : { reorderWindow: options.reorderWindow }),
      });
}

/** Event id -> customer id, for every event of these histories. */
export function customerOfEvent(histories: readonly GeneratedHistory[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const history of histories)
    for (const event of history.events) map.set(event.id, history.customerId);
  return map;
}

export interface BatchSpread {
  batches: number;
  records: number;
  /** Mean over batches of records / distinct customers in the batch. */
  meanEventsPerCustomer: number;
  /** Mean over batches of distinct customers in the batch. */
  meanCustomers: number;
}

/** Collects batches (the customer of each record) and summarises their spread. */
export class SpreadMeter {
  #batches = 0;
  #records = 0;
  #eventsPerCustomer = 0;
  #customers = 0;

  /** One batch: the customer id of each record (undefined when unknown: not counted). */
  add(customerIds: readonly (string | undefined)[]): void {
    const known = customerIds.filter((id): id is string => id !== undefined);
    if (known.length === 0) return;
    const distinct = new Set(known).size;
    this.#batches += 1;
    this.#records += known.length;
    this.#eventsPerCustomer += known.length / distinct;
    this.#customers += distinct;
  }

  summary(): BatchSpread {
    const n = Math.max(1, this.#batches);
    return {
      batches: this.#batches,
      records: this.#records,
      meanEventsPerCustomer: this.#batches ? this.#eventsPerCustomer / n : Number.NaN,
      meanCustomers: this.#batches ? this.#customers / n : Number.NaN,
    };
  }
}

/** The spread of a delivery cut into consecutive batches of `batchSize`, as queued batches are. */
export function spreadOfDelivery(
  bodies: readonly string[],
  batchSize: number,
  customerOf: ReadonlyMap<string, string>,
): BatchSpread {
  const meter = new SpreadMeter();
  for (let start = 0; start < bodies.length; start += batchSize) {
    meter.add(
      bodies
        .slice(start, start + batchSize)
        .map((body) => customerOf.get((JSON.parse(body) as { id: string }).id)),
    );
  }
  return meter.summary();
}
