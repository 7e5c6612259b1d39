/**
 * IAM, as far as DynamoDB goes, for the local runtime: each handler's DynamoDB requests
 * are checked against the grants its role has in the synthesized template
 * (`FunctionModel.dynamoDbGrants`) and refused as AWS would refuse them. DynamoDB Local
 * enforces no IAM at all, so without this a store method that needs one more action
 * passes every local test and fails only once deployed.
 *
 * The handlers share one DynamoDB client in this process, so the check is a middleware on
 * that client that asks which function the current invocation belongs to
 * (`invokeLocally` runs each handler in `invocations`). Requests made outside an
 * invocation (the runtime's own setup, operator commands) are not checked.
 *
 * IAM authorises a TransactWriteItems item by item (Put -> PutItem, Update -> UpdateItem,
 * Delete -> DeleteItem, ConditionCheck -> ConditionCheckItem), a TransactGetItems as
 * GetItem, a batch per table, and a Query or Scan of an index only with a grant on it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface TableGrant {
  /** DynamoDB actions without the `dynamodb:` prefix, e.g. `GetItem`. */
  actions: readonly string[];
  /** Indexes the role may Query or Scan (each a resource of its own in IAM); `*` for all. */
  indexes?: readonly string[];
}

/** Table name -> what the role may do on it. */
export type RoleGrants = Readonly<Record<string, TableGrant>>;

/** Who is calling: the function's name and its grants by local table name. */
export interface InvocationIdentity {
  functionName: string;
  dynamoDbGrants: RoleGrants;
}

/** The invocation in progress, for the checks of the shared client. */
export const invocations = new AsyncLocalStorage<InvocationIdentity>();

export class AccessDeniedError extends Error {
  override readonly name = 'AccessDeniedException';
  readonly $fault = 'client';
  readonly $metadata = { httpStatusCode: 400 };
}

interface Access {
  action: string;
  table: string;
  index?: string;
}

type RequestInput = Record<string, unknown> & {
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
export function accessesOf(commandName: string, input: RequestInput): Access[] {
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

/** Throws `AccessDeniedError` unless `grants` allow every access the request needs. */
export function checkDynamoDbRequest(
  who: string,
  grants: RoleGrants,
  commandName: string,
  input: unknown,
): void {
  for (const access of accessesOf(commandName, input as RequestInput)) {
    const grant = grants[access.table];
    const indexes = grant?.indexes ?? [];
    const allowed =
      grant?.actions.includes(access.action) &&
      (access.index === undefined || indexes.includes('*') || indexes.includes(access.index));
    if (!allowed) {
      const resource = `table/${access.table}${access.index ? `/index/${access.index}` : ''}`;
      throw new AccessDeniedError(
        `${who} is not authorized to perform: dynamodb:${access.action} on resource: ${resource} (its role in the template does not grant it)`,
      );
    }
  }
}

const MIDDLEWARE_NAME = 'localIamScope';

/**
 * Adds the check to `client` (once): every request made while `caller()` names an
 * identity must be granted to it; with none, the request is not checked.
 */
export function holdToGrants(
  client: DynamoDBClient,
  caller: () => InvocationIdentity | undefined,
): void {
  client.middlewareStack.remove(MIDDLEWARE_NAME);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const who = caller();
      if (who) {
        checkDynamoDbRequest(
          who.functionName,
          who.dynamoDbGrants,
          String(context.commandName),
          args.input,
        );
      }
      return await next(args);
    },
    { step: 'initialize', name: MIDDLEWARE_NAME },
  );
}

/** The shared client's check: requests made inside an invocation must be granted to its function. */
export function scopeToInvocations(client: DynamoDBClient): void {
  holdToGrants(client, () => invocations.getStore());
}
