/**
 * The payments table's shape, in one module that both the CDK construct
 * (`lib/payment-tables.ts`) and the DynamoDB adapter import, so the keys the adapter
 * writes and the indexes the stack creates cannot drift.
 *
 * Items (pk / sk):
 *   PAYMENT#<id>              / PAYMENT             the payment: state, revision, view, index keys,
 *                                                    `ledger` (ref of the pack with its newest ledger page)
 *   LEDGER#<ref>              / LEDGER              a ledger pack: the ledger pages of every commit one
 *                                                    transaction carried, each naming the pack of its
 *                                                    payment's page before (`prev`), deflated
 *                                                    (ledger-pack-codec.ts) (TTL `expiresAt`)
 *   PAYMENT#<id>              / LEDGER#<revision>   a ledger page of the earlier layout (one item per
 *                                                    commit): no longer written, still read until it expires
 *   CHARGE#<ch_id>            / CHARGE              charge id -> PaymentIntent payment pointer
 *   SUMMARY#<date>#<shard>    / SUMMARY             daily summary counters, one shard of the day
 *
 * Indexes (sparse: an item is in an index only when it has the index's key attributes):
 *   byUser        USER#<userId>                          <createdAt>#<paymentId>   history, newest first
 *   byUserStatus  USER#<userId>#<status>                 <createdAt>#<paymentId>   history of one status
 *   byStatusPaid  PAID#<status>#<paidAt date>#<shard>     <paidAt>#<paymentId>      reconciliation
 *   byRefundDate  REFUND#<refundedAt date>#<shard>        <refundedAt>#<paymentId>  refund reports
 * Capacity arithmetic: docs/payments-capacity.md.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import type { PaymentStatus, PaymentView } from '../../core/payments/ports.ts';

/** Key attributes of the table itself. */
export const PAYMENT_TABLE_KEY = { partition: 'pk', sort: 'sk' } as const;

/** TTL attribute (epoch seconds), set on ledger packs (and earlier ledger pages) only. */
export const PAYMENT_TTL_ATTRIBUTE = 'expiresAt';

/**
 * The payment item's ledger head: the 8-character ref of the ledger pack holding its
 * newest page. Each page in a pack names the pack of the payment's page before (`prev`),
 * so the item stays the same size however many commits it has.
 */
export const PAYMENT_LEDGER_HEAD_ATTRIBUTE = 'ledger';

/** Index names. */
export const PAYMENT_INDEX = {
  userHistory: 'byUser',
  userStatus: 'byUserStatus',
  paid: 'byStatusPaid',
  refunds: 'byRefundDate',
} as const;

/** Index key attributes on the payment item; absent when the index does not apply. */
export const PAYMENT_INDEX_ATTRIBUTE = {
  userPk: 'userPk',
  userStatusPk: 'userStatusPk',
  /** Shared sort key of both user indexes. */
  createdSk: 'createdSk',
  paidPk: 'paidPk',
  paidSk: 'paidSk',
  refundPk: 'refundPk',
  refundSk: 'refundSk',
} as const;

/** The only non-key attribute the indexes carry (payment-view-codec.ts): every index read answers from it. */
export const PAYMENT_VIEW_ATTRIBUTE = 'view';

export interface PaymentIndexDefinition {
  indexName: string;
  partitionKey: string;
  sortKey: string;
  /** Non-key attributes projected (INCLUDE). */
  projected: readonly string[];
}

/** Every GSI of the table: the CDK construct and `createPaymentsTableInput` both read this list. */
export const PAYMENT_INDEXES: readonly PaymentIndexDefinition[] = [
  {
    indexName: PAYMENT_INDEX.userHistory,
    partitionKey: PAYMENT_INDEX_ATTRIBUTE.userPk,
    sortKey: PAYMENT_INDEX_ATTRIBUTE.createdSk,
    projected: [PAYMENT_VIEW_ATTRIBUTE],
  },
  {
    indexName: PAYMENT_INDEX.userStatus,
    partitionKey: PAYMENT_INDEX_ATTRIBUTE.userStatusPk,
    sortKey: PAYMENT_INDEX_ATTRIBUTE.createdSk,
    projected: [PAYMENT_VIEW_ATTRIBUTE],
  },
  {
    indexName: PAYMENT_INDEX.paid,
    partitionKey: PAYMENT_INDEX_ATTRIBUTE.paidPk,
    sortKey: PAYMENT_INDEX_ATTRIBUTE.paidSk,
    projected: [PAYMENT_VIEW_ATTRIBUTE],
  },
  {
    indexName: PAYMENT_INDEX.refunds,
    partitionKey: PAYMENT_INDEX_ATTRIBUTE.refundPk,
    sortKey: PAYMENT_INDEX_ATTRIBUTE.refundSk,
    projected: [PAYMENT_VIEW_ATTRIBUTE],
  },
];

/**
 * Shards of each day's partition in the paid and refund indexes. A stable function of
 * the payment id, so an index rewrite of the same payment lands on the same partition.
 * Changing it re-keys every payment: it is part of the stored layout.
 */
export const PAYMENT_INDEX_SHARDS = 8;

/**
 * Default shards of each day's summary. `dailySummary` reads all of them in one
 * BatchGetItem: 8 items of at most 4 KB, eventually consistent, are 4 read units.
 */
