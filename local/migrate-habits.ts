/**
 * `npm run penalties:migrate-habits -- [--table <name>] [--dry-run] [--page-size 500] [--concurrency 8]`
 *
 * One-off operator command, to run right after deploying the account layout: moves
 * every habit item of the earlier layout (`USER#<userId>` / `HABIT#<habitId>`, one item
 * per habit) onto its user's account item, where the penalty store now keeps a user's
 * habits (penalty-table-schema.ts). Until it has run, the store does not see those
 * habits: they are not listed and not assessed.
 *
 * A paged Scan of the penalties table for the old habit items (an operator command,
 * never a request path), and for each one transaction: the account takes the habit's
 * settings, streaks and pending verifications (and the assessment index keys while the
 * habit is assessed), and the old item is deleted on condition it is unchanged since
 * the scan. A habit already written in the new layout since the deploy (a PUT saw no
 * habit and created it) keeps what it has; the old item is deleted and the habit counts
 * it added twice are taken back. Then the account's "assessed through" date is raised
 * to the habit's last assessed date if lower (never lowered: each habit's own date
 * still guards its assessment). Idempotent: run it again and it finds nothing.
 * `--dry-run` scans and counts, writes nothing.
 *
 * Against the local runtime: set `AWS_ENDPOINT_URL_DYNAMODB` to the DynamoDB endpoint
 * `npm start` prints (the table defaults to the local `billing-suite-penalties`).
 * Against AWS: your usual credentials and region, and `--table` with the deployed
 * penalties table's name.
 */
import { pathToFileURL } from 'node:url';
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  ScanCommand,
  type ScanCommandOutput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  HABIT_ATTRIBUTE_PREFIX,
  PENALTY_KEYS,
  STREAK_ATTRIBUTE_PREFIX,
  verifiedEntryOf,
} from '../functions/adapters/dynamodb/penalty-table-schema.ts';
import { isAssessed } from '../functions/core/penalties/habits.ts';
import { assessmentShardOf } from '../functions/core/penalties/penalty-ids.ts';
import type { EarlierSettings } from '../functions/core/penalties/ports.ts';
import { LOCAL_PENALTIES_TABLE } from './assess-penalties.ts';
import { tableScanCommand } from './operator-clients.ts';

/** The sort key prefix of a habit item in the earlier layout. */
export const LEGACY_HABIT_SK_PREFIX = 'HABIT#';

export interface MigrateHabitsOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Scan and count only. */
  dryRun?: boolean;
  /** Items each Scan call evaluates (its Limit). Default 500. */
  pageSize?: number;
  /** Habits moved at once. Default 8. */
  concurrency?: number;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

export interface MigrateHabitsResult {
  /** Items the Scan evaluated (the whole table). */
  scanned: number;
  /** Old habit items found. */
  found: number;
  /** Moved onto their account (0 on a dry run). */
  moved: number;
  /** Deleted because the account already had the habit (written since the deploy). */
  superseded: number;
  /** Changed between the scan and the move: left for the next run. */
  raced: number;
}

type Item = Record<string, unknown>;

export async function migrateHabits(options: MigrateHabitsOptions): Promise<MigrateHabitsResult> {
  const documents = DynamoDBDocumentClient.from(options.client);
  const pageSize = options.pageSize ?? 500;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const log = options.log ?? (() => {});
  const result: MigrateHabitsResult = { scanned: 0, found: 0, moved: 0, superseded: 0, raced: 0 };
  let startKey: ScanCommandOutput['LastEvaluatedKey'];
  let page = 0;
  do {
    const response = await documents.send(
      new ScanCommand({
        TableName: options.tableName,
        FilterExpression: 'begins_with(sk, :habit)',
        ExpressionAttributeValues: { ':habit': LEGACY_HABIT_SK_PREFIX },
        Limit: pageSize,
        ExclusiveStartKey: startKey,
      }),
    );
    page++;
    result.scanned += response.ScannedCount ?? 0;
    const habits = response.Items ?? [];
    result.found += habits.length;
    if (!options.dryRun) {
      let next = 0;
      const worker = async () => {
        while (next < habits.length) {
          const outcome = await moveHabit(documents, options.tableName, habits[next++] as Item);
          result[outcome]++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, habits.length) }, worker));
    }
    startKey = response.LastEvaluatedKey;
    log(
      `page ${page}: scanned ${result.scanned} items, ${result.found} old habit items, ` +
        (options.dryRun
          ? 'dry run: nothing written'
          : `${result.moved} moved, ${result.superseded} already on the account, ${result.raced} changed meanwhile`),
    );
  } while (startKey);
  return result;
}

