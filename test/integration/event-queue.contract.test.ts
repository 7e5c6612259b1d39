/**
 * One contract, two implementations: the in-memory event queue the intake tests use
 * must behave like the SQS adapter on the SQS emulator — one message per family send,
 * the body byte for byte, the routing facts as attributes, and a typed failure naming
 * the family when a queue refuses.
 */
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryEventQueue } from '../../functions/adapters/memory/in-memory-event-queue.ts';
import { SqsEventQueue } from '../../functions/adapters/sqs/sqs-event-queue.ts';
import { EVENT_MESSAGE_ATTRIBUTES } from '../../functions/commons/queue-message.ts';
import {
  EnqueueFailedError,
  type EventQueue,
  type VerifiedStripeEvent,
} from '../../functions/core/intake/ports.ts';
import {
  EVENT_FAMILIES,
  type EventFamilyName,
} from '../../functions/core/shared/event-families.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';
import { readStripeEventRaw } from '../helpers/fixtures.ts';

interface Harness {
  queue: EventQueue;
  /** The messages now in a family's queue, removed from it. */
  drain(family: EventFamilyName): Promise<VerifiedStripeEvent[]>;
  /** The same adapter with `family`'s queue refusing every send. */
  withUnavailable(family: EventFamilyName): EventQueue;
}

const { sqs } = emulatorClients();
const created: string[] = [];

async function sqsHarness(): Promise<Harness> {
  const urls = {} as Record<EventFamilyName, string>;
  for (const family of EVENT_FAMILIES) {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: uniqueName(`contract-${family}`) }),
    );
    urls[family] = QueueUrl!;
    created.push(QueueUrl!);
  }
  return {
    queue: new SqsEventQueue({ queueUrls: urls, client: sqs }),
    async drain(family) {
      const out: VerifiedStripeEvent[] = [];
      for (;;) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: urls[family],
            MaxNumberOfMessages: 10,
            MessageAttributeNames: ['All'],
            WaitTimeSeconds: 0,
          }),
        );
        if (Messages.length === 0) return out;
        for (const message of Messages) {
          const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue ?? '';
          out.push({
            body: message.Body ?? '',
            eventId: attribute(EVENT_MESSAGE_ATTRIBUTES.eventId),
            eventType: attribute(EVENT_MESSAGE_ATTRIBUTES.eventType),
            receivedAt: Number(attribute(EVENT_MESSAGE_ATTRIBUTES.receivedAt)),
          });
        }
      }
    },
    withUnavailable(family) {
      // Nothing listens on port 9: the SDK's connection fails, as an SQS outage would.
      const dead = new SQSClient({
        endpoint: 'http://127.0.0.1:9',
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        maxAttempts: 1,
      });
      const healthy = new SqsEventQueue({ queueUrls: urls, client: sqs });
      const broken = new SqsEventQueue({ queueUrls: urls, client: dead });
      return {
        enqueue: (event, target) => (target === family ? broken : healthy).enqueue(event, target),
      };
    },
  };
}

function memoryHarness(): Harness {
  const queue = new InMemoryEventQueue();
  return {
    queue,
    drain: async (family) => queue.drain(family),
    withUnavailable(family) {
      queue.unavailable.add(family);
      return queue;
    },
  };
}

afterAll(async () => {
  await Promise.allSettled(
    created.map((url) => sqs.send(new DeleteQueueCommand({ QueueUrl: url }))),
  );
});

describe.each([
  ['in-memory', async () => memoryHarness()],
  ['SQS emulator', sqsHarness],
] as const)('EventQueue contract: %s', (_name, makeHarness) => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await makeHarness();
  });

  const event = (eventId: string): VerifiedStripeEvent => ({
    body: readStripeEventRaw('charge.succeeded.zulip'),
    eventId,
    eventType: 'charge.succeeded',
    receivedAt: 1_750_000_000_123,
  });

  it('puts one message in the named family queue only, body and attributes exact', async () => {
    await harness.queue.enqueue(event('evt_contract_1'), 'payments');
    expect(await harness.drain('payments')).toEqual([event('evt_contract_1')]);
    expect(await harness.drain('subscriptions')).toEqual([]);
  });

  it('keeps each send: the same event to two families is one message in each', async () => {
    for (const family of EVENT_FAMILIES)
      await harness.queue.enqueue(event('evt_contract_2'), family);
    for (const family of EVENT_FAMILIES) {
      expect((await harness.drain(family)).map((m) => m.eventId)).toEqual(['evt_contract_2']);
    }
  });

  it('fails with EnqueueFailedError naming the family when its queue refuses', async () => {
    const failing = harness.withUnavailable('subscriptions');
    const attempt = failing.enqueue(event('evt_contract_3'), 'subscriptions');
    await expect(attempt).rejects.toBeInstanceOf(EnqueueFailedError);
    await expect(attempt).rejects.toThrow(/subscriptions/);
    await failing.enqueue(event('evt_contract_4'), 'payments');
    expect((await harness.drain('payments')).map((m) => m.eventId)).toEqual(['evt_contract_4']);
    expect(await harness.drain('subscriptions')).toEqual([]);
  });
});
