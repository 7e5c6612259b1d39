/**
 * `GET /users/{userId}/credits`: the user's balance, allowance, tier, period, refresh
 * slot and next refresh time, from one key lookup of the profile.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { creditStoreFromEnv } from './commons/credit-wiring.ts';
import {
  type HttpResponse,
  jsonResponse,
  MethodNotAllowedError,
  NotFoundError,
  toHttpErrorResponse,
} from './commons/http.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { logger as sharedLogger } from './commons/powertools.ts';
import { parseParams, parseQuery, userIdParam } from './commons/request-params.ts';
import { creditAccountView } from './core/credits/credit-stats.ts';
import type { CreditStore } from './core/credits/ports.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';

export interface CreditReadDeps {
  store: Pick<CreditStore, 'getAccount'>;
  clock?: Clock;
  logger?: Logger;
}

/** The read handler over explicit dependencies (a getter defers building them to the first call). */
export function createCreditReadHandler(
  deps: CreditReadDeps | (() => CreditReadDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const { store, clock = systemClock, logger = sharedLogger } = resolve();
    try {
      if (event.requestContext?.http?.method?.toUpperCase() !== 'GET') {
        throw new MethodNotAllowedError(['GET']);
      }
      parseQuery(event, z.object({}));
      const { userId } = parseParams(
        z.object({ userId: userIdParam() }),
        event.pathParameters ?? {},
      );
      const account = await store.getAccount(userId);
      if (!account) {
        throw new NotFoundError(`No credits are known for user ${userId}.`, {
          code: 'user_not_found',
        });
      }
      return jsonResponse(200, creditAccountView(account, clock.now()), {
        'cache-control': 'no-store',
      });
    } catch (error) {
      return toHttpErrorResponse(error, logger);
    }
  };
}

export const handler = withPowertools(
  createCreditReadHandler(() => ({ store: creditStoreFromEnv() })),
);
