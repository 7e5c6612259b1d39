/**
 * The wired webhook handler against the real SQS emulator: what Stripe sends in,
 * what the consumer will read out.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { StaticWebhookSecretProvider } from '../../functions/adapters/secrets/webhook-secret-provider.ts';
import { SqsEventQueue } from '../../functions/adapters/sqs/sqs-event-queue.ts';
import { StripeSignatureVerifier } from '../../functions/adapters/stripe/stripe-signature-verifier.ts';
import { withPowertools } from '../../functions/commons/middleware.ts';
import { MAX_WEBHOOK_BODY_BYTES } from '../../functions/core/intake/webhook-intake.ts';
import {
  EVENT_FAMILIES,
  type EventFamilyName,
  familiesFor,
} from '../../functions/core/shared/event-families.ts';
import { queuedEventJson } from '../../functions/core/shared/personal-data.ts';
import { createWebhookIngressHandler } from '../../functions/webhook-ingress.ts';
import {
  findFreePort,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type RunningSqsEmulator,
  startSqsEmulator,
} from '../../local/emulators.ts';
import { httpApiEvent, stripeWebhookEvent } from '../helpers/apigw-events.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';
import {
  readStripeEventRaw,
  STRIPE_EVENT_FIXTURES,
  stripeEventWith,
  uniqueEventId,
} from '../helpers/fixtures.ts';
import { signPayload, TEST_WEBHOOK_SECRET } from '../helpers/stripe-signing.ts';

/** What the webhook queues: the verified event without personal data. */
const minimized = (raw: string) => queuedEventJson(JSON.parse(raw), raw);

const context = {
  functionName: 'webhook-ingress',
  awsRequestId: 'req-int',
  getRemainingTimeInMillis: () => 10_000,
} as Context;

const { sqs } = emulatorClients();
const createdQueues: string[] = [];
const extraEmulators: RunningSqsEmulator[] = [];

async function createQueue(client: SQSClient = sqs): Promise<string> {
  const { QueueUrl } = await client.send(
    new CreateQueueCommand({ QueueName: uniqueName('webhook') }),
  );
  createdQueues.push(QueueUrl!);
  return QueueUrl!;
}

/** The payments family's queue for tests that read only the subscriptions queue. */
let paymentsSink: string;
beforeAll(async () => {
  paymentsSink = await createQueue();
});

function handlerFor(
  queueUrls: string | Record<EventFamilyName, string>,
  client: SQSClient = sqs,
  logger?: Logger,
) {
  const verifier = new StripeSignatureVerifier(
    new StaticWebhookSecretProvider(TEST_WEBHOOK_SECRET),
  );
  const queue = new SqsEventQueue({
    queueUrls:
      typeof queueUrls === 'string'
        ? { subscriptions: queueUrls, payments: paymentsSink }
        : queueUrls,
    client,
  });
  const handler = withPowertools(
    createWebhookIngressHandler({ verifier, queue, ...(logger ? { logger } : {}) }),
    logger ? { logger } : {},
  );
  return (event: APIGatewayProxyEventV2) => handler(event, context);
}

async function drain(queueUrl: string, client: SQSClient = sqs): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const { Messages = [] } = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
        VisibilityTimeout: 60,
      }),
    );
    if (Messages.length === 0) return messages;
    messages.push(...Messages);
  }
}

