/**
 * The operators' routes (`/admin/…`, `/reports/…`) checked in the function too. An HTTP
 * API has no resource policy, so IAM lets through any principal of the account whose
 * own policies allow `execute-api:Invoke` on the route, not only the operator roles the
 * stack grants it to. A deployed stack always names its operator roles to the functions
 * serving operator routes (OPERATOR_ROLE_ARNS, never empty: the `operatorRoleArns`
 * context's roles, else the stack's own OperatorRole; lib/api-access.ts), which answer
 * 403 unless API Gateway verified the caller as a session of one of them. Without the
 * list, inside Lambda (AWS_EXECUTION_ENV set) operator routes are refused too: that is a
 * deployment mistake, never a reason to let everyone in. Outside Lambda the check is
 * off: locally, where there is no IAM and the runtime drops the variable
 * (local/runtime.ts), and in tests.
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

/** The operator roles the stack named; none: refused in Lambda, no check elsewhere. */
export function operatorRolesFromEnv(): OperatorRole[] {
  return operatorEnv()[ENV.operatorRoleArns] ?? [];
}

/**
 * Whether this runs inside AWS Lambda: its runtime sets AWS_EXECUTION_ENV
 * (`AWS_Lambda_nodejs22.x`); the local runtime and the tests do not.
 */
export function inLambdaFromEnv(env: Record<string, string | undefined> = process.env): boolean {
  return (env.AWS_EXECUTION_ENV ?? '') !== '';
}

const forbidden = () => new HttpError(403, 'forbidden', 'This route is for operators only.');

/**
 * `handler` with the operators' routes refused (403 `forbidden`) to any caller but a
 * session of one of `roles()`. With no roles: refused to everyone when `inLambda()`
 * (the stack always names them, so their absence is a deployment mistake), no check
 * otherwise (local runtime, tests). Other routes pass as they are.
 */
export function operatorRoutesGuard(
  handler: BaseHandler<APIGatewayProxyEventV2, HttpResponse>,
  roles: () => readonly OperatorRole[] = operatorRolesFromEnv,
  logger = sharedLogger,
  inLambda: () => boolean = inLambdaFromEnv,
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  return async (event, context) => {
    const path = routePathOf(event) ?? '';
    const operatorRoute = isOperatorRoute(path);
    const allowed = operatorRoute ? roles() : [];
    if (operatorRoute && allowed.length === 0 && inLambda()) {
      logger.error(
        `${ENV.operatorRoleArns} is missing or empty on a function serving operator routes: refusing every caller (deploy the stack again, lib/api-access.ts sets it)`,
        { route: event.routeKey, executionEnv: process.env.AWS_EXECUTION_ENV },
      );
      return toHttpErrorResponse(forbidden(), logger);
    }
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
        return toHttpErrorResponse(forbidden(), logger);
      }
    }
    return await handler(event, context);
  };
}
