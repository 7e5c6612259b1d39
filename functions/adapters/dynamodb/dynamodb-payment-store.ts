/**
 * DynamoDB implementation of the payments ports: the store the payment consumer
 * commits through (PaymentStore), the read side of the payment routes
 * (PaymentQueries), and the customer -> user link read from the billing table
 * (CustomerDirectory). Item and index layout: payment-table-schema.ts; capacity
 * arithmetic: docs/payments-capacity.md.
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { commitInRounds } from '../../core/payments/commit-rounds.ts';
import {
  type CommitResult,
  type CustomerDirectory,
  type DailySummaryRow,
  InvalidCursorError,
  PAYMENT_STATUSES,
  type Page,
  type PaidPaymentsQuery,
  type PaymentCommit,
  type PaymentQueries,
  type PaymentStatus,
  type PaymentStore,
  type PaymentView,
  type RefundsQuery,
  type StoredPayment,
  type UserPaymentsQuery,
} from '../../core/payments/ports.ts';
import { asError } from '../../core/shared/errors.ts';
import type { LedgerEvent } from '../../core/shared/event-ledger.ts';
import {
  addDays,
  cursorCodec,
  daysBetween,
  ISO_DATE,
  parseTimeKey,
} from '../paging/query-cursor.ts';
import { billingKeys } from './billing-table-keys.ts';
import {
  batchGetAll,
  type PackMember,
  putEach,
  retryPause,
  sendPacks,
  TRANSACTION_ITEM_LIMIT,
  type TransactItem,
  type TransactOutcome,
  transactWrite,
} from './dynamodb-batch.ts';
import {
  decodeLedgerPages,
  encodeLedgerPages,
  type PackedLedgerPage,
} from './ledger-pack-codec.ts';
import { decodePaymentState, encodePaymentState } from './payment-state-codec.ts';
import {
  DEFAULT_SUMMARY_SHARDS,
  LEDGER_SK_PREFIX,
  PAYMENT_INDEX,
  PAYMENT_INDEX_ATTRIBUTE,
  PAYMENT_INDEX_SHARDS,
  PAYMENT_LEDGER_HEAD_ATTRIBUTE,
  PAYMENT_VIEW_ATTRIBUTE,
  paymentIdOfKey,
  paymentIndexAttributes,
  paymentIndexKeys,
  paymentKeys,
  summaryAttributes,
} from './payment-table-schema.ts';
import { decodePaymentView, encodePaymentView } from './payment-view-codec.ts';

/** The read operations whose consumed read units `onReadUnits` reports. */
export type PaymentReadOperation =
  | 'loadPayments'
  | 'getPayment'
  | 'listUserPayments'
  | 'listRefunds'
  | 'listPaid'
  | 'dailySummary';

export interface DynamoDbPaymentStoreOptions {
  client: DynamoDBClient;
  paymentsTableName: string;
  /** Transactions in flight at once in `commitAll`. Default 4. */
  concurrency?: number;
  /** Ledger packs expire this many days after they were written. Default 90. */
  ledgerRetentionDays?: number;
  /**
   * Shards of each day's summary (1-10). Default 8: `dailySummary` reads them all in one
   * BatchGetItem, 4 read units. Writers and readers must agree: only ever raise it, and
   * only once every reader is deployed with the new value.
   */
  summaryShards?: number;
  /** Called after each read with the read units DynamoDB reported (metrics, tests, benchmarks). */
  onReadUnits?: (operation: PaymentReadOperation, readUnits: number) => void;
}

/** One commit's ledger page: the events it recorded. */
export interface PaymentLedgerPage {
  paymentId: string;
  revision: number;
  appliedAt: number;
  events: LedgerEvent[];
}

/** Reports read more than this many days in one call (the handler allows 92). */
export const MAX_REPORT_DAYS = 366;

/**
 * Most bytes of ledger pages, as JSON before compression, one pack item holds
 * (DynamoDB's item limit is 400 KB; deflate never grows JSON by more than a few bytes
 * per 32 KB): a transaction whose pages would exceed it is split. A typical pack is
 * under 1 KB as stored.
 */
const LEDGER_PACK_MAX_BYTES = 256 * 1024;

/** Charge pointers an instance remembers having put; also ledger heads remembered. */
const POINTERS_REMEMBERED = 10_000;

/** A payment's ledger head at a revision: the ref of the pack with its newest page (null: none). */
interface LedgerHead {
  revision: number;
  ref: string | null;
}

/**
 * Retries of a transaction cancelled only because another transaction held its summary
 * shard. Each retry picks another shard: the summary is a sum, any shard will do.
 */
const SUMMARY_CONFLICT_RETRIES = 3;

const A = PAYMENT_INDEX_ATTRIBUTE;

