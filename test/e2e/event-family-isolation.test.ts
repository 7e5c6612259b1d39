/**
 * Event family isolation at run time (DESIGN §8.1, the payments issue: "a flood or a
 * poison record of one event family must not delay the other"). The template tests
 * prove the structure (a queue, DLQ, consumer, batch size and concurrency per family);
 * these prove the behaviour, through the local runtime over HTTP with signed payloads
 * built from the captured fixtures, the runtime's own pollers and the real emulators:
 *
 * - a payment event the payment consumer cannot apply is retried and dead-lettered in
 *   the payments DLQ, while subscription events sent with it and after it are applied
 *   as it keeps failing; the subscriptions DLQ stays empty;
 * - the same the other way round;
 * - a backlog of payment events does not hold back a subscription event sent right
 *   after it: the subscription shows while the backlog is still draining.
 *
 * The poison tests shorten the event queue's visibility timeout while they run (set on
 * the emulator's queue, restored after): with the template's 182 s, the five receives
 * before the DLQ would take a quarter of an hour. Receive count, DLQ and consumer
 * settings stay the template's. The flood test runs on the template's settings as they are.
 */
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_MESSAGE_ATTRIBUTES } from '../../functions/commons/queue-message.ts';
import type { EventFamilyName } from '../../functions/core/shared/event-families.ts';
import { queuedEventJson } from '../../functions/core/shared/personal-data.ts';
import { localSqsClient } from '../../local/emulators.ts';
import { describeLocalRuntime } from '../../local/operations/target.ts';
import type { QueuePollerStats } from '../../local/queue-poller.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import {
  loadFixtureEvent,
  restampEvent,
  type StripeEventJson,
  sampleIds,
} from '../../local/send-sample.ts';
import {
  disputeCreatedEvent,
  fixturePayment,
  intentSucceededEvent,
  type PaymentEventBody,
} from '../helpers/payment-fixture-events.ts';
import { eventually, getJson, postWebhook, uniqueUserId } from './e2e-helpers.ts';

/** Seconds a received poison message stays hidden in the poison tests (template: 182). */
const FAST_RETRY_VISIBILITY_SECONDS = 3;

interface FamilyQueues {
  url: string;
  deadLetterUrl: string;
}

