/**
 * Turns a raw Stripe event (any API version an account pins, 2020-era through
 * 2025 "basil" and later) into the few facts the subscription domain needs.
 * Shapes differ by version, so each fact is read from every place Stripe has put it:
 * - billing period: `subscription.current_period_end` (old) or on each item (basil+);
 * - an invoice's subscription: `invoice.subscription` (old),
 *   `invoice.parent.subscription_details.subscription` (basil+);
 * - a price: `item.price` (2018+) or `item.plan` (older).
 */
import * as z from 'zod/mini';
import {
  EVENT_FAMILY_TYPES,
  type FamilyEventType,
  isFamilyEventType,
} from '../shared/event-families.ts';
import {
  idOf,
  idOrObject,
  MalformedEventError,
  metadataSchema,
  parseOrThrow,
  type StripeEventEnvelope,
  userIdFrom,
} from '../shared/stripe-envelope.ts';
import { type PriceRef, type PriceTierMap, resolveTier, type Tier } from '../shared/tiers.ts';

export const SUBSCRIPTION_EVENT_TYPES = EVENT_FAMILY_TYPES.subscriptions;
export type SubscriptionEventType = FamilyEventType<'subscriptions'>;

export type SubscriptionStatus =
  | 'incomplete'
  | 'incomplete_expired'
  | 'trialing'
  | 'active'
  | 'past_due'
  | 'canceled'
  | 'unpaid'
  | 'paused';

/** Where an event sits in time; ties in `created` are broken by `rank`, then by event id. */
export interface EventStamp {
  eventId: string;
  created: number;
}

interface EventBase extends EventStamp {
  type: string;
  customerId: string;
}

export interface CheckoutCompletedFact extends EventBase {
  kind: 'checkout-completed';
  userId: string | null;
  subscriptionId: string | null;
  mode: string;
}

export interface CustomerFact extends EventBase {
  kind: 'customer';
  userId: string | null;
}

export interface SubscriptionSnapshot {
  subscriptionId: string;
  status: SubscriptionStatus;
  tier: Tier;
  priceIds: string[];
  currentPeriodEnd: number | null;
  cancelAtPeriodEnd: boolean;
  /** Stripe's `created` of the subscription object itself. */
  createdAt: number;
}

/**
 * What an update's `data.previous_attributes` says the subscription was just before it,
 * for the fields the snapshot keeps (absent: unchanged by that update).
 */
export interface SubscriptionPrevious {
  status?: string;
  cancelAtPeriodEnd?: boolean;
  currentPeriodEnd?: number | null;
  priceIds?: string[];
}

export interface SubscriptionFact extends EventBase {
  kind: 'subscription';
  userId: string | null;
  deleted: boolean;
  snapshot: SubscriptionSnapshot;
  /** From an update's `previous_attributes`: null when the event has none. */
  previous: SubscriptionPrevious | null;
  unmappedPriceIds: string[];
}

export interface InvoiceFact extends EventBase {
  kind: 'invoice';
  invoiceId: string;
  subscriptionId: string | null;
  outcome: 'paid' | 'payment_failed';
  /** The invoice object's own `created`: a later invoice supersedes an earlier one. */
  invoiceCreated: number;
  amountCents: number;
  currency: string | null;
}

export type SubscriptionEventFact =
  | CheckoutCompletedFact
  | CustomerFact
  | SubscriptionFact
  | InvoiceFact;

// Loose objects: Stripe adds fields in every API version; we read only what we need.
const priceSchema = z.looseObject({ id: z.string(), metadata: metadataSchema });

const subscriptionSchema = z.looseObject({
  id: z.string().check(z.startsWith('sub_')),
  customer: idOrObject,
  status: z.enum([
    'incomplete',
    'incomplete_expired',
    'trialing',
    'active',
    'past_due',
    'canceled',
    'unpaid',
    'paused',
  ]),
  created: z.int(),
  cancel_at_period_end: z.nullish(z.boolean()),
  current_period_end: z.nullish(z.int()),
  metadata: metadataSchema,
  items: z.object({
    data: z.array(
      z.looseObject({
        current_period_end: z.nullish(z.int()),
        price: z.nullish(priceSchema),
        plan: z.nullish(priceSchema),
      }),
    ),
  }),
});

const customerSchema = z.looseObject({
  id: z.string().check(z.startsWith('cus_')),
  metadata: metadataSchema,
});

const checkoutSessionSchema = z.looseObject({
  id: z.string(),
  mode: z.string(),
  customer: z.nullish(idOrObject),
  subscription: z.nullish(idOrObject),
  client_reference_id: z.nullish(z.string()),
  metadata: metadataSchema,
});

