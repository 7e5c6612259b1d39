/**
 * Use case: accept one Stripe webhook delivery. Checks run cheapest-first and each
 * guards the next: size (before touching the bytes), signature over the raw bytes
 * (before parsing anything an attacker sent), then the minimal event envelope, and
 * only then the event is handed to the queue. No AWS, Stripe or Lambda types here.
 */
// zod/mini keeps the webhook bundle small (cold starts); see commons/env.ts.
import * as z from 'zod/mini';
import { type Clock, systemClock } from '../shared/clock.ts';
import { type EventFamilyName, familiesFor } from '../shared/event-families.ts';
import { queuedEventJson } from '../shared/personal-data.ts';
import { type StripeEventEnvelope, stripeEnvelopeSchema } from '../shared/stripe-envelope.ts';
import {
  EnqueueFailedError,
  type EventQueue,
  InvalidSignatureError,
  type SignatureFailure,
  type SignatureVerifier,
} from './ports.ts';

export {
  EnqueueFailedError,
  type EventQueue,
  InvalidSignatureError,
  type SignatureFailure,
  type SignatureVerifier,
  type VerifiedStripeEvent,
  type WebhookSecretProvider,
} from './ports.ts';

/**
 * Largest accepted body: 240 KiB, so that the body plus the message attributes stay
 * under SQS's 256 KiB message limit. Real Stripe events are far smaller.
 */
export const MAX_WEBHOOK_BODY_BYTES = 245_760;

/** What the HTTP layer extracted from the delivery. */
export interface WebhookDelivery {
  /** The body exactly as Stripe sent it (already base64-decoded when needed). */
  rawBody: Uint8Array;
  /** The `Stripe-Signature` header, if present. */
  signatureHeader: string | undefined;
}

export interface WebhookIntakeDeps {
  verifier: SignatureVerifier;
  queue: EventQueue;
  clock?: Clock;
  /**
   * The Stripe mode this stack serves (true: live). An event of the other mode (a test
   * endpoint pointed at production, or the reverse) is acknowledged and not queued.
   * Undefined: no check.
   */
  livemode?: boolean;
}

export type RejectionReason = 'payload_too_large' | SignatureFailure | 'malformed_event';

export type WebhookIntakeResult =
  | {
      outcome: 'enqueued';
      eventId: string;
      eventType: string;
      receivedAt: number;
      /** The families whose queues now hold the event; empty when no family wants it. */
      families: readonly EventFamilyName[];
    }
  /** Verified, but of the other Stripe mode: acknowledged (a 4xx would be retried for days), not queued. */
  | { outcome: 'wrong_mode'; eventId: string; eventType: string; livemode: boolean }
  | { outcome: 'rejected'; reason: RejectionReason; message: string };

// fatal: invalid UTF-8 is malformed, not silently replaced; ignoreBOM: keep a BOM so
// the text round-trips to the exact bytes that were signed (and then fails JSON.parse).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// SQS refuses characters outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
// #x10000-#x10FFFF. The check runs on text that was decoded as strict UTF-8 (so no
// lone surrogates) and parsed as JSON (so no raw control characters but tab, LF and
// CR): of that set only the noncharacters U+FFFE and U+FFFF can remain, and this
// class is ~6x cheaper than the full one on a typical event. A body SQS will never
// take is a client error, not an outage worth retrying as 5xx.
const SQS_FORBIDDEN_IN_PARSED_JSON = /[\uFFFE\uFFFF]/;

function rejected(reason: RejectionReason, message: string): WebhookIntakeResult {
  return { outcome: 'rejected', reason, message };
}

/**
 * Accepts a Stripe webhook delivery: verifies, validates the envelope and enqueues.
 * Rejections are returned (they are the caller's fault, answer 4xx); an
 * `EnqueueFailedError` or a verifier infrastructure error is thrown (answer 5xx).
 */
export async function acceptStripeWebhook(
  delivery: WebhookDelivery,
  deps: WebhookIntakeDeps,
): Promise<WebhookIntakeResult> {
  const { rawBody, signatureHeader } = delivery;
  if (rawBody.byteLength > MAX_WEBHOOK_BODY_BYTES) {
    return rejected('payload_too_large', `Body exceeds ${MAX_WEBHOOK_BODY_BYTES} bytes.`);
  }

  const receivedAt = (deps.clock ?? systemClock).now();
  try {
    await deps.verifier.verify(rawBody, signatureHeader, receivedAt);
  } catch (error) {
    if (error instanceof InvalidSignatureError) return rejected(error.failure, error.message);
    throw error;
  }

  let body: string;
  let parsed: unknown;
  try {
    body = utf8.decode(rawBody);
    parsed = JSON.parse(body);
  } catch {
    return rejected('malformed_event', 'Body is not valid UTF-8 JSON.');
  }
  const envelope = z.safeParse(stripeEnvelopeSchema, parsed);
  if (!envelope.success) {
    const fields = [...new Set(envelope.error.issues.map((i) => i.path.join('.') || '(root)'))];
    return rejected('malformed_event', `Not a Stripe event; invalid: ${fields.join(', ')}.`);
  }
  if (SQS_FORBIDDEN_IN_PARSED_JSON.test(body)) {
    return rejected('malformed_event', 'Body contains characters that cannot be queued.');
  }

  const { id: eventId, type: eventType, livemode } = envelope.data;
  if (deps.livemode !== undefined && livemode !== undefined && livemode !== deps.livemode) {
    return { outcome: 'wrong_mode', eventId, eventType, livemode };
  }
  const families = familiesFor(eventType);
  if (families.length === 0) {
    return { outcome: 'enqueued', eventId, eventType, receivedAt, families };
  }
  // Queued without personal data (personal-data.ts): what no consumer reads, no queue keeps.
  const queued = queuedEventJson(parsed as StripeEventEnvelope, body);
  const event = { body: queued, eventId, eventType, receivedAt };
  try {
    // Stripe's 2xx waits for every queue that needs the event. If one send fails the
    // whole delivery is retried; a copy already queued elsewhere is a duplicate there,
    // which the consumers acknowledge without effect.
    await Promise.all(families.map((family) => deps.queue.enqueue(event, family)));
  } catch (error) {
    // Whatever the adapter threw, the caller gets one typed error naming the event.
    const known = error instanceof EnqueueFailedError;
    throw new EnqueueFailedError(known ? error.message : 'Could not enqueue the event.', {
      cause: known ? error.cause : error,
      eventId,
      eventType,
    });
  }
  return { outcome: 'enqueued', eventId, eventType, receivedAt, families };
}