describe('event family isolation through the local runtime', () => {
  let runtime: LocalRuntime;
  let sqs: SQSClient;
  let queues: Record<EventFamilyName, FamilyQueues>;

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      port: 0,
      inMemory: true,
      logLevel: 'silent',
      // Nothing but the events these tests send: no credit planner run in between.
      schedules: false,
      opsPage: false,
    });
    sqs = localSqsClient(runtime.sqsEndpoint);
    const target = describeLocalRuntime(runtime);
    const family = (name: EventFamilyName): FamilyQueues => {
      const url = target.eventQueues[name];
      const consumed = target.consumedQueues.find((q) => q.url === url);
      if (!consumed) throw new Error(`no consumed queue for the ${name} family`);
      return { url, deadLetterUrl: consumed.deadLetter.url };
    };
    queues = { subscriptions: family('subscriptions'), payments: family('payments') };
    // Two families, two queues, two DLQs, two consumers: what the rest relies on.
    expect(queues.subscriptions.url).not.toBe(queues.payments.url);
    expect(queues.subscriptions.deadLetterUrl).not.toBe(queues.payments.deadLetterUrl);
    expect(consumerOf('subscriptions').functionLogicalId).not.toBe(
      consumerOf('payments').functionLogicalId,
    );
  });
  afterEach(async () => {
    if (!queues) return;
    // What a test dead-lettered is looked at by then, as an operator would, and removed.
    await clearDeadLetters(queues.payments.deadLetterUrl);
    await clearDeadLetters(queues.subscriptions.deadLetterUrl);
  });
  afterAll(async () => {
    sqs?.destroy();
    await runtime?.stop();
  });

  function consumerOf(family: EventFamilyName) {
    const consumer = runtime.consumers.find((c) => c.queueUrl === queues[family].url);
    if (!consumer) throw new Error(`no consumer polls the ${family} queue`);
    return consumer;
  }

  /** Receives before the family queue's redrive policy moves a message to its DLQ. */
  function maxReceivesOf(family: EventFamilyName): number {
    const queue = runtime.model.queues.find(
      (q) => runtime.queueUrls[q.logicalId] === queues[family].url,
    );
    const count = queue?.deadLetter?.maxReceiveCount;
    if (!count) throw new Error(`the ${family} queue has no redrive policy`);
    return count;
  }

  /** The family consumer's counters since `since` was taken. */
  function statsSince(family: EventFamilyName, since: QueuePollerStats) {
    const now = consumerOf(family).stats();
    return { deleted: now.deleted - since.deleted, retried: now.retried - since.retried };
  }

  /** Messages in a queue, waiting and in flight (a message being retried is in flight). */
  async function depth(url: string): Promise<number> {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  }

  /** Messages waiting in a queue: not received yet (or back after a failed receive). */
  async function waiting(url: string): Promise<number> {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    );
    return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
  }

  /** The DLQ's messages, left where they are (received with no visibility timeout). */
  async function peek(url: string): Promise<Message[]> {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 0,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    return out.Messages ?? [];
  }

  const eventIdOf = (message: Message) =>
    message.MessageAttributes?.[EVENT_MESSAGE_ATTRIBUTES.eventId]?.StringValue;

  /** Empties a DLQ. */
  async function clearDeadLetters(url: string): Promise<void> {
    for (;;) {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (!out.Messages?.length) return;
      for (const message of out.Messages) {
        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }),
        );
      }
    }
  }

  /** Runs `work` with the family queue's visibility timeout shortened, then restores it. */
  async function withFastRetries<T>(family: EventFamilyName, work: () => Promise<T>): Promise<T> {
    const url = queues[family].url;
    const before = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout'] }),
    );
    const original = before.Attributes?.VisibilityTimeout;
    if (!original) throw new Error(`${family} queue has no visibility timeout`);
    await sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: url,
        Attributes: { VisibilityTimeout: String(FAST_RETRY_VISIBILITY_SECONDS) },
      }),
    );
    try {
      return await work();
    } finally {
      await sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: url,
          Attributes: { VisibilityTimeout: original },
        }),
      );
    }
  }

  async function deliver(...events: Array<StripeEventJson | PaymentEventBody>): Promise<void> {
    const answers = await Promise.all(events.map((event) => postWebhook(runtime, event)));
    expect(answers.map((answer) => answer.status)).toEqual(events.map(() => 200));
  }

  /** `customer.subscription.created` (captured fixture) for a new user. */
  function subscriptionCreated(userId: string): StripeEventJson {
    return restampEvent(loadFixtureEvent('customer.subscription.created.stripe-sync-engine'), {
      userId,
      tier: 'gold',
    });
  }

  /** Waits until the read API shows the user's sample subscription. */
  async function subscriptionShows(userId: string, timeoutMs = 20_000): Promise<void> {
    const { subscriptionId } = sampleIds(userId);
    await eventually(
      async () => {
        const { status, body } = await getJson(
          runtime,
          `/users/${encodeURIComponent(userId)}/subscription`,
        );
        return status === 200 && body.subscriptionId === subscriptionId ? true : undefined;
      },
      timeoutMs,
      `the subscription of ${userId}`,
    );
  }

  /** A succeeded payment of a new PaymentIntent (captured 2020-era fixture). */
  function paymentSucceeded(userId: string): { event: PaymentEventBody; paymentId: string } {
    const created = Math.floor(Date.now() / 1000);
    const payment = fixturePayment({ created, chargeCreated: created, userId });
    return { event: intentSucceededEvent(payment), paymentId: payment.paymentId };
  }

  /** Queues payment events as the webhook does (same body and attributes), ten a request. */
  async function enqueuePayments(events: readonly PaymentEventBody[]): Promise<void> {
    const receivedAt = String(Date.now());
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queues.payments.url,
        Entries: events.map((event, index) => ({
          Id: String(index),
          MessageBody: queuedEventJson(event, JSON.stringify(event, null, 2)),
          MessageAttributes: {
            [EVENT_MESSAGE_ATTRIBUTES.eventId]: { DataType: 'String', StringValue: event.id },
            [EVENT_MESSAGE_ATTRIBUTES.eventType]: { DataType: 'String', StringValue: event.type },
            [EVENT_MESSAGE_ATTRIBUTES.receivedAt]: { DataType: 'Number', StringValue: receivedAt },
          },
        })),
      }),
    );
    expect(out.Failed ?? []).toEqual([]);
  }

  async function paymentShows(paymentId: string, timeoutMs = 20_000): Promise<void> {
    await eventually(
      async () => {
        const { status, body } = await getJson(runtime, `/payments/${paymentId}`);
        return status === 200 && body.status === 'succeeded' ? true : undefined;
      },
      timeoutMs,
      `payment ${paymentId}`,
    );
  }

  it('a payment event the consumer cannot apply ends in the payments DLQ; subscriptions sent with it and after it are applied meanwhile', async () => {
    await withFastRetries('payments', async () => {
      const maxReceives = maxReceivesOf('payments');
      expect(await depth(queues.payments.deadLetterUrl)).toBe(0);
      expect(await depth(queues.subscriptions.deadLetterUrl)).toBe(0);
      const payments0 = consumerOf('payments').stats();
      const subscriptions0 = consumerOf('subscriptions').stats();

      // A dispute whose payload names neither its charge nor its PaymentIntent: the
      // consumer cannot key it to a payment, so every delivery fails that record.
      const created = Math.floor(Date.now() / 1000);
      const poison = disputeCreatedEvent(fixturePayment({ created }), created);
      Object.assign(poison.data.object, { charge: null, payment_intent: null });
      const healthy = paymentSucceeded(uniqueUserId('iso-pay'));
      const withIt = uniqueUserId('iso-with');
      await deliver(poison, healthy.event, subscriptionCreated(withIt));

      // The subscription sent with the poison shows while the poison is still on the
      // payments queue, not yet dead-lettered (the healthy payment's message may be
      // there too, its batch not yet deleted).
      await subscriptionShows(withIt);
      expect(await depth(queues.payments.deadLetterUrl)).toBe(0);
      expect(await depth(queues.payments.url)).toBeGreaterThanOrEqual(1);
      expect(statsSince('payments', payments0).retried).toBeLessThan(maxReceives);
      // The healthy payment of the same delivery was applied: only the poison record fails.
      await paymentShows(healthy.paymentId);

      // Once the poison has failed, a subscription sent after it is applied too.
      await eventually(
        async () => (statsSince('payments', payments0).retried >= 1 ? true : undefined),
        20_000,
        'the poison to fail once',
      );
      const after = uniqueUserId('iso-after');
      await deliver(subscriptionCreated(after));
      await subscriptionShows(after);
      expect(await depth(queues.payments.deadLetterUrl)).toBe(0);
      expect(await depth(queues.payments.url)).toBe(1);

      // The poison ends in the payments DLQ after the redrive policy's receives, alone.
      const dead = await eventually(
        async () => {
          const messages = await peek(queues.payments.deadLetterUrl);
          return messages.length > 0 ? messages : undefined;
        },
        40_000,
        'the poison in the payments DLQ',
      );
      expect(dead.map(eventIdOf)).toEqual([poison.id]);
      expect(statsSince('payments', payments0)).toEqual({ deleted: 1, retried: maxReceives });
      expect(await depth(queues.payments.url)).toBe(0);
      // Nothing of the subscriptions family failed.
      expect(statsSince('subscriptions', subscriptions0)).toEqual({ deleted: 2, retried: 0 });
      expect(await depth(queues.subscriptions.deadLetterUrl)).toBe(0);
    });
  }, 60_000);

  it('a subscription event the consumer cannot apply ends in the subscriptions DLQ; payments sent with it and after it are applied meanwhile', async () => {
    await withFastRetries('subscriptions', async () => {
      const maxReceives = maxReceivesOf('subscriptions');
      expect(await depth(queues.payments.deadLetterUrl)).toBe(0);
      expect(await depth(queues.subscriptions.deadLetterUrl)).toBe(0);
      const payments0 = consumerOf('payments').stats();
      const subscriptions0 = consumerOf('subscriptions').stats();

      // A subscription update that names no customer: nothing to apply it to.
      const poison = restampEvent(
        loadFixtureEvent('customer.subscription.updated.stripe-sync-engine'),
        { userId: uniqueUserId('iso-poison') },
      );
      poison.data.object.customer = null;
      const withIt = paymentSucceeded(uniqueUserId('iso-with'));
      await deliver(poison, withIt.event);

      await paymentShows(withIt.paymentId);
      expect(await depth(queues.subscriptions.deadLetterUrl)).toBe(0);
      expect(await depth(queues.subscriptions.url)).toBe(1);
      expect(statsSince('subscriptions', subscriptions0).retried).toBeLessThan(maxReceives);

      await eventually(
        async () => (statsSince('subscriptions', subscriptions0).retried >= 1 ? true : undefined),
        20_000,
        'the poison to fail once',
      );
      const after = paymentSucceeded(uniqueUserId('iso-after'));
      await deliver(after.event);
      await paymentShows(after.paymentId);
      expect(await depth(queues.subscriptions.deadLetterUrl)).toBe(0);
      expect(await depth(queues.subscriptions.url)).toBe(1);

      const dead = await eventually(
        async () => {
          const messages = await peek(queues.subscriptions.deadLetterUrl);
          return messages.length > 0 ? messages : undefined;
        },
        40_000,
        'the poison in the subscriptions DLQ',
      );
      expect(dead.map(eventIdOf)).toEqual([poison.id]);
      expect(statsSince('subscriptions', subscriptions0)).toEqual({
        deleted: 0,
        retried: maxReceives,
      });
      expect(await depth(queues.subscriptions.url)).toBe(0);
      expect(statsSince('payments', payments0)).toEqual({ deleted: 2, retried: 0 });
      expect(await depth(queues.payments.deadLetterUrl)).toBe(0);
    });
  }, 60_000);

  it('a subscription event sent right after a flood of payment events shows while the flood is still draining', async () => {
    // As many payment events as the payment consumer may hold at once (its maximum
    // concurrency times its batch size, from the template): every batch it may run is
    // full when the subscription event arrives, and the flood takes several seconds to
    // drain, where a lone subscription event takes about its batching window.
    const mapping = runtime.model.queueConsumers.find(
      (c) => runtime.queueUrls[c.queueLogicalId] === queues.payments.url,
    );
    if (!mapping) throw new Error('no event source mapping on the payments queue');
    const floodSize = mapping.maximumConcurrency * mapping.batchSize;
    const payments0 = consumerOf('payments').stats();
    const subscriptions0 = consumerOf('subscriptions').stats();
    const floodUser = uniqueUserId('iso-flood');
    const flood = Array.from({ length: floodSize }, (_, i) =>
      paymentSucceeded(`${floodUser}-${i}`),
    );

    // Queued straight onto the payments queue, as the webhook queues them: the route's
    // throttle (100 a second) would let them in slower than the consumer drains them.
    const requests: PaymentEventBody[][] = [];
    for (let i = 0; i < flood.length; i += 10) {
      requests.push(flood.slice(i, i + 10).map((payment) => payment.event));
    }
    const startedAt = Date.now();
    for (let i = 0; i < requests.length; i += 10) {
      await Promise.all(requests.slice(i, i + 10).map(enqueuePayments));
    }
    const enqueuedAt = Date.now();

    const userId = uniqueUserId('iso-after-flood');
    await deliver(subscriptionCreated(userId));
    await subscriptionShows(userId, 30_000);
    const shownAt = Date.now();
    const appliedWhenShown = statsSince('payments', payments0).deleted;
    const waitingWhenShown = await waiting(queues.payments.url);
    const queuedWhenShown = await depth(queues.payments.url);
    const timeline = () =>
      `flood of ${floodSize} queued in ${enqueuedAt - startedAt} ms; subscription shown ${shownAt - enqueuedAt} ms later, when ${appliedWhenShown} payments were applied, ${queuedWhenShown} still queued, of which ${waitingWhenShown} not yet received`;
    // It did not wait behind the flood: payments were still queued, not all applied.
    expect(appliedWhenShown, timeline()).toBeLessThan(floodSize);
    expect(queuedWhenShown, timeline()).toBeGreaterThan(0);

    // The flood was real work and did drain: every payment applied once, none failed.
    await eventually(
      async () => (statsSince('payments', payments0).deleted >= floodSize ? true : undefined),
      40_000,
      `the flood to drain (${timeline()})`,
    );
    expect(statsSince('payments', payments0)).toEqual({ deleted: floodSize, retried: 0 });
    expect(statsSince('subscriptions', subscriptions0)).toEqual({ deleted: 1, retried: 0 });
    expect(await depth(queues.payments.url)).toBe(0);
    expect(await depth(queues.payments.deadLetterUrl)).toBe(0);
    await paymentShows(flood[0]!.paymentId);
    await paymentShows(flood.at(-1)!.paymentId);
  }, 60_000);
});
