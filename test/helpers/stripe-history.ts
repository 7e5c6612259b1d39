/**
 * Realistic per-customer Stripe event histories, built from the real fixture
 * payloads (re-stamped ids, times, customer, prices) in both the 2020-era and the
 * 2025 "basil" shapes. Deterministic for a given seed, so the property test and the
 * benchmark can replay the same histories.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEnvelope } from '../../functions/core/shared/stripe-envelope.ts';
import {
  foldFacts,
  projectUserView,
  type UserSubscriptionView,
} from '../../functions/core/subscriptions/customer-account.ts';
import {
  type SubscriptionEventFact,
  type SubscriptionEventType,
  toSubscriptionFact,
} from '../../functions/core/subscriptions/subscription-facts.ts';

const fixtureDir = fileURLToPath(new URL('../fixtures/stripe/', import.meta.url));
const readJson = (name: string) => JSON.parse(readFileSync(`${fixtureDir}${name}`, 'utf8'));

const templates = {
  subscription: readJson('customer.subscription.updated.stripe-sync-engine.json').data.object,
  basilSubscription: readJson('openapi-canonical/subscription.object.openapi-fixtures3.json'),
  invoice: readJson('invoice.paid.stripe-sync-engine.json').data.object,
  basilInvoice: readJson('invoice.payment_failed.data-only.pay-rails.json').object,
  checkout: readJson('checkout.session.completed.mode-subscription.data-only.pay-rails.json')
    .object,
  customer: readJson('customer.created.WRAPPED.openapi-fixtures3.json').data.object,
  envelope: readJson('customer.subscription.updated.stripe-sync-engine.json'),
};

/** Prices used by generated histories; bronze and gold carry `metadata.tier`, silver needs the map. */
export const HISTORY_PRICES = {
  bronze: { id: 'price_gen_bronze', metadata: { tier: 'bronze' } },
  silver: { id: 'price_gen_silver', metadata: {} },
  gold: { id: 'price_gen_gold', metadata: { tier: 'gold' } },
} as const;
export const HISTORY_PRICE_TIER_MAP = { price_gen_silver: 'silver' } as const;

export interface StripeEventJson {
  id: string;
  object: 'event';
  type: string;
  created: number;
  api_version: string;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  [key: string]: unknown;
}

export interface GeneratedHistory {
  customerId: string;
  userId: string;
  shape: 'legacy' | 'basil';
  /** In the order Stripe created them. */
  events: StripeEventJson[];
}

/** mulberry32: small, fast, good enough to shuffle test data. */
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

export interface HistoryOptions {
  /** Namespaces ids so many histories can share one table. */
  prefix?: string;
  /** Unix seconds of the first event. */
  start?: number;
  shape?: 'legacy' | 'basil';
  /** The user the customer is linked to. Default: one of its own, `user-<prefix>-<seed>`. */
  userId?: string;
  /** Ends the history by moving the customer to this user (`customer.updated` metadata). */
  movesTo?: string;
}

/**
 * One customer's life: customer created, checkout, subscription created/updated,
 * invoices, and at random an upgrade, a failed payment and recovery or lapse, a
 * cancellation at period end, a deletion, and a second subscription. Several events
 * share a `created` second, as real bursts do.
 */