/** An SQS client that fails fast: for fault injection against a closed or absent endpoint. */
function fragileClient(endpoint: string) {
  return new SQSClient({
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 300, requestTimeout: 1_000 },
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

afterAll(async () => {
  await Promise.allSettled(
    createdQueues.map((url) => sqs.send(new DeleteQueueCommand({ QueueUrl: url }))),
  );
  await Promise.allSettled(extraEmulators.map((e) => e.stop()));
});

describe('webhook ingress → SQS', () => {
  let queueUrl: string;
  let queues: Record<EventFamilyName, string>;
  let invoke: ReturnType<typeof handlerFor>;

  beforeAll(async () => {
    queues = { subscriptions: await createQueue(), payments: await createQueue() };
    queueUrl = queues.subscriptions;
    invoke = handlerFor(queues);
  });

  afterEach(async () => {
    await Promise.all(Object.values(queues).map((url) => drain(url)));
  });

  it('puts exactly one message with the minimised body and the contract attributes, then answers 200', async () => {
    const raw = readStripeEventRaw('customer.subscription.created.stripe-sync-engine');
    const before = Date.now();
    const response = await invoke(stripeWebhookEvent(raw, signPayload(raw)));
    const after = Date.now();

    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ received: true });
    const messages = await drain(queueUrl);
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message!.Body).toBe(minimized(raw));
    const attributes = message!.MessageAttributes!;
    expect(Object.keys(attributes).sort()).toEqual(['eventId', 'eventType', 'receivedAt']);
    expect(attributes.eventId).toMatchObject({
      DataType: 'String',
      StringValue: 'evt_1J02NfJDPojXS6LNawmt1X8q',
    });
    expect(attributes.eventType).toMatchObject({
      DataType: 'String',
      StringValue: 'customer.subscription.created',
    });
    expect(attributes.receivedAt!.DataType).toBe('Number');
    const receivedAt = Number(attributes.receivedAt!.StringValue);
    expect(receivedAt).toBeGreaterThanOrEqual(before);
    expect(receivedAt).toBeLessThanOrEqual(after);
  });

  it.each(STRIPE_EVENT_FIXTURES)(
    'carries the captured event %s, without its personal data',
    async (name) => {
      const raw = readStripeEventRaw(name);
      const response = await invoke(stripeWebhookEvent(raw, signPayload(raw), { base64: true }));
      expect(response.statusCode).toBe(200);
      // In the queue of every family that consumes the type, and in no other.
      const targets = familiesFor(JSON.parse(raw).type);
      expect(targets.length).toBeGreaterThan(0);
      for (const family of EVENT_FAMILIES) {
        const messages = await drain(queues[family]);
        expect(messages.map((m) => m.Body)).toEqual(
          targets.includes(family) ? [minimized(raw)] : [],
        );
        if (targets.includes(family)) {
          expect(messages[0]!.MessageAttributes!.eventId!.StringValue).toBe(JSON.parse(raw).id);
        }
      }
    },
  );

  it('acknowledges a type no family consumes and queues it nowhere', async () => {
    const text = JSON.stringify({
      ...stripeEventWith('invoice.paid.stripe-sync-engine', { id: uniqueEventId() }),
      type: 'product.created',
    });
    const response = await invoke(stripeWebhookEvent(text, signPayload(text)));
    expect(response.statusCode).toBe(200);
    for (const url of Object.values(queues)) expect(await drain(url)).toEqual([]);
  });

  it('queues a body of exactly the cap (the message with attributes fits SQS)', async () => {
    const event = stripeEventWith('invoice.paid.stripe-sync-engine', { id: uniqueEventId() });
    const pad = (n: number) => JSON.stringify({ ...event, padding: 'é'.repeat(n) });
    // 2-byte characters: the cap counts bytes, and SQS counts bytes too.
    let text = pad(Math.floor((MAX_WEBHOOK_BODY_BYTES - pad(0).length) / 2));
    text = text.replace(
      '"padding":"',
      `"padding":"${'x'.repeat(MAX_WEBHOOK_BODY_BYTES - Buffer.byteLength(text))}`,
    );
    expect(Buffer.byteLength(text)).toBe(MAX_WEBHOOK_BODY_BYTES);

    const response = await invoke(stripeWebhookEvent(text, signPayload(text)));
    expect(response.statusCode).toBe(200);
    expect((await drain(queueUrl)).map((m) => m.Body)).toEqual([minimized(text)]);
  });

  const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
  const stale = Math.floor(Date.now() / 1000) - 301;
  const notAnEvent = '{"id":"evt_x","object":"list"}';
  const overCap = `{"pad":"${'x'.repeat(MAX_WEBHOOK_BODY_BYTES)}"}`;
  it.each<[string, () => APIGatewayProxyEventV2, number]>([
    ['no signature', () => stripeWebhookEvent(raw, undefined), 400],
    ['a forged signature', () => stripeWebhookEvent(raw, signPayload(raw, 'whsec_forged')), 400],
    [
      'an expired signature',
      () => stripeWebhookEvent(raw, signPayload(raw, TEST_WEBHOOK_SECRET, { timestamp: stale })),
      400,
    ],
    [
      'a tampered body',
      () => stripeWebhookEvent(raw.replace('"paid"', '"void"'), signPayload(raw)),
      400,
    ],
    ['signed malformed JSON', () => stripeWebhookEvent('{"id":', signPayload('{"id":')), 400],
    ['a signed non-event', () => stripeWebhookEvent(notAnEvent, signPayload(notAnEvent)), 400],
    ['a signed body over the cap', () => stripeWebhookEvent(overCap, signPayload(overCap)), 413],
    ['GET', () => httpApiEvent({ method: 'GET', path: '/webhooks/stripe' }), 405],
    [
      'another path',
      () => ({
        ...stripeWebhookEvent(raw, signPayload(raw)),
        rawPath: '/webhooks/other',
        routeKey: '$default',
      }),
      404,
    ],
  ])('answers %s with the right status and queues nothing', async (_label, makeEvent, status) => {
    const response = await invoke(makeEvent());
    expect(response.statusCode).toBe(status);
    expect(JSON.parse(response.body).error.code).toEqual(expect.any(String));
    expect(await drain(queueUrl)).toHaveLength(0);
  });
});

