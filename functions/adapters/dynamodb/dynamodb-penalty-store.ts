/**
 * DynamoDB implementation of the penalties port (DESIGN §8.3) on the penalties table
 * (layout and indexes: penalty-table-schema.ts), plus the two profile fields of the
 * billing table settlement needs (tier and customer to read, credits to spend).
 *
 * A user's habits live on the user's account item (with their counts, streaks and
 * pending verifications), so a habit write or a verification is one conditional
 * UpdateItem. Every other change that must agree with another is one
 * TransactWriteItems: an assessment slice's accounts, penalties and shard progress;
 * penalty status changes, the summaries and recipient totals they move, the credits
 * spent and the settlement lock (with the keys of the sparse pending index, set and
 * removed with it). Conditions carry the guards (assessed date and verifications read,
 * penalty status, lock, credits ≥ spent); a cancelled transaction is reported as a
 * conflict (re-read and re-plan) or busy (retry), never half-applied. Throttling, 5xx
 * and network errors are retried by the SDK client's own retry strategy.
 */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { assessableHabit, isAssessed } from '../../core/penalties/habits.ts';
import {
  ASSESSMENT_SHARDS,
  assessmentShardOf,
  PENDING_SETTLEMENT_SHARDS,
  parsePenaltyId,
  pendingSettlementShardOf,
} from '../../core/penalties/penalty-ids.ts';
import { oldestUnpaidDateOf } from '../../core/penalties/penalty-transitions.ts';
import {
  type AccountAssessment,
  type AccountDelta,
  type AssessableAccount,
  type AssessmentCommit,
  type AssessmentCommitResult,
  type EarlierSettings,
  type Habit,
  type HabitDay,
  type HabitKey,
  type HabitWrite,
  type HabitWriteResult,
  InvalidCursorError,
  type Money,
  type Overpayment,
  type Page,
  type PenaltiesQuery,
  type Penalty,
  type PenaltyAccount,
  type PenaltyStatus,
  type PenaltyStore,
  type PendingSettlement,
  type RecipientTotals,
  type ShardProgress,
  type TransitionCommit,
  type TransitionCommitResult,
  type UserBilling,
  type VerificationResult,
} from '../../core/penalties/ports.ts';
import { isTier } from '../../core/shared/tiers.ts';
import { cursorCodec } from '../paging/query-cursor.ts';
import { billingKeys } from './billing-table-keys.ts';
import { CREDIT_ATTRIBUTE } from './credit-table-schema.ts';
import { batchGetAll, type TransactItem, transactWrite } from './dynamodb-batch.ts';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  ASSESSMENTS_STARTED_PK,
  HABIT_ATTRIBUTE_PREFIX,
  PENALTY_KEYS as keys,
  PAID_AMOUNT_PREFIX,
  PENALTY_SK_PREFIX,
  PENALTY_STATUS_INDEX,
  PENDING_SETTLEMENT_INDEX,
  STREAK_ATTRIBUTE_PREFIX,
  UNPAID_AMOUNT_PREFIX,
  UNPAID_DATE_PREFIX,
  userStatusKey,
  verifiedEntryOf,
} from './penalty-table-schema.ts';

export interface DynamoDbPenaltyStoreOptions {
  client: DynamoDBClient;
  penaltiesTableName: string;
  /**
   * The billing table: the profile's tier, customer and credits. Only the API (habits
   * and settlement) needs it; the assessment and mark-paid never touch profiles.
   */
  billingTableName?: string;
  /**
   * Told when removing the per-date unpaid counts a commit brought to zero failed (the
   * commit itself landed; a zero count reads as none). Default: nothing, so give it a
   * logger: a missing IAM action would otherwise leave the account growing unseen.
   */
  onPruneFailure?: (error: unknown) => void;
}

const PENALTY_ATTRIBUTES = [
  'penaltyId',
  'userId',
  'habitId',
  'date',
  'amount',
  'currency',
  'recipientId',
  'status',
  'paymentId',
  'createdAt',
  'updatedAt',
] as const;

/** Reason codes of a cancelled transaction that mean "someone else is writing these items now". */
const BUSY_REASONS = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
]);

type Item = Record<string, unknown>;

const ACCOUNT_SK = keys.account('x').sk;

const penaltiesCursor = cursorCodec<PenaltiesQuery, { sk: string }>({
  scope: 'penalties.user',
  params: (query) => ({ userId: query.userId, status: query.status ?? null }),
  parse: (position) => {
    const sk = (position as { sk?: unknown } | null)?.sk;
    return typeof sk === 'string' && sk.startsWith(PENALTY_SK_PREFIX) ? { sk } : undefined;
  },
  invalid: (reason) => new InvalidCursorError(reason),
});

export class DynamoDbPenaltyStore implements PenaltyStore {
  readonly #documents: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #billingTable: string | undefined;
  readonly #onPruneFailure: (error: unknown) => void;

  constructor(options: DynamoDbPenaltyStoreOptions) {
    this.#documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = options.penaltiesTableName;
    this.#billingTable = options.billingTableName;
    this.#onPruneFailure = options.onPruneFailure ?? (() => undefined);
  }

  // ---- accounts and profiles ----------------------------------------------------------

