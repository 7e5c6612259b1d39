/**
 * DynamoDB implementation of the SubscriptionStore port.
 *
 * Billing table items (pk / sk):
 *   CUSTOMER#<cus>      / ACCOUNT       the customer's account (link, subscriptions, invoices) + revision
 *   USER#<userId>       / PROFILE       the user's profile; this adapter owns its subscription fields only
 *   SUBSCRIPTION#<sub>  / SUBSCRIPTION  subscription id -> customer pointer, written once
 * Events ledger table: one item per applied event id, with a TTL.
 */
import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { CustomerAccount, UserSubscriptionView } from '../../core/customer-account.ts';
import type {
  AccountCommit,
  BatchState,
  CommitResult,
  StoredAccount,
  SubscriptionStore,
  UserViewReader,
} from '../../core/ports.ts';

export interface DynamoDbSubscriptionStoreOptions {
  billingTableName: string;
  eventsTableName: string;
  /** Ledger entries expire this many days after they were applied. Default 30 (Stripe retries for 3). */
  ledgerRetentionDays?: number;
  client: DynamoDBClient;
}

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

export const keys = {
  account: (customerId: string) => ({ pk: `CUSTOMER#${customerId}`, sk: 'ACCOUNT' }),
  profile: (userId: string) => ({ pk: `USER#${userId}`, sk: 'PROFILE' }),
  subscription: (subscriptionId: string) => ({
    pk: `SUBSCRIPTION#${subscriptionId}`,
    sk: 'SUBSCRIPTION',
  }),
};

/** BatchGetItem takes at most 100 keys a call. */
const BATCH_GET_LIMIT = 100;

export class DynamoDbSubscriptionStore implements SubscriptionStore {
  readonly #documents: DynamoDBDocumentClient;
  readonly #billingTable: string;
  readonly #eventsTable: string;
  readonly #retentionDays: number;

  constructor(options: DynamoDbSubscriptionStoreOptions) {
    this.#documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#billingTable = options.billingTableName;
    this.#eventsTable = options.eventsTableName;
    this.#retentionDays = options.ledgerRetentionDays ?? 30;
  }

