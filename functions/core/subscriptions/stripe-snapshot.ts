/**
 * Stores what Stripe's API says of one customer (the read-through fallback, the
 * operators' resync) through the same fold, order guard, ledger and commit as the
 * webhook events: the snapshot is recorded in the ledger as `stripe.snapshot` facts,
 * a newer webhook still wins over it, and an older one cannot undo it.
 */
import type { Clock } from '../shared/clock.ts';
import type { PriceTierMap } from '../shared/tiers.ts';
import { planAccountCommit } from './apply-subscription-events.ts';
import {
  type CustomerAccount,
  foldFacts,
  projectUserView,
  type UserSubscriptionView,
} from './customer-account.ts';
import type { ProfileViews, StripeCustomerRecord, SubscriptionStore } from './ports.ts';
import { snapshotFacts } from './subscription-facts.ts';

export interface SnapshotDeps {
  store: SubscriptionStore;
  clock: Clock;
  priceTierMap: PriceTierMap;
  /** Lost write races before giving up. Default 5. */
  maxAttempts?: number;
  /**
   * Try the first commit as the account's creation, without reading it first (a user
   * the store has never seen): one read less on the read route's miss; an account that
   * exists after all makes that commit lose its race, and the next attempt reads it.
   */
  expectNew?: boolean;
  /**
   * Profiles read just before (the read route's lookup), by user id: the first commit
   * is conditioned on them rather than reading them again. A lost race reads afresh.
   */
  profilesRead?: ReadonlyMap<string, ProfileViews>;
  /** Fold and answer the view it would give, write nothing (the operators' `--dry-run`). */
  dryRun?: boolean;
  onUnmappedPrice?: (priceIds: string[]) => void;
}

export interface StoredSnapshot {
  customerId: string;
  account: CustomerAccount;
  /** The user's view after the snapshot (null while the customer is linked to no user). */
  view: UserSubscriptionView | null;
}

export class SnapshotConflictError extends Error {
  constructor(customerId: string, attempts: number) {
    super(
      `The account of ${customerId} kept changing during ${attempts} attempts to store its snapshot.`,
    );
    this.name = 'SnapshotConflictError';
  }
}

export async function storeStripeSnapshot(
  record: StripeCustomerRecord,
  deps: SnapshotDeps,
): Promise<StoredSnapshot> {
  const { customerId, facts, unmappedPriceIds } = snapshotFacts(record, deps.priceTierMap);
  if (unmappedPriceIds.length > 0) deps.onUnmappedPrice?.(unmappedPriceIds);
  const pending = facts.map((fact) => ({ recordIds: [], fact, receivedAt: null }));
  const maxAttempts = deps.maxAttempts ?? 5;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const stored =
      attempt === 1 && deps.expectNew && !deps.dryRun
        ? undefined
        : (await deps.store.loadAccounts([customerId])).get(customerId);
    const planned = planAccountCommit(customerId, pending, stored, deps.clock.now());
    if (planned.commit === null) {
      // Every fact already recorded (the same snapshot stored twice): nothing to write.
      const account = stored!.account;
      return { customerId, account, view: projectUserView(account) };
    }
    const view = projectUserView(planned.commit.account);
    if (deps.dryRun) return { customerId, account: planned.commit.account, view };
    // The profile is written even when the view did not change, so a profile that lost
    // its view (or never had one) is repaired: the next read is a hit, not a Stripe call.
    const profilesRead = attempt === 1 ? deps.profilesRead : undefined;
    const result = await deps.store.commit({
      ...planned.commit,
      view,
      ...(profilesRead ? { profilesRead } : {}),
    });
    if (result.status === 'committed') {
      return { customerId, account: planned.commit.account, view };
    }
    if (result.status === 'failed') throw result.error;
    // revision-conflict (a webhook landed meanwhile) or aborted: read again and re-fold.
  }
  throw new SnapshotConflictError(customerId, maxAttempts);
}

/** The view a customer's snapshot alone gives its user (null when it names no user). */
export function snapshotView(
  record: StripeCustomerRecord,
  priceTierMap: PriceTierMap,
): UserSubscriptionView | null {
  const { customerId, facts } = snapshotFacts(record, priceTierMap);
  return projectUserView(foldFacts(customerId, facts));
}
