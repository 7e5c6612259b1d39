/**
 * The Stripe call policy on its own, with Stripe's errors built in memory: what is
 * retried (429, 5xx, connection errors only, never another 4xx whatever
 * Stripe-Should-Retry says), what the breaker counts, and what it reports on each of
 * its transitions.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import Stripe from 'stripe';
import { describe, expect, it, vi } from 'vitest';
import {
  isTransientStripeError,
  type StripeCallObserver,
  StripeCallPolicy,
  type StripeCallPolicyOptions,
  StripeUnavailableError,
  withStripeDeadline,
} from '../../functions/adapters/stripe/stripe-resilience.ts';
import { METRIC } from '../../functions/commons/metric-names.ts';
import { stripeCallMetrics } from '../../functions/commons/stripe-wiring.ts';

type Raw = ConstructorParameters<typeof Stripe.errors.StripeError>[0];

const conflict = (headers: Record<string, string> = {}) =>
  new Stripe.errors.StripeInvalidRequestError({
    statusCode: 409,
    type: 'invalid_request_error',
    code: 'lock_timeout',
    message: 'This object cannot be accessed right now.',
    headers,
  } as Raw);
const rateLimited = (headers: Record<string, string> = {}) =>
  new Stripe.errors.StripeRateLimitError({
    statusCode: 429,
    type: 'invalid_request_error',
    code: 'rate_limit',
    message: 'Too many requests.',
    headers,
  } as Raw);
const serverError = (status = 500, headers: Record<string, string> = {}) =>
  new Stripe.errors.StripeAPIError({
    statusCode: status,
    type: 'api_error',
    message: 'Something went wrong on our end.',
    headers,
  } as Raw);
const badRequest = () =>
  new Stripe.errors.StripeInvalidRequestError({
    statusCode: 400,
    type: 'invalid_request_error',
    code: 'parameter_invalid_integer',
    message: 'Invalid integer.',
  } as Raw);
const dropped = () =>
  new Stripe.errors.StripeConnectionError({
    type: 'api_error',
    message: 'An error occurred with our connection to Stripe.',
  } as Raw);

const SHOULD_RETRY = { 'stripe-should-retry': 'true' };
const SHOULD_NOT_RETRY = { 'stripe-should-retry': 'false' };

/** What the observer heard, in order. */
function recorder() {
  const events: string[] = [];
  const observer: StripeCallObserver = {
    call: (_, outcome) => events.push(`call:${outcome}`),
    circuitRejected: () => events.push('rejected'),
    circuitOpened: () => events.push('opened'),
    circuitStateChanged: (state) => events.push(`state:${state}`),
  };
  return { events, observer };
}

