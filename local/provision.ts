/**
 * Creates on the emulators exactly the tables and queues the stack model describes.
 * Idempotent: DynamoDB Local keeps its data across restarts, so an existing table is
 * checked and completed (TTL, missing indexes) rather than recreated.
 */
import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  type TableDescription,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { QueueModel, StackModel, TableModel } from './stack-model.ts';

/** The local data does not match the stack (a key schema changed); the message says what to do. */
export class LocalSchemaMismatchError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LocalSchemaMismatchError';
  }
}

export interface ProvisionedResources {
  /** Table logical id -> local table name. */
  tableNames: Record<string, string>;
  /** Queue logical id -> queue URL. */
  queueUrls: Record<string, string>;
  /** Queue logical id -> queue ARN. */
  queueArns: Record<string, string>;
}

export interface ProvisionClients {
  dynamo: DynamoDBClient;
  sqs: SQSClient;
}

/** Creates (or completes) every table and queue of `model`. */
export async function provisionStack(
  model: Pick<StackModel, 'tables' | 'queues'>,
  clients: ProvisionClients,
): Promise<ProvisionedResources & { createdTables: string[] }> {
  const [createdTables, queues] = await Promise.all([
    ensureTables(clients.dynamo, model.tables),
    ensureQueues(clients.sqs, model.queues),
  ]);
  const tableNames = Object.fromEntries(model.tables.map((t) => [t.logicalId, t.localName]));
  return { tableNames, ...queues, createdTables };
}

/** Creates (or completes) each table; returns the names of those it created. */
export async function ensureTables(
  dynamo: DynamoDBClient,
  tables: readonly TableModel[],
): Promise<string[]> {
  const created = await Promise.all(tables.map((table) => ensureTable(dynamo, table)));
  return tables.filter((_, index) => created[index]).map((table) => table.localName);
}

/** Creates the table unless it exists; true when it was created. */
export async function ensureTable(dynamo: DynamoDBClient, table: TableModel): Promise<boolean> {
  const name = table.localName;
  let existing = await describeTable(dynamo, name);
  let created = false;
  if (!existing) {
    try {
      await dynamo.send(new CreateTableCommand({ ...table.create, TableName: name }));
      created = true;
    } catch (error) {
      // Another runtime sharing the data folder created it first: fine.
      if ((error as { name?: string }).name !== 'ResourceInUseException') throw error;
    }
    await waitUntilTableExists(
      { client: dynamo, maxWaitTime: 30, minDelay: 0.1, maxDelay: 1 },
      { TableName: name },
    );
    existing = await describeTable(dynamo, name);
  } else {
    assertSameKeys(table, existing);
    await addMissingIndexes(dynamo, table, existing);
  }
  if (table.ttlAttribute) await ensureTtl(dynamo, name, table.ttlAttribute);
  return created;
}

async function describeTable(
  dynamo: DynamoDBClient,
  name: string,
): Promise<TableDescription | undefined> {
  try {
    return (await dynamo.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

function keyOf(schema: { AttributeName?: string; KeyType?: string }[] | undefined): string {
  return (schema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
}

function assertSameKeys(table: TableModel, existing: TableDescription): void {
  if (keyOf(table.create.KeySchema) !== keyOf(existing.KeySchema)) {
    throw new LocalSchemaMismatchError(
      `Local table ${table.localName} has key schema ${keyOf(existing.KeySchema)} but the stack defines ${keyOf(table.create.KeySchema)}; delete the local data folder (or that table) to recreate it.`,
    );
  }
}

/** A global secondary index added to the stack since the local table was created. */
async function addMissingIndexes(
  dynamo: DynamoDBClient,
  table: TableModel,
  existing: TableDescription,
): Promise<void> {
  const present = new Set((existing.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
  const missing = (table.create.GlobalSecondaryIndexes ?? []).filter(
    (index) => !present.has(index.IndexName),
  );
  const definitions = new Map<string, AttributeDefinition>(
    (table.create.AttributeDefinitions ?? []).map((d) => [d.AttributeName ?? '', d]),
  );
  // DynamoDB accepts one index creation per UpdateTable call.
  for (const index of missing) {
    const attributes = (index.KeySchema ?? []).map((k) => definitions.get(k.AttributeName ?? ''));
    await dynamo.send(
      new UpdateTableCommand({
        TableName: table.localName,
        AttributeDefinitions: attributes.filter((a): a is AttributeDefinition => a !== undefined),
        GlobalSecondaryIndexUpdates: [{ Create: index }],
      }),
    );
  }
}

async function ensureTtl(dynamo: DynamoDBClient, name: string, attribute: string): Promise<void> {
  const current = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: name }));
  const description = current.TimeToLiveDescription;
  if (
    description?.AttributeName === attribute &&
    (description.TimeToLiveStatus === 'ENABLED' || description.TimeToLiveStatus === 'ENABLING')
  ) {
    return;
  }
  await dynamo.send(
    new UpdateTimeToLiveCommand({
      TableName: name,
      TimeToLiveSpecification: { AttributeName: attribute, Enabled: true },
    }),
  );
}

/** Creates the queues, dead-letter targets first so each RedrivePolicy can name its ARN. */
export async function ensureQueues(
  sqs: SQSClient,
  queues: readonly QueueModel[],
): Promise<Pick<ProvisionedResources, 'queueUrls' | 'queueArns'>> {
  const byId = new Map(queues.map((q) => [q.logicalId, q]));
  const queueUrls: Record<string, string> = {};
  const queueArns: Record<string, string> = {};
  const creating = new Map<string, Promise<void>>();

  const create = (queue: QueueModel): Promise<void> => {
    let pending = creating.get(queue.logicalId);
    if (pending) return pending;
    pending = (async () => {
      const attributes: Record<string, string> = { ...queue.attributes };
      if (queue.deadLetter) {
        const target = byId.get(queue.deadLetter.targetLogicalId);
        if (!target) {
          throw new Error(
            `Queue ${queue.logicalId}: dead-letter queue ${queue.deadLetter.targetLogicalId} is not in the stack model`,
          );
        }
        await create(target);
        attributes.RedrivePolicy = JSON.stringify({
          deadLetterTargetArn: queueArns[target.logicalId],
          maxReceiveCount: queue.deadLetter.maxReceiveCount,
        });
      }
      const out = await sqs.send(
        new CreateQueueCommand({ QueueName: queue.localName, Attributes: attributes }),
      );
      const url = out.QueueUrl;
      if (!url) throw new Error(`CreateQueue ${queue.localName} returned no QueueUrl`);
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
      );
      queueUrls[queue.logicalId] = url;
      queueArns[queue.logicalId] = attrs.Attributes?.QueueArn ?? '';
    })();
    creating.set(queue.logicalId, pending);
    return pending;
  };

  await Promise.all(queues.map(create));
  return { queueUrls, queueArns };
}
