/**
 * Penalties (issue 13): one day's assessment on DynamoDB Local with the real DynamoDB
 * penalty store — habit-days per second against the raw BatchWriteItem item rate
 * measured beside it, the items it writes per second against raw 100-item
 * TransactWriteItems (its own kind of write), write requests per penalty created, wall
 * time — then the same
 * day again (must create nothing), the p99 of a penalties page and of the summary read
 * for one user with many penalties, and settlements per second through the Stripe
 * gateway against the fake Stripe. Accounts with their habits are seeded with
 * BatchWriteItem in the store's item shape (the API's one write per habit is not what
 * is measured).
 */
import { performance } from 'node:perf_hooks';
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  DynamoDbPenaltyStore,
  seededAccountItem,
} from '../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  PENALTY_KEYS,
  PENALTY_STATUS_INDEX,
  UNPAID_AMOUNT_PREFIX,
  UNPAID_DATE_PREFIX,
} from '../functions/adapters/dynamodb/penalty-table-schema.ts';
import { StaticSecretString } from '../functions/adapters/secrets/secret-string.ts';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../functions/adapters/stripe/stripe-client.ts';
import { StripePenaltyPaymentGateway } from '../functions/adapters/stripe/stripe-penalty-payments.ts';
import { StripeCallPolicy } from '../functions/adapters/stripe/stripe-resilience.ts';
import { ENV } from '../functions/commons/env-names.ts';
import {
  ASSESSMENT_CONCURRENCY,
  ASSESSMENT_PAGE_SIZE,
  assessDate,
} from '../functions/core/penalties/assessment.ts';
import { ASSESSMENT_SHARDS } from '../functions/core/penalties/penalty-ids.ts';
import type { Habit, HabitDay } from '../functions/core/penalties/ports.ts';
import { settlePenalties } from '../functions/core/penalties/settlement.ts';
import { startFakeStripe } from '../local/fake-stripe.ts';
import { type BenchContext, localDynamo } from './context.ts';
import { runClosedLoop, timeAlternating } from './load.ts';
import { boundResource, functionByEntry } from './provision.ts';
import { mustBeZero, type Section } from './report.ts';
import { percentile, ratio } from './stats.ts';

const DAY = '2026-02-01';
const CREATED = '2026-01-01T00:00:00.000Z';

/** One read timed in slices alternating with the raw call it makes (ms). */
interface ReadTimes {
  p50Ms: number;
  rawP50Ms: number;
  p99Ms: number;
  rawP99Ms: number;
}

export interface PenaltiesResult {
  habitDays: number;
  missedNonFree: number;
  penaltiesCreated: number;
  habitDaysPerSecond: number;
  rawBatchWriteItemsPerSecond: number;
  /** Items the assessment's transactions wrote (habits, penalties, summaries, progress). */
  itemsWritten: number;
  /** Raw TransactWriteItems of 100 conditional puts of account-sized items, as many in flight as the assessment's shards. */
  rawTransactItemsPerSecond: number;
  /** Raw Query pages of the assessment index over every shard, as the assessment reads them: the accounts' read alone. */
  rawReadPassMs: number;
  writeRequestsPerPenalty: number;
  wallMs: number;
  rerunPenaltiesCreated: number;
  rerunWriteRequests: number;
  page: { penalties: number } & ReadTimes;
  summary: ReadTimes;
  /** Unpaid days of the user the summary is read for (a count per day on its account). */
  heavyDays: number;
  settlementsPerSecond: number;
  settlementsPaidTwice: number;
}

