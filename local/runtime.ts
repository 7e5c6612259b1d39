/**
 * The local runtime: the whole suite on one machine, against the real emulators.
 *
 * `startLocalRuntime()` checks the prerequisites (Java, ports, a writable data
 * folder), reads the stack model from the synthesized CDK app, starts DynamoDB Local
 * and the SQS emulator, creates the tables and queues the stack defines, points the
 * handlers at the emulators through the standard AWS env vars, imports each
 * function's entry module, serves the HTTP routes and polls the queues with the event
 * source mappings' settings. Used by `npm start`, the end-to-end tests and the
 * benchmark.
 *
 * Everything runs in this one process, so the handlers share one `process.env`: the
 * runtime sets the union of the functions' environments and refuses two functions
 * that need different values for the same variable.
 */
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { interceptLocalhostDns } from 'fauxqs';
import { parseStripeApiUrl } from '../functions/adapters/stripe/stripe-client.ts';
import { ENV } from '../functions/commons/env-names.ts';
import { lazy } from '../functions/commons/lazy.ts';
import {
  assertJavaAvailable,
  assertPortFree,
  assertWritableDir,
  emulatorClients,
  findFreePort,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  PrerequisiteError,
  type RunningEmulator,
  type RunningSqsEmulator,
  startDynamoDbLocal,
  startSqsEmulator,
} from './emulators.ts';
import { type FakeStripe, startFakeStripe } from './fake-stripe.ts';
import { type HttpHandler, type HttpRouteBinding, startHttpServer } from './http-server.ts';
import { scopeToInvocations } from './iam-scope.ts';
import {
  createLocalLog,
  invokeLocally,
  isLocalLogLevel,
  type LambdaHandler,
  type LocalLogLevel,
  localFunction,
} from './lambda-context.ts';
import { type OpsPage, startOpsPage } from './ops/ops-page.ts';
import { ensureQueues, ensureTables } from './provision.ts';
import {
  type QueuePoller,
  type QueuePollerStats,
  type SqsConsumerHandler,
  startQueuePoller,
} from './queue-poller.ts';
import { restoreQueueSnapshots, saveQueueSnapshots } from './queue-snapshot.ts';
import { type RunningScheduler, simulatedClock, startScheduler } from './scheduler.ts';
import {
  type FunctionModel,
  loadStackModel,
  resolveEnvironment,
  type StackModel,
} from './stack-model.ts';

/** The documented signing secret of the local runtime; `npm run send-sample` uses it too. */
export const DEFAULT_LOCAL_WEBHOOK_SECRET = 'whsec_local_development_secret';
export const DEFAULT_PORT = 3000;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_DATA_DIR = join(REPO_ROOT, '.local', 'data');

