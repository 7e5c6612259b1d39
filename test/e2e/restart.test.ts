/**
 * The local runtime's data survives a restart: DynamoDB Local's file and the queue
 * snapshot (fauxqs itself keeps nothing), so a DLQ still holds its messages.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort, localSqsClient } from '../../local/emulators.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import { buildDefaultSample, sampleIds } from '../../local/send-sample.ts';
import { getSubscription, postWebhook, uniqueUserId, waitForSubscription } from './e2e-helpers.ts';

function sqsClient(runtime: LocalRuntime): SQSClient {
  return localSqsClient(runtime.sqsEndpoint);
}

function dlqOf(runtime: LocalRuntime): { url: string; name: string } {
  const main = runtime.model.queues.find((q) => q.deadLetter);
  const dlqId = main?.deadLetter?.targetLogicalId;
  if (!dlqId) throw new Error('the stack has no queue with a DLQ');
  return { url: runtime.queueUrls[dlqId]!, name: runtime.queueNames[dlqId]! };
}

/** Webhooks the handler counted today, from the operations page's per-day metrics. */
async function webhooksReceivedToday(runtime: LocalRuntime): Promise<number> {
  const response = await fetch(`${runtime.opsUrl}/metrics`);
  const body = (await response.json()) as {
    days: Record<string, { metric: string; sum: number }[]>;
  };
  const today = new Date().toISOString().slice(0, 10);
  return (body.days[today] ?? [])
    .filter((series) => series.metric === 'WebhookReceived')
    .reduce((sum, series) => sum + series.sum, 0);
}

describe('local runtime restart', () => {
  let dataDir: string;
  let runtime: LocalRuntime | undefined;
  let ports: { dynamoPort: number; sqsPort: number };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'billing-local-restart-'));
    // Handler modules load once per process and keep their SDK clients and parsed env
    // (the queue URL names the port), so a restart inside one process must reuse the
    // emulator ports. `npm start` restarts are new processes and need not.
    ports = { dynamoPort: await findFreePort(), sqsPort: await findFreePort() };
  });
  afterAll(async () => {
    await runtime?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = () => startLocalRuntime({ port: 0, dataDir, ...ports, logLevel: 'warn' });

  it('keeps subscriptions and DLQ messages across a stop and start', async () => {
    const userId = uniqueUserId('restart');
    const { subscriptionId } = sampleIds(userId);

    runtime = await start();
    for (const event of buildDefaultSample({ userId, tier: 'gold' })) {
      expect((await postWebhook(runtime, event)).status).toBe(200);
    }
    const before = await waitForSubscription(
      runtime,
      userId,
      (a) => a.subscriptionId === subscriptionId,
    );
    const dlq = dlqOf(runtime);
    const sqs = sqsClient(runtime);
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: dlq.url,
        MessageBody: '{"id":"evt_poison"}',
        MessageAttributes: { eventId: { DataType: 'String', StringValue: 'evt_poison' } },
      }),
    );
    sqs.destroy();
    const receivedBefore = await webhooksReceivedToday(runtime);
    expect(receivedBefore).toBeGreaterThanOrEqual(2);
    await runtime.stop();
    runtime = undefined;
    expect(existsSync(join(dataDir, 'sqs', `${dlq.name}.json`))).toBe(true);
    expect(existsSync(join(dataDir, 'ops-days.json'))).toBe(true);

    runtime = await start();
    // The operations page's day-long figures carry on from the last run.
    expect(await webhooksReceivedToday(runtime)).toBe(receivedBefore);
    const { status, body } = await getSubscription(runtime, userId);
    expect(status).toBe(200);
    expect(body).toEqual(before);

    const restarted = sqsClient(runtime);
    const received = await restarted.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqOf(runtime).url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
      }),
    );
    restarted.destroy();
    expect(received.Messages?.map((m) => m.Body)).toEqual(['{"id":"evt_poison"}']);
    expect(received.Messages?.[0]?.MessageAttributes?.eventId?.StringValue).toBe('evt_poison');
    // Restored once: the snapshot is gone until the next stop writes a new one.
    expect(existsSync(join(dataDir, 'sqs', `${dlq.name}.json`))).toBe(false);
  }, 120_000);
});
