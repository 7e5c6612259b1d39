/**
 * Where the operator commands act: the local runtime (`npm start` writes what they need
 * to `.local/runtime.json`) or a deployed stack (ordinary AWS credentials, and the JSON
 * `cdk deploy --outputs-file` writes). Either way the commands see the same shape: the
 * tables, the queues with their DLQs, the schedules' DLQs with the work each schedule
 * runs (what their redrive reruns), the family queues the webhook feeds, the
 * configuration the subscription consumer writes with (price→tier map, credit
 * allowances, ledger retention), a way to call Stripe, and where the handlers' metrics
 * are (CloudWatch deployed; the running local runtime's operations page locally).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerSecretString } from '../../functions/adapters/secrets/secret-string.ts';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../../functions/adapters/stripe/stripe-client.ts';
import { clientConfig } from '../../functions/commons/aws-clients.ts';
import { ENV, EVENT_QUEUE_URL_ENV } from '../../functions/commons/env-names.ts';
import { stripeApiKeyFromConfig } from '../../functions/commons/stripe-wiring.ts';
import {
  type CreditAllowances,
  parseCreditAllowances,
} from '../../functions/core/credits/allowances.ts';
import { PaymentGatewayUnavailableError } from '../../functions/core/penalties/ports.ts';
import { parseLedgerRetentionDays } from '../../functions/core/shared/config-values.ts';
import {
  EVENT_FAMILIES,
  type EventFamilyName,
} from '../../functions/core/shared/event-families.ts';
import { type PriceTierMap, parsePriceTierMap } from '../../functions/core/shared/tiers.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../emulators.ts';
import type { LocalRuntime } from '../runtime.ts';
import type { StackModel } from '../stack-model.ts';

export interface NamedQueue {
  name: string;
  url: string;
}

/** A queue a consumer reads, with the DLQ its failed messages end in. */
export interface ConsumedQueue extends NamedQueue {
  deadLetter: NamedQueue;
}

/**
 * What a schedule runs, so a redrive of its DLQ can run that work once, now: the credit
 * refresh planner (with the queue it sends refresh work to), or the penalty assessment.
 * Both read their tables from the target's `tables`.
 */
export type ScheduledWork =
  | { kind: 'credit-refresh'; refreshQueueUrl: string }
  | { kind: 'penalty-assessment' };

/** The DLQ of a schedule: the invocations EventBridge Scheduler gave up on. */
export interface ScheduleDeadLetterQueue extends NamedQueue {
  /**
   * The schedule's work, which `dlq:redrive` reruns before deleting the DLQ's messages.
   * Absent when the target does not say (a runtime file written before this field, a
   * schedule ops does not know): the DLQ is listed, not redriven.
   */
  reruns?: ScheduledWork;
}

/** Everything a command needs to know of its target; plain data, so it can be written to a file. */
export interface TargetDescription {
  where: string;
  endpoints?: { dynamo: string; sqs: string };
  tables: { billing: string; ledger: string; payments: string; penalties: string };
  eventQueues: Record<EventFamilyName, string>;
  consumedQueues: ConsumedQueue[];
  /** DLQs of schedules (failed invocations): redriven by rerunning the schedule's work. */
  scheduleDeadLetters: ScheduleDeadLetterQueue[];
  /**
   * The price→tier map the functions resolve tiers with. Absent when the target does not
   * say: a stack deployed before its `PriceTierMap` output (`resync` then needs the map
   * passed with `--price-tier-map`).
   */
  priceTierMap?: PriceTierMap;
  /** The subscription consumer's credit allowances (a new profile's first refresh); absent as above. */
  creditAllowances?: CreditAllowances;
  /** The subscription consumer's ledger retention in days; absent as above. */
  ledgerRetentionDays?: number;
  /** A deployed stack's region, read from its outputs (queue URLs, ARNs). */
  region?: string;
  /**
   * How to call Stripe. `secretKey` is the fake's (local) or STRIPE_SECRET_KEY's; a local
   * runtime calling a real Stripe API does not write its key here, so the operator's
   * STRIPE_SECRET_KEY is used (connect()). `secretArn` is the stack's own key, kept
   * beside STRIPE_SECRET_KEY to learn the stack's mode. `mode`: the Stripe mode the
   * target's functions use, when it says (locally: the fake's, else its key's).
   */
  stripe?: { apiUrl?: string; secretKey?: string; secretArn?: string; mode?: StripeMode };
  /** The local runtime's process, so a file it left behind is not taken for a running one. */
  pid?: number;
  /**
   * The local runtime's operations page (`<apiUrl>/ops`), whose `/metrics` holds the
   * handlers' metrics while it runs. Absent deployed, and for a runtime without the page.
   */
  opsUrl?: string;
}

