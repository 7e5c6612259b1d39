/**
 * `npm run penalties:assess -- --date YYYY-MM-DD [--table <penalties table>]`
 *
 * Operator command: assesses one past UTC date now, with the same use case as the
 * schedule and `POST /admin/penalties/assess`, but without the HTTP route's 25 s
 * budget: it runs until the date is complete. Resumable and idempotent like them: it
 * continues where any earlier run stopped and re-running a complete date creates nothing.
 *
 * Against the local runtime: set `AWS_ENDPOINT_URL_DYNAMODB` to the DynamoDB endpoint
 * `npm start` prints (the table defaults to the local `billing-suite-penalties`).
 * Against AWS: your usual credentials and region, and `--table` with the deployed
 * `PenaltiesTableName` output.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DynamoDbPenaltyStore } from '../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import { isCalendarDate } from '../functions/commons/request-params.ts';
import { ASSESSMENT_CONCURRENCY, assessInOrder } from '../functions/core/penalties/assessment.ts';
import { LOCAL_NAME_PREFIX } from '../lib/metadata.ts';
import { operatorTable, positiveInteger } from './operator-clients.ts';

export const LOCAL_PENALTIES_TABLE = `${LOCAL_NAME_PREFIX}-penalties`;

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    options: {
      date: { type: 'string' },
      table: { type: 'string' },
      concurrency: { type: 'string', default: String(ASSESSMENT_CONCURRENCY) },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help || !values.date) {
    console.log(
      `Usage: npm run penalties:assess -- --date YYYY-MM-DD [--table <penalties table>] [--concurrency ${ASSESSMENT_CONCURRENCY}]\n` +
        'Local: set AWS_ENDPOINT_URL_DYNAMODB (table default billing-suite-penalties). AWS: --table is required.',
    );
    if (!values.help) process.exitCode = 1;
    return;
  }
  const date = values.date;
  const today = new Date().toISOString().slice(0, 10);
  if (!isCalendarDate(date) || date >= today) {
    throw new Error(`--date must be a past UTC date (YYYY-MM-DD), got ${date}`);
  }
  const { client, tableName, target } = operatorTable(
    values.table,
    LOCAL_PENALTIES_TABLE,
    'penalties',
  );
  const store = new DynamoDbPenaltyStore({ client, penaltiesTableName: tableName });
  console.log(`Assessing ${date} in ${target}`);
  const started = Date.now();
  // In date order, as the schedule: earlier dates left behind first (assessInOrder).
  const { result, caughtUp } = await assessInOrder(date, {
    store,
    clock: { now: () => Date.now() },
    concurrency: positiveInteger(values.concurrency, '--concurrency'),
  });
  for (const earlier of caughtUp) {
    console.log(
      `First ${earlier.date}, left behind: ${earlier.habits} habits, ${earlier.penaltiesCreated} penalties${earlier.complete ? '' : ' (not complete: run again)'}`,
    );
  }
  const { habits, verified, missed, penaltiesCreated } = result;
  console.log(
    `Done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify({ date, habits, verified, missed, penaltiesCreated })} (this run: ${result.thisRun.habits} habits, ${result.thisRun.penaltiesCreated} penalties created)`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
