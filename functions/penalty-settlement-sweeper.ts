/**
 * The scheduled sweep of abandoned settlements (EventBridge Scheduler, hourly): releases
 * the settlement locks older than an hour, whose payment sheet was closed and whose
 * PaymentIntent will never send a webhook (core/penalties/settlement-sweep.ts). It stops
 * taking users a minute before the Lambda timeout, and when Stripe is unavailable; the
 * next hourly run takes the rest. Failures are counted and logged, never thrown: a retry
 * minutes later would meet the same Stripe, and the next run retries anyway.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { penaltyStoreFromEnv } from './commons/penalty-wiring.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import { stripePenaltyGatewayFromEnv } from './commons/stripe-wiring.ts';
import type { PenaltyPaymentGateway, PenaltyStore } from './core/penalties/ports.ts';
import { type SweepResult, sweepAbandonedSettlements } from './core/penalties/settlement-sweep.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';

export interface PenaltySettlementSweeperDeps {
  store: PenaltyStore;
  gateway: PenaltyPaymentGateway;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
  /** Most users one run looks at (tests). */
  maxUsers?: number;
}

/** What a run answers (and logs): the sweep's counts and why it stopped early, if it did. */
export type SweepSummary = Omit<SweepResult, 'errors'>;

/** Stop taking users when less than this is left of the invocation (one release can wait out Stripe's deadline). */
const STOP_MARGIN_MS = 60_000;
/** Failures named in the run's log line; the count says how many there were. */
const LOGGED_FAILURES = 5;

export function createPenaltySettlementSweeper(
  deps: PenaltySettlementSweeperDeps | (() => PenaltySettlementSweeperDeps),
): BaseHandler<unknown, SweepSummary> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (_event, context: Context) => {
    const {
      store,
      gateway,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
      maxUsers,
    } = resolve();
    const remaining = () =>
      typeof context?.getRemainingTimeInMillis === 'function'
        ? context.getRemainingTimeInMillis()
        : Number.POSITIVE_INFINITY;
    const { errors, ...summary } = await sweepAbandonedSettlements({
      store,
      gateway,
      clock,
      ...(maxUsers === undefined ? {} : { maxUsers }),
      shouldStop: () => remaining() < STOP_MARGIN_MS,
    });
    metrics.addMetric(
      METRIC.penaltySettlementsReleased,
      MetricUnit.Count,
      summary.released + summary.paid,
    );
    metrics.addMetric(METRIC.penaltySettlementReleaseFailures, MetricUnit.Count, summary.failed);
    metrics.addMetric(METRIC.penaltiesPaid, MetricUnit.Count, summary.penaltiesPaid);
    if (errors.length > 0) {
      logger.warn('Settlement sweep', {
        ...summary,
        failures: errors.slice(0, LOGGED_FAILURES).map(({ userId, error }) => ({
          userId,
          error: error.name,
          message: error.message,
        })),
      });
    } else {
      logger.info('Settlement sweep', { ...summary });
    }
    return summary;
  };
}

export const handler = withPowertools(
  createPenaltySettlementSweeper(() => ({
    store: penaltyStoreFromEnv(),
    gateway: stripePenaltyGatewayFromEnv(),
  })),
);
