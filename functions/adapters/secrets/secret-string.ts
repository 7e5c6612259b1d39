/**
 * One secret string (a signing secret, an API key): Secrets Manager when deployed,
 * cached by Powertools Parameters so a warm function does not call Secrets Manager per
 * request, or a fixed value in the local runtime and tests. Nothing is fetched or
 * constructed at import time. What to throw when the secret cannot be had is the
 * caller's (`unavailable`), so each use keeps its own error type.
 */
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { defaultSecretsManagerClient } from '../../commons/aws-clients.ts';
import { type Clock, systemClock } from '../../core/shared/clock.ts';

export interface SecretString {
  get(): Promise<string>;
  /** Re-reads the secret (after a rotation); undefined when called again too soon or nothing to refresh. */
  refresh(): Promise<string | undefined>;
}

export type UnavailableSecretError = (message: string, options?: ErrorOptions) => Error;

/** A fixed value (local runtime, tests). */
export class StaticSecretString implements SecretString {
  readonly #value: string;

  constructor(value: string, label: string, unavailable: UnavailableSecretError) {
    this.#value = normalizeSecret(value, `${label} (the configured value)`, unavailable);
  }

  async get(): Promise<string> {
    return this.#value;
  }

  async refresh(): Promise<undefined> {
    return undefined;
  }
}

export interface SecretsManagerSecretStringOptions {
  /** Secret name or ARN. */
  secretId: string;
  /** What the secret is, for error messages, e.g. "the Stripe API key". */
  label: string;
  unavailable: UnavailableSecretError;
  /** Default: the shared client with bounded timeouts and retries. */
  client?: SecretsManagerClient;
  /** How long a fetched value is reused. Default 300 s. */
  maxAgeSeconds?: number;
  /** Minimum time between forced refreshes. Default 30 s. */
  minRefreshIntervalMs?: number;
  clock?: Clock;
}

/** The secret from Secrets Manager (a plain string SecretString), cached for `maxAgeSeconds`. */
export class SecretsManagerSecretString implements SecretString {
  readonly #options: SecretsManagerSecretStringOptions;
  readonly #clock: Clock;
  #provider: SecretsProvider | undefined;
  #lastRefreshAt = Number.NEGATIVE_INFINITY;

  constructor(options: SecretsManagerSecretStringOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  async get(): Promise<string> {
    return await this.#fetch(false);
  }

  async refresh(): Promise<string | undefined> {
    const now = this.#clock.now();
    if (now - this.#lastRefreshAt < (this.#options.minRefreshIntervalMs ?? 30_000)) {
      return undefined;
    }
    this.#lastRefreshAt = now;
    return await this.#fetch(true);
  }

  async #fetch(forceFetch: boolean): Promise<string> {
    const { secretId, label, unavailable } = this.#options;
    this.#provider ??= new SecretsProvider({
      awsSdkV3Client: this.#options.client ?? defaultSecretsManagerClient(),
    });
    let value: string | Uint8Array | undefined;
    try {
      value = await this.#provider.get(secretId, {
        maxAge: this.#options.maxAgeSeconds ?? 300,
        forceFetch,
      });
    } catch (error) {
      throw unavailable(`Could not read ${label}.`, { cause: error });
    }
    if (typeof value !== 'string') {
      throw unavailable(`${capitalize(label)} must be a plain string SecretString.`);
    }
    return normalizeSecret(value, `${label} (the Secrets Manager secret)`, unavailable);
  }
}

/**
 * A secret as a function is configured with it: the plain value when set (the local
 * runtime and tests; a stack never sets it), else the Secrets Manager secret by ARN.
 * Neither is `unavailable`, naming both variables.
 */
export function configuredSecret(config: {
  value?: string | undefined;
  secretArn?: string | undefined;
  label: string;
  unavailable: UnavailableSecretError;
  /** The two variables, for the message when neither is set. */
  variables: { value: string; secretArn: string };
}): SecretString {
  const { label, unavailable } = config;
  if (config.value) return new StaticSecretString(config.value, label, unavailable);
  if (config.secretArn) {
    return new SecretsManagerSecretString({ secretId: config.secretArn, label, unavailable });
  }
  throw unavailable(`Neither ${config.variables.value} nor ${config.variables.secretArn} is set.`);
}

// A trailing newline from a copy-paste silently breaks every use; trim it. An empty
// value would fail every request with a misleading error, so it is "unavailable".
function normalizeSecret(value: string, what: string, unavailable: UnavailableSecretError): string {
  const secret = value.trim();
  if (!secret) throw unavailable(`${capitalize(what)} is empty.`);
  return secret;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
