/**
 * `npm run credits:backfill -- [--table <name>] [--dry-run] [--page-size 500] [--concurrency 8]`
 *
 * One-off operator command: gives every profile written before refresh slots existed
 * its slot, so it enters the credits' slot index (credit-table-schema.ts) and is
 * refreshed from then on. The subscription store stamps the slot on every profile it
 * writes since; this catches up the older ones at once instead of at their next
 * subscription change.
 *
 * A paged Scan of the billing table (`FilterExpression attribute_not_exists(refreshSlot)
 * AND sk = PROFILE`; an operator command, never a request path), and for each profile
 * found one conditional UpdateItem: `refreshSlot = :slot` only if the profile still
 * exists and still has no slot, and `creditPeriod` / `credits` only if absent, so a
 * concurrent write (a subscription commit, a refresh) is never clobbered. Idempotent:
 * run it again and it finds nothing. `--dry-run` scans and counts, writes nothing.
 *
 * Against the local runtime: set `AWS_ENDPOINT_URL_DYNAMODB` to the DynamoDB endpoint
 * `npm start` prints (the table defaults to the local `billing-suite-billing`, local
 * credentials are used when none are set). Against AWS: your usual credentials and
 * region, and `--table` with the deployed billing table's name.
 */
import { pathToFileURL } from 'node:url';
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  ScanCommand,
  type ScanCommandOutput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { billingKeys } from '../functions/adapters/dynamodb/billing-table-keys.ts';
import {
  CREDIT_ATTRIBUTE,
  initialCreditFields,
} from '../functions/adapters/dynamodb/credit-table-schema.ts';
import { LOCAL_NAME_PREFIX } from '../lib/metadata.ts';
import { tableScanCommand } from './operator-clients.ts';

export interface BackfillOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Scan and count only. */
  dryRun?: boolean;
  /** Items each Scan call evaluates (its Limit). Default 500. */
  pageSize?: number;
  /** UpdateItem calls in flight at once. Default 8. */
  concurrency?: number;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

export interface BackfillResult {
  /** Items the Scan evaluated (the whole table). */
  scanned: number;
  /** Profiles without a slot that the Scan returned. */
  found: number;
  /** Profiles given their slot (0 on a dry run). */
  updated: number;
  /** Profiles that got a slot from another writer (or went away) between scan and update. */
  raced: number;
}

const PROFILE_SK = billingKeys.profile('x').sk;
const PROFILE_PK_PREFIX = 'USER#';

export async function backfillCreditSlots(options: BackfillOptions): Promise<BackfillResult> {
  const documents = DynamoDBDocumentClient.from(options.client);
  const pageSize = options.pageSize ?? 500;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const log = options.log ?? (() => {});
  const result: BackfillResult = { scanned: 0, found: 0, updated: 0, raced: 0 };
  const a = CREDIT_ATTRIBUTE;
  let startKey: ScanCommandOutput['LastEvaluatedKey'];
  let page = 0;
  do {
    const response = await documents.send(
      new ScanCommand({
        TableName: options.tableName,
        FilterExpression: 'attribute_not_exists(#slot) AND sk = :profile',
        ProjectionExpression: 'pk',
        ExpressionAttributeNames: { '#slot': a.refreshSlot },
        ExpressionAttributeValues: { ':profile': PROFILE_SK },
        Limit: pageSize,
        ExclusiveStartKey: startKey,
      }),
    );
    page++;
    result.scanned += response.ScannedCount ?? 0;
    const userIds = (response.Items ?? [])
      .map((item) => String(item.pk))
      .filter((pk) => pk.startsWith(PROFILE_PK_PREFIX))
      .map((pk) => pk.slice(PROFILE_PK_PREFIX.length));
    result.found += userIds.length;
    if (!options.dryRun) {
      let next = 0;
      const worker = async () => {
        while (next < userIds.length) {
          const userId = userIds[next++]!;
          const initial = initialCreditFields(userId);
          try {
            await documents.send(
              new UpdateCommand({
                TableName: options.tableName,
                Key: billingKeys.profile(userId),
                UpdateExpression:
                  'SET #slot = :slot, #period = if_not_exists(#period, :never), #balance = if_not_exists(#balance, :zero)',
                // Still there and still without a slot: never overwrite another writer's.
                ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#slot)',
                ExpressionAttributeNames: {
                  '#slot': a.refreshSlot,
                  '#period': a.period,
                  '#balance': a.balance,
                },
                ExpressionAttributeValues: {
                  ':slot': initial.refreshSlot,
                  ':never': initial.period,
                  ':zero': initial.balance,
                },
              }),
            );
            result.updated++;
          } catch (error) {
            if (!(error instanceof ConditionalCheckFailedException)) throw error;
            result.raced++;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, userIds.length) }, worker));
    }
    startKey = response.LastEvaluatedKey;
    log(
      `page ${page}: scanned ${result.scanned} items, ${result.found} profiles without a slot, ` +
        (options.dryRun
          ? 'dry run: nothing written'
          : `${result.updated} given their slot, ${result.raced} changed meanwhile`),
    );
  } while (startKey);
  return result;
}

/** The local runtime's billing table name. */
export const LOCAL_BILLING_TABLE = `${LOCAL_NAME_PREFIX}-billing`;

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const command = tableScanCommand('npm run credits:backfill', LOCAL_BILLING_TABLE, 'billing');
  if (!command) return;
  const { client, tableName, target, dryRun, pageSize, concurrency } = command;
  console.log(`Backfilling credit refresh slots in ${target}${dryRun ? ' (dry run)' : ''}`);
  const started = Date.now();
  const result = await backfillCreditSlots({
    client,
    tableName,
    dryRun,
    pageSize,
    concurrency,
    log: (line) => console.log(line),
  });
  console.log(
    `Done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${result.found} profiles without a slot, ` +
      (dryRun
        ? 'none written (dry run).'
        : `${result.updated} given their slot, ${result.raced} changed meanwhile (left as they were).`),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
