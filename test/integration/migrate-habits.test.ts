/**
 * `npm run penalties:migrate-habits` on DynamoDB Local: habit items of the earlier layout
 * (one item per habit) moved onto their accounts with their streaks, pending
 * verifications and assessed date; a habit created again since the deploy keeps its new
 * settings and its counts are set right; a habit written between the scan and its move
 * is left for the next run; a dry run writes nothing; again finds nothing.
 * Also the command run as an operator runs it (a child process).
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import { PENALTY_KEYS } from '../../functions/adapters/dynamodb/penalty-table-schema.ts';
import { assessDate } from '../../functions/core/penalties/assessment.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../functions/core/penalties/habits.ts';
import { saveHabit } from '../../functions/core/penalties/manage-habits.ts';
import { assessmentShardOf } from '../../functions/core/penalties/penalty-ids.ts';
import { LEGACY_HABIT_SK_PREFIX, migrateHabits } from '../../local/migrate-habits.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { createPenaltiesTable } from '../helpers/penalty-table.ts';
import { at, fixedClock, noPause, settings } from '../unit/penalties/penalty-fixtures.ts';

const CREATED = '2026-11-01T12:00:00.000Z';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** A habit item as the store wrote it before the account layout. */
function legacyHabit(userId: string, habitId: string, fields: Record<string, unknown>) {
  return {
    pk: `USER#${userId}`,
    sk: `${LEGACY_HABIT_SK_PREFIX}${habitId}`,
    userId,
    habitId,
    name: habitId,
    penaltyAmount: 500,
    currency: 'usd',
    free: false,
    active: true,
    currentStreak: 0,
    longestStreak: 0,
    createdAt: CREATED,
    updatedAt: CREATED,
    ...fields,
  };
}

async function setUp() {
  const { dynamo } = emulatorClients();
  const table = await createPenaltiesTable(dynamo);
  const { billingTableName } = await createBillingTables(dynamo);
  const documents = DynamoDBDocumentClient.from(dynamo);
  const store = new DynamoDbPenaltyStore({
    client: dynamo,
    penaltiesTableName: table,
    billingTableName,
  });
  const tag = Math.random().toString(36).slice(2, 8);
  const alice = `alice-${tag}`;
  const bob = `bob-${tag}`;
  const items = [
    legacyHabit(alice, 'run', {
      recipientId: 'charity-1',
      currentStreak: 3,
      longestStreak: 5,
      lastAssessedDate: '2026-12-01',
      verifiedDates: new Set(['2026-12-02']),
      assessShard: assessmentShardOf(alice),
      assessKey: `${alice}#run`,
    }),
    legacyHabit(alice, 'read', {
      free: true,
      penaltyAmount: 0,
      active: false,
      longestStreak: 9,
      lastAssessedDate: '2026-11-20',
    }),
    legacyHabit(bob, 'gym', {
      lastAssessedDate: '2026-12-01',
      assessShard: assessmentShardOf(bob),
      assessKey: `${bob}#gym`,
    }),
    { ...PENALTY_KEYS.account(alice), userId: alice, habits: 2, freeHabits: 0 },
    { ...PENALTY_KEYS.account(bob), userId: bob, habits: 1, freeHabits: 0 },
  ];
  await documents.send(
    new BatchWriteCommand({
      RequestItems: { [table]: items.map((Item) => ({ PutRequest: { Item } })) },
    }),
  );
  const legacyLeft = async (userId: string) =>
    (
      await documents.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :habit)',
          ExpressionAttributeValues: { ':pk': `USER#${userId}`, ':habit': LEGACY_HABIT_SK_PREFIX },
          ConsistentRead: true,
        }),
      )
    ).Items?.length ?? 0;
  return { dynamo, table, store, alice, bob, legacyLeft };
}

