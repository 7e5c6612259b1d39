/**
 * The subscription consumer's use case: apply one batch of queued Stripe events
 * exactly once.
 *
 * A batch's events are grouped per Stripe customer and folded in memory under the
 * order guard, so a burst of events for one customer costs one transaction (one
 * ledger page, the account and, if it changed, the user's profile) instead of one
 * per event. Customers are independent, so their commits run concurrently.
 *
 * Exactly once rests on the order guard, not on a dedup lookup: applying an event
 * whose effect the account already holds changes nothing (see customer-account.ts),
 * so every event is folded, and the account's recent-events window only decides
 * whether a no-op is labelled a duplicate (not recorded again) or stale (recorded).
 */
import { createHash } from 'node:crypto';
import {
  applyFact,
  type CustomerAccount,
  emptyAccount,
  type FactOutcome,
  projectUserView,
  sameView,
} from './customer-account.ts';
import type {
  AccountCommit,
  Clock,
  CommitResult,
  LedgerEvent,
  StoredAccount,
  SubscriptionStore,
} from './ports.ts';
import {
  isSubscriptionEventType,
  MalformedEventError,
  parseEnvelope,
  type SubscriptionEventFact,
  toSubscriptionFact,
} from './stripe-event.ts';
import type { PriceTierMap } from './tiers.ts';

export interface QueuedEvent {
  /** The queue record's id: outcomes are reported per record. */
  recordId: string;
  body: string;
  /** Epoch ms the webhook verified it, when the message says so. */
  receivedAt?: number | undefined;
}

export type RecordOutcome =
  | { status: 'applied' | 'stale' | 'duplicate'; eventId: string; type: string }
  | { status: 'ignored'; eventId: string | null; type: string | null; reason: string }
  | { status: 'failed'; eventId: string | null; type: string | null; error: Error };

export interface ApplyDeps {
  store: SubscriptionStore;
  clock: Clock;
  priceTierMap: PriceTierMap;
  /** Attempts on write races before the remaining records fail (and are redelivered). Default 6. */
  maxAttempts?: number;
  onUnmappedPrice?: (priceIds: string[], fact: SubscriptionEventFact) => void;
}

interface PendingFact {
  recordIds: string[];
  fact: SubscriptionEventFact;
  receivedAt: number | null;
}

/** Applies a batch; never throws for a single bad record, reports it as failed instead. */
export async function applyStripeEvents(
  events: readonly QueuedEvent[],
  deps: ApplyDeps,
): Promise<Map<string, RecordOutcome>> {
  const outcomes = new Map<string, RecordOutcome>();
  const byEventId = new Map<string, PendingFact>();

  for (const event of events) {
    const parsed = parseRecord(event, deps);
    if ('outcome' in parsed) {
      outcomes.set(event.recordId, parsed.outcome);
      continue;
    }
    const existing = byEventId.get(parsed.fact.eventId);
    // The same event twice in one batch: one write, both records share its outcome.
    if (existing) existing.recordIds.push(event.recordId);
    else
      byEventId.set(parsed.fact.eventId, {
        recordIds: [event.recordId],
        fact: parsed.fact,
        receivedAt: event.receivedAt ?? null,
      });
  }
  if (byEventId.size === 0) return outcomes;

  const settle = (pending: PendingFact, outcome: RecordOutcome) => {
    pending.recordIds.forEach((recordId, index) => {
      // Later copies of an event within the batch are duplicates of the first.
      const copy: RecordOutcome =
        index > 0 &&
        outcome.status !== 'failed' &&
        outcome.eventId !== null &&
        outcome.type !== null
          ? { status: 'duplicate', eventId: outcome.eventId, type: outcome.type }
          : outcome;
      outcomes.set(recordId, copy);
    });
  };

  const groups = new Map<string, PendingFact[]>();
  for (const pending of byEventId.values()) {
    const group = groups.get(pending.fact.customerId) ?? [];
    group.push(pending);
    groups.set(pending.fact.customerId, group);
  }
  let accounts: Map<string, StoredAccount>;
  try {
    accounts = await deps.store.loadAccounts([...groups.keys()]);
  } catch (error) {
    for (const pending of byEventId.values()) settle(pending, failed(pending.fact, error));
    return outcomes;
  }

  await commitRounds(groups, accounts, deps, settle);
  return outcomes;
}

/** Events per commit: bounds a ledger page's size (about 100 bytes an event). */
const MAX_EVENTS_PER_COMMIT = 100;
/** Fingerprints kept per account: a customer's burst and its redeliveries fit easily. */
export const RECENT_EVENT_WINDOW = 16;

