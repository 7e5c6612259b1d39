/**
 * DynamoDB implementation of the credits ports (DESIGN §8.2) on the billing table.
 *
 * Items (layout and index: credit-table-schema.ts; keys: billing-table-keys.ts):
 *   USER#<userId>    / PROFILE     credit fields on the profile the subscription store writes
 *   CREDITS#<period> / RUN         the period's counters (ADD), lastRunAt, plannedSlots (NS), errorSeq
 *   CREDITS#<period> / ERROR#<nn>  the recent-errors ring, nn = seq mod 20
 *
 * Every call is one request, except `recordOutcomes` with errors (one update, then one
 * conditional put per kept error). Throttling, 5xx and network errors are retried by
 * the SDK client's own retry strategy: build the client with `createDynamoDbClient()`
 * (commons/aws-clients.ts: `retryMode: 'standard'`, `maxAttempts: 3`, jittered
 * exponential backoff, 1 s connect / 3 s request timeouts); a worker that wants more
 * patience raises `maxAttempts`, never a loop of its own here. Everything here is
 * idempotent or conditional except the run log's ADD counters: a retried
 * `recordOutcomes` that had in fact succeeded counts twice (the SDK only retries
 * what did not reach DynamoDB or was refused, so this is rare).
 * Capacity arithmetic: docs/credits-capacity.md.
 */
import {
  ConditionalCheckFailedException,
  type ConsumedCapacity,
  type DynamoDBClient,
  type ReturnConsumedCapacity,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  CreditAccount,
  CreditRunLog,
  CreditStore,
  DueUser,
  RefreshError,
  RefreshOutcomes,
  RefreshResult,
} from '../../core/credits/ports.ts';
import { NEVER_REFRESHED, refreshSlotOf, SLOTS_PER_DAY } from '../../core/credits/refresh-slot.ts';
import type { Page } from '../../core/shared/paging.ts';
import { isTier, type Tier } from '../../core/shared/tiers.ts';
import { dueCursor } from '../paging/credit-cursor.ts';
import { ISO_DATE } from '../paging/query-cursor.ts';
import { billingKeys as keys } from './billing-table-keys.ts';
import { CREDIT_ATTRIBUTE, CREDIT_SLOT_INDEX, RECENT_ERRORS_KEPT } from './credit-table-schema.ts';

/** Operations whose consumed capacity `onCapacity` reports. */
export type CreditStoreOperation =
  | 'usersDue'
  | 'refresh'
  | 'getAccount'
  | 'recordPlanned'
  | 'recordOutcomes'
  | 'plannedSlots'
  | 'readCounters';

/** Consumed capacity of one call: table and slot-index units, as DynamoDB reported them. */
export interface CreditCapacity {
  readUnits: number;
  writeUnits: number;
  /** Of which on the slot index (its maintenance on writes, the query on reads). */
  indexUnits: number;
}

export interface DynamoDbCreditStoreOptions {
  client: DynamoDBClient;
  billingTableName: string;
  /** Called after each request with the capacity DynamoDB reported (metrics, tests, benchmarks). */
  onCapacity?: (operation: CreditStoreOperation, capacity: CreditCapacity) => void;
}

/** Most users one `usersDue` page returns. */
export const MAX_DUE_PAGE = 1_000;

/** Longest error message kept in the run log: keeps each ring item under 1 KB (one write unit). */
export const MAX_ERROR_LENGTH = 500;

const A = CREDIT_ATTRIBUTE;
const PROFILE_PREFIX = 'USER#';

/** Run log attribute names on `CREDITS#<period>` / `RUN` and the ring items. */
const RUN = {
  planned: 'planned',
  refreshed: 'refreshed',
  skipped: 'skipped',
  failed: 'failed',
  totalMs: 'totalMs',
  lastRunAt: 'lastRunAt',
  plannedSlots: 'plannedSlots',
  errorSeq: 'errorSeq',
  seq: 'seq',
  userId: 'userId',
  error: 'error',
  at: 'at',
} as const;

export class DynamoDbCreditStore implements CreditStore, CreditRunLog {
  readonly #documents: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #onCapacity: DynamoDbCreditStoreOptions['onCapacity'];
  readonly #returnCapacity: ReturnConsumedCapacity | undefined;

  constructor(options: DynamoDbCreditStoreOptions) {
    this.#documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = options.billingTableName;
    this.#onCapacity = options.onCapacity;
    // INDEXES splits table and index units; asked only when someone listens.
    this.#returnCapacity = options.onCapacity ? 'INDEXES' : undefined;
  }