export interface LocalRuntimeOptions {
  /** HTTP API port; 0 picks a free one. Default env PORT, else 3000. */
  port?: number;
  /** Where DynamoDB Local and the queue snapshots live. Default env LOCAL_DATA_DIR, else `.local/data`. */
  dataDir?: string;
  /** Keep nothing on disk. Default env LOCAL_IN_MEMORY=1. */
  inMemory?: boolean;
  /** Stripe webhook signing secret. Default env STRIPE_WEBHOOK_SECRET, else `DEFAULT_LOCAL_WEBHOOK_SECRET`. */
  webhookSecret?: string;
  /**
   * The Stripe API the functions call. Default env STRIPE_API_URL; when unset, the fake
   * Stripe (local/fake-stripe.ts), started once per process, is used.
   */
  stripeApiUrl?: string;
  /** Stripe secret key for `stripeApiUrl`. Default env STRIPE_SECRET_KEY, else the fake's key. */
  stripeSecretKey?: string;
  /** The key the API seals page cursors with. Default env CURSOR_SIGNING_KEY, else a random key per process. */
  cursorSigningKey?: string;
  /** DynamoDB Local port; 0 picks a free one. Default env DYNAMODB_PORT, else 0. */
  dynamoPort?: number;
  /** SQS emulator port; 0 picks a free one. Default env SQS_PORT, else 0. */
  sqsPort?: number;
  /** Speed of the schedules' clock (288 = a day's five-minute slots in five minutes). Default env LOCAL_CLOCK_SPEED, else 1. */
  clockSpeed?: number;
  /** The runtime's own log. Default env LOCAL_LOG_LEVEL, else 'info'. Handlers log through Powertools (POWERTOOLS_LOG_LEVEL). */
  logLevel?: LocalLogLevel;
  /** Apply the routes' API Gateway throttles. Default true; the benchmark may turn it off. */
  throttle?: boolean;
  /** How long the pollers may take to finish in-flight batches at stop. Default 10 s. */
  drainTimeoutMs?: number;
  /**
   * Serve the operations page (`GET /ops`, `/ops/figures`): collects the handlers'
   * metrics and samples queue depths. Default true.
   */
  opsPage?: boolean;
  /**
   * Fire the stack's schedules (credit planner, penalty assessment, settlement sweep).
   * Default true; a test comparing whole tables before and after a request turns them
   * off, since a schedule run may land between the two reads.
   */
  schedules?: boolean;
  /** CDK context over cdk.json's for the stack model (e.g. `priceTierMap`). */
  context?: Record<string, unknown>;
  /** A ready stack model (tests); default `loadStackModel({ context })`. */
  model?: StackModel;
  /** Where the `env`-based defaults are read from. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

export interface LocalRoute {
  method: string;
  path: string;
  functionLogicalId: string;
  authorization: string;
}

export interface LocalQueueConsumer {
  queueLogicalId: string;
  functionLogicalId: string;
  queueUrl: string;
  stats(): QueuePollerStats;
}

export interface LocalRuntime {
  /** e.g. `http://127.0.0.1:3000` */
  readonly apiUrl: string;
  readonly port: number;
  /** DynamoDB Local, for SDK clients in any process. */
  readonly dynamoEndpoint: string;
  /** The SQS emulator, for SDK clients in any process (`http://127.0.0.1:<port>`). */
  readonly sqsEndpoint: string;
  /** Queue logical id -> queue URL. */
  readonly queueUrls: Readonly<Record<string, string>>;
  /** Queue logical id -> local queue name. */
  readonly queueNames: Readonly<Record<string, string>>;
  /** Table logical id -> local table name. */
  readonly tableNames: Readonly<Record<string, string>>;
  readonly routes: readonly LocalRoute[];
  readonly consumers: readonly LocalQueueConsumer[];
  /** The schedules being fired (on the clock of `clockSpeed`). */
  readonly scheduler: Pick<RunningScheduler, 'fired'>;
  readonly webhookSecret: string;
  /** The Stripe API the functions call (STRIPE_API_URL). */
  readonly stripeApiUrl: string;
  /** The fake Stripe, unless STRIPE_API_URL named another: tests move its PaymentIntents on. */
  readonly fakeStripe: FakeStripe | undefined;
  /** `undefined` in in-memory mode. */
  readonly dataDir: string | undefined;
  readonly clockSpeed: number;
  readonly model: StackModel;
  /** The operations page (`<apiUrl>/ops`; its figures as JSON at `/ops/figures`), unless turned off. */
  readonly opsUrl: string | undefined;
  /**
   * Stops the HTTP server first (requests in progress finish), lets the pollers drain
   * in-flight batches (bounded), saves the queues' messages (persistent mode), then
   * stops the emulators. Safe to call twice.
   */
  stop(): Promise<void>;
}

/** Options after applying env defaults and validation. */
export interface ResolvedRuntimeOptions {
  port: number;
  dataDir: string | undefined;
  webhookSecret: string;
  /** Undefined: start (or reuse) the fake Stripe. */
  stripe: { apiUrl: string; secretKey: string } | undefined;
  cursorSigningKey: string;
  dynamoPort: number;
  sqsPort: number;
  clockSpeed: number;
  logLevel: LocalLogLevel;
  throttle: boolean;
  drainTimeoutMs: number;
}