/** Where a k-way merged report resumes: the day, and per index shard the last key returned (`null`: none yet, `true`: shard done). */
interface MergePosition {
  d: string;
  k: (string | null | true)[];
}

interface SummaryBucket {
  status: PaymentStatus;
  currency: string;
  count: number;
  amount: number;
}

interface Pack {
  /** The members' payment items, in member order. */
  items: TransactItem[];
  members: PackMember[];
  /** The ledger pack this transaction writes: its ref, and one page per member. */
  ledgerRef: string;
  pages: PackedLedgerPage[];
  /** Size of `pages` as JSON: a bound on the pack item's size. */
  pageBytes: number;
  /** date -> bucket -> sum of the members' deltas. */
  summary: Map<string, Map<string, SummaryBucket>>;
}

const invalidCursor = (reason: string) => new InvalidCursorError(reason);

const historyCursor = cursorCodec<UserPaymentsQuery, string>({
  scope: 'payments.userHistory',
  params: (query) => ({ userId: query.userId, status: query.status ?? null }),
  // The index partition comes from the query, so a position can only resume inside it.
  parse: (position) => (parseTimeKey(position) !== undefined ? (position as string) : undefined),
  invalid: invalidCursor,
});

function mergeCursor<Q>(
  scope: string,
  params: (query: Q) => Record<string, string>,
  range: (query: Q) => { from: string; to: string },
) {
  return cursorCodec<Q, MergePosition>({
    scope,
    params,
    parse: (position, query) => {
      if (typeof position !== 'object' || position === null) return undefined;
      const { d, k } = position as Partial<MergePosition>;
      const { from, to } = range(query);
      if (typeof d !== 'string' || !ISO_DATE.test(d) || d < from || d > to) return undefined;
      if (!Array.isArray(k) || k.length !== PAYMENT_INDEX_SHARDS) return undefined;
      // Every key must be a key of that day's partitions.
      const valid = k.every((key) => key === null || key === true || parseTimeKey(key)?.date === d);
      return valid ? { d, k: [...k] } : undefined;
    },
    invalid: invalidCursor,
  });
}

const refundsCursor = mergeCursor<RefundsQuery>(
  'payments.refunds',
  (query) => ({ from: query.from, to: query.to }),
  (query) => ({ from: query.from, to: query.to }),
);

const paidCursor = mergeCursor<PaidPaymentsQuery>(
  'payments.paid',
  (query) => ({ status: query.status, paidFrom: query.paidFrom, paidTo: query.paidTo }),
  (query) => ({ from: query.paidFrom, to: query.paidTo }),
);

/**
 * Payments table adapter. Commits pack many payments into few TransactWriteItems
 * calls; reads are key lookups and index queries, eventually consistent except
 * `loadPayments` (the consumer's read before a conditional write) and `readLedger`.
 */
export class DynamoDbPaymentStore implements PaymentStore, PaymentQueries {
  readonly #documents: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #retentionDays: number;
  readonly #concurrency: number;
  readonly #summaryShards: number;
  readonly #onReadUnits: DynamoDbPaymentStoreOptions['onReadUnits'];
  /** Pointers this instance has put: immutable facts, so never put twice. */
  readonly #pointersPut = new Set<string>();
  /**
   * The ledger head (ref of the pack holding its newest page) of each payment this
   * instance read or committed, at that revision: a commit's page names the previous
   * head, so the payment item holds one ref however many commits it has.
   */
  readonly #ledgerHeads = new Map<string, LedgerHead>();

