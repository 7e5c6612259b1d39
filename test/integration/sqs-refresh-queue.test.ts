/**
 * The credit refresh queue on the SQS emulator: 25 users a message, 10 messages a
 * SendMessageBatch call, bodies that parse back to the work sent; and, with a scripted
 * client, the resending of a batch's failed entries and the error when they keep failing.
 */
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  type SendMessageBatchCommandOutput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  decodeRefreshMessage,
  RefreshEnqueueError,
  SqsRefreshQueue,
} from '../../functions/adapters/sqs/sqs-refresh-queue.ts';
import type { RefreshWork } from '../../functions/core/credits/ports.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';

const { sqs } = emulatorClients();
let queueUrl: string;

beforeAll(async () => {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: uniqueName('credit-refresh') }),
  );
  queueUrl = QueueUrl!;
});

afterAll(async () => {
  await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
});

const work = (count: number, prefix = 'user'): RefreshWork[] =>
  Array.from({ length: count }, (_, n) => ({
    userId: `${prefix}-${n}`,
    tier: (['free', 'bronze', 'silver', 'gold'] as const)[n % 4]!,
    period: '2031-05-06',
    slot: n % 288,
    plannedAt: 1_900_000_000_000 + n,
  }));

/** Every message now in the queue, removed from it. */
async function drain(): Promise<string[]> {
  const bodies: string[] = [];
  for (let empty = 0; empty < 2; ) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 60,
      }),
    );
    if (Messages.length === 0) empty++;
    bodies.push(...Messages.map((message) => message.Body ?? ''));
  }
  return bodies;
}

describe('SqsRefreshQueue on the SQS emulator', () => {
  it('sends 250 users a call (10 messages of 25) and a 251st in a second call; bodies parse back', async () => {
    const send = vi.spyOn(sqs, 'send');
    const queue = new SqsRefreshQueue({ queueUrl, client: sqs });
    const sent = work(251);
    await queue.enqueue(sent);
    const batches = send.mock.calls
      .map(([command]) => command)
      .filter((command) => command instanceof SendMessageBatchCommand)
      .map((command) => command.input as SendMessageBatchCommandInput);
    send.mockRestore();
    expect(batches.map((batch) => batch.Entries?.length)).toEqual([10, 1]);

    const bodies = await drain();
    expect(bodies).toHaveLength(11);
    const messages = bodies.map(decodeRefreshMessage);
    expect(messages.map((users) => users.length).sort((a, b) => b - a)).toEqual([
      ...Array(10).fill(25),
      1,
    ]);
    const received = messages.flat().sort((a, b) => a.plannedAt - b.plannedAt);
    expect(received).toEqual(sent);
    // Each message is the raw JSON array of the work.
    expect(JSON.parse(bodies[0]!)).toEqual(messages[0]);
  });

  it('enqueues nothing for no work', async () => {
    const send = vi.spyOn(sqs, 'send');
    await new SqsRefreshQueue({ queueUrl, client: sqs }).enqueue([]);
    expect(send).not.toHaveBeenCalled();
    send.mockRestore();
  });

  it('fails with RefreshEnqueueError when the queue cannot be reached', async () => {
    // Nothing listens on port 9: the call fails as an SQS outage would.
    const dead = new SQSClient({
      endpoint: 'http://127.0.0.1:9',
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
    const attempt = new SqsRefreshQueue({ queueUrl, client: dead }).enqueue(work(30));
    await expect(attempt).rejects.toBeInstanceOf(RefreshEnqueueError);
    await expect(attempt).rejects.toMatchObject({ failedUsers: 30 });
    await expect(attempt).rejects.toThrow(/30 of 30 users could not be queued/);
  });
});

describe('SqsRefreshQueue: failed entries of a batch', () => {
  /**
   * A client whose SendMessageBatch calls fail the entry ids `script` gives for each
   * call in turn (ids not in the call are ignored); `senderFault` ids fail as the sender's.
   */
  function scripted(script: string[][], senderFault: readonly string[] = []) {
    const inputs: SendMessageBatchCommandInput[] = [];
    const client = {
      send: vi.fn(async (command: SendMessageBatchCommand) => {
        const input = command.input;
        inputs.push(input);
        const ids = (input.Entries ?? []).map((entry) => entry.Id!);
        const failIds = (script[inputs.length - 1] ?? []).filter((id) => ids.includes(id));
        const output: Partial<SendMessageBatchCommandOutput> = {
          Successful: ids
            .filter((id) => !failIds.includes(id))
            .map((Id) => ({ Id, MessageId: `m-${Id}`, MD5OfMessageBody: '' })),
          Failed: failIds.map((Id) => ({
            Id,
            SenderFault: senderFault.includes(Id),
            Code: senderFault.includes(Id) ? 'InvalidMessageContents' : 'InternalError',
            Message: 'try again',
          })),
        };
        return output;
      }),
    } as unknown as SQSClient;
    return { client, inputs };
  }

  it('resends only the failed entries, with a pause, until they are accepted', async () => {
    const { client, inputs } = scripted([['2', '7'], ['7'], []]);
    const queue = new SqsRefreshQueue({ queueUrl, client, backoffBaseMs: 1 });
    await queue.enqueue(work(250));
    expect(inputs.map((input) => input.Entries?.map((entry) => entry.Id))).toEqual([
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      ['2', '7'],
      ['7'],
    ]);
    // The resent bodies are the original messages 2 and 7.
    expect(decodeRefreshMessage(inputs[2]!.Entries![0]!.MessageBody!)[0]?.userId).toBe('user-175');
  });

  it('gives up after the retries with an error naming the users not queued', async () => {
    const { client, inputs } = scripted(Array(10).fill(['3']));
    const queue = new SqsRefreshQueue({ queueUrl, client, retries: 2, backoffBaseMs: 1 });
    const attempt = queue.enqueue(work(260));
    await expect(attempt).rejects.toBeInstanceOf(RefreshEnqueueError);
    await expect(attempt).rejects.toMatchObject({
      failedUsers: 25,
      failures: [{ code: 'InternalError', message: 'try again', senderFault: false }],
    });
    await expect(attempt).rejects.toThrow(/25 of 260 users could not be queued.*InternalError/);
    // The first batch: sent, then its failed entry resent twice; the second batch once.
    expect(
      inputs.filter((input) => input.Entries?.length === 1 && input.Entries[0]?.Id === '3'),
    ).toHaveLength(2);
  });

  it('does not resend an entry the sender is at fault for', async () => {
    const { client, inputs } = scripted([['0', '1'], []], ['0']);
    const queue = new SqsRefreshQueue({ queueUrl, client, backoffBaseMs: 1 });
    const attempt = queue.enqueue(work(40));
    await expect(attempt).rejects.toMatchObject({
      failedUsers: 25,
      failures: [{ code: 'InvalidMessageContents', senderFault: true }],
    });
    // Entry 1 (retryable) was resent alone; entry 0 never.
    expect(inputs.map((input) => input.Entries?.map((entry) => entry.Id))).toEqual([
      ['0', '1'],
      ['1'],
    ]);
  });
});
