/**
 * The credit refresh worker's use case: each user gets one conditional write setting
 * the balance to the allowance of the tier the user has now, stamped with the period,
 * only if not yet refreshed for it — so however often, late or concurrently the work
 * runs, a user is refreshed at most once per day, and a tier change during the day
 * does not grant twice.
 */
import type { Clock } from '../shared/clock.ts';
import type { CreditAllowances } from './allowances.ts';
import type {
  CreditRunLog,
  CreditStore,
  RefreshError,
  RefreshOutcomes,
  RefreshResult,
  RefreshWork,
} from './ports.ts';

export interface RefreshDeps {
  store: Pick<CreditStore, 'refresh' | 'getAccount'>;
  runLog: Pick<CreditRunLog, 'recordOutcomes'>;
  allowances: CreditAllowances;
  clock: Clock;
}

export interface WorkResult {
  work: RefreshWork;
  result: RefreshResult | 'failed';
  /** Why it failed (a message, never a stack). */
  error?: string;
}

/** Refreshes one user; a tier change since planning is retried once with the current tier. */
async function refreshOne(work: RefreshWork, deps: RefreshDeps, at: number): Promise<WorkResult> {
  try {
    let tier = work.tier;
    for (let attempt = 0; attempt < 2; attempt++) {
      const result = await deps.store.refresh({
        userId: work.userId,
        tier,
        period: work.period,
        allowance: deps.allowances[tier],
        at,
      });
      if (result !== 'tier-changed') return { work, result };
      const account = await deps.store.getAccount(work.userId);
      if (!account) return { work, result: 'no-profile' };
      tier = account.tier;
    }
    return { work, result: 'failed', error: 'the tier kept changing during the refresh' };
  } catch (error) {
    return {
      work,
      result: 'failed',
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

/**
 * Refreshes every user of the batch (concurrently: each is one independent write) and
 * records the batch's outcomes once per period in the run log.
 */
export async function refreshCredits(
  works: readonly RefreshWork[],
  deps: RefreshDeps,
): Promise<{ results: WorkResult[]; outcomes: RefreshOutcomes }> {
  const at = deps.clock.now();
  const results = await Promise.all(works.map((work) => refreshOne(work, deps, at)));
  const byPeriod = new Map<string, RefreshOutcomes>();
  const total: RefreshOutcomes = { refreshed: 0, skipped: 0, failed: 0, totalMs: 0, errors: [] };
  for (const { work, result, error } of results) {
    const outcomes = byPeriod.get(work.period) ?? {
      refreshed: 0,
      skipped: 0,
      failed: 0,
      totalMs: 0,
      errors: [],
    };
    byPeriod.set(work.period, outcomes);
    for (const sum of [outcomes, total]) {
      if (result === 'refreshed') {
        sum.refreshed += 1;
        sum.totalMs += Math.max(0, at - work.plannedAt);
      } else if (result === 'failed') {
        sum.failed += 1;
        const entry: RefreshError = {
          userId: work.userId,
          error: error ?? 'failed',
          at: new Date(at).toISOString(),
        };
        sum.errors.push(entry);
      } else {
        sum.skipped += 1;
      }
    }
  }
  for (const [period, outcomes] of byPeriod) await deps.runLog.recordOutcomes(period, outcomes);
  return { results, outcomes: total };
}
