/**
 * What a penalty's status change moves besides itself: the user's unpaid summary
 * (counts and amounts of `unpaid` penalties) and, on becoming `paid`, its recipient's
 * totals. Derived from the status read and the status written, so a transition that
 * is refused (the status changed since) moves nothing, and one committed moves each
 * figure exactly once.
 */
import type {
  AccountDelta,
  Money,
  Penalty,
  PenaltyStatus,
  PenaltyStore,
  PenaltyTransition,
  RecipientDelta,
  TransitionCommit,
} from './ports.ts';

/** DynamoDB's cap on the items of one TransactWriteItems. */
export const TRANSACTION_ITEM_LIMIT = 100;

export function transition(
  penalty: Penalty,
  to: PenaltyStatus,
  paymentId: string | null,
): PenaltyTransition {
  return { penalty, to, paymentId };
}

/** The summary and recipient changes of a set of transitions. */
export function transitionEffects(transitions: readonly PenaltyTransition[]): {
  accounts: AccountDelta[];
  recipients: RecipientDelta[];
} {
  type Tally = { count: number; amounts: Map<string, number>; dates: Map<string, number> };
  const accounts = new Map<string, Tally>();
  const recipients = new Map<string, Tally>();
  const add = (into: Map<string, Tally>, key: string, sign: number, penalty: Penalty) => {
    const entry = into.get(key) ?? { count: 0, amounts: new Map(), dates: new Map() };
    entry.count += sign;
    entry.amounts.set(
      penalty.currency,
      (entry.amounts.get(penalty.currency) ?? 0) + sign * penalty.amount,
    );
    entry.dates.set(penalty.date, (entry.dates.get(penalty.date) ?? 0) + sign);
    into.set(key, entry);
  };
  for (const { penalty, to } of transitions) {
    const from = penalty.status;
    if (from === to) continue;
    if (from === 'unpaid') add(accounts, penalty.userId, -1, penalty);
    if (to === 'unpaid') add(accounts, penalty.userId, 1, penalty);
    if (to === 'paid' && penalty.recipientId) add(recipients, penalty.recipientId, 1, penalty);
  }
  const moneyOf = (amounts: Map<string, number>): Money[] =>
    [...amounts].map(([currency, amount]) => ({ currency, amount }));
  return {
    accounts: [...accounts].map(([userId, { count, amounts, dates }]) => ({
      userId,
      unpaidCount: count,
      unpaidAmount: moneyOf(amounts),
      unpaidDates: [...dates]
        .filter(([, change]) => change !== 0)
        .map(([date, change]) => ({ date, count: change })),
    })),
    recipients: [...recipients].map(([recipientId, { count, amounts }]) => ({
      recipientId,
      penaltiesPaid: count,
      amounts: moneyOf(amounts),
    })),
  };
}

/** One commit of transitions (with their effects) and whatever else rides along. */
export function transitionCommit(
  transitions: readonly PenaltyTransition[],
  at: number,
  extra: Pick<TransitionCommit, 'creditsUsed' | 'lockPending' | 'releasePending'> = {},
): TransitionCommit {
  return { transitions: [...transitions], ...transitionEffects(transitions), ...extra, at };
}

export interface TransitionRun {
  store: PenaltyStore;
  now: () => number;
  pause: (ms: number) => Promise<void>;
  /** Re-reads the penalties and says which transitions to make now (none: nothing left to do). */
  plan: (penalties: Map<string, Penalty>) => PenaltyTransition[];
  penaltyIds: readonly string[];
  /** Sent with the last commit (or alone when nothing changes), e.g. releasing a settlement lock. */
  releasePending?: TransitionCommit['releasePending'];
  attempts?: number;
}

/**
 * The longest head of `planned` whose commit stays within a transaction's items, with
 * `reserved` items left for what rides along. Penalties of many users paid to many
 * recipients cost up to three items each, one user's to one recipient barely one.
 */
export function transitionSlice(
  planned: readonly PenaltyTransition[],
  reserved = 0,
): PenaltyTransition[] {
  const users = new Set<string>();
  const recipients = new Set<string>();
  let items = reserved;
  let taken = 0;
  for (const { penalty, to } of planned) {
    const moves = penalty.status !== to;
    const summaryUser =
      moves && (penalty.status === 'unpaid' || to === 'unpaid') ? penalty.userId : null;
    const totalsRecipient = moves && to === 'paid' ? penalty.recipientId : null;
    const cost =
      1 +
      (summaryUser !== null && !users.has(summaryUser) ? 1 : 0) +
      (totalsRecipient !== null && !recipients.has(totalsRecipient) ? 1 : 0);
    if (items + cost > TRANSACTION_ITEM_LIMIT) break;
    items += cost;
    taken += 1;
    if (summaryUser !== null) users.add(summaryUser);
    if (totalsRecipient !== null) recipients.add(totalsRecipient);
  }
  return planned.slice(0, taken);
}

/**
 * Reads the penalties, plans, and commits in slices that fit one transaction; a slice
 * refused because a penalty changed is re-read and re-planned, so the result is right
 * whatever ran concurrently. Returns the transitions that were committed.
 */
export async function commitTransitionsSafely(run: TransitionRun): Promise<PenaltyTransition[]> {
  const committed: PenaltyTransition[] = [];
  const maxAttempts = run.attempts ?? 6;
  let attempts = 0;
  for (;;) {
    const penalties = await run.store.getPenalties(run.penaltyIds);
    const planned = run.plan(penalties);
    // One item kept for the lock's release, which may need an item of its own.
    const slice = transitionSlice(planned, run.releasePending ? 1 : 0);
    const last = slice.length === planned.length;
    if (slice.length === 0 && !run.releasePending) return committed;
    const commit = transitionCommit(
      slice,
      run.now(),
      last && run.releasePending ? { releasePending: run.releasePending } : {},
    );
    const result = await run.store.commitTransitions(commit);
    if (result.status === 'committed') {
      committed.push(...slice);
      attempts = 0;
      if (last) return committed;
      continue;
    }
    attempts += 1;
    if (attempts >= maxAttempts) {
      throw new Error(`penalty status changes kept conflicting (${result.status}); retry later`);
    }
    await run.pause(Math.round(20 * 2 ** attempts * (0.5 + Math.random())));
  }
}

/**
 * The summary's oldest unpaid date, from the account's unpaid count per penalty date:
 * the earliest date whose count is above zero; null when nothing is unpaid. Undefined
 * when the positive counts do not add up to `unpaidCount`: the account holds penalties
 * from before it kept counts per date (each such date reads at or below zero), so the
 * caller must look the date up another way.
 */
export function oldestUnpaidDateOf(
  countsByDate: Iterable<readonly [string, number]>,
  unpaidCount: number,
): string | null | undefined {
  if (unpaidCount <= 0) return null;
  let oldest: string | null = null;
  let counted = 0;
  for (const [date, count] of countsByDate) {
    if (count <= 0) continue;
    counted += count;
    if (oldest === null || date < oldest) oldest = date;
  }
  return counted === unpaidCount ? oldest : undefined;
}
