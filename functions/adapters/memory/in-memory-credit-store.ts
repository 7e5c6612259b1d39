/**
 * In-memory credit store and run log with the DynamoDB adapter's semantics (a contract
 * suite runs against both): the slot index ordered by (period, user) and paged with the
 * same query-bound cursor, the one conditional refresh write (no profile, then already
 * refreshed, then tier changed), additive counters, the planned slots, and the newest
 * 20 errors of a period. Unlike DynamoDB's slot index it is strongly consistent. For the
 * use-case and property tests that need thousands of runs.
 */
import type {
  CreditAccount,
  CreditRunLog,
  CreditStore,
  DueUser,
  RefreshError,
  RefreshOutcomes,
  RefreshResult,
} from '../../core/credits/ports.ts';
import {
  MAX_ERROR_MESSAGE_LENGTH,
  RECENT_ERRORS_KEPT,
} from '../../core/credits/refresh-credits.ts';
import { NEVER_REFRESHED, refreshSlotOf, SLOTS_PER_DAY } from '../../core/credits/refresh-slot.ts';
import type { Page } from '../../core/shared/paging.ts';
import type { Tier } from '../../core/shared/tiers.ts';
import { dueCursor } from '../paging/credit-cursor.ts';
import { ISO_DATE } from '../paging/query-cursor.ts';

/** Operations a fault can be injected into (and that `calls` counts). */
export type CreditStoreFaultOperation =
  | 'usersDue'
  | 'refresh'
  | 'getAccount'
  | 'recordPlanned'
  | 'recordOutcomes'
  | 'plannedSlots'
  | 'readCounters';

/**
 * Fault injection: called before every operation (with the user for `refresh` and
 * `getAccount`); throw to make the operation reject with that error, having changed
 * nothing. It may also change the store (e.g. `setTier`) to stage a race.
 */
export type CreditStoreFault = (operation: CreditStoreFaultOperation, userId?: string) => void;

export interface InMemoryCreditStoreOptions {
  fault?: CreditStoreFault;
}

/** Most users one `usersDue` page returns (as the DynamoDB adapter). */
export const MAX_DUE_PAGE = 1_000;

interface RunCounters {
  planned: number;
  refreshed: number;
  skipped: number;
  failed: number;
  totalMs: number;
  lastRunAt: number | null;
  slots: Set<number>;
  /** Oldest first, at most RECENT_ERRORS_KEPT. */
  errors: RefreshError[];
}

export class InMemoryCreditStore implements CreditStore, CreditRunLog {
  /** Profiles by user id (the credit fields and the tier). */
  readonly profiles = new Map<string, CreditAccount>();
  /** The run log, per period. */
  readonly runs = new Map<string, RunCounters>();
  /** Successful refresh writes per `userId|period`: for exactly-once assertions. */
  readonly refreshWrites = new Map<string, number>();
  /** Calls per operation (faulted ones included). */
  readonly calls = new Map<CreditStoreFaultOperation, number>();
  /** Replaceable at any time, to start or stop injecting faults. */
  fault: CreditStoreFault | undefined;

  constructor(options: InMemoryCreditStoreOptions = {}) {
    this.fault = options.fault;
  }

  /**
   * A profile as the subscription context writes it: the slot from the user id; the
   * credit fields kept from an existing profile unless given, else balance 0, never
   * refreshed.
   */
  putProfile(profile: { userId: string; tier: Tier; balance?: number; period?: string }): void {
    const existing = this.profiles.get(profile.userId);
    this.profiles.set(profile.userId, {
      userId: profile.userId,
      tier: profile.tier,
      balance: profile.balance ?? existing?.balance ?? 0,
      allowance: existing?.allowance ?? 0,
      period: profile.period ?? existing?.period ?? NEVER_REFRESHED,
      refreshSlot: refreshSlotOf(profile.userId),
      refreshedAt: existing?.refreshedAt ?? null,
    });
  }

  /** Changes a user's tier (as a subscription event would); unknown users are ignored. */
  setTier(userId: string, tier: Tier): void {
    const account = this.profiles.get(userId);
    if (account) this.profiles.set(userId, { ...account, tier });
  }

  /** Spends credits (as a penalty settlement would), never below 0. */
  spend(userId: string, credits: number): void {
    const account = this.profiles.get(userId);
    if (account) {
      this.profiles.set(userId, { ...account, balance: Math.max(0, account.balance - credits) });
    }
  }

  /** Deletes a profile. */
  removeProfile(userId: string): void {
    this.profiles.delete(userId);
  }

