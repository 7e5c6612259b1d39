/**
 * Emulates the Lambda SQS event source mapping for one queue consumer, with the
 * semantics the deployed mapping has:
 *
 * - long-poll ReceiveMessage (at most 10 messages per call, SQS's limit) and gather
 *   a batch until `batchSize` is reached, the batching window elapses, or the
 *   invocation payload approaches Lambda's 6 MB limit;
 * - at most `maximumConcurrency` batches in flight;
 * - invoke the handler with a real SQS event and a Lambda-like context, bounded by
 *   the function timeout;
 * - with `ReportBatchItemFailures`: delete every record not listed in
 *   `batchItemFailures`; the listed ones stay on the queue and reappear after the
 *   visibility timeout, so the queue's RedrivePolicy moves a poison message to the
 *   DLQ after `maxReceiveCount` receives;
 * - a handler that throws or times out, or a response naming a record that is not
 *   in the batch, fails the whole batch: nothing is deleted.
 */
import { createHash } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSMessageAttributes, SQSRecord, SQSRecordAttributes } from 'aws-lambda';
import { LOCAL_REGION } from './emulators.ts';
import {
  createLocalLog,
  invokeLocally,
  type LambdaHandler,
  type LocalFunction,
  type LocalLog,
} from './lambda-context.ts';
import type { QueueConsumerModel } from './stack-model.ts';

/** Lambda's synchronous invocation payload limit. */
const MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** SQS's classic message size limit, and more than the webhook ever enqueues. */
const MAX_MESSAGE_BYTES = 256 * 1024;
const MAX_MESSAGES_PER_RECEIVE = 10;

/** Any result: `parseBatchItemFailures` applies Lambda's rules to whatever comes back. */
export type SqsConsumerHandler = LambdaHandler<SQSEvent, unknown>;

export interface QueuePollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** The queue's ARN for `eventSourceARN`; read with GetQueueAttributes when omitted. */
  queueArn?: string;
  /** The event source mapping settings, as in the stack model. */
  mapping: Pick<
    QueueConsumerModel,
    'batchSize' | 'maximumBatchingWindowSeconds' | 'maximumConcurrency' | 'reportBatchItemFailures'
  >;
  fn: LocalFunction;
  handler: SqsConsumerHandler;
  /**
   * Long-poll wait of an idle receive, in whole seconds (SQS allows 0-20). Default 1:
   * a message is picked up as soon as it arrives whatever the wait, and a short wait
   * bounds the window in which the poll abandoned by `stop()` can still take (and
   * hide until its visibility timeout) a message that arrives just then.
   */
  idleWaitSeconds?: number;
  /** Pause after a failed ReceiveMessage (emulator down...). Default 500 ms. */
  errorBackoffMs?: number;
  log?: LocalLog;
  /** Told about each finished batch (tests, the runtime's log). */
  onBatch?: (outcome: BatchOutcome) => void;
}

export interface BatchOutcome {
  functionName: string;
  records: number;
  /** Records deleted from the queue (processed). */
  deleted: number;
  /** Records left on the queue to be retried (then DLQ). */
  retried: number;
  /** Why the whole batch failed, when it did. */
  batchError?: unknown;
  durationMs: number;
}

export interface QueuePollerStats {
  batches: number;
  records: number;
  deleted: number;
  retried: number;
  failedBatches: number;
  inFlight: number;
  maxInFlight: number;
}

export interface QueuePoller {
  readonly queueUrl: string;
  stats(): QueuePollerStats;
  /**
   * Stops receiving, dispatches what was already gathered, and waits for in-flight
   * batches, at most `drainTimeoutMs` (default: unbounded). Resolves true when
   * everything finished in time.
   */
  stop(options?: { drainTimeoutMs?: number }): Promise<boolean>;
}

