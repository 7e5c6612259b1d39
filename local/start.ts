/**
 * `npm start`: runs the whole suite locally (see runtime.ts) until Ctrl-C.
 *
 * Settings come from the environment: PORT (3000), LOCAL_DATA_DIR (.local/data),
 * LOCAL_IN_MEMORY=1, STRIPE_WEBHOOK_SECRET, DYNAMODB_PORT, SQS_PORT,
 * LOCAL_CLOCK_SPEED, LOCAL_LOG_LEVEL, and POWERTOOLS_LOG_LEVEL for the handlers.
 */
// First: sets the environment the handlers' logger and metrics are built with.
import './start-environment.ts';
import { PrerequisiteError } from './emulators.ts';
import { describeLocalRuntime, removeRuntimeFile, writeRuntimeFile } from './operations/target.ts';
import {
  DEFAULT_LOCAL_WEBHOOK_SECRET,
  type LocalRuntime,
  resolveRuntimeOptions,
  startLocalRuntime,
} from './runtime.ts';

/** Everything after the first signal gets this long before the process gives up. */
const FORCED_EXIT_MS = 20_000;

function banner(runtime: LocalRuntime): string {
  const secret =
    runtime.webhookSecret === DEFAULT_LOCAL_WEBHOOK_SECRET
      ? `${runtime.webhookSecret} (the documented local default; set STRIPE_WEBHOOK_SECRET to change it)`
      : `${runtime.webhookSecret} (from STRIPE_WEBHOOK_SECRET)`;
  const storage = runtime.dataDir
    ? `${runtime.dataDir} (kept across restarts; LOCAL_IN_MEMORY=1 for a throwaway run)`
    : 'in memory (nothing is kept after stop)';
  const width = Math.max(...runtime.routes.map((r) => r.method.length));
  const routes = runtime.routes.map((r) => {
    const auth =
      r.authorization === 'NONE' ? '' : `   (${r.authorization} on AWS; no auth locally)`;
    return `    ${r.method.padEnd(width)} ${runtime.apiUrl}${r.path}${auth}`;
  });
  const consumers = runtime.consumers.map((c) => {
    const mapping = runtime.model.queueConsumers.find((q) => q.queueLogicalId === c.queueLogicalId);
    const name = runtime.queueNames[c.queueLogicalId];
    return `    ${name} -> ${c.functionLogicalId} (batch ${mapping?.batchSize}, window ${mapping?.maximumBatchingWindowSeconds} s, concurrency ${mapping?.maximumConcurrency})`;
  });
  const sendSample =
    runtime.port === 3000
      ? 'npm run send-sample'
      : `npm run send-sample -- --url ${runtime.apiUrl}`;
  return [
    '',
    'Billing suite is running locally.',
    '',
    `  API        ${runtime.apiUrl}`,
    ...routes,
    ...(runtime.opsUrl
      ? [`  Ops page   ${runtime.opsUrl}   (live plots; JSON at ${runtime.opsUrl}/figures)`]
      : []),
    `  Queues`,
    ...consumers,
    `  Webhook    signing secret ${secret}`,
    `  Data       ${storage}`,
    `  DynamoDB   ${runtime.dynamoEndpoint}    SQS ${runtime.sqsEndpoint}`,
    ...(runtime.clockSpeed !== 1 ? [`  Clock      ${runtime.clockSpeed}x`] : []),
    '',
    `  Try it:    ${sendSample}`,
    '  Stop:      Ctrl-C',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const options = resolveRuntimeOptions();
  console.log(
    `Starting the billing suite (DynamoDB Local needs a few seconds the first time)${options.dataDir ? '' : ' in memory'}...`,
  );
  const runtime = await startLocalRuntime();
  // What `npm run ops` needs to find this runtime from another terminal.
  await writeRuntimeFile(describeLocalRuntime(runtime));
  console.log(banner(runtime));

  let signals = 0;
  const shutdown = async (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      console.error(`\n${signal} again: exiting without waiting.`);
      process.exit(130);
    }
    console.log(
      `\n${signal}: stopping (HTTP first, then in-flight batches, then the emulators)...`,
    );
    setTimeout(() => {
      console.error('Shutdown took too long; exiting.');
      process.exit(1);
    }, FORCED_EXIT_MS).unref();
    try {
      await removeRuntimeFile();
      await runtime.stop();
      console.log('Stopped.');
      process.exit(0);
    } catch (error) {
      console.error(`Stopping failed: ${(error as Error).message}`);
      process.exit(1);
    }
  };
  process.on('SIGINT', (signal) => void shutdown(signal));
  process.on('SIGTERM', (signal) => void shutdown(signal));
}

main().catch((error: unknown) => {
  if (error instanceof PrerequisiteError) {
    console.error(error.message);
  } else {
    console.error('The local runtime failed to start:', error);
  }
  process.exit(1);
});