/** Live or test: Stripe keeps the two apart, and so must a stack. */
export type StripeMode = 'live' | 'test';

/** The mode of a Stripe API key by its prefix (sk_live_, rk_test_, ...); undefined for another key. */
export function stripeKeyMode(key: string | undefined): StripeMode | undefined {
  const match = /^(?:sk|rk)_(live|test)_/.exec(key?.trim() ?? '');
  return match ? (match[1] as StripeMode) : undefined;
}

export interface OpsTarget extends TargetDescription {
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  /** The region the AWS clients use: AWS_REGION when set, else the stack's (deployed), else the SDK's default chain (undefined). */
  region?: string;
  /** The Stripe API; throws a clear error when no key is configured. */
  stripeClients(): StripeClientSource;
  /** The mode of the stack's own Stripe key (its secret, read with the operator's credentials). */
  stackStripeKeyMode(): Promise<StripeMode | undefined>;
  /** CloudWatch in the target's region (deployed: where the handlers' metrics are). */
  cloudWatch(): CloudWatchClient;
  /** Closes the clients' connections. */
  close(): void;
}

/** The service stack's outputs carrying the subscription consumer's configuration (lib/billing-service-stack.ts). */
export const CONFIG_OUTPUTS = {
  priceTierMap: 'PriceTierMap',
  creditAllowances: 'CreditAllowances',
  ledgerRetentionDays: 'LedgerRetentionDays',
} as const;

/** Where `npm start` writes its description for the operator commands. */
export const RUNTIME_FILE = resolve(
  dirname(new URL(import.meta.url).pathname),
  '../../.local/runtime.json',
);

/**
 * The description of a running local runtime, from its stack model and emulators.
 * `env`: the runtime's process environment (its Stripe key, whose mode is written).
 */
export function describeLocalRuntime(
  runtime: LocalRuntime,
  env: NodeJS.ProcessEnv = process.env,
): TargetDescription {
  const { model } = runtime;
  const named = (logicalId: string): NamedQueue => ({
    name: runtime.queueNames[logicalId]!,
    url: runtime.queueUrls[logicalId]!,
  });
  const deadLetterTargets = new Set(
    model.queues.flatMap((q) => (q.deadLetter ? [q.deadLetter.targetLogicalId] : [])),
  );
  const consumedQueues = model.queues.flatMap((q) =>
    q.deadLetter
      ? [{ ...named(q.logicalId), deadLetter: named(q.deadLetter.targetLogicalId) }]
      : [],
  );
  const sources = new Set(model.queues.filter((q) => q.deadLetter).map((q) => q.logicalId));
  const scheduleDeadLetters = model.queues
    .filter((q) => !sources.has(q.logicalId) && !deadLetterTargets.has(q.logicalId))
    .map((q): ScheduleDeadLetterQueue => {
      const reruns = scheduledWorkOf(model, q.logicalId, (id) => runtime.queueUrls[id]);
      return { ...named(q.logicalId), ...(reruns ? { reruns } : {}) };
    });
  return {
    where: `the local runtime (${runtime.apiUrl})`,
    pid: process.pid,
    ...(runtime.opsUrl ? { opsUrl: runtime.opsUrl } : {}),
    endpoints: { dynamo: runtime.dynamoEndpoint, sqs: runtime.sqsEndpoint },
    tables: tablesOf(model, runtime.tableNames),
    eventQueues: Object.fromEntries(
      EVENT_FAMILIES.map((family) => [family, runtime.queueUrls[webhookQueue(model, family)]!]),
    ) as Record<EventFamilyName, string>,
    consumedQueues,
    scheduleDeadLetters,
    ...subscriptionConfigOf(model),
    stripe: {
      apiUrl: runtime.stripeApiUrl,
      // A real Stripe's key stays out of the file: ops takes the operator's STRIPE_SECRET_KEY.
      ...(runtime.fakeStripe ? { secretKey: runtime.fakeStripe.secretKey } : {}),
      ...localStripeMode(runtime, env),
    },
  };
}