  async getAccount(userId: string): Promise<PenaltyAccount | null> {
    const { Item } = await this.#documents.send(
      new GetCommand({ TableName: this.#table, Key: keys.account(userId), ConsistentRead: true }),
    );
    if (!Item) return null;
    const pending = Item.pending as
      | { paymentIntentId: string; penaltyIds: string[]; startedAt: string }
      | undefined;
    const unpaidCount = numberOr(Item.unpaidCount, 0);
    const oldest = oldestUnpaidDateOf(countsOf(Item, UNPAID_DATE_PREFIX), unpaidCount);
    return {
      userId,
      habits: numberOr(Item.habits, 0),
      freeHabits: numberOr(Item.freeHabits, 0),
      unpaidCount,
      unpaidAmount: amountsOf(Item, UNPAID_AMOUNT_PREFIX),
      // An account holding penalties from before the per-date counts: from the index.
      oldestUnpaidDate:
        oldest !== undefined ? oldest : ((await this.oldestUnpaid(userId, 1))[0]?.date ?? null),
      pending: pending
        ? {
            paymentIntentId: pending.paymentIntentId,
            penaltyIds: [...pending.penaltyIds],
            startedAt: pending.startedAt,
          }
        : null,
    };
  }

  async getUserBilling(userId: string): Promise<UserBilling> {
    const { Item } = await this.#documents.send(
      new GetCommand({
        TableName: this.#billing,
        Key: billingKeys.profile(userId),
        ProjectionExpression: 'tier, stripeCustomerId, #credits',
        ExpressionAttributeNames: { '#credits': CREDIT_ATTRIBUTE.balance },
        ConsistentRead: true,
      }),
    );
    return {
      tier: isTier(Item?.tier) ? Item.tier : 'free',
      credits: numberOr(Item?.[CREDIT_ATTRIBUTE.balance], 0),
      customerId: typeof Item?.stripeCustomerId === 'string' ? Item.stripeCustomerId : null,
      hasProfile: Item !== undefined,
    };
  }

  // ---- habits (on the account item) ---------------------------------------------------

  async listHabits(userId: string): Promise<Habit[]> {
    const { Item } = await this.#documents.send(
      new GetCommand({ TableName: this.#table, Key: keys.account(userId), ConsistentRead: true }),
    );
    return Item ? habitsOf(userId, Item) : [];
  }

  async getHabit(key: HabitKey): Promise<Habit | null> {
    const { Item } = await this.#documents.send(
      new GetCommand({
        TableName: this.#table,
        Key: keys.account(key.userId),
        ProjectionExpression: '#habit, #streak',
        ExpressionAttributeNames: habitNames(key.habitId),
        ConsistentRead: true,
      }),
    );
    return Item ? (habitsOf(key.userId, Item)[0] ?? null) : null;
  }

  /**
   * One conditional update of the account: the habit's settings map (its streaks, kept
   * in their own attribute, and the verifications untouched, so a concurrent assessment
   * or verification is never clobbered), the habit counts under the limits, and the
   * index keys when the habit is assessed. The condition is the habit as read before
   * (absent, or the same `updatedAt`), so the count deltas are right.
   */
  async putHabit(write: HabitWrite): Promise<HabitWriteResult> {
    const { habit, previous } = write;
    const freeDelta =
      (habit.free && habit.active ? 1 : 0) - (previous?.free && previous.active ? 1 : 0);
    const habitDelta = previous ? 0 : 1;
    // The conditions below let a first habit through when the count is absent, so a
    // limit of 0 (a tier allowed no free habit) is refused here, before any write.
    if (habitDelta > 0 && write.maxHabits <= 0) return 'habit-limit';
    if (freeDelta > 0 && write.freeHabitLimit <= 0) return 'free-habit-limit';
    const names: Record<string, string> = {
      '#habit': `${HABIT_ATTRIBUTE_PREFIX}${habit.habitId}`,
      '#habits': 'habits',
      '#freeHabits': 'freeHabits',
      '#version': 'habitsVersion',
    };
    const values: Record<string, unknown> = {
      ':userId': habit.userId,
      ':habit': storedHabitOf(habit),
      ':habitDelta': habitDelta,
      ':freeDelta': freeDelta,
      ':one': 1,
    };
    let set = 'SET userId = :userId, #habit = :habit';
    // Only the assessment takes an account out of the index: it alone sees every habit.
    if (isAssessed(habit)) {
      set += ', #assessShard = :shard, #assessKey = :userId';
      names['#assessShard'] = ACCOUNT_ASSESSMENT_INDEX.partitionKey.name;
      names['#assessKey'] = ACCOUNT_ASSESSMENT_INDEX.sortKey.name;
      values[':shard'] = assessmentShardOf(habit.userId);
    }
    const conditions = [
      previous ? '#habit.#updatedAt = :previousUpdatedAt' : 'attribute_not_exists(#habit)',
    ];
    if (previous) {
      names['#updatedAt'] = 'updatedAt';
      values[':previousUpdatedAt'] = previous.updatedAt;
    }
    if (habitDelta > 0) {
      conditions.push('(attribute_not_exists(#habits) OR #habits < :maxHabits)');
      values[':maxHabits'] = write.maxHabits;
    }
    if (freeDelta > 0) {
      conditions.push('(attribute_not_exists(#freeHabits) OR #freeHabits < :freeLimit)');
      values[':freeLimit'] = write.freeHabitLimit;
    }
    try {
      await this.#documents.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keys.account(habit.userId),
          UpdateExpression: `${set} ADD #habits :habitDelta, #freeHabits :freeDelta, #version :one`,
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'written';
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // The item as it was, in DynamoDB's own form (the document client leaves errors as they are).
      const old = error.Item ?? {};
      const stored = old[`${HABIT_ATTRIBUTE_PREFIX}${habit.habitId}`]?.M;
      const same = previous ? stored?.updatedAt?.S === previous.updatedAt : stored === undefined;
      if (!same) return 'conflict';
      if (habitDelta > 0 && Number(old.habits?.N ?? 0) >= write.maxHabits) return 'habit-limit';
      return 'free-habit-limit';
    }
  }

