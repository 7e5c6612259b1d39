/**
 * Ports of the intake context: how a webhook delivery is verified and handed to the
 * event families' queues. Adapters implement them (stripe/, secrets/, sqs/, memory/).
 */
import type { EventFamilyName } from '../shared/event-families.ts';

/** The queue message for one verified event (the ingress → consumer contract). */
export interface VerifiedStripeEvent {
  /** The event JSON as verified, without personal data (core/shared/personal-data.ts). */
  body: string;
  eventId: string;
  eventType: string;
  /** Epoch ms at which the signature was verified. */
  receivedAt: number;
}

export type SignatureFailure =
  | 'missing_signature'
  | 'malformed_signature'
  | 'invalid_signature'
  | 'expired_signature';

/** The signature does not prove the body came from Stripe recently. Answer 400. */
export class InvalidSignatureError extends Error {
  readonly failure: SignatureFailure;

  constructor(failure: SignatureFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidSignatureError';
    this.failure = failure;
  }
}

/** The queue did not accept the event; nothing was acknowledged. Answer 5xx so Stripe retries. */
export class EnqueueFailedError extends Error {
  /** Set once the event was verified, so the failure can be correlated. */
  readonly eventId: string | undefined;
  readonly eventType: string | undefined;

  constructor(message: string, options?: ErrorOptions & { eventId?: string; eventType?: string }) {
    super(message, options);
    this.name = 'EnqueueFailedError';
    this.eventId = options?.eventId;
    this.eventType = options?.eventType;
  }
}

/** Checks a delivery's signature. Resolves when valid; otherwise throws `InvalidSignatureError`. */
export interface SignatureVerifier {
  /** `receivedAtMs` is "now" for the tolerance window. */
  verify(
    rawBody: Uint8Array,
    signatureHeader: string | undefined,
    receivedAtMs: number,
  ): Promise<void>;
}

/**
 * Durably hands a verified event to one family's consumer. Throws `EnqueueFailedError`
 * when it could not.
 */
export interface EventQueue {
  enqueue(event: VerifiedStripeEvent, family: EventFamilyName): Promise<void>;
}

/** Where the Stripe signing secret comes from (Secrets Manager deployed, env locally). */
export interface WebhookSecretProvider {
  /** The current signing secret (possibly cached). */
  getSecret(): Promise<string>;
  /**
   * Re-reads the secret past the cache, for when a signature does not match because
   * the secret was rotated. Returns undefined when the source cannot change or a
   * refresh happened too recently (so bad signatures cannot hammer Secrets Manager).
   */
  refreshSecret(): Promise<string | undefined>;
}