/** The fake Stripe is test mode; else the stack's stripeMode, else the mode of the runtime's key. */
function localStripeMode(runtime: LocalRuntime, env: NodeJS.ProcessEnv): { mode?: StripeMode } {
  if (runtime.fakeStripe) return { mode: 'test' };
  for (const fn of runtime.model.functions) {
    const value = fn.environment[ENV.stripeLivemode];
    if (value?.kind === 'literal') return { mode: value.value === 'true' ? 'live' : 'test' };
  }
  const mode = stripeKeyMode(env[ENV.stripeSecretKey]);
  return mode ? { mode } : {};
}

export async function writeRuntimeFile(description: TargetDescription, file = RUNTIME_FILE) {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(description, null, 2)}\n`, { mode: 0o600 });
}

/** Removes the file when `npm start` stops, so no command finds a runtime that is gone. */
export async function removeRuntimeFile(file = RUNTIME_FILE): Promise<void> {
  await rm(file, { force: true });
}

export async function readRuntimeFile(file = RUNTIME_FILE): Promise<TargetDescription> {
  let description: TargetDescription;
  try {
    description = JSON.parse(await readFile(file, 'utf8')) as TargetDescription;
  } catch (error) {
    throw new UsageError(
      `No local runtime found (${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}). Start it with \`npm start\`, or pass --outputs <cdk outputs file> for a deployed stack.`,
    );
  }
  // A runtime killed without its shutdown leaves the file: say so, not "connection refused".
  if (description.pid !== undefined && !isRunning(description.pid)) {
    throw new UsageError(
      `The local runtime that wrote ${file} (process ${description.pid}) is no longer running. Start it with \`npm start\`, or pass --outputs <cdk outputs file> for a deployed stack.`,
    );
  }
  return description;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A deployed stack from the JSON `cdk deploy --all --outputs-file <file>` writes (every
 * stack's outputs; the keys are the CfnOutputs of lib/billing-data-stack.ts and
 * lib/billing-service-stack.ts). Queues, tables and (unless STRIPE_SECRET_KEY is set) the
 * Stripe key's secret are required; the configuration the functions were deployed with
 * (CONFIG_OUTPUTS) and the schedule DLQs are taken when present, since a stack deployed
 * before them lacks them. The region is the stack's, read from the outputs.
 */
