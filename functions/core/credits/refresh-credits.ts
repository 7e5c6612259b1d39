/**
 * The credit refresh worker's use case (DESIGN §8.2): each user gets one conditional
 * write setting the balance to the allowance of the tier the user has now, stamped with
 * the period, only if not yet refreshed for it — so however often, late or concurrently
 * the work runs, a user is refreshed at most once per period, and a tier change during
 * the day does not grant twice.
 *
 * Per work item:
 * - `refreshed`: written;
 * - `already-refreshed`, `no-profile`: skipped (nothing written);
 * - `tier-changed`: the profile is read and the write retried once with its current
 *   tier; a second change in between fails the user ("tier kept changing"), and the
 *   queue's redelivery tries again later;
 * - a store error: the user fails with the error's name and message (never a stack);
 *   the handler fails the record holding that user, so the queue redelivers it.
 *
 * The stats count users, not deliveries (a failed user makes the queue redeliver its
 * whole message, up to the queue's maximum receives), so each item comes with its
 * `Delivery`:
 * - `refreshed`: every refresh (the write's condition makes it once per user and period);
 * - `failed`: only on the final delivery, when no retry follows: a user counts once,
 *   and a user that succeeds on a retry never counted as failed;
 * - `skipped`: nothing written on the message's first delivery (already refreshed by
 *   other work, no profile). A redelivery counts no skips: its users were counted on
 *   an earlier delivery (refreshed or skipped), or failed without being counted.
 *
 * The batch's counts go to the run log with one `recordOutcomes` per period present in
 * the batch (not one per user). Errors sent there are the final failures, the newest
 * RECENT_ERRORS_KEPT of the period in this batch; the run log itself keeps only the
 * newest RECENT_ERRORS_KEPT of the whole period (a ring), so a bad day costs a bounded
 * number of writes. A run log failure is thrown after every period was attempted: the
 * invocation fails and the queue redelivers the batch, which refreshes nobody twice
 * (the users it refreshed then go uncounted: a redelivery counts no skips).
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

/** Errors the run log keeps per period (newest first in the stats); it enforces the cap. */
export const RECENT_ERRORS_KEPT = 20;

/** Longest error message reported: a store's message can quote a whole request. */
export const MAX_ERROR_MESSAGE_LENGTH = 500;

export interface RefreshDeps {
  store: Pick<CreditStore, 'refresh' | 'getAccount'>;
  runLog: Pick<CreditRunLog, 'recordOutcomes'>;
  allowances: CreditAllowances;
  clock: Clock;
}

export interface WorkResult {
  work: RefreshWork;
  result: RefreshResult | 'failed';
  /** Why it failed (a message, never a stack); only when `result` is `failed`. */
  error?: string;
}

/** Which delivery of its queue message a work item arrived in. */
export interface Delivery {
  /** Received before: its users were counted then, or failed without being counted. */
  redelivered: boolean;
  /** No delivery follows (a failure now sends the message to the DLQ): a failure is final. */
  final: boolean;
}

/** Work not from the queue (or its only delivery): counted in full, a failure is final. */
export const ONLY_DELIVERY: Delivery = { redelivered: false, final: true };

export interface RefreshBatchResult {
  /** One per work item, in the order given. */
  results: WorkResult[];
  /** The whole batch's counts (errors: the newest RECENT_ERRORS_KEPT). */
  outcomes: RefreshOutcomes;
}

/** The message of a thrown value: `Name: message` (name left out when it is plain `Error`). */
export function errorMessage(error: unknown): string {
  let text: string;
  if (error instanceof Error) {
    const name = error.name && error.name !== 'Error' ? error.name : '';
    text = name && !error.message.startsWith(name) ? `${name}: ${error.message}` : error.message;
    if (!text) text = name || 'Error';
  } else {
    text = String(error);
  }
  return text.length > MAX_ERROR_MESSAGE_LENGTH
    ? `${text.slice(0, MAX_ERROR_MESSAGE_LENGTH - 1)}…`
    : text;
}

/** Refreshes one user; a tier change since planning is retried once with the current tier. */
async function refreshOne(work: RefreshWork, deps: RefreshDeps, at: number): Promise<WorkResult> {
  const write = (tier: RefreshWork['tier']) =>
    deps.store.refresh({
      userId: work.userId,
      tier,
      period: work.period,
      allowance: deps.allowances[tier],
      at,
    });
  try {
    const first = await write(work.tier);
    if (first !== 'tier-changed') return { work, result: first };
    const account = await deps.store.getAccount(work.userId);
    if (!account) return { work, result: 'no-profile' };
    if (account.period >= work.period) return { work, result: 'already-refreshed' };
    const second = await write(account.tier);
    if (second !== 'tier-changed') return { work, result: second };
    return {
      work,
      result: 'failed',
      error: 'tier-changed: the tier changed again during the refresh; retried later',
    };
  } catch (error) {
    return { work, result: 'failed', error: errorMessage(error) };
  }
}

function emptyOutcomes(): RefreshOutcomes {
  return { refreshed: 0, skipped: 0, failed: 0, totalMs: 0, errors: [] };
}

/**
 * Refreshes every user of the batch (concurrently: each is one independent write; the
 * same user twice in a batch is resolved by the store's condition) and records the
 * batch's outcomes once per period. `at` (the clock, read once) stamps every refresh.
 * `deliveries[i]` is the delivery of `works[i]` (default ONLY_DELIVERY).
 */
export async function refreshCredits(
  works: readonly RefreshWork[],
  deps: RefreshDeps,
  deliveries: readonly Delivery[] = [],
): Promise<RefreshBatchResult> {
  const at = deps.clock.now();
  const results = await Promise.all(works.map((work) => refreshOne(work, deps, at)));
  const byPeriod = new Map<string, RefreshOutcomes>();
  const total = emptyOutcomes();
  for (const [index, { work, result, error }] of results.entries()) {
    const delivery = deliveries[index] ?? ONLY_DELIVERY;
    // A retry follows, or an earlier delivery counted this user: nothing to add.
    if (result === 'failed' && !delivery.final) continue;
    if (result !== 'failed' && result !== 'refreshed' && delivery.redelivered) continue;
    let outcomes = byPeriod.get(work.period);
    if (!outcomes) {
      outcomes = emptyOutcomes();
      byPeriod.set(work.period, outcomes);
    }
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
        if (sum.errors.length > RECENT_ERRORS_KEPT) sum.errors.shift();
      } else {
        sum.skipped += 1;
      }
    }
  }
  const recorded = await Promise.allSettled(
    [...byPeriod].map(([period, outcomes]) => deps.runLog.recordOutcomes(period, outcomes)),
  );
  const failures = recorded.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length === 1) throw failures[0]!.reason;
  if (failures.length > 1) {
    throw new AggregateError(
      failures.map((f) => f.reason),
      'recording the credit refresh outcomes failed',
    );
  }
  return { results, outcomes: total };
}
