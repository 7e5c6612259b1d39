/**
 * The ingress → consumer message contract: the raw event JSON as the body, and the
 * routing facts as message attributes under these names. The SQS adapter writes
 * them, every consumer reads them back, and tests and the benchmark build messages
 * with them, so no side spells a name of its own.
 */
import type { SQSRecord } from 'aws-lambda';
import type { QueuedEvent } from '../core/shared/event-batch.ts';

export const EVENT_MESSAGE_ATTRIBUTES = {
  eventId: 'eventId',
  eventType: 'eventType',
  /** Epoch ms the webhook verified the signature (DataType Number). */
  receivedAt: 'receivedAt',
} as const;

/** Reads what the webhook put beside the body; absent attributes are fine (e.g. a redriven message). */
export function toQueuedEvent(record: SQSRecord): QueuedEvent {
  const receivedAt = Number(
    record.messageAttributes?.[EVENT_MESSAGE_ATTRIBUTES.receivedAt]?.stringValue,
  );
  return {
    recordId: record.messageId,
    body: record.body,
    receivedAt: Number.isFinite(receivedAt) && receivedAt > 0 ? receivedAt : undefined,
  };
}
