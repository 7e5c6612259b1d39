/**
 * Credits (issue: credit refresh): how evenly the slot hash spreads users over the day
 * against the seed's hour/minute hash, and a whole day of refreshes on DynamoDB Local —
 * every slot planned on the slot index and refreshed by the worker's use case with the
 * real DynamoDB credit store — as users/s against the raw conditional-update rate
 * measured beside it, store operations per refreshed user, and the exactly-once checks
 * (a second day refreshes everyone once more; re-running the day refreshes no one).
 * The SQS hop between planner and worker is measured by the pipeline scenarios; here the
 * planner's work goes to the worker in-process, 250 users a batch as the queue would.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { billingKeys } from '../functions/adapters/dynamodb/billing-table-keys.ts';
import { DynamoDbCreditStore } from '../functions/adapters/dynamodb/dynamodb-credit-store.ts';
import { REFRESH_USERS_PER_MESSAGE } from '../functions/adapters/sqs/sqs-refresh-queue.ts';
import { ENV } from '../functions/commons/env-names.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../functions/core/credits/allowances.ts';
import { planCreditRefresh } from '../functions/core/credits/plan-credit-refresh.ts';
import type { RefreshWork } from '../functions/core/credits/ports.ts';
import { refreshCredits } from '../functions/core/credits/refresh-credits.ts';
import {
  NEVER_REFRESHED,
  refreshSlotOf,
  SLOT_MINUTES,
  SLOTS_PER_DAY,
  slotStart,
} from '../functions/core/credits/refresh-slot.ts';
import { TIERS } from '../functions/core/shared/tiers.ts';
import type { BenchContext } from './context.ts';
import { gbSeconds, type PriceTable, US_EAST_1_PRICES } from './cost-model.ts';
import { runClosedLoop } from './load.ts';
import { boundResource, functionByEntry } from './provision.ts';
import { mustBeZero, type Section } from './report.ts';
import { ratio } from './stats.ts';

/** The seed's slot: hour = h % 24, minute = h % 60 of the same hash. */
function seedSlot(userId: string): number {
  const h = createHash('md5').update(userId).digest().readUInt32BE(0);
  return Math.floor(((h % 24) * 60 + (h % 60)) / SLOT_MINUTES);
}

function spread(users: number, slotOf: (userId: string) => number) {
  const counts = new Array<number>(SLOTS_PER_DAY).fill(0);
  for (let i = 0; i < users; i++) counts[slotOf(`user-${i}`)]! += 1;
  const mean = users / SLOTS_PER_DAY;
  return {
    maxOverMean: Math.max(...counts) / mean,
    emptySlots: counts.filter((c) => c === 0).length,
  };
}

export interface CreditsResult {
  distribution: {
    users: number;
    hashed: ReturnType<typeof spread>;
    seed: ReturnType<typeof spread>;
  };
  day: {
    users: number;
    seededPerSecond: number;
    refreshedPerSecond: number;
    rawConditionalUpdatesPerSecond: number;
    storeOpsPerRefreshed: number;
    refreshedTwice: number;
    notRefreshed: number;
    secondDayRefreshedOnce: boolean;
    rerunRefreshed: number;
    elapsedMs: number;
  };
  cost: CreditCost;
}

/** List-price cost per million user-refreshes: DynamoDB as measured, the rest from the stack's settings. */
export interface CreditCost {
  /** Write and read units per refreshed user on day 1, table and slot index, as DynamoDB Local reported them. */
  wruPerUser: number;
  rruPerUser: number;
  /** Worker: ms per user (in-process, 5 batches in flight), memory, messages per invocation. */
  workerMsPerUser: number;
  workerMemoryMb: number;
  workerBatchSize: number;
  plannerMemoryMb: number;
  /** Dollars per million refreshes, by line. */
  lines: { name: string; dollars: number; detail: string }[];
  total: number;
}

/**
 * What a million refreshes cost (us-east-1 list prices, cost-model.ts), for a user base
 * refreshed once a day: DynamoDB from the units measured; SQS from the queue's packing (25
 * users a message, 10 messages a SendMessageBatch; the worker's batch of messages per
 * receive and one DeleteMessageBatch per 10); Lambda from the measured worker time per
 * message; the planner and the Scheduler per slot run (288 a day, for a million users a day).
 */