export async function measurePenalties(ctx: BenchContext): Promise<PenaltiesResult> {
  const assessor = functionByEntry(ctx.model, 'functions/penalty-assessor.ts');
  const table = ctx.provisioned.tableNames[boundResource(assessor, ENV.penaltiesTableName)]!;
  const documents = DynamoDBDocumentClient.from(ctx.harness.dynamo);
  const habitDays = ctx.quick ? 10_000 : 100_000;
  const tag = Date.now().toString(36);

  // About a third missed, one in ten free; 5 habits per user, on the user's account.
  ctx.log(`penalties: seeding ${habitDays} habits on ${habitDays / 5} accounts`);
  const habits = Array.from({ length: habitDays }, (_, i) => {
    const free = i % 10 === 3;
    const habit: Habit = {
      userId: `pb-${tag}-${Math.floor(i / 5)}`,
      habitId: `h${i % 5}`,
      name: `h${i % 5}`,
      penaltyAmount: free ? 0 : 100,
      currency: 'usd',
      free,
      active: true,
      recipientId: `charity-${i % 7}`,
      currentStreak: 0,
      longestStreak: 0,
      lastAssessedDate: null,
      earlierSettings: [],
      createdAt: CREATED,
      updatedAt: CREATED,
    };
    return { habit, verified: i % 3 !== 0 };
  });
  const byUser = new Map<string, { habits: Habit[]; verified: HabitDay[] }>();
  for (const { habit, verified } of habits) {
    const entry = byUser.get(habit.userId) ?? { habits: [], verified: [] };
    entry.habits.push(habit);
    if (verified) entry.verified.push({ habitId: habit.habitId, date: DAY });
    byUser.set(habit.userId, entry);
  }
  const accounts = [...byUser].map(([userId, { habits, verified }]) =>
    seededAccountItem(userId, habits, verified),
  );
  const missedNonFree = habits.filter((h) => !h.verified && !h.habit.free).length;
  const seedStart = performance.now();
  await runClosedLoop(
    async (i) => {
      const chunk = accounts.slice(i * 25, i * 25 + 25);
      if (chunk.length === 0) return;
      await documents.send(
        new BatchWriteCommand({
          RequestItems: { [table]: chunk.map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
    },
    { concurrency: 8, total: Math.ceil(accounts.length / 25) },
  );
  const rawBatchWriteItemsPerSecond = accounts.length / ((performance.now() - seedStart) / 1000);

  let writeRequests = 0;
  let itemsWritten = 0;
  const counted = countingWrites(ctx, (items) => {
    writeRequests += 1;
    itemsWritten += items;
  });
  const store = new DynamoDbPenaltyStore({ client: counted, penaltiesTableName: table });
  const clock = { now: () => Date.parse('2026-02-02T00:20:00Z') };

  ctx.log(`penalties: assessing ${DAY} over ${habitDays} habit-days`);
  const started = performance.now();
  const first = await assessDate(DAY, { store, clock });
  const wallMs = performance.now() - started;
  const firstWrites = writeRequests;
  const firstItems = itemsWritten;

  // The assessment's own kind of write, with no product code: transactions of 100
  // conditional puts of account-sized items, as many in flight as the assessment's shards.
  ctx.log(`penalties: raw TransactWriteItems x100, ${ASSESSMENT_CONCURRENCY} in flight`);
  const rawTransactions = ctx.quick ? 40 : 200;
  const rawStart = performance.now();
  await runClosedLoop(
    async (i) => {
      await documents.send(
        new TransactWriteCommand({
          // Out of the assessment index (no assessShard/assessKey): never assessed.
          TransactItems: accounts
            .slice(0, 100)
            .map(({ assessShard, assessKey, ...account }, j) => ({
              Put: {
                TableName: table,
                Item: { ...account, pk: `RAWTX#${tag}-${i}-${j}` },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            })),
        }),
      );
    },
    { concurrency: ASSESSMENT_CONCURRENCY, total: rawTransactions },
  );
  const rawTransactItemsPerSecond =
    (rawTransactions * 100) / ((performance.now() - rawStart) / 1000);

  // The assessment's reads with no product code: every shard of the assessment index in
  // pages of the assessment's size, as many in flight. With the raw transactions above it
  // gives the emulator's own floor for this day's work (DynamoDB Local runs them in turn).
  ctx.log('penalties: raw read pass of the assessment index');
  const rawReadStart = performance.now();
  let nextShard = 0;
  await Promise.all(
    Array.from({ length: ASSESSMENT_CONCURRENCY }, async () => {
      for (let shard = nextShard++; shard < ASSESSMENT_SHARDS; shard = nextShard++) {
        let startKey: Record<string, AttributeValue> | undefined;
        do {
          const page = await ctx.harness.dynamo.send(
            new QueryCommand({
              TableName: table,
              IndexName: ACCOUNT_ASSESSMENT_INDEX.indexName,
              KeyConditionExpression: '#shard = :shard',
              ExpressionAttributeNames: { '#shard': ACCOUNT_ASSESSMENT_INDEX.partitionKey.name },
              ExpressionAttributeValues: { ':shard': { N: String(shard) } },
              Limit: ASSESSMENT_PAGE_SIZE,
              ExclusiveStartKey: startKey,
            }),
          );
          startKey = page.LastEvaluatedKey;
        } while (startKey);
      }
    }),
  );
  const rawReadPassMs = performance.now() - rawReadStart;

  ctx.log('penalties: the same day again');
  writeRequests = 0;
  const rerun = await assessDate(DAY, { store, clock });
  const rerunWriteRequests = writeRequests;

  // One user with many penalties: the page and the summary read. 20 habits missed on
  // 500 days each: the account item carries a count per unpaid date (the summary's
  // oldest date), so its size follows the dates, and 500 is well past what a user who
  // settles ever holds.
  const heavyUser = `pb-${tag}-heavy`;
  const pagePenalties = ctx.quick ? 2_000 : 10_000;
  const heavyHabits = 20;
  const heavyDays = pagePenalties / heavyHabits;
  ctx.log(
    `penalties: seeding ${pagePenalties} penalties of one user (${heavyHabits} habits × ${heavyDays} days)`,
  );
  const dayOf = (i: number) =>
    new Date(Date.parse('2000-01-01') + i * 86_400_000).toISOString().slice(0, 10);
  const penalties = Array.from({ length: pagePenalties }, (_, i) => {
    const date = dayOf(Math.floor(i / heavyHabits));
    const habitId = `h${i % heavyHabits}`;
    return {
      ...PENALTY_KEYS.penalty(heavyUser, habitId, date),
      penaltyId: `pen_${heavyUser}_${habitId}_${date}`,
      userId: heavyUser,
      habitId,
      date,
      amount: 100,
      currency: 'usd',
      recipientId: 'charity-0',
      status: 'unpaid',
      userStatus: `${heavyUser}#unpaid`,
      createdAt: CREATED,
      updatedAt: CREATED,
    };
  });
  await runClosedLoop(
    async (i) => {
      const chunk = penalties.slice(i * 25, i * 25 + 25);
      if (chunk.length === 0) return;
      await documents.send(
        new BatchWriteCommand({
          RequestItems: { [table]: chunk.map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
    },
    { concurrency: 8, total: Math.ceil(pagePenalties / 25) },
  );
  // The account as the store's commits leave it for these penalties, with its habits.
  const heavyHabitList = Array.from({ length: heavyHabits }, (_, h) => ({
    ...habits[0]!.habit,
    userId: heavyUser,
    habitId: `h${h}`,
    name: `h${h}`,
  }));
  await documents.send(
    new PutCommand({
      TableName: table,
      Item: {
        ...seededAccountItem(heavyUser, heavyHabitList, []),
        unpaidCount: pagePenalties,
        [`${UNPAID_AMOUNT_PREFIX}usd`]: pagePenalties * 100,
        ...Object.fromEntries(
          Array.from({ length: heavyDays }, (_, day) => [
            `${UNPAID_DATE_PREFIX}${dayOf(day)}`,
            heavyHabits,
          ]),
        ),
      },
    }),
  );
  // One read at a time, in slices alternating with the raw call it makes (as the
  // payments reads are timed), so the emulator's own latency is in the same figures.
  const raw = ctx.harness.dynamo;
  const timed = async (op: () => Promise<unknown>, baseline: () => Promise<unknown>) => {
    const { own, base } = await timeAlternating(op, baseline, {
      slices: 4,
      durationMs: ctx.sizes.paymentReadDurationMs,
      warmupMs: ctx.sizes.warmupMs,
    });
    return {
      p50Ms: percentile(own, 50),
      rawP50Ms: percentile(base, 50),
      p99Ms: percentile(own, 99),
      rawP99Ms: percentile(base, 99),
    };
  };
  const pageRead = await timed(
    () => store.listPenalties({ userId: heavyUser, limit: 25, status: 'unpaid' }),
    () =>
      raw.send(
        new QueryCommand({
          TableName: table,
          IndexName: PENALTY_STATUS_INDEX.indexName,
          KeyConditionExpression: '#k = :k',
          ExpressionAttributeNames: { '#k': PENALTY_STATUS_INDEX.partitionKey.name },
          ExpressionAttributeValues: { ':k': { S: `${heavyUser}#unpaid` } },
          ScanIndexForward: false,
          Limit: 26,
        }),
      ),
  );
  const accountKey = PENALTY_KEYS.account(heavyUser);
  const summaryRead = await timed(
    () => store.getAccount(heavyUser),
    () =>
      raw.send(
        new GetItemCommand({
          TableName: table,
          Key: { pk: { S: accountKey.pk }, sk: { S: accountKey.sk } },
          ConsistentRead: true,
        }),
      ),
  );

  // Settlements through the real gateway against the fake Stripe.
  ctx.log('penalties: settlements against the fake Stripe');
  const stripe = await startFakeStripe();
  let settlementsPerSecond = 0;
  let settlementsPaidTwice = 0;
  try {
    const gateway = new StripePenaltyPaymentGateway({
      clients: new StripeClientSource(
        new StaticSecretString(stripe.secretKey, 'key', (m) => new Error(m)),
        parseStripeApiUrl(stripe.url),
      ),
      calls: new StripeCallPolicy(),
    });
    const users = [
      ...new Set(habits.filter((h) => !h.verified && !h.habit.free).map((h) => h.habit.userId)),
    ];
    const settleUsers = users.slice(0, ctx.quick ? 200 : 1_000);
    const settleStart = performance.now();
    await runClosedLoop(
      async (i) => {
        const userId = settleUsers[i]!;
        await settlePenalties(userId, { store, gateway, clock });
        // A double click: the same settlement again must not charge again.
        await settlePenalties(userId, { store, gateway, clock }).catch(() => undefined);
      },
      { concurrency: 8, total: settleUsers.length },
    );
    settlementsPerSecond = settleUsers.length / ((performance.now() - settleStart) / 1000);
    const perUser = new Map<string, number>();
    for (const intent of stripe.paymentIntents.values()) {
      const userId = intent.metadata.userId ?? '';
      perUser.set(userId, (perUser.get(userId) ?? 0) + 1);
    }
    settlementsPaidTwice = [...perUser.values()].filter((n) => n > 1).length;
  } finally {
    await stripe.close();
    counted.destroy();
  }

  return {
    habitDays,
    missedNonFree,
    penaltiesCreated: first.penaltiesCreated,
    habitDaysPerSecond: first.habits / (wallMs / 1000),
    rawBatchWriteItemsPerSecond,
    itemsWritten: firstItems,
    rawTransactItemsPerSecond,
    rawReadPassMs,
    writeRequestsPerPenalty: firstWrites / Math.max(1, first.penaltiesCreated),
    wallMs,
    rerunPenaltiesCreated: rerun.thisRun.penaltiesCreated,
    rerunWriteRequests,
    page: { penalties: pagePenalties, ...pageRead },
    summary: summaryRead,
    heavyDays,
    settlementsPerSecond,
    settlementsPaidTwice,
  };
}

/** The emulator's own time for the assessment's reads and writes, measured raw in the same run. */
function floorMs(r: PenaltiesResult): number {
  return r.rawReadPassMs + (r.itemsWritten / r.rawTransactItemsPerSecond) * 1000;
}

/**
 * A client of its own on the same emulator, counting each write request (a transaction
 * is one) and the items it writes, once it succeeded.
 */
function countingWrites(ctx: BenchContext, onWrite: (items: number) => void): DynamoDBClient {
  const client = localDynamo(ctx.endpoints.dynamo);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName);
      if (!WRITE_COMMANDS.has(command)) return await next(args);
      let items = 1;
      try {
        const output = await next(args);
        const input = args.input as { TransactItems?: unknown[] };
        if (command === 'TransactWriteItemsCommand') items = input.TransactItems?.length ?? 0;
        return output;
      } catch (error) {
        items = 0;
        throw error;
      } finally {
        onWrite(items);
      }
    },
    { step: 'initialize', name: 'countWriteRequests' },
  );
  return client;
}

const WRITE_COMMANDS = new Set([
  'TransactWriteItemsCommand',
  'BatchWriteItemCommand',
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
]);

export function penaltiesSection(result: PenaltiesResult): Section {
  const r = result;
  return {
    id: 'penalties',
    title: 'Penalties',
    figures: [
      {
        id: 'penalties.assess.habitDaysPerSecond',
        label: `habit-days assessed per second (${r.habitDays} habit-days, one day)`,
        value: r.habitDaysPerSecond,
        unit: 'habit-days/s',
        ratio: {
          value: ratio(r.habitDaysPerSecond, r.rawBatchWriteItemsPerSecond),
          to: 'raw BatchWriteItem items/s (accounts of 5 habits)',
        },
      },
      {
        id: 'penalties.assess.itemsPerHabitDay',
        label:
          'items the assessment wrote per habit-day (accounts with their habits and summary, penalties, progress)',
        value: r.itemsWritten / Math.max(1, r.habitDays),
        unit: 'items',
      },
      {
        id: 'penalties.assess.itemsPerSecond',
        label: 'items the assessment wrote per second, in transactions of up to 100',
        value: r.itemsWritten / (r.wallMs / 1000),
        unit: 'items/s',
        ratio: {
          value: ratio(r.itemsWritten / (r.wallMs / 1000), r.rawTransactItemsPerSecond),
          to: 'raw 100-item TransactWriteItems items/s',
        },
      },
      {
        id: 'penalties.assess.floorSeconds',
        label:
          "the emulator's floor for the same work: raw read pass of the accounts + raw transactions of as many items",
        value: floorMs(r) / 1000,
        unit: 's',
        ratio: { value: ratio(floorMs(r), r.wallMs), to: 'the assessment (wall time)' },
      },
      {
        id: 'penalties.assess.writeRequestsPerPenalty',
        label: 'write requests per penalty created (transactions of up to 100 items)',
        value: r.writeRequestsPerPenalty,
        unit: 'requests',
        target: { op: '<=', value: 0.1 },
      },
      {
        id: 'penalties.assess.wallSeconds',
        label: `wall time of the assessment (${r.habitDays} habit-days)`,
        value: r.wallMs / 1000,
        unit: 's',
        target: { op: '<', value: 30 },
      },
      mustBeZero(
        'penalties.assess.missing',
        'missed non-free habit-days without a penalty',
        r.missedNonFree - r.penaltiesCreated,
        'penalties',
      ),
      mustBeZero(
        'penalties.rerun.penaltiesCreated',
        'penalties created by assessing the same day again',
        r.rerunPenaltiesCreated,
        'penalties',
      ),
      {
        id: 'penalties.read.pageP50',
        label: `penalties page p50 (25, unpaid, user with ${r.page.penalties} penalties)`,
        value: r.page.p50Ms,
        unit: 'ms',
        ratio: { value: ratio(r.page.p50Ms, r.page.rawP50Ms), to: 'raw Query (26 items) p50' },
      },
      {
        id: 'penalties.read.pageP99',
        label: `penalties page p99 (25, unpaid, user with ${r.page.penalties} penalties)`,
        value: r.page.p99Ms,
        unit: 'ms',
        ratio: { value: ratio(r.page.p99Ms, r.page.rawP99Ms), to: 'raw Query (26 items) p99' },
        target: { op: '<', value: 5 },
      },
      {
        id: 'penalties.read.summaryP50',
        label: 'unpaid summary p50',
        value: r.summary.p50Ms,
        unit: 'ms',
        ratio: { value: ratio(r.summary.p50Ms, r.summary.rawP50Ms), to: 'raw GetItem p50' },
      },
      {
        id: 'penalties.read.summaryP99',
        label: `unpaid summary p99 (one consistent GetItem of the account: ${r.heavyDays} unpaid days × 20 habits)`,
        value: r.summary.p99Ms,
        unit: 'ms',
        ratio: { value: ratio(r.summary.p99Ms, r.summary.rawP99Ms), to: 'raw GetItem p99' },
        target: { op: '<', value: 5 },
      },
      {
        id: 'penalties.settle.perSecond',
        label: 'settlements per second (DynamoDB Local + fake Stripe, each settled twice)',
        value: r.settlementsPerSecond,
        unit: 'settlements/s',
      },
      mustBeZero(
        'penalties.settle.paidTwice',
        'users with more than one PaymentIntent',
        r.settlementsPaidTwice,
        'users',
      ),
    ],
    notes: [
      `Raw BatchWriteItem while seeding the accounts (5 habits each): ${r.rawBatchWriteItemsPerSecond.toFixed(0)} items/s (8 in flight).`,
      `Raw TransactWriteItems of 100 conditional puts of account-sized items, right after the assessment: ${r.rawTransactItemsPerSecond.toFixed(0)} items/s (${ASSESSMENT_CONCURRENCY} in flight). At that rate the assessment's ${r.itemsWritten.toLocaleString('en-US')} items alone take ${(r.itemsWritten / r.rawTransactItemsPerSecond).toFixed(1)} s.`,
      `Raw read pass of the assessment index (${ASSESSMENT_SHARDS} shards, pages of ${ASSESSMENT_PAGE_SIZE}, ${ASSESSMENT_CONCURRENCY} in flight): ${(r.rawReadPassMs / 1000).toFixed(1)} s. DynamoDB Local runs requests in turn (Java near one core during the assessment), so reads and writes add up: floor ${(floorMs(r) / 1000).toFixed(1)} s, the assessment ${(r.wallMs / 1000).toFixed(1)} s.`,
      `The same day again made ${r.rerunWriteRequests} write requests (the shards are complete: none expected).`,
    ],
  };
}
