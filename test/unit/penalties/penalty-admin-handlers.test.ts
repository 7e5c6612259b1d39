import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import { PENALTY_ROUTES } from '../../../functions/commons/routes.ts';
import { assessDate } from '../../../functions/core/penalties/assessment.ts';
import { parseAssessmentDeadlineHour } from '../../../functions/core/shared/config-values.ts';
import { createPenaltyAdminHandler } from '../../../functions/penalty-admin.ts';
import {
  createPenaltyAssessor,
  overdue,
  yesterdayOf,
} from '../../../functions/penalty-assessor.ts';
import { httpApiEvent } from '../../helpers/apigw-events.ts';
import { addHabit, at, fixedClock } from './penalty-fixtures.ts';

const context = { getRemainingTimeInMillis: () => 600_000 } as Context;
const quiet = () => ({
  logger: new Logger({ logLevel: 'SILENT' }),
  metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
});

const post = (route: string, body: unknown) =>
  httpApiEvent({
    method: 'POST',
    path: route,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function world() {
  const store = new InMemoryPenaltyStore();
  await addHabit(store, 'u1', 'run', '2026-11-01');
  await addHabit(store, 'u2', 'read', '2026-11-01', { free: true, penaltyAmount: 0 });
  const clock = fixedClock(at('2026-12-02', '00:20:00'));
  return { store, clock, handler: createPenaltyAdminHandler({ store, clock, ...quiet() }) };
}

describe('POST /admin/penalties/assess', () => {
  it('assesses a past date, and running it again answers the same totals and creates nothing', async () => {
    const { store, handler } = await world();
    const first = await handler(post(PENALTY_ROUTES.assess, { date: '2026-12-01' }), context);
    expect(first.statusCode).toBe(200);
    const totals = { date: '2026-12-01', habits: 2, verified: 0, missed: 2, penaltiesCreated: 1 };
    expect(JSON.parse(first.body as string)).toEqual({
      ...totals,
      thisRun: { habits: 2, verified: 0, missed: 2, penaltiesCreated: 1 },
    });
    const again = await handler(post(PENALTY_ROUTES.assess, { date: '2026-12-01' }), context);
    expect(JSON.parse(again.body as string)).toEqual({
      ...totals,
      thisRun: { habits: 0, verified: 0, missed: 0, penaltiesCreated: 0 },
    });
    expect(store.penalties.size).toBe(1);
  });

  it('assesses first, in date order, the earlier dates left behind since the last complete one', async () => {
    const { store, handler } = await world();
    await assessDate('2026-11-28', { store, clock: fixedClock(at('2026-11-29', '01:00:00')) });
    // 11-29 and 11-30 were never assessed: asked for 12-01, the route takes them first,
    // so the habit missed on each of the three days has its three penalties.
    const response = await handler(post(PENALTY_ROUTES.assess, { date: '2026-12-01' }), context);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body as string)).toMatchObject({
      date: '2026-12-01',
      penaltiesCreated: 1,
    });
    expect([...store.penalties.keys()].sort()).toEqual([
      'pen_u1_run_2026-11-28',
      'pen_u1_run_2026-11-29',
      'pen_u1_run_2026-11-30',
      'pen_u1_run_2026-12-01',
    ]);
    expect((await store.getHabit({ userId: 'u1', habitId: 'run' }))?.lastAssessedDate).toBe(
      '2026-12-01',
    );
  });

  it('answers 409 date_superseded for a date never assessed that a later one has passed, and changes nothing', async () => {
    const { store, handler } = await world();
    expect(
      (await handler(post(PENALTY_ROUTES.assess, { date: '2026-12-01' }), context)).statusCode,
    ).toBe(200);
    const commits = store.commits;
    const response = await handler(post(PENALTY_ROUTES.assess, { date: '2026-11-25' }), context);
    expect(response.statusCode).toBe(409);
    const { error } = JSON.parse(response.body as string);
    expect(error.code).toBe('date_superseded');
    expect(error.message).toContain('2026-12-01');
    expect(store.commits).toBe(commits);
    expect([...store.penalties.keys()]).toEqual(['pen_u1_run_2026-12-01']);
    // However far back: a date weeks before the latest assessed one is refused the same way.
    const weeksBefore = await handler(post(PENALTY_ROUTES.assess, { date: '2026-11-02' }), context);
    expect(weeksBefore.statusCode).toBe(409);
    expect(JSON.parse(weeksBefore.body as string).error.code).toBe('date_superseded');
    expect(store.commits).toBe(commits);
  });

  it.each([
    [{ date: '2026-12-02' }, 'date'],
    [{ date: '2026-13-01' }, 'date'],
    [{}, 'date'],
    [{ date: '2026-12-01', extra: 1 }, 'extra'],
    ['{not json', 'JSON'],
  ])('refuses %j with a 400 naming %s and changes nothing', async (body, field) => {
    const { store, handler } = await world();
    const response = await handler(post(PENALTY_ROUTES.assess, body), context);
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body as string).error.message).toContain(field);
    expect(store.penalties.size).toBe(0);
    expect(store.commits).toBe(0);
  });
});

