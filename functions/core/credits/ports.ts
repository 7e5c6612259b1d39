/**
 * Ports of the credits context (DESIGN §8.2): the profile's credit fields and the
 * slot index behind them, the refresh work queue, and the daily run log the stats
 * route answers from. Adapters implement them.
 */
import type { Page } from '../shared/paging.ts';
import type { Tier } from '../shared/tiers.ts';

/** A user's credits as the profile holds them. */
export interface CreditAccount {
  userId: string;
  tier: Tier;
  balance: number;
  /** The allowance granted at the last refresh (0 before the first). */
  allowance: number;
  /** The UTC date of the last refresh, or NEVER_REFRESHED. */
  period: string;
  refreshSlot: number;
  /** Epoch ms of the last refresh, or null. */
  refreshedAt: number | null;
}

/** A user the slot index lists as not yet refreshed for a period. */
export interface DueUser {
  userId: string;
  tier: Tier;
}

/** One user to refresh, as the planner enqueues it. */
export interface RefreshWork {
  userId: string;
  /** The tier the index showed; the worker's write is conditioned on it. */
  tier: Tier;
  /** The period to stamp: the UTC date of the slot being planned. */
  period: string;
  slot: number;
  /** Epoch ms the planner enqueued it (for the refresh time in the stats). */
  plannedAt: number;
}

export type RefreshResult =
  /** Balance set to the allowance and the period stamped. */
  | 'refreshed'
  /** The profile's period is already this one (or later): nothing written. */
  | 'already-refreshed'
  /** The tier changed since the index was read: nothing written; retry with the current tier. */
  | 'tier-changed'
  /** No profile for the user (deleted since planned): nothing written. */
  | 'no-profile';

export interface CreditStore {
  /**
   * One page of the users of `slot` whose period is before `period`: one query on the
   * slot index, never the whole slot in memory.
   */
  usersDue(query: {
    slot: number;
    period: string;
    limit: number;
    cursor?: string;
  }): Promise<Page<DueUser>>;
  /**
   * One conditional write: balance = `allowance`, period = `period`, only if the stored
   * period is before `period` and the stored tier is `tier`.
   */
  refresh(work: {
    userId: string;
    tier: Tier;
    period: string;
    allowance: number;
    at: number;
  }): Promise<RefreshResult>;
  getAccount(userId: string): Promise<CreditAccount | null>;
}

/** Hands refresh work to the workers, in batches. */
export interface RefreshQueue {
  enqueue(work: readonly RefreshWork[]): Promise<void>;
}

export interface RefreshError {
  userId: string;
  error: string;
  /** ISO 8601 UTC. */
  at: string;
}

/**
 * What the workers report for one batch, added to the day's stats. Users, not
 * deliveries: a redelivered message adds only its refreshes and final failures.
 */
export interface RefreshOutcomes {
  /** Users refreshed (once per user and period, by the write's condition). */
  refreshed: number;
  /** Users whose work changed nothing on its first delivery: already refreshed, or no profile. */
  skipped: number;
  /** Users whose refresh failed on their message's last delivery (it goes to the DLQ). */
  failed: number;
  /** Sum over refreshed users of (refreshed at − planned at), ms. */
  totalMs: number;
  errors: RefreshError[];
}

/** The day's figures, as `GET /admin/credits/stats?date` answers them. */
export interface CreditStats {
  date: string;
  planned: number;
  refreshed: number;
  skipped: number;
  failed: number;
  /** refreshed / (refreshed + failed), 1 when nothing was attempted. */
  successRate: number;
  averageMs: number;
  /** ISO 8601 UTC, or null. */
  lastRunAt: string | null;
  nextRunAt: string | null;
  /** Slots of the day that are due but not planned yet. */
  slotsBehind: number;
  recentErrors: RefreshError[];
}

/** The planner's progress and the workers' counts, per credit period (UTC date). */
export interface CreditRunLog {
  /** Records that `slot` of `period` was planned with `planned` users, at `at`. */
  recordPlanned(period: string, slot: number, planned: number, at: number): Promise<void>;
  recordOutcomes(period: string, outcomes: RefreshOutcomes): Promise<void>;
  /** The slots of `period` planned so far (ascending). */
  plannedSlots(period: string): Promise<number[]>;
  /** Raw counters of `period` (stats without the derived fields), or null when nothing ran. */
  readCounters(period: string): Promise<{
    planned: number;
    refreshed: number;
    skipped: number;
    failed: number;
    totalMs: number;
    lastRunAt: number | null;
    recentErrors: RefreshError[];
  } | null>;
}