  constructor(options: DynamoDbPaymentStoreOptions) {
    const shards = options.summaryShards ?? DEFAULT_SUMMARY_SHARDS;
    if (!Number.isInteger(shards) || shards < 1 || shards > 10) {
      // Past 10, one day's BatchGetItem costs more than 5 read units.
      throw new RangeError(`summaryShards must be an integer from 1 to 10, got ${shards}`);
    }
    this.#summaryShards = shards;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#retentionDays = options.ledgerRetentionDays ?? 90;
    this.#table = options.paymentsTableName;
    this.#onReadUnits = options.onReadUnits;
    this.#documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  // ---- PaymentStore --------------------------------------------------------------

  async loadPayments(paymentIds: readonly string[]): Promise<Map<string, StoredPayment>> {
    const found = new Map<string, StoredPayment>();
    const unique = [...new Set(paymentIds)];
    const projection = {
      ProjectionExpression: 'pk, revision, #state, recentEvents, #ledger',
      ExpressionAttributeNames: { '#state': 'state', '#ledger': PAYMENT_LEDGER_HEAD_ATTRIBUTE },
    };
    if (unique.length === 0) return found;
    if (unique.length === 1) {
      // One id (a retry after a lost race): GetItem is the cheaper call.
      const { Item, ConsumedCapacity } = await this.#documents.send(
        new GetCommand({
          TableName: this.#table,
          Key: paymentKeys.payment(unique[0]!),
          ConsistentRead: true,
          ReturnConsumedCapacity: 'TOTAL',
          ...projection,
        }),
      );
      this.#report('loadPayments', ConsumedCapacity?.CapacityUnits ?? 0);
      if (Item) found.set(unique[0]!, this.#stored(unique[0]!, Item));
      return found;
    }
    const { items, readUnits } = await batchGetAll(this.#documents, {
      tableName: this.#table,
      keys: unique.map((id) => paymentKeys.payment(id)),
      consistentRead: true,
      projectionExpression: projection.ProjectionExpression,
      expressionAttributeNames: projection.ExpressionAttributeNames,
    });
    this.#report('loadPayments', readUnits);
    for (const item of items) {
      const paymentId = paymentIdOfKey(String(item.pk));
      found.set(paymentId, this.#stored(paymentId, item));
    }
    return found;
  }

  /** The stored payment of an item read, remembering its ledger head. */
  #stored(paymentId: string, item: Record<string, unknown>): StoredPayment {
    const stored = toStoredPayment(item);
    this.#rememberHead(paymentId, { revision: stored.revision, ref: ledgerHeadOf(item) });
    return stored;
  }

  #rememberHead(paymentId: string, head: LedgerHead): void {
    if (this.#ledgerHeads.size >= POINTERS_REMEMBERED) this.#ledgerHeads.clear();
    this.#ledgerHeads.set(paymentId, head);
  }