/**
 * A short, stable fingerprint of an event id for the recent-events window: 48 bits of
 * SHA-256, 8 characters. A collision could only mislabel a no-op as a duplicate.
 */
export function eventFingerprint(eventId: string): string {
  return createHash('sha256').update(eventId).digest('base64url').slice(0, 8);
}

function parseRecord(
  event: QueuedEvent,
  deps: ApplyDeps,
): { fact: SubscriptionEventFact } | { outcome: RecordOutcome } {
  let raw: unknown;
  try {
    raw = JSON.parse(event.body);
  } catch (error) {
    return {
      outcome: {
        status: 'failed',
        eventId: null,
        type: null,
        error: new MalformedEventError('body is not JSON', { cause: error }),
      },
    };
  }
  let envelope: ReturnType<typeof parseEnvelope>;
  try {
    envelope = parseEnvelope(raw);
  } catch (error) {
    return { outcome: { status: 'failed', eventId: null, type: null, error: error as Error } };
  }
  const { id: eventId, type } = envelope;
  if (!isSubscriptionEventType(type)) {
    return { outcome: { status: 'ignored', eventId, type, reason: 'unhandled event type' } };
  }
  try {
    const fact = toSubscriptionFact({ ...envelope, type }, deps.priceTierMap);
    if (fact === null) {
      return { outcome: { status: 'ignored', eventId, type, reason: 'no customer to link' } };
    }
    if (fact.kind === 'subscription' && fact.unmappedPriceIds.length > 0) {
      deps.onUnmappedPrice?.(fact.unmappedPriceIds, fact);
    }
    return { fact };
  } catch (error) {
    return { outcome: { status: 'failed', eventId, type, error: error as Error } };
  }
}

type FoldOutcome = FactOutcome | 'duplicate';

interface PlannedCommit {
  customerId: string;
  facts: PendingFact[];
  outcomes: FoldOutcome[];
  /** Null when every fact was a duplicate: nothing to write. */
  commit: AccountCommit | null;
}

/** Folds one customer's facts over its stored account into a commit. Pure. */
function planCommit(
  customerId: string,
  facts: PendingFact[],
  stored: StoredAccount | undefined,
  appliedAt: number,
): PlannedCommit {
  const before: CustomerAccount = stored?.account ?? emptyAccount(customerId);
  const recent = stored?.recentEvents ?? [];
  const seen = new Set(recent);
  let after = before;
  const outcomes: FoldOutcome[] = [];
  const recorded: LedgerEvent[] = [];
  const fingerprints: string[] = [];
  for (const pending of facts) {
    const step = applyFact(after, pending.fact);
    const fingerprint = eventFingerprint(pending.fact.eventId);
    // A change always wins over the window: a fingerprint can mislabel, never drop.
    const outcome: FoldOutcome =
      step.outcome === 'stale' && seen.has(fingerprint) ? 'duplicate' : step.outcome;
    outcomes.push(outcome);
    after = step.account;
    if (outcome === 'duplicate') continue;
    recorded.push({
      eventId: pending.fact.eventId,
      type: pending.fact.type,
      outcome,
      receivedAt: pending.receivedAt,
    });
    fingerprints.push(fingerprint);
  }
  if (recorded.length === 0) return { customerId, facts, outcomes, commit: null };
  const viewBefore = projectUserView(before);
  const viewAfter = projectUserView(after);
  return {
    customerId,
    facts,
    outcomes,
    commit: {
      customerId,
      expectedRevision: stored?.revision ?? 0,
      account: after,
      recentEvents: [...recent, ...fingerprints].slice(-RECENT_EVENT_WINDOW),
      ledger: { appliedAt, events: recorded },
      view: sameView(viewBefore, viewAfter) ? null : viewAfter,
      newSubscriptionIds: Object.keys(after.subscriptions).filter(
        (id) => !(id in before.subscriptions),
      ),
    },
  };
}

/**
 * Commits every customer's folded events; the store packs the commits of many
 * customers into few transactions. After a round with lost races (an account
 * written since it was read), every commit still pending is re-read and re-folded;
 * the losers then go one per transaction, the rest packed again.
 */