export function describeDeployed(
  outputs: Record<string, Record<string, string>>,
  env: NodeJS.ProcessEnv = process.env,
): TargetDescription {
  const all: Record<string, string> = Object.assign({}, ...Object.values(outputs));
  const need = (key: string): string => {
    const value = all[key];
    if (!value)
      throw new UsageError(`The outputs file has no ${key}: deploy with the current lib/ first.`);
    return value;
  };
  const queue = (key: string): NamedQueue => {
    const url = need(key);
    return { name: url.slice(url.lastIndexOf('/') + 1), url };
  };
  const familyIds: Record<EventFamilyName, string> = {
    subscriptions: 'SubscriptionEvents',
    payments: 'PaymentEvents',
  };
  const region = stackRegionOf(all);
  return {
    where: `the deployed stack (${need('BillingTableName')})`,
    tables: {
      billing: need('BillingTableName'),
      ledger: need('SubscriptionLedgerTableName'),
      payments: need('PaymentsTableName'),
      penalties: need('PenaltiesTableName'),
    },
    eventQueues: Object.fromEntries(
      EVENT_FAMILIES.map((family) => [family, need(`${familyIds[family]}QueueUrl`)]),
    ) as Record<EventFamilyName, string>,
    consumedQueues: [
      ...EVENT_FAMILIES.map((family) => ({
        ...queue(`${familyIds[family]}QueueUrl`),
        deadLetter: queue(`${familyIds[family]}DeadLetterQueueUrl`),
      })),
      {
        ...queue('CreditRefreshQueueUrl'),
        deadLetter: queue('CreditRefreshDeadLetterQueueUrl'),
      },
    ],
    // Outputs of stacks deployed before these were added are missing: listed when present.
    scheduleDeadLetters: SCHEDULE_DEAD_LETTER_OUTPUTS.flatMap((key) =>
      all[key] ? [{ ...queue(key), reruns: scheduledWorkOfOutput(key, need) }] : [],
    ),
    ...configFromOutputs(all),
    ...(region ? { region } : {}),
    stripe: {
      ...(env[ENV.stripeApiUrl] ? { apiUrl: env[ENV.stripeApiUrl] } : {}),
      // The mode the stack was deployed for (-c stripeMode), when it was given one.
      ...stripeModeOutput(all.StripeMode),
      ...(env[ENV.stripeSecretKey]?.trim()
        ? {
            secretKey: env[ENV.stripeSecretKey]!.trim(),
            // Not used to call Stripe, only to tell whether that key is of the stack's mode.
            ...(all.StripeApiKeySecretArn ? { secretArn: all.StripeApiKeySecretArn } : {}),
          }
        : { secretArn: need('StripeApiKeySecretArn') }),
    },
  };
}

function stripeModeOutput(value: string | undefined): { mode?: StripeMode } {
  if (value === undefined) return {};
  if (value === 'live' || value === 'test') return { mode: value };
  throw new UsageError(
    `The outputs file's StripeMode is invalid: expected live or test, got ${JSON.stringify(value)}.`,
  );
}

/** The functions' configuration from the outputs that carry it; each absent when its output is. */
function configFromOutputs(
  all: Readonly<Record<string, string>>,
): Pick<TargetDescription, 'priceTierMap' | 'creditAllowances' | 'ledgerRetentionDays'> {
  const read = <T>(key: string, parse: (value: string) => T): T | undefined => {
    const value = all[key];
    if (value === undefined) return undefined;
    try {
      return parse(value);
    } catch (error) {
      throw new UsageError(`The outputs file's ${key} is invalid: ${(error as Error).message}.`);
    }
  };
  const priceTierMap = read(CONFIG_OUTPUTS.priceTierMap, parsePriceTierMap);
  const creditAllowances = read(CONFIG_OUTPUTS.creditAllowances, parseCreditAllowances);
  const ledgerRetentionDays = read(CONFIG_OUTPUTS.ledgerRetentionDays, parseLedgerRetentionDays);
  return {
    ...(priceTierMap ? { priceTierMap } : {}),
    ...(creditAllowances ? { creditAllowances } : {}),
    ...(ledgerRetentionDays !== undefined ? { ledgerRetentionDays } : {}),
  };
}

/** An AWS region name, e.g. `eu-west-1`, `us-gov-west-1`, `ap-southeast-2`. */
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d+$/;

/**
 * The stack's region from its outputs: the host of a queue URL
 * (`sqs.<region>.amazonaws.com`, or the legacy `<region>.queue.amazonaws.com`), else the
 * region field of an ARN (the Stripe key's secret). Undefined when no output names one
 * (e.g. emulator URLs); the SDK's default chain decides then.
 */
