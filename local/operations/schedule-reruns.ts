/**
 * The redrive of a schedule's DLQ. A message there is a scheduled run EventBridge
 * Scheduler gave up on (its body the target's input, `{"scheduledTime": ...}`); there is
 * no queue to send it back to, and nothing in it that the next run needs: both schedules
 * catch up what earlier runs missed. So the redrive runs the schedule's work once, now,
 * with the use case and adapters the scheduled function uses, and deletes the messages
 * the DLQ held before that run only once it succeeded:
 *
 * - the credit refresh planner: `planCreditRefresh` without slots, i.e. every due slot
 *   of today (and of yesterday) not yet planned, as the planner function does;
 * - the penalty assessment: `assessInOrder` of yesterday, which first assesses the
 *   earlier dates a stopped schedule left behind (up to a week, oldest first), as the
 *   assessor function does, without its Lambda time budget.
 *
 * Both are idempotent (a slot is planned once, a habit-day assessed once), so an
 * interrupted redrive loses nothing and the next one plans or assesses nothing twice.
 */
import { DynamoDbCreditStore } from '../../functions/adapters/dynamodb/dynamodb-credit-store.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import { SqsRefreshQueue } from '../../functions/adapters/sqs/sqs-refresh-queue.ts';
import {
  type PlannedSlot,
  type PlanResult,
  planCreditRefresh,
} from '../../functions/core/credits/plan-credit-refresh.ts';
import {
  type AssessmentResult,
  assessInOrder,
  datesToCatchUp,
} from '../../functions/core/penalties/assessment.ts';
import { ASSESSMENT_SHARDS } from '../../functions/core/penalties/penalty-ids.ts';
import type { PenaltyStore } from '../../functions/core/penalties/ports.ts';
import { systemClock } from '../../functions/core/shared/clock.ts';
import type { OpsTarget, ScheduledWork } from './target.ts';

/** What a rerun (or its dry run) did. */
export interface RerunOutcome {
  /** The work is done: the DLQ's messages may be deleted. */
  done: boolean;
  /** One line saying what ran (or would). */
  summary: string;
  /** The use case's own result, for `--json`. */
  detail: unknown;
}

export interface RerunOptions {
  dryRun: boolean;
  /** A progress line of a long run. */
  progress: (line: string) => void;
  /** Progress lines at most this often. Default 5 s. */
  progressEveryMs?: number;
  /** The run's time. Default now. */
  now?: number;
}

/** How a schedule's work is named in the output. */
export function describeWork(work: ScheduledWork): string {
  return work.kind === 'credit-refresh'
    ? 'the credit refresh planner (every due slot not yet planned)'
    : 'the penalty assessment of yesterday (and of earlier dates it left behind)';
}

export async function rerunScheduledWork(
  target: OpsTarget,
  work: ScheduledWork,
  options: RerunOptions,
): Promise<RerunOutcome> {
  return work.kind === 'credit-refresh'
    ? await rerunCreditPlanner(target, work.refreshQueueUrl, options)
    : await rerunPenaltyAssessment(target, options);
}

async function rerunCreditPlanner(
  target: OpsTarget,
  refreshQueueUrl: string,
  options: RerunOptions,
): Promise<RerunOutcome> {
  const now = options.now ?? Date.now();
  const store = new DynamoDbCreditStore({
    client: target.dynamo,
    billingTableName: target.tables.billing,
  });
  let result: PlanResult;
  if (options.dryRun) {
    // The same use case, with a queue that sends nothing (the use case counts) and a
    // run log that records nothing: every due slot's users are read, nothing written.
    result = await planCreditRefresh(
      { now },
      {
        store,
        queue: { enqueue: async () => {} },
        runLog: {
          plannedSlots: (period) => store.plannedSlots(period),
          recordPlanned: async () => {},
        },
      },
    );
  } else {
    const queue = new SqsRefreshQueue({ queueUrl: refreshQueueUrl, client: target.sqs });
    const due = throttle(options.progressEveryMs);
    let users = 0;
    result = await planCreditRefresh(
      { now },
      {
        store,
        queue: {
          async enqueue(batch) {
            await queue.enqueue(batch);
            users += batch.length;
          },
        },
        runLog: {
          plannedSlots: (period) => store.plannedSlots(period),
          async recordPlanned(period, slot, planned, at) {
            await store.recordPlanned(period, slot, planned, at);
            if (due())
              options.progress(`  ${period} slot ${slot} planned; ${users} user(s) so far`);
          },
        },
      },
    );
  }
  const verb = options.dryRun ? 'would enqueue' : 'enqueued';
  return {
    done: true,
    summary:
      result.slots.length === 0
        ? `no slot was due (${verb} no user)`
        : `${verb} ${result.planned} user(s) for refresh in ${result.slots.length} slot(s) (${slotRanges(result.slots)})`,
    detail: result,
  };
}

