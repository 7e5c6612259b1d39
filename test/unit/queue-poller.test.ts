import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BatchOutcome,
  parseBatchItemFailures,
  type QueuePoller,
  type QueuePollerOptions,
  type SqsConsumerHandler,
  startQueuePoller,
} from '../../local/queue-poller.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';

let sqs: SQSClient;
const running: QueuePoller[] = [];

beforeAll(() => {
  sqs = emulatorClients().sqs;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop({ drainTimeoutMs: 5_000 })));
});
afterAll(() => sqs.destroy());

async function createQueue(
  attributes: Record<string, string> = {},
): Promise<{ url: string; arn: string }> {
  const out = await sqs.send(
    new CreateQueueCommand({ QueueName: uniqueName('poller'), Attributes: attributes }),
  );
  const url = out.QueueUrl!;
  const attrs = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return { url, arn: attrs.Attributes!.QueueArn! };
}

/** A main queue whose RedrivePolicy sends a message to a DLQ after `maxReceiveCount` receives. */
async function createQueueWithDlq(maxReceiveCount: number, visibilityTimeout = 1) {
  const dlq = await createQueue();
  const main = await createQueue({
    VisibilityTimeout: String(visibilityTimeout),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }),
  });
  return { main, dlq };
}

async function send(url: string, bodies: string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: bodies.slice(i, i + 10).map((body, j) => ({
          Id: String(j),
          MessageBody: body,
          MessageAttributes: { eventType: { DataType: 'String', StringValue: 'test.event' } },
        })),
      }),
    );
  }
}

async function counts(url: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible),
  };
}

async function drainBodies(url: string, waitSeconds = 2): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: bodies.length === 0 ? waitSeconds : 0,
        VisibilityTimeout: 60,
      }),
    );
    if (!out.Messages?.length) return bodies.sort();
    bodies.push(...out.Messages.map((m) => m.Body!));
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function poll(
  queue: { url: string; arn?: string },
  handler: SqsConsumerHandler,
  overrides: Partial<QueuePollerOptions['mapping']> & { timeoutSeconds?: number } = {},
  onBatch?: (outcome: BatchOutcome) => void,
): Promise<QueuePoller> {
  const { timeoutSeconds = 5, ...mapping } = overrides;
  const poller = await startQueuePoller({
    sqs,
    queueUrl: queue.url,
    ...(queue.arn ? { queueArn: queue.arn } : {}),
    mapping: {
      batchSize: 10,
      maximumBatchingWindowSeconds: 0,
      maximumConcurrency: 2,
      reportBatchItemFailures: true,
      ...mapping,
    },
    fn: { functionName: 'TestConsumer', timeoutSeconds },
    handler,
    ...(onBatch ? { onBatch } : {}),
  });
  running.push(poller);
  return poller;
}