export function creditCostPerMillion(
  usage: Omit<CreditCost, 'lines' | 'total'> & { plannerMsPerRun: number },
  prices: PriceTable = US_EAST_1_PRICES,
): Pick<CreditCost, 'lines' | 'total'> {
  const million = 1_000_000;
  const messages = million / REFRESH_USERS_PER_MESSAGE;
  const messagesPerReceive = Math.min(10, usage.workerBatchSize);
  const invocations = messages / usage.workerBatchSize;
  const invocationMs = usage.workerMsPerUser * REFRESH_USERS_PER_MESSAGE * usage.workerBatchSize;
  const sqsRequests = messages / 10 + messages / messagesPerReceive + messages / 10;
  const plannerRuns = SLOTS_PER_DAY; // a million users refreshed in one day
  const lines = [
    {
      name: 'DynamoDB writes',
      dollars: (usage.wruPerUser * million * prices.dynamoPerMillionWru) / million,
      detail: `${usage.wruPerUser.toFixed(2)} WRU/user (refresh, slot index entry moved, run log)`,
    },
    {
      name: 'DynamoDB reads',
      dollars: (usage.rruPerUser * million * prices.dynamoPerMillionRru) / million,
      detail: `${usage.rruPerUser.toFixed(3)} RRU/user (index pages, run log)`,
    },
    {
      name: 'SQS standard',
      dollars: (sqsRequests * prices.sqsStandardPerMillionRequests) / million,
      detail: `${sqsRequests.toFixed(0)} requests (send 1 per 10 messages, receive 1 per ${messagesPerReceive}, delete 1 per 10)`,
    },
    {
      name: 'Lambda worker',
      dollars:
        (invocations * prices.lambdaPerMillionRequests) / million +
        invocations * gbSeconds(usage.workerMemoryMb, invocationMs) * prices.lambdaArmPerGbSecond,
      detail: `${invocations.toFixed(0)} invocations x ${invocationMs.toFixed(0)} ms x ${usage.workerMemoryMb} MB`,
    },
    {
      name: 'Lambda planner + Scheduler',
      dollars:
        (plannerRuns * (prices.lambdaPerMillionRequests + SCHEDULER_PER_MILLION)) / million +
        plannerRuns *
          gbSeconds(usage.plannerMemoryMb, usage.plannerMsPerRun) *
          prices.lambdaArmPerGbSecond,
      detail: `${plannerRuns} runs x ${usage.plannerMsPerRun.toFixed(0)} ms x ${usage.plannerMemoryMb} MB`,
    },
  ];
  return { lines, total: lines.reduce((sum, line) => sum + line.dollars, 0) };
}

/** EventBridge Scheduler, per million invocations. */
const SCHEDULER_PER_MILLION = 1.0;

