/**
 * The routing table: which event family (bounded context) consumes which Stripe
 * event types. Ingress sends an event to the queue of every family listed for its
 * type, and each consumer knows its types from the same table, so the two cannot
 * disagree. A type no family lists is acknowledged at ingress and counted, not queued.
 */
export const EVENT_FAMILY_TYPES = {
  subscriptions: [
    'checkout.session.completed',
    'customer.created',
    'customer.updated',
    'customer.subscription.created',
    'customer.subscription.updated',
    'customer.subscription.deleted',
    'invoice.paid',
    'invoice.payment_failed',
  ],
  payments: [
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
    // From API 2025-03-31 "basil" on, the only link of a payment to its invoice.
    'invoice_payment.paid',
    // Payment mode links a one-off payment to its user; subscription mode is the
    // subscriptions family's. The mode is in the payload, so both families get it.
    'checkout.session.completed',
  ],
} as const satisfies Record<string, readonly string[]>;

export type EventFamilyName = keyof typeof EVENT_FAMILY_TYPES;
export const EVENT_FAMILIES = Object.keys(EVENT_FAMILY_TYPES) as EventFamilyName[];

export type FamilyEventType<F extends EventFamilyName> = (typeof EVENT_FAMILY_TYPES)[F][number];

const familiesByType = new Map<string, EventFamilyName[]>();
for (const family of EVENT_FAMILIES) {
  for (const type of EVENT_FAMILY_TYPES[family]) {
    familiesByType.set(type, [...(familiesByType.get(type) ?? []), family]);
  }
}

/** The families that consume `type`, in table order; empty when none does. */
export function familiesFor(type: string): readonly EventFamilyName[] {
  return familiesByType.get(type) ?? [];
}

/** Whether `family` consumes `type`. */
export function isFamilyEventType<F extends EventFamilyName>(
  family: F,
  type: string,
): type is FamilyEventType<F> {
  return (EVENT_FAMILY_TYPES[family] as readonly string[]).includes(type);
}
