/**
 * In-memory penalty store: the fake beside the DynamoDB one, for unit and property
 * tests and the use cases' own tests. Same contract (test/integration/
 * penalty-store.contract.test.ts runs against both): the same conditions, each commit
 * all-or-nothing, the same orders and paging.
 */
import { isAssessed } from '../../core/penalties/habits.ts';
import {
  ASSESSMENT_SHARDS,
  assessmentShardOf,
  parsePenaltyId,
} from '../../core/penalties/penalty-ids.ts';
import {
  oldestUnpaidDateOf,
  TRANSACTION_ITEM_LIMIT,
} from '../../core/penalties/penalty-transitions.ts';
import {
  type AccountDelta,
  type AssessableHabit,
  type AssessmentCommit,
  type AssessmentCommitResult,
  type Habit,
  type HabitKey,
  type HabitWrite,
  type HabitWriteResult,
  InvalidCursorError,
  type Overpayment,
  type Page,
  type PenaltiesQuery,
  type Penalty,
  type PenaltyAccount,
  type PenaltyStore,
  type PendingSettlement,
  type RecipientTotals,
  type ShardProgress,
  type TransitionCommit,
  type TransitionCommitResult,
  type UserBilling,
  type VerificationResult,
} from '../../core/penalties/ports.ts';

interface StoredHabit extends Habit {
  verifiedDates: Set<string>;
}

interface StoredAccount {
  habits: number;
  freeHabits: number;
  unpaidCount: number;
  unpaid: Map<string, number>;
  /** Unpaid penalties per date (entries at zero removed, as the DynamoDB store prunes them). */
  unpaidDates: Map<string, number>;
  pending: PendingSettlement | null;
}

const habitKey = (key: HabitKey) => `${key.userId}#${key.habitId}`;
const clone = <T>(value: T): T => structuredClone(value);

export class InMemoryPenaltyStore implements PenaltyStore {
  readonly habits = new Map<string, StoredHabit>();
  readonly accounts = new Map<string, StoredAccount>();
  readonly penalties = new Map<string, Penalty>();
  readonly recipients = new Map<string, { count: number; amounts: Map<string, number> }>();
  readonly assessments = new Map<string, ShardProgress>();
  /** Overpayments by `<paymentIntentId>#<penaltyId>`. */
  readonly overpayments = new Map<string, Overpayment>();
  /** The billing profiles settlement reads and spends credits from (tests set them). */
  readonly profiles = new Map<string, Omit<UserBilling, 'hasProfile'>>();
  /** Count of commits attempted (assessment slices and transitions), for tests. */
  commits = 0;

  async getAccount(userId: string): Promise<PenaltyAccount | null> {
    const account = this.accounts.get(userId);
    if (!account) return null;
    return {
      userId,
      habits: account.habits,
      freeHabits: account.freeHabits,
      unpaidCount: account.unpaidCount,
      unpaidAmount: moneyOf(account.unpaid),
      oldestUnpaidDate: oldestUnpaidDateOf(account.unpaidDates, account.unpaidCount) ?? null,
      pending: account.pending ? clone(account.pending) : null,
    };
  }

  async getUserBilling(userId: string): Promise<UserBilling> {
    const profile = this.profiles.get(userId);
    return profile
      ? { ...clone(profile), hasProfile: true }
      : { tier: 'free', credits: 0, customerId: null, hasProfile: false };
  }

  async listHabits(userId: string): Promise<Habit[]> {
    return [...this.habits.values()]
      .filter((habit) => habit.userId === userId)
      .sort((a, b) => a.habitId.localeCompare(b.habitId))
      .map(toHabit);
  }

  async getHabit(key: HabitKey): Promise<Habit | null> {
    const habit = this.habits.get(habitKey(key));
    return habit ? toHabit(habit) : null;
  }

  async putHabit(write: HabitWrite): Promise<HabitWriteResult> {
    const { habit, previous } = write;
    const stored = this.habits.get(habitKey(habit));
    if (previous === null ? stored !== undefined : stored?.updatedAt !== previous.updatedAt) {
      return 'conflict';
    }
    const account = this.#account(habit.userId);
    const freeDelta =
      (habit.free && habit.active ? 1 : 0) - (previous?.free && previous.active ? 1 : 0);
    if (!previous && account.habits >= write.maxHabits) return 'habit-limit';
    if (freeDelta > 0 && account.freeHabits >= write.freeHabitLimit) return 'free-habit-limit';
    account.habits += previous ? 0 : 1;
    account.freeHabits += freeDelta;
    this.habits.set(habitKey(habit), {
      ...clone(habit),
      currentStreak: stored?.currentStreak ?? 0,
      longestStreak: stored?.longestStreak ?? 0,
      lastAssessedDate: stored?.lastAssessedDate ?? null,
      createdAt: stored?.createdAt ?? habit.createdAt,
      verifiedDates: stored?.verifiedDates ?? new Set(),
    });
    return 'written';
  }

