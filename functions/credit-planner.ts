/**
 * The credit refresh planner, fired by EventBridge Scheduler every five minutes with
 * the time it was scheduled for. Plans the due slots (catching up any missed ones)
 * with `planCreditRefresh`, and reports how many users it enqueued and how late each
 * slot was planned.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { creditStoreFromEnv, refreshQueueFromEnv } from './commons/credit-wiring.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import { planCreditRefresh, slotLagMinutes } from './core/credits/plan-credit-refresh.ts';
import type { CreditRunLog, CreditStore, RefreshQueue } from './core/credits/ports.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';

/** What the schedule sends: `{"scheduledTime": "<aws.scheduler.scheduled-time>"}`. */
export interface PlannerEvent {
  scheduledTime?: string;
}

export interface CreditPlannerDeps {
  store: CreditStore & CreditRunLog;
  queue: RefreshQueue;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

/** The planner over explicit dependencies (a getter defers building them to the first call). */
export function createCreditPlanner(
  deps: CreditPlannerDeps | (() => CreditPlannerDeps),
): BaseHandler<PlannerEvent, { planned: number }> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const {
      store,
      queue,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    // Plan for the time the run was scheduled: a retried or late invocation still plans
    // its own slot, and the local runtime's fast clock drives whole days in minutes.
    const scheduled = Date.parse(event?.scheduledTime ?? '');
    const now = Number.isFinite(scheduled) ? scheduled : clock.now();
    const result = await planCreditRefresh({ now }, { store, queue, runLog: store });
    metrics.addMetric(METRIC.creditsPlanned, MetricUnit.Count, result.planned);
    // Published by successful runs only: the alarm treats its absence as breaching.
    metrics.addMetric(METRIC.creditSlotLag, MetricUnit.Count, slotLagMinutes(now, result.slots));
    logger.info('Credit refresh planned', {
      scheduledTime: new Date(now).toISOString(),
      planned: result.planned,
      slots: result.slots.map(({ period, slot, planned }) => `${period}#${slot}:${planned}`),
    });
    return { planned: result.planned };
  };
}

export const handler = withPowertools(
  createCreditPlanner(() => ({ store: creditStoreFromEnv(), queue: refreshQueueFromEnv() })),
);
