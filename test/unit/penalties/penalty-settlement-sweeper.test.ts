/**
 * The scheduled settlement sweeper (functions/penalty-settlement-sweeper.ts): the sweep's
 * counts as its answer, its metrics, one log line per run, and its stop before the
 * Lambda timeout.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { METRIC } from '../../../functions/commons/metric-names.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import { PaymentGatewayUnavailableError } from '../../../functions/core/penalties/ports.ts';
import {
  ABANDONED_SETTLEMENT_AFTER_MS,
  settlePenalties,
} from '../../../functions/core/penalties/settlement.ts';
import { createPenaltySettlementSweeper } from '../../../functions/penalty-settlement-sweeper.ts';
import { addHabit, at, FakeGateway, fixedClock, noPause } from './penalty-fixtures.ts';

const plenty = { getRemainingTimeInMillis: () => 300_000 } as Context;

/** `ann` and `bob` each settled one missed day an hour and more ago, and closed the payment sheet. */
async function world() {
  const store = new InMemoryPenaltyStore();
  const clock = fixedClock(at('2026-11-02', '00:20:00'));
  for (const user of ['ann', 'bob']) {
    await addHabit(store, user, 'run', '2026-10-01', { recipientId: 'charity' });
  }
  await assessDate('2026-11-01', { store, clock, pause: noPause });
  const gateway = new FakeGateway();
  for (const user of ['ann', 'bob']) {
    clock.time += 60_000;
    await settlePenalties(user, { store, gateway, clock, pause: noPause });
  }
  clock.time += ABANDONED_SETTLEMENT_AFTER_MS + 60_000;
  const logger = new Logger({ logLevel: 'SILENT' });
  const metrics = new Metrics({ namespace: 'Test', serviceName: 'test' });
  const info = vi.spyOn(logger, 'info');
  const warn = vi.spyOn(logger, 'warn');
  const addMetric = vi.spyOn(metrics, 'addMetric');
  const sweeper = createPenaltySettlementSweeper({ store, gateway, clock, logger, metrics });
  const metric = (name: string) =>
    addMetric.mock.calls.filter(([metricName]) => metricName === name).map((call) => call.slice(1));
  return { store, gateway, sweeper, info, warn, metric };
}

describe('the scheduled settlement sweeper', () => {
  it('releases the abandoned settlements, counts them in its metrics and logs one line', async () => {
    const { store, sweeper, info, warn, metric } = await world();
    const result = await sweeper({ scheduledTime: '2026-11-02T01:45:00Z' }, plenty);
    expect(result).toEqual({
      released: 2,
      paid: 0,
      stillOpen: 0,
      failed: 0,
      skipped: 0,
      penaltiesPaid: 0,
      stoppedBy: null,
    });
    expect(metric(METRIC.penaltySettlementsReleased)).toEqual([[MetricUnit.Count, 2]]);
    expect(metric(METRIC.penaltySettlementReleaseFailures)).toEqual([[MetricUnit.Count, 0]]);
    expect(metric(METRIC.penaltiesPaid)).toEqual([[MetricUnit.Count, 0]]);
    expect(info).toHaveBeenCalledTimes(1);
    expect(info).toHaveBeenCalledWith('Settlement sweep', result);
    expect(warn).not.toHaveBeenCalled();
    expect(await store.getAccount('ann')).toMatchObject({ unpaidCount: 1, pending: null });
  });

  it('counts the penalties a release paid, when Stripe says the PaymentIntent succeeded', async () => {
    const { gateway, sweeper, metric } = await world();
    gateway.cancelAnswer = 'succeeded';
    expect(await sweeper({}, plenty)).toMatchObject({ paid: 2, penaltiesPaid: 2 });
    expect(metric(METRIC.penaltySettlementsReleased)).toEqual([[MetricUnit.Count, 2]]);
    expect(metric(METRIC.penaltiesPaid)).toEqual([[MetricUnit.Count, 2]]);
  });

  it('answers and warns with the failure when Stripe is unavailable, never throwing (the next hour retries)', async () => {
    const { store, gateway, sweeper, info, warn, metric } = await world();
    gateway.failWith = new PaymentGatewayUnavailableError('Stripe is unavailable');
    const result = await sweeper({}, plenty);
    expect(result).toMatchObject({ released: 0, failed: 1, stoppedBy: 'stripe-unavailable' });
    expect(metric(METRIC.penaltySettlementReleaseFailures)).toEqual([[MetricUnit.Count, 1]]);
    expect(info).not.toHaveBeenCalled();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith('Settlement sweep', {
      ...result,
      failures: [
        {
          userId: 'ann',
          error: 'PaymentGatewayUnavailableError',
          message: 'Stripe is unavailable',
        },
      ],
    });
    expect((await store.getAccount('bob'))?.pending).not.toBeNull();
  });

  it('takes no user with less than a minute of the invocation left', async () => {
    const { gateway, sweeper, metric } = await world();
    const result = await sweeper({}, {
      getRemainingTimeInMillis: () => 59_000,
    } as Context);
    expect(result).toMatchObject({ released: 0, failed: 0, stoppedBy: 'time' });
    expect(gateway.cancels).toEqual([]);
    expect(metric(METRIC.penaltySettlementsReleased)).toEqual([[MetricUnit.Count, 0]]);
  });
});