describe('queue poller (Lambda SQS event source mapping)', () => {
  it('builds the SQS event Lambda sends, with the Lambda context', async () => {
    const queue = await createQueue();
    const events: SQSEvent[] = [];
    const remaining: number[] = [];
    const poller = await poll(queue, async (event, context) => {
      events.push(event);
      remaining.push(context.getRemainingTimeInMillis());
      expect(context.functionName).toBe('TestConsumer');
      expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    });
    await send(queue.url, ['{"hello":"world"}']);
    await waitFor(() => poller.stats().deleted === 1);

    const record = events[0]!.Records[0]!;
    const reference = JSON.parse(
      readFileSync(new URL('../fixtures/aws/sqs.aws-lambda-go.json', import.meta.url), 'utf8'),
    ).Records[0];
    expect(Object.keys(record).sort()).toEqual(Object.keys(reference).sort());
    expect(Object.keys(record.attributes).sort()).toEqual(Object.keys(reference.attributes).sort());
    expect(record).toMatchObject({
      body: '{"hello":"world"}',
      md5OfBody: createHash('md5').update('{"hello":"world"}').digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: queue.arn,
      awsRegion: queue.arn.split(':')[3],
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: {
        eventType: {
          stringValue: 'test.event',
          stringListValues: [],
          binaryListValues: [],
          dataType: 'String',
        },
      },
    });
    expect(Number(record.attributes.SentTimestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(remaining[0]).toBeGreaterThan(4_000);
    expect(remaining[0]).toBeLessThanOrEqual(5_000);
  });

  it('reads the queue ARN itself when not given', async () => {
    const queue = await createQueue();
    let arn = '';
    const poller = await poll({ url: queue.url }, async (event) => {
      arn = event.Records[0]!.eventSourceARN;
    });
    await send(queue.url, ['x']);
    await waitFor(() => poller.stats().deleted === 1);
    expect(arn).toBe(queue.arn);
  });

  it('on a partial batch failure deletes only the successes', async () => {
    const queue = await createQueue({ VisibilityTimeout: '3' });
    const bodies = ['ok-1', 'bad-1', 'ok-2', 'bad-2', 'ok-3'];
    await send(queue.url, bodies);
    const sizes: number[] = [];
    const poller = await poll(queue, async (event): Promise<SQSBatchResponse> => {
      sizes.push(event.Records.length);
      return {
        batchItemFailures: event.Records.filter((r) => r.body.startsWith('bad')).map((r) => ({
          itemIdentifier: r.messageId,
        })),
      };
    });
    await waitFor(() => poller.stats().records >= 5);
    await poller.stop();

    expect(poller.stats()).toMatchObject({ deleted: 3, retried: 2, failedBatches: 0 });
    expect(await counts(queue.url)).toEqual({ visible: 0, inFlight: 2 });
    // The failed ones come back after the visibility timeout; the successes never do.
    expect(await drainBodies(queue.url, 5)).toEqual(['bad-1', 'bad-2']);
  });

  it('moves a poison record to the DLQ after maxReceiveCount receives', async () => {
    const { main, dlq } = await createQueueWithDlq(2);
    const receiveCounts: string[] = [];
    const poller = await poll(main, async (event) => ({
      batchItemFailures: event.Records.filter((r) => {
        if (r.body !== 'poison') return false;
        receiveCounts.push(r.attributes.ApproximateReceiveCount);
        return true;
      }).map((r) => ({ itemIdentifier: r.messageId })),
    }));
    await send(main.url, ['poison', 'fine']);

    await waitFor(async () => (await counts(dlq.url)).visible === 1, 15_000);
    await poller.stop();
    expect(receiveCounts).toEqual(['1', '2']);
    expect(await drainBodies(dlq.url, 0)).toEqual(['poison']);
    expect(await counts(main.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('retries the whole batch when the handler throws', async () => {
    const queue = await createQueue({ VisibilityTimeout: '1' });
    await send(queue.url, ['a', 'b', 'c']);
    let calls = 0;
    const seen: string[][] = [];
    const poller = await poll(queue, async (event) => {
      calls += 1;
      seen.push(event.Records.map((r) => `${r.body}:${r.attributes.ApproximateReceiveCount}`));
      if (calls === 1) throw new Error('boom');
    });
    await waitFor(() => poller.stats().deleted === 3, 10_000);
    expect(poller.stats()).toMatchObject({ failedBatches: 1, deleted: 3 });
    expect(seen[0]!.sort()).toEqual(['a:1', 'b:1', 'c:1']);
    expect(seen.slice(1).flat().sort()).toEqual(['a:2', 'b:2', 'c:2']);
  });

  it('retries the whole batch when batchItemFailures names a record not in the batch', async () => {
    const queue = await createQueue({ VisibilityTimeout: '1' });
    await send(queue.url, ['a', 'b']);
    let calls = 0;
    const poller = await poll(queue, async () => {
      calls += 1;
      return calls === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] } : undefined;
    });
    await waitFor(() => poller.stats().deleted === 2, 10_000);
    expect(poller.stats()).toMatchObject({ failedBatches: 1, retried: 2, deleted: 2 });
  });

  it('retries the whole batch when the handler exceeds the function timeout', async () => {
    const queue = await createQueue({ VisibilityTimeout: '2' });
    await send(queue.url, ['slow']);
    let calls = 0;
    let firstError: unknown;
    const poller = await poll(
      queue,
      async () => {
        calls += 1;
        if (calls === 1) await new Promise((resolve) => setTimeout(resolve, 1_500));
      },
      { timeoutSeconds: 1 },
      (outcome) => {
        firstError ??= outcome.batchError;
      },
    );
    await waitFor(() => poller.stats().deleted === 1, 10_000);
    expect(calls).toBe(2);
    expect(String(firstError)).toMatch(/Task timed out after 1\.00 seconds/);
  });

  it('deletes everything when reportBatchItemFailures is off, whatever the response says', async () => {
    const queue = await createQueue({ VisibilityTimeout: '1' });
    await send(queue.url, ['a', 'b']);
    const poller = await poll(
      queue,
      async (event) => ({ batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] }),
      { reportBatchItemFailures: false },
    );
    await waitFor(() => poller.stats().records === 2);
    await poller.stop();
    expect(poller.stats()).toMatchObject({ deleted: 2, retried: 0 });
    expect(await counts(queue.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('never runs more batches at once than maximumConcurrency, and reaches it', async () => {
    const queue = await createQueue();
    await send(
      queue.url,
      Array.from({ length: 12 }, (_, i) => `m${i}`),
    );
    let active = 0;
    let peak = 0;
    const poller = await poll(
      queue,
      async () => {
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setTimeout(resolve, 80));
        active -= 1;
      },
      { batchSize: 1, maximumConcurrency: 3 },
    );
    await waitFor(() => poller.stats().deleted === 12, 10_000);
    expect(peak).toBe(3);
    expect(poller.stats().maxInFlight).toBe(3);
  });

  it('waits for the batching window to gather a batch', async () => {
    const queue = await createQueue();
    const batches: { size: number; at: number }[] = [];
    const poller = await poll(
      queue,
      async (event) => {
        batches.push({ size: event.Records.length, at: Date.now() });
      },
      { batchSize: 10, maximumBatchingWindowSeconds: 1 },
    );
    const sentAt = Date.now();
    await send(queue.url, ['a']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await send(queue.url, ['b', 'c']);
    await waitFor(() => poller.stats().deleted === 3, 5_000);
    expect(batches.map((b) => b.size)).toEqual([3]);
    expect(batches[0]!.at - sentAt).toBeGreaterThanOrEqual(950);
  });

  it('invokes as soon as batchSize is reached, before the window ends', async () => {
    const queue = await createQueue();
    const batches: { size: number; at: number }[] = [];
    const poller = await poll(
      queue,
      async (event) => {
        batches.push({ size: event.Records.length, at: Date.now() });
      },
      { batchSize: 3, maximumBatchingWindowSeconds: 10 },
    );
    const sentAt = Date.now();
    await send(queue.url, ['a', 'b', 'c']);
    await waitFor(() => poller.stats().deleted === 3, 5_000);
    expect(batches.map((b) => b.size)).toEqual([3]);
    expect(batches[0]!.at - sentAt).toBeLessThan(2_000);
  });

  it('gathers batches larger than 10 over several receives', async () => {
    const queue = await createQueue();
    await send(
      queue.url,
      Array.from({ length: 25 }, (_, i) => `m${i}`),
    );
    const sizes: number[] = [];
    const poller = await poll(
      queue,
      async (event) => {
        sizes.push(event.Records.length);
      },
      { batchSize: 25, maximumBatchingWindowSeconds: 1 },
    );
    await waitFor(() => poller.stats().deleted === 25, 5_000);
    expect(sizes).toEqual([25]);
  });

  it('stop() waits for in-flight batches', async () => {
    const queue = await createQueue();
    let finished = false;
    let started = false;
    const poller = await poll(queue, async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 400));
      finished = true;
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'x' }));
    await waitFor(() => started);
    expect(await poller.stop()).toBe(true);
    expect(finished).toBe(true);
    expect(poller.stats()).toMatchObject({ deleted: 1, inFlight: 0 });
  });

  it('stop() gives up waiting after drainTimeoutMs', async () => {
    const queue = await createQueue();
    let started = false;
    const poller = await poll(queue, async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 800));
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'x' }));
    await waitFor(() => started);
    expect(await poller.stop({ drainTimeoutMs: 100 })).toBe(false);
  });
});

