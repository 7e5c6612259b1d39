/**
 * The credits read models (DESIGN §8.2): a day's refresh stats
 * (`GET /admin/credits/stats?date`) from the run log's counters and planned slots, and a
 * user's credits (`GET /users/{userId}/credits`) from the profile.
 */
import { plannedPrefix } from './plan-credit-refresh.ts';
import type { CreditAccount, CreditRunLog, CreditStats } from './ports.ts';
import {
  NEVER_REFRESHED,
  periodAt,
  SLOT_MINUTES,
  SLOTS_PER_DAY,
  slotAt,
  slotStart,
} from './refresh-slot.ts';

/** The run log's raw counters of one period (null: nothing ran). */
export type CreditCounters = Awaited<ReturnType<CreditRunLog['readCounters']>>;

const DAY_MS = 86_400_000;
const SLOT_MS = SLOT_MINUTES * 60_000;

/**
 * The day's stats at `now`:
 * - `successRate` = refreshed / (refreshed + failed), 1 when nothing was attempted;
 * - `averageMs` = totalMs / refreshed, rounded to whole ms, 0 when nobody was refreshed;
 * - `lastRunAt`: the last time a slot of the day was planned (ISO), or null;
 * - `nextRunAt`: for today, the start of the next slot after `now` (ISO); else null;
 * - `slotsBehind`: slots due by now (today: up to the slot of `now`; a past day: all
 *   288; a future day: none) minus the slots planned from 0 without a gap, never below 0.
 *
 * `plannedSlots` is `runLog.plannedSlots(date)` (the counters do not carry them);
 * without it, every due slot counts as behind.
 */
export function creditStats(
  date: string,
  counters: CreditCounters,
  now: number,
  plannedSlots: readonly number[] = [],
): CreditStats {
  const today = periodAt(now);
  const c = counters ?? {
    planned: 0,
    refreshed: 0,
    skipped: 0,
    failed: 0,
    totalMs: 0,
    lastRunAt: null,
    recentErrors: [],
  };
  const due = date < today ? SLOTS_PER_DAY : date === today ? slotAt(now) + 1 : 0;
  const attempted = c.refreshed + c.failed;
  return {
    date,
    planned: c.planned,
    refreshed: c.refreshed,
    skipped: c.skipped,
    failed: c.failed,
    successRate: attempted === 0 ? 1 : c.refreshed / attempted,
    averageMs: c.refreshed === 0 ? 0 : Math.round(c.totalMs / c.refreshed),
    lastRunAt: c.lastRunAt === null ? null : new Date(c.lastRunAt).toISOString(),
    nextRunAt:
      date === today ? new Date(slotStart(today, slotAt(now)) + SLOT_MS).toISOString() : null,
    slotsBehind: Math.max(0, due - plannedPrefix(plannedSlots)),
    recentErrors: c.recentErrors,
  };
}

/** `GET /users/{userId}/credits`. */
export interface CreditAccountView {
  userId: string;
  balance: number;
  allowance: number;
  tier: CreditAccount['tier'];
  /** The UTC date of the last refresh, or null before the first. */
  period: string | null;
  refreshSlot: number;
  /** ISO 8601 UTC. */
  nextRefreshAt: string;
}

/**
 * A user's credits. `nextRefreshAt`: the start of the user's slot today when today's
 * refresh has not happened (period before today) and the slot starts now or later;
 * otherwise the slot's start tomorrow (refreshed today already, or the slot has passed
 * without a refresh, e.g. a profile created after its slot: the planner has moved on
 * and the next run to list the user is tomorrow's).
 */
export function creditAccountView(account: CreditAccount, now: number): CreditAccountView {
  const today = periodAt(now);
  const slotToday = slotStart(today, account.refreshSlot);
  const due = account.period < today && slotToday >= now;
  return {
    userId: account.userId,
    balance: account.balance,
    allowance: account.allowance,
    tier: account.tier,
    period: account.period === NEVER_REFRESHED ? null : account.period,
    refreshSlot: account.refreshSlot,
    nextRefreshAt: new Date(due ? slotToday : slotToday + DAY_MS).toISOString(),
  };
}
