/**
 * DLQ operations on SQS: depths, a peek that consumes nothing, and a redrive that
 * moves messages back to the queue they failed from. A redrive sends a batch to the
 * source first and deletes it from the DLQ only once sent, so an interruption leaves a
 * message in both (a duplicate, which the consumers' exactly-once rule absorbs), never
 * in neither. Body and message attributes travel unchanged.
 *
 * A schedule's DLQ has no queue to go back to: its messages are held (received, kept
 * hidden) while the schedule's work runs again, and deleted only once it succeeded
 * (`holdMessages`).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { ConsumedQueue, NamedQueue } from './target.ts';

export interface QueueDepth {
  /** Messages waiting. */
  visible: number;
  /** Messages received and not yet deleted (being processed, or a peek/redrive in flight). */
  inFlight: number;
}

export async function queueDepth(sqs: SQSClient, queue: NamedQueue): Promise<QueueDepth> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queue.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

export interface PeekedMessage {
  eventId: string | null;
  eventType: string | null;
  receiveCount: number;
  bytes: number;
}

/** Up to `count` (≤ 10) messages of `queue`, made visible again at once: nothing consumed. */
export async function peek(
  sqs: SQSClient,
  queue: NamedQueue,
  count: number,
): Promise<PeekedMessage[]> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queue.url,
      MaxNumberOfMessages: Math.min(10, Math.max(1, count)),
      VisibilityTimeout: 5,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }),
  );
  // Visible again at once (a short timeout above, in case this process dies first).
  await Promise.all(
    Messages.map((message) =>
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queue.url,
          ReceiptHandle: message.ReceiptHandle!,
          VisibilityTimeout: 0,
        }),
      ),
    ),
  );
  return Messages.map((message) => {
    const fromBody = eventOf(message.Body);
    return {
      eventId: message.MessageAttributes?.eventId?.StringValue ?? fromBody.id,
      eventType: message.MessageAttributes?.eventType?.StringValue ?? fromBody.type,
      receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? 0),
      bytes: Buffer.byteLength(message.Body ?? ''),
    };
  });
}

/** The event id and type of a message sent without attributes (another producer). */
function eventOf(body: string | undefined): { id: string | null; type: string | null } {
  try {
    const parsed = JSON.parse(body ?? '') as { id?: unknown; type?: unknown };
    return {
      id: typeof parsed.id === 'string' ? parsed.id : null,
      type: typeof parsed.type === 'string' ? parsed.type : null,
    };
  } catch {
    return { id: null, type: null };
  }
}

export interface RedriveOptions {
  /** Most messages to move. Default: all. */
  max?: number;
  /** How long a received batch stays hidden while it is moved. Default 60 s. */
  visibilitySeconds?: number;
  onProgress?: (moved: number) => void;
  /** Test hook: runs after a batch is sent and before it is deleted from the DLQ. */
  afterSend?: (batch: readonly Message[]) => Promise<void> | void;
  /**
   * Messages sent back but not deleted from the DLQ (SQS refused the delete): visible
   * there again after the timeout, so a later redrive sends them twice.
   */
  onNotDeleted?: (messages: readonly { messageId: string; code: string }[]) => void;
}

/** SQS's cap on the payload of one SendMessageBatch (bodies and attributes together). */
export const SEND_BATCH_MAX_BYTES = 256 * 1024;

/** A message's payload as SQS counts it against the batch cap: body, attribute names, types and values. */
function payloadBytes(message: Message): number {
  let bytes = Buffer.byteLength(message.Body ?? '');
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '');
    bytes += Buffer.byteLength(value.StringValue ?? '') + (value.BinaryValue?.byteLength ?? 0);
  }
  return bytes;
}

/**
 * Sends `messages` with as few SendMessageBatch calls as their sizes allow: ten events
 * of up to the webhook's 240 KB would be refused as one batch (BatchRequestTooLong).
 * Returns the indexes sent and the codes of those refused.
 */
async function sendInBatches(
  sqs: SQSClient,
  queueUrl: string,
  messages: readonly Message[],
): Promise<{ successful: number[]; failed: string[] }> {
  const groups: number[][] = [];
  let bytes = 0;
  messages.forEach((message, index) => {
    const size = payloadBytes(message);
    const current = groups.at(-1);
    if (!current || bytes + size > SEND_BATCH_MAX_BYTES) {
      groups.push([index]);
      bytes = size;
    } else {
      current.push(index);
      bytes += size;
    }
  });
  const successful: number[] = [];
  const failed: string[] = [];
  for (const group of groups) {
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: group.map((index) => {
          const message = messages[index]!;
          return {
            Id: String(index),
            MessageBody: message.Body ?? '',
            ...(message.MessageAttributes
              ? { MessageAttributes: sendable(message.MessageAttributes) }
              : {}),
          };
        }),
      }),
    );
    successful.push(...(sent.Successful ?? []).map((entry) => Number(entry.Id)));
    failed.push(...(sent.Failed ?? []).map((entry) => entry.Code ?? 'refused'));
  }
  return { successful, failed };
}

