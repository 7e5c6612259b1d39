import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  HABIT_ASSESSMENT_INDEX,
  PENALTY_STATUS_INDEX,
} from '../../functions/adapters/dynamodb/penalty-table-schema.ts';
import { uniqueName } from './aws-clients.ts';

/**
 * Creates a penalties table with the key schema and indexes of penalty-table-schema.ts,
 * the module the CDK construct builds the deployed table from.
 */
export async function createPenaltiesTable(dynamo: DynamoDBClient): Promise<string> {
  const name = uniqueName('penalties');
  const attribute = (spec: { name: string; type: 'S' | 'N' }) => ({
    AttributeName: spec.name,
    AttributeType: spec.type,
  });
  const status = PENALTY_STATUS_INDEX;
  const assessment = HABIT_ASSESSMENT_INDEX;
  await dynamo.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        attribute(status.partitionKey),
        attribute(assessment.partitionKey),
        attribute(assessment.sortKey),
      ],
      GlobalSecondaryIndexes: [status, assessment].map((index) => ({
        IndexName: index.indexName,
        KeySchema: [
          { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
          { AttributeName: index.sortKey.name, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    }),
  );
  return name;
}