  async addVerification(key: HabitKey, date: string): Promise<VerificationResult> {
    const habit = this.habits.get(habitKey(key));
    if (!habit) return 'no-habit';
    if (habit.lastAssessedDate !== null && habit.lastAssessedDate >= date)
      return 'already-assessed';
    habit.verifiedDates.add(date);
    return 'recorded';
  }

  async habitsToAssess(query: {
    shard: number;
    limit: number;
    cursor: string | null;
  }): Promise<Page<AssessableHabit> & { positions: string[] }> {
    if (query.shard < 0 || query.shard >= ASSESSMENT_SHARDS) throw new RangeError('bad shard');
    const active = [...this.habits.entries()]
      .filter(([, habit]) => isAssessed(habit) && assessmentShardOf(habit.userId) === query.shard)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .filter(([key]) => query.cursor === null || key > query.cursor);
    const page = active.slice(0, query.limit);
    return {
      items: page.map(([, habit]) => toAssessable(habit)),
      positions: page.map(([key]) => key),
      nextCursor: active.length > query.limit ? (page.at(-1)?.[0] ?? null) : null,
    };
  }

  async reloadHabits(keys: readonly HabitKey[]): Promise<AssessableHabit[]> {
    return keys.flatMap((key) => {
      const habit = this.habits.get(habitKey(key));
      return habit && isAssessed(habit) ? [toAssessable(habit)] : [];
    });
  }

  async commitAssessment(commit: AssessmentCommit): Promise<AssessmentCommitResult> {
    this.commits += 1;
    const changed = commit.assessments.filter((assessment) => {
      const habit = this.habits.get(habitKey(assessment));
      if (!habit || habit.lastAssessedDate !== assessment.expectedLastAssessedDate) return true;
      const leaves = assessment.leavesAssessment;
      if (leaves && habit.updatedAt !== leaves.updatedAt) return true;
      return assessment.outcome === 'missed' && habit.verifiedDates.has(commit.date);
    });
    if (changed.length > 0) return { status: 'conflict', habits: changed };
    if (commit.assessments.some((a) => a.penalty && this.penalties.has(a.penalty.penaltyId))) {
      return { status: 'conflict', habits: [...commit.assessments] };
    }
    for (const assessment of commit.assessments) {
      const habit = this.habits.get(habitKey(assessment)) as StoredHabit;
      habit.lastAssessedDate = commit.date;
      habit.currentStreak = assessment.currentStreak;
      habit.longestStreak = assessment.longestStreak;
      for (const date of assessment.consumedDates) habit.verifiedDates.delete(date);
      if (assessment.penalty)
        this.penalties.set(assessment.penalty.penaltyId, clone(assessment.penalty));
    }
    for (const delta of commit.accounts) this.#applyAccount(delta);
    const key = `${commit.date}#${commit.shard}`;
    const progress = this.assessments.get(key) ?? {
      shard: commit.shard,
      cursor: null,
      done: false,
      habits: 0,
      verified: 0,
      missed: 0,
      penaltiesCreated: 0,
    };
    this.assessments.set(key, {
      shard: commit.shard,
      cursor: commit.cursor ?? progress.cursor,
      done: progress.done || commit.done,
      habits: progress.habits + commit.counts.habits,
      verified: progress.verified + commit.counts.verified,
      missed: progress.missed + commit.counts.missed,
      penaltiesCreated: progress.penaltiesCreated + commit.counts.penaltiesCreated,
    });
    return { status: 'committed' };
  }

  async readAssessment(date: string): Promise<ShardProgress[]> {
    return [...this.assessments.entries()]
      .filter(([key]) => key.startsWith(`${date}#`))
      .map(([, progress]) => clone(progress))
      .sort((a, b) => a.shard - b.shard);
  }

  async assessmentStartedAfter(date: string): Promise<string | null> {
    const later = [...this.assessments.keys()]
      .map((key) => key.slice(0, key.indexOf('#')))
      .filter((started) => started > date)
      .sort();
    return later[0] ?? null;
  }

