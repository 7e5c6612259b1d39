/**
 * The values the penalty assessment's handlers emit (test/infra/penalties.test.ts only
 * checks that the names appear in their source): the scheduled assessor's
 * PenaltiesCreated / PenaltyHabitsAssessed (this run's counts, over every date it
 * assessed, never the date's cumulative totals), PenaltyAssessmentDuration and
 * PenaltyAssessmentOverdue (success and error paths); the admin route's assessment
 * metrics and mark-paid's PenaltiesPaid. A real Powertools `Metrics` records the calls
 * through `vi.spyOn(metrics, 'addMetric')` (calling through, so its own unit checks run).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { METRIC } from '../../../functions/commons/metric-names.ts';
import { PENALTY_ROUTES } from '../../../functions/commons/routes.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import type {
  AssessmentCommit,
  AssessmentCommitResult,
  ShardProgress,
} from '../../../functions/core/penalties/ports.ts';
import { createPenaltyAdminHandler } from '../../../functions/penalty-admin.ts';
import { createPenaltyAssessor } from '../../../functions/penalty-assessor.ts';
import { httpApiEvent } from '../../helpers/apigw-events.ts';
import { addHabit, at, fixedClock } from './penalty-fixtures.ts';

/** Non-free habits (one penalty each when missed) spread over the 16 shards, and one free one. */
const USERS = 40;
const DEADLINE_HOUR = 6;
const YESTERDAY = '2026-12-01';
const roomy = { getRemainingTimeInMillis: () => 600_000 } as Context;

/** A context with plenty of time for the first `calls` questions, then `low` ms. */
function runningOutAfter(calls: number, low: number): Context {
  let asked = 0;
  return { getRemainingTimeInMillis: () => (asked++ < calls ? 600_000 : low) } as Context;
}

/**
 * The in-memory store, with hooks: each committed slice takes `commitMs` of the clock
 * (so a duration is exact), and a read or a commit can be made to throw.
 */
class HookedStore extends InMemoryPenaltyStore {
  readonly #clock: { time: number };
  constructor(clock: { time: number }) {
    super();
    this.#clock = clock;
  }
  commitMs = 0;
  /** Throw on every readAssessment. */
  failReads: Error | null = null;
  /** Throw on commits after this many have gone through. */
  failCommitsAfter: { commits: number; error: Error } | null = null;
  #committed = 0;

  override async readAssessment(date: string): Promise<ShardProgress[]> {
    if (this.failReads) throw this.failReads;
    return super.readAssessment(date);
  }

