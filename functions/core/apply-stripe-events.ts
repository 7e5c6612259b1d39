/**
 * The subscription consumer's use case: apply one batch of queued Stripe events
 * exactly once.
 *
 * A batch's events are grouped per Stripe customer and folded in memory under the
 * order guard, so a burst of events for one customer costs one transaction (its
 * ledger entries, the account and, if it changed, the user's profile) instead of
 * one per event. Customers are independent, so their commits run concurrently.
 */
import {
  applyFact,
  type CustomerAccount,
  emptyAccount,
  type FactOutcome,
  projectUserView,
  sameView,
} from './customer-account.ts';
import type { BatchState, Clock, LedgerEntry, StoredAccount, SubscriptionStore } from './ports.ts';
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
  ledgerRetentionDays?: number;
  /** Commits in flight at once. Default 8. */
  concurrency?: number;
  /** Attempts per customer on a write race before its records fail. Default 4. */
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

  let batchState: BatchState;
  try {
    const customerIds = new Set([...byEventId.values()].map((pending) => pending.fact.customerId));
    batchState = await deps.store.loadBatchState([...byEventId.keys()], [...customerIds]);
  } catch (error) {
    for (const pending of byEventId.values()) settle(pending, failed(pending.fact, error));
    return outcomes;
  }
  const processed = batchState.processedEventIds;

  const groups = new Map<string, PendingFact[]>();
  for (const pending of byEventId.values()) {
    if (processed.has(pending.fact.eventId)) {
      settle(pending, {
        status: 'duplicate',
        eventId: pending.fact.eventId,
        type: pending.fact.type,
      });
      continue;
    }
    const group = groups.get(pending.fact.customerId) ?? [];
    group.push(pending);
    groups.set(pending.fact.customerId, group);
  }

  const work = [...groups.entries()];
  const concurrency = Math.max(1, deps.concurrency ?? 8);
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const [customerId, group] = work[next++]!;
      for (const chunk of chunks(group, MAX_EVENTS_PER_COMMIT)) {
        await commitCustomer(customerId, chunk, batchState.accounts.get(customerId), deps, settle);
        // A later chunk of the same customer must read what this one wrote.
        batchState.accounts.delete(customerId);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, work.length) }, worker));
  return outcomes;
}

/** DynamoDB transactions hold at most 100 items; leave room for account, profile and pointers. */
const MAX_EVENTS_PER_COMMIT = 90;

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

async function commitCustomer(
  customerId: string,
  initial: PendingFact[],
  prefetched: StoredAccount | undefined,
  deps: ApplyDeps,
  settle: (pending: PendingFact, outcome: RecordOutcome) => void,
): Promise<void> {
  let remaining = initial;
  const maxAttempts = deps.maxAttempts ?? 4;
  let lastError: unknown = new Error('write conflict persisted');
  for (let attempt = 1; attempt <= maxAttempts && remaining.length > 0; attempt++) {
    try {
      // The batch read already fetched the account; only a retry reads it again.
      const stored =
        attempt === 1 ? prefetched : (await deps.store.loadAccounts([customerId])).get(customerId);
      const before: CustomerAccount = stored?.account ?? emptyAccount(customerId);
      let after = before;
      const factOutcomes: FactOutcome[] = [];
      for (const pending of remaining) {
        const step = applyFact(after, pending.fact);
        after = step.account;
        factOutcomes.push(step.outcome);
      }
      const appliedAt = deps.clock.now();
      const ledger: LedgerEntry[] = remaining.map((pending, index) => ({
        eventId: pending.fact.eventId,
        type: pending.fact.type,
        customerId,
        userId: after.userId,
        outcome: factOutcomes[index]!,
        receivedAt: pending.receivedAt,
        appliedAt,
      }));
      const viewBefore = projectUserView(before);
      const viewAfter = projectUserView(after);
      const result = await deps.store.commit({
        customerId,
        expectedRevision: stored?.revision ?? 0,
        account: after,
        ledger,
        view: sameView(viewBefore, viewAfter) ? null : viewAfter,
        newSubscriptionIds: Object.keys(after.subscriptions).filter(
          (id) => !(id in before.subscriptions),
        ),
      });
      if (result.status === 'committed') {
        remaining.forEach((pending, index) => {
          settle(pending, {
            status: factOutcomes[index]!,
            eventId: pending.fact.eventId,
            type: pending.fact.type,
          });
        });
        return;
      }
      if (result.status === 'duplicate-events') {
        const duplicates = new Set(result.eventIds);
        for (const pending of remaining) {
          if (duplicates.has(pending.fact.eventId)) {
            settle(pending, {
              status: 'duplicate',
              eventId: pending.fact.eventId,
              type: pending.fact.type,
            });
          }
        }
        remaining = remaining.filter((pending) => !duplicates.has(pending.fact.eventId));
      }
      lastError = new Error(`write conflict on customer ${customerId}`);
    } catch (error) {
      // Infrastructure errors (throttling past the SDK's retries, emulator down):
      // fail the records so the queue redelivers them; nothing was committed.
      lastError = error;
      break;
    }
  }
  for (const pending of remaining) settle(pending, failed(pending.fact, lastError));
}

function failed(fact: SubscriptionEventFact, error: unknown): RecordOutcome {
  return {
    status: 'failed',
    eventId: fact.eventId,
    type: fact.type,
    error: error instanceof Error ? error : new Error(String(error)),
  };
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let index = 0; index < items.length; index += size) yield items.slice(index, index + size);
}

/** The ledger TTL for an entry applied at `appliedAt` (epoch seconds, as DynamoDB TTL wants). */
export function ledgerExpiry(appliedAt: number, retentionDays: number): number {
  return Math.floor(appliedAt / 1000) + retentionDays * 86_400;
}