/** Starts polling; resolves once the queue ARN is known and the first receive is under way. */
export async function startQueuePoller(options: QueuePollerOptions): Promise<QueuePoller> {
  const { sqs, queueUrl, mapping, fn, handler } = options;
  const log = options.log ?? createLocalLog('silent');
  const batchSize = Math.max(1, mapping.batchSize);
  const windowMs = Math.max(0, mapping.maximumBatchingWindowSeconds) * 1000;
  const maxConcurrency = Math.max(1, mapping.maximumConcurrency);
  const idleWaitSeconds = Math.min(20, Math.max(0, options.idleWaitSeconds ?? 1));
  const errorBackoffMs = options.errorBackoffMs ?? 500;
  const queueArn = options.queueArn ?? (await readQueueArn(sqs, queueUrl));

  const stats: QueuePollerStats = {
    batches: 0,
    records: 0,
    deleted: 0,
    retried: 0,
    failedBatches: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
  const inFlight = new Set<Promise<void>>();
  let slotFreed: (() => void) | undefined;
  let stopping = false;
  let wakeStop: (() => void) | undefined;

  let idleReceive: AbortController | undefined;

  const receive = async (max: number, waitSeconds: number, idle: boolean): Promise<Message[]> => {
    // Only an idle long poll is abandoned on stop: it holds nothing yet, while a
    // receive that adds to a gathered batch must finish so the batch is dispatched.
    const abort = idle ? new AbortController() : undefined;
    idleReceive = abort;
    try {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(MAX_MESSAGES_PER_RECEIVE, max),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        abort ? { abortSignal: abort.signal } : {},
      );
      return out.Messages ?? [];
    } finally {
      if (idleReceive === abort) idleReceive = undefined;
    }
  };

  /** Gathers one batch; empty only when stopping. */
  const gather = async (): Promise<Message[]> => {
    const batch: Message[] = [];
    let bytes = 0;
    let deadline = Number.POSITIVE_INFINITY;
    for (;;) {
      if (stopping) break;
      // Never receive more than could still fit in one invocation payload.
      const room = Math.floor((MAX_INVOKE_PAYLOAD_BYTES - bytes) / MAX_MESSAGE_BYTES);
      const want = Math.min(MAX_MESSAGES_PER_RECEIVE, batchSize - batch.length, room);
      if (want <= 0) break;
      const remainingMs = deadline - Date.now();
      if (batch.length > 0 && remainingMs <= 0) break;
      const wait =
        batch.length === 0 ? idleWaitSeconds : Math.min(20, Math.floor(remainingMs / 1000));
      let messages: Message[];
      try {
        messages = await receive(want, wait, batch.length === 0);
      } catch (error) {
        if (stopping) break;
        log.error(`${fn.functionName}: ReceiveMessage failed, retrying`, error);
        await sleep(errorBackoffMs);
        continue;
      }
      if (messages.length > 0 && batch.length === 0) deadline = Date.now() + windowMs;
      for (const message of messages) {
        batch.push(message);
        bytes += Buffer.byteLength(message.Body ?? '', 'utf8');
      }
      // A short poll inside the window came back empty: wait a little rather than spin.
      if (messages.length === 0 && batch.length > 0) {
        await sleep(Math.min(25, Math.max(0, deadline - Date.now())));
      }
    }
    return batch;
  };

  const runBatch = async (messages: Message[]): Promise<void> => {
    const started = Date.now();
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, queueArn)) };
    let failedIds: Set<string> | undefined;
    let batchError: unknown;
    try {
      const response = await invokeLocally(fn, handler, event);
      if (mapping.reportBatchItemFailures) {
        failedIds = parseBatchItemFailures(response, event);
      } else {
        failedIds = new Set();
      }
    } catch (error) {
      batchError = error;
    }

    let deleted = 0;
    if (failedIds) {
      const toDelete = messages.filter((m) => !failedIds.has(m.MessageId ?? ''));
      deleted = await deleteMessages(sqs, queueUrl, toDelete, log, fn.functionName);
    }
    const outcome: BatchOutcome = {
      functionName: fn.functionName,
      records: messages.length,
      deleted,
      retried: messages.length - deleted,
      durationMs: Date.now() - started,
      ...(batchError !== undefined ? { batchError } : {}),
    };
    stats.batches += 1;
    stats.records += outcome.records;
    stats.deleted += outcome.deleted;
    stats.retried += outcome.retried;
    if (batchError !== undefined) {
      stats.failedBatches += 1;
      log.error(
        `${fn.functionName}: batch of ${messages.length} failed, all records will be retried`,
        batchError,
      );
    }
    options.onBatch?.(outcome);
  };

  const dispatch = (messages: Message[]) => {
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    const running: Promise<void> = runBatch(messages)
      .catch((error: unknown) => log.error(`${fn.functionName}: batch bookkeeping failed`, error))
      .finally(() => {
        stats.inFlight -= 1;
        inFlight.delete(running);
        slotFreed?.();
      });
    inFlight.add(running);
  };

  const loop = async () => {
    while (!stopping) {
      // Receive only when a batch can start: gathered messages are invisible to other
      // consumers, so holding them while waiting for a slot would only delay them.
      while (stats.inFlight >= maxConcurrency && !stopping) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
          wakeStop = resolve;
        });
      }
      if (stopping) break;
      const batch = await gather();
      if (batch.length > 0) dispatch(batch);
    }
  };
  const loopDone = loop();

  return {
    queueUrl,
    stats: () => ({ ...stats }),
    async stop({ drainTimeoutMs }: { drainTimeoutMs?: number } = {}) {
      stopping = true;
      wakeStop?.();
      idleReceive?.abort();
      await loopDone;
      const drained = Promise.all([...inFlight]).then(() => true);
      if (drainTimeoutMs === undefined) return await drained;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), drainTimeoutMs);
      });
      try {
        return await Promise.race([drained, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

async function readQueueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new Error(`Queue ${queueUrl} has no QueueArn attribute`);
  return arn;
}

/** The batch response does not follow Lambda's contract, so the whole batch is retried. */
export class InvalidBatchResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBatchResponseError';
  }
}

