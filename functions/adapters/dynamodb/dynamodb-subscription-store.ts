/**
 * DynamoDB implementation of the SubscriptionStore port.
 *
 * Billing table items (pk / sk):
 *   CUSTOMER#<cus>      / ACCOUNT       the customer's account (link, subscriptions, invoices) + revision;
 *                                       `account` is brotli-compressed JSON (see encodeAccount)
 *   USER#<userId>       / PROFILE       the user's profile; this adapter owns its subscription fields
 *                                       only: `customerViews` (the view of each of the user's customers)
 *                                       with `viewsRevision`, and the best of them as `stripeCustomerId`
 *                                       (whose view the read serves) and `tier`; it initialises the
 *                                       credit fields (slot, period, balance). Profiles written before
 *                                       customer views kept one `subscriptionView`, read as its customer's.
 *   SUBSCRIPTION#<sub>  / SUBSCRIPTION  subscription id -> customer pointer: an immutable fact,
 *                                       put (outside the transaction, PutItem each) before the commit
 *                                       that first lists the subscription
 * Subscription ledger table (customerId / revision): one page per account commit, listing
 * the events that commit recorded, with a TTL.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import {
  type CreditAllowances,
  firstRefresh,
  upgradeTopUp,
} from '../../core/credits/allowances.ts';
import { LEDGER_RETENTION_DAYS } from '../../core/shared/config-values.ts';
import { asError } from '../../core/shared/errors.ts';
import type {
  CustomerAccount,
  UserSubscriptionView,
} from '../../core/subscriptions/customer-account.ts';
import type {
  AccountCommit,
  CommitResult,
  LedgerPage,
  LedgerReader,
  ProfileViews,
  ResyncMark,
  ResyncMarkReader,
  StoredAccount,
  SubscriptionStore,
  UserLookup,
  UserViewReader,
} from '../../core/subscriptions/ports.ts';
import {
  bestView,
  type CustomerViews,
  customerViewsOfLegacy,
  withCustomerView,
} from '../../core/subscriptions/user-standing.ts';
import { billingKeys as keys } from './billing-table-keys.ts';
import { decodeCompressedJson, encodeCompressedJson } from './compressed-json.ts';
import { CREDIT_ATTRIBUTE, initialCreditFields } from './credit-table-schema.ts';
import {
  batchGetAll,
  memberResult,
  type PackMember,
  putEach,
  sendPacks,
  TRANSACTION_ITEM_LIMIT,
  type TransactItem,
  transactItemKey,
  transactWrite,
} from './dynamodb-batch.ts';

export interface DynamoDbSubscriptionStoreOptions {
  billingTableName: string;
  /** The subscription ledger table (customerId / revision). */
  ledgerTableName: string;
  /** Ledger pages expire this many days after they were written. Default 90 (Stripe retries for 3). */
  ledgerRetentionDays?: number;
  /** Transactions in flight at once in `commitAll`. Default 4. */
  concurrency?: number;
  /**
   * Grant a new profile its first credit refresh (firstRefresh) with these allowances.
   * Default: none, the profile starts unrefreshed and waits for its slot.
   */
  creditAllowances?: CreditAllowances;
  client: DynamoDBClient;
}

type ProfileViewsRead = { profiles: Map<string, ProfileViews> } | { error: Error };

/** Subscription pointers an instance remembers having put. */
const POINTERS_REMEMBERED = 10_000;

/**
 * New subscriptions whose pointers may ride in a lone commit's transaction: with the
 * account, ledger page, two profiles and the resync mark, within its 100 items.
 */
const POINTERS_IN_ONE_COMMIT = TRANSACTION_ITEM_LIMIT - 5;

/** What a profile read needs: `pk` tells an existing profile from a missing one. */
const PROFILE_VIEWS_PROJECTION = `pk, customerViews, viewsRevision, stripeCustomerId, subscriptionView, ${CREDIT_ATTRIBUTE.period}, ${CREDIT_ATTRIBUTE.allowance}`;

