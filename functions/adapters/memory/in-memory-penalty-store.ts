/**
 * In-memory penalty store: the fake beside the DynamoDB one, for unit and property
 * tests and the use cases' own tests. Same contract (test/integration/
 * penalty-store.contract.test.ts runs against both): the same conditions, each commit
 * all-or-nothing, the same orders and paging.
 */
import { assessableHabit, isAssessed } from '../../core/penalties/habits.ts';
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
  type AssessableAccount,
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

interface StoredAccount {
  habits: number;
  freeHabits: number;
  /** The user's habits, by id: on the account, as the DynamoDB store keeps them. */
  habitsById: Map<string, Habit>;
  /** Verified dates not yet assessed, by habit. */
  verified: Map<string, Set<string>>;
  assessedThrough: string | null;
  verifications: number;
  habitsVersion: number;
  /** In the assessment index: set by a habit write that leaves a habit assessed, cleared by the assessment. */
  assessed: boolean;
  unpaidCount: number;
  unpaid: Map<string, number>;
  /** Unpaid penalties per date (entries at zero removed, as the DynamoDB store prunes them). */
  unpaidDates: Map<string, number>;
  pending: PendingSettlement | null;
}

const clone = <T>(value: T): T => structuredClone(value);

export class InMemoryPenaltyStore implements PenaltyStore {
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
    const account = this.accounts.get(userId);
    return [...(account?.habitsById.values() ?? [])]
      .sort((a, b) => a.habitId.localeCompare(b.habitId))
      .map(clone);
  }

  async getHabit(key: HabitKey): Promise<Habit | null> {
    const habit = this.accounts.get(key.userId)?.habitsById.get(key.habitId);
    return habit ? clone(habit) : null;
  }

  async putHabit(write: HabitWrite): Promise<HabitWriteResult> {
    const { habit, previous } = write;
    const stored = this.accounts.get(habit.userId)?.habitsById.get(habit.habitId);
    if (previous === null ? stored !== undefined : stored?.updatedAt !== previous.updatedAt) {
      return 'conflict';
    }
    const existing = this.accounts.get(habit.userId);
    const freeDelta =
      (habit.free && habit.active ? 1 : 0) - (previous?.free && previous.active ? 1 : 0);
    // The limits first: a refused write creates nothing, not even an empty account.
    if (!previous && (existing?.habits ?? 0) >= write.maxHabits) return 'habit-limit';
    if (freeDelta > 0 && (existing?.freeHabits ?? 0) >= write.freeHabitLimit) {
      return 'free-habit-limit';
    }
    const account = this.#account(habit.userId);
    account.habits += previous ? 0 : 1;
    account.freeHabits += freeDelta;
    account.habitsVersion += 1;
    // Only the assessment takes an account out of the index (it alone knows all is assessed).
    if (isAssessed(habit)) account.assessed = true;
    account.habitsById.set(habit.habitId, {
      ...clone(habit),
      currentStreak: stored?.currentStreak ?? 0,
      longestStreak: stored?.longestStreak ?? 0,
      lastAssessedDate: stored?.lastAssessedDate ?? null,
      createdAt: stored?.createdAt ?? habit.createdAt,
    });
    return 'written';
  }

  async addVerification(key: HabitKey, date: string): Promise<VerificationResult> {
    const account = this.accounts.get(key.userId);
    if (!account?.habitsById.has(key.habitId)) return 'no-habit';
    if (account.assessedThrough !== null && account.assessedThrough >= date) {
      return 'already-assessed';
    }
    const dates = account.verified.get(key.habitId) ?? new Set<string>();
    dates.add(date);
    account.verified.set(key.habitId, dates);
    account.verifications += 1;
    return 'recorded';
  }

  async accountsToAssess(query: {
    shard: number;
    limit: number;
    cursor: string | null;
  }): Promise<Page<AssessableAccount> & { positions: string[] }> {
    if (query.shard < 0 || query.shard >= ASSESSMENT_SHARDS) throw new RangeError('bad shard');
    const assessed = [...this.accounts.entries()]
      .filter(([userId, account]) => account.assessed && assessmentShardOf(userId) === query.shard)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .filter(([userId]) => query.cursor === null || userId > query.cursor);
    const page = assessed.slice(0, query.limit);
    return {
      items: page.map(([userId, account]) => toAssessable(userId, account)),
      positions: page.map(([userId]) => userId),
      nextCursor: assessed.length > query.limit ? (page.at(-1)?.[0] ?? null) : null,
    };
  }

  async reloadAccounts(userIds: readonly string[]): Promise<AssessableAccount[]> {
    return userIds.flatMap((userId) => {
      const account = this.accounts.get(userId);
      return account ? [toAssessable(userId, account)] : [];
    });
  }

  async commitAssessment(commit: AssessmentCommit): Promise<AssessmentCommitResult> {
    this.commits += 1;
    const changed = commit.assessments.filter((assessment) => {
      const account = this.accounts.get(assessment.userId);
      if (!account || account.assessedThrough !== assessment.expectedAssessedThrough) return true;
      if (account.verifications !== assessment.expectedVerifications) return true;
      const leaves = assessment.leavesAssessment;
      return leaves !== null && account.habitsVersion !== leaves.habitsVersion;
    });
    if (changed.length > 0) {
      return { status: 'conflict', users: changed.map((assessment) => assessment.userId) };
    }
    const penalties = commit.assessments.flatMap((assessment) =>
      assessment.habits.flatMap((habit) => (habit.penalty ? [habit.penalty] : [])),
    );
    const clash = penalties.find((penalty) => this.penalties.has(penalty.penaltyId));
    if (clash) return { status: 'conflict', users: [clash.userId] };
    for (const assessment of commit.assessments) {
      const account = this.accounts.get(assessment.userId) as StoredAccount;
      account.assessedThrough = commit.date;
      for (const outcome of assessment.habits) {
        const habit = account.habitsById.get(outcome.habitId);
        if (!habit) continue;
        habit.lastAssessedDate = commit.date;
        habit.currentStreak = outcome.currentStreak;
        habit.longestStreak = outcome.longestStreak;
        if (outcome.penalty) this.penalties.set(outcome.penalty.penaltyId, clone(outcome.penalty));
      }
      for (const { habitId, date } of assessment.consumed)
        account.verified.get(habitId)?.delete(date);
      if (assessment.summary) this.#applyAccount(assessment.summary);
      if (assessment.leavesAssessment) account.assessed = false;
    }
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
      const current = this.penalties.get(penalty.penaltyId);
      if (current?.status !== penalty.status || current.paymentId !== penalty.paymentId) {
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
        habitsById: new Map(),
        verified: new Map(),
        assessedThrough: null,
        verifications: 0,
        habitsVersion: 0,
        assessed: false,
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

function toAssessable(userId: string, account: StoredAccount): AssessableAccount {
  return {
    userId,
    assessedThrough: account.assessedThrough,
    verifications: account.verifications,
    habitsVersion: account.habitsVersion,
    habits: [...account.habitsById.values()]
      .sort((a, b) => a.habitId.localeCompare(b.habitId))
      .map((habit) => assessableHabit(habit, [...(account.verified.get(habit.habitId) ?? [])])),
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