/**
 * The message ids to keep, by Lambda's rules: no response, or no or an empty
 * `batchItemFailures`, means every record succeeded; a failure entry whose
 * `itemIdentifier` is missing, empty or not a message of this batch fails the batch.
 */
export function parseBatchItemFailures(response: unknown, event: SQSEvent): Set<string> {
  if (response === undefined || response === null) return new Set();
  if (typeof response !== 'object') {
    throw new InvalidBatchResponseError('Batch response is not an object');
  }
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) {
    throw new InvalidBatchResponseError('batchItemFailures is not an array');
  }
  const ids = new Set(event.Records.map((r) => r.messageId));
  const failed = new Set<string>();
  for (const failure of failures as unknown[]) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id === '' || !ids.has(id)) {
      throw new InvalidBatchResponseError(
        `batchItemFailures names ${JSON.stringify(id)}, which is not a message of this batch`,
      );
    }
    failed.add(id);
  }
  return failed;
}

async function deleteMessages(
  sqs: SQSClient,
  queueUrl: string,
  messages: Message[],
  log: LocalLog,
  functionName: string,
): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < messages.length; i += MAX_MESSAGES_PER_RECEIVE) {
    const chunk = messages.slice(i, i + MAX_MESSAGES_PER_RECEIVE);
    try {
      const out = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((m, index) => ({ Id: String(index), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
      deleted += out.Successful?.length ?? 0;
      for (const failure of out.Failed ?? []) {
        log.warn(
          `${functionName}: DeleteMessageBatch entry failed: ${failure.Code} ${failure.Message ?? ''}`,
        );
      }
    } catch (error) {
      // Not deleted means redelivered later: the consumer's idempotency absorbs it.
      log.error(
        `${functionName}: DeleteMessageBatch failed; the records will be redelivered`,
        error,
      );
    }
  }
  return deleted;
}

/** One received message in the shape Lambda puts in an SQS event. */
export function toSqsRecord(message: Message, queueArn: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const body = message.Body ?? '';
  const recordAttributes: SQSRecordAttributes = {
    ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
    SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
    SenderId: attributes.SenderId ?? '000000000000',
    ApproximateFirstReceiveTimestamp:
      attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
  };
  for (const name of [
    'AWSTraceHeader',
    'MessageGroupId',
    'MessageDeduplicationId',
    'SequenceNumber',
    'DeadLetterQueueSourceArn',
  ] as const) {
    const value = attributes[name];
    if (value !== undefined) recordAttributes[name] = value;
  }
  const record: SQSRecord = {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body,
    attributes: recordAttributes,
    messageAttributes: toLambdaMessageAttributes(message.MessageAttributes),
    md5OfBody: message.MD5OfBody ?? createHash('md5').update(body, 'utf8').digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: regionOfArn(queueArn),
  };
  if (message.MD5OfMessageAttributes)
    record.md5OfMessageAttributes = message.MD5OfMessageAttributes;
  return record;
}

/** SDK `{ DataType, StringValue, BinaryValue }` to Lambda's `{ dataType, stringValue, ... }`. */
function toLambdaMessageAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    out[name] = {
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined ? { binaryValue: toBase64(value.BinaryValue) } : {}),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map(toBase64),
      dataType: value.DataType ?? 'String',
    };
  }
  return out;
}

function toBase64(value: Uint8Array | string): string {
  return typeof value === 'string' ? value : Buffer.from(value).toString('base64');
}

function regionOfArn(arn: string): string {
  return arn.split(':')[3] || LOCAL_REGION;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