export function stackRegionOf(all: Readonly<Record<string, string>>): string | undefined {
  const preferred = [
    'SubscriptionEventsQueueUrl',
    'PaymentEventsQueueUrl',
    'CreditRefreshQueueUrl',
  ];
  const keys = [...preferred, ...Object.keys(all).sort()];
  for (const key of keys) {
    const region = regionOf(all[key]);
    if (region) return region;
  }
  return undefined;
}

function regionOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.startsWith('arn:')) {
    const field = value.split(':')[3];
    return field && REGION.test(field) ? field : undefined;
  }
  let host: string;
  try {
    host = new URL(value).hostname;
  } catch {
    return undefined;
  }
  if (!/\.amazonaws\.com(\.cn)?$/.test(host)) return undefined;
  return host.split('.').find((label) => REGION.test(label));
}

/** The service stack's outputs naming the schedules' DLQs (lib/billing-service-stack.ts). */
export const SCHEDULE_DEAD_LETTER_OUTPUTS = [
  'CreditRefreshScheduleDeadLetterQueueUrl',
  'PenaltyAssessmentScheduleDeadLetterQueueUrl',
] as const;

/** The work of the schedule whose DLQ an output names (the planner sends to CreditRefreshQueueUrl). */
function scheduledWorkOfOutput(
  key: (typeof SCHEDULE_DEAD_LETTER_OUTPUTS)[number],
  need: (key: string) => string,
): ScheduledWork {
  return key === 'CreditRefreshScheduleDeadLetterQueueUrl'
    ? { kind: 'credit-refresh', refreshQueueUrl: need('CreditRefreshQueueUrl') }
    : { kind: 'penalty-assessment' };
}

/** The functions whose schedules ops can rerun, by their entry (lib/credit-refresh.ts, lib/penalties.ts). */
const SCHEDULED_ENTRIES = {
  'functions/credit-planner.ts': 'credit-refresh',
  'functions/penalty-assessor.ts': 'penalty-assessment',
} as const satisfies Record<string, ScheduledWork['kind']>;

/**
 * Scheduled functions whose missed runs need no rerun: the next hourly sweep releases
 * whatever a missed one would have. They share the penalties' schedule DLQ with the
 * assessor, whose rerun its redrive runs.
 */
const UNRERUN_ENTRIES = new Set(['functions/penalty-settlement-sweeper.ts']);

/**
 * The work of the schedule a local schedule DLQ belongs to. The stack model does not
 * link a schedule to its DLQ, but lib/ declares each DLQ (`ScheduleDeadLetterQueue`)
 * in the construct of its schedule, so both logical ids start with that construct's
 * path (`CreditRefresh…`, `Penalties…`). Undefined unless exactly one schedule, of a
 * function ops knows, matches (schedules of UNRERUN_ENTRIES aside).
 */
function scheduledWorkOf(
  model: StackModel,
  queueLogicalId: string,
  queueUrl: (logicalId: string) => string | undefined,
): ScheduledWork | undefined {
  const at = queueLogicalId.indexOf('ScheduleDeadLetterQueue');
  if (at <= 0) return undefined;
  const construct = queueLogicalId.slice(0, at);
  const entryOf = (functionLogicalId: string) =>
    model.functions.find((f) => f.logicalId === functionLogicalId)?.entry;
  const schedules = model.schedules.filter(
    (s) =>
      s.logicalId.startsWith(construct) && !UNRERUN_ENTRIES.has(entryOf(s.functionLogicalId) ?? ''),
  );
  if (schedules.length !== 1) return undefined;
  const fn = model.functions.find((f) => f.logicalId === schedules[0]!.functionLogicalId);
  const kind = fn ? SCHEDULED_ENTRIES[fn.entry as keyof typeof SCHEDULED_ENTRIES] : undefined;
  if (kind === 'penalty-assessment') return { kind };
  if (kind !== 'credit-refresh') return undefined;
  const bound = fn!.environment[ENV.creditRefreshQueueUrl];
  const refreshQueueUrl = bound?.kind === 'queueUrl' ? queueUrl(bound.queueLogicalId) : undefined;
  return refreshQueueUrl ? { kind, refreshQueueUrl } : undefined;
}

