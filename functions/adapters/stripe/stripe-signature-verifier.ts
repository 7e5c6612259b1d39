/**
 * Verifies the Stripe-Signature header with the Stripe SDK's own verifier (HMAC
 * over `${t}.${rawBody}`, constant-time compare, tolerance window) and maps its
 * errors to `InvalidSignatureError`. Uses the SDK's static webhook helpers, so no
 * Stripe client (and no API key) is ever constructed on this path.
 */
import Stripe from 'stripe';
import {
  InvalidSignatureError,
  type SignatureFailure,
  type SignatureVerifier,
  type WebhookSecretProvider,
} from '../../core/intake/ports.ts';

export interface StripeSignatureVerifierOptions {
  /** Maximum signature age in seconds. Default: the SDK's (300 s). */
  toleranceSeconds?: number;
}

const MESSAGES: Record<SignatureFailure, string> = {
  missing_signature: 'Missing Stripe-Signature header.',
  malformed_signature: 'Stripe-Signature header is not in the expected format.',
  invalid_signature: 'Stripe-Signature does not match the payload.',
  expired_signature: 'Stripe-Signature timestamp is outside the tolerance window.',
};

function signatureError(failure: SignatureFailure, stripeError?: unknown): InvalidSignatureError {
  // Stripe's error carries the header and the payload as fields, and loggers print
  // a cause's fields: keep only its message so neither can reach a log line.
  const cause =
    stripeError instanceof Error ? new Error(stripeError.message.split('\n')[0]) : undefined;
  return new InvalidSignatureError(failure, MESSAGES[failure], cause ? { cause } : undefined);
}

// The SDK only distinguishes failures by message; anything unrecognised is a mismatch.
function classify(error: unknown): SignatureFailure {
  const message = error instanceof Error ? error.message : '';
  if (message.startsWith('No stripe-signature header')) return 'missing_signature';
  if (message.startsWith('Timestamp outside the tolerance')) return 'expired_signature';
  if (
    message.startsWith('Unable to extract timestamp') ||
    message.startsWith('No signatures found with expected scheme')
  ) {
    return 'malformed_signature';
  }
  return 'invalid_signature';
}

export class StripeSignatureVerifier implements SignatureVerifier {
  readonly #secrets: WebhookSecretProvider;
  readonly #tolerance: number | undefined;

  constructor(secrets: WebhookSecretProvider, options: StripeSignatureVerifierOptions = {}) {
    this.#secrets = secrets;
    this.#tolerance = options.toleranceSeconds;
  }

  async verify(
    rawBody: Uint8Array,
    header: string | undefined,
    receivedAtMs: number,
  ): Promise<void> {
    if (header === undefined || header.trim() === '') throw signatureError('missing_signature');
    const secret = await this.#secrets.getSecret();
    const failure = await this.#check(rawBody, header, secret, receivedAtMs);
    if (!failure) return;
    // A mismatch with a cached secret may mean the secret was rotated since it was
    // cached: re-read it once before refusing.
    if (failure.failure === 'invalid_signature') {
      const fresh = await this.#secrets.refreshSecret();
      if (fresh !== undefined && fresh !== secret) {
        const retry = await this.#check(rawBody, header, fresh, receivedAtMs);
        if (!retry) return;
        throw retry;
      }
    }
    throw failure;
  }

  async #check(
    rawBody: Uint8Array,
    header: string,
    secret: string,
    receivedAtMs: number,
  ): Promise<InvalidSignatureError | undefined> {
    const signature = Stripe.webhooks.signature;
    if (!signature) throw new Error('The Stripe SDK has no webhook signature helper.');
    try {
      await signature.verifyHeaderAsync(
        rawBody,
        header,
        secret,
        this.#tolerance,
        undefined,
        receivedAtMs,
      );
      return undefined;
    } catch (error) {
      return signatureError(classify(error), error);
    }
  }
}
