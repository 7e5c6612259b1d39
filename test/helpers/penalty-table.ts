import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_NAME_PREFIX } from '../../lib/metadata.ts';
import { loadStackModel } from '../../local/stack-model.ts';
import { uniqueName } from './aws-clients.ts';

/** The penalties table's local name (lib/penalty-tables.ts sets it with setLocalName). */
export const PENALTIES_LOCAL_NAME = `${LOCAL_NAME_PREFIX}-penalties`;

/**
 * Creates a penalties table exactly as the CDK stack defines it (key schema, the
 * `byStatus`, `byAssessment` and `byPendingSettlement` indexes and their projections,
 * from the synthesized template, which lib/penalty-tables.ts builds from
 * penalty-table-schema.ts), under a unique name so test files do not collide.
 */
export async function createPenaltiesTable(dynamo: DynamoDBClient): Promise<string> {
  const table = loadStackModel().tables.find((t) => t.localName === PENALTIES_LOCAL_NAME);
  if (!table) throw new Error(`the stack model has no ${PENALTIES_LOCAL_NAME} table`);
  if (table.ttlAttribute) {
    throw new Error(`${PENALTIES_LOCAL_NAME} has TTL now: createPenaltiesTable must enable it`);
  }
  const name = uniqueName('penalties');
  await dynamo.send(new CreateTableCommand({ ...table.create, TableName: name }));
  return name;
}
