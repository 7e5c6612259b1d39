import {
  CreateTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { loadStackModel } from '../../local/stack-model.ts';
import { uniqueName } from './aws-clients.ts';

/**
 * Creates the billing and events tables exactly as the CDK stack defines them
 * (key schema, indexes, TTL), under unique names so test files do not collide.
 */
export async function createBillingTables(dynamo: DynamoDBClient) {
  const model = loadStackModel();
  const names: Record<string, string> = {};
  for (const table of model.tables) {
    const name = uniqueName(table.localName);
    await dynamo.send(new CreateTableCommand({ ...table.create, TableName: name }));
    if (table.ttlAttribute) {
      await dynamo.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: table.ttlAttribute, Enabled: true },
        }),
      );
    }
    names[table.localName] = name;
  }
  const billingTableName = names['billing-suite-billing'];
  const ledgerTableName = names['billing-suite-subscription-ledger'];
  if (!billingTableName || !ledgerTableName) {
    throw new Error(`stack model tables changed: ${Object.keys(names).join(', ')}`);
  }
  return { billingTableName, ledgerTableName, byLocalName: names };
}
