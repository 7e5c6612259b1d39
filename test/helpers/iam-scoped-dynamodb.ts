/**
 * A DynamoDB client on the test emulator that refuses, as IAM would, every request the
 * role is not granted (the local runtime's check, `local/iam-scope.ts`, on a client of
 * its own): a store can then be run with exactly the actions its function's construct
 * binds, the same constants.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { localDynamoDbClient } from '../../local/emulators.ts';
import { holdToGrants, type RoleGrants } from '../../local/iam-scope.ts';

export { AccessDeniedError, type RoleGrants } from '../../local/iam-scope.ts';

export function iamScopedDynamoDbClient(role: string, grants: RoleGrants): DynamoDBClient {
  const client = localDynamoDbClient(inject('dynamoEndpoint'), { maxAttempts: 1 });
  holdToGrants(client, () => ({ functionName: role, dynamoDbGrants: grants }));
  return client;
}