describe('parseBatchItemFailures (Lambda response rules)', () => {
  const event = {
    Records: [{ messageId: 'm1' }, { messageId: 'm2' }],
  } as unknown as SQSEvent;

  it('treats no response and an empty list as full success', () => {
    expect(parseBatchItemFailures(undefined, event).size).toBe(0);
    expect(parseBatchItemFailures(null, event).size).toBe(0);
    expect(parseBatchItemFailures({}, event).size).toBe(0);
    expect(parseBatchItemFailures({ batchItemFailures: [] }, event).size).toBe(0);
  });

  it('returns the failed ids', () => {
    expect([
      ...parseBatchItemFailures({ batchItemFailures: [{ itemIdentifier: 'm2' }] }, event),
    ]).toEqual(['m2']);
  });

  it.each([
    [{ batchItemFailures: [{ itemIdentifier: '' }] }],
    [{ batchItemFailures: [{ itemIdentifier: null }] }],
    [{ batchItemFailures: [{}] }],
    [{ batchItemFailures: [{ itemIdentifier: 'm3' }] }],
    [{ batchItemFailures: 'm1' }],
    ['not an object'],
  ])('rejects %j', (response) => {
    expect(() => parseBatchItemFailures(response, event)).toThrow(/batch/i);
  });
});