  /**
   * One conditional update of the account: the date joins the verified set (and the
   * count of verifications, which a running assessment's condition reads) unless the
   * user's habits were assessed through it.
   */
  async addVerification(key: HabitKey, date: string): Promise<VerificationResult> {
    try {
      await this.#documents.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keys.account(key.userId),
          UpdateExpression: 'ADD #verified :entry, #verifications :one',
          ConditionExpression:
            'attribute_exists(#habit) AND (attribute_not_exists(#through) OR #through < :date)',
          ExpressionAttributeNames: {
            '#habit': `${HABIT_ATTRIBUTE_PREFIX}${key.habitId}`,
            '#verified': 'verified',
            '#verifications': 'verifications',
            '#through': 'assessedThrough',
          },
          ExpressionAttributeValues: {
            ':entry': new Set([verifiedEntryOf(key.habitId, date)]),
            ':one': 1,
            ':date': date,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'recorded';
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const old = error.Item ?? {};
      return `${HABIT_ATTRIBUTE_PREFIX}${key.habitId}` in old ? 'already-assessed' : 'no-habit';
    }
  }

  // ---- assessment ---------------------------------------------------------------------

  async accountsToAssess(query: {
    shard: number;
    limit: number;
    cursor: string | null;
  }): Promise<Page<AssessableAccount> & { positions: string[] }> {
    if (!Number.isInteger(query.shard) || query.shard < 0 || query.shard >= ASSESSMENT_SHARDS) {
      throw new RangeError(`shard must be 0-${ASSESSMENT_SHARDS - 1}, got ${query.shard}`);
    }
    const index = ACCOUNT_ASSESSMENT_INDEX;
    const response = await this.#documents.send(
      new QueryCommand({
        TableName: this.#table,
        IndexName: index.indexName,
        KeyConditionExpression:
          query.cursor === null ? '#shard = :shard' : '#shard = :shard AND #key > :after',
        ExpressionAttributeNames: {
          '#shard': index.partitionKey.name,
          ...(query.cursor === null ? {} : { '#key': index.sortKey.name }),
        },
        ExpressionAttributeValues: {
          ':shard': query.shard,
          ...(query.cursor === null ? {} : { ':after': query.cursor }),
        },
        Limit: query.limit,
      }),
    );
    // Account items only: a habit item of the earlier layout not yet moved by
    // `npm run penalties:migrate-habits` carries the same index keys; it is stepped over.
    const items = (response.Items ?? []).filter((item) => item.sk === ACCOUNT_SK);
    const last = response.Items?.at(-1)?.[index.sortKey.name];
    return {
      items: items.map(toAssessable),
      positions: items.map((item) => String(item[index.sortKey.name])),
      // A full page (or one cut at 1 MB) may have more after it; an empty next page then ends the shard.
      nextCursor: response.LastEvaluatedKey
        ? last === undefined
          ? query.cursor
          : String(last)
        : null,
    };
  }

