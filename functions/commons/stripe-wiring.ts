/**
 * Production wiring of the Stripe API: the key (Secrets Manager when deployed,
 * STRIPE_SECRET_KEY locally), the base URL (STRIPE_API_URL, Stripe's own when unset)
 * and one call policy per process, so every Stripe call of a warm function shares the
 * breaker. Built on first use and reused while warm.
 */
import * as z from 'zod/mini';
import {
  type SecretString,
  SecretsManagerSecretString,
  StaticSecretString,
} from '../adapters/secrets/secret-string.ts';
import { parseStripeApiUrl, StripeClientSource } from '../adapters/stripe/stripe-client.ts';
import { StripePenaltyPaymentGateway } from '../adapters/stripe/stripe-penalty-payments.ts';
import { StripeCallPolicy } from '../adapters/stripe/stripe-resilience.ts';
import { PaymentGatewayUnavailableError } from '../core/penalties/ports.ts';
import { configEnv, lazyEnv } from './env.ts';
import { ENV } from './env-names.ts';
import { lazy } from './lazy.ts';

const nonBlank = () => z.optional(z.string().check(z.trim(), z.minLength(1)));

const stripeEnv = lazyEnv(
  z
    .object({
      [ENV.stripeApiKeySecretArn]: nonBlank(),
      [ENV.stripeSecretKey]: nonBlank(),
      [ENV.stripeApiUrl]: configEnv(parseStripeApiUrl),
    })
    .check(
      z.refine((env) => Boolean(env[ENV.stripeApiKeySecretArn] || env[ENV.stripeSecretKey]), {
        message: `set ${ENV.stripeApiKeySecretArn} (deployed) or ${ENV.stripeSecretKey} (local only)`,
        path: [ENV.stripeApiKeySecretArn],
        when: () => true,
      }),
    ),
);

const LABEL = 'the Stripe API key';
// The key missing or unreadable is an outage of the dependency to callers (503), never a 500 with details.
const unavailable = (message: string, options?: ErrorOptions) =>
  new PaymentGatewayUnavailableError(message, options);

/** The plain key when STRIPE_SECRET_KEY is set (local only; the stack never sets it), else the secret. */
export function stripeApiKeyFromConfig(config: {
  secretKey?: string | undefined;
  secretArn?: string | undefined;
}): SecretString {
  if (config.secretKey) return new StaticSecretString(config.secretKey, LABEL, unavailable);
  if (config.secretArn) {
    return new SecretsManagerSecretString({
      secretId: config.secretArn,
      label: LABEL,
      unavailable,
    });
  }
  throw unavailable(`Neither ${ENV.stripeSecretKey} nor ${ENV.stripeApiKeySecretArn} is set.`);
}

export const stripeClientsFromEnv = lazy(() => {
  const env = stripeEnv();
  return new StripeClientSource(
    stripeApiKeyFromConfig({
      secretKey: env[ENV.stripeSecretKey],
      secretArn: env[ENV.stripeApiKeySecretArn],
    }),
    env[ENV.stripeApiUrl],
  );
});

/** One breaker per process: Stripe being down is one fact for every call. */
export const stripeCallPolicy = lazy(() => new StripeCallPolicy());

export const stripePenaltyGatewayFromEnv = lazy(
  () =>
    new StripePenaltyPaymentGateway({ clients: stripeClientsFromEnv(), calls: stripeCallPolicy() }),
);