describe('webhook ingress when SQS is unavailable', () => {
  it('answers 503 for a missing queue, and a Stripe retry succeeds once the queue exists', async () => {
    const { sqsEndpointClient, endpoint } = {
      sqsEndpointClient: sqs,
      endpoint: inject('sqsEndpoint'),
    };
    const name = uniqueName('webhook-late');
    const { QueueUrl: probeUrl } = await sqsEndpointClient.send(
      new CreateQueueCommand({ QueueName: `${name}-probe` }),
    );
    createdQueues.push(probeUrl!);
    const queueUrl = probeUrl!.replace(`${name}-probe`, name);
    const invoke = handlerFor(queueUrl, fragileClient(endpoint));
    const raw = JSON.stringify(
      stripeEventWith('invoice.paid.stripe-sync-engine', { id: uniqueEventId() }),
    );
    const delivery = stripeWebhookEvent(raw, signPayload(raw));

    const first = await invoke(delivery);
    expect(first.statusCode).toBe(503);
    expect(first.body).not.toMatch(/QueueDoesNotExist|queue does not exist/i);

    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
    createdQueues.push(QueueUrl!);
    expect(QueueUrl).toBe(queueUrl);
    const retry = await invoke(delivery);
    expect(retry.statusCode).toBe(200);
    expect((await drain(queueUrl)).map((m) => m.Body)).toEqual([minimized(raw)]);
  });

  it('answers 503 while the SQS endpoint is down, logs no secrets, and loses nothing once it is back', async () => {
    const port = await findFreePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const client = fragileClient(endpoint);
    const name = uniqueName('webhook-down');
    const queueUrl = `http://sqs.${LOCAL_REGION}.localhost:${port}/000000000000/${name}`;
    const logger = new Logger({ serviceName: 'webhook-int', logLevel: 'DEBUG' });
    const invoke = handlerFor(queueUrl, client, logger);
    const raw = JSON.stringify(
      stripeEventWith('customer.subscription.deleted.stripe-sync-engine', { id: uniqueEventId() }),
    );
    const signature = signPayload(raw);
    const delivery = stripeWebhookEvent(raw, signature);

    const output: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => output.push(String(chunk)) > 0);
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => output.push(String(chunk)) > 0);
    const first = await invoke(delivery);
    vi.restoreAllMocks();

    expect(first.statusCode).toBe(503);
    expect(first.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
    const logged = output.join('');
    expect(logged).toMatch(/ECONNREFUSED/); // the cause reaches the logs...
    for (const secretish of [
      raw,
      /v1=([0-9a-f]+)/.exec(signature)![1]!,
      TEST_WEBHOOK_SECRET,
      '"object":',
    ]) {
      expect(logged).not.toContain(secretish); // ...the payload, signature and secret do not
    }

    const emulator = await startSqsEmulator({ port });
    extraEmulators.push(emulator);
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name }));
    expect(QueueUrl).toBe(queueUrl);
    expect(await drain(queueUrl, client)).toHaveLength(0); // the failed attempt left nothing behind

    const retry = await invoke(delivery);
    expect(retry.statusCode).toBe(200);
    const messages = await drain(queueUrl, client);
    expect(messages.map((m) => m.Body)).toEqual([minimized(raw)]);
    expect(messages[0]!.MessageAttributes!.eventId!.StringValue).toBe(JSON.parse(raw).id);
  });
});
