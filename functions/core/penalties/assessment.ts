/**
 * The daily assessment (DESIGN §8.3): every active habit is visited once for a date D;
 * verified on D extends its streak, missed resets it and, unless the habit is free,
 * creates the penalty `pen_{userId}_{habitId}_{D}`.
 *
 * A user's habits live on the user's account item, so one write assesses all of them:
 * the account (streaks, the date assessed through, the unpaid summary) and the user's
 * new penalties. The accounts are spread over ASSESSMENT_SHARDS shards; each shard is
 * read in pages and each page written in a few transactions that also carry the
 * shard's progress (its cursor and counts). So an assessment stopped half-way resumes
 * after the last committed slice, and counts are exact. Each account write is
 * conditioned on the date it was assessed through and on no verification since read:
 * running D again, or two runs of D at once, moves no streak twice, and the
 * deterministic penalty id is put only if absent. A slice refused because an account
 * changed is re-read and re-planned.
 */
import type { Clock } from '../shared/clock.ts';
import { PenaltyConflictError } from './errors.ts';
import { isAssessed, settingsOn } from './habits.ts';
import { ASSESSMENT_SHARDS, penaltyIdOf } from './penalty-ids.ts';
import type {
  AccountAssessment,
  AccountDelta,
  AssessableAccount,
  AssessableHabit,
  AssessmentCommit,
  AssessmentCounts,
  HabitAssessment,
  Penalty,
  PenaltyStore,
  ShardProgress,
} from './ports.ts';

/** DynamoDB's cap on the items of one transaction. */
export const MAX_TRANSACTION_ITEMS = 100;
/** Accounts read per page (a few habits each; at most MAX_HABITS_PER_USER). */
export const ASSESSMENT_PAGE_SIZE = 100;
/**
 * Shards assessed at once: the scheduled run, the operators' route, the local command
 * and the benchmark all use it. Each shard's transactions touch its own users only.
 */
export const ASSESSMENT_CONCURRENCY = 8;
/** Attempts at one slice (conflicts re-planned, busy retried) before the run stops to resume later. */
const MAX_SLICE_ATTEMPTS = 8;

/** The assessment of one habit for `date`, or null when the habit is not due (assessed already, younger than the day, or off). */
export function assessHabit(
  habit: AssessableHabit,
  date: string,
  nowIso: string,
): HabitAssessment | null {
  if (habit.lastAssessedDate !== null && habit.lastAssessedDate >= date) return null;
  if (habit.createdAt.slice(0, 10) > date) return null;
  // The settings the day began with: a change takes effect the next day.
  const settings = settingsOn(habit, date);
  if (!settings.active) return null;
  const key = { userId: habit.userId, habitId: habit.habitId };
  if (habit.verifiedDates.includes(date)) {
    const currentStreak = habit.currentStreak + 1;
    return {
      ...key,
      outcome: 'verified',
      currentStreak,
      longestStreak: Math.max(habit.longestStreak, currentStreak),
      penalty: null,
    };
  }
  const penalty: Penalty | null = settings.free
    ? null
    : {
        penaltyId: penaltyIdOf(habit.userId, habit.habitId, date),
        ...key,
        date,
        amount: settings.penaltyAmount,
        currency: settings.currency,
        recipientId: settings.recipientId,
        status: 'unpaid',
        paymentId: null,
        createdAt: nowIso,
        updatedAt: nowIso,
      };
  return {
    ...key,
    outcome: 'missed',
    currentStreak: 0,
    longestStreak: habit.longestStreak,
    penalty,
  };
}

/**
 * One user's assessment for `date`, or null when there is nothing to write (assessed
 * already, or no habit due and nothing to tidy). Verifications up to the date are
 * consumed; an account none of whose habits is assessed after the date leaves the index.
 */
export function assessAccount(
  account: AssessableAccount,
  date: string,
  nowIso: string,
): AccountAssessment | null {
  if (account.assessedThrough !== null && account.assessedThrough >= date) return null;
  const habits = account.habits.flatMap((habit) => assessHabit(habit, date, nowIso) ?? []);
  const consumed = account.habits.flatMap((habit) =>
    habit.verifiedDates
      .filter((verified) => verified <= date)
      .map((verified) => ({ habitId: habit.habitId, date: verified })),
  );
  const stillAssessed = account.habits.some((habit) =>
    isAssessed({ ...habit, lastAssessedDate: date }),
  );
  if (habits.length === 0 && consumed.length === 0 && stillAssessed) return null;
  const penalties = habits.flatMap((habit) => (habit.penalty ? [habit.penalty] : []));
  return {
    userId: account.userId,
    expectedAssessedThrough: account.assessedThrough,
    expectedVerifications: account.verifications,
    habits,
    consumed,
    summary: accountDeltasOf(penalties)[0] ?? null,
    leavesAssessment: stillAssessed ? null : { habitsVersion: account.habitsVersion },
  };
}