  async reloadAccounts(userIds: readonly string[]): Promise<AssessableAccount[]> {
    if (userIds.length === 0) return [];
    const { items } = await batchGetAll(this.#documents, {
      tableName: this.#table,
      keys: userIds.map((userId) => keys.account(userId)),
      consistentRead: true,
    });
    return items.map(toAssessable);
  }

  /**
   * One transaction per slice: each account's update (streaks of its assessed habits,
   * the date assessed through, verifications consumed, the unpaid summary; out of the
   * index when nothing of it is assessed any more) conditioned on what was read; each
   * new penalty put only if absent; the shard's progress (and start marker).
   */
  async commitAssessment(commit: AssessmentCommit): Promise<AssessmentCommitResult> {
    const items: TransactItem[] = [];
    for (const assessment of commit.assessments) {
      items.push(this.#assessedAccountUpdate(commit.date, assessment));
    }
    for (const assessment of commit.assessments) {
      for (const habit of assessment.habits) {
        if (!habit.penalty) continue;
        items.push({
          Put: {
            TableName: this.#table,
            Item: penaltyItem(habit.penalty),
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        });
      }
    }
    // A shard's first slice marks the date started, in the same write as the accounts it
    // moves: "has a later date moved any habit" is then one query (assessmentStartedAfter).
    if (commit.startsShard) {
      items.push({
        Put: {
          TableName: this.#table,
          Item: { ...keys.assessmentStarted(commit.date, commit.shard), date: commit.date },
        },
      });
    }
    items.push(this.#progressUpdate(commit));
    const outcome = await transactWrite(this.#documents, items);
    if (outcome.status === 'committed') return { status: 'committed' };
    if (outcome.status === 'failed') {
      if (isThrottle(outcome.error)) return { status: 'busy' };
      throw outcome.error;
    }
    const users = commit.assessments.map((assessment) => assessment.userId);
    const changed = users.filter((_, index) => outcome.reasons[index] === 'ConditionalCheckFailed');
    // A penalty that exists already belongs to an account assessed by another run: its
    // account condition fails too, so the accounts alone say what to re-read.
    if (changed.length > 0) return { status: 'conflict', users: changed };
    if (outcome.reasons.some((reason) => reason && BUSY_REASONS.has(reason))) {
      return { status: 'busy' };
    }
    const penaltyClash = outcome.reasons.some((reason) => reason === 'ConditionalCheckFailed');
    if (penaltyClash) return { status: 'conflict', users };
    return { status: 'busy' };
  }

  #assessedAccountUpdate(date: string, assessment: AccountAssessment): TransactItem {
    const names: Record<string, string> = {
      '#through': 'assessedThrough',
      '#verifications': 'verifications',
    };
    const values: Record<string, unknown> = { ':date': date };
    const sets = ['#through = :date'];
    assessment.habits.forEach((habit, index) => {
      names[`#s${index}`] = `${STREAK_ATTRIBUTE_PREFIX}${habit.habitId}`;
      values[`:s${index}`] = {
        current: habit.currentStreak,
        longest: habit.longestStreak,
        last: date,
      };
      sets.push(`#s${index} = :s${index}`);
    });
    const adds = assessment.summary ? summaryAdds(assessment.summary, names, values) : [];
    let expression = `SET ${sets.join(', ')}`;
    if (adds.length > 0) expression += ` ADD ${adds.join(', ')}`;
    if (assessment.consumed.length > 0) {
      names['#verified'] = 'verified';
      values[':consumed'] = new Set(
        assessment.consumed.map((day) => verifiedEntryOf(day.habitId, day.date)),
      );
      expression += ' DELETE #verified :consumed';
    }
    const conditions = [
      'attribute_exists(pk)',
      assessment.expectedAssessedThrough === null
        ? 'attribute_not_exists(#through)'
        : '#through = :expectedThrough',
      // A verification since read (maybe of this very day) makes the plan stale.
      assessment.expectedVerifications === 0
        ? 'attribute_not_exists(#verifications)'
        : '#verifications = :expectedVerifications',
    ];
    if (assessment.expectedAssessedThrough !== null) {
      values[':expectedThrough'] = assessment.expectedAssessedThrough;
    }
    if (assessment.expectedVerifications !== 0) {
      values[':expectedVerifications'] = assessment.expectedVerifications;
    }
    // Out of the index only if no habit was written since read (one may be switched back on).
    if (assessment.leavesAssessment) {
      names['#assessShard'] = ACCOUNT_ASSESSMENT_INDEX.partitionKey.name;
      names['#assessKey'] = ACCOUNT_ASSESSMENT_INDEX.sortKey.name;
      names['#version'] = 'habitsVersion';
      values[':version'] = assessment.leavesAssessment.habitsVersion;
      expression += ' REMOVE #assessShard, #assessKey';
      conditions.push('#version = :version');
    }
    return {
      Update: {
        TableName: this.#table,
        Key: keys.account(assessment.userId),
        UpdateExpression: expression,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  }

  #progressUpdate(commit: AssessmentCommit): TransactItem {
    const counts = commit.counts;
    return {
      Update: {
        TableName: this.#table,
        Key: keys.assessmentShard(commit.date, commit.shard),
        UpdateExpression: `SET #shard = :shard, #updatedAt = :at${commit.cursor === null ? '' : ', #cursor = :cursor'}${commit.done ? ', #done = :done' : ''} ADD #habits :habits, #verified :verified, #missed :missed, #created :created`,
        ExpressionAttributeNames: {
          '#shard': 'shard',
          '#updatedAt': 'updatedAt',
          ...(commit.cursor === null ? {} : { '#cursor': 'cursor' }),
          ...(commit.done ? { '#done': 'done' } : {}),
          '#habits': 'habits',
          '#verified': 'verified',
          '#missed': 'missed',
          '#created': 'penaltiesCreated',
        },
        ExpressionAttributeValues: {
          ':shard': commit.shard,
          ':at': new Date(commit.at).toISOString(),
          ...(commit.cursor === null ? {} : { ':cursor': commit.cursor }),
          ...(commit.done ? { ':done': true } : {}),
          ':habits': counts.habits,
          ':verified': counts.verified,
          ':missed': counts.missed,
          ':created': counts.penaltiesCreated,
        },
      },
    };
  }

  async readAssessment(date: string): Promise<ShardProgress[]> {
    const items = await this.#queryAll({
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.assessmentShard(date, 0).pk },
      ConsistentRead: true,
    });
    return items
      .map((item) => ({
        shard: numberOr(item.shard, 0),
        cursor: typeof item.cursor === 'string' ? item.cursor : null,
        done: item.done === true,
        habits: numberOr(item.habits, 0),
        verified: numberOr(item.verified, 0),
        missed: numberOr(item.missed, 0),
        penaltiesCreated: numberOr(item.penaltiesCreated, 0),
      }))
      .sort((a, b) => a.shard - b.shard);
  }

  async assessmentStartedAfter(date: string): Promise<string | null> {
    const response = await this.#documents.send(
      new QueryCommand({
        TableName: this.#table,
        KeyConditionExpression: 'pk = :pk AND sk > :after',
        // `~` sorts after every `#<nn>`: the first key of a later date.
        ExpressionAttributeValues: {
          ':pk': ASSESSMENTS_STARTED_PK,
          ':after': `${date}#~`,
        },
        ConsistentRead: true,
        Limit: 1,
      }),
    );
    const next = response.Items?.[0]?.date;
    return typeof next === 'string' ? next : null;
  }

  // ---- penalties ----------------------------------------------------------------------

  /** One query: the user's partition (any status) or the status index, newest first. */
  async listPenalties(query: PenaltiesQuery): Promise<Page<Partial<Penalty>>> {
    const after =
      query.cursor === undefined ? undefined : penaltiesCursor.decode(query, query.cursor);
    const pk = keys.account(query.userId).pk;
    const byStatus = query.status !== undefined;
    const fields = query.fields ?? PENALTY_ATTRIBUTES;
    const names = Object.fromEntries(
      [...new Set([...fields, 'sk'])].map((field) => [`#${field}`, field]),
    );
    const response = await this.#documents.send(
      new QueryCommand({
        TableName: this.#table,
        ...(byStatus ? { IndexName: PENALTY_STATUS_INDEX.indexName } : {}),
        KeyConditionExpression: byStatus
          ? `#userStatus = :partition AND ${after ? '#sk < :after' : 'begins_with(#sk, :prefix)'}`
          : `pk = :partition AND ${after ? '#sk < :after' : 'begins_with(#sk, :prefix)'}`,
        ExpressionAttributeNames: {
          ...names,
          ...(byStatus ? { '#userStatus': PENALTY_STATUS_INDEX.partitionKey.name } : {}),
        },
        ExpressionAttributeValues: {
          ':partition': byStatus ? userStatusKey(query.userId, query.status as string) : pk,
          ...(after ? { ':after': after.sk } : { ':prefix': PENALTY_SK_PREFIX }),
        },
        ProjectionExpression: Object.keys(names).join(', '),
        ScanIndexForward: false,
        Limit: query.limit + 1,
      }),
    );
    // `sk < :after` also admits the account item's key in the user's partition
    // ("ACCOUNT" < "PENALTY#…"): keep penalties only.
    const rows = (response.Items ?? []).filter((item) =>
      String(item.sk).startsWith(PENALTY_SK_PREFIX),
    );
    const page = rows.slice(0, query.limit);
    const more = rows.length > query.limit;
    const last = page.at(-1);
    return {
      items: page.map((item) => pick(item, fields)),
      nextCursor: more && last ? penaltiesCursor.encode(query, { sk: String(last.sk) }) : null,
    };
  }

  async getPenalties(penaltyIds: readonly string[]): Promise<Map<string, Penalty>> {
    const parsed = penaltyIds.flatMap((id) => {
      const parts = parsePenaltyId(id);
      return parts ? [keys.penalty(parts.userId, parts.habitId, parts.date)] : [];
    });
    const found = new Map<string, Penalty>();
    if (parsed.length === 0) return found;
    const { items } = await batchGetAll(this.#documents, {
      tableName: this.#table,
      keys: parsed,
      consistentRead: true,
    });
    for (const item of items) {
      const penalty = toPenalty(item);
      found.set(penalty.penaltyId, penalty);
    }
    return found;
  }

  async oldestUnpaid(userId: string, limit: number): Promise<Penalty[]> {
    const response = await this.#documents.send(
      new QueryCommand({
        TableName: this.#table,
        IndexName: PENALTY_STATUS_INDEX.indexName,
        KeyConditionExpression: '#userStatus = :partition',
        ExpressionAttributeNames: { '#userStatus': PENALTY_STATUS_INDEX.partitionKey.name },
        ExpressionAttributeValues: { ':partition': userStatusKey(userId, 'unpaid') },
        ScanIndexForward: true,
        Limit: limit,
      }),
    );
    return (response.Items ?? []).map(toPenalty);
  }

  /**
   * One transaction: each penalty conditioned on the status and PaymentIntent it was read in; the
   * summaries and recipient totals by ADD; credits spent only if enough remain; the
   * settlement lock taken only if absent, released only if it is this PaymentIntent's.
   */
  async commitTransitions(commit: TransitionCommit): Promise<TransitionCommitResult> {
    const items: TransactItem[] = [];
    const kinds: ('penalty' | 'account' | 'recipient' | 'credits' | 'lock' | 'release')[] = [];
    const at = new Date(commit.at).toISOString();
    for (const { penalty, to, paymentId } of commit.transitions) {
      const values: Record<string, unknown> = {
        ':from': penalty.status,
        ':to': to,
        ':userStatus': userStatusKey(penalty.userId, to),
        ':at': at,
      };
      let expression = 'SET #status = :to, userStatus = :userStatus, updatedAt = :at';
      if (paymentId) {
        expression += ', paymentId = :paymentId';
        values[':paymentId'] = paymentId;
      } else expression += ' REMOVE paymentId';
      // The PaymentIntent read is part of the state: a penalty that went back to unpaid
      // and is pending again under a newer settlement must refuse a stale transition
      // planned against the older one (same status, other intent). None read: no string
      // stored, as toPenalty reads it.
      let readPaymentId = 'NOT attribute_type(paymentId, :stringType)';
      if (penalty.paymentId) {
        readPaymentId = 'paymentId = :readPaymentId';
        values[':readPaymentId'] = penalty.paymentId;
      } else values[':stringType'] = 'S';
      items.push({
        Update: {
          TableName: this.#table,
          Key: keys.penalty(penalty.userId, penalty.habitId, penalty.date),
          UpdateExpression: expression,
          ConditionExpression: `attribute_exists(pk) AND #status = :from AND ${readPaymentId}`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: values,
        },
      });
      kinds.push('penalty');
    }
    const lock = commit.lockPending;
    const release = commit.releasePending;
    const accountUsers = new Set(commit.accounts.map((delta) => delta.userId));
    for (const delta of commit.accounts) {
      const update = this.#accountUpdate(delta);
      // The lock rides on the same account item (one item may appear once per transaction).
      if (lock && lock.userId === delta.userId) addLock(update, lock.userId, lock.settlement);
      if (release && release.userId === delta.userId) addRelease(update, release.paymentIntentId);
      items.push(update);
      kinds.push('account');
    }
    if (lock && !accountUsers.has(lock.userId)) {
      const update = this.#accountUpdate({
        userId: lock.userId,
        unpaidCount: 0,
        unpaidAmount: [],
        unpaidDates: [],
      });
      addLock(update, lock.userId, lock.settlement);
      items.push(update);
      kinds.push('lock');
    }
    if (release && !accountUsers.has(release.userId)) {
      items.push({
        Update: {
          TableName: this.#table,
          Key: keys.account(release.userId),
          UpdateExpression: `REMOVE ${RELEASE_REMOVES}`,
          ConditionExpression: '#pending.paymentIntentId = :releasedIntent',
          ExpressionAttributeNames: LOCK_NAMES,
          ExpressionAttributeValues: { ':releasedIntent': release.paymentIntentId },
        },
      });
      kinds.push('release');
    }
    for (const delta of commit.recipients) {
      const names: Record<string, string> = {};
      const values: Record<string, unknown> = {
        ':count': delta.penaltiesPaid,
        ':id': delta.recipientId,
      };
      const adds = ['penaltiesPaid :count'];
      delta.amounts.forEach((money, index) => {
        names[`#paid${index}`] = `${PAID_AMOUNT_PREFIX}${money.currency}`;
        values[`:paid${index}`] = money.amount;
        adds.push(`#paid${index} :paid${index}`);
      });
      items.push({
        Update: {
          TableName: this.#table,
          Key: keys.recipient(delta.recipientId),
          UpdateExpression: `SET recipientId = :id ADD ${adds.join(', ')}`,
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
        },
      });
      kinds.push('recipient');
    }
    if (commit.creditsUsed && commit.creditsUsed.count > 0) {
      items.push({
        Update: {
          TableName: this.#billing,
          Key: billingKeys.profile(commit.creditsUsed.userId),
          UpdateExpression: 'SET #credits = #credits - :used',
          ConditionExpression: 'attribute_exists(pk) AND #credits >= :used',
          ExpressionAttributeNames: { '#credits': CREDIT_ATTRIBUTE.balance },
          ExpressionAttributeValues: { ':used': commit.creditsUsed.count },
        },
      });
      kinds.push('credits');
    }
    if (items.length === 0) return { status: 'committed' };
    const outcome = await transactWrite(this.#documents, items);
    if (outcome.status === 'committed') {
      await Promise.all(
        commit.accounts.map((delta) =>
          this.#pruneUnpaidDates(
            delta.userId,
            delta.unpaidDates.filter((entry) => entry.count < 0).map((entry) => entry.date),
          ),
        ),
      );
      return { status: 'committed' };
    }
    if (outcome.status === 'failed') {
      if (isThrottle(outcome.error)) return { status: 'busy' };
      throw outcome.error;
    }
    const failedKinds = new Set(
      outcome.reasons.flatMap((reason, index) =>
        reason === 'ConditionalCheckFailed' ? [kinds[index]] : [],
      ),
    );
    if (failedKinds.has('penalty')) return { status: 'conflict', reason: 'penalty-changed' };
    if (failedKinds.has('credits')) return { status: 'conflict', reason: 'credits-changed' };
    if (failedKinds.has('account') || failedKinds.has('lock')) {
      // The account's only conditions are the lock's: taken by someone else, or released already.
      if (lock) return { status: 'conflict', reason: 'settlement-pending' };
    }
    if (failedKinds.has('release') || failedKinds.has('account')) {
      // The lock is not this PaymentIntent's (released already or another's): commit without releasing.
      return this.commitTransitions({ ...commit, releasePending: undefined } as TransitionCommit);
    }
    return { status: 'busy' };
  }

  /**
   * One query per shard of the sparse pending index (locks taken before the cutoff,
   * oldest first), merged oldest first across shards.
   */
  async abandonedSettlements(startedBefore: string, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    const index = PENDING_SETTLEMENT_INDEX;
    const shards = await Promise.all(
      Array.from({ length: PENDING_SETTLEMENT_SHARDS }, async (_, shard) => {
        const found: { userId: string; since: string }[] = [];
        let start: Record<string, unknown> | undefined;
        do {
          const response = await this.#documents.send(
            new QueryCommand({
              TableName: this.#table,
              IndexName: index.indexName,
              KeyConditionExpression: '#shard = :shard AND #since < :before',
              ExpressionAttributeNames: {
                '#shard': index.partitionKey.name,
                '#since': index.sortKey.name,
              },
              ExpressionAttributeValues: { ':shard': shard, ':before': startedBefore },
              ScanIndexForward: true,
              Limit: limit - found.length,
              ...(start ? { ExclusiveStartKey: start } : {}),
            }),
          );
          for (const item of response.Items ?? []) {
            if (typeof item.userId !== 'string') continue;
            found.push({ userId: item.userId, since: String(item[index.sortKey.name]) });
          }
          start = response.LastEvaluatedKey;
        } while (start && found.length < limit);
        return found;
      }),
    );
    return shards
      .flat()
      .sort((a, b) => a.since.localeCompare(b.since) || a.userId.localeCompare(b.userId))
      .slice(0, limit)
      .map((lock) => lock.userId);
  }

  async recipientTotals(recipientId: string): Promise<RecipientTotals | null> {
    const { Item } = await this.#documents.send(
      new GetCommand({ TableName: this.#table, Key: keys.recipient(recipientId) }),
    );
    if (!Item) return null;
    return {
      recipientId,
      penaltiesPaid: numberOr(Item.penaltiesPaid, 0),
      amounts: amountsOf(Item, PAID_AMOUNT_PREFIX),
    };
  }

  /** Idempotent: `if_not_exists` keeps the first record (and its refund) of a key. */
  async recordOverpayments(overpayments: readonly Overpayment[]): Promise<Overpayment[]> {
    const recorded: Overpayment[] = [];
    for (const o of overpayments) {
      const { Attributes } = await this.#documents.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keys.overpayment(o.paymentIntentId, o.penaltyId),
          UpdateExpression:
            'SET paymentIntentId = :pi, penaltyId = :penalty, userId = :user, amount = :amount, currency = :currency, settledAs = :as, settledBy = :by, recordedAt = if_not_exists(recordedAt, :at)',
          ExpressionAttributeValues: {
            ':pi': o.paymentIntentId,
            ':penalty': o.penaltyId,
            ':user': o.userId,
            ':amount': o.amount,
            ':currency': o.currency,
            ':as': o.settledAs,
            ':by': o.settledBy,
            ':at': o.recordedAt,
          },
          // What it was before: nothing, the first time.
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      if (!Attributes?.recordedAt) recorded.push(o);
    }
    return recorded;
  }

  async listOverpayments(options: { all?: boolean } = {}): Promise<Overpayment[]> {
    const found: Overpayment[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.#documents.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': keys.overpayment('', '').pk },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        const overpayment: Overpayment = {
          paymentIntentId: String(item.paymentIntentId),
          penaltyId: String(item.penaltyId),
          userId: String(item.userId),
          amount: numberOr(item.amount, 0),
          currency: String(item.currency),
          settledAs: item.settledAs === 'paid' ? 'paid' : 'waived',
          settledBy: typeof item.settledBy === 'string' ? item.settledBy : null,
          recordedAt: String(item.recordedAt),
          refundId: typeof item.refundId === 'string' ? item.refundId : null,
          refundedAt: typeof item.refundedAt === 'string' ? item.refundedAt : null,
        };
        if (options.all || overpayment.refundId === null) found.push(overpayment);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return found.sort((a, b) => a.recordedAt.localeCompare(b.recordedAt));
  }

  async markOverpaymentRefunded(
    key: { paymentIntentId: string; penaltyId: string },
    refund: { refundId: string; refundedAt: string },
  ): Promise<void> {
    await this.#documents
      .send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keys.overpayment(key.paymentIntentId, key.penaltyId),
          UpdateExpression: 'SET refundId = :refund, refundedAt = :at',
          // The first refund recorded stays: the same key refunds once at Stripe anyway.
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(refundId)',
          ExpressionAttributeValues: { ':refund': refund.refundId, ':at': refund.refundedAt },
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
  }

  // ---- helpers ------------------------------------------------------------------------

  get #billing(): string {
    if (!this.#billingTable) {
      throw new Error('this penalty store was built without the billing table (profiles)');
    }
    return this.#billingTable;
  }

  #accountUpdate(
    delta: AccountDelta,
  ): TransactItem & { Update: NonNullable<TransactItem['Update']> } {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':userId': delta.userId };
    const adds = summaryAdds(delta, names, values);
    return {
      Update: {
        TableName: this.#table,
        Key: keys.account(delta.userId),
        UpdateExpression: `SET userId = :userId ADD ${adds.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  }

  /**
   * Removes the per-date counts among `dates` that a commit brought to zero, so the
   * account item (written by every later commit of the user, and billed by its size)
   * does not grow with every date ever unpaid. After the commit, not in it: only a read
   * tells which reached zero. Conditioned on still being zero; a race or a failure
   * leaves a zero count, which reads as nothing (and the next decrement prunes it).
   */
  async #pruneUnpaidDates(userId: string, dates: readonly string[]): Promise<void> {
    if (dates.length === 0) return;
    const attributes = dates.map((date) => `${UNPAID_DATE_PREFIX}${date}`);
    const namesOf = (list: readonly string[]) =>
      Object.fromEntries(list.map((attribute, index) => [`#d${index}`, attribute]));
    try {
      const { Item } = await this.#documents.send(
        new GetCommand({
          TableName: this.#table,
          Key: keys.account(userId),
          ProjectionExpression: attributes.map((_, index) => `#d${index}`).join(', '),
          ExpressionAttributeNames: namesOf(attributes),
          ConsistentRead: true,
        }),
      );
      const zero = attributes.filter((attribute) => Item?.[attribute] === 0);
      if (zero.length === 0) return;
      const placeholders = zero.map((_, index) => `#d${index}`);
      await this.#documents.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keys.account(userId),
          UpdateExpression: `REMOVE ${placeholders.join(', ')}`,
          ConditionExpression: placeholders.map((name) => `${name} = :zero`).join(' AND '),
          ExpressionAttributeNames: namesOf(zero),
          ExpressionAttributeValues: { ':zero': 0 },
        }),
      );
    } catch (error) {
      // Best effort by design (see above): the commit itself has landed. A lost race
      // (the count moved again) is expected; anything else is worth a look.
      if (!(error instanceof ConditionalCheckFailedException)) this.#onPruneFailure(error);
    }
  }

  async #queryAll(input: QueryCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const response = await this.#documents.send(
        new QueryCommand({ ...input, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      items.push(...(response.Items ?? []));
      start = response.LastEvaluatedKey;
    } while (start);
    return items;
  }
}

