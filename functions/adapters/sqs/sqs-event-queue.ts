/**
 * The event queue on SQS: one SendMessage per verified event, carrying the raw
 * event JSON as the body and the routing facts as message attributes (the
 * ingress → consumer contract). Retries are the SDK's standard mode, bounded by
 * the client's `maxAttempts`; whatever still fails becomes `EnqueueFailedError`.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { defaultSqsClient } from '../../commons/aws-clients.ts';
import {
  EnqueueFailedError,
  type EventQueue,
  type VerifiedStripeEvent,
} from '../../core/webhook-intake.ts';

/** Message attribute names; the consumer reads these. */
export const EVENT_MESSAGE_ATTRIBUTES = {
  eventId: 'eventId',
  eventType: 'eventType',
  receivedAt: 'receivedAt',
} as const;

export interface SqsEventQueueOptions {
  queueUrl: string;
  /** Default: the shared client (bounded timeouts, standard retries). */
  client?: SQSClient;
}

export class SqsEventQueue implements EventQueue {
  readonly #queueUrl: string;
  readonly #client: SQSClient | undefined;

  constructor(options: SqsEventQueueOptions) {
    this.#queueUrl = options.queueUrl;
    this.#client = options.client;
  }

  async enqueue(event: VerifiedStripeEvent): Promise<void> {
    const client = this.#client ?? defaultSqsClient();
    try {
      await client.send(
        new SendMessageCommand({
          QueueUrl: this.#queueUrl,
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
      throw new EnqueueFailedError(`SendMessage to the event queue failed (${errorName(error)}).`, {
        cause: error,
      });
    }
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'unknown error';
}
