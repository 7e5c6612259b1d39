/**
 * The operators' routes (`/admin/…`, `/reports/…`) checked in the function too. An HTTP
 * API has no resource policy, so IAM lets through any principal of the account whose
 * own policies allow `execute-api:Invoke` on the route, not only the operator roles the
 * stack grants it to. A deployed stack always names its operator roles to the functions
 * serving operator routes (OPERATOR_ROLE_ARNS: its own OperatorRole and any from the
 * `operatorRoleArns` context, lib/api-access.ts), which answer 403 unless API Gateway
 * verified the caller as a session of one of them. Without the variable the check is
 * off: only locally, where there is no IAM and the runtime drops it (local/runtime.ts).
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { lazyEnv } from './env.ts';
import { ENV } from './env-names.ts';
import { HttpError, type HttpResponse, toHttpErrorResponse } from './http.ts';
import type { BaseHandler } from './middleware.ts';
import { type OperatorRole, operatorRoleOf } from './operator-roles.ts';
import { logger as sharedLogger } from './powertools.ts';
import { isOperatorRoute, routePathOf } from './routes.ts';

const SESSION_ARN = /^arn:aws[a-z-]*:sts::(\d{12}):assumed-role\/([\w+=,.@-]{1,64})\/[^/]+$/;

/** The role whose session made the request, from what the IAM authorizer verified; else undefined. */
export function callerRoleOf(event: APIGatewayProxyEventV2): OperatorRole | undefined {
  const context = event.requestContext as { authorizer?: { iam?: { userArn?: unknown } } };
  const userArn = context.authorizer?.iam?.userArn;
  if (typeof userArn !== 'string') return undefined;
  const match = SESSION_ARN.exec(userArn);
  return match ? { account: match[1]!, name: match[2]! } : undefined;
}

const operatorEnv = lazyEnv(
  z.object({
    [ENV.operatorRoleArns]: z.optional(
      z.pipe(
        z.string(),
        z.transform((value, ctx) => {
          try {
            const arns: unknown = JSON.parse(value);
            if (!Array.isArray(arns)) throw new Error('not a JSON array');
            return arns.map((arn) => operatorRoleOf(String(arn)));
          } catch (error) {
            ctx.issues.push({
              code: 'custom',
              input: value,
              message: `must be a JSON array of IAM role ARNs (${(error as Error).message})`,
            });
            return z.NEVER;
          }
        }),
      ),
    ),
  }),
);

/** The operator roles the stack named; none (local runtime only): the check is off. */
export function operatorRolesFromEnv(): OperatorRole[] {
  return operatorEnv()[ENV.operatorRoleArns] ?? [];
}

/**
 * `handler` with the operators' routes refused (403 `forbidden`) to any caller but a
 * session of one of `roles()`, when there are any. Other routes pass as they are.
 */
export function operatorRoutesGuard(
  handler: BaseHandler<APIGatewayProxyEventV2, HttpResponse>,
  roles: () => readonly OperatorRole[] = operatorRolesFromEnv,
  logger = sharedLogger,
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  return async (event, context) => {
    const path = routePathOf(event) ?? '';
    const allowed = isOperatorRoute(path) ? roles() : [];
    if (allowed.length > 0) {
      const caller = callerRoleOf(event);
      const isOperator = allowed.some(
        (role) => role.account === caller?.account && role.name === caller?.name,
      );
      if (!isOperator) {
        logger.warn('Operator route refused to a caller that is not an operator role', {
          route: event.routeKey,
          caller: caller ? `${caller.account}/${caller.name}` : 'not an assumed role',
        });
        return toHttpErrorResponse(
          new HttpError(403, 'forbidden', 'This route is for operators only.'),
          logger,
        );
      }
    }
    return await handler(event, context);
  };
}