export async function measureCredits(ctx: BenchContext): Promise<CreditsResult> {
  const distributionUsers = 1_000_000;
  ctx.log(`credits: spreading ${distributionUsers} user ids over ${SLOTS_PER_DAY} slots`);
  const distribution = {
    users: distributionUsers,
    hashed: spread(distributionUsers, refreshSlotOf),
    seed: spread(distributionUsers, seedSlot),
  };

  const worker = functionByEntry(ctx.model, 'functions/credit-worker.ts');
  const table = ctx.provisioned.tableNames[boundResource(worker, ENV.billingTableName)]!;
  const documents = DynamoDBDocumentClient.from(ctx.harness.dynamo);
  const users = ctx.quick ? 10_000 : 100_000;
  const tag = Date.now().toString(36);
  ctx.log(`credits: seeding ${users} profiles`);
  const seedStart = performance.now();
  const ids = Array.from({ length: users }, (_, i) => `bench-${tag}-${i}`);
  await runClosedLoop(
    async (i) => {
      const chunk = ids.slice(i * 25, i * 25 + 25);
      if (chunk.length === 0) return;
      await documents.send(
        new BatchWriteCommand({
          RequestItems: {
            [table]: chunk.map((userId, n) => ({
              PutRequest: {
                Item: {
                  ...billingKeys.profile(userId),
                  userId,
                  tier: TIERS[n % TIERS.length],
                  credits: 0,
                  refreshSlot: refreshSlotOf(userId),
                  creditPeriod: NEVER_REFRESHED,
                },
              },
            })),
          },
        }),
      );
    },
    { concurrency: 8, total: Math.ceil(users / 25) },
  );
  const seededPerSecond = users / ((performance.now() - seedStart) / 1000);

  let operations = 0;
  const units = { read: 0, write: 0 };
  const store = new DynamoDbCreditStore({
    client: ctx.harness.dynamo,
    billingTableName: table,
    onCapacity: (_operation, capacity) => {
      operations += 1;
      units.read += capacity.readUnits;
      units.write += capacity.writeUnits;
    },
  });
  const workerMs = { total: 0, users: 0 };
  const writes = new Map<string, number>();
  let queryMs = 0;
  const countingStore = {
    usersDue: async (query: Parameters<typeof store.usersDue>[0]) => {
      const began = performance.now();
      try {
        return await store.usersDue(query);
      } finally {
        queryMs += performance.now() - began;
      }
    },
    getAccount: store.getAccount.bind(store),
    refresh: async (work: Parameters<typeof store.refresh>[0]) => {
      const result = await store.refresh(work);
      if (result === 'refreshed') {
        const key = `${work.userId}|${work.period}`;
        writes.set(key, (writes.get(key) ?? 0) + 1);
      }
      return result;
    },
  };
  // The planner's batches go straight to the worker use case, 5 at once like the mapping.
  const pending: Promise<unknown>[] = [];
  const queue = {
    enqueue: async (work: readonly RefreshWork[]) => {
      // One call per worker invocation, as the worker makes it (a batch of messages of 25
      // users each; the planner's 250 users are one batch of 10): timed per user.
      const began = performance.now();
      pending.push(
        refreshCredits([...work], {
          store: countingStore,
          runLog: store,
          allowances: DEFAULT_CREDIT_ALLOWANCES,
          clock: { now: () => Date.now() },
        }).then(() => {
          workerMs.total += performance.now() - began;
          workerMs.users += work.length;
        }),
      );
      if (pending.length >= 5) await Promise.all(pending.splice(0));
    },
  };
  /** Every slot of `period`, in order, as the schedule would fire them over the day. */
  const runDay = async (period: string) => {
    for (let slot = 0; slot < SLOTS_PER_DAY; slot++) {
      await planCreditRefresh(
        { now: slotStart(period, slot) + 1_000, slots: [slot], period },
        { store: countingStore, queue, runLog: store },
      );
    }
    await Promise.all(pending.splice(0));
  };
  const day1 = '2026-01-01';
  ctx.log(`credits: a whole day (${SLOTS_PER_DAY} slots) over ${users} users`);
  operations = 0;
  units.read = 0;
  units.write = 0;
  queryMs = 0;
  workerMs.total = 0;
  workerMs.users = 0;
  const started = performance.now();
  await runDay(day1);
  const elapsedMs = performance.now() - started;
  const firstDayOps = operations;
  const firstDayUnits = { ...units };
  const firstDayQueryMs = queryMs;
  const firstDayMsPerUser = workerMs.total / Math.max(1, workerMs.users);
  const refreshedDay1 = ids.filter((id) => writes.get(`${id}|${day1}`) === 1).length;
  const refreshedTwice = [...writes.values()].filter((n) => n > 1).length;

  ctx.log('credits: the same day again, then the next day');
  const before = writes.size;
  await runDay(day1);
  const rerunRefreshed = writes.size - before;
  await runDay('2026-01-02');
  const secondDayRefreshedOnce = ids.every((id) => writes.get(`${id}|2026-01-02`) === 1);

  ctx.log('credits: raw conditional UpdateItem on the same table');
  const raw = await runClosedLoop(
    async (i) => {
      const userId = ids[i % ids.length]!;
      await ctx.harness.dynamo
        .send(
          new UpdateItemCommand({
            TableName: table,
            Key: { pk: { S: billingKeys.profile(userId).pk }, sk: { S: 'PROFILE' } },
            UpdateExpression: 'SET credits = :c, creditPeriod = :p',
            ConditionExpression: 'creditPeriod < :p',
            ExpressionAttributeValues: {
              ':c': { N: '1' },
              ':p': { S: `2027-01-${String(1 + (i % 28)).padStart(2, '0')}` },
            },
          }),
        )
        .catch(() => undefined);
    },
    { concurrency: 16, durationMs: ctx.quick ? 2_000 : 5_000 },
  );

  const planner = functionByEntry(ctx.model, 'functions/credit-planner.ts');
  const workerMapping = ctx.model.queueConsumers.find(
    (c) => c.functionLogicalId === worker.logicalId,
  );
  const refreshed = Math.max(1, refreshedDay1);
  const usage = {
    wruPerUser: firstDayUnits.write / refreshed,
    rruPerUser: firstDayUnits.read / refreshed,
    workerMsPerUser: firstDayMsPerUser,
    workerMemoryMb: worker.memoryMb,
    workerBatchSize: workerMapping?.batchSize ?? 10,
    plannerMemoryMb: planner.memoryMb,
  };
  // The planner's time per slot run is its index pages: their time on day 1, scaled to a
  // million users a day (3,472 a slot).
  const plannerMsPerRun = (firstDayQueryMs / SLOTS_PER_DAY) * (1_000_000 / users);
  const cost = { ...usage, ...creditCostPerMillion({ ...usage, plannerMsPerRun }) };

  return {
    cost,
    distribution,
    day: {
      users,
      seededPerSecond,
      refreshedPerSecond: refreshedDay1 / (elapsedMs / 1000),
      rawConditionalUpdatesPerSecond: raw.perSecond,
      storeOpsPerRefreshed: firstDayOps / Math.max(1, refreshedDay1),
      refreshedTwice,
      notRefreshed: users - refreshedDay1,
      secondDayRefreshedOnce,
      rerunRefreshed,
      elapsedMs,
    },
  };
}

