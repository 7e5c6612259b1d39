/**
 * The scheduled assessment (EventBridge Scheduler, hourly): assesses yesterday (UTC)
 * unless it is complete, resuming where an earlier run stopped, and first any date a
 * stopped schedule left behind (up to a week, oldest first: assessInOrder); it stops
 * taking pages a minute before the Lambda timeout. Every run emits PenaltyAssessmentOverdue (1 when
 * yesterday is still incomplete at or after the deadline hour, else 0), so the alarm on
 * it also fires when the schedule stops running at all (missing data is breaching).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { assessInOrderMeasured } from './commons/assessment-metrics.ts';
import { assessmentDeadlineHourEnv, lazyEnv } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { penaltyStoreFromEnv } from './commons/penalty-wiring.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import type { AssessmentResult, InOrderAssessment } from './core/penalties/assessment.ts';
import type { PenaltyStore } from './core/penalties/ports.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';

export interface PenaltyAssessorDeps {
  store: PenaltyStore;
  deadlineHour: number;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

/** Stop taking pages when less than this is left of the invocation. */
const STOP_MARGIN_MS = 60_000;

export function yesterdayOf(now: number): string {
  return new Date(now - 86_400_000).toISOString().slice(0, 10);
}

export function createPenaltyAssessor(
  deps: PenaltyAssessorDeps | (() => PenaltyAssessorDeps),
): BaseHandler<unknown, AssessmentResult & { caughtUp: AssessmentResult[] }> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (_event, context: Context) => {
    const {
      store,
      deadlineHour,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    const started = clock.now();
    const date = yesterdayOf(started);
    const remaining = () =>
      typeof context?.getRemainingTimeInMillis === 'function'
        ? context.getRemainingTimeInMillis()
        : Number.POSITIVE_INFINITY;
    let assessed: InOrderAssessment;
    try {
      assessed = await assessInOrderMeasured(
        date,
        { store, clock, shouldStop: () => remaining() < STOP_MARGIN_MS },
        metrics,
      );
    } catch (error) {
      // Judged when it failed: a run that started before the deadline hour and failed
      // after it leaves yesterday incomplete past the deadline.
      metrics.addMetric(
        METRIC.penaltyAssessmentOverdue,
        MetricUnit.Count,
        overdue(false, clock.now(), deadlineHour),
      );
      throw error;
    }
    const { result, caughtUp } = assessed;
    metrics.addMetric(
      METRIC.penaltyAssessmentOverdue,
      MetricUnit.Count,
      overdue(result.complete, clock.now(), deadlineHour),
    );
    if (caughtUp.length > 0) {
      logger.warn('Caught up dates a stopped schedule left behind', {
        dates: caughtUp.map((r) => ({ date: r.date, complete: r.complete })),
      });
    }
    logger.info('Scheduled assessment', { ...result });
    return { ...result, caughtUp };
  };
}

/** 1 when the date is not complete and the UTC hour is at or past the deadline. */
export function overdue(complete: boolean, now: number, deadlineHour: number): number {
  return !complete && new Date(now).getUTCHours() >= deadlineHour ? 1 : 0;
}

const assessorEnv = lazyEnv(
  z.object({ [ENV.assessmentDeadlineHour]: assessmentDeadlineHourEnv() }),
);

export const handler = withPowertools(
  createPenaltyAssessor(() => ({
    store: penaltyStoreFromEnv(),
    deadlineHour: assessorEnv()[ENV.assessmentDeadlineHour],
  })),
);