/** Moves messages from `queue.deadLetter` back to `queue`; the count moved. */
export async function redrive(
  sqs: SQSClient,
  queue: ConsumedQueue,
  options: RedriveOptions = {},
): Promise<number> {
  const max = options.max ?? Number.POSITIVE_INFINITY;
  let moved = 0;
  let emptyPolls = 0;
  // Two empty receives in a row: the DLQ is drained (SQS may answer one empty at random).
  while (moved < max && emptyPolls < 2) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.deadLetter.url,
        MaxNumberOfMessages: Math.min(10, max - moved),
        VisibilityTimeout: options.visibilitySeconds ?? 60,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) {
      emptyPolls += 1;
      continue;
    }
    emptyPolls = 0;
    const sent = await sendInBatches(sqs, queue.url, Messages);
    const delivered = sent.successful.map((index) => Messages[index]!);
    await options.afterSend?.(delivered);
    if (delivered.length > 0) {
      const deleted = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue.deadLetter.url,
          Entries: delivered.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle!,
          })),
        }),
      );
      // Already in the source queue: a duplicate later, which the consumers absorb, but said.
      const notDeleted = (deleted?.Failed ?? []).map((entry) => ({
        messageId: delivered[Number(entry.Id)]?.MessageId ?? '?',
        code: entry.Code ?? 'refused',
      }));
      if (notDeleted.length > 0) options.onNotDeleted?.(notDeleted);
    }
    moved += delivered.length;
    options.onProgress?.(moved);
    // A message SQS refused to send stays in the DLQ (visible again after the timeout).
    if (sent.failed.length) {
      throw new Error(
        `SQS refused ${sent.failed.length} message(s) for ${queue.name} (${sent.failed[0]}); they stay in ${queue.deadLetter.name}.`,
      );
    }
  }
  return moved;
}

/** Received attributes as SendMessage takes them (string and binary values only). */
function sendable(
  attributes: Record<string, MessageAttributeValue>,
): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      {
        DataType: value.DataType,
        ...(value.StringValue !== undefined ? { StringValue: value.StringValue } : {}),
        ...(value.BinaryValue !== undefined ? { BinaryValue: value.BinaryValue } : {}),
      },
    ]),
  );
}

/** The messages of a DLQ received and kept hidden: deleted, or released, as one. */
export interface HeldMessages {
  /** How many are held. */
  readonly count: number;
  /** Deletes them by receipt handle; the count deleted (a handle SQS refused stays, visible again later). */
  delete(): Promise<number>;
  /** Makes them visible again at once (best effort: else they are after the visibility timeout). */
  release(): Promise<void>;
}

export interface HoldOptions {
  /** How long a held message stays hidden without a renewal. Default 120 s. */
  visibilitySeconds?: number;
  /** How often the hold is renewed while it lasts. Default a third of visibilitySeconds. */
  renewEveryMs?: number;
}

/**
 * Receives every message `queue` shows now (until two empty receives) and keeps them
 * hidden, renewing their visibility timeout until they are deleted or released. A
 * message sent after the receives is not held, so it stays. If this process dies, the
 * messages are visible again after `visibilitySeconds`: nothing is lost.
 */
export async function holdMessages(
  sqs: SQSClient,
  queue: NamedQueue,
  options: HoldOptions = {},
): Promise<HeldMessages> {
  const visibility = options.visibilitySeconds ?? 120;
  const held = new Map<string, string>(); // MessageId → its latest receipt handle
  let renewal: NodeJS.Timeout | undefined;
  const inBatches = async (
    send: (entries: { Id: string; ReceiptHandle: string }[]) => Promise<{ Failed?: unknown[] }>,
  ): Promise<number> => {
    const handles = [...held.values()];
    let failed = 0;
    for (let at = 0; at < handles.length; at += 10) {
      const entries = handles
        .slice(at, at + 10)
        .map((ReceiptHandle, index) => ({ Id: String(index), ReceiptHandle }));
      failed += (await send(entries)).Failed?.length ?? 0;
    }
    return handles.length - failed;
  };
  const changeVisibility = (seconds: number) =>
    inBatches((Entries) =>
      sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queue.url,
          Entries: Entries.map((entry) => ({ ...entry, VisibilityTimeout: seconds })),
        }),
      ),
    );
  const stop = () => {
    if (renewal) clearInterval(renewal);
    renewal = undefined;
  };
  // Renewed from the start: a long receive (a large DLQ) must not see its first messages again.
  renewal = setInterval(
    () => void changeVisibility(visibility).catch(() => {}),
    options.renewEveryMs ?? (visibility * 1000) / 3,
  );
  renewal.unref();
  try {
    // Two receives in a row with nothing new: every message shown now is held (SQS may
    // answer one empty at random; a message seen again is one held already).
    for (let emptyPolls = 0; emptyPolls < 2; ) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queue.url,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: visibility,
          WaitTimeSeconds: 1,
        }),
      );
      const before = held.size;
      for (const message of Messages) held.set(message.MessageId!, message.ReceiptHandle!);
      emptyPolls = held.size === before ? emptyPolls + 1 : 0;
    }
  } catch (error) {
    stop();
    await changeVisibility(0).catch(() => {});
    throw error;
  }
  if (held.size === 0) stop();
  return {
    count: held.size,
    async delete() {
      stop();
      return await inBatches((Entries) =>
        sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries })),
      );
    },
    async release() {
      stop();
      await changeVisibility(0).catch(() => {});
    },
  };
}