  // ---- CreditStore ---------------------------------------------------------------

  /**
   * One Query on the slot index: `refreshSlot = :slot AND creditPeriod < :period`,
   * `limit + 1` items (the extra one only tells whether a next page exists). The index
   * is eventually consistent: a user refreshed a moment ago may still be listed, and
   * the refresh's condition turns that into `already-refreshed`.
   */
  async usersDue(query: {
    slot: number;
    period: string;
    limit: number;
    cursor?: string;
  }): Promise<Page<DueUser>> {
    const { slot, period, limit } = query;
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS_PER_DAY) {
      throw new RangeError(`slot must be an integer from 0 to ${SLOTS_PER_DAY - 1}, got ${slot}`);
    }
    if (!ISO_DATE.test(period)) throw new RangeError(`period must be YYYY-MM-DD, got ${period}`);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DUE_PAGE) {
      throw new RangeError(`limit must be an integer from 1 to ${MAX_DUE_PAGE}, got ${limit}`);
    }
    const scope = { slot, period };
    const after = query.cursor === undefined ? undefined : dueCursor.decode(scope, query.cursor);
    const response = await this.#documents.send(
      new QueryCommand({
        TableName: this.#table,
        IndexName: CREDIT_SLOT_INDEX.indexName,
        KeyConditionExpression: '#slot = :slot AND #period < :period',
        ExpressionAttributeNames: {
          '#slot': A.refreshSlot,
          '#period': A.period,
          '#userId': A.userId,
          '#tier': A.tier,
        },
        ExpressionAttributeValues: { ':slot': slot, ':period': period },
        ProjectionExpression: 'pk, #period, #userId, #tier',
        Limit: limit + 1,
        ...(after
          ? {
              ExclusiveStartKey: {
                ...keys.profile(after.u),
                [A.refreshSlot]: slot,
                [A.period]: after.c,
              },
            }
          : {}),
        ReturnConsumedCapacity: this.#returnCapacity,
      }),
    );
    this.#report('usersDue', response.ConsumedCapacity);
    const rows = (response.Items ?? []).map((item) => ({
      userId: userIdOf(item),
      period: String(item[A.period]),
      tier: item[A.tier],
    }));
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    // More follows if the query saw more than a page, or stopped early (1 MB) with a key.
    const more =
      rows.length > limit || (response.LastEvaluatedKey !== undefined && page.length > 0);
    return {
      items: page.map(({ userId, tier }) => ({ userId, tier: isTier(tier) ? tier : 'free' })),
      nextCursor: more && last ? dueCursor.encode(scope, { u: last.userId, c: last.period }) : null,
    };
  }

  /**
   * One conditional UpdateItem on the profile. The condition (profile exists, period
   * before this one, tier unchanged) makes it at most once per user and period however
   * many workers run it; on failure DynamoDB returns the item as it was
   * (`ReturnValuesOnConditionCheckFailure: ALL_OLD`), which says why without a read.
   * A profile written before slots existed gets its slot here too (`if_not_exists`).
   */
  async refresh(work: {
    userId: string;
    tier: Tier;
    period: string;
    allowance: number;
    at: number;
  }): Promise<RefreshResult> {
    try {
      const response = await this.#documents.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keys.profile(work.userId),
          UpdateExpression:
            'SET #balance = :allowance, #allowance = :allowance, #period = :period, #at = :at, #slot = if_not_exists(#slot, :slot)',
          ConditionExpression:
            'attribute_exists(pk) AND (attribute_not_exists(#period) OR #period < :period) AND #tier = :tier',
          ExpressionAttributeNames: {
            '#balance': A.balance,
            '#allowance': A.allowance,
            '#period': A.period,
            '#at': A.refreshedAt,
            '#slot': A.refreshSlot,
            '#tier': A.tier,
          },
          ExpressionAttributeValues: {
            ':allowance': work.allowance,
            ':period': work.period,
            ':at': work.at,
            ':slot': refreshSlotOf(work.userId),
            ':tier': work.tier,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ReturnConsumedCapacity: this.#returnCapacity,
        }),
      );
      this.#report('refresh', response.ConsumedCapacity);
      return 'refreshed';
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // The old item, in DynamoDB's wire form (the document client does not unmarshall errors).
      const old = error.Item;
      if (!old) return 'no-profile';
      const period = old[A.period]?.S;
      if (period !== undefined && period >= work.period) return 'already-refreshed';
      return 'tier-changed';
    }
  }

  /** One GetItem of the credit fields, eventually consistent (the read route). */
  async getAccount(userId: string): Promise<CreditAccount | null> {
    const { Item, ConsumedCapacity } = await this.#documents.send(
      new GetCommand({
        TableName: this.#table,
        Key: keys.profile(userId),
        ProjectionExpression: '#tier, #balance, #allowance, #period, #slot, #at',
        ExpressionAttributeNames: {
          '#tier': A.tier,
          '#balance': A.balance,
          '#allowance': A.allowance,
          '#period': A.period,
          '#slot': A.refreshSlot,
          '#at': A.refreshedAt,
        },
        ReturnConsumedCapacity: this.#returnCapacity,
      }),
    );
    this.#report('getAccount', ConsumedCapacity);
    if (!Item) return null;
    const tier = Item[A.tier];
    const slot = Item[A.refreshSlot];
    const refreshedAt = Item[A.refreshedAt];
    return {
      userId,
      tier: isTier(tier) ? tier : 'free',
      balance: numberOr(Item[A.balance], 0),
      allowance: numberOr(Item[A.allowance], 0),
      period: typeof Item[A.period] === 'string' ? (Item[A.period] as string) : NEVER_REFRESHED,
      refreshSlot: typeof slot === 'number' ? slot : refreshSlotOf(userId),
      refreshedAt: typeof refreshedAt === 'number' ? refreshedAt : null,
    };
  }

  // ---- CreditRunLog --------------------------------------------------------------

  /** One UpdateItem: ADD the count and the slot (number set), SET lastRunAt. */
  async recordPlanned(period: string, slot: number, planned: number, at: number): Promise<void> {
    const response = await this.#documents.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: keys.creditRun(period),
        UpdateExpression: 'ADD #planned :planned, #slots :slots SET #lastRunAt = :at',
        ExpressionAttributeNames: {
          '#planned': RUN.planned,
          '#slots': RUN.plannedSlots,
          '#lastRunAt': RUN.lastRunAt,
        },
        ExpressionAttributeValues: { ':planned': planned, ':slots': new Set([slot]), ':at': at },
        ReturnConsumedCapacity: this.#returnCapacity,
      }),
    );
    this.#report('recordPlanned', response.ConsumedCapacity);
  }

  /**
   * One UpdateItem that ADDs the counters (atomic, so concurrent workers never lose a
   * count) and, when there are errors, reserves their sequence numbers (`ADD errorSeq`);
   * then one conditional PutItem per error among the newest 20 into the ring position
   * `seq mod 20`, refused when a newer error already holds that position. The ring is
   * never read-modify-written, holds at most 20 items per period whatever the day's
   * failures (a bad day writes at most 20 error items a call, not one per failure), and
   * needs no TTL: the billing table holds money state and deliberately has none, where
   * one error item per failure (`ERROR#<iso>#<userId>`) would need one to go away.
   * Counters first: if a ring put then fails (after the SDK's retries) the call throws
   * with the counts already added, so a caller's retry would count twice.
   */
  async recordOutcomes(period: string, outcomes: RefreshOutcomes): Promise<void> {
    const { refreshed, skipped, failed, totalMs, errors } = outcomes;
    const names: Record<string, string> = {
      '#refreshed': RUN.refreshed,
      '#skipped': RUN.skipped,
      '#failed': RUN.failed,
      '#totalMs': RUN.totalMs,
    };
    const values: Record<string, unknown> = {
      ':refreshed': refreshed,
      ':skipped': skipped,
      ':failed': failed,
      ':ms': totalMs,
    };
    let expression = 'ADD #refreshed :refreshed, #skipped :skipped, #failed :failed, #totalMs :ms';
    if (errors.length > 0) {
      expression += ', #errorSeq :errors';
      names['#errorSeq'] = RUN.errorSeq;
      values[':errors'] = errors.length;
    }
    const response = await this.#documents.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: keys.creditRun(period),
        UpdateExpression: expression,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: errors.length > 0 ? 'UPDATED_NEW' : 'NONE',
        ReturnConsumedCapacity: this.#returnCapacity,
      }),
    );
    this.#report('recordOutcomes', response.ConsumedCapacity);
    if (errors.length === 0) return;

    // This call's errors hold sequence numbers (lastSeq - n, lastSeq]; only the newest
    // 20 can be among the period's 20 most recent.
    const lastSeq = Number(response.Attributes?.[RUN.errorSeq]);
    const firstSeq = lastSeq - errors.length + 1;
    const kept = errors.slice(-RECENT_ERRORS_KEPT);
    const keptFirstSeq = firstSeq + (errors.length - kept.length);
    await Promise.all(
      kept.map((error, index) => this.#putError(period, keptFirstSeq + index, error)),
    );
  }

  async #putError(period: string, seq: number, error: RefreshError): Promise<void> {
    try {
      const response = await this.#documents.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...keys.creditError(period, seq % RECENT_ERRORS_KEPT),
            [RUN.seq]: seq,
            [RUN.userId]: error.userId,
            [RUN.error]: error.error.slice(0, MAX_ERROR_LENGTH),
            [RUN.at]: error.at,
          },
          // A slow writer must not put an older error over a newer one.
          ConditionExpression: 'attribute_not_exists(pk) OR #seq < :seq',
          ExpressionAttributeNames: { '#seq': RUN.seq },
          ExpressionAttributeValues: { ':seq': seq },
          ReturnConsumedCapacity: this.#returnCapacity,
        }),
      );
      this.#report('recordOutcomes', response.ConsumedCapacity);
    } catch (failure) {
      if (failure instanceof ConditionalCheckFailedException) return;
      throw failure;
    }
  }

  /** One strongly consistent GetItem of the run item's slot set (the planner's next step depends on it). */
  async plannedSlots(period: string): Promise<number[]> {
    const { Item, ConsumedCapacity } = await this.#documents.send(
      new GetCommand({
        TableName: this.#table,
        Key: keys.creditRun(period),
        ProjectionExpression: '#slots',
        ExpressionAttributeNames: { '#slots': RUN.plannedSlots },
        ConsistentRead: true,
        ReturnConsumedCapacity: this.#returnCapacity,
      }),
    );
    this.#report('plannedSlots', ConsumedCapacity);
    const slots = Item?.[RUN.plannedSlots];
    if (!(slots instanceof Set)) return [];
    return [...slots].map(Number).sort((a, b) => a - b);
  }

  /**
   * One Query of the period's partition, eventually consistent: the run item and the
   * ring's at most 20 items (about 4 KB, under one read unit), newest error first.
   */
  async readCounters(period: string): Promise<{
    planned: number;
    refreshed: number;
    skipped: number;
    failed: number;
    totalMs: number;
    lastRunAt: number | null;
    recentErrors: RefreshError[];
  } | null> {
    const { Items = [], ConsumedCapacity } = await this.#documents.send(
      new QueryCommand({
        TableName: this.#table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.creditRun(period).pk },
        ReturnConsumedCapacity: this.#returnCapacity,
      }),
    );
    this.#report('readCounters', ConsumedCapacity);
    const run = Items.find((item) => item.sk === keys.creditRun(period).sk);
    if (!run) return null;
    const recentErrors = Items.filter((item) => item.sk !== run.sk && typeof item.seq === 'number')
      .sort((a, b) => Number(b.seq) - Number(a.seq))
      .slice(0, RECENT_ERRORS_KEPT)
      .map((item) => ({
        userId: String(item[RUN.userId]),
        error: String(item[RUN.error]),
        at: String(item[RUN.at]),
      }));
    const lastRunAt = run[RUN.lastRunAt];
    return {
      planned: numberOr(run[RUN.planned], 0),
      refreshed: numberOr(run[RUN.refreshed], 0),
      skipped: numberOr(run[RUN.skipped], 0),
      failed: numberOr(run[RUN.failed], 0),
      totalMs: numberOr(run[RUN.totalMs], 0),
      lastRunAt: typeof lastRunAt === 'number' ? lastRunAt : null,
      recentErrors,
    };
  }

  #report(operation: CreditStoreOperation, consumed: ConsumedCapacity | undefined): void {
    if (!this.#onCapacity || !consumed) return;
    const total = consumed.CapacityUnits ?? 0;
    const read = READ_OPERATIONS.has(operation);
    this.#onCapacity(operation, {
      readUnits: read ? total : 0,
      writeUnits: read ? 0 : total,
      indexUnits:
        consumed.GlobalSecondaryIndexes?.[CREDIT_SLOT_INDEX.indexName]?.CapacityUnits ?? 0,
    });
  }
}

const READ_OPERATIONS: ReadonlySet<CreditStoreOperation> = new Set([
  'usersDue',
  'getAccount',
  'plannedSlots',
  'readCounters',
]);

/** The user of a profile item: its `userId`, else its key. */
function userIdOf(item: Record<string, unknown>): string {
  if (typeof item[A.userId] === 'string') return item[A.userId] as string;
  return String(item.pk).slice(PROFILE_PREFIX.length);
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}