/** The unpaid summary changes of new penalties: one delta per user. */
export function accountDeltasOf(penalties: readonly Penalty[]): AccountDelta[] {
  const byUser = new Map<string, Map<string, number>>();
  const counts = new Map<string, number>();
  const dates = new Map<string, Map<string, number>>();
  for (const penalty of penalties) {
    const amounts = byUser.get(penalty.userId) ?? new Map<string, number>();
    amounts.set(penalty.currency, (amounts.get(penalty.currency) ?? 0) + penalty.amount);
    byUser.set(penalty.userId, amounts);
    counts.set(penalty.userId, (counts.get(penalty.userId) ?? 0) + 1);
    const days = dates.get(penalty.userId) ?? new Map<string, number>();
    days.set(penalty.date, (days.get(penalty.date) ?? 0) + 1);
    dates.set(penalty.userId, days);
  }
  return [...byUser].map(([userId, amounts]) => ({
    userId,
    unpaidCount: counts.get(userId) ?? 0,
    unpaidAmount: [...amounts].map(([currency, amount]) => ({ currency, amount })),
    unpaidDates: [...(dates.get(userId) ?? [])].map(([date, count]) => ({ date, count })),
  }));
}

interface Positioned {
  account: AssessableAccount;
  /** The store's position of this account in its shard (the cursor after it). */
  position: string;
}

/** Items one account's assessment writes: the account and each new penalty. */
function itemsOf(assessment: AccountAssessment): number {
  return 1 + assessment.habits.filter((habit) => habit.penalty !== null).length;
}

/**
 * Splits a page's accounts into commits of at most MAX_TRANSACTION_ITEMS items: one per
 * account written, one per penalty, one for the shard's progress (and its start marker
 * on the shard's first). A user's habits are never split (MAX_HABITS_PER_USER keeps one
 * user within a transaction). Accounts with nothing to write still move the cursor. The
 * last commit of the shard's last page says so.
 */
export function planSlices(
  page: readonly Positioned[],
  context: {
    date: string;
    shard: number;
    cursorBefore: string | null;
    lastPage: boolean;
    at: number;
  },
): AssessmentCommit[] {
  const nowIso = new Date(context.at).toISOString();
  const commits: AssessmentCommit[] = [];
  let assessments: AccountAssessment[] = [];
  const startsShard = () => commits.length === 0 && context.cursorBefore === null;
  const fixedItems = () => (startsShard() ? 2 : 1);
  let items = fixedItems();
  let cursor = context.cursorBefore;

  const flush = (done: boolean) => {
    commits.push({
      date: context.date,
      shard: context.shard,
      cursor,
      done,
      startsShard: startsShard(),
      assessments,
      counts: countsOf(assessments),
      at: context.at,
    });
    assessments = [];
    items = fixedItems();
  };

  for (const { account, position } of page) {
    const assessment = assessAccount(account, context.date, nowIso);
    if (assessment) {
      const needed = itemsOf(assessment);
      if (items + needed > MAX_TRANSACTION_ITEMS) flush(false);
      assessments.push(assessment);
      items += needed;
    }
    cursor = position;
  }
  flush(context.lastPage);
  return commits;
}

export function countsOf(assessments: readonly AccountAssessment[]): AssessmentCounts {
  let habits = 0;
  let verified = 0;
  let penaltiesCreated = 0;
  for (const habit of assessments.flatMap((assessment) => assessment.habits)) {
    habits += 1;
    if (habit.outcome === 'verified') verified += 1;
    if (habit.penalty) penaltiesCreated += 1;
  }
  return { habits, verified, missed: habits - verified, penaltiesCreated };
}

export function sumCounts(progress: readonly AssessmentCounts[]): AssessmentCounts {
  return progress.reduce(
    (sum, shard) => ({
      habits: sum.habits + shard.habits,
      verified: sum.verified + shard.verified,
      missed: sum.missed + shard.missed,
      penaltiesCreated: sum.penaltiesCreated + shard.penaltiesCreated,
    }),
    { habits: 0, verified: 0, missed: 0, penaltiesCreated: 0 },
  );
}

export interface AssessmentResult extends AssessmentCounts {
  date: string;
  /** Every shard done: the date is fully assessed. */
  complete: boolean;
  /** Counts of this run alone (the totals above are the date's, whichever run did the work). */
  thisRun: AssessmentCounts;
}

export interface AssessDeps {
  store: PenaltyStore;
  clock: Clock;
  /** Shards assessed at once. Default ASSESSMENT_CONCURRENCY. */
  concurrency?: number;
  pageSize?: number;
  /** Asked between pages: true makes the run stop cleanly (e.g. the Lambda is near its timeout). */
  shouldStop?: () => boolean;
  /** Waits before retrying a busy slice. Default: a timer. */
  pause?: (ms: number) => Promise<void>;
  /** Told the counts of each commit as it lands: what a run did, even one that fails later. */
  onCommitted?: (counts: AssessmentCounts) => void;
}