  /** Successful refresh writes of a user for a period (0, or 1 when the rule holds). */
  refreshCount(userId: string, period: string): number {
    return this.refreshWrites.get(`${userId}|${period}`) ?? 0;
  }

  #enter(operation: CreditStoreFaultOperation, userId?: string): void {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    this.fault?.(operation, userId);
  }

  async usersDue(query: {
    slot: number;
    period: string;
    limit: number;
    cursor?: string;
  }): Promise<Page<DueUser>> {
    this.#enter('usersDue');
    const { slot, period, limit } = query;
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS_PER_DAY) {
      throw new RangeError(`slot must be an integer from 0 to ${SLOTS_PER_DAY - 1}, got ${slot}`);
    }
    if (!ISO_DATE.test(period)) throw new RangeError(`period must be YYYY-MM-DD, got ${period}`);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DUE_PAGE) {
      throw new RangeError(`limit must be an integer from 1 to ${MAX_DUE_PAGE}, got ${limit}`);
    }
    const scope = { slot, period };
    const after = query.cursor === undefined ? undefined : dueCursor.decode(scope, query.cursor);
    const due = [...this.profiles.values()]
      .filter((p) => p.refreshSlot === slot && p.period < period)
      .filter(
        (p) =>
          !after ||
          compare(p.period, after.c) > 0 ||
          (p.period === after.c && compare(p.userId, after.u) > 0),
      )
      .sort((a, b) => compare(a.period, b.period) || compare(a.userId, b.userId));
    const page = due.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((p) => ({ userId: p.userId, tier: p.tier })),
      nextCursor:
        due.length > limit && last
          ? dueCursor.encode(scope, { c: last.period, u: last.userId })
          : null,
    };
  }

  async refresh(work: {
    userId: string;
    tier: Tier;
    period: string;
    allowance: number;
    at: number;
  }): Promise<RefreshResult> {
    this.#enter('refresh', work.userId);
    const account = this.profiles.get(work.userId);
    if (!account) return 'no-profile';
    if (account.period >= work.period) return 'already-refreshed';
    if (account.tier !== work.tier) return 'tier-changed';
    this.profiles.set(work.userId, {
      ...account,
      balance: work.allowance,
      allowance: work.allowance,
      period: work.period,
      refreshedAt: work.at,
    });
    const key = `${work.userId}|${work.period}`;
    this.refreshWrites.set(key, (this.refreshWrites.get(key) ?? 0) + 1);
    return 'refreshed';
  }

  async getAccount(userId: string): Promise<CreditAccount | null> {
    this.#enter('getAccount', userId);
    const account = this.profiles.get(userId);
    return account ? { ...account } : null;
  }

  #run(period: string): RunCounters {
    let run = this.runs.get(period);
    if (!run) {
      run = {
        planned: 0,
        refreshed: 0,
        skipped: 0,
        failed: 0,
        totalMs: 0,
        lastRunAt: null,
        slots: new Set<number>(),
        errors: [],
      };
      this.runs.set(period, run);
    }
    return run;
  }

  async recordPlanned(period: string, slot: number, planned: number, at: number): Promise<void> {
    this.#enter('recordPlanned');
    const run = this.#run(period);
    run.planned += planned;
    run.slots.add(slot);
    run.lastRunAt = at;
  }

  async recordOutcomes(period: string, outcomes: RefreshOutcomes): Promise<void> {
    this.#enter('recordOutcomes');
    const run = this.#run(period);
    run.refreshed += outcomes.refreshed;
    run.skipped += outcomes.skipped;
    run.failed += outcomes.failed;
    run.totalMs += outcomes.totalMs;
    const errors = outcomes.errors.map((e) => ({
      ...e,
      error: e.error.slice(0, MAX_ERROR_MESSAGE_LENGTH),
    }));
    run.errors = [...run.errors, ...errors].slice(-RECENT_ERRORS_KEPT);
  }

  async plannedSlots(period: string): Promise<number[]> {
    this.#enter('plannedSlots');
    return [...(this.runs.get(period)?.slots ?? [])].sort((a, b) => a - b);
  }

  async readCounters(period: string) {
    this.#enter('readCounters');
    const run = this.runs.get(period);
    if (!run) return null;
    return {
      planned: run.planned,
      refreshed: run.refreshed,
      skipped: run.skipped,
      failed: run.failed,
      totalMs: run.totalMs,
      lastRunAt: run.lastRunAt,
      /** Newest first. */
      recentErrors: [...run.errors].reverse(),
    };
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
