/**
 * In-memory credit store and run log with the DynamoDB adapter's semantics (a contract
 * suite runs against both): the slot index ordered by (period, user), the one
 * conditional refresh write, counters, the planned slots and the last 20 errors.
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
import { NEVER_REFRESHED, refreshSlotOf } from '../../core/credits/refresh-slot.ts';
import type { Page } from '../../core/shared/paging.ts';
import type { Tier } from '../../core/shared/tiers.ts';
import { RECENT_ERRORS_KEPT } from '../dynamodb/credit-table-schema.ts';
import { dueCursor } from '../paging/credit-cursor.ts';

interface RunCounters {
  planned: number;
  refreshed: number;
  skipped: number;
  failed: number;
  totalMs: number;
  lastRunAt: number | null;
  slots: Set<number>;
  errors: RefreshError[];
}

/** Called before each operation: throw to make it fail (fault injection). */
export type CreditStoreFault = (operation: string, userId?: string) => void;

export class InMemoryCreditStore implements CreditStore, CreditRunLog {
  readonly profiles = new Map<string, CreditAccount>();
  readonly runs = new Map<string, RunCounters>();
  /** Successful refresh writes per `userId|period`: for exactly-once assertions. */
  readonly refreshWrites = new Map<string, number>();
  fault: CreditStoreFault | undefined;

  /** A profile as the subscription context writes it; the slot from the user id. */
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

  /** Changes a user's tier (as a subscription event would). */
  setTier(userId: string, tier: Tier): void {
    const account = this.profiles.get(userId);
    if (account) this.profiles.set(userId, { ...account, tier });
  }

  async usersDue(query: {
    slot: number;
    period: string;
    limit: number;
    cursor?: string;
  }): Promise<Page<DueUser>> {
    this.fault?.('usersDue');
    const after = query.cursor ? dueCursor.decode(query, query.cursor) : undefined;
    const due = [...this.profiles.values()]
      .filter((p) => p.refreshSlot === query.slot && p.period < query.period)
      .sort((a, b) => compare(a.period, b.period) || compare(a.userId, b.userId))
      .filter(
        (p) =>
          !after || compare(p.period, after.c) > 0 || (p.period === after.c && p.userId > after.u),
      );
    const page = due.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page.map((p) => ({ userId: p.userId, tier: p.tier })),
      nextCursor:
        due.length > query.limit && last
          ? dueCursor.encode(query, { c: last.period, u: last.userId })
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
    this.fault?.('refresh', work.userId);
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
    this.fault?.('getAccount', userId);
    const account = this.profiles.get(userId);
    return account ? { ...account } : null;
  }

  #run(period: string): RunCounters {
    const run = this.runs.get(period) ?? {
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
    return run;
  }

  async recordPlanned(period: string, slot: number, planned: number, at: number): Promise<void> {
    this.fault?.('recordPlanned');
    const run = this.#run(period);
    run.planned += planned;
    run.slots.add(slot);
    run.lastRunAt = at;
  }

  async recordOutcomes(period: string, outcomes: RefreshOutcomes): Promise<void> {
    this.fault?.('recordOutcomes');
    const run = this.#run(period);
    run.refreshed += outcomes.refreshed;
    run.skipped += outcomes.skipped;
    run.failed += outcomes.failed;
    run.totalMs += outcomes.totalMs;
    run.errors.push(...outcomes.errors);
    run.errors = run.errors.slice(-RECENT_ERRORS_KEPT);
  }

  async plannedSlots(period: string): Promise<number[]> {
    this.fault?.('plannedSlots');
    return [...(this.runs.get(period)?.slots ?? [])].sort((a, b) => a - b);
  }

  async readCounters(period: string) {
    this.fault?.('readCounters');
    const run = this.runs.get(period);
    if (!run) return null;
    return {
      planned: run.planned,
      refreshed: run.refreshed,
      skipped: run.skipped,
      failed: run.failed,
      totalMs: run.totalMs,
      lastRunAt: run.lastRunAt,
      recentErrors: [...run.errors].reverse(),
    };
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
