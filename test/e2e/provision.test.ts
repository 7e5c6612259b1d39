/**
 * The local runtime's provisioning on the shared emulators: idempotent across
 * restarts, completes an existing table (TTL, a new index), refuses a changed key
 * schema, and wires each queue's DLQ. (An integration test by layer; it lives here
 * beside the runtime's other tests.)
 */
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalSchemaMismatchError, provisionStack } from '../../local/provision.ts';
import type { QueueModel, TableModel } from '../../local/stack-model.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';

function table(name: string, extra: Partial<TableModel['create']> = {}): TableModel {
  return {
    logicalId: 'Ledger',
    localName: name,
    ttlAttribute: 'expiresAt',
    create: {
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'eventId', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'eventId', AttributeType: 'S' }],
      ...extra,
    },
  };
}

describe('provisionStack', () => {
  let dynamo: DynamoDBClient;
  let sqs: SQSClient;

  beforeAll(() => {
    ({ dynamo, sqs } = emulatorClients());
  });
  afterAll(() => {
    dynamo.destroy();
    sqs.destroy();
  });

  it('creates tables with TTL once, and is a no-op the second time', async () => {
    const name = uniqueName('ledger');
    const first = await provisionStack({ tables: [table(name)], queues: [] }, { dynamo, sqs });
    expect(first.createdTables).toEqual([name]);
    expect(first.tableNames).toEqual({ Ledger: name });
    const second = await provisionStack({ tables: [table(name)], queues: [] }, { dynamo, sqs });
    expect(second.createdTables).toEqual([]);
    const ttl = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: name }));
    expect(ttl.TimeToLiveDescription).toMatchObject({
      AttributeName: 'expiresAt',
      TimeToLiveStatus: 'ENABLED',
    });
  });

  it('adds a global secondary index the stack gained since the table was created', async () => {
    const name = uniqueName('ledger');
    await provisionStack({ tables: [table(name)], queues: [] }, { dynamo, sqs });
    const withIndex = table(name, {
      AttributeDefinitions: [
        { AttributeName: 'eventId', AttributeType: 'S' },
        { AttributeName: 'type', AttributeType: 'S' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byType',
          KeySchema: [{ AttributeName: 'type', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    });
    await provisionStack({ tables: [withIndex], queues: [] }, { dynamo, sqs });
    const described = await dynamo.send(new DescribeTableCommand({ TableName: name }));
    expect(described.Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName)).toEqual(['byType']);
  });

  it('refuses a table whose key schema changed, with a way out', async () => {
    const name = uniqueName('ledger');
    await provisionStack({ tables: [table(name)], queues: [] }, { dynamo, sqs });
    const changed = table(name, {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    });
    const attempt = provisionStack({ tables: [changed], queues: [] }, { dynamo, sqs });
    await expect(attempt).rejects.toBeInstanceOf(LocalSchemaMismatchError);
    await expect(attempt).rejects.toThrow(/delete the local data folder/);
  });

  it('creates each queue with a RedrivePolicy naming its DLQ', async () => {
    const dlqName = uniqueName('dlq');
    const mainName = uniqueName('main');
    // Listed main first: the DLQ must still be created before its ARN is needed.
    const queues: QueueModel[] = [
      {
        logicalId: 'Main',
        localName: mainName,
        attributes: { VisibilityTimeout: '31' },
        deadLetter: { targetLogicalId: 'Dlq', maxReceiveCount: 4 },
      },
      { logicalId: 'Dlq', localName: dlqName, attributes: {} },
    ];
    const { queueUrls, queueArns } = await provisionStack({ tables: [], queues }, { dynamo, sqs });
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrls.Main, AttributeNames: ['All'] }),
    );
    expect(attrs.Attributes?.VisibilityTimeout).toBe('31');
    expect(JSON.parse(attrs.Attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: queueArns.Dlq,
      maxReceiveCount: 4,
    });
    expect(queueArns.Dlq).toMatch(new RegExp(`:${dlqName}$`));
  });
});