  /**
   * The ledger head each commit's page must name: remembered at the revision the commit
   * expects, else read (a commit this instance did not load first). A head read at
   * another revision means the commit's own condition fails anyway.
   */
  async #previousHeads(commits: readonly PaymentCommit[]): Promise<Map<string, string | null>> {
    const heads = new Map<string, string | null>();
    const unknown: string[] = [];
    for (const commit of commits) {
      if (commit.expectedRevision === 0) {
        heads.set(commit.paymentId, null);
        continue;
      }
      const head = this.#ledgerHeads.get(commit.paymentId);
      if (head?.revision === commit.expectedRevision) heads.set(commit.paymentId, head.ref);
      else unknown.push(commit.paymentId);
    }
    if (unknown.length > 0) {
      const { items } = await batchGetAll(this.#documents, {
        tableName: this.#table,
        keys: unknown.map((id) => paymentKeys.payment(id)),
        consistentRead: true,
        projectionExpression: 'pk, #ledger',
        expressionAttributeNames: { '#ledger': PAYMENT_LEDGER_HEAD_ATTRIBUTE },
      });
      for (const item of items) heads.set(paymentIdOfKey(String(item.pk)), ledgerHeadOf(item));
    }
    return heads;
  }

  async commit(commit: PaymentCommit): Promise<CommitResult> {
    const [result] = await this.commitAll([commit]);
    return result!;
  }

  /**
   * Commits as if one by one, in order: a payment named twice has its second commit
   * sent once the first is settled, so its ledger page names the pack the first wrote
   * (and its revision check sees it), never the head both read before.
   */
  async commitAll(commits: readonly PaymentCommit[]): Promise<CommitResult[]> {
    return await commitInRounds(commits, (round) => this.#commitRound(round));
  }

  /**
   * Packs commits of distinct payments into TransactWriteItems calls of at most 100
   * items, sent `concurrency` at a time. Each call writes its members' payment items,
   * one ledger pack with every member's ledger page, and its members' summary deltas,
   * summed per day, to one summary shard per day touched.
   */
  async #commitRound(commits: readonly PaymentCommit[]): Promise<CommitResult[]> {
    const results: CommitResult[] = new Array(commits.length);
    // Pointers first, so no committed payment ever lists a charge that has none.
    const pointerError = await this.#putChargePointers(commits);
    let previous: Map<string, string | null>;
    try {
      previous = await this.#previousHeads(commits);
    } catch (error) {
      const failed = { status: 'failed' as const, error: asError(error) };
      return commits.map(() => failed);
    }
    const packs: Pack[] = [];
    let current: Pack | undefined;
    commits.forEach((commit, index) => {
      if (pointerError && pointerIds(commit).length > 0) {
        results[index] = { status: 'failed', error: pointerError };
        return;
      }
      const page: PackedLedgerPage = {
        paymentId: commit.paymentId,
        revision: commit.expectedRevision + 1,
        appliedAt: commit.ledger.appliedAt,
        events: commit.ledger.events,
        prev: previous.get(commit.paymentId) ?? null,
      };
      const pageBytes = JSON.stringify(page).length;
      const newDays = new Set(
        commit.summary.map((delta) => delta.date).filter((date) => !current?.summary.has(date)),
      );
      // The members, the ledger pack, one summary item per day.
      const size = (current?.items.length ?? 0) + 1 + (current?.summary.size ?? 0);
      if (
        !current ||
        size + 1 + newDays.size > TRANSACTION_ITEM_LIMIT ||
        current.pageBytes + pageBytes > LEDGER_PACK_MAX_BYTES
      ) {
        current = {
          items: [],
          members: [],
          ledgerRef: newLedgerRef(),
          pages: [],
          pageBytes: 0,
          summary: new Map(),
        };
        packs.push(current);
      }
      current.members.push({ index, first: current.items.length, count: 1 });
      current.items.push(this.#paymentPut(commit, current.ledgerRef));
      current.pages.push(page);
      current.pageBytes += pageBytes;
      for (const delta of commit.summary) {
        const buckets = current.summary.get(delta.date) ?? new Map<string, SummaryBucket>();
        current.summary.set(delta.date, buckets);
        const bucketKey = `${delta.status}|${delta.currency}`;
        const bucket = buckets.get(bucketKey) ?? {
          status: delta.status,
          currency: delta.currency,
          count: 0,
          amount: 0,
        };
        bucket.count += delta.count;
        bucket.amount += delta.amount;
        buckets.set(bucketKey, bucket);
      }
    });

    await sendPacks(
      packs,
      this.#concurrency,
      async (pack) => {
        const outcome = await this.#send(pack);
        for (const page of pack.pages) {
          if (outcome.status === 'committed') {
            this.#rememberHead(page.paymentId, { revision: page.revision, ref: pack.ledgerRef });
          } else {
            this.#ledgerHeads.delete(page.paymentId);
          }
        }
        return outcome;
      },
      results,
    );
    return results;
  }

  /**
   * Every ledger page of a payment, oldest first (audits, replay, tests): the pages along
   * its chain of packs, and any page of the earlier one-item-per-commit layout.
   */
  async readLedger(paymentId: string): Promise<PaymentLedgerPage[]> {
    const [packed, legacy] = await Promise.all([
      this.#packedLedgerPages(paymentId),
      this.#legacyLedgerPages(paymentId),
    ]);
    return [...legacy, ...packed].sort((a, b) => a.revision - b.revision);
  }

  /** Walks the payment's pages from its head back, one pack per commit (audits only). */
  async #packedLedgerPages(paymentId: string): Promise<PaymentLedgerPage[]> {
    const { Item } = await this.#documents.send(
      new GetCommand({
        TableName: this.#table,
        Key: paymentKeys.payment(paymentId),
        ProjectionExpression: '#ledger',
        ExpressionAttributeNames: { '#ledger': PAYMENT_LEDGER_HEAD_ATTRIBUTE },
        ConsistentRead: true,
      }),
    );
    const pages: PaymentLedgerPage[] = [];
    const seen = new Set<string>();
    for (let ref = Item ? ledgerHeadOf(Item) : null; ref && !seen.has(ref); ) {
      seen.add(ref);
      const { Item: pack } = await this.#documents.send(
        new GetCommand({
          TableName: this.#table,
          Key: paymentKeys.ledgerPack(ref),
          ProjectionExpression: 'pages',
          ConsistentRead: true,
        }),
      );
      // A pack past its TTL is gone: it and the older pages are missing, as expired pages always were.
      const page = pack
        ? decodeLedgerPages(pack.pages).find((entry) => entry.paymentId === paymentId)
        : undefined;
      if (!page) break;
      pages.push({
        paymentId,
        revision: Number(page.revision),
        appliedAt: Number(page.appliedAt),
        events: page.events,
      });
      ref = typeof page.prev === 'string' ? page.prev : null;
    }
    return pages;
  }

  async #legacyLedgerPages(paymentId: string): Promise<PaymentLedgerPage[]> {
    const pages: PaymentLedgerPage[] = [];
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const page = await this.#documents.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ledger)',
          ExpressionAttributeValues: {
            ':pk': paymentKeys.payment(paymentId).pk,
            ':ledger': LEDGER_SK_PREFIX,
          },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        pages.push({
          paymentId,
          revision: Number(item.revision),
          appliedAt: Number(item.appliedAt),
          events: item.events as LedgerEvent[],
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return pages;
  }

  // ---- PaymentQueries ------------------------------------------------------------

  async getPayment(id: string): Promise<PaymentView | null> {
    const names = { '#view': PAYMENT_VIEW_ATTRIBUTE };
    if (!id.startsWith('ch_')) {
      const { Item, ConsumedCapacity } = await this.#documents.send(
        new GetCommand({
          TableName: this.#table,
          Key: paymentKeys.payment(id),
          ProjectionExpression: '#view',
          ExpressionAttributeNames: names,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.#report('getPayment', ConsumedCapacity?.CapacityUnits ?? 0);
      return Item?.view === undefined ? null : decodePaymentView(Item.view);
    }
    // A charge id is either a payment of its own (a charge without a PaymentIntent) or
    // points to its PaymentIntent's payment: ask for both in one round trip.
    const { items, readUnits } = await batchGetAll(this.#documents, {
      tableName: this.#table,
      keys: [paymentKeys.payment(id), paymentKeys.charge(id)],
      projectionExpression: 'sk, #view, paymentId',
      expressionAttributeNames: names,
    });
    let units = readUnits;
    try {
      // A charge-keyed record without a view yet (only a refund or dispute named the
      // charge) must not hide the PaymentIntent payment the pointer leads to.
      const own = items.find((item) => item.sk === paymentKeys.payment(id).sk);
      if (own?.view !== undefined) return decodePaymentView(own.view);
      const pointer = items.find((item) => item.sk === paymentKeys.charge(id).sk);
      if (typeof pointer?.paymentId !== 'string') return null;
      const { Item, ConsumedCapacity } = await this.#documents.send(
        new GetCommand({
          TableName: this.#table,
          Key: paymentKeys.payment(pointer.paymentId),
          ProjectionExpression: '#view',
          ExpressionAttributeNames: names,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      units += ConsumedCapacity?.CapacityUnits ?? 0;
      return Item?.view === undefined ? null : decodePaymentView(Item.view);
    } finally {
      this.#report('getPayment', units);
    }
  }

  async listUserPayments(query: UserPaymentsQuery): Promise<Page<PaymentView>> {
    const after = query.cursor ? historyCursor.decode(query, query.cursor) : undefined;
    const [indexName, partitionAttribute, partition] = query.status
      ? [
          PAYMENT_INDEX.userStatus,
          A.userStatusPk,
          paymentIndexKeys.userStatus(query.userId, query.status),
        ]
      : [PAYMENT_INDEX.userHistory, A.userPk, paymentIndexKeys.user(query.userId)];
    let startKey: QueryCommandInput['ExclusiveStartKey'] = after
      ? {
          [partitionAttribute]: partition,
          [A.createdSk]: after,
          ...paymentKeys.payment(parseTimeKey(after)!.id),
        }
      : undefined;
    // One item more than the page: a next cursor only when there is a next item.
    const wanted = query.limit + 1;
    const found: { key: string; view: PaymentView }[] = [];
    let readUnits = 0;
    do {
      const page = await this.#documents.send(
        new QueryCommand({
          TableName: this.#table,
          IndexName: indexName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: {
            '#pk': partitionAttribute,
            '#sk': A.createdSk,
            '#view': 'view',
          },
          ExpressionAttributeValues: { ':pk': partition },
          ProjectionExpression: '#sk, #view',
          ScanIndexForward: false,
          Limit: wanted - found.length,
          ExclusiveStartKey: startKey,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
      for (const item of page.Items ?? []) {
        found.push({ key: String(item[A.createdSk]), view: decodePaymentView(item.view) });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey && found.length < wanted);
    this.#report('listUserPayments', readUnits);
    const items = found.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items: items.map((entry) => entry.view),
      nextCursor: found.length > query.limit && last ? historyCursor.encode(query, last.key) : null,
    };
  }

  async listRefunds(query: RefundsQuery): Promise<Page<PaymentView>> {
    const start = query.cursor ? refundsCursor.decode(query, query.cursor) : undefined;
    const { views, next } = await this.#mergeDays({
      operation: 'listRefunds',
      indexName: PAYMENT_INDEX.refunds,
      partitionAttribute: A.refundPk,
      sortAttribute: A.refundSk,
      partition: (date, shard) => paymentIndexKeys.refund(date, shard),
      from: query.from,
      to: query.to,
      limit: query.limit,
      start,
    });
    return { items: views, nextCursor: next ? refundsCursor.encode(query, next) : null };
  }

  async listPaid(query: PaidPaymentsQuery): Promise<Page<PaymentView>> {
    const start = query.cursor ? paidCursor.decode(query, query.cursor) : undefined;
    const { views, next } = await this.#mergeDays({
      operation: 'listPaid',
      indexName: PAYMENT_INDEX.paid,
      partitionAttribute: A.paidPk,
      sortAttribute: A.paidSk,
      partition: (date, shard) => paymentIndexKeys.paid(query.status, date, shard),
      from: query.paidFrom,
      to: query.paidTo,
      limit: query.limit,
      start,
    });
    return { items: views, nextCursor: next ? paidCursor.encode(query, next) : null };
  }

  /** One BatchGetItem of the day's summary shards, eventually consistent. */
  async dailySummary(date: string): Promise<DailySummaryRow[]> {
    const { items, readUnits } = await batchGetAll(this.#documents, {
      tableName: this.#table,
      keys: Array.from({ length: this.#summaryShards }, (_, shard) =>
        paymentKeys.summary(date, shard),
      ),
    });
    this.#report('dailySummary', readUnits);
    const rows = new Map<string, DailySummaryRow>();
    for (const item of items) {
      for (const status of PAYMENT_STATUSES) {
        const prefix = `c_${status}_`;
        for (const [name, value] of Object.entries(item)) {
          if (!name.startsWith(prefix)) continue;
          const currency = name.slice(prefix.length);
          const key = `${status}|${currency}`;
          const row = rows.get(key) ?? { status, gateway: 'stripe', currency, count: 0, amount: 0 };
          row.count += Number(value);
          row.amount += Number(item[summaryAttributes(status, currency).amount] ?? 0);
          rows.set(key, row);
        }
      }
    }
    return sortSummaryRows([...rows.values()]);
  }

  // ---- internals -----------------------------------------------------------------

  #report(operation: PaymentReadOperation, readUnits: number): void {
    this.#onReadUnits?.(operation, readUnits);
  }

  /**
   * The payment item's write: a Put of `paymentItem`, so the attributes its view no
   * longer has (index keys that stopped applying) go away, conditioned on the revision read.
   */
  #paymentPut(commit: PaymentCommit, ledgerRef: string): TransactItem {
    return {
      Put: {
        TableName: this.#table,
        Item: paymentItem(commit, ledgerRef),
        ...(commit.expectedRevision === 0
          ? { ConditionExpression: 'attribute_not_exists(pk)' }
          : {
              ConditionExpression: 'revision = :expected',
              ExpressionAttributeValues: { ':expected': commit.expectedRevision },
            }),
      },
    };
  }

  /** The pack's ledger item: every member's page, under a ref no other pack has. */
  #ledgerPackItem(pack: Pack): TransactItem {
    const newest = Math.max(...pack.pages.map((page) => page.appliedAt));
    return {
      Put: {
        TableName: this.#table,
        Item: {
          ...paymentKeys.ledgerPack(pack.ledgerRef),
          pages: encodeLedgerPages(pack.pages),
          expiresAt: Math.floor(newest / 1000) + this.#retentionDays * 86_400,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** One ADD per day the pack touches, on a shard picked at random for this attempt. */
  #summaryItems(pack: Pack): TransactItem[] {
    const items: TransactItem[] = [];
    for (const [date, buckets] of pack.summary) {
      const names: Record<string, string> = {};
      const values: Record<string, number> = {};
      const adds: string[] = [];
      let n = 0;
      for (const bucket of buckets.values()) {
        if (bucket.count === 0 && bucket.amount === 0) continue;
        const attributes = summaryAttributes(bucket.status, bucket.currency);
        names[`#c${n}`] = attributes.count;
        names[`#a${n}`] = attributes.amount;
        values[`:c${n}`] = bucket.count;
        values[`:a${n}`] = bucket.amount;
        adds.push(`#c${n} :c${n}`, `#a${n} :a${n}`);
        n++;
      }
      if (adds.length === 0) continue;
      items.push({
        Update: {
          TableName: this.#table,
          Key: paymentKeys.summary(date, Math.floor(Math.random() * this.#summaryShards)),
          UpdateExpression: `ADD ${adds.join(', ')}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        },
      });
    }
    return items;
  }

  async #send(pack: Pack): Promise<TransactOutcome> {
    // The members first, in member order (`memberResult` reads their reasons so), then
    // the ledger pack, then the summary shards.
    const written = pack.items.length + 1;
    for (let attempt = 0; ; attempt++) {
      const outcome = await transactWrite(this.#documents, [
        ...pack.items,
        this.#ledgerPackItem(pack),
        ...this.#summaryItems(pack),
      ]);
      if (outcome.status !== 'cancelled') return outcome;
      const { reasons } = outcome;
      const membersFine = reasons
        .slice(0, written)
        .every((code) => code === undefined || code === 'None');
      const summaryConflict = reasons.slice(written).some((code) => code === 'TransactionConflict');
      // Only the shared summary shard was busy (another pack's transaction held it):
      // nothing was written, so the same pack on another shard is safe to send.
      if (membersFine && summaryConflict && attempt < SUMMARY_CONFLICT_RETRIES) {
        await retryPause(attempt + 1, 'summary shard conflict', SUMMARY_CONFLICT_RETRIES);
        continue;
      }
      return outcome;
    }
  }

  /** Puts every commit's new charge pointers; the error if some could not be written. */
  async #putChargePointers(commits: readonly PaymentCommit[]): Promise<Error | undefined> {
    // By charge: each pointer put once, however many commits name it.
    const pending = new Map<string, [remembered: string, item: Record<string, string>]>();
    for (const commit of commits) {
      for (const chargeId of pointerIds(commit)) {
        const remembered = `${chargeId}|${commit.paymentId}`;
        if (this.#pointersPut.has(remembered)) continue;
        pending.set(chargeId, [
          remembered,
          { ...paymentKeys.charge(chargeId), chargeId, paymentId: commit.paymentId },
        ]);
      }
    }
    const entries = [...pending.values()];
    if (entries.length === 0) return undefined;
    try {
      // A pointer only states which payment a charge belongs to: a plain put (one
      // unit, not a transaction's two) is safe to repeat after a lost race.
      await putEach(
        this.#documents,
        this.#table,
        entries.map(([, item]) => item),
      );
      // Bounded: a warm instance sees many payments; forgetting only costs a repeated put.
      if (this.#pointersPut.size + entries.length > POINTERS_REMEMBERED) this.#pointersPut.clear();
      for (const [remembered] of entries) this.#pointersPut.add(remembered);
      return undefined;
    } catch (error) {
      return asError(error);
    }
  }

  /**
   * Reads an index partitioned by day and shard, days ascending; within a day, a k-way
   * merge of the shards' queries (each ascending), so the page is oldest first. It looks
   * for one item past the page, as far as `to`: a next cursor only when there is a next
   * item, so the last page is never an empty one.
   */
  async #mergeDays(args: {
    operation: PaymentReadOperation;
    indexName: string;
    partitionAttribute: string;
    sortAttribute: string;
    partition: (date: string, shard: number) => string;
    from: string;
    to: string;
    limit: number;
    start: MergePosition | undefined;
  }): Promise<{ views: PaymentView[]; next: MergePosition | null }> {
    const span = daysBetween(args.from, args.to);
    if (Number.isNaN(span) || span >= MAX_REPORT_DAYS) {
      throw new RangeError(
        `report range must be valid dates at most ${MAX_REPORT_DAYS} days apart`,
      );
    }
    const views: PaymentView[] = [];
    /** Where the page ends: the position right after its last item. */
    let pageEnd: MergePosition | null = null;
    const wanted = args.limit + 1;
    let readUnits = 0;
    const fresh = (): (string | null | true)[] => new Array(PAYMENT_INDEX_SHARDS).fill(null);
    let date = args.start?.d ?? args.from;
    let positions = args.start?.k ?? fresh();
    try {
      while (date <= args.to) {
        const shards = positions.map((position, shard) => ({
          shard,
          buffer: [] as { key: string; view: PaymentView }[],
          last: position,
          more: position !== true,
          startKey:
            typeof position === 'string'
              ? {
                  [args.partitionAttribute]: args.partition(date, shard),
                  [args.sortAttribute]: position,
                  ...paymentKeys.payment(parseTimeKey(position)!.id),
                }
              : (undefined as QueryCommandInput['ExclusiveStartKey']),
        }));
        const done = (s: (typeof shards)[number]) => s.buffer.length === 0 && !s.more;
        while (views.length < wanted) {
          const need = wanted - views.length;
          const open = shards.filter((s) => s.more || s.buffer.length > 0).length;
          // Refill every drained shard that may hold more before taking the next oldest.
          // A share of the need (plus one) each: hashed ids spread evenly over the shards.
          const pageSize = Math.min(need, Math.ceil(need / Math.max(open, 1)) + 1);
          const drained = shards.filter((s) => s.buffer.length === 0 && s.more);
          await Promise.all(
            drained.map(async (s) => {
              const page = await this.#documents.send(
                new QueryCommand({
                  TableName: this.#table,
                  IndexName: args.indexName,
                  KeyConditionExpression: '#pk = :pk',
                  ExpressionAttributeNames: {
                    '#pk': args.partitionAttribute,
                    '#sk': args.sortAttribute,
                    '#view': PAYMENT_VIEW_ATTRIBUTE,
                  },
                  ExpressionAttributeValues: { ':pk': args.partition(date, s.shard) },
                  ProjectionExpression: '#sk, #view',
                  ScanIndexForward: true,
                  Limit: pageSize,
                  ExclusiveStartKey: s.startKey,
                  ReturnConsumedCapacity: 'TOTAL',
                }),
              );
              readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
              for (const item of page.Items ?? []) {
                s.buffer.push({
                  key: String(item[args.sortAttribute]),
                  view: decodePaymentView(item.view),
                });
              }
              s.startKey = page.LastEvaluatedKey;
              s.more = page.LastEvaluatedKey !== undefined;
            }),
          );
          let oldest: (typeof shards)[number] | undefined;
          for (const s of shards) {
            const head = s.buffer[0];
            if (head && (!oldest || head.key < oldest.buffer[0]!.key)) oldest = s;
          }
          if (!oldest) break;
          const head = oldest.buffer.shift()!;
          views.push(head.view);
          oldest.last = head.key;
          if (views.length === args.limit) {
            // A shard still holding read items resumes after its last returned one.
            pageEnd = { d: date, k: shards.map((s) => (done(s) ? true : s.last)) };
          }
        }
        if (views.length === wanted) {
          // The item past the page exists: the page ends where its last item was taken,
          // or, when that day was done, at the day of the next item (the days between are empty).
          const dayDone = pageEnd?.k.every((position) => position === true) ?? false;
          const next = dayDone ? { d: date, k: fresh() } : pageEnd;
          return { views: views.slice(0, args.limit), next };
        }
        date = addDays(date, 1);
        positions = fresh();
      }
      return { views, next: null };
    } finally {
      this.#report(args.operation, readUnits);
    }
  }
}

/** The customer -> user link, read from the subscription context's account items. */
export class DynamoDbCustomerDirectory implements CustomerDirectory {
  readonly #documents: DynamoDBDocumentClient;
  readonly #billingTable: string;

  constructor(options: { client: DynamoDBClient; billingTableName: string }) {
    this.#documents = DynamoDBDocumentClient.from(options.client);
    this.#billingTable = options.billingTableName;
  }

  async userIdsOf(customerIds: readonly string[]): Promise<Map<string, string>> {
    const links = new Map<string, string>();
    if (customerIds.length === 0) return links;
    // Eventually consistent: a link is written once, well before the payments that need it.
    const { items } = await batchGetAll(this.#documents, {
      tableName: this.#billingTable,
      keys: customerIds.map((id) => billingKeys.account(id)),
      projectionExpression: 'customerId, userId',
    });
    for (const item of items) {
      if (typeof item.customerId === 'string' && typeof item.userId === 'string' && item.userId) {
        links.set(item.customerId, item.userId);
      }
    }
    return links;
  }
}

/**
 * A new ledger pack's ref: 48 random bits, 8 characters, since every payment item
 * carries one per commit. The pack's put is conditioned on the ref being unused, so a
 * collision (about 1 in 300,000 packs with 90 days of packs at 100 a second) only
 * cancels that transaction, whose commits are then resent under a new ref.
 */
function newLedgerRef(): string {
  return randomBytes(6).toString('base64url');
}

/** Charge ids that need a pointer: not the payment's own id (a charge without a PaymentIntent). */
function pointerIds(commit: PaymentCommit): string[] {
  return commit.newChargeIds.filter((chargeId) => chargeId !== commit.paymentId);
}

/** Rows with payments in them, by status then currency. */
function sortSummaryRows(rows: DailySummaryRow[]): DailySummaryRow[] {
  return rows
    .filter((row) => row.count !== 0 || row.amount !== 0)
    .sort((a, b) =>
      a.status !== b.status
        ? a.status < b.status
          ? -1
          : 1
        : a.currency < b.currency
          ? -1
          : a.currency > b.currency
            ? 1
            : 0,
    );
}

/**
 * The payment item a commit writes (its revision is the one after `expectedRevision`),
 * naming the ledger pack that holds this commit's page. Exported so the size tests
 * measure exactly what is written.
 */
export function paymentItem(commit: PaymentCommit, ledgerRef: string): Record<string, unknown> {
  return {
    // No paymentId attribute: the key holds it, and every byte counts here.
    ...paymentKeys.payment(commit.paymentId),
    revision: commit.expectedRevision + 1,
    [PAYMENT_LEDGER_HEAD_ATTRIBUTE]: ledgerRef,
    state: encodePaymentState(commit.state),
    recentEvents: commit.recentEvents,
    // No view yet (only a refund or dispute of it so far): stored, in no index.
    ...(commit.view ? { [PAYMENT_VIEW_ATTRIBUTE]: encodePaymentView(commit.view) } : {}),
    // A Put replaces the item, so keys of indexes that no longer apply go away.
    ...(commit.view ? paymentIndexAttributes(commit.view) : {}),
  };
}

/** The ref of the pack with a payment item's newest ledger page; null when it has none. */
function ledgerHeadOf(item: Record<string, unknown>): string | null {
  const head = item[PAYMENT_LEDGER_HEAD_ATTRIBUTE];
  return typeof head === 'string' ? head : null;
}

function toStoredPayment(item: Record<string, unknown>): StoredPayment {
  return {
    state: decodePaymentState(item.state),
    revision: Number(item.revision ?? 0),
    recentEvents: Array.isArray(item.recentEvents) ? (item.recentEvents as string[]) : [],
  };
}
