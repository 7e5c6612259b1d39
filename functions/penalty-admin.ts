/**
 * The operators' penalties routes (DESIGN §8.3): `POST /admin/penalties/assess {date}`
 * assesses a past date now (resuming whatever an earlier run left; earlier dates a
 * stopped schedule left behind first, in date order; 409 `date_superseded` for a date
 * a later assessment has already passed), and
 * `POST /admin/penalties/mark-paid {penaltyIds, paymentId?}` marks up to 100 penalties
 * paid, idempotently, saying which changed, which were already paid, which are unknown.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { assessInOrderMeasured } from './commons/assessment-metrics.ts';
import { type HttpResponse, jsonResponse, NotFoundError } from './commons/http.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { operatorRoutesGuard } from './commons/operator-access.ts';
import { penaltyErrorResponse } from './commons/penalty-http.ts';
import { penaltyStoreFromEnv } from './commons/penalty-wiring.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import {
  dateParam,
  invalidParameter,
  parseJsonBody,
  parseQuery,
} from './commons/request-params.ts';
import { PENALTY_ROUTES, routePathOf } from './commons/routes.ts';
import { parsePenaltyId } from './core/penalties/penalty-ids.ts';
import { markPenaltiesPaid } from './core/penalties/penalty-payments.ts';
import type { PenaltyStore } from './core/penalties/ports.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';

export interface PenaltyAdminDeps {
  store: PenaltyStore;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

/** Most ids one mark-paid takes (DESIGN §8.3). */
export const MAX_MARK_PAID = 100;
/**
 * An on-demand assessment stops taking pages this long before the API's 30 s
 * integration timeout and answers 202 with the totals so far; the rest resumes on the
 * next call or the hourly schedule.
 */
const ASSESS_BUDGET_MS = 25_000;

const markPaidBody = z.object({
  penaltyIds: z
    .array(
      z.string().check(
        z.refine((id) => parsePenaltyId(id) !== null, {
          message: 'must be a penalty id, pen_<userId>_<habitId>_<YYYY-MM-DD>',
        }),
      ),
    )
    .check(
      z.minLength(1, { message: `must list 1-${MAX_MARK_PAID} penalty ids` }),
      z.maxLength(MAX_MARK_PAID, { message: `must list 1-${MAX_MARK_PAID} penalty ids` }),
    ),
  paymentId: z.optional(
    z
      .string()
      .check(
        z.regex(/^(pi|ch|py)_[A-Za-z0-9]{1,250}$/, { message: 'must be a pi_, ch_ or py_ id' }),
      ),
  ),
});

export function createPenaltyAdminHandler(
  deps: PenaltyAdminDeps | (() => PenaltyAdminDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event, context: Context) => {
    const {
      store,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    try {
      const route = routePathOf(event);
      if (route === PENALTY_ROUTES.assess) {
        parseQuery(event, z.object({}));
        const { date } = parseJsonBody(event, z.object({ date: dateParam() }));
        const today = new Date(clock.now()).toISOString().slice(0, 10);
        if (date >= today)
          throw invalidParameter('date', 'must be a past date (a day that has ended, UTC)');
        const started = clock.now();
        const remaining = () =>
          typeof context?.getRemainingTimeInMillis === 'function'
            ? context.getRemainingTimeInMillis()
            : Number.POSITIVE_INFINITY;
        // In date order, as the schedule: earlier dates left behind first (assessInOrder).
        const { result, caughtUp } = await assessInOrderMeasured(
          date,
          {
            store,
            clock,
            shouldStop: () => clock.now() - started > ASSESS_BUDGET_MS || remaining() < 5_000,
          },
          metrics,
        );
        logger.info('Assessment run on demand', {
          ...result,
          caughtUp: caughtUp.map((each) => ({ date: each.date, complete: each.complete })),
        });
        const { date: assessed, habits, verified, missed, penaltiesCreated } = result;
        // The contract's fields are the date's totals (the same however often it runs);
        // `thisRun` is what this call did, so a re-run shows it created nothing.
        return jsonResponse(result.complete ? 200 : 202, {
          date: assessed,
          habits,
          verified,
          missed,
          penaltiesCreated,
          thisRun: result.thisRun,
        });
      }
      if (route === PENALTY_ROUTES.markPaid) {
        parseQuery(event, z.object({}));
        const body = parseJsonBody(event, markPaidBody);
        const result = await markPenaltiesPaid(body.penaltyIds, body.paymentId ?? null, {
          store,
          clock,
        });
        if (result.changed.length > 0) {
          metrics.addMetric(METRIC.penaltiesPaid, MetricUnit.Count, result.changed.length);
        }
        logger.info('Penalties marked paid', {
          changed: result.changed.length,
          alreadyPaid: result.alreadyPaid.length,
          notFound: result.notFound.length,
        });
        return jsonResponse(200, result);
      }
      throw new NotFoundError();
    } catch (error) {
      return penaltyErrorResponse(error, logger);
    }
  };
}

export const handler = withPowertools(
  operatorRoutesGuard(createPenaltyAdminHandler(() => ({ store: penaltyStoreFromEnv() }))),
);
