/**
 * The event queues on SQS, one per event family: one SendMessage per verified event
 * and family, carrying the raw event JSON as the body and the routing facts as
 * message attributes (commons/queue-message.ts). Retries are the SDK's standard mode,
 * bounded by the client's `maxAttempts`; whatever still fails becomes `EnqueueFailedError`.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { defaultSqsClient } from '../../commons/aws-clients.ts';
import { EVENT_MESSAGE_ATTRIBUTES } from '../../commons/queue-message.ts';
import {
  EnqueueFailedError,
  type EventQueue,
  type VerifiedStripeEvent,
} from '../../core/intake/ports.ts';
import type { EventFamilyName } from '../../core/shared/event-families.ts';

export interface SqsEventQueueOptions {
  /** The queue URL of each family. */
  queueUrls: Readonly<Record<EventFamilyName, string>>;
  /** Default: the shared client (bounded timeouts, standard retries). */
  client?: SQSClient;
}

export class SqsEventQueue implements EventQueue {
  readonly #queueUrls: Readonly<Record<EventFamilyName, string>>;
  readonly #client: SQSClient | undefined;

  constructor(options: SqsEventQueueOptions) {
    this.#queueUrls = options.queueUrls;
    this.#client = options.client;
  }

  async enqueue(event: VerifiedStripeEvent, family: EventFamilyName): Promise<void> {
    const client = this.#client ?? defaultSqsClient();
    try {
      await client.send(
        new SendMessageCommand({
          QueueUrl: this.#queueUrls[family],
          MessageBody: event.body,
          MessageAttributes: {
            [EVENT_MESSAGE_ATTRIBUTES.eventId]: { DataType: 'String', StringValue: event.eventId },
            [EVENT_MESSAGE_ATTRIBUTES.eventType]: {
              DataType: 'String',
              StringValue: event.eventType,
            },
            [EVENT_MESSAGE_ATTRIBUTES.receivedAt]: {
              DataType: 'Number',
              StringValue: String(event.receivedAt),
            },
          },
        }),
      );
    } catch (error) {
      throw new EnqueueFailedError(
        `SendMessage to the ${family} event queue failed (${errorName(error)}).`,
        { cause: error },
      );
    }
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'unknown error';
}
