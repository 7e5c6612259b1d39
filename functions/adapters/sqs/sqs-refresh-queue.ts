/**
 * The credit refresh work queue on SQS. One message carries up to 25 users (a JSON
 * array of `RefreshWork`), one SendMessageBatch call up to 10 messages: 250 users a
 * call, so a planner page of 100 users is one call and a slot of 3,500 users about 14.
 *
 * Two layers of retry: the SDK client's own (standard mode: throttling, 5xx and
 * network errors of the whole call), and here, the entries a successful call lists as
 * `Failed` (SQS accepts a batch partly): those are resent alone, up to `retries` times
 * with full-jitter backoff. An entry failing through the sender's fault (a malformed
 * or oversized message) is not retried. What still failed becomes
 * `RefreshEnqueueError`, naming how many users were not queued; messages already sent
 * stay queued, which is harmless: a refresh is at most once per user and period,
 * however often its work runs, so the caller may enqueue the whole page again.
 */
import {
  type BatchResultErrorEntry,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { defaultSqsClient } from '../../commons/aws-clients.ts';
import {
  type DependencyFailureFlag,
  isDependencyFailure,
} from '../../commons/dependency-failures.ts';
import type { RefreshQueue, RefreshWork } from '../../core/credits/ports.ts';
import { SLOTS_PER_DAY } from '../../core/credits/refresh-slot.ts';
import { isTier } from '../../core/shared/tiers.ts';

/** Users per message: a worker's batch of 10 messages then refreshes up to 250 users. */
export const REFRESH_USERS_PER_MESSAGE = 25;
/** SendMessageBatch takes at most 10 entries. */
export const MESSAGES_PER_BATCH = 10;
/** Default resends of a batch's failed entries before giving up. */
export const DEFAULT_ENTRY_RETRIES = 3;

export interface SqsRefreshQueueOptions {
  queueUrl: string;
  /** Default: the shared client (bounded timeouts, standard retries). */
  client?: SQSClient;
  /** Resends of failed entries, 0-10. Default 3. */
  retries?: number;
  /** SendMessageBatch calls in flight at once. Default 4. */
  concurrency?: number;
  /** Base of the full-jitter backoff between resends, ms (wait up to base x 2^attempt). Default 50. */
  backoffBaseMs?: number;
}

/** Some refresh work could not be queued; `failedUsers` of it is not in the queue. */
export class RefreshEnqueueError extends Error implements DependencyFailureFlag {
  readonly failedUsers: number;
  readonly failures: readonly { code: string; message: string; senderFault: boolean }[];
  /**
   * SQS, not our request, is why: entries SQS failed on its side, or a call that failed on
   * a server fault, a throttle or the network (after the SDK's retries). A sender fault
   * (our malformed message) or a refused call (access denied) is our bug: a retry would
   * fail the same way.
   */
  readonly dependencyFailed: boolean;
  constructor(
    message: string,
    failedUsers: number,
    failures: RefreshEnqueueError['failures'],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RefreshEnqueueError';
    this.failedUsers = failedUsers;
    this.failures = failures;
    this.dependencyFailed =
      !failures.some((failure) => failure.senderFault) &&
      (options?.cause === undefined || isDependencyFailure(options.cause));
  }
}

export class SqsRefreshQueue implements RefreshQueue {
  readonly #queueUrl: string;
  readonly #client: SQSClient | undefined;
  readonly #retries: number;
  readonly #concurrency: number;
  readonly #backoffBaseMs: number;

  constructor(options: SqsRefreshQueueOptions) {
    const retries = options.retries ?? DEFAULT_ENTRY_RETRIES;
    if (!Number.isInteger(retries) || retries < 0 || retries > 10) {
      throw new RangeError(`retries must be an integer from 0 to 10, got ${retries}`);
    }
    this.#queueUrl = options.queueUrl;
    this.#client = options.client;
    this.#retries = retries;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#backoffBaseMs = Math.max(0, options.backoffBaseMs ?? 50);
  }

  async enqueue(work: readonly RefreshWork[]): Promise<void> {
    if (work.length === 0) return;
    const messages: Message[] = [];
    for (let start = 0; start < work.length; start += REFRESH_USERS_PER_MESSAGE) {
      const users = work.slice(start, start + REFRESH_USERS_PER_MESSAGE);
      messages.push({ body: encodeRefreshMessage(users), users: users.length });
    }
    const batches: Message[][] = [];
    for (let start = 0; start < messages.length; start += MESSAGES_PER_BATCH) {
      batches.push(messages.slice(start, start + MESSAGES_PER_BATCH));
    }
    const failures: Failure[] = [];
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        failures.push(...(await this.#sendBatch(batch)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, batches.length) }, worker));
    if (failures.length > 0) {
      const failedUsers = failures.reduce((sum, failure) => sum + failure.users, 0);
      const codes = [...new Set(failures.map((failure) => failure.entry.Code ?? 'unknown'))];
      throw new RefreshEnqueueError(
        `${failedUsers} of ${work.length} users could not be queued for credit refresh (${failures.length} messages failed: ${codes.join(', ')})`,
        failedUsers,
        failures.map(({ entry }) => ({
          code: entry.Code ?? 'unknown',
          message: entry.Message ?? '',
          senderFault: entry.SenderFault ?? false,
        })),
        { cause: failures.find((failure) => failure.cause !== undefined)?.cause },
      );
    }
  }

  /** Sends one batch, resending its failed entries; returns those that still failed. */
  async #sendBatch(batch: readonly Message[]): Promise<Failure[]> {
    const client = this.#client ?? defaultSqsClient();
    const usersOf = (id: string | undefined) => batch[Number(id)]?.users ?? 0;
    let pending: SendMessageBatchRequestEntry[] = batch.map(({ body }, index) => ({
      Id: String(index),
      MessageBody: body,
    }));
    const gaveUp: Failure[] = [];
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        await new Promise((resolve) =>
          setTimeout(resolve, Math.random() * this.#backoffBaseMs * 2 ** attempt),
        );
      }
      let response: SendMessageBatchCommandOutput;
      try {
        response = await client.send(
          new SendMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: pending }),
        );
      } catch (error) {
        // The SDK already retried the call (standard mode): every pending entry failed.
        const name = error instanceof Error ? error.name : 'Error';
        const message = error instanceof Error ? error.message : String(error);
        for (const { Id } of pending) {
          gaveUp.push({
            users: usersOf(Id),
            entry: { Id, Code: name, Message: message, SenderFault: false },
            cause: error,
          });
        }
        return gaveUp;
      }
      const retryable: BatchResultErrorEntry[] = [];
      for (const entry of response.Failed ?? []) {
        // The sender's fault (malformed, oversized) will not go away: give it up now.
        if (entry.SenderFault) gaveUp.push({ users: usersOf(entry.Id), entry });
        else retryable.push(entry);
      }
      if (retryable.length === 0) return gaveUp;
      if (attempt >= this.#retries) {
        for (const entry of retryable) gaveUp.push({ users: usersOf(entry.Id), entry });
        return gaveUp;
      }
      const ids = new Set(retryable.map((entry) => entry.Id));
      pending = pending.filter((entry) => ids.has(entry.Id));
    }
  }
}