async function rerunPenaltyAssessment(
  target: OpsTarget,
  options: RerunOptions,
): Promise<RerunOutcome> {
  const now = options.now ?? Date.now();
  const yesterday = new Date(now - 86_400_000).toISOString().slice(0, 10);
  const store = new DynamoDbPenaltyStore({
    client: target.dynamo,
    penaltiesTableName: target.tables.penalties,
  });
  if (options.dryRun) {
    const dates = await datesToCatchUp(yesterday, store);
    const progress = await Promise.all(
      dates.map(async (date) => {
        const shards = await store.readAssessment(date);
        return { date, shardsDone: shards.filter((s) => s.done).length };
      }),
    );
    const pending = progress.filter((p) => p.shardsDone < ASSESSMENT_SHARDS);
    return {
      done: true,
      summary:
        pending.length === 0
          ? `would assess nothing: ${yesterday} is complete`
          : `would assess ${pending.map((p) => `${p.date} (${p.shardsDone}/${ASSESSMENT_SHARDS} shards done)`).join(', ')}, oldest first`,
      detail: { date: yesterday, dates: progress },
    };
  }
  const { result, caughtUp } = await assessInOrder(yesterday, {
    store: withAssessmentProgress(store, options),
    clock: systemClock,
  });
  const all = [...caughtUp, result];
  const line = (r: AssessmentResult) =>
    `${r.date} ${r.complete ? 'complete' : 'incomplete'}: ${r.thisRun.habits} habit(s), ${r.thisRun.penaltiesCreated} penalt${r.thisRun.penaltiesCreated === 1 ? 'y' : 'ies'} created by this run (${r.penaltiesCreated} that date)`;
  return {
    // assessInOrder stops at the first incomplete date: yesterday complete means all are.
    done: result.complete,
    summary: `assessed ${all.map(line).join('; ')}`,
    detail: { result, caughtUp },
  };
}

/** The store, printing the habits assessed so far now and then (a large assessment takes minutes). */
function withAssessmentProgress(store: PenaltyStore, options: RerunOptions): PenaltyStore {
  const due = throttle(options.progressEveryMs);
  const habits = new Map<string, number>();
  return new Proxy(store, {
    get(real, property) {
      if (property === 'commitAssessment') {
        return async (commit: Parameters<PenaltyStore['commitAssessment']>[0]) => {
          const result = await real.commitAssessment(commit);
          if (result.status === 'committed') {
            habits.set(commit.date, (habits.get(commit.date) ?? 0) + commit.counts.habits);
            if (due())
              options.progress(
                `  ${commit.date}: ${habits.get(commit.date)} habit(s) assessed so far`,
              );
          }
          return result;
        };
      }
      const value = Reflect.get(real, property, real);
      return typeof value === 'function' ? value.bind(real) : value;
    },
  });
}

/** `2026-05-01 #250-#287, 2026-05-02 #0-#12`: the slots planned, per period, as runs. */
function slotRanges(slots: readonly PlannedSlot[]): string {
  const parts: string[] = [];
  let start: PlannedSlot | undefined;
  let last: PlannedSlot | undefined;
  const flush = () => {
    if (!start || !last) return;
    parts.push(
      start.slot === last.slot
        ? `${start.period} #${start.slot}`
        : `${start.period} #${start.slot}-#${last.slot}`,
    );
  };
  for (const slot of slots) {
    if (last && slot.period === last.period && slot.slot === last.slot + 1) {
      last = slot;
      continue;
    }
    flush();
    start = slot;
    last = slot;
  }
  flush();
  return parts.join(', ');
}

/** True at most once per `ms` (not at the start). */
function throttle(ms = 5_000): () => boolean {
  let last = Date.now();
  return () => {
    const now = Date.now();
    if (now - last < ms) return false;
    last = now;
    return true;
  };
}
