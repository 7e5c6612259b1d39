/** Ports the subscription use cases depend on; adapters implement them. */
import type { CustomerAccount, FactOutcome, UserSubscriptionView } from './customer-account.ts';

/** An account as stored, with the revision used for optimistic concurrency. */
export interface StoredAccount {
  account: CustomerAccount;
  /** 0 when the account does not exist yet. */
  revision: number;
}

/** One events-ledger entry: written in the same transaction as the change it records. */
export interface LedgerEntry {
  eventId: string;
  type: string;
  customerId: string;
  userId: string | null;
  outcome: FactOutcome;
  /** Epoch ms the webhook verified the event (from the queue message), if known. */
  receivedAt: number | null;
  /** Epoch ms of the commit. */
  appliedAt: number;
}

/** Everything one customer's events change, committed atomically or not at all. */
export interface AccountCommit {
  customerId: string;
  /** Revision read before folding; the commit fails if someone else wrote since. */
  expectedRevision: number;
  account: CustomerAccount;
  ledger: LedgerEntry[];
  /** Set when the user's view changed. */
  view: UserSubscriptionView | null;
  /** Subscriptions seen for the first time: their id → customer pointer is written. */
  newSubscriptionIds: string[];
}

export type CommitResult =
  | { status: 'committed' }
  /** Some events were already in the ledger (a concurrent duplicate won the race). */
  | { status: 'duplicate-events'; eventIds: string[] }
  /** The account changed since it was read. */
  | { status: 'revision-conflict' }
  /** Not written because another commit sharing its transaction failed: resend as is. */
  | { status: 'aborted' }
  /** The store failed (unreachable, throttled past retries): nothing of it was written. */
  | { status: 'failed'; error: Error };

/** What a batch needs to know before folding: seen event ids and current accounts. */
export interface BatchState {
  processedEventIds: Set<string>;
  accounts: Map<string, StoredAccount>;
}

export interface SubscriptionStore {
  /** Both reads of a batch in one round trip where the store allows it. */
  loadBatchState(eventIds: readonly string[], customerIds: readonly string[]): Promise<BatchState>;
  /** Reads accounts with strong consistency; missing ones are absent from the map. */
  loadAccounts(customerIds: readonly string[]): Promise<Map<string, StoredAccount>>;
  commit(commit: AccountCommit): Promise<CommitResult>;
  /**
   * Commits many customers' changes, each atomically, packed into as few store
   * transactions as the store allows; results in the order of `commits`.
   */
  commitAll(commits: readonly AccountCommit[]): Promise<CommitResult[]>;
}

/** The read model behind the read API. */
export interface UserViewReader {
  getUserView(userId: string): Promise<UserSubscriptionView | null>;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
