/**
 * One Stripe call as every adapter makes it: the client from the key source, the call
 * policy (timeout, retries, breaker, deadline), a rotated key re-read once on a 401,
 * and Stripe's errors turned into the caller's domain errors. Only Stripe's error code
 * ever leaves here, never its message.
 */
import Stripe from 'stripe';
import type { StripeClientSource } from './stripe-client.ts';
import { type StripeCallPolicy, StripeUnavailableError } from './stripe-resilience.ts';

export interface StripeErrorMapping {
  /** Stripe could not be used: down, breaker open, key refused or lacking permission. */
  unavailable(
    message: string,
    options: ErrorOptions & {
      retryAfterSeconds?: number;
      /** The breaker is open: calls are paused, a known (alarmed) state, not a new failure. */
      paused?: boolean;
    },
  ): Error;
  /** Stripe refused the request itself (a 4xx other than 401/403/429). */
  rejected(code: string, error: InstanceType<typeof Stripe.errors.StripeError>): Error;
}

export type StripeRequest<T> = (stripe: Stripe, timeoutMs: number) => Promise<T>;

export class StripeCaller {
  readonly #clients: StripeClientSource;
  readonly #policy: StripeCallPolicy;
  readonly #errors: StripeErrorMapping;

  constructor(clients: StripeClientSource, policy: StripeCallPolicy, errors: StripeErrorMapping) {
    this.#clients = clients;
    this.#policy = policy;
    this.#errors = errors;
  }

  call<T>(request: StripeRequest<T>): Promise<T> {
    return this.#call(request, true);
  }

  async #call<T>(request: StripeRequest<T>, mayRefreshKey: boolean): Promise<T> {
    let stripe: Stripe;
    try {
      stripe = await this.#clients.get();
    } catch (error) {
      throw this.#errors.unavailable('The Stripe API key could not be read.', { cause: error });
    }
    try {
      return await this.#policy.run(({ timeoutMs }) => request(stripe, timeoutMs));
    } catch (error) {
      if (error instanceof StripeUnavailableError) {
        throw this.#errors.unavailable(error.message, {
          cause: error,
          retryAfterSeconds: error.retryAfterSeconds,
          paused: error.reason === 'breaker-open',
        });
      }
      if (error instanceof Stripe.errors.StripeAuthenticationError) {
        // A rotated key: read it again once; a key that is wrong is the operators' to fix.
        if (mayRefreshKey && (await this.#clients.refresh().catch(() => false))) {
          return await this.#call(request, false);
        }
        throw this.#errors.unavailable('Stripe refused the API key.', { cause: error });
      }
      if (error instanceof Stripe.errors.StripePermissionError) {
        throw this.#errors.unavailable('The Stripe API key lacks a permission this call needs.', {
          cause: error,
        });
      }
      if (error instanceof Stripe.errors.StripeError) {
        // `type` is the SDK's class name; `rawType` is Stripe's (e.g. idempotency_error).
        throw this.#errors.rejected(error.code ?? error.rawType ?? 'stripe_error', error);
      }
      throw error;
    }
  }
}
