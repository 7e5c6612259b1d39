/**
 * Operators' credit routes (DESIGN §8.2): `GET /admin/credits/stats?date` from the day's
 * run log, and `POST /admin/credits/refresh {"slots"?, "date"?}`, which runs the planner
 * now for those slots (default: every slot due) and answers `{planned}`.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { creditStoreFromEnv, refreshQueueFromEnv } from './commons/credit-wiring.ts';
import {
  BadRequestError,
  type HttpResponse,
  jsonResponse,
  NotFoundError,
  toHttpErrorResponse,
} from './commons/http.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { operatorRoutesGuard } from './commons/operator-access.ts';
import { logger as sharedLogger } from './commons/powertools.ts';
import { dateParam, parseJsonBody, parseQuery } from './commons/request-params.ts';
import { CREDIT_ROUTES, routePathOf } from './commons/routes.ts';
import { creditStats } from './core/credits/credit-stats.ts';
import { CreditRequestError, planCreditRefresh } from './core/credits/plan-credit-refresh.ts';
import type { CreditRunLog, CreditStore, RefreshQueue } from './core/credits/ports.ts';
import { periodAt, SLOTS_PER_DAY } from './core/credits/refresh-slot.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';

export interface CreditAdminDeps {
  store: CreditStore & CreditRunLog;
  queue: RefreshQueue;
  clock?: Clock;
  logger?: Logger;
}

const slotsParam = () =>
  z
    .array(
      z.int({ message: `must be whole numbers from 0 to ${SLOTS_PER_DAY - 1}` }).check(
        z.gte(0, { message: `must be whole numbers from 0 to ${SLOTS_PER_DAY - 1}` }),
        z.lte(SLOTS_PER_DAY - 1, {
          message: `must be whole numbers from 0 to ${SLOTS_PER_DAY - 1}`,
        }),
      ),
    )
    .check(
      z.minLength(1, { message: 'must list at least one slot' }),
      z.maxLength(SLOTS_PER_DAY, { message: `must list at most ${SLOTS_PER_DAY} slots` }),
    );

function notInFuture(date: string, now: number, field: string): void {
  if (date > periodAt(now)) {
    throw new BadRequestError(`${field} must not be in the future.`, { code: 'invalid_parameter' });
  }
}

/** The admin handler over explicit dependencies (a getter defers building them to the first call). */
export function createCreditAdminHandler(
  deps: CreditAdminDeps | (() => CreditAdminDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const { store, queue, clock = systemClock, logger = sharedLogger } = resolve();
    try {
      const now = clock.now();
      const route = routePathOf(event);
      if (route === CREDIT_ROUTES.stats) {
        const { date = periodAt(now) } = parseQuery(
          event,
          z.object({ date: z.optional(dateParam()) }),
        );
        const [counters, planned] = await Promise.all([
          store.readCounters(date),
          store.plannedSlots(date),
        ]);
        return jsonResponse(200, creditStats(date, counters, now, planned), {
          'cache-control': 'no-store',
        });
      }
      if (route === CREDIT_ROUTES.refresh) {
        parseQuery(event, z.object({}));
        const body = parseJsonBody(
          event,
          z.object({ slots: z.optional(slotsParam()), date: z.optional(dateParam()) }),
        );
        if (body.date) notInFuture(body.date, now, 'date');
        const result = await planCreditRefresh(
          {
            now,
            ...(body.slots ? { slots: body.slots } : {}),
            ...(body.date ? { period: body.date } : {}),
          },
          { store, queue, runLog: store },
        );
        logger.info('Credit refresh run on demand', { planned: result.planned, slots: body.slots });
        return jsonResponse(200, { planned: result.planned });
      }
      throw new NotFoundError();
    } catch (error) {
      if (error instanceof CreditRequestError) {
        return toHttpErrorResponse(
          new BadRequestError(error.message, { code: 'invalid_parameter', cause: error }),
          logger,
        );
      }
      // SQS failing (RefreshEnqueueError.dependencyFailed) is a 503 with Retry-After: slots
      // recorded before it stay planned and queued work stays queued, so a rerun is safe.
      return toHttpErrorResponse(error, logger);
    }
  };
}

export const handler = withPowertools(
  operatorRoutesGuard(
    createCreditAdminHandler(() => ({ store: creditStoreFromEnv(), queue: refreshQueueFromEnv() })),
  ),
);