/** Applies the env defaults; a bad value is a one-line `PrerequisiteError`. */
export function resolveRuntimeOptions(options: LocalRuntimeOptions = {}): ResolvedRuntimeOptions {
  const env = options.env ?? process.env;
  const port = options.port ?? parsePort(env.PORT, 'PORT') ?? DEFAULT_PORT;
  const inMemory =
    options.inMemory ?? ['1', 'true', 'yes'].includes((env.LOCAL_IN_MEMORY ?? '').toLowerCase());
  const dataDir = inMemory
    ? undefined
    : resolve(options.dataDir ?? (env.LOCAL_DATA_DIR || DEFAULT_DATA_DIR));
  const clockSpeed =
    options.clockSpeed ?? parseNumber(env.LOCAL_CLOCK_SPEED, 'LOCAL_CLOCK_SPEED') ?? 1;
  if (!(clockSpeed > 0) || !Number.isFinite(clockSpeed)) {
    throw new PrerequisiteError(`LOCAL_CLOCK_SPEED must be a number above 0, got ${clockSpeed}.`);
  }
  const logLevel = options.logLevel ?? (env.LOCAL_LOG_LEVEL?.toLowerCase() || 'info');
  if (!isLocalLogLevel(logLevel)) {
    throw new PrerequisiteError(
      `LOCAL_LOG_LEVEL must be one of debug, info, warn, error, silent; got ${JSON.stringify(logLevel)}.`,
    );
  }
  const webhookSecret =
    options.webhookSecret ?? (env[ENV.webhookSecret] || DEFAULT_LOCAL_WEBHOOK_SECRET);
  const stripeApiUrl = options.stripeApiUrl ?? (env[ENV.stripeApiUrl] || undefined);
  const stripeSecretKey = options.stripeSecretKey ?? (env[ENV.stripeSecretKey] || undefined);
  if (stripeApiUrl) {
    try {
      parseStripeApiUrl(stripeApiUrl);
    } catch (error) {
      throw new PrerequisiteError(`${ENV.stripeApiUrl} ${(error as Error).message}.`);
    }
    if (!stripeSecretKey) {
      throw new PrerequisiteError(
        `${ENV.stripeApiUrl} is set, so set ${ENV.stripeSecretKey} to that API's secret key too.`,
      );
    }
  }
  const resolved: ResolvedRuntimeOptions = {
    port,
    dataDir,
    webhookSecret,
    stripe: stripeApiUrl ? { apiUrl: stripeApiUrl, secretKey: stripeSecretKey! } : undefined,
    cursorSigningKey:
      options.cursorSigningKey ?? (env[ENV.cursorSigningKey] || processCursorSigningKey()),
    dynamoPort: options.dynamoPort ?? parsePort(env.DYNAMODB_PORT, 'DYNAMODB_PORT') ?? 0,
    sqsPort: options.sqsPort ?? parsePort(env.SQS_PORT, 'SQS_PORT') ?? 0,
    clockSpeed,
    logLevel,
    throttle: options.throttle ?? true,
    drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
  };
  const named = [
    ['PORT', resolved.port],
    ['DYNAMODB_PORT', resolved.dynamoPort],
    ['SQS_PORT', resolved.sqsPort],
  ] as const;
  for (const [name, value] of named) {
    if (!Number.isInteger(value) || value < 0 || value > 65_535) {
      throw new PrerequisiteError(`${name} must be a port number (0-65535), got ${value}.`);
    }
    const clash = named.find(([other, v]) => other !== name && v === value && value !== 0);
    if (clash) {
      throw new PrerequisiteError(
        `${name} and ${clash[0]} are both ${value}; give each its own port.`,
      );
    }
  }
  return resolved;
}

function parsePort(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new PrerequisiteError(
      `${name} must be a port number (0-65535), got ${JSON.stringify(value)}.`,
    );
  }
  return port;
}

function parseNumber(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const number = Number(value);
  if (!Number.isFinite(number)) {
    throw new PrerequisiteError(`${name} must be a number, got ${JSON.stringify(value)}.`);
  }
  return number;
}

/** Two functions need different values for one variable, which one process cannot give. */
export class LocalEnvironmentConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LocalEnvironmentConflictError';
  }
}

/**
 * Variables that name the function rather than configure it. Locally all functions
 * share one process (and one Powertools logger), so when they disagree the suite's
 * name is used; each log line still names its function (`function_name`).
 */
const PER_FUNCTION_IDENTITY = new Set(['POWERTOOLS_SERVICE_NAME']);
/**
 * Settings with no meaning here: the Lambda runtime's (an already running Node process),
 * and the operator roles (the local API checks no IAM, so there is no session to check).
 */
const NOT_FOR_LOCAL = new Set<string>(['NODE_OPTIONS', ENV.operatorRoleArns]);
/** Set by the developer (or the test runner) to see more or less: their value wins over the stack's. */
const DEVELOPER_OVERRIDES = [
  'POWERTOOLS_LOG_LEVEL',
  'POWERTOOLS_DEV',
  'POWERTOOLS_METRICS_DISABLED',
  'POWERTOOLS_TRACE_ENABLED',
] as const;
const SUITE_SERVICE_NAME = 'billing-suite';

