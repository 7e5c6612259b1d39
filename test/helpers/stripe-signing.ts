/**
 * THE signing helper for tests: every signed webhook in the suite goes through the
 * Stripe SDK's own `generateTestHeaderString`, so tests sign exactly as Stripe does.
 */
import Stripe from 'stripe';

/** A syntactically real signing secret for tests (never a live secret). */
export const TEST_WEBHOOK_SECRET = 'whsec_test_billing_suite_0123456789abcdef';

export interface SignOptions {
  /** Signature timestamp in epoch seconds. Default: now. */
  timestamp?: number;
}

/**
 * The `Stripe-Signature` header value for `rawBody` (the exact bytes to be POSTed,
 * as a string or Buffer) under `secret`.
 */
export function signPayload(
  rawBody: string | Uint8Array,
  secret: string = TEST_WEBHOOK_SECRET,
  options: SignOptions = {},
): string {
  const payload = typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8');
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}),
  });
}
