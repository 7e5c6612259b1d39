/**
 * The exactly-once checks on the events ledger, read back with the store's own
 * `readLedger` (one page per account commit, oldest first):
 *
 * - lost: an expected event id recorded in no page;
 * - applied twice: an event id recorded with outcome 'applied' in more than one page,
 *   or committed as 'applied' by more than one successful write (the meter's view);
 * - recorded twice (informational): an event id in more than one page or more than one
 *   successful write, whatever the outcome. A redelivery the consumer no longer
 *   recognises is recorded again as 'stale': harmless, but it costs ledger bytes.
 */
import type { LedgerPage, LedgerReader } from '../functions/core/subscriptions/ports.ts';
import { itemSize } from './dynamo-capacity.ts';

/** Per event id, how many successful writes committed it (from the meter's hook). */
export interface MeteredCommits {
  applied: Map<string, number>;
  recorded: Map<string, number>;
}

export function emptyMeteredCommits(): MeteredCommits {
  return { applied: new Map(), recorded: new Map() };
}

export function countCommit(
  commits: MeteredCommits,
  events: readonly { eventId: string; outcome: string | undefined }[],
): void {
  for (const { eventId, outcome } of events) {
    commits.recorded.set(eventId, (commits.recorded.get(eventId) ?? 0) + 1);
    if (outcome === 'applied')
      commits.applied.set(eventId, (commits.applied.get(eventId) ?? 0) + 1);
  }
}

export interface LedgerCheck {
  customers: number;
  pages: number;
  expectedEvents: number;
  /** Expected events recorded in some page. */
  inLedger: number;
  lost: number;
  appliedTwice: number;
  /** Informational: any outcome, more than one page or write. */
  recordedTwice: number;
  /** Event ids in pages that the check did not expect (events without a fact, other runs). */
  unexpected: number;
  meanEventsPerPage: number;
  /** By DynamoDB's sizing rules, with a 10-digit `expiresAt` (not returned by `readLedger`). */
  meanPageBytes: number;
  maxPageBytes: number;
  /** A few offending event ids. */
  examples: string[];
}

/** Runs `work` over `items`, at most `concurrency` at a time. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export async function checkLedger(
  reader: LedgerReader,
  customerIds: readonly string[],
  expectedIds: ReadonlySet<string>,
  metered?: MeteredCommits,
  concurrency = 16,
): Promise<LedgerCheck> {
  const pagesOf = new Map<string, LedgerPage[]>();
  await pool(customerIds, concurrency, async (customerId) => {
    pagesOf.set(customerId, await reader.readLedger(customerId));
  });
  // The pages counted like the meter counts writes: each page is one commit.
  const inPages = emptyMeteredCommits();
  const { recorded, applied } = inPages;
  let pages = 0;
  let events = 0;
  let bytes = 0;
  let maxPageBytes = 0;
  for (const list of pagesOf.values()) {
    for (const page of list) {
      pages += 1;
      events += page.events.length;
      const size = pageBytes(page);
      bytes += size;
      maxPageBytes = Math.max(maxPageBytes, size);
      countCommit(inPages, page.events);
    }
  }
  const examples: string[] = [];
  const note = (what: string, id: string) => {
    if (examples.length < 5) examples.push(`${what} ${id}`);
  };
  let inLedger = 0;
  for (const id of expectedIds) {
    if (recorded.has(id)) inLedger += 1;
    else note('lost', id);
  }
  const over = (...maps: (ReadonlyMap<string, number> | undefined)[]) => {
    const ids = new Set<string>();
    for (const map of maps) for (const [id, count] of map ?? []) if (count > 1) ids.add(id);
    return ids;
  };
  const twice = over(applied, metered?.applied);
  for (const id of twice) note('applied twice', id);
  let unexpected = 0;
  for (const id of recorded.keys()) if (!expectedIds.has(id)) unexpected += 1;
  return {
    customers: customerIds.length,
    pages,
    expectedEvents: expectedIds.size,
    inLedger,
    lost: expectedIds.size - inLedger,
    appliedTwice: twice.size,
    recordedTwice: over(recorded, metered?.recorded).size,
    unexpected,
    meanEventsPerPage: events / Math.max(1, pages),
    meanPageBytes: bytes / Math.max(1, pages),
    maxPageBytes,
    examples,
  };
}

/** A ledger page item's size as stored: the page plus its TTL attribute. */
function pageBytes(page: LedgerPage): number {
  const { userId, ...rest } = page;
  return itemSize({ ...rest, ...(userId ? { userId } : {}), expiresAt: 1_800_000_000 }, false);
}
