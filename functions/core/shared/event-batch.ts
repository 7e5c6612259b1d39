/**
 * Applies one batch of queued Stripe events exactly once, for any event family whose
 * state is an aggregate folded under an order guard (a customer's account, a payment).
 *
 * A batch's events are grouped per aggregate and folded in memory, so a burst of
 * events for one aggregate costs one commit (its new state and one ledger page)
 * instead of one per event. Aggregates are independent, so their commits run
 * concurrently, packed into few store transactions by the adapter.
 *
 * Exactly once rests on the order guard, not on a dedup lookup: applying an event
 * whose effect the aggregate already holds changes nothing, so every event is folded,
 * and the aggregate's recent-events window only decides whether a no-op is labelled
 * a duplicate (not recorded again) or stale (recorded). A lost race (the aggregate
 * was written since it was read) re-reads and re-folds; a commit that keeps losing
 * fails its records, which the queue redelivers.
 */
import type { Clock } from './clock.ts';
import { asError } from './errors.ts';
import { eventFingerprint, type LedgerEvent, RECENT_EVENT_WINDOW } from './event-ledger.ts';
import {
  MalformedEventError,
  parseQueuedEvent,
  type StripeEventEnvelope,
} from './stripe-envelope.ts';

export interface QueuedEvent {
  /** The queue record's id: outcomes are reported per record. */
  recordId: string;
  body: string;
  /** Epoch ms the webhook verified it, when the message says so. */
  receivedAt?: number | undefined;
}

export type RecordOutcome =
  | {
      status: 'applied' | 'stale' | 'duplicate';
      eventId: string;
      type: string;
      /** Stripe's `created` of the event (epoch s), for the end-to-end lag. */
      created: number;
    }
  | { status: 'ignored'; eventId: string | null; type: string | null; reason: string }
  | { status: 'failed'; eventId: string | null; type: string | null; error: Error };

export type CommitResult =
  | { status: 'committed' }
  /** The aggregate changed since it was read (a concurrent batch won). */
  | { status: 'revision-conflict' }
  /** Not written because another commit sharing its transaction failed: resend as is. */
  | { status: 'aborted' }
  /** The store failed (unreachable, throttled past retries): nothing of it was written. */
  | { status: 'failed'; error: Error };

/** What every family's fact carries: the event it came from. */
export interface FactStamp {
  eventId: string;
  type: string;
  /** Stripe's `created` of the event (epoch s). */
  created: number;
}

export interface PendingFact<F> {
  recordIds: string[];
  fact: F;
  receivedAt: number | null;
}

export type FoldOutcome = 'applied' | 'stale' | 'duplicate';

/** One aggregate's events folded over its stored state: what to write, if anything. */
export interface PlannedCommit<C> {
  /** One per fact, in order. */
  outcomes: FoldOutcome[];
  /** Null when every fact was a duplicate: nothing to write. */
  commit: C | null;
}

/**
 * An event family's part: how to read its facts, key them, fold them and store them.
 * `S` is the aggregate as stored (with its revision), `C` one aggregate's commit.
 */
export interface EventFamily<F extends FactStamp, S, C> {
  /** The family's fact, null (with a reason) when the event is not for this family. */
  toFact(envelope: StripeEventEnvelope): F | { ignored: string };
  aggregateKey(fact: F): string;
  /**
   * Reads what the fold needs beside the aggregates (e.g. a link another context
   * keeps), once per batch, before the aggregates are loaded. A failure fails the
   * batch's records, like a failed load.
   */
  prepare?(facts: readonly F[]): Promise<void>;
  /** Folds one aggregate's facts over its stored state into a commit. Pure. */
  plan(
    key: string,
    facts: readonly PendingFact<F>[],
    stored: S | undefined,
    appliedAt: number,
  ): PlannedCommit<C>;
  /** The stored aggregate a successful commit leaves, so later chunks continue from it. */
  storedAfter(commit: C): S;
  load(keys: readonly string[]): Promise<Map<string, S>>;
  commit(commit: C): Promise<CommitResult>;
  commitAll(commits: readonly C[]): Promise<CommitResult[]>;
}

export interface ApplyBatchOptions {
  clock: Clock;
  /** Attempts on write races before the remaining records fail (and are redelivered). Default 6. */
  maxAttempts?: number;
  /** Waits before a round that retries failed commits. Default: a timer (tests pass a fake). */
  pause?: (ms: number) => Promise<void>;
}

/** Base of the jittered wait before a round that resends commits whose pack failed. */
const FAILED_PACK_BACKOFF_MS = 50;

/** Events per commit: bounds a ledger page's size (about 100 bytes an event). */
const MAX_EVENTS_PER_COMMIT = 100;

