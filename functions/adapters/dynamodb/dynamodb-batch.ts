/**
 * Batch and transaction building blocks every DynamoDB adapter needs: batch reads that
 * retry what DynamoDB left unprocessed, with jittered backoff, pointer puts, and the
 * identity of a transaction item (a transaction may not touch one item twice).
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  type DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { asError } from '../../core/shared/errors.ts';
import type { CommitResult } from '../../core/shared/event-batch.ts';

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** BatchGetItem takes at most 100 keys a call. */
export const BATCH_GET_LIMIT = 100;
/** TransactWriteItems takes at most 100 items a call. */
export const TRANSACTION_ITEM_LIMIT = 100;
/** Retries of a batch call's unprocessed keys or items before giving up. */
export const BATCH_RETRIES = 5;

/** A batch call still had unprocessed keys or items after every retry. */
export class BatchRetriesExhaustedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BatchRetriesExhaustedError';
  }
}

/**
 * Waits before retry `attempt` (1-based) of a batch call's leftovers: full jitter over
 * 50 ms, 100 ms, 200 ms... Throws BatchRetriesExhaustedError past `retries`.
 */
export async function retryPause(
  attempt: number,
  what: string,
  retries = BATCH_RETRIES,
): Promise<void> {
  if (attempt > retries) throw new BatchRetriesExhaustedError(`${what} after ${retries} retries`);
  await new Promise((resolve) => setTimeout(resolve, 2 ** attempt * 25 * Math.random()));
}

export interface BatchGetOptions {
  tableName: string;
  keys: readonly Record<string, unknown>[];
  /** Default false (half the read units). */
  consistentRead?: boolean;
  projectionExpression?: string;
  expressionAttributeNames?: Record<string, string>;
}

/**
 * Reads any number of keys (duplicates allowed: BatchGetItem refuses them, so they are
 * asked once) in calls of 100, retrying unprocessed keys. Missing items are absent;
 * order is not kept. Returns the read units DynamoDB reported.
 */
export async function batchGetAll(
  documents: DynamoDBDocumentClient,
  options: BatchGetOptions,
): Promise<{ items: Record<string, unknown>[]; readUnits: number }> {
  const unique = [...new Map(options.keys.map((key) => [JSON.stringify(key), key])).values()];
  const items: Record<string, unknown>[] = [];
  let readUnits = 0;
  type RequestItems = NonNullable<BatchGetCommandInput['RequestItems']>;
  for (let start = 0; start < unique.length; start += BATCH_GET_LIMIT) {
    let pending: RequestItems = {
      [options.tableName]: {
        Keys: unique.slice(start, start + BATCH_GET_LIMIT),
        ConsistentRead: options.consistentRead ?? false,
        ...(options.projectionExpression
          ? { ProjectionExpression: options.projectionExpression }
          : {}),
        ...(options.expressionAttributeNames
          ? { ExpressionAttributeNames: options.expressionAttributeNames }
          : {}),
      },
    };
    // BatchGetItem may return some keys unprocessed under load: ask again, with backoff.
    for (let attempt = 0; Object.keys(pending).length > 0; attempt++) {
      if (attempt > 0) await retryPause(attempt, 'BatchGetItem left keys unprocessed');
      const response = await documents.send(
        new BatchGetCommand({ RequestItems: pending, ReturnConsumedCapacity: 'TOTAL' }),
      );
      items.push(...(response.Responses?.[options.tableName] ?? []));
      for (const consumed of response.ConsumedCapacity ?? []) {
        readUnits += consumed.CapacityUnits ?? 0;
      }
      pending = response.UnprocessedKeys ?? {};
    }
  }
  return { items, readUnits };
}

/**
 * Puts the items one PutItem each, `concurrency` at a time: the immutable pointers the
 * stores write ahead of their transactions. PutItem rather than BatchWriteItem because
 * IAM grants a batch's deletes with its puts: the functions that put pointers cannot
 * delete anything. Callers use it for idempotent facts only (a retry may put again).
 */
export async function putEach(
  documents: DynamoDBDocumentClient,
  tableName: string,
  items: readonly Record<string, unknown>[],
  concurrency = 16,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const Item = items[next++]!;
      await documents.send(new PutCommand({ TableName: tableName, Item }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/**
 * Identifies the item a transaction item touches, across tables. `keyAttributesOf`
 * names a table's key attributes, needed for a Put (Update, Delete and ConditionCheck
 * carry their Key). Default: `pk`/`sk`.
 */
export function transactItemKey(
  item: TransactItem,
  keyAttributesOf: (tableName: string) => readonly string[] = () => ['pk', 'sk'],
): string {
  const keyed = item.Update ?? item.Delete ?? item.ConditionCheck;
  if (keyed) return `${keyed.TableName}|${JSON.stringify(keyed.Key)}`;
  const tableName = item.Put?.TableName ?? '';
  const put = item.Put?.Item ?? {};
  const key = keyAttributesOf(tableName).map((name) => put[name]);
  return `${tableName}|${JSON.stringify(key)}`;
}

/** How one TransactWriteItems call ended. */
export type TransactOutcome =
  | { status: 'committed' }
  /** Cancelled: one reason code per item, in the order the items were sent. */
  | { status: 'cancelled'; reasons: (string | undefined)[] }
  | { status: 'failed'; error: Error };

/** Sends one transaction; a cancellation is an outcome with its reasons, not a throw. */
export async function transactWrite(
  documents: DynamoDBDocumentClient,
  items: TransactItem[],
): Promise<TransactOutcome> {
  try {
    await documents.send(new TransactWriteCommand({ TransactItems: items }));
    return { status: 'committed' };
  } catch (error) {
    if (error instanceof TransactionCanceledException) {
      return { status: 'cancelled', reasons: (error.CancellationReasons ?? []).map((r) => r.Code) };
    }
    return { status: 'failed', error: asError(error) };
  }
}

/** Where one aggregate's commit sits in a pack: its index in the caller's list and its items. */
export interface PackMember {
  index: number;
  first: number;
  count: number;
}

/**
 * What a cancelled transaction means for one of the commits it carried: its own
 * condition (the revision check) failed or another transaction held its items — a
 * lost race, re-read and retried — or all its items were fine and another commit in
 * the same call failed: resend as is.
 */
export function memberResult(reasons: readonly (string | undefined)[]): CommitResult {
  if (reasons.some((code) => code === 'ConditionalCheckFailed' || code === 'TransactionConflict')) {
    return { status: 'revision-conflict' };
  }
  return { status: 'aborted' };
}

/**
 * Sends packs of commits `concurrency` at a time and writes each member's result into
 * `results` (DynamoDB cost is per item either way; packing saves round trips, which is
 * what limits throughput).
 */
export async function sendPacks<P extends { members: PackMember[] }>(
  packs: readonly P[],
  concurrency: number,
  send: (pack: P) => Promise<TransactOutcome>,
  results: CommitResult[],
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < packs.length) {
      const pack = packs[next++]!;
      const outcome = await send(pack);
      for (const member of pack.members) {
        results[member.index] =
          outcome.status === 'failed'
            ? outcome
            : outcome.status === 'committed'
              ? { status: 'committed' }
              : memberResult(outcome.reasons.slice(member.first, member.first + member.count));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, packs.length) }, worker));
}
