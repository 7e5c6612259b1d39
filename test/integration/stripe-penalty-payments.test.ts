/**
 * The Stripe penalty gateway through the real Stripe SDK against the fake Stripe
 * server: what is sent, idempotency, and the call policy (retries on 429/5xx/dropped
 * connections only, the breaker, the overall deadline, key rotation).
 */
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SecretString } from '../../functions/adapters/secrets/secret-string.ts';
import { StaticSecretString } from '../../functions/adapters/secrets/secret-string.ts';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../../functions/adapters/stripe/stripe-client.ts';
import { StripePenaltyPaymentGateway } from '../../functions/adapters/stripe/stripe-penalty-payments.ts';
import {
  StripeCallPolicy,
  type StripeCallPolicyOptions,
} from '../../functions/adapters/stripe/stripe-resilience.ts';
import { settlementIdempotencyKey } from '../../functions/core/penalties/penalty-ids.ts';
import {
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
  type PenaltyPaymentRequest,
} from '../../functions/core/penalties/ports.ts';
import { penaltyIdsFromMetadata } from '../../functions/core/shared/penalty-metadata.ts';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';

let stripe: FakeStripe;

beforeAll(async () => {
  stripe = await startFakeStripe();
});
afterAll(async () => {
  await stripe.close();
});
afterEach(() => {
  stripe.clearFaults();
});

const fastPolicy: StripeCallPolicyOptions = { initialBackoffMs: 5, maxBackoffMs: 20 };

function gateway(options: { policy?: StripeCallPolicyOptions; key?: SecretString } = {}): {
  gateway: StripePenaltyPaymentGateway;
  calls: StripeCallPolicy;
} {
  const calls = new StripeCallPolicy({ ...fastPolicy, ...options.policy });
  const key = options.key ?? new StaticSecretString(stripe.secretKey, 'key', (m) => new Error(m));
  return {
    gateway: new StripePenaltyPaymentGateway({
      clients: new StripeClientSource(key, parseStripeApiUrl(stripe.url)),
      calls,
    }),
    calls,
  };
}

let counter = 0;
function request(overrides: Partial<PenaltyPaymentRequest> = {}): PenaltyPaymentRequest {
  counter += 1;
  const penaltyIds = [`pen_user-${counter}_run_2026-11-30`, `pen_user-${counter}_read_2026-12-01`];
  return {
    userId: `user-${counter}`,
    customerId: null,
    amount: 700,
    currency: 'usd',
    penaltyIds,
    idempotencyKey: settlementIdempotencyKey(penaltyIds, null),
    ...overrides,
  };
}

function requestsFor(key: string) {
  return stripe.requests.filter((r) => r.idempotencyKey === key);
}

describe('creating a penalty PaymentIntent', () => {
  it('sends the amount, purpose, user and penalty ids with the settlement idempotency key', async () => {
    const { gateway: g } = gateway();
    const req = request({ customerId: 'cus_123' });
    const created = await g.createPenaltyPayment(req);

    const intent = stripe.paymentIntents.get(created.paymentIntentId);
    expect(intent).toMatchObject({ amount: 700, currency: 'usd', customer: 'cus_123' });
    expect(intent?.metadata).toMatchObject({ purpose: 'penalty', userId: req.userId });
    expect(penaltyIdsFromMetadata(intent!.metadata)).toEqual(req.penaltyIds);
    expect(created).toEqual({
      paymentIntentId: intent!.id,
      clientSecret: intent!.client_secret,
      amount: 700,
      currency: 'usd',
    });
    expect(requestsFor(req.idempotencyKey)).toHaveLength(1);
  });

  it('returns the same PaymentIntent when the same settlement is asked for twice', async () => {
    const { gateway: g } = gateway();
    const req = request();
    const first = await g.createPenaltyPayment(req);
    const second = await g.createPenaltyPayment(req);
    expect(second.paymentIntentId).toBe(first.paymentIntentId);
    const created = [...stripe.paymentIntents.values()].filter(
      (pi) => pi.metadata.userId === req.userId,
    );
    expect(created).toHaveLength(1);
  });
});