/** Applies a batch; never throws for a single bad record, reports it as failed instead. */
export async function applyEventBatch<F extends FactStamp, S, C>(
  events: readonly QueuedEvent[],
  family: EventFamily<F, S, C>,
  options: ApplyBatchOptions,
): Promise<Map<string, RecordOutcome>> {
  const outcomes = new Map<string, RecordOutcome>();
  const byEventId = new Map<string, PendingFact<F>>();

  for (const event of events) {
    const parsed = parseRecord(event, family);
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

  const settle = (pending: PendingFact<F>, outcome: RecordOutcome) => {
    pending.recordIds.forEach((recordId, index) => {
      // Later copies of an event within the batch are duplicates of the first.
      const copy: RecordOutcome =
        index > 0 && outcome.status !== 'failed' && outcome.status !== 'ignored'
          ? { ...outcome, status: 'duplicate' }
          : outcome;
      outcomes.set(recordId, copy);
    });
  };

  const groups = new Map<string, PendingFact<F>[]>();
  for (const pending of byEventId.values()) {
    const key = family.aggregateKey(pending.fact);
    const group = groups.get(key) ?? [];
    group.push(pending);
    groups.set(key, group);
  }
  let stored: Map<string, S>;
  try {
    await family.prepare?.([...byEventId.values()].map((pending) => pending.fact));
    stored = await family.load([...groups.keys()]);
  } catch (error) {
    for (const pending of byEventId.values()) settle(pending, failed(pending.fact, error));
    return outcomes;
  }

  await commitRounds(groups, stored, family, options, settle);
  return outcomes;
}

function parseRecord<F extends FactStamp>(
  event: QueuedEvent,
  family: EventFamily<F, unknown, unknown>,
): { fact: F } | { outcome: RecordOutcome } {
  let envelope: StripeEventEnvelope;
  try {
    envelope = parseQueuedEvent(event.body);
  } catch (error) {
    return { outcome: { status: 'failed', eventId: null, type: null, error: asError(error) } };
  }
  const { id: eventId, type } = envelope;
  try {
    const fact = family.toFact(envelope);
    if ('ignored' in fact)
      return { outcome: { status: 'ignored', eventId, type, reason: fact.ignored } };
    return { fact };
  } catch (error) {
    const reason = error instanceof MalformedEventError ? error : asError(error);
    return { outcome: { status: 'failed', eventId, type, error: reason } };
  }
}

/**
 * The fold every family shares: applies each fact in turn and tells a redelivery
 * (a no-op whose fingerprint the window holds: not recorded again) from a stale
 * event (a no-op it does not hold: recorded). A change always wins over the
 * window, so a fingerprint collision can mislabel, never drop, an event.
 */
export function foldWithWindow<F extends FactStamp, A>(
  before: A,
  recentEvents: readonly string[],
  facts: readonly PendingFact<F>[],
  apply: (state: A, fact: F) => { state: A; outcome: 'applied' | 'stale' },
): { after: A; outcomes: FoldOutcome[]; recorded: LedgerEvent[]; recentEvents: string[] } {
  const seen = new Set(recentEvents);
  let after = before;
  const outcomes: FoldOutcome[] = [];
  const recorded: LedgerEvent[] = [];
  const fingerprints: string[] = [];
  for (const pending of facts) {
    const step = apply(after, pending.fact);
    const fingerprint = eventFingerprint(pending.fact.eventId);
    const outcome: FoldOutcome =
      step.outcome === 'stale' && seen.has(fingerprint) ? 'duplicate' : step.outcome;
    outcomes.push(outcome);
    after = step.state;
    if (outcome === 'duplicate') continue;
    recorded.push({
      eventId: pending.fact.eventId,
      type: pending.fact.type,
      outcome,
      receivedAt: pending.receivedAt,
    });
    fingerprints.push(fingerprint);
  }
  return {
    after,
    outcomes,
    recorded,
    recentEvents: [...recentEvents, ...fingerprints].slice(-RECENT_EVENT_WINDOW),
  };
}

/**
 * Commits every aggregate's folded events; the store packs the commits of many
 * aggregates into few transactions. After a round with lost races, every commit
 * still pending is re-read and re-folded; the losers then go one per transaction,
 * the rest packed again.
 */
async function commitRounds<F extends FactStamp, S, C>(
  groups: Map<string, PendingFact<F>[]>,
  stored: Map<string, S>,
  family: EventFamily<F, S, C>,
  options: ApplyBatchOptions,
  settle: (pending: PendingFact<F>, outcome: RecordOutcome) => void,
): Promise<void> {
  const pending = new Map(groups);
  const maxAttempts = options.maxAttempts ?? 6;
  const settleAll = (facts: readonly PendingFact<F>[], outcomes: readonly FoldOutcome[]) =>
    facts.forEach((fact, i) => {
      const { eventId, type, created } = fact.fact;
      settle(fact, { status: outcomes[i]!, eventId, type, created });
    });
  let lastError: unknown = new Error('write conflict persisted');
  /** Aggregates whose last commit lost a race or failed in a shared pack: sent alone next. */
  let lostRace = new Set<string>();
  let backoff = false;
  const pause = options.pause ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  for (let attempt = 1; attempt <= maxAttempts && pending.size > 0; attempt++) {
    // Full jitter: concurrent consumers that were throttled together do not return together.
    if (backoff) await pause(Math.random() * FAILED_PACK_BACKOFF_MS * 2 ** (attempt - 1));
    backoff = false;
    const appliedAt = options.clock.now();
    const plans: { key: string; facts: PendingFact<F>[]; outcomes: FoldOutcome[]; commit: C }[] =
      [];
    for (const [key, facts] of pending) {
      const chunk = facts.slice(0, MAX_EVENTS_PER_COMMIT);
      const plan = family.plan(key, chunk, stored.get(key), appliedAt);
      if (plan.commit !== null) {
        plans.push({ key, facts: chunk, outcomes: plan.outcomes, commit: plan.commit });
        continue;
      }
      // Only redeliveries of what the aggregate already holds: acknowledge, write nothing.
      settleAll(chunk, plan.outcomes);
      const left = facts.slice(chunk.length);
      if (left.length > 0) pending.set(key, left);
      else pending.delete(key);
    }
    if (plans.length === 0) continue;
    let results: CommitResult[];
    try {
      results = await commitPacked(plans, lostRace, family);
    } catch (error) {
      lastError = error;
      break;
    }
    const losers: string[] = [];
    const sentAlone = lostRace;
    plans.forEach((plan, index) => {
      const result = results[index]!;
      const facts = pending.get(plan.key)!;
      if (result.status === 'committed') {
        settleAll(plan.facts, plan.outcomes);
        // Later chunks of this aggregate continue from what was just written.
        stored.set(plan.key, family.storedAfter(plan.commit));
        const left = facts.slice(plan.facts.length);
        if (left.length > 0) pending.set(plan.key, left);
        else pending.delete(plan.key);
      } else if (result.status === 'revision-conflict') {
        losers.push(plan.key);
      } else if (result.status === 'failed' && !sentAlone.has(plan.key)) {
        // Its pack failed (throttled past the SDK's retries, or one member the store
        // refused): nothing was written. Resend it alone after a jittered wait, so a
        // commit that cannot be written fails only its own records.
        losers.push(plan.key);
        backoff = true;
        lastError = result.error;
      } else if (result.status === 'failed') {
        // Failed on its own too: fail these records so the queue redelivers them.
        for (const fact of facts) settle(fact, failed(fact.fact, result.error));
        pending.delete(plan.key);
      }
      // 'aborted': cancelled alongside a loser; re-read and resent next round.
    });
    if (!backoff)
      lastError = new Error(`write conflicts persisted for ${pending.size} aggregate(s)`);
    lostRace = new Set(losers);
    if (pending.size > 0) {
      // Re-read every commit still pending, not only the losers: one that was merely
      // cancelled alongside a loser may have been overtaken by a concurrent batch too,
      // and resending it on a stale revision would cancel its new pack again.
      const reload = [...pending.keys()];
      try {
        const fresh = await family.load(reload);
        for (const key of reload) {
          const value = fresh.get(key);
          if (value !== undefined) stored.set(key, value);
          else stored.delete(key);
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
 * race: each of those goes alone, so an aggregate that keeps losing (a hot one
 * several consumers write at once) cannot cancel the others' pack again.
 */
async function commitPacked<C>(
  plans: readonly { key: string; commit: C }[],
  lostRace: ReadonlySet<string>,
  family: Pick<EventFamily<FactStamp, unknown, C>, 'commit' | 'commitAll'>,
): Promise<CommitResult[]> {
  const packed: number[] = [];
  const alone: number[] = [];
  plans.forEach((plan, index) => {
    (lostRace.has(plan.key) ? alone : packed).push(index);
  });
  const [packedResults, aloneResults] = await Promise.all([
    packed.length > 0 ? family.commitAll(packed.map((index) => plans[index]!.commit)) : [],
    Promise.all(alone.map((index) => family.commit(plans[index]!.commit))),
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

function failed(fact: FactStamp, error: unknown): RecordOutcome {
  return { status: 'failed', eventId: fact.eventId, type: fact.type, error: asError(error) };
}