describe('POST /admin/penalties/mark-paid', () => {
  it('answers changed, alreadyPaid and notFound, idempotently', async () => {
    const { handler } = await world();
    await handler(post(PENALTY_ROUTES.assess, { date: '2026-12-01' }), context);
    const ids = ['pen_u1_run_2026-12-01', 'pen_u9_x_2026-12-01'];
    const first = await handler(
      post(PENALTY_ROUTES.markPaid, { penaltyIds: ids, paymentId: 'pi_123' }),
      context,
    );
    expect(JSON.parse(first.body as string)).toEqual({
      changed: ['pen_u1_run_2026-12-01'],
      alreadyPaid: [],
      notFound: ['pen_u9_x_2026-12-01'],
    });
    const second = await handler(post(PENALTY_ROUTES.markPaid, { penaltyIds: ids }), context);
    expect(JSON.parse(second.body as string)).toMatchObject({
      changed: [],
      alreadyPaid: ['pen_u1_run_2026-12-01'],
    });
  });

  it.each([
    [{ penaltyIds: [] }, 'penaltyIds'],
    [
      { penaltyIds: Array.from({ length: 101 }, (_, i) => `pen_u_h${i}_2026-12-01`) },
      'penaltyIds must list 1-100',
    ],
    [{ penaltyIds: ['pen_a_b_2026-01-01'], paymentId: 'nope' }, 'paymentId'],
    [{ penaltyIds: 'pen_a' }, 'penaltyIds'],
    // Not a penalty id at all: a typo is refused, not reported as an unknown penalty.
    [{ penaltyIds: ['pen_u1_run_2026-12-01', 'bad id'] }, 'penaltyIds.1 must be a penalty id'],
    [{ penaltyIds: ['pen_u1_run_20261201'] }, 'penaltyIds.0'],
    [{ penaltyIds: ['pen_u1 x_run_2026-12-01'] }, 'penaltyIds.0'],
  ])('refuses %j with a 400 naming %s', async (body, field) => {
    const { handler } = await world();
    const response = await handler(post(PENALTY_ROUTES.markPaid, body), context);
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body as string).error.message).toContain(field);
  });
});

describe('the scheduled assessor', () => {
  it('assesses yesterday and reports overdue only past the deadline while incomplete', async () => {
    const { store, clock } = await world();
    const assessor = createPenaltyAssessor({ store, clock, deadlineHour: 6, ...quiet() });
    const result = await assessor({}, context);
    expect(result).toMatchObject({ date: '2026-12-01', complete: true, penaltiesCreated: 1 });
    expect(yesterdayOf(at('2026-12-02', '00:00:00'))).toBe('2026-12-01');
    expect(overdue(false, at('2026-12-02', '05:59:59'), 6)).toBe(0);
    expect(overdue(false, at('2026-12-02', '06:00:00'), 6)).toBe(1);
    expect(overdue(true, at('2026-12-02', '23:00:00'), 6)).toBe(0);
  });

  it('catches up, oldest first, the dates a stopped schedule left behind since the last complete one', async () => {
    const { store, clock } = await world();
    await assessDate('2026-11-27', { store, clock });
    const assessor = createPenaltyAssessor({ store, clock, deadlineHour: 6, ...quiet() });
    const result = await assessor({}, context);
    expect(result.caughtUp.map((day) => [day.date, day.complete, day.penaltiesCreated])).toEqual([
      ['2026-11-28', true, 1],
      ['2026-11-29', true, 1],
      ['2026-11-30', true, 1],
    ]);
    expect(result).toMatchObject({ date: '2026-12-01', complete: true, penaltiesCreated: 1 });
    // One penalty per missed day of the non-free habit, none skipped.
    const penalties = await store.listPenalties({ userId: 'u1', limit: 10 });
    expect(penalties.items.map((p) => p.date)).toEqual([
      '2026-12-01',
      '2026-11-30',
      '2026-11-29',
      '2026-11-28',
      '2026-11-27',
    ]);
    // The next run finds yesterday complete and does nothing more.
    const again = await assessor({}, context);
    expect(again.caughtUp).toEqual([]);
    expect(again.thisRun.penaltiesCreated).toBe(0);
  });

  it('on a fresh deploy assesses yesterday only, inventing nothing before the schedule ran', async () => {
    const { store, clock } = await world();
    const result = await createPenaltyAssessor({ store, clock, deadlineHour: 6, ...quiet() })(
      {},
      context,
    );
    expect(result.caughtUp).toEqual([]);
    expect((await store.listPenalties({ userId: 'u1', limit: 10 })).items).toHaveLength(1);
  });

  it('reads the deadline hour with one rule for synth and handler', () => {
    expect(parseAssessmentDeadlineHour(undefined)).toBe(6);
    expect(parseAssessmentDeadlineHour('9')).toBe(9);
    for (const bad of [0, 24, '6.5', 'six', -1])
      expect(() => parseAssessmentDeadlineHour(bad)).toThrow(/1 to 23/);
  });
});
