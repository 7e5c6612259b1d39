/**
 * The subscription consumer's use case: apply one batch of queued Stripe events to
 * the customers' accounts exactly once. The batch mechanics (group, fold, commit,
 * re-read after a lost race) are the shared `applyEventBatch`; this file says what
 * a subscription aggregate is: one Stripe customer's account, its ledger page and,
 * when the user's view changed, the user's profile.
 */
import type { Clock } from '../shared/clock.ts';
import {
  applyEventBatch,
  type EventFamily,
  foldWithWindow,
  type PendingFact,
  type PlannedCommit,
  type QueuedEvent,
  type RecordOutcome,
} from '../shared/event-batch.ts';
import type { PriceTierMap } from '../shared/tiers.ts';
import {
  applyFact,
  type CustomerAccount,
  emptyAccount,
  projectUserView,
  sameView,
} from './customer-account.ts';
import type { AccountCommit, StoredAccount, SubscriptionStore } from './ports.ts';
import {
  isSubscriptionEventType,
  type SubscriptionEventFact,
  toSubscriptionFact,
} from './subscription-facts.ts';

export type { QueuedEvent, RecordOutcome };

export interface ApplyDeps {
  store: SubscriptionStore;
  clock: Clock;
  priceTierMap: PriceTierMap;
  /** Attempts on write races before the remaining records fail (and are redelivered). Default 6. */
  maxAttempts?: number;
  /** Waits before resending commits whose pack failed. Default: a timer. */
  pause?: (ms: number) => Promise<void>;
  onUnmappedPrice?: (priceIds: string[], fact: SubscriptionEventFact) => void;
  /** A commit marks a customer for resync (same-second updates the payloads cannot order). */
  onUnresolvedTie?: (customerId: string, subscriptionIds: string[]) => void;
}

/** Applies a batch; never throws for a single bad record, reports it as failed instead. */
export function applySubscriptionEvents(
  events: readonly QueuedEvent[],
  deps: ApplyDeps,
): Promise<Map<string, RecordOutcome>> {
  return applyEventBatch(events, subscriptionFamily(deps), {
    clock: deps.clock,
    ...(deps.maxAttempts ? { maxAttempts: deps.maxAttempts } : {}),
    ...(deps.pause ? { pause: deps.pause } : {}),
  });
}

function subscriptionFamily(
  deps: ApplyDeps,
): EventFamily<SubscriptionEventFact, StoredAccount, AccountCommit> {
  const { store } = deps;
  return {
    toFact(envelope) {
      const { type } = envelope;
      if (!isSubscriptionEventType(type)) return { ignored: 'unhandled event type' };
      const fact = toSubscriptionFact({ ...envelope, type }, deps.priceTierMap);
      if (fact === null) return { ignored: 'no customer to link' };
      if (fact.kind === 'subscription' && fact.unmappedPriceIds.length > 0) {
        deps.onUnmappedPrice?.(fact.unmappedPriceIds, fact);
      }
      return fact;
    },
    aggregateKey: (fact) => fact.customerId,
    plan(key, facts, stored, appliedAt) {
      const planned = planAccountCommit(key, facts, stored, appliedAt);
      const ties = planned.commit?.account.unresolvedTies;
      // Counted when planned: a commit retried after a lost race may count twice.
      if (planned.commit?.resyncMark === 'set' && ties) {
        deps.onUnresolvedTie?.(key, Object.keys(ties));
      }
      return planned;
    },
    storedAfter: (commit) => ({
      account: commit.account,
      revision: commit.expectedRevision + 1,
      recentEvents: commit.recentEvents,
    }),
    load: (keys) => store.loadAccounts(keys),
    commit: (commit) => store.commit(commit),
    commitAll: (commits) => store.commitAll(commits),
  };
}

/** Folds one customer's facts over its stored account into a commit. Pure. */
export function planAccountCommit(
  customerId: string,
  facts: readonly PendingFact<SubscriptionEventFact>[],
  stored: StoredAccount | undefined,
  appliedAt: number,
): PlannedCommit<AccountCommit> {
  const before: CustomerAccount = stored?.account ?? emptyAccount(customerId);
  const fold = foldWithWindow(before, stored?.recentEvents ?? [], facts, (account, fact) => {
    const step = applyFact(account, fact);
    return { state: step.account, outcome: step.outcome };
  });
  if (fold.recorded.length === 0) return { outcomes: fold.outcomes, commit: null };
  const after = fold.after;
  const viewBefore = projectUserView(before);
  const viewAfter = projectUserView(after);
  return {
    outcomes: fold.outcomes,
    commit: {
      customerId,
      expectedRevision: stored?.revision ?? 0,
      account: after,
      recentEvents: fold.recentEvents,
      ledger: { appliedAt, events: fold.recorded },
      view: sameView(viewBefore, viewAfter) ? null : viewAfter,
      unlinkedUserId:
        before.userId !== null && before.userId !== after.userId ? before.userId : null,
      newSubscriptionIds: Object.keys(after.subscriptions).filter(
        (id) => !(id in before.subscriptions),
      ),
      resyncMark: resyncMarkOf(before, after),
    },
  };
}

function resyncMarkOf(
  before: CustomerAccount,
  after: CustomerAccount,
): AccountCommit['resyncMark'] {
  const was = JSON.stringify(before.unresolvedTies ?? {});
  const is = JSON.stringify(after.unresolvedTies ?? {});
  if (was === is) return null;
  return is === '{}' ? 'clear' : 'set';
}
