/**
 * The routing table: ingress and the consumers read their event types from it, so
 * these checks are what keeps an event from being queued where nobody reads it.
 */
import { describe, expect, it } from 'vitest';
import {
  EVENT_FAMILIES,
  EVENT_FAMILY_TYPES,
  familiesFor,
  isFamilyEventType,
} from '../../functions/core/shared/event-families.ts';
import { isSubscriptionEventType } from '../../functions/core/subscriptions/subscription-facts.ts';

describe('the event routing table', () => {
  it('routes each subscription type to the subscriptions family', () => {
    for (const type of [
      'customer.created',
      'customer.updated',
      'customer.subscription.created',
      'customer.subscription.updated',
      'customer.subscription.deleted',
      'invoice.paid',
      'invoice.payment_failed',
    ]) {
      expect(familiesFor(type)).toEqual(['subscriptions']);
    }
  });

  it('routes each payment type of DESIGN §8.1 to the payments family', () => {
    for (const type of [
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
    ]) {
      expect(familiesFor(type)).toEqual(['payments']);
    }
  });

  it('routes invoice_payment.paid (the invoice link from API 2025-03-31.basil on) to the payments family only', () => {
    expect(familiesFor('invoice_payment.paid')).toEqual(['payments']);
    expect(isFamilyEventType('payments', 'invoice_payment.paid')).toBe(true);
    expect(isSubscriptionEventType('invoice_payment.paid')).toBe(false);
  });

  it('sends checkout.session.completed to both families (the mode is in the payload)', () => {
    expect([...familiesFor('checkout.session.completed')].sort()).toEqual([
      'payments',
      'subscriptions',
    ]);
  });

  it('routes an unknown type nowhere', () => {
    expect(familiesFor('product.created')).toEqual([]);
    expect(familiesFor('')).toEqual([]);
    expect(familiesFor('customer.subscription')).toEqual([]);
  });

  it('lists no type twice within a family, and every family has a queue of its own', () => {
    for (const family of EVENT_FAMILIES) {
      const types = EVENT_FAMILY_TYPES[family];
      expect(new Set(types).size).toBe(types.length);
      for (const type of types) expect(isFamilyEventType(family, type)).toBe(true);
    }
    expect(EVENT_FAMILIES).toEqual(['subscriptions', 'payments']);
  });

  it('is the subscription consumer own list of types', () => {
    for (const type of EVENT_FAMILY_TYPES.subscriptions) {
      expect(isSubscriptionEventType(type)).toBe(true);
    }
    expect(isSubscriptionEventType('charge.succeeded')).toBe(false);
  });
});