/**
 * The variables the runtime sets for the hosted functions: endpoints, region and dummy
 * credentials for the SDK, the union of the functions' resolved environments, and the
 * webhook secret. Pure; `current` is the environment it will be applied over.
 */
export function buildLocalEnvironment(
  model: Pick<StackModel, 'functions'>,
  resolved: { tableNames: Record<string, string>; queueUrls: Record<string, string> },
  settings: {
    webhookSecret: string;
    stripe: { apiUrl: string; secretKey: string };
    cursorSigningKey: string;
    dynamoEndpoint: string;
    sqsEndpoint: string;
    current?: Record<string, string | undefined>;
  },
): Record<string, string> {
  const current = settings.current ?? {};
  const union: Record<string, { value: string; from: string }> = {};
  const identities: Record<string, Set<string>> = {};
  for (const fn of model.functions) {
    const fnEnv = resolveEnvironment(fn, {
      ...resolved,
      secretValues: {
        [ENV.webhookSecret]: settings.webhookSecret,
        [ENV.stripeSecretKey]: settings.stripe.secretKey,
        [ENV.cursorSigningKey]: settings.cursorSigningKey,
      },
    });
    for (const [name, value] of Object.entries(fnEnv)) {
      if (NOT_FOR_LOCAL.has(name)) continue;
      if (PER_FUNCTION_IDENTITY.has(name)) {
        identities[name] ??= new Set();
        identities[name].add(value);
        continue;
      }
      const seen = union[name];
      if (seen && seen.value !== value) {
        throw new LocalEnvironmentConflictError(
          `${seen.from} and ${fn.logicalId} set ${name} to different values; the local runtime hosts both in one process and cannot give each its own.`,
        );
      }
      union[name] = { value, from: fn.logicalId };
    }
  }
  const env: Record<string, string> = {};
  for (const [name, { value }] of Object.entries(union)) env[name] = value;
  for (const [name, values] of Object.entries(identities)) {
    env[name] = values.size === 1 ? [...values][0]! : SUITE_SERVICE_NAME;
  }
  for (const name of DEVELOPER_OVERRIDES) {
    const mine = current[name];
    if (mine !== undefined && mine !== '') env[name] = mine;
  }
  Object.assign(env, {
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: settings.dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: settings.sqsEndpoint,
    [ENV.webhookSecret]: settings.webhookSecret,
    // Stripe is never the real one locally unless the developer said so.
    [ENV.stripeApiUrl]: settings.stripe.apiUrl,
    [ENV.stripeSecretKey]: settings.stripe.secretKey,
    [ENV.cursorSigningKey]: settings.cursorSigningKey,
  });
  return env;
}

/** Variables that would send the SDK to a real account or profile instead of the emulators. */
const REAL_AWS_VARIABLES = ['AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL'];

/**
 * What an earlier runtime in this process set. Handler modules are imported once per
 * process and keep their clients and parsed env, so a second runtime in the same
 * process must give them the same values (same emulator ports).
 */
let appliedInThisProcess: Record<string, string> | undefined;

function applyEnvironment(env: Record<string, string>): void {
  if (appliedInThisProcess) {
    const changed = Object.keys(env).filter(
      (name) => name in appliedInThisProcess! && appliedInThisProcess![name] !== env[name],
    );
    if (changed.length > 0) {
      throw new PrerequisiteError(
        `A local runtime already ran in this process with other values for ${changed.join(', ')}; handlers keep their clients and config, so restart in one process with the same dynamoPort and sqsPort.`,
      );
    }
  }
  for (const name of REAL_AWS_VARIABLES) delete process.env[name];
  Object.assign(process.env, env);
  appliedInThisProcess = { ...env };
}

/**
 * One fake Stripe per process: handler modules keep their Stripe client (and its URL)
 * once built, so later runtimes in the same process must point at the same server. Its
 * socket does not keep the process alive; it ends with the process.
 */
let fakeStripeOfProcess: Promise<FakeStripe> | undefined;

/**
 * One cursor key per process, for the same reason (handlers keep the key they read):
 * nobody needs to know it, and cursors of an earlier run are refused after a restart.
 */
