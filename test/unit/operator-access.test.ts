/**
 * The operators' routes checked in the function (HTTP APIs have no resource policy):
 * only a session of one of the stack's operator roles gets through to an `/admin/…` or
 * `/reports/…` route; user routes are IAM's alone. Without the list, inside Lambda (a
 * deployment mistake) the operator routes are refused to everyone; outside it (local
 * runtime, tests) nothing is checked.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { jsonResponse } from '../../functions/commons/http.ts';
import {
  callerRoleOf,
  inLambdaFromEnv,
  operatorRoutesGuard,
} from '../../functions/commons/operator-access.ts';
import { operatorRoleOf } from '../../functions/commons/operator-roles.ts';
import { CREDIT_ROUTES, PAYMENT_ROUTES, PENALTY_ROUTES } from '../../functions/commons/routes.ts';
import { httpApiEvent } from '../helpers/apigw-events.ts';

const ACCOUNT = '123456789012';
const ONCALL = `arn:aws:iam::${ACCOUNT}:role/ops/oncall`;
const context = {} as Context;
const quiet = new Logger({ logLevel: 'SILENT' });

/** An event as API Gateway hands it over after verifying the caller's SigV4 (IAM authorizer). */
function signedBy(userArn: string | undefined, method: string, route: string) {
  const event = httpApiEvent({ method, path: route, routeKey: `${method} ${route}` });
  if (userArn === undefined) return event;
  return {
    ...event,
    requestContext: {
      ...event.requestContext,
      authorizer: {
        iam: {
          accessKey: 'ASIAEXAMPLE',
          accountId: userArn.split(':')[4],
          callerId: 'AROAEXAMPLE:session',
          cognitoIdentity: null,
          principalOrgId: null,
          userArn,
          userId: 'AROAEXAMPLE:session',
        },
      },
    },
  } as APIGatewayProxyEventV2;
}

function guarded(roles: string[]) {
  const inner = vi.fn(async () => jsonResponse(200, { ok: true }));
  const handler = operatorRoutesGuard(inner, () => roles.map(operatorRoleOf), quiet);
  return { inner, handler };
}

/** The operators-only answer, and nothing of the route's own. */
function expectForbidden(answer: { statusCode: number; body: string }, route: string): void {
  expect(answer.statusCode, route).toBe(403);
  expect(JSON.parse(answer.body)).toEqual({
    error: { code: 'forbidden', message: 'This route is for operators only.' },
  });
}

/** As `guarded`, in or out of Lambda as told, with the logger's errors recorded. */
function guardedWhere(roles: string[], inLambda: boolean) {
  const inner = vi.fn(async () => jsonResponse(200, { ok: true }));
  const logger = new Logger({ logLevel: 'SILENT' });
  const error = vi.spyOn(logger, 'error');
  const handler = operatorRoutesGuard(
    inner,
    () => roles.map(operatorRoleOf),
    logger,
    () => inLambda,
  );
  return { inner, handler, error };
}

describe('operator roles', () => {
  it('reads a role ARN, with or without a path, as its account and name', () => {
    expect(operatorRoleOf(ONCALL)).toEqual({ account: ACCOUNT, name: 'oncall' });
    expect(operatorRoleOf(`arn:aws:iam::${ACCOUNT}:role/ops`)).toEqual({
      account: ACCOUNT,
      name: 'ops',
    });
    expect(operatorRoleOf(`arn:aws-us-gov:iam::${ACCOUNT}:role/a/b/c`).name).toBe('c');
    for (const bad of [`arn:aws:iam::${ACCOUNT}:user/ops`, 'ops', `arn:aws:iam::1:role/x`]) {
      expect(() => operatorRoleOf(bad), bad).toThrow(/not an IAM role ARN/);
    }
  });

  it('finds the caller role in a session ARN, and nothing in a user or an unsigned request', () => {
    const route = PENALTY_ROUTES.assess;
    expect(
      callerRoleOf(signedBy(`arn:aws:sts::${ACCOUNT}:assumed-role/oncall/alice`, 'POST', route)),
    ).toEqual({ account: ACCOUNT, name: 'oncall' });
    expect(
      callerRoleOf(signedBy(`arn:aws:iam::${ACCOUNT}:user/alice`, 'POST', route)),
    ).toBeUndefined();
    expect(callerRoleOf(signedBy(undefined, 'POST', route))).toBeUndefined();
  });
});