  async listPenalties(query: PenaltiesQuery): Promise<Page<Partial<Penalty>>> {
    const sortKey = (penalty: Penalty) => `${penalty.date}#${penalty.habitId}`;
    let after: string | undefined;
    if (query.cursor !== undefined) {
      const decoded = decodeCursor(query.cursor);
      if (
        !decoded ||
        decoded.userId !== query.userId ||
        decoded.status !== (query.status ?? null)
      ) {
        throw new InvalidCursorError();
      }
      after = decoded.after;
    }
    const matching = [...this.penalties.values()]
      .filter((penalty) => penalty.userId === query.userId)
      .filter((penalty) => query.status === undefined || penalty.status === query.status)
      .sort((a, b) => sortKey(b).localeCompare(sortKey(a)))
      .filter((penalty) => after === undefined || sortKey(penalty) < after);
    const page = matching.slice(0, query.limit);
    const last = page.at(-1);
    const fields = query.fields;
    return {
      items: page.map((penalty) =>
        fields
          ? (Object.fromEntries(fields.map((field) => [field, penalty[field]])) as Partial<Penalty>)
          : clone(penalty),
      ),
      nextCursor:
        matching.length > query.limit && last
          ? encodeCursor({
              userId: query.userId,
              status: query.status ?? null,
              after: sortKey(last),
            })
          : null,
    };
  }

  async getPenalties(penaltyIds: readonly string[]): Promise<Map<string, Penalty>> {
    const found = new Map<string, Penalty>();
    for (const id of penaltyIds) {
      const penalty = parsePenaltyId(id) ? this.penalties.get(id) : undefined;
      if (penalty) found.set(id, clone(penalty));
    }
    return found;
  }

  async oldestUnpaid(userId: string, limit: number): Promise<Penalty[]> {
    return [...this.penalties.values()]
      .filter((penalty) => penalty.userId === userId && penalty.status === 'unpaid')
      .sort((a, b) => `${a.date}#${a.habitId}`.localeCompare(`${b.date}#${b.habitId}`))
      .slice(0, limit)
      .map(clone);
  }

  async commitTransitions(commit: TransitionCommit): Promise<TransitionCommitResult> {
    this.commits += 1;
    // DynamoDB refuses a transaction of more items (the adapter writes one per penalty,
    // account, recipient and the credits; a lock or release rides on its account item).
    const accountUsers = new Set(commit.accounts.map((delta) => delta.userId));
    const items =
      commit.transitions.length +
      accountUsers.size +
      commit.recipients.length +
      (commit.creditsUsed && commit.creditsUsed.count > 0 ? 1 : 0) +
      (commit.lockPending && !accountUsers.has(commit.lockPending.userId) ? 1 : 0) +
      (commit.releasePending && !accountUsers.has(commit.releasePending.userId) ? 1 : 0);
    if (items > TRANSACTION_ITEM_LIMIT) {
      throw new RangeError(
        `a transaction of ${items} items: DynamoDB allows ${TRANSACTION_ITEM_LIMIT}`,
      );
    }
    for (const { penalty } of commit.transitions) {
      if (this.penalties.get(penalty.penaltyId)?.status !== penalty.status) {
        return { status: 'conflict', reason: 'penalty-changed' };
      }
    }
    if (commit.creditsUsed && commit.creditsUsed.count > 0) {
      const profile = this.profiles.get(commit.creditsUsed.userId);
      if (!profile || profile.credits < commit.creditsUsed.count) {
        return { status: 'conflict', reason: 'credits-changed' };
      }
    }
    if (commit.lockPending && this.accounts.get(commit.lockPending.userId)?.pending) {
      return { status: 'conflict', reason: 'settlement-pending' };
    }
    const release = commit.releasePending;
    const releases =
      release !== undefined &&
      this.accounts.get(release.userId)?.pending?.paymentIntentId === release.paymentIntentId;

    for (const { penalty, to, paymentId } of commit.transitions) {
      this.penalties.set(penalty.penaltyId, {
        ...clone(penalty),
        status: to,
        paymentId,
        updatedAt: new Date(commit.at).toISOString(),
      });
    }
    for (const delta of commit.accounts) this.#applyAccount(delta);
    for (const delta of commit.recipients) {
      const totals = this.recipients.get(delta.recipientId) ?? { count: 0, amounts: new Map() };
      totals.count += delta.penaltiesPaid;
      for (const money of delta.amounts) {
        totals.amounts.set(
          money.currency,
          (totals.amounts.get(money.currency) ?? 0) + money.amount,
        );
      }
      this.recipients.set(delta.recipientId, totals);
    }
    if (commit.creditsUsed && commit.creditsUsed.count > 0) {
      const profile = this.profiles.get(commit.creditsUsed.userId) as UserBilling;
      profile.credits -= commit.creditsUsed.count;
    }
    if (commit.lockPending) {
      this.#account(commit.lockPending.userId).pending = clone(commit.lockPending.settlement);
    }
    if (releases && release) this.#account(release.userId).pending = null;
    return { status: 'committed' };
  }