const processCursorSigningKey = lazy(() => randomBytes(32).toString('base64url'));
function processFakeStripe(): Promise<FakeStripe> {
  fakeStripeOfProcess ??= startFakeStripe({ unref: true });
  return fakeStripeOfProcess;
}

async function importHandler<T>(fn: FunctionModel): Promise<T> {
  const url = pathToFileURL(join(REPO_ROOT, fn.entry)).href;
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${fn.logicalId}: cannot load ${fn.entry}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const handler = module[fn.exportName];
  if (typeof handler !== 'function') {
    throw new Error(
      `${fn.logicalId}: ${fn.entry} does not export a function named ${fn.exportName}`,
    );
  }
  return handler as T;
}

/** Starts the suite; see the module comment. Throws `PrerequisiteError` for what the user can fix. */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const settings = resolveRuntimeOptions(options);
  const log = createLocalLog(settings.logLevel);
  const cleanup: Array<() => Promise<void>> = [];
  const runCleanup = async () => {
    for (const step of cleanup.splice(0).reverse()) {
      await step().catch((error: unknown) => log.error('Cleanup step failed', error));
    }
  };

  const startedAt = Date.now();
  let phaseAt = startedAt;
  const phase = (name: string) => {
    const now = Date.now();
    log.debug(`${name}: ${now - phaseAt} ms`);
    phaseAt = now;
  };

  try {
    // 1. Prerequisites, before anything starts, so a problem is one line and nothing to undo.
    await assertJavaAvailable();
    await assertPortFree(settings.port, 'HTTP API', 'PORT');
    await assertPortFree(settings.dynamoPort, 'DynamoDB Local', 'DYNAMODB_PORT');
    await assertPortFree(settings.sqsPort, 'SQS emulator', 'SQS_PORT');
    if (settings.dataDir) await assertWritableDir(settings.dataDir, 'LOCAL_DATA_DIR');

    const model =
      options.model ?? loadStackModel(options.context ? { context: options.context } : {});

    phase('Prerequisites and stack model');

    // 2. Emulators. The JVM takes seconds to boot: meanwhile the queues are created and
    // the handler modules imported (they read their env lazily and touch no network).
    const dynamoPort = settings.dynamoPort || (await findFreePort());
    const dynamoStarting = startDynamoDbLocal({
      port: dynamoPort,
      ...(settings.dataDir ? { dataDir: join(settings.dataDir, 'dynamodb') } : {}),
    }).then(
      (running) => ({ running }),
      (error: unknown) => ({ error }),
    );
    cleanup.push(async () => {
      const started = await dynamoStarting;
      if ('running' in started) await started.running.stop();
    });
    const sqsEmulator: RunningSqsEmulator = await startSqsEmulator({ port: settings.sqsPort });
    cleanup.push(() => sqsEmulator.stop());

    // fauxqs names its queues http://sqs.<region>.localhost:<port>/...; the SDK sends a
    // queue's requests to that host unless the endpoint has the same origin, and
    // `*.localhost` does not resolve everywhere. So the handlers' endpoint uses the
    // same host, and this process resolves `*.localhost` to the loopback address.
    const restoreDns = interceptLocalhostDns();
    cleanup.push(async () => restoreDns());
    const handlerSqsEndpoint = `http://sqs.${LOCAL_REGION}.localhost:${sqsEmulator.port}`;
    const dynamoEndpoint = `http://127.0.0.1:${dynamoPort}`;

    const { dynamo: dynamoClient, sqs: sqsClient } = emulatorClients({
      dynamo: dynamoEndpoint,
      sqs: sqsEmulator.endpoint,
    });
    cleanup.push(async () => {
      dynamoClient.destroy();
      sqsClient.destroy();
    });

    // 3. Queues, and the messages saved at the last stop.
    const { queueUrls, queueArns } = await ensureQueues(sqsClient, model.queues);
    const queueNames: Record<string, string> = {};
    const urlsByName: Record<string, string> = {};
    for (const queue of model.queues) {
      queueNames[queue.logicalId] = queue.localName;
      urlsByName[queue.localName] = queueUrls[queue.logicalId]!;
    }
    if (settings.dataDir) {
      const dataDir = settings.dataDir;
      // If a later step fails, put the restored messages back on disk before fauxqs stops.
      cleanup.push(async () => {
        await saveQueueSnapshots(sqsEmulator, Object.keys(urlsByName), dataDir);
      });
      const restored = await restoreQueueSnapshots(sqsClient, urlsByName, dataDir);
      for (const [name, count] of Object.entries(restored)) {
        log.info(`Restored ${count} message(s) to ${name} from the last run`);
      }
    }
    const tableNames = Object.fromEntries(model.tables.map((t) => [t.logicalId, t.localName]));
    phase('SQS emulator and queues');

    // 4. The handlers' environment, then the handlers.
    const fakeStripe = settings.stripe ? undefined : await processFakeStripe();
    const stripe = settings.stripe ?? { apiUrl: fakeStripe!.url, secretKey: fakeStripe!.secretKey };
    if (fakeStripe) log.info(`Stripe API: the fake Stripe at ${fakeStripe.url}`);
    applyEnvironment(
      buildLocalEnvironment(
        model,
        { tableNames, queueUrls },
        {
          webhookSecret: settings.webhookSecret,
          stripe,
          cursorSigningKey: settings.cursorSigningKey,
          dynamoEndpoint,
          sqsEndpoint: handlerSqsEndpoint,
          current: process.env,
        },
      ),
    );
    // Each handler's DynamoDB requests held to its role's grants, as on AWS (iam-scope.ts).
    // Imported now, like the handlers: the shared Logger reads its env when first imported.
    const { defaultDynamoDbClient } = await import('../functions/commons/aws-clients.ts');
    scopeToInvocations(defaultDynamoDbClient());
    const functions = new Map(model.functions.map((fn) => [fn.logicalId, fn]));
    const handlers = new Map<string, LambdaHandler<never, unknown>>();
    for (const fn of model.functions) {
      handlers.set(fn.logicalId, await importHandler(fn));
    }
    phase('Handler modules');

    // 5. DynamoDB Local and the tables.
    const dynamoStarted = await dynamoStarting;
    if ('error' in dynamoStarted) throw dynamoStarted.error;
    const dynamo: RunningEmulator = dynamoStarted.running;
    const createdTables = await ensureTables(dynamoClient, model.tables);
    if (createdTables.length > 0) log.debug(`Created tables: ${createdTables.join(', ')}`);
    phase('DynamoDB Local and tables');

    const functionFor = (logicalId: string, what: string) => {
      const fn = functions.get(logicalId);
      const handler = handlers.get(logicalId);
      if (!fn || !handler)
        throw new Error(`${what}: function ${logicalId} is not in the stack model`);
      return { fn, handler };
    };

    // 6. The operations page (after the handler imports: it taps their shared metrics), then the HTTP API.
    const clock = simulatedClock(settings.clockSpeed);
    let ops: OpsPage | undefined;
    if (options.opsPage ?? true) {
      ops = await startOpsPage({
        model,
        queueUrls,
        sqs: sqsClient,
        dayClock: () => clock.now(),
        ...(settings.dataDir ? { daysFile: join(settings.dataDir, 'ops-days.json') } : {}),
        log,
      });
      const opsPage = ops;
      cleanup.push(() => opsPage.stop());
    }
    const unauthenticated = model.routes.filter((r) => r.authorization !== 'NONE');
    if (unauthenticated.length > 0) {
      log.info(
        `Served without auth locally (${unauthenticated.map((r) => `${r.authorization}: ${r.method} ${r.path}`).join('; ')})`,
      );
    }
    const bindings: HttpRouteBinding[] = model.routes.map((route) => {
      const { fn, handler } = functionFor(route.functionLogicalId, `${route.method} ${route.path}`);
      return {
        method: route.method,
        path: route.path,
        authorization: route.authorization,
        ...(route.throttle && settings.throttle ? { throttle: route.throttle } : {}),
        fn: localFunction(fn, tableNames),
        handler: handler as HttpHandler,
      };
    });
    const http = await startHttpServer({
      routes: bindings,
      port: settings.port,
      log,
      ...(ops ? { localPages: ops.handler } : {}),
    });
    cleanup.push(() => http.close());

    // 7. Queue pollers.
    const pollers: Array<{ poller: QueuePoller; consumer: LocalQueueConsumer }> = [];
    for (const mapping of model.queueConsumers) {
      const { fn, handler } = functionFor(
        mapping.functionLogicalId,
        `consumer of ${mapping.queueLogicalId}`,
      );
      const queueUrl = queueUrls[mapping.queueLogicalId];
      if (!queueUrl) throw new Error(`Queue ${mapping.queueLogicalId} was not created`);
      const poller = await startQueuePoller({
        sqs: sqsClient,
        queueUrl,
        queueArn: queueArns[mapping.queueLogicalId] ?? '',
        mapping,
        fn: localFunction(fn, tableNames),
        handler: handler as SqsConsumerHandler,
        log,
        onBatch: (outcome) => {
          const detail = outcome.batchError
            ? 'failed, all retried'
            : `${outcome.deleted} done${outcome.retried ? `, ${outcome.retried} to retry` : ''}`;
          log.info(
            `${outcome.functionName}: batch of ${outcome.records}: ${detail} in ${outcome.durationMs} ms`,
          );
        },
      });
      cleanup.push(async () => {
        await poller.stop({ drainTimeoutMs: settings.drainTimeoutMs });
      });
      pollers.push({
        poller,
        consumer: {
          queueLogicalId: mapping.queueLogicalId,
          functionLogicalId: mapping.functionLogicalId,
          queueUrl,
          stats: () => poller.stats(),
        },
      });
    }

    // 8. Schedules, on a clock that may run faster than the wall clock (made in step 6).
    const scheduler = startScheduler(
      (options.schedules === false ? [] : model.schedules).map((schedule) => {
        const { fn, handler } = functionFor(schedule.functionLogicalId, schedule.logicalId);
        const local = localFunction(fn, tableNames);
        return {
          name: schedule.logicalId,
          expression: schedule.expression,
          input: schedule.input,
          fire: async (event: unknown) => {
            const started = Date.now();
            await invokeLocally(local, handler as LambdaHandler<unknown, unknown>, event);
            const at = (event as { scheduledTime?: string }).scheduledTime ?? '';
            log.info(`${local.functionName}: schedule for ${at} ran in ${Date.now() - started} ms`);
          },
        };
      }),
      clock,
      log,
    );
    cleanup.push(() => scheduler.stop());

    phase('HTTP API, pollers and schedules');
    log.debug(`Started in ${Date.now() - startedAt} ms`);

    let stopping: Promise<void> | undefined;
    const stop = async () => {
      // Order matters: no new requests, then let the pollers finish what they hold, then
      // save what is still queued while the emulator is up, then stop the emulators.
      await http
        .close()
        .catch((error: unknown) => log.error('Stopping the HTTP server failed', error));
      await scheduler.stop();
      const drained = await Promise.all(
        pollers.map(({ poller }) => poller.stop({ drainTimeoutMs: settings.drainTimeoutMs })),
      );
      await ops?.stop();
      if (drained.includes(false)) {
        log.warn(
          `Some batches were still running after ${settings.drainTimeoutMs} ms; their messages stay queued and will be redelivered`,
        );
      }
      if (settings.dataDir) {
        try {
          const saved = await saveQueueSnapshots(
            sqsEmulator,
            Object.values(queueNames),
            settings.dataDir,
          );
          for (const [name, count] of Object.entries(saved)) {
            if (count > 0) log.info(`Saved ${count} message(s) of ${name} for the next start`);
          }
        } catch (error) {
          log.error('Saving the queues failed; their messages are lost', error);
        }
      }
      dynamoClient.destroy();
      sqsClient.destroy();
      await Promise.all([
        dynamo.stop().catch((error: unknown) => log.error('Stopping DynamoDB Local failed', error)),
        sqsEmulator.stop().catch((error: unknown) => log.error('Stopping fauxqs failed', error)),
      ]);
      restoreDns();
    };

    return {
      apiUrl: http.url,
      port: http.port,
      dynamoEndpoint: dynamo.endpoint,
      sqsEndpoint: sqsEmulator.endpoint,
      queueUrls,
      queueNames,
      tableNames,
      routes: model.routes.map((r) => ({
        method: r.method,
        path: r.path,
        functionLogicalId: r.functionLogicalId,
        authorization: r.authorization,
      })),
      consumers: pollers.map((p) => p.consumer),
      scheduler,
      webhookSecret: settings.webhookSecret,
      stripeApiUrl: stripe.apiUrl,
      fakeStripe,
      dataDir: settings.dataDir,
      clockSpeed: settings.clockSpeed,
      model,
      opsUrl: ops ? `${http.url}/ops` : undefined,
      stop: () => {
        stopping ??= stop();
        return stopping;
      },
    };
  } catch (error) {
    await runCleanup();
    throw error;
  }
}