describe('operatorRoutesGuard', () => {
  const operatorRoutes: [string, string][] = [
    ['POST', PENALTY_ROUTES.assess],
    ['POST', PENALTY_ROUTES.markPaid],
    ['GET', CREDIT_ROUTES.stats],
    ['POST', CREDIT_ROUTES.refresh],
    ['GET', PAYMENT_ROUTES.refundsReport],
    ['GET', PAYMENT_ROUTES.paymentsReport],
    ['GET', PAYMENT_ROUTES.dailySummary],
  ];

  it.each(operatorRoutes)('lets a session of an operator role through to %s %s', async (m, r) => {
    const { inner, handler } = guarded([ONCALL]);
    const answer = await handler(
      signedBy(`arn:aws:sts::${ACCOUNT}:assumed-role/oncall/alice`, m, r),
      context,
    );
    expect(answer.statusCode).toBe(200);
    expect(inner).toHaveBeenCalledOnce();
  });

  it.each([
    ['another role of the account', `arn:aws:sts::${ACCOUNT}:assumed-role/app-backend/s`],
    ['a role of that name in another account', 'arn:aws:sts::210987654321:assumed-role/oncall/s'],
    ['an IAM user', `arn:aws:iam::${ACCOUNT}:user/oncall`],
    ['the account root', `arn:aws:iam::${ACCOUNT}:root`],
    ['nobody named (no IAM context)', undefined],
  ])('refuses %s with 403, and the route never runs', async (_label, userArn) => {
    const { inner, handler } = guarded([ONCALL, `arn:aws:iam::${ACCOUNT}:role/audit`]);
    for (const [method, route] of operatorRoutes) {
      expectForbidden(await handler(signedBy(userArn, method, route), context), route);
    }
    expect(inner).not.toHaveBeenCalled();
  });

  it("leaves the app backend's routes to IAM", async () => {
    const { inner, handler } = guarded([ONCALL]);
    for (const route of [PAYMENT_ROUTES.payment, PAYMENT_ROUTES.userPayments]) {
      const answer = await handler(
        signedBy(`arn:aws:sts::${ACCOUNT}:assumed-role/app-backend/s`, 'GET', route),
        context,
      );
      expect(answer.statusCode, route).toBe(200);
    }
    expect(inner).toHaveBeenCalledTimes(2);
  });

  it('refuses the operator routes to everyone in Lambda when the stack names no operator role, logging an error', async () => {
    const { inner, handler, error } = guardedWhere([], true);
    for (const userArn of [`arn:aws:sts::${ACCOUNT}:assumed-role/oncall/s`, undefined]) {
      for (const [method, route] of operatorRoutes) {
        expectForbidden(await handler(signedBy(userArn, method, route), context), route);
      }
    }
    expect(inner).not.toHaveBeenCalled();
    expect(error).toHaveBeenCalledTimes(operatorRoutes.length * 2);
    expect(String(error.mock.calls[0]![0])).toMatch(/OPERATOR_ROLE_ARNS is missing/);
    // The app backend's routes are still IAM's alone.
    const answer = await handler(
      signedBy(`arn:aws:sts::${ACCOUNT}:assumed-role/app-backend/s`, 'GET', PAYMENT_ROUTES.payment),
      context,
    );
    expect(answer.statusCode).toBe(200);
    expect(inner).toHaveBeenCalledOnce();
  });

  it('checks nothing outside Lambda (local runtime, tests) when the stack names no operator role', async () => {
    const { inner, handler, error } = guardedWhere([], false);
    for (const [method, route] of operatorRoutes) {
      const answer = await handler(
        signedBy(`arn:aws:sts::${ACCOUNT}:assumed-role/anyone/s`, method, route),
        context,
      );
      expect(answer.statusCode, route).toBe(200);
    }
    expect(inner).toHaveBeenCalledTimes(operatorRoutes.length);
    expect(error).not.toHaveBeenCalled();
  });

  it('holds callers to the roles in Lambda as elsewhere when there are some', async () => {
    const { inner, handler, error } = guardedWhere([ONCALL], true);
    const route = PENALTY_ROUTES.assess;
    const ok = await handler(
      signedBy(`arn:aws:sts::${ACCOUNT}:assumed-role/oncall/alice`, 'POST', route),
      context,
    );
    expect(ok.statusCode).toBe(200);
    const refused = await handler(
      signedBy(`arn:aws:sts::${ACCOUNT}:assumed-role/anyone/s`, 'POST', route),
      context,
    );
    expect(refused.statusCode).toBe(403);
    expect(inner).toHaveBeenCalledOnce();
    expect(error).not.toHaveBeenCalled();
  });
});

describe('inLambdaFromEnv', () => {
  it.each<[string, Record<string, string | undefined>, boolean]>([
    ['the Lambda Node.js runtime', { AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' }, true],
    ['no AWS_EXECUTION_ENV (local runtime, tests)', {}, false],
    ['an empty AWS_EXECUTION_ENV', { AWS_EXECUTION_ENV: '' }, false],
  ])('%s: %s', (_label, env, expected) => {
    expect(inLambdaFromEnv(env)).toBe(expected);
  });
});