interface Message {
  body: string;
  users: number;
}

interface Failure {
  users: number;
  entry: BatchResultErrorEntry;
  /** The error a whole call failed with, if it did. */
  cause?: unknown;
}

/** The message body of up to 25 users' work: a JSON array of `RefreshWork`. */
export function encodeRefreshMessage(work: readonly RefreshWork[]): string {
  return JSON.stringify(
    work.map(({ userId, tier, period, slot, plannedAt }) => ({
      userId,
      tier,
      period,
      slot,
      plannedAt,
    })),
  );
}

/** Reads a message body back; throws a TypeError naming what is wrong. */
export function decodeRefreshMessage(body: string): RefreshWork[] {
  const parsed: unknown = JSON.parse(body);
  if (!Array.isArray(parsed)) throw new TypeError('refresh message: expected a JSON array');
  return parsed.map((value, index) => {
    const item = value as Partial<RefreshWork> | null;
    const valid =
      typeof item === 'object' &&
      item !== null &&
      typeof item.userId === 'string' &&
      item.userId.length > 0 &&
      isTier(item.tier) &&
      typeof item.period === 'string' &&
      /^\d{4}-\d{2}-\d{2}$/.test(item.period) &&
      Number.isInteger(item.slot) &&
      (item.slot as number) >= 0 &&
      (item.slot as number) < SLOTS_PER_DAY &&
      typeof item.plannedAt === 'number' &&
      Number.isFinite(item.plannedAt);
    if (!valid) throw new TypeError(`refresh message: item ${index} is not refresh work`);
    return {
      userId: item.userId!,
      tier: item.tier!,
      period: item.period!,
      slot: item.slot!,
      plannedAt: item.plannedAt!,
    };
  });
}
