/**
 * The queued event carries no personal data, and loses nothing a consumer reads: every
 * family's facts from every real captured event are the same raw and minimised.
 */
import { describe, expect, it } from 'vitest';
import { toPaymentFact } from '../../functions/core/payments/payment-facts.ts';
import {
  minimizeStripeEvent,
  PERSONAL_DATA_KEYS,
  queuedEventJson,
} from '../../functions/core/shared/personal-data.ts';
import {
  type StripeEventEnvelope,
  stripeEnvelopeSchema,
} from '../../functions/core/shared/stripe-envelope.ts';
import {
  isSubscriptionEventType,
  toSubscriptionFact,
} from '../../functions/core/subscriptions/subscription-facts.ts';
import { readStripeEventRaw, STRIPE_EVENT_FIXTURES } from '../helpers/fixtures.ts';

const EMAIL = /[\w.+-]+@[\w-]+\.[\w.]+/;

/** Personal-data keys holding a value (not null) anywhere outside metadata. */
function personalValues(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => personalValues(item, path));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    if (key === 'metadata') return [];
    if (PERSONAL_DATA_KEYS.has(key) && inner !== null) return [`${path}.${key}`];
    return personalValues(inner, `${path}.${key}`);
  });
}
const parse = (value: unknown) => stripeEnvelopeSchema.parse(value) as StripeEventEnvelope;

describe('minimizeStripeEvent', () => {
  it.each(STRIPE_EVENT_FIXTURES)('keeps every fact of %s and drops its personal data', (name) => {
    const raw = JSON.parse(readStripeEventRaw(name));
    const minimized = minimizeStripeEvent(raw);
    const text = JSON.stringify(minimized);
    // What the webhook queues: no personal value left, and the same event once minimised.
    const queued = JSON.parse(
      queuedEventJson(JSON.parse(readStripeEventRaw(name)), readStripeEventRaw(name)),
    );
    expect(personalValues(queued)).toEqual([]);
    expect(minimizeStripeEvent(queued)).toEqual(minimized);
    expect(text).not.toMatch(EMAIL);
    expect(text).not.toMatch(/"(fingerprint|last4|email|phone|billing_details|evidence)"/);
    const [before, after] = [parse(raw), parse(minimized)];
    expect(toPaymentFact(after)).toEqual(toPaymentFact(before));
    if (isSubscriptionEventType(before.type)) {
      const type = before.type;
      expect(toSubscriptionFact({ ...after, type }, {})).toEqual(
        toSubscriptionFact({ ...before, type }, {}),
      );
    }
  });

  it('keeps our own metadata whole, even keys that look personal', () => {
    const event = {
      id: 'evt_1',
      data: {
        object: {
          metadata: { name: 'habit', userId: 'u1' },
          email: 'a@b.co',
          nested: [{ phone: '1' }],
        },
        previous_attributes: { shipping: { address: 'x' }, status: 'active' },
      },
    };
    expect(minimizeStripeEvent(event)).toEqual({
      id: 'evt_1',
      data: {
        object: { metadata: { name: 'habit', userId: 'u1' }, nested: [{}] },
        previous_attributes: { status: 'active' },
      },
    });
  });

  it('the fixtures do hold personal data (so the checks above can fail)', () => {
    const all = STRIPE_EVENT_FIXTURES.map((name) => readStripeEventRaw(name)).join('\n');
    expect(all).toMatch(EMAIL);
    expect(all).toMatch(/"fingerprint"/);
    const withValues = STRIPE_EVENT_FIXTURES.filter(
      (name) => personalValues(JSON.parse(readStripeEventRaw(name)).data).length > 0,
    );
    expect(withValues.length).toBeGreaterThan(5);
  });

  it('queues the raw body unchanged when every personal-data key is null', () => {
    const raw = JSON.stringify(
      { id: 'evt_1', data: { object: { email: null, amount: 5 } } },
      null,
      2,
    );
    expect(queuedEventJson(JSON.parse(raw), raw)).toBe(raw);
    const withEmail = raw.replace('"email": null', '"email": "a@b.co"');
    expect(queuedEventJson(JSON.parse(withEmail), withEmail)).toBe(
      JSON.stringify({ id: 'evt_1', data: { object: { amount: 5 } } }),
    );
  });
});
