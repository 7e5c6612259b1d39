/**
 * A DynamoDB client that refuses, as IAM would, every request its role is not granted:
 * so a store used by a function can be run with exactly the actions its construct binds
 * (the same constants), and a missing grant fails here instead of after `cdk deploy`.
 * DynamoDB Local enforces no IAM at all.
 *
 * IAM authorises a TransactWriteItems item by item (Put -> PutItem, Update -> UpdateItem,
 * Delete -> DeleteItem, ConditionCheck -> ConditionCheckItem), a TransactGetItems as
 * GetItem, a batch per table, and a Query on an index only with a grant on that index.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { localDynamoDbClient } from '../../local/emulators.ts';

export interface TableGrant {
  /** DynamoDB actions without the `dynamodb:` prefix, e.g. `GetItem`. */
  actions: readonly string[];
  /** Indexes the role may Query (each a resource of its own in IAM). */
  indexes?: readonly string[];
}

/** Table name -> what the role may do on it. */
export type RoleGrants = Readonly<Record<string, TableGrant>>;

interface Access {
  action: string;
  table: string;
  index?: string;
}

type Input = Record<string, unknown> & {
  TableName?: string;
  IndexName?: string;
  RequestItems?: Record<string, unknown>;
  TransactItems?: Record<string, { TableName?: string } | undefined>[];
};

const TRANSACT_WRITE_ACTIONS: Record<string, string> = {
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem',
};

/** What a request needs from IAM, as DynamoDB authorises it. */
export function accessesOf(commandName: string, input: Input): Access[] {
  const action = commandName.replace(/Command$/, '');
  switch (action) {
    case 'TransactWriteItems':
      return (input.TransactItems ?? []).flatMap((item) =>
        Object.entries(item).flatMap(([kind, operation]) =>
          operation?.TableName
            ? [{ action: TRANSACT_WRITE_ACTIONS[kind] ?? kind, table: operation.TableName }]
            : [],
        ),
      );
    case 'TransactGetItems':
      return (input.TransactItems ?? []).flatMap((item) =>
        item.Get?.TableName ? [{ action: 'GetItem', table: item.Get.TableName }] : [],
      );
    case 'BatchGetItem':
    case 'BatchWriteItem':
      return Object.keys(input.RequestItems ?? {}).map((table) => ({ action, table }));
    default:
      return [
        {
          action,
          table: input.TableName ?? '*',
          ...(input.IndexName ? { index: input.IndexName } : {}),
        },
      ];
  }
}

export class AccessDeniedError extends Error {
  override readonly name = 'AccessDeniedException';
  readonly $metadata = { httpStatusCode: 400 };
}

/** A client on the test emulator that sends only what `grants` allows `role`. */
export function iamScopedDynamoDbClient(role: string, grants: RoleGrants): DynamoDBClient {
  const client = localDynamoDbClient(inject('dynamoEndpoint'), { maxAttempts: 1 });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      for (const access of accessesOf(String(context.commandName), args.input as Input)) {
        const grant = grants[access.table];
        const allowed =
          grant?.actions.includes(access.action) &&
          (access.index === undefined || (grant.indexes ?? []).includes(access.index));
        if (!allowed) {
          const resource = `table/${access.table}${access.index ? `/index/${access.index}` : ''}`;
          throw new AccessDeniedError(
            `${role} is not authorized to perform: dynamodb:${access.action} on resource: ${resource}`,
          );
        }
      }
      return await next(args);
    },
    { step: 'initialize', name: 'iamScope' },
  );
  return client;
}