const invoiceSchema = z.looseObject({
  id: z.string(),
  customer: idOrObject,
  subscription: z.nullish(idOrObject),
  parent: z.nullish(
    z.looseObject({
      subscription_details: z.nullish(z.looseObject({ subscription: z.nullish(idOrObject) })),
    }),
  ),
  created: z.nullish(z.int()),
  amount_paid: z.nullish(z.number()),
  amount_due: z.nullish(z.number()),
  currency: z.nullish(z.string()),
});

export function isSubscriptionEventType(type: string): type is SubscriptionEventType {
  return isFamilyEventType('subscriptions', type);
}

/**
 * Extracts the domain facts from a handled event type. Throws MalformedEventError
 * when a required field is missing; returns null for a checkout session with no
 * customer (nothing to link).
 */
export function toSubscriptionFact(
  event: StripeEventEnvelope & { type: SubscriptionEventType },
  priceTierMap: PriceTierMap,
): SubscriptionEventFact | null {
  const stamp = { eventId: event.id, created: event.created, type: event.type };
  const object = event.data.object;
  switch (event.type) {
    case 'checkout.session.completed': {
      const session = parseOrThrow(checkoutSessionSchema, object, event.type);
      const customerId = idOf(session.customer);
      if (!customerId) return null;
      return {
        ...stamp,
        kind: 'checkout-completed',
        customerId,
        userId: userIdFrom(session.metadata, session.client_reference_id),
        subscriptionId: idOf(session.subscription),
        mode: session.mode,
      };
    }
    case 'customer.created':
    case 'customer.updated': {
      const customer = parseOrThrow(customerSchema, object, event.type);
      return {
        ...stamp,
        kind: 'customer',
        customerId: customer.id,
        userId: userIdFrom(customer.metadata),
      };
    }
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted': {
      const deleted = event.type === 'customer.subscription.deleted';
      const read = readSubscription(event.data.object, priceTierMap, event.type);
      return {
        ...stamp,
        kind: 'subscription',
        customerId: read.customerId,
        userId: read.userId,
        deleted,
        unmappedPriceIds: read.unmappedPriceIds,
        // A deleted subscription is over whatever status the payload shows.
        snapshot: deleted ? { ...read.snapshot, status: 'canceled' } : read.snapshot,
        previous:
          event.type === 'customer.subscription.updated'
            ? readPrevious(event.data.previous_attributes)
            : null,
      };
    }
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const invoice = parseOrThrow(invoiceSchema, object, event.type);
      const customerId = idOf(invoice.customer);
      if (!customerId) throw new MalformedEventError(`${event.type}: customer missing`);
      const paid = event.type === 'invoice.paid';
      return {
        ...stamp,
        kind: 'invoice',
        customerId,
        invoiceId: invoice.id,
        subscriptionId:
          idOf(invoice.subscription) ?? idOf(invoice.parent?.subscription_details?.subscription),
        outcome: paid ? 'paid' : 'payment_failed',
        invoiceCreated: invoice.created ?? event.created,
        amountCents: (paid ? invoice.amount_paid : invoice.amount_due) ?? 0,
        currency: invoice.currency ?? null,
      };
    }
  }
}

/**
 * A Stripe subscription object (from an event or from the API) read into the domain's
 * snapshot, its customer and the user its metadata names. Throws MalformedEventError
 * naming the first bad field.
 */
export function readSubscription(
  object: unknown,
  priceTierMap: PriceTierMap,
  what: string,
): {
  customerId: string;
  userId: string | null;
  snapshot: SubscriptionSnapshot;
  unmappedPriceIds: string[];
} {
  const subscription = parseOrThrow(subscriptionSchema, object, what);
  const customerId = idOf(subscription.customer);
  if (!customerId) throw new MalformedEventError(`${what}: customer missing`);
  const prices: PriceRef[] = [];
  const itemPeriodEnds: number[] = [];
  for (const item of subscription.items.data) {
    const price = item.price ?? item.plan;
    if (price) prices.push({ id: price.id, metadataTier: price.metadata?.tier ?? undefined });
    if (typeof item.current_period_end === 'number') itemPeriodEnds.push(item.current_period_end);
  }
  const { tier, unmappedPriceIds } = resolveTier(prices, priceTierMap);
  return {
    customerId,
    userId: userIdFrom(subscription.metadata),
    unmappedPriceIds,
    snapshot: {
      subscriptionId: subscription.id,
      status: subscription.status,
      tier,
      priceIds: prices.map((price) => price.id),
      // basil+: the period lives on items; with several items the subscription
      // is paid up to the latest of them.
      currentPeriodEnd:
        subscription.current_period_end ??
        (itemPeriodEnds.length ? Math.max(...itemPeriodEnds) : null),
      cancelAtPeriodEnd: subscription.cancel_at_period_end ?? false,
      createdAt: subscription.created,
    },
  };
}

