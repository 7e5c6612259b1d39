/**
 * The fake Stripe (local/fake-stripe.ts) as the real Stripe SDK sees it, where it must
 * behave as Stripe does for the suite's tests to mean anything: idempotency keys
 * (replay, another request's parameters, a request still in flight, nothing saved for a
 * validation failure or an injected fault) and the event a canceled PaymentIntent sends.
 */
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';

let fake: FakeStripe;

beforeAll(async () => {
  fake = await startFakeStripe();
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.clearFaults();
  fake.setLatency(0);
});

/** The SDK aimed at the fake, its own retries off unless asked for. */
function sdk(options: { maxNetworkRetries?: number; timeout?: number } = {}): Stripe {
  const url = new URL(fake.url);
  return new Stripe(fake.secretKey, {
    host: url.hostname,
    port: url.port,
    protocol: 'http',
    telemetry: false,
    maxNetworkRetries: options.maxNetworkRetries ?? 0,
    ...(options.timeout ? { timeout: options.timeout } : {}),
  });
}

let counter = 0;
function uniqueKey(): string {
  counter += 1;
  return `fake-stripe-test-${Date.now().toString(36)}-${counter}`;
}

function params(overrides: Partial<Stripe.PaymentIntentCreateParams> = {}) {
  return {
    amount: 700,
    currency: 'usd',
    metadata: { purpose: 'penalty' },
    ...overrides,
  } satisfies Stripe.PaymentIntentCreateParams;
}

function statusesFor(key: string) {
  return fake.requests.filter((r) => r.idempotencyKey === key).map((r) => r.status);
}