/**
 * The ADD clauses of a change to the unpaid summary (the count, `unpaid#<currency>`,
 * `unpaidOn#<date>`), their placeholders added to `names` and `values`: the same on
 * every write that moves it (assessment, settlement, payment outcome, mark-paid).
 */
function summaryAdds(
  delta: AccountDelta,
  names: Record<string, string>,
  values: Record<string, unknown>,
): string[] {
  names['#unpaidCount'] = 'unpaidCount';
  values[':unpaidCount'] = delta.unpaidCount;
  const adds = ['#unpaidCount :unpaidCount'];
  delta.unpaidAmount.forEach((money, index) => {
    names[`#unpaid${index}`] = `${UNPAID_AMOUNT_PREFIX}${money.currency}`;
    values[`:unpaid${index}`] = money.amount;
    adds.push(`#unpaid${index} :unpaid${index}`);
  });
  delta.unpaidDates.forEach((entry, index) => {
    names[`#unpaidOn${index}`] = `${UNPAID_DATE_PREFIX}${entry.date}`;
    values[`:unpaidOn${index}`] = entry.count;
    adds.push(`#unpaidOn${index} :unpaidOn${index}`);
  });
  return adds;
}

/** The lock and the pending index's keys, which come and go with it. */
const LOCK_NAMES = {
  '#pending': 'pending',
  '#pendingShard': PENDING_SETTLEMENT_INDEX.partitionKey.name,
  '#pendingSince': PENDING_SETTLEMENT_INDEX.sortKey.name,
};
const RELEASE_REMOVES = '#pending, #pendingShard, #pendingSince';