const previousSchema = z.looseObject({
  status: z.optional(z.string()),
  cancel_at_period_end: z.nullish(z.boolean()),
  current_period_end: z.nullish(z.int()),
  items: z.optional(
    z.looseObject({
      data: z.array(
        z.looseObject({
          current_period_end: z.nullish(z.int()),
          price: z.nullish(z.looseObject({ id: z.string() })),
          plan: z.nullish(z.looseObject({ id: z.string() })),
        }),
      ),
    }),
  ),
});

/**
 * The snapshot fields an update changed, with their old values. Unreadable or absent
 * previous attributes give null: the update then cannot be placed by its payload.
 */
export function readPrevious(previousAttributes: unknown): SubscriptionPrevious | null {
  if (previousAttributes === undefined || previousAttributes === null) return null;
  const parsed = z.safeParse(previousSchema, previousAttributes);
  if (!parsed.success) return null;
  const old = parsed.data;
  const previous: SubscriptionPrevious = {};
  if (old.status !== undefined) previous.status = old.status;
  if ('cancel_at_period_end' in old) previous.cancelAtPeriodEnd = old.cancel_at_period_end ?? false;
  if ('current_period_end' in old) previous.currentPeriodEnd = old.current_period_end ?? null;
  if (old.items) {
    previous.priceIds = old.items.data.flatMap((item) => {
      const price = item.price ?? item.plan;
      return price ? [price.id] : [];
    });
    // basil+: the period lives on the items.
    const ends = old.items.data.flatMap((item) =>
      typeof item.current_period_end === 'number' ? [item.current_period_end] : [],
    );
    if (!('current_period_end' in old) && ends.length > 0) {
      previous.currentPeriodEnd = Math.max(...ends);
    }
  }
  return previous;
}

/** The ledger type of the facts a Stripe snapshot (read-through fallback, resync) records. */
export const SNAPSHOT_EVENT_TYPE = 'stripe.snapshot';

/** A customer and its subscriptions as the Stripe API answered them, at `fetchedAt`. */
export interface StripeCustomerRecord {
  /** The customer object (`cus_...`, with `metadata`). */
  customer: unknown;
  /** Subscription objects of that customer. */
  subscriptions: readonly unknown[];
  /** Epoch seconds of the answer (Stripe's `Date` header, else the local clock). */
  fetchedAt: number;
}

/**
 * The facts of a snapshot: the customer's link to its user and every subscription as
 * Stripe shows it now. They are stamped at `fetchedAt` with the lowest rank of that
 * second, so the order guard treats the snapshot as an event just before any event of
 * the same second: an event of an earlier second cannot undo it, and any event of
 * that second or later still wins (it may describe a change the snapshot missed).
 */
export function snapshotFacts(
  record: StripeCustomerRecord,
  priceTierMap: PriceTierMap,
): { customerId: string; facts: SubscriptionEventFact[]; unmappedPriceIds: string[] } {
  const customer = parseOrThrow(customerSchema, record.customer, 'customer');
  const stamp = { type: SNAPSHOT_EVENT_TYPE, created: record.fetchedAt };
  const facts: SubscriptionEventFact[] = [
    {
      ...stamp,
      eventId: `snapshot_${customer.id}_${record.fetchedAt}`,
      kind: 'customer',
      customerId: customer.id,
      userId: userIdFrom(customer.metadata),
    },
  ];
  const unmappedPriceIds: string[] = [];
  for (const object of record.subscriptions) {
    const read = readSubscription(object, priceTierMap, 'subscription');
    if (read.customerId !== customer.id) {
      throw new MalformedEventError(
        `subscription ${read.snapshot.subscriptionId} belongs to ${read.customerId}, not ${customer.id}`,
      );
    }
    unmappedPriceIds.push(...read.unmappedPriceIds);
    facts.push({
      ...stamp,
      eventId: `snapshot_${read.snapshot.subscriptionId}_${record.fetchedAt}`,
      kind: 'subscription',
      customerId: customer.id,
      userId: read.userId,
      deleted: false,
      snapshot: read.snapshot,
      previous: null,
      unmappedPriceIds: read.unmappedPriceIds,
    });
  }
  return { customerId: customer.id, facts, unmappedPriceIds };
}
