/**
 * Where the Stripe signing secret comes from: Secrets Manager when deployed (cached
 * by Powertools Parameters so a warm function does not call Secrets Manager per
 * request), or the plain STRIPE_WEBHOOK_SECRET env var in the local runtime and tests.
 * Nothing is fetched or constructed at import time.
 */

import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { defaultSecretsManagerClient } from '../../commons/aws-clients.ts';
import { ENV } from '../../commons/env-names.ts';
import type { WebhookSecretProvider } from '../../core/intake/ports.ts';
import { type Clock, systemClock } from '../../core/shared/clock.ts';

export type { WebhookSecretProvider };

/** The signing secret could not be read (Secrets Manager down, secret missing or empty). Answer 5xx. */
export class WebhookSecretUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WebhookSecretUnavailableError';
  }
}

/** A fixed secret (local runtime, tests). */
export class StaticWebhookSecretProvider implements WebhookSecretProvider {
  readonly #secret: string;

  constructor(secret: string) {
    this.#secret = normalizeSecret(secret, 'the configured secret');
  }

  async getSecret(): Promise<string> {
    return this.#secret;
  }

  async refreshSecret(): Promise<undefined> {
    return undefined;
  }
}

export interface SecretsManagerWebhookSecretProviderOptions {
  /** Secret name or ARN. */
  secretId: string;
  /** Default: the shared client with bounded timeouts and retries. */
  client?: SecretsManagerClient;
  /** How long a fetched secret is reused. Default 300 s. */
  maxAgeSeconds?: number;
  /** Minimum time between forced refreshes. Default 30 s. */
  minRefreshIntervalMs?: number;
  clock?: Clock;
}

/** The secret from Secrets Manager (a plain string SecretString), cached for `maxAgeSeconds`. */
export class SecretsManagerWebhookSecretProvider implements WebhookSecretProvider {
  readonly #secretId: string;
  readonly #maxAge: number;
  readonly #minRefreshIntervalMs: number;
  readonly #clock: Clock;
  readonly #client: SecretsManagerClient | undefined;
  #provider: SecretsProvider | undefined;
  #lastRefreshAt = Number.NEGATIVE_INFINITY;

  constructor(options: SecretsManagerWebhookSecretProviderOptions) {
    this.#secretId = options.secretId;
    this.#client = options.client;
    this.#maxAge = options.maxAgeSeconds ?? 300;
    this.#minRefreshIntervalMs = options.minRefreshIntervalMs ?? 30_000;
    this.#clock = options.clock ?? systemClock;
  }

  async getSecret(): Promise<string> {
    return await this.#fetch(false);
  }

  async refreshSecret(): Promise<string | undefined> {
    const now = this.#clock.now();
    if (now - this.#lastRefreshAt < this.#minRefreshIntervalMs) return undefined;
    this.#lastRefreshAt = now;
    return await this.#fetch(true);
  }

  async #fetch(forceFetch: boolean): Promise<string> {
    this.#provider ??= new SecretsProvider({
      awsSdkV3Client: this.#client ?? defaultSecretsManagerClient(),
    });
    let value: string | Uint8Array | undefined;
    try {
      value = await this.#provider.get(this.#secretId, { maxAge: this.#maxAge, forceFetch });
    } catch (error) {
      throw new WebhookSecretUnavailableError('Could not read the Stripe webhook signing secret.', {
        cause: error,
      });
    }
    if (typeof value !== 'string') {
      throw new WebhookSecretUnavailableError(
        'The Stripe webhook signing secret must be a plain string SecretString.',
      );
    }
    return normalizeSecret(value, 'the Secrets Manager secret');
  }
}

// A trailing newline from a copy-paste silently breaks every signature; trim it, but
// an empty secret would make every request fail with a misleading 400, so it is a 5xx.
function normalizeSecret(value: string, what: string): string {
  const secret = value.trim();
  if (!secret)
    throw new WebhookSecretUnavailableError(
      `The Stripe webhook signing secret (${what}) is empty.`,
    );
  return secret;
}

/**
 * The provider the deployed/local configuration asks for: the plain secret when
 * STRIPE_WEBHOOK_SECRET is set (local only; the stack never sets it), else the
 * secret named by STRIPE_WEBHOOK_SECRET_ARN.
 */
export function webhookSecretProviderFromConfig(config: {
  secret?: string | undefined;
  secretArn?: string | undefined;
  client?: SecretsManagerClient;
}): WebhookSecretProvider {
  if (config.secret) return new StaticWebhookSecretProvider(config.secret);
  if (config.secretArn) {
    return new SecretsManagerWebhookSecretProvider({
      secretId: config.secretArn,
      ...(config.client ? { client: config.client } : {}),
    });
  }
  throw new WebhookSecretUnavailableError(
    `Neither ${ENV.webhookSecret} nor ${ENV.webhookSecretArn} is set.`,
  );
}