/**
 * Clients for a description: the emulators' (dummy credentials), or AWS's usual
 * credential chain in the region AWS_REGION names when set, else the stack's (from its
 * outputs), else the SDK's default (the profile's). Stripe's key: the description's (the
 * local fake's, or STRIPE_SECRET_KEY's when it was described), else STRIPE_SECRET_KEY
 * from `env` (a local runtime calling a real Stripe API), else the stack's secret.
 */
export function connect(
  description: TargetDescription,
  env: NodeJS.ProcessEnv = process.env,
): OpsTarget {
  const tuning = clientConfig({ maxAttempts: 10, requestTimeoutMs: 10_000 });
  const region = description.endpoints
    ? LOCAL_REGION
    : env.AWS_REGION?.trim() || description.region || undefined;
  const aws = {
    ...(region ? { region } : {}),
    ...(description.endpoints ? { credentials: LOCAL_CREDENTIALS } : {}),
  };
  const dynamo = new DynamoDBClient({
    ...tuning,
    ...aws,
    ...(description.endpoints ? { endpoint: description.endpoints.dynamo } : {}),
  });
  const sqs = new SQSClient({
    ...tuning,
    ...aws,
    // fauxqs names queues by a `*.localhost` host other processes may not resolve.
    useQueueUrlAsEndpoint: false,
    ...(description.endpoints ? { endpoint: description.endpoints.sqs } : {}),
  });
  let secrets: SecretsManagerClient | undefined;
  let clients: StripeClientSource | undefined;
  let cloudWatch: CloudWatchClient | undefined;
  // The stack's secret, read in the stack's region with the operator's credentials.
  const stackKey = (secretArn: string) => {
    secrets ??= new SecretsManagerClient({ ...tuning, ...aws });
    return new SecretsManagerSecretString({
      secretId: secretArn,
      label: 'the Stripe API key',
      unavailable: (message, options) => new PaymentGatewayUnavailableError(message, options),
      client: secrets,
    });
  };
  return {
    ...description,
    ...(region ? { region } : {}),
    dynamo,
    sqs,
    stripeClients() {
      if (clients) return clients;
      const stripe = description.stripe ?? {};
      const secretKey = stripe.secretKey || env[ENV.stripeSecretKey]?.trim() || undefined;
      if (!secretKey && !stripe.secretArn) {
        throw new UsageError(
          `No Stripe API key for ${description.where}${stripe.apiUrl ? `, which calls Stripe at ${stripe.apiUrl}` : ''}: set ${ENV.stripeSecretKey} to that API's secret key in the shell that runs ops.`,
        );
      }
      const key = secretKey ? stripeApiKeyFromConfig({ secretKey }) : stackKey(stripe.secretArn!);
      clients = new StripeClientSource(key, parseStripeApiUrl(stripe.apiUrl));
      return clients;
    },
    async stackStripeKeyMode() {
      const secretArn = description.stripe?.secretArn;
      return secretArn ? stripeKeyMode(await stackKey(secretArn).get()) : undefined;
    },
    cloudWatch() {
      // Few attempts: stats prints its other figures, and says why these are missing.
      cloudWatch ??= new CloudWatchClient({
        ...clientConfig({ maxAttempts: 3, requestTimeoutMs: 10_000 }),
        ...aws,
      });
      return cloudWatch;
    },
    close() {
      dynamo.destroy();
      sqs.destroy();
      secrets?.destroy();
      cloudWatch?.destroy();
    },
  };
}

/**
 * The Stripe mode `command` acts in, refused (UsageError) when the key ops calls Stripe
 * with is of the other mode than the target: a STRIPE_SECRET_KEY in the operator's
 * shell overrides the stack's key, and a test key on a live stack (or the reverse)
 * would write one mode's objects over the other's. The target's mode is the one it
 * says (locally), else that of the stack's own key, which is what its functions call
 * Stripe with. `note` when a mode cannot be told (the command goes on).
 */
