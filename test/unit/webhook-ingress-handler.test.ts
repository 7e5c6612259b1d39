import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  StaticWebhookSecretProvider,
  type WebhookSecretProvider,
  WebhookSecretUnavailableError,
} from '../../functions/adapters/secrets/webhook-secret-provider.ts';
import { StripeSignatureVerifier } from '../../functions/adapters/stripe/stripe-signature-verifier.ts';
import { METRIC } from '../../functions/commons/metric-names.ts';
import { withPowertools } from '../../functions/commons/middleware.ts';
import {
  type EventQueue,
  MAX_WEBHOOK_BODY_BYTES,
  type VerifiedStripeEvent,
} from '../../functions/core/intake/webhook-intake.ts';
import { queuedEventJson } from '../../functions/core/shared/personal-data.ts';
import { createWebhookIngressHandler } from '../../functions/webhook-ingress.ts';
import { httpApiEvent, stripeWebhookEvent } from '../helpers/apigw-events.ts';
import { readStripeEventRaw, stripeEventWith } from '../helpers/fixtures.ts';
import { signPayload, TEST_WEBHOOK_SECRET } from '../helpers/stripe-signing.ts';

const minimized = (raw: string) => queuedEventJson(JSON.parse(raw), raw);

const context = {
  functionName: 'webhook-ingress',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:webhook-ingress',
  memoryLimitInMB: '256',
  awsRequestId: 'req-1',
  getRemainingTimeInMillis: () => 10_000,
} as Context;

class RecordingQueue implements EventQueue {
  readonly sent: VerifiedStripeEvent[] = [];
  failWith: Error | undefined;
  async enqueue(event: VerifiedStripeEvent): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.sent.push(event);
  }
}

function setup(
  secrets: WebhookSecretProvider = new StaticWebhookSecretProvider(TEST_WEBHOOK_SECRET),
  livemode?: boolean,
) {
  const queue = new RecordingQueue();
  const logger = new Logger({ serviceName: 'webhook-test', logLevel: 'DEBUG' });
  const metrics = new Metrics({ namespace: 'Test', serviceName: 'webhook-test' });
  const added: string[] = [];
  const rejected: string[] = [];
  vi.spyOn(metrics, 'addMetric').mockImplementation((name) => {
    added.push(name);
    return metrics;
  });
  vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
    const single = new Metrics({ namespace: 'Test' });
    let reason = '';
    vi.spyOn(single, 'addDimension').mockImplementation((_name, value) => {
      reason = value;
      return single;
    });
    vi.spyOn(single, 'addMetric').mockImplementation((name) => {
      rejected.push(`${name}:${reason}`);
      return single;
    });
    return single;
  });
  const verifier = new StripeSignatureVerifier(secrets);
  const handler = withPowertools(
    createWebhookIngressHandler({
      verifier,
      queue,
      logger,
      metrics,
      ...(livemode === undefined ? {} : { livemode }),
    }),
    {
      logger,
      metrics,
    },
  );
  const invoke = (event: APIGatewayProxyEventV2) => handler(event, context);
  return { queue, invoke, added, rejected };
}

const raw = readStripeEventRaw('customer.subscription.updated.stripe-sync-engine');
const EVENT_ID = 'evt_1IlavxJDPojXS6LNGNOrPWFQ';