function replayed(response: { lastResponse: { headers: Record<string, string> } }) {
  return response.lastResponse.headers['idempotent-replayed'] === 'true';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idempotency keys', () => {
  it('replays the first answer for the same key and parameters', async () => {
    const stripe = sdk();
    const key = uniqueKey();
    const first = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    const again = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    expect(replayed(first)).toBe(false);
    expect(replayed(again)).toBe(true);
    expect(again.id).toBe(first.id);
    expect(statusesFor(key)).toEqual([200, 200]);
  });

  it('refuses the same key with other parameters: 400 idempotency_error, a StripeIdempotencyError', async () => {
    const stripe = sdk();
    const key = uniqueKey();
    const first = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    const error = await stripe.paymentIntents
      .create(params({ amount: 900 }), { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(error).toMatchObject({ statusCode: 400, rawType: 'idempotency_error', code: undefined });
    expect((error as Error).message).toBe(
      `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
    );
    // Another endpoint with the key is other parameters too.
    await expect(
      stripe.paymentIntents.cancel(first.id, {}, { idempotencyKey: key }),
    ).rejects.toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(statusesFor(key)).toEqual([200, 400, 400]);
  });

  it('answers 409 idempotency_key_in_use while the first request with the key still runs, then replays it', async () => {
    const stripe = sdk();
    const key = uniqueKey();
    fake.setLatency(300);
    const first = stripe.paymentIntents.create(params(), { idempotencyKey: key });
    await sleep(50);
    const [concurrent, otherParams] = await Promise.all([
      stripe.paymentIntents.create(params(), { idempotencyKey: key }).catch((e: unknown) => e),
      // Other parameters while it runs are still an idempotency_error.
      stripe.paymentIntents
        .create(params({ amount: 900 }), { idempotencyKey: key })
        .catch((e: unknown) => e),
    ]);
    const created = await first;
    fake.setLatency(0);

    expect(concurrent).toBeInstanceOf(Stripe.errors.StripeError);
    expect(concurrent).toMatchObject({
      statusCode: 409,
      rawType: 'invalid_request_error',
      code: 'idempotency_key_in_use',
    });
    expect(otherParams).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(replayed(created)).toBe(false);
    // The in-flight conflict saved nothing: once the first is done, it is replayed.
    const later = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    expect(replayed(later)).toBe(true);
    expect(later.id).toBe(created.id);
    // Neither refused request created anything.
    expect([...fake.paymentIntents.values()].some((pi) => pi.amount === 900)).toBe(false);
    expect(statusesFor(key)).toEqual([200, 409, 400, 200]);
  });

  it("a timed-out request's retry with the same key meets it in flight (409), and later its answer", async () => {
    const key = uniqueKey();
    const intentsBefore = fake.paymentIntents.size;
    fake.setLatency(400);
    const timedOut = await sdk({ timeout: 100 })
      .paymentIntents.create(params(), { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    const stripe = sdk();
    const retry = await stripe.paymentIntents
      .create(params(), { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(retry).toMatchObject({ statusCode: 409, code: 'idempotency_key_in_use' });
    // Refused at once, not after the first request's running time.
    expect(fake.paymentIntents.size).toBe(intentsBefore);
    fake.setLatency(0);
    await sleep(400);
    // The first request went on at Stripe and created the PaymentIntent: it is the answer.
    const settled = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    expect(replayed(settled)).toBe(true);
    expect(fake.paymentIntents.get(settled.id)?.status).toBe('requires_payment_method');
  });

  it("the SDK's own retries wait out a 409 in flight and get the first answer", async () => {
    const key = uniqueKey();
    fake.setLatency(200);
    const first = sdk().paymentIntents.create(params(), { idempotencyKey: key });
    await sleep(20);
    const retrying = await sdk({ maxNetworkRetries: 2 }).paymentIntents.create(params(), {
      idempotencyKey: key,
    });
    const created = await first;
    expect(retrying.id).toBe(created.id);
    expect(replayed(retrying)).toBe(true);
    expect(statusesFor(key)).toEqual([200, 409, 200]);
  });

  it('saves nothing for a request refused by parameter validation: a retry with the key executes anew', async () => {
    const stripe = sdk();
    const key = uniqueKey();
    const refused = await stripe.paymentIntents
      .create(params({ amount: 10 }), { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(refused).toMatchObject({ statusCode: 400, code: 'amount_too_small', param: 'amount' });
    // Not replayed: the same request is validated again...
    const again = await stripe.paymentIntents
      .create(params({ amount: 10 }), { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(again).toMatchObject({ code: 'amount_too_small' });
    expect((again as Stripe.errors.StripeError).headers?.['idempotent-replayed']).toBeUndefined();
    // ...and corrected parameters are not another request's: they execute, and are saved.
    const created = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    expect(replayed(created)).toBe(false);
    const replay = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    expect(replay.id).toBe(created.id);
    expect(replayed(replay)).toBe(true);
    expect(statusesFor(key)).toEqual([400, 400, 200, 200]);
  });

  it('saves an error the endpoint answered once it ran, and replays it', async () => {
    const stripe = sdk();
    const intent = await stripe.paymentIntents.create(params());
    const key = uniqueKey();
    const refund = { payment_intent: intent.id, amount: 700 };
    const notYet = await stripe.refunds
      .create(refund, { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(notYet).toMatchObject({ statusCode: 400, code: 'charge_not_refundable' });
    fake.succeedPaymentIntent(intent.id);
    // Paid since, but the key's saved answer is the refusal.
    const replay = await stripe.refunds
      .create(refund, { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(replay).toMatchObject({ statusCode: 400, code: 'charge_not_refundable' });
    expect((replay as Stripe.errors.StripeError).headers?.['idempotent-replayed']).toBe('true');
    await expect(
      stripe.refunds.create(refund, { idempotencyKey: uniqueKey() }),
    ).resolves.toMatchObject({ amount: 700, status: 'succeeded' });
  });

  it('saves nothing for an injected fault, which answers before the idempotency layer', async () => {
    const stripe = sdk();
    for (const status of [500, 503, 429]) {
      const key = uniqueKey();
      fake.injectFault({ kind: 'status', status });
      await expect(
        stripe.paymentIntents.create(params(), { idempotencyKey: key }),
      ).rejects.toMatchObject({ statusCode: status });
      const created = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
      expect(replayed(created)).toBe(false);
      expect(fake.paymentIntents.has(created.id)).toBe(true);
      expect(statusesFor(key)).toEqual([status, 200]);
    }
    // A dropped connection: the SDK itself retries it once, with the key, and it executes.
    const key = uniqueKey();
    fake.injectFault({ kind: 'drop' });
    const created = await stripe.paymentIntents.create(params(), { idempotencyKey: key });
    expect(replayed(created)).toBe(false);
    expect(statusesFor(key)).toEqual(['drop', 200]);
  });

  it('a hanging request does not hold its key', async () => {
    const key = uniqueKey();
    fake.injectFault({ kind: 'hang' });
    await expect(
      sdk({ timeout: 100 }).paymentIntents.create(params(), { idempotencyKey: key }),
    ).rejects.toBeInstanceOf(Stripe.errors.StripeConnectionError);
    const created = await sdk().paymentIntents.create(params(), { idempotencyKey: key });
    expect(replayed(created)).toBe(false);
    expect(statusesFor(key)).toEqual(['hang', 200]);
  });
});

describe('canceling a PaymentIntent', () => {
  it('sends payment_intent.canceled with the canceled intent, once', async () => {
    const stripe = sdk();
    const intent = await stripe.paymentIntents.create(params());
    expect(intent).toMatchObject({ canceled_at: null, cancellation_reason: null });
    const canceled = await stripe.paymentIntents.cancel(intent.id, {
      cancellation_reason: 'abandoned',
    });
    expect(canceled).toMatchObject({ status: 'canceled', cancellation_reason: 'abandoned' });
    expect(canceled.canceled_at).toEqual(expect.any(Number));

    // Canceled again: refused, and no second event.
    await expect(stripe.paymentIntents.cancel(intent.id)).rejects.toMatchObject({
      statusCode: 400,
      code: 'payment_intent_unexpected_state',
    });
    const events = (
      await stripe.events.list({ types: ['payment_intent.canceled'], limit: 100 })
    ).data.filter((event) => (event.data.object as Stripe.PaymentIntent).id === intent.id);
    expect(events).toHaveLength(1);
    expect(events[0]!.data.object).toMatchObject({
      id: intent.id,
      object: 'payment_intent',
      status: 'canceled',
      cancellation_reason: 'abandoned',
      metadata: { purpose: 'penalty' },
    });
    await expect(stripe.events.retrieve(events[0]!.id)).resolves.toMatchObject({
      type: 'payment_intent.canceled',
    });
  });

  it('refuses an unknown cancellation_reason, sending no event', async () => {
    const stripe = sdk();
    const intent = await stripe.paymentIntents.create(params());
    const before = fake.events.length;
    await expect(
      stripe.paymentIntents.cancel(intent.id, {
        cancellation_reason: 'bored' as Stripe.PaymentIntentCancelParams.CancellationReason,
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'cancellation_reason' });
    expect(fake.events.length).toBe(before);
    expect(fake.paymentIntents.get(intent.id)?.status).toBe('requires_payment_method');
  });
});