/**
 * Assesses `date` (a past UTC date): resumes every shard not done from its cursor.
 * Answers the date's totals (the same however often it runs), whether it is complete,
 * and what this run itself did.
 */
export async function assessDate(date: string, deps: AssessDeps): Promise<AssessmentResult> {
  const { store } = deps;
  const pause = deps.pause ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
  const before = new Map((await store.readAssessment(date)).map((shard) => [shard.shard, shard]));
  const shards = Array.from({ length: ASSESSMENT_SHARDS }, (_, shard) => shard).filter(
    (shard) => !before.get(shard)?.done,
  );
  const thisRun: AssessmentCounts[] = [];
  const queue = [...shards];
  // A failed shard stops the others at their next page; the run throws only once every
  // shard in flight has stopped, so nothing of a failed run commits after it answered.
  const failures: unknown[] = [];
  const shardDeps = {
    ...deps,
    pause,
    shouldStop: () => failures.length > 0 || (deps.shouldStop?.() ?? false),
  };
  const worker = async () => {
    for (let shard = queue.shift(); shard !== undefined; shard = queue.shift()) {
      if (failures.length > 0) return;
      try {
        thisRun.push(await assessShard(date, shard, before.get(shard) ?? null, shardDeps));
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(
    Array.from(
      { length: Math.min(deps.concurrency ?? ASSESSMENT_CONCURRENCY, queue.length) },
      worker,
    ),
  );
  if (failures.length > 0) throw failures[0];
  const after = await store.readAssessment(date);
  return {
    date,
    ...sumCounts(after),
    complete: after.length === ASSESSMENT_SHARDS && after.every((shard) => shard.done),
    thisRun: sumCounts(thisRun),
  };
}

async function assessShard(
  date: string,
  shard: number,
  progress: ShardProgress | null,
  deps: AssessDeps & { pause: (ms: number) => Promise<void> },
): Promise<AssessmentCounts> {
  const { store } = deps;
  const done: AssessmentCounts[] = [];
  const read = (after: string | null) => {
    const page = store.accountsToAssess({
      shard,
      limit: deps.pageSize ?? ASSESSMENT_PAGE_SIZE,
      cursor: after,
    });
    // A page read ahead may never be awaited (the run stops, or a commit fails first).
    page.catch(() => {});
    return page;
  };
  let cursor = progress?.cursor ?? null;
  let next = deps.shouldStop?.() ? null : read(cursor);
  while (next) {
    const page = await next;
    const positioned = page.items.map((account, index) => ({
      account,
      position: page.positions[index] as string,
    }));
    const lastPage = page.nextCursor === null;
    // The next page is read while this one commits: the index query and the transactions
    // overlap. Its accounts may change meanwhile, as they may under any read; the commit's
    // conditions catch that, and the slice is re-read.
    next = lastPage || deps.shouldStop?.() ? null : read(page.nextCursor);
    done.push(await commitPage(positioned, { date, shard, cursor, lastPage }, deps));
    if (lastPage) break;
    cursor = page.nextCursor;
    if (deps.shouldStop?.()) break;
  }
  return sumCounts(done);
}

/** Commits one page slice by slice, re-planning a slice whose accounts changed under it. */
async function commitPage(
  page: Positioned[],
  context: { date: string; shard: number; cursor: string | null; lastPage: boolean },
  deps: AssessDeps & { pause: (ms: number) => Promise<void> },
): Promise<AssessmentCounts> {
  const { store, clock } = deps;
  const committed: AssessmentCounts[] = [];
  let remaining = page;
  let cursorBefore = context.cursor;
  let attempts = 0;
  for (;;) {
    const [slice] = planSlices(remaining, {
      date: context.date,
      shard: context.shard,
      cursorBefore,
      lastPage: context.lastPage,
      at: clock.now(),
    });
    if (!slice) return sumCounts(committed);
    // Only the first slice is sent; the rest is re-planned after it (its accounts may change).
    const sliceUsers = new Set(slice.assessments.map((assessment) => assessment.userId));
    const lastIndex = lastIndexOf(remaining, slice);
    const isLastSlice = lastIndex === remaining.length - 1;
    const commit: AssessmentCommit = { ...slice, done: context.lastPage && isLastSlice };
    const result = await store.commitAssessment(commit);
    if (result.status === 'committed') {
      committed.push(commit.counts);
      deps.onCommitted?.(commit.counts);
      remaining = remaining.slice(lastIndex + 1);
      cursorBefore = commit.cursor;
      attempts = 0;
      if (remaining.length === 0) return sumCounts(committed);
      continue;
    }
    attempts += 1;
    if (attempts >= MAX_SLICE_ATTEMPTS) {
      throw new Error(
        `assessment of ${context.date} shard ${context.shard} kept failing (${result.status}); it resumes on the next run`,
      );
    }
    if (result.status === 'busy') {
      await deps.pause(Math.round(25 * 2 ** attempts * (0.5 + Math.random())));
      continue;
    }
    const changed = result.users.filter((userId) => sliceUsers.has(userId));
    const fresh = new Map(
      (await store.reloadAccounts(changed)).map((account) => [account.userId, account] as const),
    );
    const changedUsers = new Set(changed);
    remaining = remaining.map((entry) => {
      if (!changedUsers.has(entry.account.userId)) return entry;
      // Gone since: keep its place for the cursor, assess nothing.
      const reloaded = fresh.get(entry.account.userId) ?? {
        ...entry.account,
        assessedThrough: context.date,
      };
      return { ...entry, account: reloaded };
    });
  }
}

/** The index in `page` of the last account a slice covers (its cursor). */
function lastIndexOf(page: readonly Positioned[], slice: AssessmentCommit): number {
  const index = page.findIndex((entry) => entry.position === slice.cursor);
  return index === -1 ? page.length - 1 : index;
}

/** Days the scheduled assessment looks back for dates a stopped schedule left behind. */
export const CATCH_UP_DAYS = 7;

/**
 * The dates the scheduled run must assess, oldest first, ending with `yesterday`: every
 * date after the latest complete one of the last CATCH_UP_DAYS (a schedule that stopped
 * for a few days catches up in order, since a habit assessed for a later date skips
 * earlier ones). With no complete date in the window (a fresh deploy), the started but
 * incomplete dates and yesterday only: nothing before the schedule ran is invented.
 */
export async function datesToCatchUp(
  yesterday: string,
  store: Pick<PenaltyStore, 'readAssessment'>,
): Promise<string[]> {
  const window = Array.from({ length: CATCH_UP_DAYS }, (_, back) =>
    new Date(Date.parse(`${yesterday}T00:00:00Z`) - (CATCH_UP_DAYS - 1 - back) * 86_400_000)
      .toISOString()
      .slice(0, 10),
  );
  const progress = await Promise.all(window.map((date) => store.readAssessment(date)));
  const complete = (shards: ShardProgress[]) =>
    shards.length === ASSESSMENT_SHARDS && shards.every((shard) => shard.done);
  const lastComplete = progress.findLastIndex(complete);
  // Yesterday complete: it alone (a finished date answers at once, with its totals).
  if (lastComplete === window.length - 1) return [yesterday];
  if (lastComplete >= 0) return window.slice(lastComplete + 1);
  return window.filter((date, index) => date === yesterday || progress[index]!.length > 0);
}

/** What an assessment in date order did: the date asked for, and the earlier ones it took first. */
export interface InOrderAssessment {
  /** The date asked for (its totals so far when an earlier date took the whole run). */
  result: AssessmentResult;
  /** Earlier dates a stopped schedule left behind, assessed first, oldest first. */
  caughtUp: AssessmentResult[];
}

/**
 * Assesses `date` (a past UTC date) the one way that loses no habit-day: after every
 * earlier date a stopped schedule left behind (datesToCatchUp), oldest first, each
 * complete before the next starts, since a habit assessed for a later date skips the
 * earlier ones. The schedule (yesterday), the operators' route and the local command
 * all assess through here. A date never started that a later assessment has already
 * passed can no longer be assessed: PenaltyConflictError `date_superseded`, rather than
 * an answer that silently assesses nothing.
 */
export async function assessInOrder(date: string, deps: AssessDeps): Promise<InOrderAssessment> {
  await refuseSuperseded(date, deps);
  const caughtUp: AssessmentResult[] = [];
  let result: AssessmentResult | undefined;
  for (const day of await datesToCatchUp(date, deps.store)) {
    const dayResult = await assessDate(day, deps);
    if (day === date) result = dayResult;
    else caughtUp.push(dayResult);
    if (!dayResult.complete) break;
  }
  // `date` not reached (an earlier date took the run): its totals so far.
  result ??= await assessDate(date, { ...deps, shouldStop: () => true });
  return { result, caughtUp };
}

async function refuseSuperseded(date: string, deps: AssessDeps): Promise<void> {
  const [own, later] = await Promise.all([
    deps.store.readAssessment(date),
    deps.store.assessmentStartedAfter(date),
  ]);
  if (own.length > 0 || later === null) return; // started (resumed where it stopped), or the latest
  throw new PenaltyConflictError(
    'date_superseded',
    `${date} was never assessed and ${later} has been since: habits are assessed in date order, so ${date} can no longer be assessed.`,
  );
}