async function commitRounds(
  groups: Map<string, PendingFact[]>,
  accounts: Map<string, StoredAccount>,
  deps: ApplyDeps,
  settle: (pending: PendingFact, outcome: RecordOutcome) => void,
): Promise<void> {
  const pending = new Map(groups);
  const maxAttempts = deps.maxAttempts ?? 6;
  const settleAll = (plan: PlannedCommit) =>
    plan.facts.forEach((fact, i) => {
      settle(fact, { status: plan.outcomes[i]!, eventId: fact.fact.eventId, type: fact.fact.type });
    });
  let lastError: unknown = new Error('write conflict persisted');
  /** Customers whose last commit lost a race (re-read since). */
  let lostRace = new Set<string>();
  for (let attempt = 1; attempt <= maxAttempts && pending.size > 0; attempt++) {
    const appliedAt = deps.clock.now();
    const plans: (PlannedCommit & { commit: AccountCommit })[] = [];
    for (const [customerId, facts] of pending) {
      const chunk = facts.slice(0, MAX_EVENTS_PER_COMMIT);
      const plan = planCommit(customerId, chunk, accounts.get(customerId), appliedAt);
      if (plan.commit) {
        plans.push({ ...plan, commit: plan.commit });
        continue;
      }
      // Only redeliveries of what the account already holds: acknowledge, write nothing.
      settleAll(plan);
      const left = facts.slice(chunk.length);
      if (left.length > 0) pending.set(customerId, left);
      else pending.delete(customerId);
    }
    if (plans.length === 0) continue;
    let results: CommitResult[];
    try {
      results = await commitPacked(plans, lostRace, deps.store);
    } catch (error) {
      lastError = error;
      break;
    }
    const losers: string[] = [];
    plans.forEach((plan, index) => {
      const result = results[index]!;
      const { customerId, commit } = plan;
      const facts = pending.get(customerId)!;
      if (result.status === 'committed') {
        settleAll(plan);
        // Later chunks of this customer continue from what was just written.
        accounts.set(customerId, {
          account: commit.account,
          revision: commit.expectedRevision + 1,
          recentEvents: commit.recentEvents,
        });
        const left = facts.slice(plan.facts.length);
        if (left.length > 0) pending.set(customerId, left);
        else pending.delete(customerId);
      } else if (result.status === 'revision-conflict') {
        losers.push(customerId);
      } else if (result.status === 'failed') {
        // Infrastructure error (throttling past the SDK's retries, table down):
        // fail these records so the queue redelivers them; nothing was committed.
        for (const fact of facts) settle(fact, failed(fact.fact, result.error));
        pending.delete(customerId);
      }
      // 'aborted': cancelled alongside a loser; re-read and resent next round.
    });
    lastError = new Error(`write conflicts persisted for ${pending.size} customer(s)`);
    lostRace = new Set(losers);
    if (pending.size > 0) {
      // Re-read every commit still pending, not only the losers: one that was merely
      // cancelled alongside a loser may have been overtaken by a concurrent batch too,
      // and resending it on a stale revision would cancel its new pack again.
      const reload = [...pending.keys()];
      try {
        const fresh = await deps.store.loadAccounts(reload);
        for (const customerId of reload) {
          const stored = fresh.get(customerId);
          if (stored) accounts.set(customerId, stored);
          else accounts.delete(customerId);
        }
      } catch (error) {
        lastError = error;
        break;
      }
    }
  }
  for (const facts of pending.values()) {
    for (const fact of facts) settle(fact, failed(fact.fact, lastError));
  }
}

/**
 * Sends the commits packed into few transactions, except those that just lost a
 * race: each of those goes alone, so a customer that keeps losing (a hot account
 * several consumers write at once) cannot cancel the others' pack again.
 */
async function commitPacked(
  plans: readonly { customerId: string; commit: AccountCommit }[],
  lostRace: ReadonlySet<string>,
  store: SubscriptionStore,
): Promise<CommitResult[]> {
  const packed: number[] = [];
  const alone: number[] = [];
  plans.forEach((plan, index) => {
    (lostRace.has(plan.customerId) ? alone : packed).push(index);
  });
  const [packedResults, aloneResults] = await Promise.all([
    packed.length > 0 ? store.commitAll(packed.map((index) => plans[index]!.commit)) : [],
    Promise.all(alone.map((index) => store.commit(plans[index]!.commit))),
  ]);
  const results: CommitResult[] = new Array(plans.length);
  packed.forEach((index, position) => {
    results[index] = packedResults[position]!;
  });
  alone.forEach((index, position) => {
    results[index] = aloneResults[position]!;
  });
  return results;
}

function failed(fact: SubscriptionEventFact, error: unknown): RecordOutcome {
  return {
    status: 'failed',
    eventId: fact.eventId,
    type: fact.type,
    error: error instanceof Error ? error : new Error(String(error)),
  };
}