export async function checkStripeMode(
  target: OpsTarget,
  command: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ mode?: StripeMode; note?: string }> {
  const stripe = target.stripe ?? {};
  const shellKey = !(target.endpoints && stripe.secretKey);
  const key = stripe.secretKey || env[ENV.stripeSecretKey]?.trim() || undefined;
  if (!key) {
    // The stack's own key: of the stack's mode by definition.
    return stripe.mode ? { mode: stripe.mode } : {};
  }
  const keyMode = stripeKeyMode(key);
  let mode = stripe.mode;
  let from = target.where;
  if (!mode && stripe.secretArn) {
    try {
      mode = await target.stackStripeKeyMode();
      from = "the stack's own Stripe key (StripeApiKeySecretArn)";
    } catch (error) {
      return {
        ...(keyMode ? { mode: keyMode } : {}),
        note: `could not read the stack's own Stripe key to check that ${ENV.stripeSecretKey} is of its mode (${(error as Error).message}); going on with the ${keyMode ?? 'unknown'}-mode key`,
      };
    }
  }
  const keyName = shellKey ? ENV.stripeSecretKey : "the local runtime's Stripe key";
  if (keyMode && mode && keyMode !== mode) {
    throw new UsageError(
      `${command} refused: ${keyName} is a ${keyMode}-mode key, but ${target.where} serves Stripe's ${mode} mode (from ${from}); ${command} would mix ${keyMode}-mode data into a ${mode}-mode stack. ${shellKey ? `Unset ${ENV.stripeSecretKey} to use the stack's own key, or set it to a ${mode}-mode key.` : ''}`.trim(),
    );
  }
  const known = mode ?? keyMode;
  if (known) return { mode: known };
  return { note: `cannot tell the Stripe mode of ${target.where} nor of its key; not checked` };
}

/** A mistake of the operator's (bad flag, missing target): printed without a stack trace, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function webhookQueue(model: StackModel, family: EventFamilyName): string {
  for (const fn of model.functions) {
    const bound = fn.environment[EVENT_QUEUE_URL_ENV[family]];
    if (bound?.kind === 'queueUrl') return bound.queueLogicalId;
  }
  throw new Error(`No function of the stack is given the ${family} queue.`);
}

function tablesOf(model: StackModel, names: Readonly<Record<string, string>>) {
  const bound = (envName: string): string => {
    for (const fn of model.functions) {
      const value = fn.environment[envName];
      if (value?.kind === 'tableName') return names[value.tableLogicalId]!;
    }
    throw new Error(`No function of the stack is given ${envName}.`);
  };
  return {
    billing: bound(ENV.billingTableName),
    ledger: bound(ENV.subscriptionLedgerTableName),
    payments: bound(ENV.paymentsTableName),
    penalties: bound(ENV.penaltiesTableName),
  };
}

/**
 * The configuration the stack gives the subscription consumer (the function fed by the
 * subscriptions queue): price→tier map, credit allowances, ledger retention, parsed with
 * the handlers' own rules. A value the template does not set takes the handlers' default.
 */
function subscriptionConfigOf(
  model: StackModel,
): Required<Pick<TargetDescription, 'priceTierMap' | 'creditAllowances' | 'ledgerRetentionDays'>> {
  const queue = webhookQueue(model, 'subscriptions');
  const consumerId = model.queueConsumers.find(
    (c) => c.queueLogicalId === queue,
  )?.functionLogicalId;
  const consumer = model.functions.find((fn) => fn.logicalId === consumerId);
  if (!consumer) throw new Error('No function of the stack consumes the subscriptions queue.');
  const literal = (name: string): string | undefined => {
    const value = consumer.environment[name];
    return value?.kind === 'literal' ? value.value : undefined;
  };
  return {
    priceTierMap: parsePriceTierMap(literal(ENV.priceTierMap)),
    creditAllowances: parseCreditAllowances(literal(ENV.creditAllowances)),
    ledgerRetentionDays: parseLedgerRetentionDays(literal(ENV.ledgerRetentionDays)),
  };
}