export function creditsSection(result: CreditsResult): Section {
  const { distribution: d, day } = result;
  return {
    id: 'credits',
    title: 'Credits',
    figures: [
      {
        id: 'credits.distribution.maxOverMean',
        label: `users per slot, max / mean (${d.users} ids, hashed slot)`,
        value: d.hashed.maxOverMean,
        unit: 'x',
        target: { op: '<=', value: 1.05 },
      },
      {
        id: 'credits.distribution.seedMaxOverMean',
        label: `users per slot, max / mean (seed: hour = h % 24, minute = h % 60)`,
        value: d.seed.maxOverMean,
        unit: 'x',
      },
      {
        id: 'credits.day.refreshedPerSecond',
        label: `users refreshed per second, a whole day over ${day.users} users`,
        value: day.refreshedPerSecond,
        unit: 'users/s',
        ratio: {
          value: ratio(day.refreshedPerSecond, day.rawConditionalUpdatesPerSecond),
          to: 'raw conditional UpdateItem/s',
          target: { op: '>=', value: 0.5 },
        },
      },
      {
        id: 'credits.day.storeOpsPerRefreshed',
        label: 'store operations per refreshed user (index pages, writes, run log)',
        value: day.storeOpsPerRefreshed,
        unit: 'ops',
        target: { op: '<=', value: 1.1 },
      },
      mustBeZero(
        'credits.day.refreshedTwice',
        'users refreshed twice in a day',
        day.refreshedTwice,
        'users',
      ),
      mustBeZero(
        'credits.day.notRefreshed',
        'users not refreshed by the end of the day',
        day.notRefreshed,
        'users',
      ),
      mustBeZero(
        'credits.day.rerunRefreshed',
        'users refreshed by re-running the same day',
        day.rerunRefreshed,
        'users',
      ),
      ...result.cost.lines.map((line) => ({
        id: `credits.cost.${line.name.replace(/[^A-Za-z]+/g, '')}`,
        label: line.name,
        value: line.dollars,
        unit: '$/M refreshes',
      })),
      {
        id: 'credits.cost.total',
        label: 'TOTAL per million user-refreshes (us-east-1 list prices)',
        value: result.cost.total,
        unit: '$/M refreshes',
      },
    ],
    notes: [
      `The seed's slots leave ${d.seed.emptySlots} of ${SLOTS_PER_DAY} slots empty; the hashed slots leave ${d.hashed.emptySlots}.`,
      `Second day: every user refreshed exactly once: ${day.secondDayRefreshedOnce ? 'yes' : 'NO'}.`,
      `Seeding ${day.users} profiles: ${day.seededPerSecond.toFixed(0)}/s. The day took ${(day.elapsedMs / 1000).toFixed(1)} s; raw conditional UpdateItem ${day.rawConditionalUpdatesPerSecond.toFixed(0)}/s (16 in flight).`,
      'The planner-to-worker SQS hop is not in this figure (the pipeline scenarios measure SQS); batches of 250 users go to the worker use case, 5 at once.',
      ...result.cost.lines.map((line) => `Cost, ${line.name}: ${line.detail}.`),
      "Cost: DynamoDB units as DynamoDB Local reported them on day 1 (table and slot index; the index entry moves on each refresh: delete + put); SQS and Lambda from the stack's packing and batch size with the worker time measured in-process per user (5 batches in flight: an overstatement); the planner per slot run scaled to a million users a day. Not included: free tiers, storage, the event source's idle long polls (~$0.26 a month per queue).",
    ],
  };
}
