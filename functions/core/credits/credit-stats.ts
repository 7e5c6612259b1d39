/**
 * The credits read models: a day's refresh stats (`GET /admin/credits/stats`) from
 * the run log's counters, and a user's credits (`GET /users/{userId}/credits`).
 */
import type { CreditAccount, CreditRunLog, CreditStats } from './ports.ts';
import {
  NEVER_REFRESHED,
  periodAt,
  SLOT_MINUTES,
  SLOTS_PER_DAY,
  slotAt,
  slotStart,
} from './refresh-slot.ts';

type Counters = Awaited<ReturnType<CreditRunLog['readCounters']>>;

/** Slots planned from 0 without a gap: how far the day's planning has got. */
function contiguousPlanned(planned: readonly number[]): number {
  const done = new Set(planned);
  let count = 0;
  while (done.has(count)) count++;
  return count;
}

/**
 * The day's stats. `slotsBehind`: slots due by now (all 288 for a past day) that are
 * not planned yet; `nextRunAt`: the next slot boundary, for today only.
 */
export function creditStats(
  date: string,
  counters: Counters,
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
      date === today
        ? new Date(slotStart(today, slotAt(now)) + SLOT_MINUTES * 60_000).toISOString()
        : null,
    slotsBehind: Math.max(0, due - Math.min(due, contiguousPlanned(plannedSlots))),
    recentErrors: c.recentErrors,
  };
}

/** A user's credits as the read route answers them. */
export function creditAccountView(account: CreditAccount, now: number) {
  const today = periodAt(now);
  const slotToday = slotStart(today, account.refreshSlot);
  const refreshedToday = account.period !== NEVER_REFRESHED && account.period >= today;
  const next = !refreshedToday && slotToday > now ? slotToday : slotToday + 86_400_000;
  return {
    userId: account.userId,
    balance: account.balance,
    allowance: account.allowance,
    tier: account.tier,
    period: account.period === NEVER_REFRESHED ? null : account.period,
    refreshSlot: account.refreshSlot,
    nextRefreshAt: new Date(next).toISOString(),
  };
}