/** The profile's customer views as read (a profile written before them kept one `subscriptionView`). */
function profileViewsOf(item: Record<string, unknown> | undefined): ProfileViews {
  if (!item) return { exists: false, views: {}, revision: 0 };
  const legacy = (item.subscriptionView as UserSubscriptionView | undefined) ?? null;
  const period = item[CREDIT_ATTRIBUTE.period];
  const allowance = item[CREDIT_ATTRIBUTE.allowance];
  return {
    exists: true,
    views: (item.customerViews as CustomerViews | undefined) ?? customerViewsOfLegacy(legacy),
    revision: Number(item.viewsRevision ?? 0),
    ...(typeof period === 'string' && typeof allowance === 'number'
      ? { credits: { period, allowance } }
      : {}),
  };
}

/** The users whose profiles the commits change. */
function profilesChanged(commit: AccountCommit): string[] {
  return [commit.view?.userId, commit.unlinkedUserId ?? undefined].filter(
    (userId): userId is string => userId !== undefined,
  );
}

/** The profiles the commits change that their callers did not read just before. */
function profilesToRead(commits: readonly AccountCommit[]): Set<string> {
  const userIds = new Set<string>();
  for (const commit of commits) {
    for (const userId of profilesChanged(commit)) {
      if (!commit.profilesRead?.has(userId)) userIds.add(userId);
    }
  }
  return userIds;
}

/** The profiles the commits' callers read just before, by user id. */
function profilesKnown(commits: readonly AccountCommit[]): Map<string, ProfileViews> {
  const profiles = new Map<string, ProfileViews>();
  for (const commit of commits) {
    for (const userId of profilesChanged(commit)) {
      const read = commit.profilesRead?.get(userId);
      if (read) profiles.set(userId, read);
    }
  }
  return profiles;
}