function addLock(
  item: TransactItem & { Update: NonNullable<TransactItem['Update']> },
  userId: string,
  settlement: PendingSettlement,
): void {
  const update = item.Update;
  update.UpdateExpression = (update.UpdateExpression ?? '').replace(
    'SET userId = :userId',
    'SET userId = :userId, #pending = :pending, #pendingShard = :pendingShard, #pendingSince = :pendingSince',
  );
  update.ConditionExpression = 'attribute_not_exists(#pending)';
  update.ExpressionAttributeNames = { ...update.ExpressionAttributeNames, ...LOCK_NAMES };
  update.ExpressionAttributeValues = {
    ...update.ExpressionAttributeValues,
    ':pending': settlement,
    // Findable by the sweep of abandoned settlements (the sparse pending index).
    ':pendingShard': pendingSettlementShardOf(userId),
    ':pendingSince': settlement.startedAt,
  };
}

function addRelease(
  item: TransactItem & { Update: NonNullable<TransactItem['Update']> },
  paymentIntentId: string,
): void {
  const update = item.Update;
  update.UpdateExpression = `${update.UpdateExpression} REMOVE ${RELEASE_REMOVES}`;
  update.ConditionExpression = '#pending.paymentIntentId = :releasedIntent';
  update.ExpressionAttributeNames = { ...update.ExpressionAttributeNames, ...LOCK_NAMES };
  update.ExpressionAttributeValues = {
    ...update.ExpressionAttributeValues,
    ':releasedIntent': paymentIntentId,
  };
}

