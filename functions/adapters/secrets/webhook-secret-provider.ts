/**
 * Where the Stripe signing secret comes from: Secrets Manager when deployed (cached, see
 * secret-string.ts), or the plain STRIPE_WEBHOOK_SECRET env var in the local runtime and
 * tests. Nothing is fetched or constructed at import time.
 */

import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ENV } from '../../commons/env-names.ts';
import type { WebhookSecretProvider } from '../../core/intake/ports.ts';
import type { Clock } from '../../core/shared/clock.ts';
import {
  type SecretString,
  SecretsManagerSecretString,
  StaticSecretString,
} from './secret-string.ts';

export type { WebhookSecretProvider };

/** The signing secret could not be read (Secrets Manager down, secret missing or empty). Answer 5xx. */
export class WebhookSecretUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WebhookSecretUnavailableError';
  }
}

const LABEL = 'the Stripe webhook signing secret';
const unavailable = (message: string, options?: ErrorOptions) =>
  new WebhookSecretUnavailableError(message, options);

class SecretStringWebhookProvider implements WebhookSecretProvider {
  readonly #source: SecretString;

  constructor(source: SecretString) {
    this.#source = source;
  }

  async getSecret(): Promise<string> {
    return await this.#source.get();
  }

  async refreshSecret(): Promise<string | undefined> {
    return await this.#source.refresh();
  }
}

/** A fixed secret (local runtime, tests). */
export class StaticWebhookSecretProvider extends SecretStringWebhookProvider {
  constructor(secret: string) {
    super(new StaticSecretString(secret, LABEL, unavailable));
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
export class SecretsManagerWebhookSecretProvider extends SecretStringWebhookProvider {
  constructor(options: SecretsManagerWebhookSecretProviderOptions) {
    super(new SecretsManagerSecretString({ ...options, label: LABEL, unavailable }));
  }
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