describe('canceling an abandoned settlement', () => {
  it('cancels an open PaymentIntent; settling the same penalties again gets a new one, once', async () => {
    const { gateway: g } = gateway();
    const req = request();
    const abandoned = await g.createPenaltyPayment(req);
    expect(await g.cancelPenaltyPayment(abandoned.paymentIntentId)).toBe('canceled');
    expect(stripe.paymentIntents.get(abandoned.paymentIntentId)?.status).toBe('canceled');
    // Canceled again (a retry): still canceled, not an error.
    expect(await g.cancelPenaltyPayment(abandoned.paymentIntentId)).toBe('canceled');

    // Stripe replays the canceled intent for the same key; the gateway replaces it.
    const fresh = await g.createPenaltyPayment(req);
    expect(fresh.paymentIntentId).not.toBe(abandoned.paymentIntentId);
    expect(stripe.paymentIntents.get(fresh.paymentIntentId)?.status).toBe(
      'requires_payment_method',
    );
    const doubleClick = await g.createPenaltyPayment(req);
    expect(doubleClick.paymentIntentId).toBe(fresh.paymentIntentId);
  });

  it('replaces an intent whose payment failed: the old one canceled (its late payment_failed concerns no new settlement), a new one created, once', async () => {
    const { gateway: g } = gateway();
    const req = request();
    const first = await g.createPenaltyPayment(req);
    stripe.failPaymentIntent(first.paymentIntentId);
    // The failure put the penalties back to unpaid; the user settles them again.
    const retry = await g.createPenaltyPayment(req);
    expect(retry.paymentIntentId).not.toBe(first.paymentIntentId);
    expect(stripe.paymentIntents.get(first.paymentIntentId)?.status).toBe('canceled');
    expect(stripe.paymentIntents.get(retry.paymentIntentId)?.status).toBe(
      'requires_payment_method',
    );
    const doubleClick = await g.createPenaltyPayment(req);
    expect(doubleClick.paymentIntentId).toBe(retry.paymentIntentId);
  });

  it('answers succeeded for a PaymentIntent paid meanwhile, and leaves it paid', async () => {
    const { gateway: g } = gateway();
    const paid = await g.createPenaltyPayment(request());
    stripe.succeedPaymentIntent(paid.paymentIntentId);
    expect(await g.cancelPenaltyPayment(paid.paymentIntentId)).toBe('succeeded');
    expect(stripe.paymentIntents.get(paid.paymentIntentId)?.status).toBe('succeeded');
  });

  it('answers open for a PaymentIntent still processing', async () => {
    const { gateway: g } = gateway();
    const processing = await g.createPenaltyPayment(request());
    stripe.paymentIntents.get(processing.paymentIntentId)!.status = 'processing';
    expect(await g.cancelPenaltyPayment(processing.paymentIntentId)).toBe('open');
  });
});

describe('reading a settlement PaymentIntent again', () => {
  it('hands out its client secret while it can be paid, and says when it is paid or canceled', async () => {
    const { gateway: g } = gateway();
    const created = await g.createPenaltyPayment(request());
    expect(await g.getPenaltyPayment(created.paymentIntentId)).toEqual({
      ...created,
      state: 'open',
    });
    stripe.succeedPaymentIntent(created.paymentIntentId);
    expect(await g.getPenaltyPayment(created.paymentIntentId)).toMatchObject({
      state: 'succeeded',
    });
    const other = await g.createPenaltyPayment(request());
    await g.cancelPenaltyPayment(other.paymentIntentId);
    expect(await g.getPenaltyPayment(other.paymentIntentId)).toMatchObject({ state: 'canceled' });
  });

  it('refuses an unknown PaymentIntent with Stripe code only', async () => {
    const { gateway: g } = gateway();
    await expect(g.getPenaltyPayment('pi_unknown')).rejects.toMatchObject({
      name: 'PaymentRejectedError',
      code: 'resource_missing',
    });
  });
});

