/**
 * The exported `handler` exactly as Lambda (and the local runtime) loads it: all
 * configuration from the environment, SQS found through AWS_ENDPOINT_URL_SQS.
 */
import { CreateQueueCommand, DeleteQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { afterAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { EnvConfigError } from '../../functions/commons/env.ts';
import { ENV } from '../../functions/commons/env-names.ts';
import { queuedEventJson } from '../../functions/core/shared/personal-data.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators.ts';
import { stripeWebhookEvent } from '../helpers/apigw-events.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';
import { stripeEventWith, uniqueEventId } from '../helpers/fixtures.ts';
import { signPayload, TEST_WEBHOOK_SECRET } from '../helpers/stripe-signing.ts';

const context = {
  functionName: 'webhook-ingress',
  awsRequestId: 'req-env',
  getRemainingTimeInMillis: () => 10_000,
} as Context;

const { sqs } = emulatorClients();
const savedEnv = { ...process.env };
let queueUrl: string | undefined;

async function freshHandler() {
  vi.resetModules();
  const module = await import('../../functions/webhook-ingress.ts');
  return module.handler;
}

beforeEach(() => {
  process.env = { ...savedEnv };
});

afterAll(async () => {
  process.env = savedEnv;
  if (queueUrl) await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
});

describe('webhook ingress handler wired from the environment', () => {
  it('fails fast, naming the variables, when the environment is incomplete', async () => {
    delete process.env[ENV.subscriptionEventsQueueUrl];
    delete process.env[ENV.paymentEventsQueueUrl];
    delete process.env[ENV.webhookSecret];
    delete process.env[ENV.webhookSecretArn];
    const handler = await freshHandler();
    const raw = JSON.stringify(stripeEventWith('invoice.paid.stripe-sync-engine'));
    const failure = handler(stripeWebhookEvent(raw, signPayload(raw)), context);
    // A fresh module graph: compare by name, not by class identity.
    await expect(failure).rejects.toMatchObject({ name: EnvConfigError.name });
    await expect(failure).rejects.toThrow(ENV.subscriptionEventsQueueUrl);
    await expect(failure).rejects.toThrow(ENV.paymentEventsQueueUrl);
    await expect(failure).rejects.toThrow(ENV.webhookSecretArn);
  });

  it('verifies with STRIPE_WEBHOOK_SECRET and enqueues through AWS_ENDPOINT_URL_SQS', async () => {
    ({ QueueUrl: queueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: uniqueName('webhook-env') }),
    ));
    Object.assign(process.env, {
      [ENV.subscriptionEventsQueueUrl]: queueUrl,
      // Not read here: only a payment event or a checkout would go there.
      [ENV.paymentEventsQueueUrl]: `${queueUrl}-payments`,
      [ENV.webhookSecret]: TEST_WEBHOOK_SECRET,
      AWS_ENDPOINT_URL_SQS: inject('sqsEndpoint'),
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    });
    const handler = await freshHandler();
    const id = uniqueEventId();
    const raw = JSON.stringify(stripeEventWith('invoice.paid.stripe-sync-engine', { id }));

    const accepted = await handler(stripeWebhookEvent(raw, signPayload(raw)), context);
    const refused = await handler(
      stripeWebhookEvent(raw, signPayload(raw, 'whsec_other')),
      context,
    );

    expect(accepted.statusCode).toBe(200);
    expect(refused.statusCode).toBe(400);
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
      }),
    );
    expect(Messages.map((m) => [m.Body, m.MessageAttributes?.eventId?.StringValue])).toEqual([
      // Queued without its personal data (personal-data.ts), as every webhook is.
      [queuedEventJson(JSON.parse(raw), raw), id],
    ]);
  });
});
