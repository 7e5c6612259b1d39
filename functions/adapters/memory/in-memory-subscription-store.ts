/**
 * In-memory SubscriptionStore with the same atomicity and conflict semantics as
 * the DynamoDB adapter (a contract suite runs against both), for unit tests and
 * property tests that need thousands of runs.
 */
import type { UserSubscriptionView } from '../../core/customer-account.ts';
import type {
  AccountCommit,
  BatchState,
  CommitResult,
  LedgerEntry,
  StoredAccount,
  SubscriptionStore,
  UserViewReader,
} from '../../core/ports.ts';

export class InMemorySubscriptionStore implements SubscriptionStore, UserViewReader {
  readonly ledger = new Map<string, LedgerEntry>();
  readonly accounts = new Map<string, StoredAccount>();
  readonly views = new Map<string, UserSubscriptionView>();
  readonly subscriptionPointers = new Map<string, string>();
  /** Counts committed transactions, for assertions on write amplification. */
  commits = 0;

  async loadBatchState(
    eventIds: readonly string[],
    customerIds: readonly string[],
  ): Promise<BatchState> {
    return {
      processedEventIds: await this.findProcessedEventIds(eventIds),
      accounts: await this.loadAccounts(customerIds),
    };
  }

  async findProcessedEventIds(eventIds: readonly string[]): Promise<Set<string>> {
    return new Set(eventIds.filter((eventId) => this.ledger.has(eventId)));
  }

  async loadAccounts(customerIds: readonly string[]): Promise<Map<string, StoredAccount>> {
    const found = new Map<string, StoredAccount>();
    for (const customerId of customerIds) {
      const stored = this.accounts.get(customerId);
      if (stored) found.set(customerId, structuredClone(stored));
    }
    return found;
  }

  async commit(commit: AccountCommit): Promise<CommitResult> {
    const refused = this.#check(commit);
    if (refused) return refused;

    for (const entry of commit.ledger) this.ledger.set(entry.eventId, { ...entry });
    this.accounts.set(commit.customerId, {
      account: structuredClone(commit.account),
      revision: commit.expectedRevision + 1,
    });
    if (commit.view) this.views.set(commit.view.userId, { ...commit.view });
    for (const subscriptionId of commit.newSubscriptionIds) {
      this.subscriptionPointers.set(subscriptionId, commit.customerId);
    }
    this.commits += 1;
    return { status: 'committed' };
  }

  /**
   * `packed: true` behaves like one DynamoDB transaction for all commits: if any
   * fails, the others are `aborted`. Default: each commit stands alone.
   */
  constructor(private readonly options: { packed?: boolean } = {}) {}

  async commitAll(commits: readonly AccountCommit[]): Promise<CommitResult[]> {
    if (this.options.packed) {
      const checks = commits.map((commit) => this.#check(commit));
      if (checks.some((check) => check !== null)) {
        return checks.map((check) => check ?? { status: 'aborted' });
      }
    }
    const results: CommitResult[] = [];
    for (const commit of commits) results.push(await this.commit(commit));
    return results;
  }

  #check(commit: AccountCommit): CommitResult | null {
    const duplicates = commit.ledger
      .filter((entry) => this.ledger.has(entry.eventId))
      .map((entry) => entry.eventId);
    if (duplicates.length > 0) return { status: 'duplicate-events', eventIds: duplicates };
    const currentRevision = this.accounts.get(commit.customerId)?.revision ?? 0;
    if (currentRevision !== commit.expectedRevision) return { status: 'revision-conflict' };
    return null;
  }

  async getUserView(userId: string): Promise<UserSubscriptionView | null> {
    return this.views.get(userId) ?? null;
  }
}