async function moveHabit(
  documents: DynamoDBDocumentClient,
  table: string,
  old: Item,
): Promise<'moved' | 'superseded' | 'raced'> {
  const userId = String(old.userId);
  const habitId = String(old.habitId);
  const accountKey = PENALTY_KEYS.account(userId);
  const habitAttribute = `${HABIT_ATTRIBUTE_PREFIX}${habitId}`;
  const { Item: account } = await documents.send(
    new GetCommand({
      TableName: table,
      Key: accountKey,
      ProjectionExpression: '#habit',
      ExpressionAttributeNames: { '#habit': habitAttribute },
      ConsistentRead: true,
    }),
  );
  const earlierSettings = Array.isArray(old.earlierSettings)
    ? (old.earlierSettings as EarlierSettings[])
    : [];
  const settings = {
    active: old.active === true,
    earlierSettings,
    lastAssessedDate: typeof old.lastAssessedDate === 'string' ? old.lastAssessedDate : null,
  };
  const removeOld = {
    Delete: {
      TableName: table,
      Key: { pk: old.pk, sk: old.sk },
      ConditionExpression: 'updatedAt = :updatedAt',
      ExpressionAttributeValues: { ':updatedAt': old.updatedAt },
    },
  };
  const superseded = account?.[habitAttribute] !== undefined;
  const names: Record<string, string> = { '#habit': habitAttribute };
  const values: Record<string, unknown> = {};
  let update: string;
  if (superseded) {
    // The habit was created again since the deploy (a PUT saw none): it keeps what it has,
    // and the counts the old item and the new one both added are taken back once.
    update = 'ADD habits :minusOne, freeHabits :minusFree';
    values[':minusOne'] = -1;
    values[':minusFree'] = old.free === true && old.active === true ? -1 : 0;
  } else {
    const sets = ['userId = :userId', '#habit = :settings', '#streak = :streak'];
    names['#streak'] = `${STREAK_ATTRIBUTE_PREFIX}${habitId}`;
    values[':userId'] = userId;
    values[':settings'] = {
      habitId,
      name: String(old.name),
      penaltyAmount: Number(old.penaltyAmount ?? 0),
      currency: String(old.currency),
      free: old.free === true,
      recipientId: typeof old.recipientId === 'string' ? old.recipientId : null,
      active: old.active === true,
      earlierSettings,
      createdAt: String(old.createdAt),
      updatedAt: String(old.updatedAt),
    };
    values[':streak'] = {
      current: Number(old.currentStreak ?? 0),
      longest: Number(old.longestStreak ?? 0),
      ...(settings.lastAssessedDate ? { last: settings.lastAssessedDate } : {}),
    };
    if (isAssessed(settings)) {
      sets.push('#assessShard = :shard', '#assessKey = :userId');
      names['#assessShard'] = ACCOUNT_ASSESSMENT_INDEX.partitionKey.name;
      names['#assessKey'] = ACCOUNT_ASSESSMENT_INDEX.sortKey.name;
      values[':shard'] = assessmentShardOf(userId);
    }
    const adds = ['habitsVersion :one'];
    values[':one'] = 1;
    const verified = old.verifiedDates instanceof Set ? [...old.verifiedDates].map(String) : [];
    if (verified.length > 0) {
      adds.push('#verified :entries', 'verifications :count');
      names['#verified'] = 'verified';
      values[':entries'] = new Set(verified.map((date) => verifiedEntryOf(habitId, date)));
      values[':count'] = verified.length;
    }
    update = `SET ${sets.join(', ')} ADD ${adds.join(', ')}`;
  }
  try {
    await documents.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: table,
              Key: accountKey,
              UpdateExpression: update,
              // Still as read: a PUT between the read and this write is caught.
              ConditionExpression: superseded
                ? 'attribute_exists(#habit)'
                : 'attribute_not_exists(#habit)',
              ExpressionAttributeNames: names,
              ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
            },
          },
          removeOld,
        ],
      }),
    );
  } catch (error) {
    if (error instanceof TransactionCanceledException) return 'raced';
    throw error;
  }
  if (!superseded && settings.lastAssessedDate) {
    await raiseAssessedThrough(documents, table, accountKey, settings.lastAssessedDate);
  }
  return superseded ? 'superseded' : 'moved';
}

/** The account's date assessed through, raised to `date` if lower; never lowered. */
async function raiseAssessedThrough(
  documents: DynamoDBDocumentClient,
  table: string,
  key: { pk: string; sk: string },
  date: string,
): Promise<void> {
  try {
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: key,
        UpdateExpression: 'SET assessedThrough = :date',
        ConditionExpression: 'attribute_not_exists(assessedThrough) OR assessedThrough < :date',
        ExpressionAttributeValues: { ':date': date },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const command = tableScanCommand(
    'npm run penalties:migrate-habits',
    LOCAL_PENALTIES_TABLE,
    'penalties',
  );
  if (!command) return;
  const { client, tableName, target, dryRun, pageSize, concurrency } = command;
  console.log(`Moving habits onto their accounts in ${target}${dryRun ? ' (dry run)' : ''}`);
  const started = Date.now();
  const result = await migrateHabits({
    client,
    tableName,
    dryRun,
    pageSize,
    concurrency,
    log: (line) => console.log(line),
  });
  console.log(
    `Done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${result.found} old habit items, ` +
      (dryRun
        ? 'none written (dry run).'
        : `${result.moved} moved, ${result.superseded} already on the account (old item deleted), ${result.raced} changed meanwhile (run again).`),
  );
  if (result.raced > 0) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
