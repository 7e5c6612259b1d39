/**
 * Where the operator commands act: the local runtime (`npm start` writes what they need
 * to `.local/runtime.json`) or a deployed stack (ordinary AWS credentials, and the JSON
 * `cdk deploy --outputs-file` writes). Either way the commands see the same shape: the
 * tables, the queues with their DLQs, the family queues the webhook feeds, the
 * price→tier map, and a way to call Stripe.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../../functions/adapters/stripe/stripe-client.ts';
import { clientConfig } from '../../functions/commons/aws-clients.ts';
import { ENV, EVENT_QUEUE_URL_ENV } from '../../functions/commons/env-names.ts';
import { stripeApiKeyFromConfig } from '../../functions/commons/stripe-wiring.ts';
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

/** Everything a command needs to know of its target; plain data, so it can be written to a file. */
export interface TargetDescription {
  where: string;
  endpoints?: { dynamo: string; sqs: string };
  tables: { billing: string; ledger: string; payments: string; penalties: string };
  eventQueues: Record<EventFamilyName, string>;
  consumedQueues: ConsumedQueue[];
  /** DLQs of schedules (failed invocations): listed, not redrivable to a queue. */
  scheduleDeadLetters: NamedQueue[];
  priceTierMap: PriceTierMap;
  stripe?: { apiUrl?: string; secretKey?: string; secretArn?: string };
  /** The local runtime's process, so a file it left behind is not taken for a running one. */
  pid?: number;
}

export interface OpsTarget extends TargetDescription {
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  /** The Stripe API; throws a clear error when no key is configured. */
  stripeClients(): StripeClientSource;
}

/** Where `npm start` writes its description for the operator commands. */
export const RUNTIME_FILE = resolve(
  dirname(new URL(import.meta.url).pathname),
  '../../.local/runtime.json',
);

/** The description of a running local runtime, from its stack model and emulators. */
export function describeLocalRuntime(runtime: LocalRuntime): TargetDescription {
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
    .map((q) => named(q.logicalId));
  return {
    where: `the local runtime (${runtime.apiUrl})`,
    pid: process.pid,
    endpoints: { dynamo: runtime.dynamoEndpoint, sqs: runtime.sqsEndpoint },
    tables: tablesOf(model, runtime.tableNames),
    eventQueues: Object.fromEntries(
      EVENT_FAMILIES.map((family) => [family, runtime.queueUrls[webhookQueue(model, family)]!]),
    ) as Record<EventFamilyName, string>,
    consumedQueues,
    scheduleDeadLetters,
    priceTierMap: priceTierMapOf(model),
    stripe: {
      apiUrl: runtime.stripeApiUrl,
      ...(runtime.fakeStripe ? { secretKey: runtime.fakeStripe.secretKey } : {}),
    },
  };
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
 * stack's outputs; the keys are the CfnOutputs of lib/billing-data-stack.ts). The
 * price→tier map is the app's own (cdk.json), read from the synthesized model.
 */
export function describeDeployed(
  outputs: Record<string, Record<string, string>>,
  model: StackModel,
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
      all[key] ? [queue(key)] : [],
    ),
    priceTierMap: priceTierMapOf(model),
    stripe: {
      ...(process.env[ENV.stripeApiUrl] ? { apiUrl: process.env[ENV.stripeApiUrl] } : {}),
      ...(process.env[ENV.stripeSecretKey]
        ? { secretKey: process.env[ENV.stripeSecretKey] }
        : { secretArn: need('StripeApiKeySecretArn') }),
    },
  };
}

/** The service stack's outputs naming the schedules' DLQs (lib/billing-service-stack.ts). */
export const SCHEDULE_DEAD_LETTER_OUTPUTS = [
  'CreditRefreshScheduleDeadLetterQueueUrl',
  'PenaltyAssessmentScheduleDeadLetterQueueUrl',
] as const;

/** Clients for a description: the emulators' (dummy credentials) or AWS's usual chain. */
export function connect(description: TargetDescription): OpsTarget {
  const tuning = clientConfig({ maxAttempts: 10, requestTimeoutMs: 10_000 });
  const local = description.endpoints
    ? { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }
    : {};
  const dynamo = new DynamoDBClient({
    ...tuning,
    ...local,
    ...(description.endpoints ? { endpoint: description.endpoints.dynamo } : {}),
  });
  const sqs = new SQSClient({
    ...tuning,
    ...local,
    // fauxqs names queues by a `*.localhost` host other processes may not resolve.
    useQueueUrlAsEndpoint: false,
    ...(description.endpoints ? { endpoint: description.endpoints.sqs } : {}),
  });
  let clients: StripeClientSource | undefined;
  return {
    ...description,
    dynamo,
    sqs,
    stripeClients() {
      const stripe = description.stripe ?? {};
      if (!stripe.secretKey && !stripe.secretArn) {
        throw new UsageError(
          `No Stripe API key for ${description.where}: set ${ENV.stripeSecretKey} (and ${ENV.stripeApiUrl} for a fake).`,
        );
      }
      clients ??= new StripeClientSource(
        stripeApiKeyFromConfig(stripe),
        parseStripeApiUrl(stripe.apiUrl),
      );
      return clients;
    },
  };
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

function priceTierMapOf(model: StackModel): PriceTierMap {
  for (const fn of model.functions) {
    const value = fn.environment[ENV.priceTierMap];
    if (value?.kind === 'literal') return parsePriceTierMap(value.value);
  }
  return {};
}