  async abandonedSettlements(startedBefore: string, limit: number): Promise<string[]> {
    return [...this.accounts.entries()]
      .flatMap(([userId, account]) =>
        account.pending && account.pending.startedAt < startedBefore
          ? [{ userId, since: account.pending.startedAt }]
          : [],
      )
      .sort((a, b) => a.since.localeCompare(b.since) || a.userId.localeCompare(b.userId))
      .slice(0, limit)
      .map((lock) => lock.userId);
  }

  async recipientTotals(recipientId: string): Promise<RecipientTotals | null> {
    const totals = this.recipients.get(recipientId);
    if (!totals) return null;
    return { recipientId, penaltiesPaid: totals.count, amounts: moneyOf(totals.amounts) };
  }

  async recordOverpayments(overpayments: readonly Overpayment[]): Promise<Overpayment[]> {
    const recorded: Overpayment[] = [];
    for (const overpayment of overpayments) {
      const key = `${overpayment.paymentIntentId}#${overpayment.penaltyId}`;
      if (this.overpayments.has(key)) continue;
      this.overpayments.set(key, clone(overpayment));
      recorded.push(overpayment);
    }
    return recorded;
  }

  async listOverpayments(options: { all?: boolean } = {}): Promise<Overpayment[]> {
    return [...this.overpayments.values()]
      .filter((o) => options.all || o.refundId === null)
      .sort((a, b) => a.recordedAt.localeCompare(b.recordedAt))
      .map(clone);
  }

  async markOverpaymentRefunded(
    key: { paymentIntentId: string; penaltyId: string },
    refund: { refundId: string; refundedAt: string },
  ): Promise<void> {
    const stored = this.overpayments.get(`${key.paymentIntentId}#${key.penaltyId}`);
    if (stored && stored.refundId === null) Object.assign(stored, refund);
  }

  #account(userId: string): StoredAccount {
    let account = this.accounts.get(userId);
    if (!account) {
      account = {
        habits: 0,
        freeHabits: 0,
        unpaidCount: 0,
        unpaid: new Map(),
        unpaidDates: new Map(),
        pending: null,
      };
      this.accounts.set(userId, account);
    }
    return account;
  }

  #applyAccount(delta: AccountDelta): void {
    const account = this.#account(delta.userId);
    account.unpaidCount += delta.unpaidCount;
    for (const money of delta.unpaidAmount) {
      account.unpaid.set(money.currency, (account.unpaid.get(money.currency) ?? 0) + money.amount);
    }
    for (const { date, count } of delta.unpaidDates) {
      const now = (account.unpaidDates.get(date) ?? 0) + count;
      if (now === 0) account.unpaidDates.delete(date);
      else account.unpaidDates.set(date, now);
    }
  }
}

function moneyOf(amounts: Map<string, number>) {
  return [...amounts]
    .filter(([, amount]) => amount !== 0)
    .map(([currency, amount]) => ({ currency, amount }))
    .sort((a, b) => a.currency.localeCompare(b.currency));
}

function toHabit(habit: StoredHabit): Habit {
  const { verifiedDates: _verified, ...rest } = habit;
  return clone(rest);
}

function toAssessable(habit: StoredHabit): AssessableHabit {
  return {
    userId: habit.userId,
    habitId: habit.habitId,
    penaltyAmount: habit.penaltyAmount,
    currency: habit.currency,
    free: habit.free,
    recipientId: habit.recipientId,
    currentStreak: habit.currentStreak,
    longestStreak: habit.longestStreak,
    lastAssessedDate: habit.lastAssessedDate,
    active: habit.active,
    earlierSettings: clone(habit.earlierSettings),
    updatedAt: habit.updatedAt,
    createdAt: habit.createdAt,
    verifiedDates: [...habit.verifiedDates].sort(),
  };
}

function encodeCursor(value: { userId: string; status: string | null; after: string }): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeCursor(
  cursor: string,
): { userId: string; status: string | null; after: string } | null {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return typeof value?.after === 'string' ? value : null;
  } catch {
    return null;
  }
}