export class DynamoDbSubscriptionStore
  implements SubscriptionStore, LedgerReader, ResyncMarkReader
{
  readonly #documents: DynamoDBDocumentClient;
  readonly #billingTable: string;
  readonly #ledgerTable: string;
  readonly #retentionDays: number;
  readonly #concurrency: number;
  readonly #creditAllowances: CreditAllowances | undefined;
  /** Pointers this instance has put: immutable facts, so never put twice (a lost race re-commits). */
  readonly #pointersPut = new Set<string>();

  constructor(options: DynamoDbSubscriptionStoreOptions) {
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#creditAllowances = options.creditAllowances;
    this.#documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#billingTable = options.billingTableName;
    this.#ledgerTable = options.ledgerTableName;
    this.#retentionDays = options.ledgerRetentionDays ?? LEDGER_RETENTION_DAYS.default;
  }

  async loadAccounts(customerIds: readonly string[]): Promise<Map<string, StoredAccount>> {
    const accounts = new Map<string, StoredAccount>();
    if (customerIds.length === 1) {
      // One key (a retry after a lost race): GetItem is the cheaper call.
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
    const { items } = await batchGetAll(this.#documents, {
      tableName: this.#billingTable,
      keys: customerIds.map((id) => keys.account(id)),
      // The fold must start from the latest revision, or every commit loses its race.
      consistentRead: true,
    });
    for (const item of items) {
      const stored = toStoredAccount(item);
      accounts.set(stored.account.customerId, stored);
    }
    return accounts;
  }

  async readLedger(customerId: string): Promise<LedgerPage[]> {
    const pages: LedgerPage[] = [];
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const page = await this.#documents.send(
        new QueryCommand({
          TableName: this.#ledgerTable,
          KeyConditionExpression: 'customerId = :customerId',
          ExpressionAttributeValues: { ':customerId': customerId },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        pages.push({
          customerId,
          revision: Number(item.revision),
          userId: (item.userId as string | undefined) ?? null,
          appliedAt: Number(item.appliedAt),
          events: item.events as LedgerPage['events'],
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return pages;
  }

  /**
   * One commit alone is waited for (the read route's miss, a retry after a lost race):
   * when its profiles are already known, its new subscription pointers ride in its
   * transaction, so the whole commit is one round trip (a unit more per pointer).
   */
  async commit(commit: AccountCommit): Promise<CommitResult> {
    const pointersInTransaction =
      commit.newSubscriptionIds.length > 0 &&
      commit.newSubscriptionIds.length <= POINTERS_IN_ONE_COMMIT &&
      profilesToRead([commit]).size === 0;
    if (!pointersInTransaction) return (await this.commitAll([commit]))[0]!;
    const pointers = [...this.#pendingPointers([commit]).values()];
    const items: TransactItem[] = [
      ...this.#commitItems(commit, profilesKnown([commit])),
      // Unconditional: a pointer is an immutable fact.
      ...pointers.map(([, Item]) => ({ Put: { TableName: this.#billingTable, Item } })),
    ];
    const outcome = await transactWrite(this.#documents, items);
    if (outcome.status === 'failed') return outcome;
    if (outcome.status === 'cancelled') return memberResult(outcome.reasons);
    this.#remember(pointers.map(([pointer]) => pointer));
    return { status: 'committed' };
  }

  /**
   * Packs the commits into TransactWriteItems calls of at most 100 items (and no
   * item twice in one call), sent concurrently. DynamoDB cost is per item either
   * way; the packing saves round trips, which is what limits throughput.
   */
  async commitAll(commits: readonly AccountCommit[]): Promise<CommitResult[]> {
    const results: CommitResult[] = new Array(commits.length);
    // Pointers first, so no committed account ever lists a subscription without one.
    // A pointer only states which customer a subscription belongs to, so a plain put
    // (one unit, not a transaction's two) is safe to repeat after a lost race.
    // The profiles whose customer views change are read before writing (unless the
    // caller read them just before), beside the pointer puts (one round trip for
    // both): each profile write is conditioned on the revision read, so a concurrent
    // change of another customer of the same user makes this commit lose its race and
    // be re-planned, not clobber it.
    const [pointerError, profileRead] = await Promise.all([
      this.#putSubscriptionPointers(commits),
      this.#readProfiles(commits),
    ]);
    const packs: {
      items: TransactItem[];
      members: PackMember[];
    }[] = [];
    let current: (typeof packs)[number] | undefined;
    let keysInPack = new Set<string>();
    commits.forEach((commit, index) => {
      if (pointerError && commit.newSubscriptionIds.length > 0) {
        results[index] = { status: 'failed', error: pointerError };
        return;
      }
      if ('error' in profileRead && (commit.view || commit.unlinkedUserId)) {
        results[index] = { status: 'failed', error: profileRead.error };
        return;
      }
      const items = this.#commitItems(
        commit,
        'profiles' in profileRead ? profileRead.profiles : new Map(),
      );
      // Billing items are keyed by pk/sk, ledger pages by customerId/revision.
      const itemKeys = items.map((item) =>
        transactItemKey(item, (table) =>
          table === this.#ledgerTable ? ['customerId', 'revision'] : ['pk', 'sk'],
        ),
      );
      const clash = itemKeys.some((key) => keysInPack.has(key));
      if (!current || clash || current.items.length + items.length > TRANSACTION_ITEM_LIMIT) {
        current = { items: [], members: [] };
        packs.push(current);
        keysInPack = new Set();
      }
      current.members.push({ index, first: current.items.length, count: items.length });
      current.items.push(...items);
      for (const key of itemKeys) keysInPack.add(key);
    });

    await sendPacks(
      packs,
      this.#concurrency,
      (pack) => transactWrite(this.#documents, pack.items),
      results,
    );
    return results;
  }

  /** Puts every commit's new subscription pointers; the error if some could not be written. */
  async #putSubscriptionPointers(commits: readonly AccountCommit[]): Promise<Error | undefined> {
    const entries = [...this.#pendingPointers(commits).values()];
    try {
      await putEach(
        this.#documents,
        this.#billingTable,
        entries.map(([, item]) => item),
      );
      this.#remember(entries.map(([pointer]) => pointer));
      return undefined;
    } catch (error) {
      return asError(error);
    }
  }

  /**
   * The pointers not yet put by this instance, by subscription (one batch or
   * transaction may not write an item twice), each with how it is remembered: with
   * its customer, so a pointer to another customer is still put.
   */
  #pendingPointers(
    commits: readonly AccountCommit[],
  ): Map<string, [remembered: string, item: Record<string, string>]> {
    const pending = new Map<string, [remembered: string, item: Record<string, string>]>();
    for (const { customerId, newSubscriptionIds } of commits) {
      for (const subscriptionId of newSubscriptionIds) {
        const remembered = `${subscriptionId}|${customerId}`;
        if (this.#pointersPut.has(remembered)) continue;
        pending.set(subscriptionId, [
          remembered,
          { ...keys.subscription(subscriptionId), subscriptionId, customerId },
        ]);
      }
    }
    return pending;
  }

  #remember(pointers: readonly string[]): void {
    // Bounded: a warm instance sees many customers; forgetting only costs a repeated put.
    if (this.#pointersPut.size + pointers.length > POINTERS_REMEMBERED) this.#pointersPut.clear();
    for (const pointer of pointers) this.#pointersPut.add(pointer);
  }

  /**
   * The profiles whose customer views the commits change: those the caller read just
   * before as given, the others read here, strongly consistent.
   */
  async #readProfiles(commits: readonly AccountCommit[]): Promise<ProfileViewsRead> {
    const userIds = profilesToRead(commits);
    const profiles = profilesKnown(commits);
    if (userIds.size === 0) return { profiles };
    const projection = PROFILE_VIEWS_PROJECTION;
    try {
      // One or two profiles (a snapshot on the read route, a moved customer): GetItem,
      // which the read function is granted; BatchGetItem only for a consumer's batch.
      const items =
        userIds.size <= 2
          ? await Promise.all(
              [...userIds].map(async (userId) => {
                const { Item } = await this.#documents.send(
                  new GetCommand({
                    TableName: this.#billingTable,
                    Key: keys.profile(userId),
                    ConsistentRead: true,
                    ProjectionExpression: projection,
                  }),
                );
                return Item;
              }),
            )
          : (
              await batchGetAll(this.#documents, {
                tableName: this.#billingTable,
                keys: [...userIds].map((userId) => keys.profile(userId)),
                consistentRead: true,
                projectionExpression: projection,
              })
            ).items;
      for (const item of items) {
        if (item)
          profiles.set(String(item.pk).slice(keys.profile('').pk.length), profileViewsOf(item));
      }
      return { profiles };
    } catch (error) {
      return { error: asError(error) };
    }
  }

  /** The account first, then the ledger page and the profiles: `memberResult` relies on it. */
  #commitItems(commit: AccountCommit, profiles: ReadonlyMap<string, ProfileViews>): TransactItem[] {
    const revision = commit.expectedRevision + 1;
    const { appliedAt, events } = commit.ledger;
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.#billingTable,
          Item: {
            ...keys.account(commit.customerId),
            customerId: commit.customerId,
            userId: commit.account.userId ?? undefined,
            revision,
            account: encodeAccount(commit.account),
            recentEvents: commit.recentEvents,
          },
          ...(commit.expectedRevision === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'revision = :expected',
                ExpressionAttributeValues: { ':expected': commit.expectedRevision },
              }),
        },
      },
      {
        Put: {
          TableName: this.#ledgerTable,
          Item: {
            customerId: commit.customerId,
            revision,
            userId: commit.account.userId ?? undefined,
            appliedAt,
            expiresAt: Math.floor(appliedAt / 1000) + this.#retentionDays * 86_400,
            events,
          },
          // The revision check above already makes the page unique; this says so.
          ConditionExpression: 'attribute_not_exists(customerId)',
        },
      },
    ];
    const profileOf = (userId: string): ProfileViews =>
      profiles.get(userId) ?? { exists: false, views: {}, revision: 0 };
    if (commit.unlinkedUserId) {
      // The customer now belongs to another user: the old user no longer has its view.
      const profile = profileOf(commit.unlinkedUserId);
      if (profile.exists) {
        items.push(
          this.#profileUpdate(commit.unlinkedUserId, commit.customerId, null, profile, appliedAt),
        );
      }
    }
    if (commit.view) {
      const profile = profileOf(commit.view.userId);
      items.push(
        this.#profileUpdate(commit.view.userId, commit.customerId, commit.view, profile, appliedAt),
      );
    }
    if (commit.resyncMark) items.push(this.#resyncMarkUpdate(commit, appliedAt));
    return items;
  }

  /** The mark stays as history once cleared; `open` (present only while marked) is what lists it. */
  #resyncMarkUpdate(commit: AccountCommit, appliedAt: number): TransactItem {
    const key = keys.resyncMark(commit.customerId);
    if (commit.resyncMark === 'set') {
      return {
        Put: {
          TableName: this.#billingTable,
          Item: {
            ...key,
            customerId: commit.customerId,
            subscriptions: commit.account.unresolvedTies ?? {},
            markedAt: appliedAt,
            open: true,
          },
        },
      };
    }
    return {
      Update: {
        TableName: this.#billingTable,
        Key: key,
        UpdateExpression: 'REMOVE #open SET clearedAt = :at',
        ExpressionAttributeNames: { '#open': 'open' },
        ExpressionAttributeValues: { ':at': appliedAt },
      },
    };
  }

  async listResyncMarks(): Promise<ResyncMark[]> {
    const marks: ResyncMark[] = [];
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const page = await this.#documents.send(
        new QueryCommand({
          TableName: this.#billingTable,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: 'attribute_exists(#open)',
          ExpressionAttributeNames: { '#open': 'open' },
          ExpressionAttributeValues: { ':pk': keys.resyncMark('').pk },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        marks.push({
          customerId: String(item.customerId),
          subscriptions: (item.subscriptions ?? {}) as Record<string, number>,
          markedAt: Number(item.markedAt),
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return marks;
  }

  /**
   * Sets (or, with a null view, removes) one customer's view among the user's and
   * writes the best of them as the view the profile shows, if the profile's customer
   * views are still those read. SET only the fields this adapter owns: other
   * capabilities (credits) write the same profile item and must not be clobbered. The
   * credit fields are only initialised (if_not_exists), so every profile has a refresh
   * slot and is in the slot index (credit-table-schema.ts) from its first commit, a new
   * profile gets its first refresh (with `creditAllowances`), and a refresh already
   * stamped is kept, topped up when the tier rose since that day's refresh.
   */
  #profileUpdate(
    userId: string,
    customerId: string,
    view: UserSubscriptionView | null,
    profile: ProfileViews,
    appliedAt: number,
  ): TransactItem {
    const views = withCustomerView(profile.views, customerId, view);
    const best = bestView(views);
    const initial = initialCreditFields(userId);
    const tier = best?.tier ?? 'free';
    // Only a profile that did not exist when read gets the first refresh: an older one
    // without credit fields waits for its slot, as before.
    const grant =
      this.#creditAllowances && !profile.exists
        ? firstRefresh(tier, appliedAt, this.#creditAllowances)
        : null;
    // An upgrade on a day already refreshed adds the difference, if the refresh read is
    // still the one stored (a refresh in between fails the commit, which is read again).
    const topUp =
      this.#creditAllowances && profile.credits
        ? upgradeTopUp(tier, appliedAt, profile.credits, this.#creditAllowances)
        : 0;
    const c = CREDIT_ATTRIBUTE;
    const set = [
      'userId = :userId',
      'customerViews = :views',
      'viewsRevision = :revision',
      'tier = :tier',
      'subscriptionUpdatedAt = :at',
      `${c.refreshSlot} = if_not_exists(${c.refreshSlot}, :slot)`,
      `${c.period} = if_not_exists(${c.period}, :period)`,
      topUp > 0
        ? `${c.balance} = ${c.balance} + :topUp, ${c.allowance} = :allowance`
        : `${c.balance} = if_not_exists(${c.balance}, :balance)`,
      ...(grant
        ? [
            `${c.allowance} = if_not_exists(${c.allowance}, :allowance)`,
            `${c.refreshedAt} = if_not_exists(${c.refreshedAt}, :refreshedAt)`,
          ]
        : []),
      ...(best ? ['stripeCustomerId = :customerId'] : []),
    ];
    // The best view is served from `customerViews` by its customer id, not stored twice:
    // the profile stays within one write unit, which every credit refresh pays for.
    const remove = ['subscriptionView', ...(best ? [] : ['stripeCustomerId'])];
    return {
      Update: {
        TableName: this.#billingTable,
        Key: keys.profile(userId),
        UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
        ConditionExpression: [
          profile.revision === 0
            ? 'attribute_not_exists(viewsRevision)'
            : 'viewsRevision = :expectedRevision',
          ...(topUp > 0
            ? [`${c.period} = :refreshedPeriod AND ${c.allowance} = :grantedAllowance`]
            : []),
        ].join(' AND '),
        ExpressionAttributeValues: {
          ':userId': userId,
          ':views': views,
          ':revision': profile.revision + 1,
          ':tier': tier,
          ':at': appliedAt,
          ':slot': initial.refreshSlot,
          ':period': grant?.period ?? initial.period,
          ...(topUp > 0 ? {} : { ':balance': grant?.balance ?? initial.balance }),
          ...(grant ? { ':allowance': grant.allowance, ':refreshedAt': grant.at } : {}),
          ...(topUp > 0 && profile.credits
            ? {
                ':topUp': topUp,
                ':allowance': profile.credits.allowance + topUp,
                ':refreshedPeriod': profile.credits.period,
                ':grantedAllowance': profile.credits.allowance,
              }
            : {}),
          ...(best ? { ':customerId': best.stripeCustomerId } : {}),
          ...(profile.revision === 0 ? {} : { ':expectedRevision': profile.revision }),
        },
      },
    };
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
    return (await this.lookupUser(userId)).view;
  }

  async lookupUser(userId: string): Promise<UserLookup> {
    // Eventually consistent: half the read cost, and a webhook-driven view is
    // already seconds behind Stripe.
    // With the revision and `pk`, the lookup is also the profile read a snapshot commit
    // (the miss) is conditioned on; if stale, that commit loses its race and reads again.
    const { Item } = await this.#documents.send(
      new GetCommand({
        TableName: this.#billingTable,
        Key: keys.profile(userId),
        ProjectionExpression: PROFILE_VIEWS_PROJECTION,
      }),
    );
    const stripeCustomerId = (Item?.stripeCustomerId as string | undefined) ?? null;
    const views = Item?.customerViews as CustomerViews | undefined;
    const view = views
      ? stripeCustomerId
        ? (views[stripeCustomerId] ?? null)
        : null
      : ((Item?.subscriptionView as UserSubscriptionView | undefined) ?? null);
    return { view, stripeCustomerId, profile: profileViewsOf(Item) };
  }
}

/** The account as stored: compressed JSON (see compressed-json.ts). */
export function encodeAccount(account: CustomerAccount): Uint8Array {
  return encodeCompressedJson(account);
}

/** Reads `account` as `encodeAccount` wrote it, or as a plain map (items written before it). */
export function decodeAccount(stored: unknown): CustomerAccount {
  return decodeCompressedJson<CustomerAccount>(stored);
}

function toStoredAccount(item: Record<string, unknown>): StoredAccount {
  return {
    account: decodeAccount(item.account),
    revision: Number(item.revision ?? 0),
    recentEvents: Array.isArray(item.recentEvents) ? (item.recentEvents as string[]) : [],
  };
}