  override async commitAssessment(commit: AssessmentCommit): Promise<AssessmentCommitResult> {
    if (this.failCommitsAfter && this.#committed >= this.failCommitsAfter.commits)
      throw this.failCommitsAfter.error;
    this.#clock.time += this.commitMs;
    this.#committed += 1;
    return super.commitAssessment(commit);
  }
}

async function world(now = at('2026-12-02', '07:15:00')) {
  const clock = fixedClock(now);
  const store = new HookedStore(clock);
  for (let user = 0; user < USERS; user++)
    await addHabit(store, `user${String(user).padStart(2, '0')}`, 'run', '2026-11-01');
  await addHabit(store, 'freebie', 'read', '2026-11-01', { free: true, penaltyAmount: 0 });
  return { store, clock };
}

/** A real Metrics whose addMetric calls are recorded as [name, unit, value]. */
function observedMetrics() {
  const metrics = new Metrics({ namespace: 'Test', serviceName: 'test' });
  const addMetric = vi.spyOn(metrics, 'addMetric');
  const emitted = () => addMetric.mock.calls.map(([name, unit, value]) => [name, unit, value]);
  /** The one value emitted under `name` (fails when it was emitted no time or twice). */
  const emittedValue = (name: string) => {
    const values = addMetric.mock.calls.filter(([each]) => each === name).map(([, , v]) => v);
    expect(values, name).toHaveLength(1);
    return values[0];
  };
  return { metrics, emitted, emittedValue, reset: () => addMetric.mockClear() };
}

const logger = new Logger({ logLevel: 'SILENT' });
/** Lets the shard workers a failed run left in flight finish (their commits throw too). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function assessorOf(store: InMemoryPenaltyStore, clock: { now(): number }) {
  const observed = observedMetrics();
  const assessor = createPenaltyAssessor({
    store,
    clock,
    deadlineHour: DEADLINE_HOUR,
    logger,
    metrics: observed.metrics,
  });
  return { assessor, ...observed };
}

describe('the scheduled assessor’s metrics', () => {
  it('emits exactly this run’s counts, the duration, and overdue 0 for a complete run', async () => {
    const { store, clock } = await world();
    store.commitMs = 1_000;
    const started = clock.time;
    const { assessor, emitted } = assessorOf(store, clock);
    const result = await assessor({}, roomy);
    expect(result).toMatchObject({ date: YESTERDAY, complete: true, penaltiesCreated: USERS });
    expect(store.penalties.size).toBe(USERS);
    // Every shard committed at least once, each commit taking 1 s of the clock.
    expect(store.commits).toBeGreaterThanOrEqual(16);
    expect(clock.time - started).toBe(store.commits * 1_000);
    expect(emitted()).toEqual([
      [METRIC.penaltiesCreated, MetricUnit.Count, USERS],
      [METRIC.penaltyHabitsAssessed, MetricUnit.Count, USERS + 1],
      [METRIC.penaltyAssessmentDuration, MetricUnit.Milliseconds, store.commits * 1_000],
      [METRIC.penaltyAssessmentOverdue, MetricUnit.Count, 0],
    ]);
  });

  it('emits 0 created on a second run of the same date, though the date’s total stays N', async () => {
    const { store, clock } = await world();
    await assessorOf(store, clock).assessor({}, roomy);
    const { assessor, emitted } = assessorOf(store, clock);
    const again = await assessor({}, roomy);
    expect(again).toMatchObject({ complete: true, penaltiesCreated: USERS });
    expect(emitted()).toEqual([
      [METRIC.penaltiesCreated, MetricUnit.Count, 0],
      [METRIC.penaltyHabitsAssessed, MetricUnit.Count, 0],
      [METRIC.penaltyAssessmentDuration, MetricUnit.Milliseconds, 0],
      [METRIC.penaltyAssessmentOverdue, MetricUnit.Count, 0],
    ]);
  });

  it('splits created over the runs that did the work: a stopped run emits its part, the resuming run the rest', async () => {
    const { store, clock } = await world();
    const first = assessorOf(store, clock);
    // Time for 5 shards only (the assessor stops under 60 s left): the run stops incomplete.
    const stopped = await first.assessor({}, runningOutAfter(5, 59_999));
    expect(stopped.complete).toBe(false);
    const createdFirst = store.penalties.size;
    expect(createdFirst).toBeGreaterThan(0);
    expect(createdFirst).toBeLessThan(USERS);
    expect(first.emittedValue(METRIC.penaltiesCreated)).toBe(createdFirst);
    expect(first.emittedValue(METRIC.penaltyAssessmentOverdue)).toBe(1); // incomplete at 07:15, deadline 06

    const second = assessorOf(store, clock);
    const resumed = await second.assessor({}, roomy);
    expect(resumed).toMatchObject({ complete: true, penaltiesCreated: USERS });
    // This run's count, not the date's cumulative total (which is USERS).
    expect(second.emittedValue(METRIC.penaltiesCreated)).toBe(USERS - createdFirst);
    expect(second.emittedValue(METRIC.penaltyAssessmentOverdue)).toBe(0);
  });

  it('counts the dates it caught up in created, not only yesterday', async () => {
    const { store, clock } = await world();
    await assessDate('2026-11-27', { store, clock });
    const { assessor, emittedValue } = assessorOf(store, clock);
    const result = await assessor({}, roomy);
    expect(result.caughtUp.map((day) => day.date)).toEqual([
      '2026-11-28',
      '2026-11-29',
      '2026-11-30',
    ]);
    // Yesterday alone created USERS; the run created 4 days' worth.
    expect(result.thisRun.penaltiesCreated).toBe(USERS);
    expect(emittedValue(METRIC.penaltiesCreated)).toBe(4 * USERS);
    expect(emittedValue(METRIC.penaltyHabitsAssessed)).toBe(4 * (USERS + 1));
  });

  it.each([
    ['05:59:59', 'incomplete before the deadline hour', 0],
    ['06:00:00', 'incomplete at the deadline hour', 1],
    ['23:59:59', 'incomplete late in the day', 1],
  ])('overdue at %s (%s) is %i', async (time, _what, expected) => {
    const { store, clock } = await world(at('2026-12-02', time));
    const { assessor, emittedValue } = assessorOf(store, clock);
    // No time left at all: nothing assessed.
    const result = await assessor({}, runningOutAfter(0, 0));
    expect(result.complete).toBe(false);
    expect(store.penalties.size).toBe(0);
    expect(emittedValue(METRIC.penaltiesCreated)).toBe(0);
    expect(emittedValue(METRIC.penaltyAssessmentOverdue)).toBe(expected);
  });

  it('emits overdue 0 for a complete run however late', async () => {
    const { store, clock } = await world(at('2026-12-02', '23:59:59'));
    const { assessor, emittedValue } = assessorOf(store, clock);
    expect((await assessor({}, roomy)).complete).toBe(true);
    expect(emittedValue(METRIC.penaltyAssessmentOverdue)).toBe(0);
  });

  it('judges overdue by the time the run ends on success: incomplete past the hour by then is 1', async () => {
    // Starts 10 s before the deadline hour; 5 commits of 3 s each end it past 06:00.
    const { store, clock } = await world(at('2026-12-02', '05:59:50'));
    store.commitMs = 3_000;
    const { assessor, emittedValue } = assessorOf(store, clock);
    const result = await assessor({}, runningOutAfter(5, 0));
    expect(result.complete).toBe(false);
    expect(new Date(clock.time).toISOString()).toBe('2026-12-02T06:00:05.000Z');
    expect(emittedValue(METRIC.penaltyAssessmentDuration)).toBe(15_000);
    expect(emittedValue(METRIC.penaltyAssessmentOverdue)).toBe(1);
  });

  describe('when the assessment throws', () => {
    it.each([
      ['07:15:00', 1],
      ['05:15:00', 0],
    ])('at %s emits overdue %i and nothing else, and rethrows', async (time, expected) => {
      const { store, clock } = await world(at('2026-12-02', time));
      const boom = new Error('table unavailable');
      store.failReads = boom;
      const { assessor, emitted } = assessorOf(store, clock);
      await expect(assessor({}, roomy)).rejects.toBe(boom);
      expect(emitted()).toEqual([[METRIC.penaltyAssessmentOverdue, MetricUnit.Count, expected]]);
    });

    it('emits overdue 1 past the deadline even when yesterday was already complete (the error is taken as incomplete)', async () => {
      const { store, clock } = await world();
      await assessorOf(store, clock).assessor({}, roomy);
      store.failReads = new Error('table unavailable');
      const { assessor, emitted } = assessorOf(store, clock);
      await expect(assessor({}, roomy)).rejects.toThrow('table unavailable');
      expect(emitted()).toEqual([[METRIC.penaltyAssessmentOverdue, MetricUnit.Count, 1]]);
    });

    it('emits PenaltiesCreated for the slices committed before a commit threw, and the resuming run counts only its own', async () => {
      const { store, clock } = await world();
      store.failCommitsAfter = { commits: 3, error: new Error('transaction failed') };
      const { assessor, emitted, emittedValue } = assessorOf(store, clock);
      await expect(assessor({}, roomy)).rejects.toThrow('transaction failed');
      await settle();
      const createdBeforeTheError = store.penalties.size;
      expect(createdBeforeTheError).toBeGreaterThan(0);
      expect(createdBeforeTheError).toBeLessThan(USERS);
      expect(emittedValue(METRIC.penaltiesCreated)).toBe(createdBeforeTheError);
      expect(emittedValue(METRIC.penaltyHabitsAssessed)).toBeGreaterThanOrEqual(
        createdBeforeTheError,
      );
      expect(emittedValue(METRIC.penaltyAssessmentOverdue)).toBe(1);
      // No duration for a run that failed.
      expect(emitted().map(([name]) => name)).not.toContain(METRIC.penaltyAssessmentDuration);

      // The next run reports only what it created itself: over both runs, each penalty once.
      store.failCommitsAfter = null;
      const next = assessorOf(store, clock);
      expect(await next.assessor({}, roomy)).toMatchObject({
        complete: true,
        penaltiesCreated: USERS,
      });
      expect(next.emittedValue(METRIC.penaltiesCreated)).toBe(USERS - createdBeforeTheError);
    });

    it('judges the deadline hour by the time the run failed, not the time it started', async () => {
      // Starts 05:59:58; two commits of 2 s, then a commit throws at 06:00:02.
      const { store, clock } = await world(at('2026-12-02', '05:59:58'));
      store.commitMs = 2_000;
      store.failCommitsAfter = { commits: 2, error: new Error('transaction failed') };
      const { assessor, emittedValue } = assessorOf(store, clock);
      await expect(assessor({}, roomy)).rejects.toThrow('transaction failed');
      expect(new Date(clock.time).toISOString()).toBe('2026-12-02T06:00:02.000Z');
      expect(emittedValue(METRIC.penaltyAssessmentOverdue)).toBe(1);
    });
  });
});

const post = (route: string, body: unknown) =>
  httpApiEvent({ method: 'POST', path: route, body: JSON.stringify(body) });

function adminOf(store: InMemoryPenaltyStore, clock: { now(): number }) {
  const observed = observedMetrics();
  const handler = createPenaltyAdminHandler({ store, clock, logger, metrics: observed.metrics });
  return { handler, ...observed };
}

describe('POST /admin/penalties/assess metrics', () => {
  it('emits this call’s created and habits and the exact duration, and never overdue', async () => {
    const { store, clock } = await world(at('2026-12-02', '09:00:00'));
    store.commitMs = 500;
    const { handler, emitted } = adminOf(store, clock);
    const response = await handler(post(PENALTY_ROUTES.assess, { date: YESTERDAY }), roomy);
    expect(response.statusCode).toBe(200);
    expect(store.penalties.size).toBe(USERS);
    expect(emitted()).toEqual([
      [METRIC.penaltiesCreated, MetricUnit.Count, USERS],
      [METRIC.penaltyHabitsAssessed, MetricUnit.Count, USERS + 1],
      [METRIC.penaltyAssessmentDuration, MetricUnit.Milliseconds, store.commits * 500],
    ]);
  });

  it('emits 0 created when the date is assessed again', async () => {
    const { store, clock } = await world();
    await adminOf(store, clock).handler(post(PENALTY_ROUTES.assess, { date: YESTERDAY }), roomy);
    const { handler, emitted } = adminOf(store, clock);
    const again = await handler(post(PENALTY_ROUTES.assess, { date: YESTERDAY }), roomy);
    expect(JSON.parse(again.body as string)).toMatchObject({ penaltiesCreated: USERS });
    expect(emitted()).toEqual([
      [METRIC.penaltiesCreated, MetricUnit.Count, 0],
      [METRIC.penaltyHabitsAssessed, MetricUnit.Count, 0],
      [METRIC.penaltyAssessmentDuration, MetricUnit.Milliseconds, 0],
    ]);
  });

  it('answers 202 and emits its part when stopped, then the rest on the next call', async () => {
    const { store, clock } = await world();
    const first = adminOf(store, clock);
    // The route stops under 5 s left: time for 5 shards.
    const partial = await first.handler(
      post(PENALTY_ROUTES.assess, { date: YESTERDAY }),
      runningOutAfter(5, 4_999),
    );
    expect(partial.statusCode).toBe(202);
    const createdFirst = store.penalties.size;
    expect(createdFirst).toBeGreaterThan(0);
    expect(createdFirst).toBeLessThan(USERS);
    expect(first.emittedValue(METRIC.penaltiesCreated)).toBe(createdFirst);

    const second = adminOf(store, clock);
    const rest = await second.handler(post(PENALTY_ROUTES.assess, { date: YESTERDAY }), roomy);
    expect(rest.statusCode).toBe(200);
    expect(JSON.parse(rest.body as string)).toMatchObject({ penaltiesCreated: USERS });
    expect(second.emittedValue(METRIC.penaltiesCreated)).toBe(USERS - createdFirst);
  });

  it('counts the earlier dates it assessed first in created', async () => {
    const { store, clock } = await world();
    await assessDate('2026-11-28', { store, clock });
    const { handler, emittedValue } = adminOf(store, clock);
    const response = await handler(post(PENALTY_ROUTES.assess, { date: YESTERDAY }), roomy);
    expect(JSON.parse(response.body as string)).toMatchObject({
      date: YESTERDAY,
      penaltiesCreated: USERS,
    });
    // 11-29, 11-30 and 12-01.
    expect(emittedValue(METRIC.penaltiesCreated)).toBe(3 * USERS);
  });

  it.each([
    ['a future date (400)', { date: '2026-12-02' }, 400],
    ['a superseded date (409)', { date: '2026-11-20' }, 409],
  ])('emits nothing for %s', async (_what, body, status) => {
    const { store, clock } = await world();
    await assessDate(YESTERDAY, { store, clock });
    const { handler, emitted } = adminOf(store, clock);
    expect((await handler(post(PENALTY_ROUTES.assess, body), roomy)).statusCode).toBe(status);
    expect(emitted()).toEqual([]);
  });

  it('emits the penalties committed before a commit failed, though it answers an error', async () => {
    const { store, clock } = await world();
    store.failCommitsAfter = { commits: 2, error: new Error('transaction failed') };
    const { handler, emitted, emittedValue } = adminOf(store, clock);
    const response = await handler(post(PENALTY_ROUTES.assess, { date: YESTERDAY }), roomy);
    expect(response.statusCode).toBeGreaterThanOrEqual(500);
    await settle();
    expect(store.penalties.size).toBeGreaterThan(0);
    expect(emittedValue(METRIC.penaltiesCreated)).toBe(store.penalties.size);
    expect(emitted().map(([name]) => name)).not.toContain(METRIC.penaltyAssessmentDuration);
  });

  it('emits nothing when the store throws (answered as an error)', async () => {
    const { store, clock } = await world();
    store.failReads = new Error('table unavailable');
    const { handler, emitted } = adminOf(store, clock);
    const response = await handler(post(PENALTY_ROUTES.assess, { date: YESTERDAY }), roomy);
    expect(response.statusCode).toBeGreaterThanOrEqual(500);
    expect(emitted()).toEqual([]);
  });
});

describe('POST /admin/penalties/mark-paid metrics', () => {
  it('emits PenaltiesPaid with the number changed, and nothing when none changed', async () => {
    const { store, clock } = await world();
    await assessDate(YESTERDAY, { store, clock });
    const { handler, emitted, reset } = adminOf(store, clock);
    const penaltyIds = [
      'pen_user00_run_2026-12-01',
      'pen_user01_run_2026-12-01',
      'pen_user02_run_2026-12-01',
      'pen_nobody_x_2026-12-01',
    ];
    const first = await handler(post(PENALTY_ROUTES.markPaid, { penaltyIds }), roomy);
    expect(JSON.parse(first.body as string).changed).toHaveLength(3);
    expect(emitted()).toEqual([[METRIC.penaltiesPaid, MetricUnit.Count, 3]]);

    reset();
    const again = await handler(post(PENALTY_ROUTES.markPaid, { penaltyIds }), roomy);
    expect(JSON.parse(again.body as string).alreadyPaid).toHaveLength(3);
    expect(emitted()).toEqual([]);
  });
});