  async loadBatchState(eventIds: readonly string[], customerIds: readonly string[]): Promise<BatchState> {
    // One BatchGetItem across both tables (100 keys a call): the ledger check and
    // the accounts of a whole batch in a single round trip.
    const requests: { table: string; key: Record<string, string>; projection?: string }[] = [
      ...eventIds.map((eventId) => ({ table: this.#eventsTable, key: { eventId }, projection: 'eventId' })),
      ...customerIds.map((customerId) => ({ table: this.#billingTable, key: keys.account(customerId) })),
    ];
    const state: BatchState = { processedEventIds: new Set(), accounts: new Map() };
    for (let start = 0; start < requests.length; start += BATCH_GET_LIMIT) {
      const chunk = requests.slice(start, start + BATCH_GET_LIMIT);
      const found = await this.#batchGetMany(chunk);
      for (const item of found[this.#eventsTable] ?? []) state.processedEventIds.add(item.eventId as string);
      for (const item of found[this.#billingTable] ?? []) {
        const stored = toStoredAccount(item);
        state.accounts.set(stored.account.customerId, stored);
      }
    }
    return state;
  }

  async findProcessedEventIds(eventIds: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let start = 0; start < eventIds.length; start += BATCH_GET_LIMIT) {
      const items = await this.#batchGet(
        this.#eventsTable,
        eventIds.slice(start, start + BATCH_GET_LIMIT).map((eventId) => ({ eventId })),
        'eventId',
      );
      for (const item of items) found.add(item.eventId as string);
    }
    return found;
  }

  async loadAccounts(customerIds: readonly string[]): Promise<Map<string, StoredAccount>> {
    const accounts = new Map<string, StoredAccount>();
    if (customerIds.length === 1) {
      // One key: GetItem is cheaper to reason about and to retry than a batch.
      const { Item } = await this.#documents.send(
        new GetCommand({
          TableName: this.#billingTable,
          Key: keys.account(customerIds[0]!),
          ConsistentRead: true,
        }),
      );
      if (Item) accounts.set(customerIds[0]!, toStoredAccount(Item));
      return accounts;
    }
    for (let start = 0; start < customerIds.length; start += BATCH_GET_LIMIT) {
      const items = await this.#batchGet(
        this.#billingTable,
        customerIds.slice(start, start + BATCH_GET_LIMIT).map(keys.account),
      );
      for (const item of items) {
        const stored = toStoredAccount(item);
        accounts.set(stored.account.customerId, stored);
      }
    }
    return accounts;
  }

  async commit(commit: AccountCommit): Promise<CommitResult> {
    const expiresAt = (appliedAt: number) =>
      Math.floor(appliedAt / 1000) + this.#retentionDays * 86_400;
    const ledgerItems: TransactItem[] = commit.ledger.map((entry) => ({
      Put: {
        TableName: this.#eventsTable,
        Item: { ...entry, expiresAt: expiresAt(entry.appliedAt) },
        ConditionExpression: 'attribute_not_exists(eventId)',
      },
    }));
    const accountItem: TransactItem = {
      Put: {
        TableName: this.#billingTable,
        Item: {
          ...keys.account(commit.customerId),
          customerId: commit.customerId,
          userId: commit.account.userId ?? undefined,
          revision: commit.expectedRevision + 1,
          account: commit.account,
        },
        ...(commit.expectedRevision === 0
          ? { ConditionExpression: 'attribute_not_exists(pk)' }
          : {
              ConditionExpression: 'revision = :expected',
              ExpressionAttributeValues: { ':expected': commit.expectedRevision },
            }),
      },
    };
    const items: TransactItem[] = [...ledgerItems, accountItem];
    if (commit.view) items.push(this.#profileUpdate(commit.view, commit.ledger[0]?.appliedAt ?? 0));
    for (const subscriptionId of commit.newSubscriptionIds) {
      items.push({
        Put: {
          TableName: this.#billingTable,
          Item: {
            ...keys.subscription(subscriptionId),
            subscriptionId,
            customerId: commit.customerId,
          },
        },
      });
    }

    try {
      await this.#documents.send(new TransactWriteCommand({ TransactItems: items }));
      return { status: 'committed' };
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const duplicates = commit.ledger
        .filter((_, index) => reasons[index]?.Code === 'ConditionalCheckFailed')
        .map((entry) => entry.eventId);
      if (duplicates.length > 0) return { status: 'duplicate-events', eventIds: duplicates };
      const codes = new Set(reasons.map((reason) => reason.Code));
      // ConditionalCheckFailed on the account, or another transaction on the same
      // items in flight: both mean "read again and retry".
      if (codes.has('ConditionalCheckFailed') || codes.has('TransactionConflict')) {
        return { status: 'revision-conflict' };
      }
      throw error;
    }
  }

  #profileUpdate(view: UserSubscriptionView, appliedAt: number): TransactItem {
    // SET only the fields this consumer owns: other capabilities (credits) write
    // the same profile item and must not be clobbered.
    return {
      Update: {
        TableName: this.#billingTable,
        Key: keys.profile(view.userId),
        UpdateExpression:
          'SET userId = :userId, tier = :tier, stripeCustomerId = :customerId, subscriptionView = :view, subscriptionUpdatedAt = :at',
        ExpressionAttributeValues: {
          ':userId': view.userId,
          ':tier': view.tier,
          ':customerId': view.stripeCustomerId,
          ':view': view,
          ':at': appliedAt,
        },
      },
    };
  }

  async #batchGet(
    table: string,
    keyList: Record<string, string>[],
    projection?: string,
  ): Promise<Record<string, unknown>[]> {
    const found = await this.#batchGetMany(
      keyList.map((key) => ({ table, key, ...(projection ? { projection } : {}) })),
    );
    return found[table] ?? [];
  }

  /** At most 100 keys; strongly consistent; retries unprocessed keys with jittered backoff. */
  async #batchGetMany(
    requests: { table: string; key: Record<string, string>; projection?: string }[],
  ): Promise<Record<string, Record<string, unknown>[]>> {
    const found: Record<string, Record<string, unknown>[]> = {};
    type RequestItems = NonNullable<BatchGetCommandInput['RequestItems']>;
    let pending: RequestItems = {};
    for (const request of requests) {
      const entry = pending[request.table] ?? {
        Keys: [],
        ConsistentRead: true,
        ...(request.projection ? { ProjectionExpression: request.projection } : {}),
      };
      entry.Keys!.push(request.key);
      pending[request.table] = entry;
    }
    // BatchGetItem may return some keys unprocessed under load: ask again, with backoff.
    for (let attempt = 0; Object.keys(pending).length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt > 5) throw new Error('BatchGetItem left keys unprocessed after 5 retries');
        await new Promise((resolve) => setTimeout(resolve, 2 ** attempt * 25 * Math.random()));
      }
      const response = await this.#documents.send(new BatchGetCommand({ RequestItems: pending }));
      for (const [table, items] of Object.entries(response.Responses ?? {})) {
        (found[table] ??= []).push(...items);
      }
      pending = response.UnprocessedKeys ?? {};
    }
    return found;
  }
}

/** The read API's one key lookup: the profile item's subscription view. */
export class DynamoDbUserViewReader implements UserViewReader {
  readonly #documents: DynamoDBDocumentClient;
  readonly #billingTable: string;

  constructor(options: { billingTableName: string; client: DynamoDBClient }) {
    this.#documents = DynamoDBDocumentClient.from(options.client);
    this.#billingTable = options.billingTableName;
  }

  async getUserView(userId: string): Promise<UserSubscriptionView | null> {
    // Eventually consistent: half the read cost, and a webhook-driven view is
    // already seconds behind Stripe.
    const { Item } = await this.#documents.send(
      new GetCommand({
        TableName: this.#billingTable,
        Key: keys.profile(userId),
        ProjectionExpression: 'subscriptionView',
      }),
    );
    return (Item?.subscriptionView as UserSubscriptionView | undefined) ?? null;
  }
}

function toStoredAccount(item: Record<string, unknown>): StoredAccount {
  return { account: item.account as CustomerAccount, revision: Number(item.revision ?? 0) };
}
