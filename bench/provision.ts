/**
 * Where the benchmark creates its tables and queues: through the local runtime's own
 * provisioning (local/provision.ts), so they have the deployed shapes (keys, TTL,
 * queue attributes, redrive policy). A suffix makes side copies (the raw-limit runs)
 * that cannot disturb the real ones.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../functions/commons/env-names.ts';
import { ensureTable, provisionStack as provisionLocalStack } from '../local/provision.ts';
import type { FunctionModel, StackModel } from '../local/stack-model.ts';

export interface Provisioned {
  /** Table logical id -> name on the emulator. */
  tableNames: Record<string, string>;
  /** Queue logical id -> URL on the emulator. */
  queueUrls: Record<string, string>;
}

export async function provisionStack(
  model: StackModel,
  clients: { dynamo: DynamoDBClient; sqs: SQSClient },
  suffix = '',
): Promise<Provisioned> {
  const renamed = {
    tables: model.tables.map((t) => ({
      ...t,
      localName: `${t.localName}${suffix}`,
      create: { ...t.create, TableName: `${t.localName}${suffix}` },
    })),
    queues: model.queues.map((q) => ({ ...q, localName: `${q.localName}${suffix}` })),
  };
  const { tableNames, queueUrls } = await provisionLocalStack(renamed, clients);
  return { tableNames, queueUrls };
}

/** The model's function whose entry is `entry` (e.g. `functions/webhook-ingress.ts`). */
export function functionByEntry(model: StackModel, entry: string): FunctionModel {
  const fn = model.functions.find((f) => f.entry === entry);
  if (!fn) throw new Error(`the stack model has no function with entry ${entry}`);
  return fn;
}

/** The logical id an env var of `fn` points at (a table or a queue). */
export function boundResource(fn: FunctionModel, envName: string): string {
  const value = fn.environment[envName];
  if (value?.kind === 'tableName') return value.tableLogicalId;
  if (value?.kind === 'queueUrl') return value.queueLogicalId;
  throw new Error(`${fn.logicalId}: ${envName} is not bound to a table or a queue`);
}

/** The event source mapping from `queueLogicalId` to `consumer`: the queue the webhook sends the family to. */
function consumerMapping(model: StackModel, consumer: FunctionModel, queueLogicalId: string) {
  const mapping = model.queueConsumers.find(
    (c) => c.functionLogicalId === consumer.logicalId && c.queueLogicalId === queueLogicalId,
  );
  if (!mapping)
    throw new Error(
      `the stack model has no event source mapping from ${queueLogicalId} (the webhook's) to ${consumer.logicalId}`,
    );
  return mapping;
}

/** The resources the subscription path uses, found through the functions' env. */
export function subscriptionResources(model: StackModel) {
  const webhook = functionByEntry(model, 'functions/webhook-ingress.ts');
  const consumer = functionByEntry(model, 'functions/subscription-consumer.ts');
  const queueLogicalId = boundResource(webhook, ENV.subscriptionEventsQueueUrl);
  return {
    webhook,
    consumer,
    mapping: consumerMapping(model, consumer, queueLogicalId),
    queueLogicalId,
    billingTableLogicalId: boundResource(consumer, ENV.billingTableName),
    eventsTableLogicalId: boundResource(consumer, ENV.subscriptionLedgerTableName),
  };
}

/** The resources the payment path uses: `functions/payment-consumer.ts`, its table and its queue. */
export function paymentResources(model: StackModel) {
  const webhook = functionByEntry(model, 'functions/webhook-ingress.ts');
  const consumer = functionByEntry(model, 'functions/payment-consumer.ts');
  const queueLogicalId = boundResource(webhook, ENV.paymentEventsQueueUrl);
  return {
    webhook,
    consumer,
    mapping: consumerMapping(model, consumer, queueLogicalId),
    queueLogicalId,
    paymentsTableLogicalId: boundResource(consumer, ENV.paymentsTableName),
    billingTableLogicalId: boundResource(consumer, ENV.billingTableName),
  };
}

/** A suffixed copy of one of the model's tables (same keys, indexes and TTL); returns its name. */
export async function provisionTableCopy(
  model: StackModel,
  dynamo: DynamoDBClient,
  logicalId: string,
  suffix: string,
): Promise<string> {
  const table = model.tables.find((t) => t.logicalId === logicalId);
  if (!table) throw new Error(`the stack model has no table ${logicalId}`);
  const localName = `${table.localName}${suffix}`;
  await ensureTable(dynamo, {
    ...table,
    localName,
    create: { ...table.create, TableName: localName },
  });
  return localName;
}
