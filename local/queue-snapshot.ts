/**
 * Queue persistence across restarts. fauxqs 1.9 keeps messages in memory only, so at
 * shutdown the messages still in each queue (visible, delayed or in flight) are
 * written to `<dataDir>/sqs/<queue>.json`, and at the next start they are sent again
 * and the file removed. This is what lets a DLQ survive a restart.
 *
 * What a restart does not keep: message ids, receive counts (a message starts again
 * at ApproximateReceiveCount 1) and sent timestamps. A crash (kill -9) loses the
 * messages that were only in memory; DynamoDB Local's data is not affected.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { RunningSqsEmulator } from './emulators.ts';

const FORMAT_VERSION = 1;
const SEND_BATCH = 10;

export interface SnapshotMessage {
  body: string;
  /** SQS wire shape: `{ DataType, StringValue?, BinaryValue? (base64) }`. */
  messageAttributes: Record<
    string,
    { DataType: string; StringValue?: string; BinaryValue?: string }
  >;
  /** Original SentTimestamp, kept for the operator's eyes only. */
  sentTimestamp?: number;
  /** ApproximateReceiveCount when saved, for the operator's eyes only. */
  receiveCount?: number;
}

interface SnapshotFile {
  version: number;
  queueName: string;
  savedAt: string;
  messages: SnapshotMessage[];
}

export function snapshotDir(dataDir: string): string {
  return join(dataDir, 'sqs');
}

/**
 * Writes every message of each named queue to `<dataDir>/sqs/<queue>.json` (an empty
 * queue removes its file). Call after the pollers stopped, before the emulator stops.
 * Returns the number of messages saved per queue.
 */
export async function saveQueueSnapshots(
  emulator: Pick<RunningSqsEmulator, 'server'>,
  queueNames: readonly string[],
  dataDir: string,
): Promise<Record<string, number>> {
  const dir = snapshotDir(dataDir);
  await mkdir(dir, { recursive: true });
  const saved: Record<string, number> = {};
  for (const queueName of queueNames) {
    const inspected = emulator.server.inspectQueue(queueName);
    if (!inspected) continue;
    const { ready, delayed, inflight } = inspected.messages;
    const messages: SnapshotMessage[] = [
      ...ready,
      ...delayed,
      ...inflight.map((e) => e.message),
    ].map((m) => ({
      body: m.body,
      messageAttributes: m.messageAttributes,
      sentTimestamp: m.sentTimestamp,
      receiveCount: m.approximateReceiveCount,
    }));
    const file = join(dir, `${queueName}.json`);
    saved[queueName] = messages.length;
    if (messages.length === 0) {
      await rm(file, { force: true });
      continue;
    }
    const content: SnapshotFile = {
      version: FORMAT_VERSION,
      queueName,
      savedAt: new Date().toISOString(),
      messages,
    };
    // Write then rename, so a crash mid-write never leaves half a snapshot.
    await writeFile(`${file}.tmp`, `${JSON.stringify(content, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }
  return saved;
}

/**
 * Sends the saved messages back to their queues (by name) and removes each file once
 * all its messages are in. A snapshot of a queue the stack no longer has is left
 * alone. Returns the number of messages restored per queue.
 */
export async function restoreQueueSnapshots(
  sqs: SQSClient,
  queueUrlsByName: Record<string, string>,
  dataDir: string,
): Promise<Record<string, number>> {
  const dir = snapshotDir(dataDir);
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  const restored: Record<string, number> = {};
  for (const name of files) {
    const file = join(dir, name);
    const snapshot = JSON.parse(await readFile(file, 'utf8')) as SnapshotFile;
    const queueUrl = queueUrlsByName[snapshot.queueName];
    if (snapshot.version !== FORMAT_VERSION || !queueUrl) continue;
    for (let i = 0; i < snapshot.messages.length; i += SEND_BATCH) {
      const chunk = snapshot.messages.slice(i, i + SEND_BATCH);
      const out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((m, index) => ({
            Id: String(index),
            MessageBody: m.body,
            MessageAttributes: toSdkAttributes(m.messageAttributes),
          })),
        }),
      );
      if (out.Failed?.length) {
        throw new Error(
          `Restoring ${snapshot.queueName} from ${file}: ${out.Failed.length} message(s) rejected (${out.Failed[0]?.Message ?? out.Failed[0]?.Code}); the file is kept`,
        );
      }
    }
    restored[snapshot.queueName] = snapshot.messages.length;
    await rm(file, { force: true });
  }
  return restored;
}

function toSdkAttributes(
  attributes: SnapshotMessage['messageAttributes'],
): Record<string, MessageAttributeValue> {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    out[name] = {
      DataType: value.DataType,
      ...(value.StringValue !== undefined ? { StringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined
        ? { BinaryValue: Buffer.from(value.BinaryValue, 'base64') }
        : {}),
    };
  }
  return out;
}