export function generateHistory(seed: number, options: HistoryOptions = {}): GeneratedHistory {
  const random = seededRandom(seed);
  const chance = (p: number) => random() < p;
  const prefix = options.prefix ?? 'gen';
  const customerId = `cus_${prefix}${seed}`;
  const userId = options.userId ?? `user-${prefix}-${seed}`;
  const shape = options.shape ?? (chance(0.5) ? 'basil' : 'legacy');
  let clock = options.start ?? 1_700_000_000 + (seed % 100_000) * 7;
  let eventCounter = 0;
  const events: StripeEventJson[] = [];
  // Often 0 or 1 s apart: ties within one second are the hard case for ordering.
  const tick = () => {
    clock += chance(0.4) ? 0 : Math.ceil(random() * 3);
    return clock;
  };
  // The last object each subscription event carried: an update lists what it changed.
  const lastObject = new Map<string, Record<string, unknown>>();
  const emit = (type: string, object: Record<string, unknown>) => {
    eventCounter += 1;
    const data: StripeEventJson['data'] = { object };
    const before = lastObject.get(String(object.id));
    if (type === 'customer.subscription.updated' && before) {
      // As Stripe does: the top-level attributes the update changed, with their old values.
      data.previous_attributes = Object.fromEntries(
        Object.keys({ ...before, ...object })
          .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(object[key]))
          .map((key) => [key, before[key] ?? null]),
      );
    }
    if (type.startsWith('customer.subscription.')) lastObject.set(String(object.id), object);
    events.push({
      ...structuredClone(templates.envelope),
      // Random: Stripe does not promise that event ids sort in time, so nothing may rely on it.
      id: `evt_${prefix}${seed}x${Math.floor(random() * 36 ** 8).toString(36)}${eventCounter}`,
      type,
      created: tick(),
      api_version: shape === 'basil' ? '2025-03-31.basil' : '2020-03-02',
      data,
    });
  };

  let invoiceCounter = 0;
  const nextInvoiceId = () => `in_${prefix}${seed}i${++invoiceCounter}`;
  const linkViaCustomerMetadata = chance(0.3);
  emit('customer.created', customerObject(customerId, linkViaCustomerMetadata ? userId : null));

  let subscriptionNumber = 0;
  const lifetimes = chance(0.25) ? 2 : 1;
  for (let life = 0; life < lifetimes; life++) {
    subscriptionNumber += 1;
    const subscriptionId = `sub_${prefix}${seed}n${subscriptionNumber}`;
    const priceKeys = ['bronze', 'silver', 'gold'] as const;
    let price = HISTORY_PRICES[priceKeys[Math.floor(random() * 3)]!];
    let periodEnd = clock + 30 * 86_400;
    const subscriptionCreated = clock;
    const subscription = (status: string, cancelAtPeriodEnd = false) =>
      subscriptionObject(shape, {
        subscriptionId,
        customerId,
        status,
        price,
        periodEnd,
        createdAt: subscriptionCreated,
        cancelAtPeriodEnd,
        userId: chance(0.2) ? userId : null,
      });

    if (life === 0) {
      emit(
        'checkout.session.completed',
        checkoutObject(customerId, subscriptionId, userId, chance(0.5)),
      );
    }
    const startsIncomplete = chance(0.3);
    emit('customer.subscription.created', subscription(startsIncomplete ? 'incomplete' : 'active'));
    emit(
      'invoice.paid',
      invoiceObject(shape, customerId, subscriptionId, 'paid', nextInvoiceId(), clock),
    );
    if (startsIncomplete) emit('customer.subscription.updated', subscription('active'));

    if (chance(0.4)) {
      price = HISTORY_PRICES.gold;
      emit('customer.subscription.updated', subscription('active'));
    }
    if (chance(0.4)) {
      // The renewal invoice is drafted at the end of the period it renews.
      const renewalCreated = periodEnd;
      periodEnd += 30 * 86_400;
      const renewalId = nextInvoiceId();
      emit(
        'invoice.payment_failed',
        invoiceObject(shape, customerId, subscriptionId, 'open', renewalId, renewalCreated),
      );
      emit('customer.subscription.updated', subscription('past_due'));
      if (chance(0.5)) {
        // Stripe's retry of the same invoice succeeds.
        emit(
          'invoice.paid',
          invoiceObject(shape, customerId, subscriptionId, 'paid', renewalId, renewalCreated),
        );
        emit('customer.subscription.updated', subscription('active'));
      } else {
        emit('customer.subscription.updated', subscription('unpaid'));
      }
    }
    if (chance(0.3)) emit('customer.subscription.updated', subscription('active', true));
    if (chance(0.5) || life < lifetimes - 1) {
      emit('customer.subscription.deleted', subscription('canceled'));
    }
    if (chance(0.3))
      emit('customer.updated', customerObject(customerId, linkViaCustomerMetadata ? userId : null));
  }
  if (options.movesTo) emit('customer.updated', customerObject(customerId, options.movesTo));
  return { customerId, userId, shape, events };
}

function customerObject(customerId: string, userId: string | null) {
  return {
    ...structuredClone(templates.customer),
    id: customerId,
    metadata: userId ? { userId } : {},
  };
}

function checkoutObject(
  customerId: string,
  subscriptionId: string,
  userId: string,
  viaMetadata: boolean,
) {
  return {
    ...structuredClone(templates.checkout),
    customer: customerId,
    subscription: subscriptionId,
    client_reference_id: viaMetadata ? null : userId,
    metadata: viaMetadata ? { userId } : {},
  };
}

interface SubscriptionParams {
  subscriptionId: string;
  customerId: string;
  status: string;
  price: { id: string; metadata: Record<string, string> };
  periodEnd: number;
  createdAt: number;
  cancelAtPeriodEnd: boolean;
  userId: string | null;
}

function subscriptionObject(shape: 'legacy' | 'basil', params: SubscriptionParams) {
  const template = shape === 'basil' ? templates.basilSubscription : templates.subscription;
  const object = structuredClone(template);
  const item = structuredClone(object.items.data[0]);
  item.price = { ...item.price, id: params.price.id, metadata: params.price.metadata };
  if (shape === 'basil') {
    item.current_period_end = params.periodEnd;
    item.current_period_start = params.periodEnd - 30 * 86_400;
    delete object.current_period_end;
    delete object.current_period_start;
  } else {
    item.plan = { ...item.plan, id: params.price.id, metadata: params.price.metadata };
    object.current_period_end = params.periodEnd;
    object.plan = item.plan;
  }
  object.items = { ...object.items, data: [item] };
  return {
    ...object,
    id: params.subscriptionId,
    customer: params.customerId,
    status: params.status,
    created: params.createdAt,
    cancel_at_period_end: params.cancelAtPeriodEnd,
    metadata: params.userId ? { userId: params.userId } : {},
  };
}