export const DEFAULT_SUMMARY_SHARDS = 8;

const PAYMENT_PK_PREFIX = 'PAYMENT#';

export const paymentKeys = {
  payment: (paymentId: string) => ({ pk: `${PAYMENT_PK_PREFIX}${paymentId}`, sk: 'PAYMENT' }),
  /** A ledger page of the earlier layout (read, no longer written). */
  ledger: (paymentId: string, revision: number) => ({
    pk: `${PAYMENT_PK_PREFIX}${paymentId}`,
    sk: `${LEDGER_SK_PREFIX}${String(revision).padStart(10, '0')}`,
  }),
  ledgerPack: (ref: string) => ({ pk: `LEDGER#${ref}`, sk: 'LEDGER' }),
  charge: (chargeId: string) => ({ pk: `CHARGE#${chargeId}`, sk: 'CHARGE' }),
  summary: (date: string, shard: number) => ({ pk: `SUMMARY#${date}#${shard}`, sk: 'SUMMARY' }),
};

export const LEDGER_SK_PREFIX = 'LEDGER#';

/** The payment id in a payment item's (or ledger page's) partition key. */
export function paymentIdOfKey(pk: string): string {
  if (!pk.startsWith(PAYMENT_PK_PREFIX)) throw new Error(`not a payment key: ${pk}`);
  return pk.slice(PAYMENT_PK_PREFIX.length);
}

/** Index partition keys, for queries and exclusive start keys. */
export const paymentIndexKeys = {
  user: (userId: string) => `USER#${userId}`,
  userStatus: (userId: string, status: PaymentStatus) => `USER#${userId}#${status}`,
  paid: (status: PaymentStatus, date: string, shard: number) => `PAID#${status}#${date}#${shard}`,
  refund: (date: string, shard: number) => `REFUND#${date}#${shard}`,
};

/** `<ISO timestamp>#<paymentId>`: sorts by time, ties by id. */
export function timeSortKey(iso: string, paymentId: string): string {
  return `${iso}#${paymentId}`;
}

/** The stable index shard of a payment: FNV-1a of its id, modulo `shards`. */
export function paymentShard(paymentId: string, shards = PAYMENT_INDEX_SHARDS): number {
  // SHA-256 would do as well; FNV-1a is stable, dependency-free and a few ns.
  let hash = 0x811c9dc5;
  for (let index = 0; index < paymentId.length; index++) {
    hash ^= paymentId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/**
 * The index key attributes of a payment item for its view: only those whose index
 * applies, so the indexes stay sparse (a payment never refunded has no refund keys).
 */
export function paymentIndexAttributes(view: PaymentView): Record<string, string> {
  const attributes: Record<string, string> = {};
  const a = PAYMENT_INDEX_ATTRIBUTE;
  if (view.userId !== null) {
    attributes[a.userPk] = paymentIndexKeys.user(view.userId);
    attributes[a.userStatusPk] = paymentIndexKeys.userStatus(view.userId, view.status);
    attributes[a.createdSk] = timeSortKey(view.createdAt, view.paymentId);
  }
  if (view.paidAt !== null) {
    const shard = paymentShard(view.paymentId);
    attributes[a.paidPk] = paymentIndexKeys.paid(view.status, view.paidAt.slice(0, 10), shard);
    attributes[a.paidSk] = timeSortKey(view.paidAt, view.paymentId);
  }
  // Refunded money now, not merely once: a refund that later failed leaves `refundedAt`
  // set but nothing refunded, and the refunds report must not list it.
  if (view.refundedAt !== null && view.amountRefunded > 0) {
    const shard = paymentShard(view.paymentId);
    attributes[a.refundPk] = paymentIndexKeys.refund(view.refundedAt.slice(0, 10), shard);
    attributes[a.refundSk] = timeSortKey(view.refundedAt, view.paymentId);
  }
  return attributes;
}

/**
 * Summary counter attributes of one `(status, currency)` bucket: `c_<status>_<currency>`
 * (payments) and `a_<status>_<currency>` (gross amount, minor units).
 */
export function summaryAttributes(status: PaymentStatus, currency: string) {
  return { count: `c_${status}_${currency}`, amount: `a_${status}_${currency}` };
}

/**
 * CreateTable input for the payments table as `PaymentTables` defines it (keys and
 * indexes; TTL is a separate UpdateTimeToLive call on `PAYMENT_TTL_ATTRIBUTE`).
 */
export function createPaymentsTableInput(tableName: string): CreateTableCommandInput {
  const keyAttributes = new Set<string>([PAYMENT_TABLE_KEY.partition, PAYMENT_TABLE_KEY.sort]);
  for (const index of PAYMENT_INDEXES) {
    keyAttributes.add(index.partitionKey);
    keyAttributes.add(index.sortKey);
  }
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [
      { AttributeName: PAYMENT_TABLE_KEY.partition, KeyType: 'HASH' },
      { AttributeName: PAYMENT_TABLE_KEY.sort, KeyType: 'RANGE' },
    ],
    AttributeDefinitions: [...keyAttributes].map((AttributeName) => ({
      AttributeName,
      AttributeType: 'S',
    })),
    GlobalSecondaryIndexes: PAYMENT_INDEXES.map((index) => ({
      IndexName: index.indexName,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: index.sortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.projected] },
    })),
  };
}
