/**
 * Production wiring of the Stripe API: the key (Secrets Manager when deployed,
 * STRIPE_SECRET_KEY locally), the base URL (STRIPE_API_URL, Stripe's own when unset)
 * and one call policy per process, so every Stripe call of a warm function shares the
 * breaker. Built on first use and reused while warm.
 */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import * as z from 'zod/mini';
import { configuredSecret, type SecretString } from '../adapters/secrets/secret-string.ts';
import { parseStripeApiUrl, StripeClientSource } from '../adapters/stripe/stripe-client.ts';
import { StripeCustomerLookup } from '../adapters/stripe/stripe-customer-source.ts';
import { StripePenaltyPaymentGateway } from '../adapters/stripe/stripe-penalty-payments.ts';
import { type StripeCallObserver, StripeCallPolicy } from '../adapters/stripe/stripe-resilience.ts';
import { PaymentGatewayUnavailableError } from '../core/penalties/ports.ts';
import { configEnv, lazyEnv, optionalNonBlank } from './env.ts';
import { ENV } from './env-names.ts';
import { lazy } from './lazy.ts';
import { METRIC, STRIPE_CIRCUIT_STATE_VALUE } from './metric-names.ts';
import { logger, metrics } from './powertools.ts';

const stripeEnv = lazyEnv(
  z
    .object({
      [ENV.stripeApiKeySecretArn]: optionalNonBlank(),
      [ENV.stripeSecretKey]: optionalNonBlank(),
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
  return configuredSecret({
    value: config.secretKey,
    secretArn: config.secretArn,
    label: LABEL,
    unavailable,
    variables: { value: ENV.stripeSecretKey, secretArn: ENV.stripeApiKeySecretArn },
  });
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

/** Whether this function was given a Stripe API key (the key itself is read on first use). */
export function stripeConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env[ENV.stripeApiKeySecretArn]?.trim() || env[ENV.stripeSecretKey]?.trim());
}

/** Stripe calls as metrics: count and latency per call, breaker openings, state and refusals. */
export function stripeCallMetrics(metrics: Metrics): StripeCallObserver {
  return {
    call(durationMs) {
      metrics.addMetric(METRIC.stripeCalls, MetricUnit.Count, 1);
      metrics.addMetric(METRIC.stripeCallLatency, MetricUnit.Milliseconds, durationMs);
    },
    circuitRejected() {
      metrics.addMetric(METRIC.stripeCircuitRejected, MetricUnit.Count, 1);
    },
    circuitOpened() {
      metrics.addMetric(METRIC.stripeCircuitOpened, MetricUnit.Count, 1);
      logger.error('Stripe circuit breaker opened: Stripe calls answer 503 until it closes');
    },
    circuitStateChanged(state) {
      metrics.addMetric(
        METRIC.stripeCircuitState,
        MetricUnit.NoUnit,
        STRIPE_CIRCUIT_STATE_VALUE[state],
      );
      if (state === 'closed') logger.info('Stripe circuit breaker closed: Stripe calls flow again');
    },
  };
}

/** One breaker per process: Stripe being down is one fact for every call. */
export const stripeCallPolicy = lazy(() => new StripeCallPolicy({}, stripeCallMetrics(metrics)));

export const stripeCustomerLookupFromEnv = lazy(
  () => new StripeCustomerLookup({ clients: stripeClientsFromEnv(), calls: stripeCallPolicy() }),
);

export const stripePenaltyGatewayFromEnv = lazy(
  () =>
    new StripePenaltyPaymentGateway({ clients: stripeClientsFromEnv(), calls: stripeCallPolicy() }),
);