function invoiceObject(
  shape: 'legacy' | 'basil',
  customerId: string,
  subscriptionId: string,
  status: string,
  invoiceId: string,
  created: number,
) {
  if (shape === 'basil') {
    const object = structuredClone(templates.basilInvoice);
    return {
      ...object,
      id: invoiceId,
      created,
      customer: customerId,
      status,
      parent: {
        ...object.parent,
        subscription_details: {
          ...object.parent.subscription_details,
          subscription: subscriptionId,
        },
      },
    };
  }
  return {
    ...structuredClone(templates.invoice),
    id: invoiceId,
    created,
    customer: customerId,
    subscription: subscriptionId,
    status,
  };
}

/** Duplicates and local reordering, as Stripe's retries and SQS's standard queue make them. */
export interface DeliveryNoise {
  /** Share of deliveries sent twice (back to back, before reordering). Default 0.2. */
  duplicateRate?: number;
  /** Each delivery may swap with one up to this many places ahead. Default 6. */
  reorderWindow?: number;
}

/**
 * A delivery of several histories as Stripe and SQS might make it: interleaved
 * evenly (the next event comes from a uniformly random one of all unfinished
 * histories), with duplicates, and locally reordered. Returns event JSON strings.
 */
export function deliver(
  histories: readonly GeneratedHistory[],
  seed: number,
  options: DeliveryNoise = {},
): string[] {
  const random = seededRandom(seed);
  const cursors = histories.map(() => 0);
  return withNoise(random, options, () => {
    const live = cursors.flatMap((cursor, index) =>
      cursor < histories[index]!.events.length ? [index] : [],
    );
    if (live.length === 0) return undefined;
    const pick = live[Math.floor(random() * live.length)]!;
    return histories[pick]!.events[cursors[pick]!++]!;
  });
}

/**
 * A bursty delivery, closer to real Stripe traffic, where one customer action makes
 * several events for that customer within seconds: customers start one after
 * another, at most `activeCustomers` are live at once (when one finishes, the next
 * starts), and the next event comes from a random live one. Then duplicates and
 * local reordering exactly as `deliver` makes them. Returns event JSON strings.
 */
export function deliverInBursts(
  histories: readonly GeneratedHistory[],
  seed: number,
  options: DeliveryNoise & { activeCustomers?: number } = {},
): string[] {
  const random = seededRandom(seed);
  const activeCustomers = Math.max(1, Math.floor(options.activeCustomers ?? 8));
  const cursors = histories.map(() => 0);
  const live: number[] = [];
  let nextToStart = 0;
  return withNoise(random, options, () => {
    while (live.length < activeCustomers && nextToStart < histories.length) {
      const index = nextToStart++;
      if (histories[index]!.events.length > 0) live.push(index);
    }
    if (live.length === 0) return undefined;
    const slot = Math.floor(random() * live.length);
    const pick = live[slot]!;
    const event = histories[pick]!.events[cursors[pick]!++]!;
    if (cursors[pick]! >= histories[pick]!.events.length) live.splice(slot, 1);
    return event;
  });
}

/**
 * Serialises the events `next` yields until it yields undefined, sending each
 * twice at `duplicateRate`, then swaps each delivery with one up to
 * `reorderWindow` places ahead. `next` draws from the same `random`, in turn.
 */
function withNoise(
  random: () => number,
  options: DeliveryNoise,
  next: () => StripeEventJson | undefined,
): string[] {
  const duplicateRate = options.duplicateRate ?? 0.2;
  const window = options.reorderWindow ?? 6;
  const out: string[] = [];
  for (let event = next(); event !== undefined; event = next()) {
    const body = JSON.stringify(event);
    out.push(body);
    if (random() < duplicateRate) out.push(body);
  }
  // Local reordering: swap each element with one up to `window` places ahead.
  for (let index = 0; index < out.length; index++) {
    const other = Math.min(out.length - 1, index + Math.floor(random() * (window + 1)));
    [out[index], out[other]] = [out[other]!, out[index]!];
  }
  return out;
}

/** The domain facts of a history, in Stripe's order (events without a fact are skipped). */
export function historyFacts(history: GeneratedHistory): SubscriptionEventFact[] {
  const facts: SubscriptionEventFact[] = [];
  for (const event of history.events) {
    const envelope = parseEnvelope(event);
    const fact = toSubscriptionFact(
      { ...envelope, type: envelope.type as SubscriptionEventType },
      HISTORY_PRICE_TIER_MAP,
    );
    if (fact) facts.push(fact);
  }
  return facts;
}

/** The user view of applying the history once, in order: what every delivery must converge to. */
export function expectedView(history: GeneratedHistory): UserSubscriptionView | null {
  return projectUserView(foldFacts(history.customerId, historyFacts(history)));
}
