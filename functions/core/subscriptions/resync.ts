/**
 * Operators' resync (DESIGN §8.4): rebuild one customer's subscription state from
 * Stripe's current objects (every subscription, canceled ones included), stored as a
 * snapshot under the order guard (stripe-snapshot.ts). It repairs what the webhooks
 * left wrong — a lost event, a tier computed before the price→tier map was fixed —
 * and an event newer than the snapshot still wins, so a resync never rolls state back.
 */
import type { UserSubscriptionView } from './customer-account.ts';
import type {
  ResyncMarkReader,
  StripeCustomerRecord,
  StripeCustomerSource,
  UserViewReader,
} from './ports.ts';
import { type SnapshotDeps, storeStripeSnapshot } from './stripe-snapshot.ts';

export interface ResyncDeps extends SnapshotDeps {
  source: StripeCustomerSource;
  reader: UserViewReader;
  /**
   * The Stripe mode of the target (true: live): a customer of the other mode is
   * refused before anything is stored. Undefined: not checked.
   */
  livemode?: boolean;
}

/** Stripe answered with a customer of the other mode than the target's: nothing was stored. */
export class ResyncModeMismatchError extends Error {
  constructor(customerId: string, livemode: boolean) {
    super(
      `Stripe answered ${customerId} as a ${livemode ? 'live' : 'test'}-mode customer, for a ${livemode ? 'test' : 'live'}-mode target: the key is of the wrong mode; nothing was stored.`,
    );
    this.name = 'ResyncModeMismatchError';
  }
}

export type ResyncOutcome =
  | {
      customerId: string;
      outcome: 'resynced';
      subscriptions: number;
      /** The user's view after the resync (null while the customer is linked to no user). */
      view: UserSubscriptionView | null;
    }
  | { customerId: string; outcome: 'unknown-to-stripe' };

export async function resyncCustomer(customerId: string, deps: ResyncDeps): Promise<ResyncOutcome> {
  const record = await deps.source.customerById(customerId, { allSubscriptions: true });
  if (!record) return { customerId, outcome: 'unknown-to-stripe' };
  const livemode = (record.customer as { livemode?: unknown }).livemode;
  if (deps.livemode !== undefined && typeof livemode === 'boolean' && livemode !== deps.livemode) {
    throw new ResyncModeMismatchError(customerId, livemode);
  }
  return await storeRecord(record, deps);
}

/**
 * Every Stripe customer of a user: the one the profile names, and those whose metadata
 * names the user (a user may have several). Empty when neither knows the user. Each
 * is stored as its own snapshot; the profile shows the best of them (user-standing.ts).
 */
export async function resyncUser(userId: string, deps: ResyncDeps): Promise<ResyncOutcome[]> {
  const customerIds = new Set<string>();
  const { stripeCustomerId } = await deps.reader.lookupUser(userId);
  if (stripeCustomerId) customerIds.add(stripeCustomerId);
  for (const record of await deps.source.customersOfUser(userId)) {
    const id = (record.customer as { id?: unknown }).id;
    if (typeof id === 'string') customerIds.add(id);
  }
  const outcomes: ResyncOutcome[] = [];
  for (const customerId of customerIds) outcomes.push(await resyncCustomer(customerId, deps));
  return outcomes;
}

async function storeRecord(record: StripeCustomerRecord, deps: ResyncDeps): Promise<ResyncOutcome> {
  const stored = await storeStripeSnapshot(record, deps);
  return {
    customerId: stored.customerId,
    outcome: 'resynced',
    subscriptions: record.subscriptions.length,
    view: stored.view,
  };
}

/**
 * Every customer marked by an unresolved same-second tie. The snapshot of each, newer
 * than the tie, settles the tied subscriptions and clears the mark in the same commit.
 */
export async function resyncMarked(
  deps: ResyncDeps & { marks: ResyncMarkReader },
  onEach?: (outcome: ResyncOutcome) => void,
): Promise<ResyncOutcome[]> {
  const outcomes: ResyncOutcome[] = [];
  for (const mark of await deps.marks.listResyncMarks()) {
    const outcome = await resyncCustomer(mark.customerId, deps);
    onEach?.(outcome);
    outcomes.push(outcome);
  }
  return outcomes;
}