describe('the call policy', () => {
  it('retries a 429 and succeeds on the next attempt', async () => {
    const { gateway: g } = gateway();
    stripe.injectFault({ kind: 'status', status: 429 });
    const req = request();
    await expect(g.createPenaltyPayment(req)).resolves.toMatchObject({ amount: 700 });
    expect(requestsFor(req.idempotencyKey).map((r) => r.status)).toEqual([429, 200]);
  });

  it('retries a dropped connection', async () => {
    const { gateway: g } = gateway();
    stripe.injectFault({ kind: 'drop' });
    const req = request();
    await expect(g.createPenaltyPayment(req)).resolves.toMatchObject({ amount: 700 });
    expect(requestsFor(req.idempotencyKey).map((r) => r.status)).toEqual(['drop', 200]);
  });

  it('gives up after 3 attempts of 500s with a 503-shaped error, and Stripe changes nothing', async () => {
    const { gateway: g } = gateway();
    stripe.injectFault({ kind: 'status', status: 500 }, 10);
    const req = request();
    const error = await g.createPenaltyPayment(req).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentGatewayUnavailableError);
    expect((error as Error).message).not.toMatch(/Injected/);
    expect(requestsFor(req.idempotencyKey).map((r) => r.status)).toEqual([500, 500, 500]);
  });

  it("passes Stripe's Retry-After on to the caller when rate limits outlast the retries", async () => {
    const { gateway: g } = gateway();
    stripe.injectFault({ kind: 'status', status: 429, headers: { 'retry-after': '7' } }, 3);
    const error = await g.createPenaltyPayment(request()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentGatewayUnavailableError);
    expect((error as PaymentGatewayUnavailableError).retryAfterSeconds).toBe(7);
  });

  it('does not retry a request Stripe refuses (400), and maps it to its code only', async () => {
    const { gateway: g, calls } = gateway({ policy: { breakerThreshold: 2 } });
    for (let i = 0; i < 3; i += 1) {
      const req = request({ amount: 0 });
      const error = await g.createPenaltyPayment(req).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PaymentRejectedError);
      expect((error as PaymentRejectedError).code).toBe('amount_too_small');
      expect(requestsFor(req.idempotencyKey)).toHaveLength(1);
    }
    const small = request({ amount: 49, currency: 'usd' });
    const tooSmall = await g.createPenaltyPayment(small).catch((e: unknown) => e);
    expect((tooSmall as PaymentRejectedError).code).toBe('amount_too_small');
    // Refusals say nothing about Stripe's health: the breaker stays closed.
    expect(calls.state).toBe('closed');
  });

  it('refuses an idempotency key reused with other parameters', async () => {
    const { gateway: g } = gateway();
    const req = request();
    await g.createPenaltyPayment(req);
    const error = await g.createPenaltyPayment({ ...req, amount: 900 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentRejectedError);
    // Stripe's 400 idempotency_error (its type: it has no code), not the 409
    // idempotency_key_in_use of the same request still in flight (waited out, above).
    expect((error as PaymentRejectedError).cause).toBeInstanceOf(
      Stripe.errors.StripeIdempotencyError,
    );
    expect((error as PaymentRejectedError).code).toBe('idempotency_error');
  });

  it('never retries a 4xx, even one Stripe marks Stripe-Should-Retry: true, nor a 5xx marked false', async () => {
    const { gateway: g } = gateway();
    stripe.injectFault({
      kind: 'status',
      status: 409,
      type: 'invalid_request_error',
      code: 'lock_timeout',
      headers: { 'stripe-should-retry': 'true' },
    });
    // DESIGN §3.5 and §8.4: retries on 429, 5xx and connection errors only.
    const conflicted = request();
    const error = await g.createPenaltyPayment(conflicted).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentRejectedError);
    expect((error as PaymentRejectedError).code).toBe('lock_timeout');
    expect(requestsFor(conflicted.idempotencyKey).map((r) => r.status)).toEqual([409]);

    stripe.injectFault({
      kind: 'status',
      status: 500,
      headers: { 'stripe-should-retry': 'false' },
    });
    const notRetried = request();
    await expect(g.createPenaltyPayment(notRetried)).rejects.toBeInstanceOf(PaymentRejectedError);
    expect(requestsFor(notRetried.idempotencyKey)).toHaveLength(1);
  });

  it('opens the breaker after consecutive failures, answers without calling Stripe, then recovers', async () => {
    const { gateway: g, calls } = gateway({
      policy: { maxAttempts: 1, breakerThreshold: 3, breakerOpenMs: 300 },
    });
    stripe.injectFault({ kind: 'status', status: 503 }, 3);
    for (let i = 0; i < 3; i += 1) {
      await expect(g.createPenaltyPayment(request())).rejects.toBeInstanceOf(
        PaymentGatewayUnavailableError,
      );
    }
    expect(calls.state).toBe('open');

    const refused = request();
    const error = await g.createPenaltyPayment(refused).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentGatewayUnavailableError);
    expect((error as PaymentGatewayUnavailableError).retryAfterSeconds).toBe(1);
    expect(requestsFor(refused.idempotencyKey)).toHaveLength(0);

    await new Promise((resolve) => setTimeout(resolve, 350));
    const trial = request();
    await expect(g.createPenaltyPayment(trial)).resolves.toBeDefined();
    expect(calls.state).toBe('closed');
  });

  it('waits out its own timed-out attempt still running at Stripe (409 idempotency_key_in_use), then gets that PaymentIntent replayed: one created, the breaker untouched', async () => {
    const { gateway: g, calls } = gateway({
      policy: {
        attemptTimeoutMs: 250,
        maxAttempts: 10,
        initialBackoffMs: 40,
        maxBackoffMs: 80,
        // The timed-out attempt counts as one failure; a 409 counted too would open it.
        breakerThreshold: 2,
      },
    });
    // The first create takes 400 ms at Stripe, past the attempt's 250 ms; the attempts
    // after it (latency back to 0) find it still running until it is done.
    stripe.setLatency(400);
    const back = setTimeout(() => stripe.setLatency(0), 100);
    try {
      const req = request();
      const created = await g.createPenaltyPayment(req);
      const statuses = requestsFor(req.idempotencyKey).map((r) => r.status);
      expect(statuses).toContain(409);
      expect(statuses.filter((status) => status !== 409 && status !== 200)).toEqual([]);
      const intents = [...stripe.paymentIntents.values()].filter(
        (pi) => pi.metadata.userId === req.userId,
      );
      expect(intents.map((pi) => pi.id)).toEqual([created.paymentIntentId]);
      expect(calls.state).toBe('closed');
    } finally {
      clearTimeout(back);
      stripe.setLatency(0);
    }
  });

  it('answers a hanging Stripe at the overall deadline, not after three timeouts', async () => {
    const { gateway: g } = gateway({ policy: { deadlineMs: 400, attemptTimeoutMs: 10_000 } });
    stripe.injectFault({ kind: 'hang' }, 5);
    const req = request();
    const started = Date.now();
    const error = await g.createPenaltyPayment(req).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(error).toBeInstanceOf(PaymentGatewayUnavailableError);
    expect(took).toBeGreaterThanOrEqual(380);
    expect(took).toBeLessThan(2_000);
    // The hung request's own timeout was cut to the deadline, so no second attempt started.
    expect(requestsFor(req.idempotencyKey)).toHaveLength(1);
  });
});