/** A policy with no real backoff, and a Stripe that answers with `script` in order (then 'ok'). */
function setup(options: StripeCallPolicyOptions = {}, observer?: StripeCallObserver) {
  const policy = new StripeCallPolicy(
    { initialBackoffMs: 1, maxBackoffMs: 2, ...options },
    observer,
  );
  const script: Error[] = [];
  let requests = 0;
  const run = () =>
    policy.run(async () => {
      requests += 1;
      const next = script.shift();
      if (next) throw next;
      return 'ok';
    });
  return {
    policy,
    run,
    /** Queues errors for the next requests. */
    fail: (...errors: Error[]) => script.push(...errors),
    /** Requests made since the last call. */
    requests: () => {
      const made = requests;
      requests = 0;
      return made;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('isTransientStripeError', () => {
  it.each([
    ['a 429', true, rateLimited()],
    ['a 500', true, serverError(500)],
    ['a 503', true, serverError(503)],
    ['a dropped connection', true, dropped()],
    ['a 429 marked Stripe-Should-Retry: true', true, rateLimited(SHOULD_RETRY)],
    ['a 409 lock_timeout marked Stripe-Should-Retry: true', false, conflict(SHOULD_RETRY)],
    ['a 409 lock_timeout', false, conflict()],
    ['a 400', false, badRequest()],
    ['a 500 marked Stripe-Should-Retry: false', false, serverError(500, SHOULD_NOT_RETRY)],
    ['a 429 marked Stripe-Should-Retry: false', false, rateLimited(SHOULD_NOT_RETRY)],
    ['an error that is not Stripe’s', false, new Error('boom')],
  ])('%s: transient %s', (_, transient, error) => {
    expect(isTransientStripeError(error)).toBe(transient);
  });
});

describe('retries', () => {
  it('never retries a 409 lock_timeout, even marked Stripe-Should-Retry: true', async () => {
    const stripe = setup();
    const error = conflict(SHOULD_RETRY);
    stripe.fail(error);
    // Handed back as Stripe's refusal (the caller maps it to its code), not as an outage.
    await expect(stripe.run()).rejects.toBe(error);
    expect(stripe.requests()).toBe(1);
  });

  it('retries a 429 and a 500, and a dropped connection', async () => {
    const stripe = setup();
    stripe.fail(rateLimited());
    await expect(stripe.run()).resolves.toBe('ok');
    expect(stripe.requests()).toBe(2);

    stripe.fail(serverError(500), serverError(502));
    await expect(stripe.run()).resolves.toBe('ok');
    expect(stripe.requests()).toBe(3);

    stripe.fail(dropped());
    await expect(stripe.run()).resolves.toBe('ok');
    expect(stripe.requests()).toBe(2);
  });

  it('gives up after 3 attempts of 500s, as Stripe unavailable', async () => {
    const stripe = setup({ breakerThreshold: 10 });
    stripe.fail(serverError(), serverError(), serverError(), serverError());
    const error = await stripe.run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StripeUnavailableError);
    expect((error as StripeUnavailableError).reason).toBe('retries-exhausted');
    expect(stripe.requests()).toBe(3);
  });

  it('honours Stripe-Should-Retry: false on a 5xx or a 429 (one request)', async () => {
    const stripe = setup();
    for (const error of [serverError(500, SHOULD_NOT_RETRY), rateLimited(SHOULD_NOT_RETRY)]) {
      stripe.fail(error);
      await expect(stripe.run()).rejects.toBe(error);
      expect(stripe.requests()).toBe(1);
    }
  });
});

describe('the breaker', () => {
  it('does not count a 409 marked Stripe-Should-Retry: true as a failure', async () => {
    const { events, observer } = recorder();
    const stripe = setup({ maxAttempts: 1, breakerThreshold: 2 }, observer);
    // One failure that counts, then conflicts that would open it if they counted.
    stripe.fail(serverError(503));
    await expect(stripe.run()).rejects.toBeInstanceOf(StripeUnavailableError);
    for (let i = 0; i < 4; i += 1) {
      stripe.fail(conflict(SHOULD_RETRY));
      await expect(stripe.run()).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    }
    expect(stripe.policy.state).toBe('closed');
    expect(events).not.toContain('opened');
    expect(stripe.requests()).toBe(5);
    // Whereas a second counted failure does open it.
    stripe.fail(serverError(503));
    await expect(stripe.run()).rejects.toBeInstanceOf(StripeUnavailableError);
    expect(stripe.policy.state).toBe('open');
  });

  it('reports every transition: closed → open → half-open → closed, and a failed trial', async () => {
    const { events, observer } = recorder();
    const stripe = setup({ maxAttempts: 1, breakerThreshold: 2, breakerOpenMs: 40 }, observer);

    stripe.fail(serverError(), serverError());
    await expect(stripe.run()).rejects.toBeInstanceOf(StripeUnavailableError);
    expect(events).toEqual(['call:unavailable']);
    await expect(stripe.run()).rejects.toBeInstanceOf(StripeUnavailableError);
    expect(stripe.policy.state).toBe('open');
    expect(events.splice(0)).toEqual([
      'call:unavailable',
      'opened',
      'state:open',
      'call:unavailable',
    ]);

    // Open: refused at once, no request, no transition.
    const refused = await stripe.run().catch((e: unknown) => e);
    expect((refused as StripeUnavailableError).reason).toBe('breaker-open');
    expect(stripe.requests()).toBe(2);
    expect(events.splice(0)).toEqual(['rejected']);

    // After breakerOpenMs the next call is the trial: half-open, then closed on success.
    await sleep(60);
    await expect(stripe.run()).resolves.toBe('ok');
    expect(stripe.policy.state).toBe('closed');
    expect(events.splice(0)).toEqual(['state:half-open', 'state:closed', 'call:ok']);

    // A trial that fails opens it again (and is reported as an opening).
    stripe.fail(serverError(), serverError(), serverError());
    await stripe.run().catch(() => undefined);
    await stripe.run().catch(() => undefined);
    await sleep(60);
    await expect(stripe.run()).rejects.toBeInstanceOf(StripeUnavailableError);
    expect(stripe.policy.state).toBe('open');
    expect(events.splice(0)).toEqual([
      'call:unavailable',
      'opened',
      'state:open',
      'call:unavailable',
      'state:half-open',
      'opened',
      'state:open',
      'call:unavailable',
    ]);
  });

  it('reports the call whose failures open the breaker as a failed call, not as a rejection', async () => {
    const { events, observer } = recorder();
    // 3 attempts, opens on the 2nd failure: the 3rd attempt is refused by the breaker.
    const stripe = setup({ breakerThreshold: 2 }, observer);
    stripe.fail(serverError(), serverError(), serverError());
    await expect(stripe.run()).rejects.toBeInstanceOf(StripeUnavailableError);
    expect(stripe.requests()).toBe(2);
    expect(events.splice(0)).toEqual(['opened', 'state:open', 'call:unavailable']);
    // The next call is refused by the open breaker: that one is a rejection.
    await expect(stripe.run()).rejects.toMatchObject({ reason: 'breaker-open' });
    expect(stripe.requests()).toBe(0);
    expect(events).toEqual(['rejected']);
  });

  it('reports to an observer given late (the process-wide policy)', async () => {
    const { events, observer } = recorder();
    const stripe = setup({ maxAttempts: 1, breakerThreshold: 1 });
    stripe.policy.observe(observer);
    stripe.fail(serverError());
    await stripe.run().catch(() => undefined);
    expect(events).toEqual(['opened', 'state:open', 'call:unavailable']);
  });
});

describe('the breaker as metrics (stripeCallMetrics)', () => {
  it('publishes StripeCircuitState on each transition: 2 open, 1 half-open, 0 closed', async () => {
    const metrics = new Metrics({ namespace: 'Test', serviceName: 'stripe-test' });
    const added: Array<[string, number]> = [];
    vi.spyOn(metrics, 'addMetric').mockImplementation((name, _unit, value) => {
      added.push([name, value]);
      return metrics;
    });
    const stripe = setup(
      { maxAttempts: 1, breakerThreshold: 1, breakerOpenMs: 30 },
      stripeCallMetrics(metrics),
    );
    const breakerMetrics = () =>
      added.splice(0).filter(([name]) => name.startsWith('StripeCircuit'));

    stripe.fail(serverError());
    await stripe.run().catch(() => undefined);
    expect(breakerMetrics()).toEqual([
      [METRIC.stripeCircuitOpened, 1],
      [METRIC.stripeCircuitState, 2],
    ]);

    await stripe.run().catch(() => undefined);
    expect(breakerMetrics()).toEqual([[METRIC.stripeCircuitRejected, 1]]);

    await sleep(50);
    await expect(stripe.run()).resolves.toBe('ok');
    expect(breakerMetrics()).toEqual([
      [METRIC.stripeCircuitState, 1],
      [METRIC.stripeCircuitState, 0],
    ]);
  });
});

describe('a request deadline over several calls', () => {
  /** A request that answers after `ms`, or fails when its timeout passes first. */
  const slowRequest = (ms: number) => (attempt: { timeoutMs: number }) =>
    new Promise<string>((resolve, reject) => {
      if (attempt.timeoutMs < ms) {
        setTimeout(() => reject(dropped()), attempt.timeoutMs);
      } else setTimeout(() => resolve('ok'), ms);
    });

  it('cuts the second call to what the first left, and refuses a third without a request', async () => {
    const policy = new StripeCallPolicy({
      initialBackoffMs: 1,
      maxBackoffMs: 2,
      breakerThreshold: 10,
    });
    let requests = 0;
    const started = Date.now();
    const outcome = await withStripeDeadline(300, async () => {
      await policy.run((attempt) => {
        requests += 1;
        return slowRequest(200)(attempt);
      });
      const second = await policy
        .run((attempt) => {
          requests += 1;
          return slowRequest(5_000)(attempt);
        })
        .catch((error: unknown) => error);
      const requestsBeforeThird = requests;
      const third = await policy
        .run(async () => {
          requests += 1;
          return 'ok';
        })
        .catch((error: unknown) => error);
      return { second, third, thirdRequests: requests - requestsBeforeThird };
    });
    const elapsed = Date.now() - started;
    // Without the request deadline the second call alone could take the policy's 10 s.
    expect(elapsed).toBeLessThan(1_000);
    expect(outcome.second).toBeInstanceOf(StripeUnavailableError);
    expect((outcome.second as StripeUnavailableError).reason).toBe('deadline');
    expect(outcome.third).toMatchObject({ reason: 'deadline', retryAfterSeconds: 5 });
    expect(outcome.thirdRequests).toBe(0);
  });

  it('keeps the earlier of two nested deadlines, and none outside them', async () => {
    const policy = new StripeCallPolicy({ initialBackoffMs: 1, maxBackoffMs: 2 });
    const inner = await withStripeDeadline(50, () =>
      withStripeDeadline(5_000, () =>
        policy.run(slowRequest(300)).catch((error: unknown) => error),
      ),
    );
    expect(inner).toMatchObject({ reason: 'deadline' });
    await expect(policy.run(slowRequest(300))).resolves.toBe('ok');
  });
});