function captureOutput() {
  const lines: string[] = [];
  const capture = (chunk: unknown) => {
    lines.push(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  return lines;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('webhook ingress handler', () => {
  it('answers 200 {"received":true} once the event is queued, minimised', async () => {
    const { queue, invoke, added } = setup();
    const response = await invoke(stripeWebhookEvent(raw, signPayload(raw)));
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ received: true });
    expect(response.headers['content-type']).toBe('application/json');
    expect(queue.sent).toHaveLength(1);
    expect(queue.sent[0]).toMatchObject({ body: minimized(raw), eventId: EVENT_ID });
    expect(added).toEqual([METRIC.webhookReceived, METRIC.webhookEnqueued]);
  });

  it('answers 200 to an event of the other Stripe mode, counts it, and queues nothing', async () => {
    const { queue, invoke, added } = setup(undefined, true);
    // The captured event is a test-mode event; this stack serves live mode.
    expect(JSON.parse(raw).livemode).toBe(false);
    const response = await invoke(stripeWebhookEvent(raw, signPayload(raw)));
    expect(response.statusCode).toBe(200);
    expect(queue.sent).toHaveLength(0);
    expect(added).toEqual([METRIC.webhookReceived, METRIC.webhookWrongMode]);
  });

  it('verifies and queues the decoded bytes of a base64 body', async () => {
    const { queue, invoke } = setup();
    // Non-ASCII content: the signature is over UTF-8 bytes, not over the base64 text.
    const text = JSON.stringify(
      stripeEventWith('invoice.paid.stripe-sync-engine', { id: 'evt_b64' }),
    ).replace('"account_name":"Supabase Pte Ltd"', '"account_name":"Zoë & Ünïcødé 🚀"');
    expect(text).toContain('🚀');
    const response = await invoke(stripeWebhookEvent(text, signPayload(text), { base64: true }));
    expect(response.statusCode).toBe(200);
    expect(queue.sent.map((m) => m.body)).toEqual([minimized(text)]);
    expect(queue.sent[0]!.body).toContain('Zoë & Ünïcødé 🚀');
  });

  it('rejects a body signed as its base64 text rather than its bytes', async () => {
    const { queue, invoke } = setup();
    const b64 = Buffer.from(raw).toString('base64');
    const response = await invoke(stripeWebhookEvent(raw, signPayload(b64), { base64: true }));
    expect(response.statusCode).toBe(400);
    expect(queue.sent).toHaveLength(0);
  });

  it('finds the signature header whatever its case', async () => {
    const { queue, invoke } = setup();
    const event = stripeWebhookEvent(raw, undefined, {
      headers: { 'Stripe-Signature': signPayload(raw) },
    });
    expect((await invoke(event)).statusCode).toBe(200);
    expect(queue.sent).toHaveLength(1);
  });

  it.each([
    ['missing', undefined, 'missing_signature'],
    ['forged', signPayload(raw, 'whsec_forged'), 'invalid_signature'],
    [
      'expired',
      signPayload(raw, TEST_WEBHOOK_SECRET, { timestamp: Math.floor(Date.now() / 1000) - 301 }),
      'expired_signature',
    ],
    ['garbled', 'not-a-signature', 'malformed_signature'],
  ])('answers 400 for a %s signature and queues nothing', async (_label, signature, code) => {
    const { queue, invoke, rejected } = setup();
    const response = await invoke(stripeWebhookEvent(raw, signature));
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body)).toEqual({ error: { code, message: expect.any(String) } });
    expect(queue.sent).toHaveLength(0);
    expect(rejected).toEqual([`${METRIC.webhookRejected}:${code}`]);
  });

  it('answers 400 malformed_event for signed JSON that is not an event', async () => {
    const { queue, invoke, rejected } = setup();
    const body = '{"hello":"world"}';
    const response = await invoke(stripeWebhookEvent(body, signPayload(body)));
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error.code).toBe('malformed_event');
    expect(queue.sent).toHaveLength(0);
    expect(rejected).toEqual([`${METRIC.webhookRejected}:malformed_event`]);
  });

  it('answers 413 for a body over the cap, also when base64-encoded', async () => {
    const { queue, invoke, rejected } = setup();
    const body = `{"pad":"${'x'.repeat(MAX_WEBHOOK_BODY_BYTES)}"}`;
    for (const base64 of [false, true]) {
      const response = await invoke(stripeWebhookEvent(body, signPayload(body), { base64 }));
      expect(response.statusCode).toBe(413);
      expect(JSON.parse(response.body).error.code).toBe('payload_too_large');
    }
    expect(queue.sent).toHaveLength(0);
    expect(rejected).toEqual([
      `${METRIC.webhookRejected}:payload_too_large`,
      `${METRIC.webhookRejected}:payload_too_large`,
    ]);
  });

  it.each(['GET', 'PUT', 'DELETE', 'OPTIONS'])(
    'answers 405 with Allow: POST to %s /webhooks/stripe',
    async (method) => {
      const { queue, invoke } = setup();
      const response = await invoke(httpApiEvent({ method, path: '/webhooks/stripe' }));
      expect(response.statusCode).toBe(405);
      expect(response.headers.allow).toBe('POST');
      expect(JSON.parse(response.body).error.code).toBe('method_not_allowed');
      expect(queue.sent).toHaveLength(0);
    },
  );

  it.each(['/webhooks', '/webhooks/stripe/extra', '/webhooks/Stripe', '/'])(
    'answers 404 to POST %s',
    async (path) => {
      const { queue, invoke } = setup();
      const event = stripeWebhookEvent(raw, signPayload(raw));
      event.rawPath = path;
      event.routeKey = '$default';
      event.requestContext.routeKey = '$default';
      const response = await invoke(event);
      expect(response.statusCode).toBe(404);
      expect(queue.sent).toHaveLength(0);
    },
  );

  it('routes by rawPath behind a $default route, with or without a stage prefix', async () => {
    const { queue, invoke } = setup();
    const plain = stripeWebhookEvent(raw, signPayload(raw));
    plain.routeKey = '$default';
    const staged = stripeWebhookEvent(raw, signPayload(raw));
    staged.routeKey = '$default';
    staged.rawPath = '/prod/webhooks/stripe';
    staged.requestContext.stage = 'prod';
    expect((await invoke(plain)).statusCode).toBe(200);
    expect((await invoke(staged)).statusCode).toBe(200);
    expect(queue.sent).toHaveLength(2);
  });

  it('answers 503 with no internals when the queue fails, and counts it', async () => {
    const { queue, invoke, added } = setup();
    queue.failWith = new Error('connect ECONNREFUSED 10.0.0.1:443 secret-internal-detail');
    const response = await invoke(stripeWebhookEvent(raw, signPayload(raw)));
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toEqual({
      error: { code: 'service_unavailable', message: expect.any(String) },
    });
    expect(response.body).not.toContain('ECONNREFUSED');
    expect(added).toEqual([METRIC.webhookReceived, METRIC.webhookEnqueueFailed]);
  });

  it('answers 503 when the signing secret cannot be read', async () => {
    const secrets: WebhookSecretProvider = {
      getSecret: () => Promise.reject(new WebhookSecretUnavailableError('AccessDenied')),
      refreshSecret: async () => undefined,
    };
    const { queue, invoke } = setup(secrets);
    const response = await invoke(stripeWebhookEvent(raw, signPayload(raw)));
    expect(response.statusCode).toBe(503);
    expect(response.body).not.toContain('AccessDenied');
    expect(queue.sent).toHaveLength(0);
  });

  it('answers a generic 500 for an unexpected error', async () => {
    const secrets: WebhookSecretProvider = {
      getSecret: () => Promise.reject(new TypeError('x is undefined at internal.ts:12')),
      refreshSecret: async () => undefined,
    };
    const { invoke } = setup(secrets);
    const response = await invoke(stripeWebhookEvent(raw, signPayload(raw)));
    expect(response.statusCode).toBe(500);
    expect(JSON.parse(response.body)).toEqual({
      error: { code: 'internal_error', message: 'Internal server error.' },
    });
  });

  it('logs with the event id as correlation id, and never the body, signature or secret', async () => {
    const lines = captureOutput();
    const { queue, invoke } = setup();
    const signature = signPayload(raw);
    await invoke(stripeWebhookEvent(raw, signature));
    await invoke(stripeWebhookEvent(raw, signPayload(raw, 'whsec_forged_secret_value')));
    await invoke(stripeWebhookEvent(`${raw} `, signature));
    queue.failWith = new Error('boom');
    await invoke(stripeWebhookEvent(raw, signature));
    vi.restoreAllMocks();

    const records = lines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{'));
    expect(records.length).toBeGreaterThanOrEqual(4);
    const enqueued = records
      .map((l) => JSON.parse(l))
      .find((r) => r.message === 'Webhook enqueued');
    expect(enqueued).toMatchObject({ correlation_id: EVENT_ID, eventId: EVENT_ID });
    const failed = records.map((l) => JSON.parse(l)).find((r) => r.statusCode === 503);
    expect(failed).toMatchObject({ correlation_id: EVENT_ID });
    const all = lines.join('');
    const v1 = /v1=([0-9a-f]+)/.exec(signature)![1]!;
    for (const secretish of [
      v1,
      TEST_WEBHOOK_SECRET,
      'whsec_forged_secret_value',
      'sub_',
      '"object":',
    ]) {
      expect(all).not.toContain(secretish);
    }
  });

  it("does not carry one invocation's correlation id into the next", async () => {
    const lines = captureOutput();
    const { invoke } = setup();
    await invoke(stripeWebhookEvent(raw, signPayload(raw)));
    await invoke(stripeWebhookEvent(raw, undefined));
    vi.restoreAllMocks();
    const records = lines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{'));
    const rejection = records
      .map((l) => JSON.parse(l))
      .find((r) => r.message === 'Request rejected');
    expect(rejection).toBeDefined();
    expect(rejection).not.toHaveProperty('correlation_id');
  });
});
