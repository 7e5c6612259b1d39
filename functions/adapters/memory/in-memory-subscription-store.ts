/**
 * In-memory SubscriptionStore with the same atomicity and conflict semantics as
 * the DynamoDB adapter (a contract suite runs against both), for unit tests and
 * property tests that need thousands of runs.
 */
import type { UserSubscriptionView } from '../../core/subscriptions/customer-account.ts';
import type {
  AccountCommit,
  CommitResult,
  LedgerPage,
  LedgerReader,
  ResyncMark,
  ResyncMarkReader,
  StoredAccount,
  SubscriptionStore,
  UserLookup,
  UserViewReader,
} from '../../core/subscriptions/ports.ts';
import {
  bestView,
  type CustomerViews,
  customerViewsOfLegacy,
  withCustomerView,
} from '../../core/subscriptions/user-standing.ts';

export class InMemorySubscriptionStore
  implements SubscriptionStore, LedgerReader, UserViewReader, ResyncMarkReader
{
  /** Ledger pages per customer, oldest first. */
  readonly ledger = new Map<string, LedgerPage[]>();
  readonly accounts = new Map<string, StoredAccount>();
  /** The view each profile shows: the best of its customers' views. */
  readonly views = new Map<string, UserSubscriptionView>();
  /** The views of each user's customers, as the profile keeps them. */
  readonly customerViews = new Map<string, CustomerViews>();
  /** Each profile's views revision: a commit planned on profiles read earlier is checked against it. */
  readonly #viewsRevisions = new Map<string, number>();
  readonly resyncMarks = new Map<string, ResyncMark>();
  readonly subscriptionPointers = new Map<string, string>();
  /** Counts committed transactions, for assertions on write amplification. */
  commits = 0;

  /**
   * `packed: true` behaves like one DynamoDB transaction for all commits: if any
   * fails, the others are `aborted`. Default: each commit stands alone.
   */
  constructor(private readonly options: { packed?: boolean } = {}) {}

  async loadAccounts(customerIds: readonly string[]): Promise<Map<string, StoredAccount>> {
    const found = new Map<string, StoredAccount>();
    for (const customerId of customerIds) {
      const stored = this.accounts.get(customerId);
      if (stored) found.set(customerId, structuredClone(stored));
    }
    return found;
  }

  async readLedger(customerId: string): Promise<LedgerPage[]> {
    return structuredClone(this.ledger.get(customerId) ?? []);
  }

  async commit(commit: AccountCommit): Promise<CommitResult> {
    const refused = this.#check(commit);
    if (refused) return refused;

    const revision = commit.expectedRevision + 1;
    const pages = this.ledger.get(commit.customerId) ?? [];
    pages.push({
      customerId: commit.customerId,
      revision,
      userId: commit.account.userId,
      appliedAt: commit.ledger.appliedAt,
      events: structuredClone(commit.ledger.events),
    });
    this.ledger.set(commit.customerId, pages);
    this.accounts.set(commit.customerId, {
      account: structuredClone(commit.account),
      revision,
      recentEvents: [...commit.recentEvents],
    });
    if (commit.unlinkedUserId)
      this.#setCustomerView(commit.unlinkedUserId, commit.customerId, null);
    if (commit.view) this.#setCustomerView(commit.view.userId, commit.customerId, commit.view);
    if (commit.resyncMark === 'set') {
      this.resyncMarks.set(commit.customerId, {
        customerId: commit.customerId,
        subscriptions: { ...commit.account.unresolvedTies },
        markedAt: commit.ledger.appliedAt,
      });
    } else if (commit.resyncMark === 'clear') {
      this.resyncMarks.delete(commit.customerId);
    }
    for (const subscriptionId of commit.newSubscriptionIds) {
      this.subscriptionPointers.set(subscriptionId, commit.customerId);
    }
    this.commits += 1;
    return { status: 'committed' };
  }

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

  /** Every ledger page, all customers: for assertions on what was recorded. */
  allLedgerEvents(): LedgerPage['events'] {
    return [...this.ledger.values()].flatMap((pages) => pages.flatMap((page) => page.events));
  }

  #setCustomerView(userId: string, customerId: string, view: UserSubscriptionView | null): void {
    const before =
      this.customerViews.get(userId) ?? customerViewsOfLegacy(this.views.get(userId) ?? null);
    const after = withCustomerView(before, customerId, view ? { ...view } : null);
    this.customerViews.set(userId, after);
    this.#viewsRevisions.set(userId, (this.#viewsRevisions.get(userId) ?? 0) + 1);
    const best = bestView(after);
    if (best) this.views.set(userId, best);
    else this.views.delete(userId);
  }

  #check(commit: AccountCommit): CommitResult | null {
    const currentRevision = this.accounts.get(commit.customerId)?.revision ?? 0;
    if (currentRevision !== commit.expectedRevision) return { status: 'revision-conflict' };
    for (const [userId, read] of commit.profilesRead ?? []) {
      if (read.revision !== (this.#viewsRevisions.get(userId) ?? 0)) {
        return { status: 'revision-conflict' };
      }
    }
    return null;
  }

  async listResyncMarks(): Promise<ResyncMark[]> {
    return [...this.resyncMarks.values()].map((mark) => structuredClone(mark));
  }

  async getUserView(userId: string): Promise<UserSubscriptionView | null> {
    return this.views.get(userId) ?? null;
  }

  async lookupUser(userId: string): Promise<UserLookup> {
    const view = this.views.get(userId) ?? null;
    const views = this.customerViews.get(userId);
    return {
      view,
      stripeCustomerId: view?.stripeCustomerId ?? null,
      profile: {
        exists: views !== undefined || view !== null,
        views: structuredClone(views ?? customerViewsOfLegacy(view)),
        revision: this.#viewsRevisions.get(userId) ?? 0,
      },
    };
  }
}
