/**
 * The DynamoDB client of the operator commands (`npm run credits:backfill`,
 * `npm run penalties:assess`, `npm run penalties:migrate-habits`): against the local runtime when AWS_ENDPOINT_URL_DYNAMODB
 * is set (with dummy credentials unless some are given), else AWS with the usual
 * credentials and region.
 */
import { parseArgs } from 'node:util';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { clientConfig } from '../functions/commons/aws-clients.ts';

export function operatorDynamoDbClient(): { client: DynamoDBClient; endpoint: string | undefined } {
  const endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB;
  const config: DynamoDBClientConfig = {
    // The SDK's standard retry with more patience than a handler's: throttling on a
    // busy table waits and goes on instead of failing the run.
    ...clientConfig({ maxAttempts: 10, requestTimeoutMs: 10_000 }),
  };
  if (endpoint && !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
    // DynamoDB Local accepts any credentials, but the SDK still wants some.
    config.credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
    config.region = process.env.AWS_REGION ?? 'us-east-1';
  }
  return { client: new DynamoDBClient(config), endpoint };
}

export function positiveInteger(value: string | undefined, flag: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) {
    throw new Error(`${flag} must be a positive integer, got ${value}`);
  }
  return parsed;
}

/**
 * The client and the table an operator command works on: `--table` when given, else the
 * local runtime's table when AWS_ENDPOINT_URL_DYNAMODB is set; against AWS `--table` is
 * required. `target` says which, for the command's first line.
 */
export function operatorTable(
  table: string | undefined,
  localTable: string,
  noun: string,
): { client: DynamoDBClient; tableName: string; target: string } {
  const { client, endpoint } = operatorDynamoDbClient();
  const tableName = table ?? (endpoint ? localTable : undefined);
  if (!tableName) {
    throw new Error(
      `--table <${noun} table name> is required against AWS (or set AWS_ENDPOINT_URL_DYNAMODB for the local runtime)`,
    );
  }
  return {
    client,
    tableName,
    target: endpoint ? `${tableName} at ${endpoint}` : `${tableName} (AWS)`,
  };
}

/** What a command that pages through one table is run with (`--table`, `--dry-run`, sizes). */
export interface TableScanCommand {
  client: DynamoDBClient;
  tableName: string;
  target: string;
  dryRun: boolean;
  pageSize: number;
  concurrency: number;
}

/**
 * The command line of the commands that page through one table (`credits:backfill`,
 * `penalties:migrate-habits`): `[--table] [--dry-run] [--page-size 500] [--concurrency 8]`.
 * Null when `--help` was asked (the usage line is printed).
 */
export function tableScanCommand(
  usage: string,
  localTable: string,
  noun: string,
): TableScanCommand | null {
  const { values } = parseArgs({
    options: {
      table: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'page-size': { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      `Usage: ${usage} -- [--table <${noun} table>] [--dry-run] [--page-size 500] [--concurrency 8]\n` +
        `Local: set AWS_ENDPOINT_URL_DYNAMODB (table default ${localTable}). AWS: --table is required.`,
    );
    return null;
  }
  return {
    ...operatorTable(values.table, localTable, noun),
    dryRun: values['dry-run'],
    pageSize: positiveInteger(values['page-size'], '--page-size'),
    concurrency: positiveInteger(values.concurrency, '--concurrency'),
  };
}
