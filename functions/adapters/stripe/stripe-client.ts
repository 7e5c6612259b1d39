/**
 * The Stripe API client the suite calls Stripe with: the SDK's own retries are off
 * (stripe-resilience.ts owns retries, backoff and the breaker, so attempts are counted
 * in one place), each request times out after 10 s, and the base URL comes from
 * STRIPE_API_URL (the fake Stripe locally and in tests; Stripe's own when unset).
 * The API key is read once (Secrets Manager deployed, STRIPE_SECRET_KEY locally) and
 * re-read once when Stripe says it is no longer valid (a rotated key).
 */
import Stripe from 'stripe';
import type { SecretString } from '../secrets/secret-string.ts';

/** Longest a single Stripe request may take (DESIGN §8.4). */
export const STRIPE_REQUEST_TIMEOUT_MS = 10_000;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * STRIPE_API_URL: an https base URL with no path, query or credentials; plain http only
 * for a loopback host (the fake Stripe), so a typo cannot send the key in clear text.
 */
export function parseStripeApiUrl(value: string | undefined): URL | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new Error(`must be a URL such as https://api.stripe.com, got ${JSON.stringify(value)}`);
  }
  if (
    url.protocol !== 'https:' &&
    !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))
  ) {
    throw new Error('must be https (plain http only for localhost)');
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username || url.password) {
    throw new Error('must be a base URL with no path, query or credentials');
  }
  return url;
}

/** A Stripe SDK client for `apiKey`, aimed at `apiUrl` when given. */
export function createStripeClient(apiKey: string, apiUrl?: URL): Stripe {
  const protocol = apiUrl?.protocol === 'http:' ? 'http' : 'https';
  return new Stripe(apiKey, {
    maxNetworkRetries: 0,
    timeout: STRIPE_REQUEST_TIMEOUT_MS,
    telemetry: false,
    appInfo: { name: 'billing-suite' },
    ...(apiUrl
      ? {
          host: apiUrl.hostname.replace(/^\[|\]$/g, ''),
          port: apiUrl.port || (protocol === 'http' ? 80 : 443),
          protocol,
        }
      : {}),
  });
}

/** Builds the client on first use from the key, and rebuilds it once the key was re-read. */
export class StripeClientSource {
  readonly #apiKey: SecretString;
  readonly #apiUrl: URL | undefined;
  #client: { key: string; stripe: Stripe } | undefined;

  constructor(apiKey: SecretString, apiUrl?: URL) {
    this.#apiKey = apiKey;
    this.#apiUrl = apiUrl;
  }

  async get(): Promise<Stripe> {
    const key = await this.#apiKey.get();
    if (this.#client?.key !== key) {
      this.#client = { key, stripe: createStripeClient(key, this.#apiUrl) };
    }
    return this.#client.stripe;
  }

  /** After a 401: re-reads the key; true when a different key is now in use. */
  async refresh(): Promise<boolean> {
    const fresh = await this.#apiKey.refresh();
    if (fresh === undefined || fresh === this.#client?.key) return false;
    this.#client = { key: fresh, stripe: createStripeClient(fresh, this.#apiUrl) };
    return true;
  }
}