describe('npm run penalties:migrate-habits', () => {
  it('moves old habit items onto their accounts, keeps a habit created again since, and finds nothing the second time', async () => {
    const { dynamo, table, store, alice, bob, legacyLeft } = await setUp();
    // Before: the store neither lists them nor takes their index entries for accounts.
    expect(await store.listHabits(alice)).toEqual([]);
    const shard = await store.accountsToAssess({
      shard: assessmentShardOf(alice),
      limit: 100,
      cursor: null,
    });
    expect(shard.items.map((account) => account.userId)).not.toContain(alice);
    // Bob's habit is PUT after the deploy: the store saw none and created it (counted twice).
    const clock = fixedClock(at('2026-12-02', '09:00:00'));
    await saveHabit({ userId: bob, habitId: 'gym' }, settings({ name: 'Gym, new' }), {
      store,
      clock,
      freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
    });
    expect((await store.getAccount(bob))?.habits).toBe(2);

    const dry = await migrateHabits({ client: dynamo, tableName: table, dryRun: true });
    expect(dry).toMatchObject({ found: 3, moved: 0, superseded: 0, raced: 0 });
    expect(await legacyLeft(alice)).toBe(2);

    const done = await migrateHabits({ client: dynamo, tableName: table, pageSize: 7 });
    expect(done).toMatchObject({ found: 3, moved: 2, superseded: 1, raced: 0 });
    expect(await legacyLeft(alice)).toBe(0);
    expect(await legacyLeft(bob)).toBe(0);
    const habits = await store.listHabits(alice);
    expect(habits.map((habit) => habit.habitId)).toEqual(['read', 'run']);
    expect(habits.find((habit) => habit.habitId === 'run')).toMatchObject({
      name: 'run',
      recipientId: 'charity-1',
      active: true,
      currentStreak: 3,
      longestStreak: 5,
      lastAssessedDate: '2026-12-01',
      createdAt: CREATED,
    });
    expect(habits.find((habit) => habit.habitId === 'read')).toMatchObject({
      free: true,
      active: false,
      longestStreak: 9,
      lastAssessedDate: '2026-11-20',
    });
    expect(await store.getAccount(alice)).toMatchObject({ habits: 2, freeHabits: 0 });
    expect(await store.listHabits(bob)).toMatchObject([{ habitId: 'gym', name: 'Gym, new' }]);
    expect(await store.getAccount(bob)).toMatchObject({ habits: 1 });
    // The assessed date came along: a day already assessed takes no verification.
    expect(await store.addVerification({ userId: alice, habitId: 'run' }, '2026-12-01')).toBe(
      'already-assessed',
    );

    // The next day's assessment reads them: the moved verification extends the streak.
    clock.time = at('2026-12-03', '00:15:00');
    const day = await assessDate('2026-12-02', { store, clock, pause: noPause });
    expect(day).toMatchObject({ complete: true, verified: 1 });
    expect((await store.getHabit({ userId: alice, habitId: 'run' }))?.currentStreak).toBe(4);

    expect(await migrateHabits({ client: dynamo, tableName: table })).toMatchObject({
      found: 0,
      moved: 0,
    });
  });

  it('leaves a habit written between the scan and its move for the next run, changing nothing of it', async () => {
    const { table, alice, legacyLeft } = await setUp();
    const { dynamo } = emulatorClients();
    const documents = DynamoDBDocumentClient.from(dynamo);
    // A client whose first transaction is preceded by a write of the old item (a PUT
    // still served by the earlier layout during the deploy).
    const racing = new DynamoDBClient({
      endpoint: inject('dynamoEndpoint'),
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    let raced = false;
    racing.middlewareStack.add(
      (next) => async (args) => {
        if (!raced && 'TransactItems' in (args.input as object)) {
          raced = true;
          await documents.send(
            new UpdateCommand({
              TableName: table,
              Key: { pk: `USER#${alice}`, sk: `${LEGACY_HABIT_SK_PREFIX}run` },
              UpdateExpression: 'SET updatedAt = :now, #name = :name',
              ExpressionAttributeNames: { '#name': 'name' },
              ExpressionAttributeValues: { ':now': '2026-12-02T10:00:00.000Z', ':name': 'Run!' },
            }),
          );
        }
        return next(args);
      },
      { step: 'initialize' as const },
    );
    const first = await migrateHabits({ client: racing, tableName: table, concurrency: 1 });
    expect(first).toMatchObject({ found: 3, raced: 1 });
    expect(await legacyLeft(alice)).toBe(1);
    const second = await migrateHabits({ client: racing, tableName: table });
    expect(second).toMatchObject({ found: 1, raced: 0 });
    expect(await legacyLeft(alice)).toBe(0);
    const store = new DynamoDbPenaltyStore({ client: dynamo, penaltiesTableName: table });
    const run = (await store.listHabits(alice)).find((habit) => habit.habitId === 'run');
    expect(run).toMatchObject({ name: 'Run!', updatedAt: '2026-12-02T10:00:00.000Z' });
    expect(await store.getAccount(alice)).toMatchObject({ habits: 2 });
  });

  it('runs as an operator runs it, and says what it did', async () => {
    const { table, legacyLeft, alice } = await setUp();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'local/migrate-habits.ts', '--table', table],
      {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH ?? '',
          AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        timeout: 60_000,
      },
    );
    expect(stdout).toMatch(
      /Done in [\d.]+ s: 3 old habit items, 3 moved, 0 already on the account/,
    );
    expect(await legacyLeft(alice)).toBe(0);
  });
});