function isThrottle(error: Error): boolean {
  return /Throttl|ProvisionedThroughputExceeded|RequestLimitExceeded/.test(error.name);
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** `<prefix><key>` number attributes as `[key, value]` pairs. */
function countsOf(item: Item, prefix: string): [string, number][] {
  return Object.entries(item).flatMap(([name, value]) =>
    name.startsWith(prefix) && typeof value === 'number'
      ? [[name.slice(prefix.length), value]]
      : [],
  ) as [string, number][];
}

/** `<prefix><currency>` attributes as money, ascending by currency, zeros left out. */
function amountsOf(item: Item, prefix: string): Money[] {
  return Object.entries(item)
    .filter(([name, value]) => name.startsWith(prefix) && typeof value === 'number' && value !== 0)
    .map(([name, value]) => ({ currency: name.slice(prefix.length), amount: value as number }))
    .sort((a, b) => a.currency.localeCompare(b.currency));
}

function penaltyItem(penalty: Penalty): Item {
  return {
    ...keys.penalty(penalty.userId, penalty.habitId, penalty.date),
    penaltyId: penalty.penaltyId,
    userId: penalty.userId,
    habitId: penalty.habitId,
    date: penalty.date,
    amount: penalty.amount,
    currency: penalty.currency,
    ...(penalty.recipientId ? { recipientId: penalty.recipientId } : {}),
    status: penalty.status,
    userStatus: userStatusKey(penalty.userId, penalty.status),
    ...(penalty.paymentId ? { paymentId: penalty.paymentId } : {}),
    createdAt: penalty.createdAt,
    updatedAt: penalty.updatedAt,
  };
}

function toPenalty(item: Item): Penalty {
  return {
    penaltyId: String(item.penaltyId),
    userId: String(item.userId),
    habitId: String(item.habitId),
    date: String(item.date),
    amount: numberOr(item.amount, 0),
    currency: String(item.currency),
    recipientId: typeof item.recipientId === 'string' ? item.recipientId : null,
    status: String(item.status) as PenaltyStatus,
    paymentId: typeof item.paymentId === 'string' ? item.paymentId : null,
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
  };
}

/** The selected attributes; optional ones absent on the item come back as null. */
function pick(item: Item, fields: readonly string[]): Partial<Penalty> {
  const full = toPenalty({ ...item, penaltyId: item.penaltyId ?? '', userId: item.userId ?? '' });
  return Object.fromEntries(
    fields.map((field) => [field, full[field as keyof Penalty]]),
  ) as Partial<Penalty>;
}

/**
 * An account item holding `habits` and the verifications `verified`, as habit PUTs and
 * verifications leave it before any assessment: to seed a large store at once (the
 * bench) in the store's own shape.
 */
export function seededAccountItem(
  userId: string,
  habits: readonly Habit[],
  verified: readonly HabitDay[],
): Item {
  return {
    ...keys.account(userId),
    userId,
    habits: habits.length,
    freeHabits: habits.filter((habit) => habit.free && habit.active).length,
    habitsVersion: habits.length,
    ...Object.fromEntries(
      habits.map((habit) => [`${HABIT_ATTRIBUTE_PREFIX}${habit.habitId}`, storedHabitOf(habit)]),
    ),
    ...(verified.length > 0
      ? {
          verified: new Set(verified.map((day) => verifiedEntryOf(day.habitId, day.date))),
          verifications: verified.length,
        }
      : {}),
    ...(habits.some(isAssessed)
      ? {
          [ACCOUNT_ASSESSMENT_INDEX.partitionKey.name]: assessmentShardOf(userId),
          [ACCOUNT_ASSESSMENT_INDEX.sortKey.name]: userId,
        }
      : {}),
  };
}

/** The settings map a habit PUT writes (`habit#<habitId>` on the account). */
function storedHabitOf(habit: Habit): Item {
  return {
    habitId: habit.habitId,
    name: habit.name,
    penaltyAmount: habit.penaltyAmount,
    currency: habit.currency,
    free: habit.free,
    recipientId: habit.recipientId,
    active: habit.active,
    earlierSettings: habit.earlierSettings,
    createdAt: habit.createdAt,
    updatedAt: habit.updatedAt,
  };
}

function habitNames(habitId: string): Record<string, string> {
  return {
    '#habit': `${HABIT_ATTRIBUTE_PREFIX}${habitId}`,
    '#streak': `${STREAK_ATTRIBUTE_PREFIX}${habitId}`,
  };
}

/** The habits on an account item (each `habit#<id>` with its `streak#<id>`), by id. */
function habitsOf(userId: string, item: Item): Habit[] {
  return Object.entries(item)
    .filter(([name]) => name.startsWith(HABIT_ATTRIBUTE_PREFIX))
    .map(([name, value]) => {
      const stored = value as Item;
      const habitId = name.slice(HABIT_ATTRIBUTE_PREFIX.length);
      const streak = (item[`${STREAK_ATTRIBUTE_PREFIX}${habitId}`] ?? {}) as Item;
      return {
        userId,
        habitId,
        name: String(stored.name),
        penaltyAmount: numberOr(stored.penaltyAmount, 0),
        currency: String(stored.currency),
        free: stored.free === true,
        recipientId: typeof stored.recipientId === 'string' ? stored.recipientId : null,
        active: stored.active === true,
        currentStreak: numberOr(streak.current, 0),
        longestStreak: numberOr(streak.longest, 0),
        lastAssessedDate: typeof streak.last === 'string' ? streak.last : null,
        earlierSettings: earlierSettingsOf(stored.earlierSettings),
        createdAt: String(stored.createdAt),
        updatedAt: String(stored.updatedAt),
      };
    })
    .sort((a, b) => a.habitId.localeCompare(b.habitId));
}

/** A habit's owed earlier settings as stored (a list of maps); absent reads as none. */
function earlierSettingsOf(value: unknown): EarlierSettings[] {
  if (!Array.isArray(value)) return [];
  return value.map((entry: Item) => ({
    through: String(entry.through),
    penaltyAmount: numberOr(entry.penaltyAmount, 0),
    currency: String(entry.currency),
    free: entry.free === true,
    recipientId: typeof entry.recipientId === 'string' ? entry.recipientId : null,
    active: entry.active === true,
  }));
}

function toAssessable(item: Item): AssessableAccount {
  const userId = String(item.userId);
  const verified = new Map<string, string[]>();
  for (const entry of item.verified instanceof Set ? item.verified : []) {
    const [habitId, date] = String(entry).split('/') as [string, string];
    verified.set(habitId, [...(verified.get(habitId) ?? []), date]);
  }
  return {
    userId,
    assessedThrough: typeof item.assessedThrough === 'string' ? item.assessedThrough : null,
    verifications: numberOr(item.verifications, 0),
    habitsVersion: numberOr(item.habitsVersion, 0),
    habits: habitsOf(userId, item).map((habit) =>
      assessableHabit(habit, verified.get(habit.habitId) ?? []),
    ),
  };
}