describe('the API key', () => {
  it('re-reads a rotated key once after a 401 and succeeds with the new one', async () => {
    let current = 'sk_test_old_key';
    let refreshes = 0;
    const rotating: SecretString = {
      get: async () => current,
      refresh: async () => {
        refreshes += 1;
        current = stripe.secretKey;
        return current;
      },
    };
    const { gateway: g } = gateway({ key: rotating });
    await expect(g.createPenaltyPayment(request())).resolves.toBeDefined();
    expect(refreshes).toBe(1);
  });

  it('a wrong key that does not change is a 503-shaped error, not a rejection', async () => {
    const wrong = new StaticSecretString('sk_test_wrong', 'key', (m) => new Error(m));
    const { gateway: g } = gateway({ key: wrong });
    const error = await g.createPenaltyPayment(request()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentGatewayUnavailableError);
    expect((error as Error).message).toBe('Stripe refused the API key.');
  });
});

describe('STRIPE_API_URL', () => {
  it('accepts https, and http only on a loopback host', () => {
    expect(parseStripeApiUrl(undefined)).toBeUndefined();
    expect(parseStripeApiUrl('https://api.stripe.com')?.hostname).toBe('api.stripe.com');
    expect(parseStripeApiUrl('http://127.0.0.1:12111')?.port).toBe('12111');
    expect(parseStripeApiUrl('http://localhost:12111/')?.hostname).toBe('localhost');
  });

  it.each([
    ['http://stripe.example.com', /https/],
    ['https://api.stripe.com/v1', /no path/],
    ['https://user:pw@api.stripe.com', /credentials/],
    ['not a url', /must be a URL/],
  ])('refuses %s', (value, message) => {
    expect(() => parseStripeApiUrl(value)).toThrow(message);
  });
});
