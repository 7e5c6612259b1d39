/**
 * The subscription context's view of Stripe's API (read-through fallback, resync):
 * a customer by id, or the customers whose metadata names a user, each with its
 * subscriptions, in one request (`expand`), under the shared call policy. The time of
 * the answer is Stripe's own `Date` header, so the snapshot is stamped on Stripe's
 * clock like the events it is ordered against.
 */
import type Stripe from 'stripe';
import {
  type StripeCustomerRecord,
  type StripeCustomerSource,
  StripeSourceUnavailableError,
} from '../../core/subscriptions/ports.ts';
import { StripeCaller } from './stripe-call.ts';
import type { StripeClientSource } from './stripe-client.ts';
import type { StripeCallPolicy } from './stripe-resilience.ts';

/** Stripe refused a lookup (e.g. `resource_missing`): only its code is kept. */
export class StripeLookupRejectedError extends Error {
  readonly code: string;

  constructor(code: string, options?: ErrorOptions) {
    super(`Stripe refused the lookup (${code}).`, options);
    this.name = 'StripeLookupRejectedError';
    this.code = code;
  }
}

/** Customers one search answers; a user with more is an anomaly the operators resync. */
const SEARCH_LIMIT = 10;
const LIST_LIMIT = 100;

export class StripeCustomerLookup implements StripeCustomerSource {
  readonly #stripe: StripeCaller;
  readonly #calls: StripeCallPolicy;
  readonly #now: () => number;

  constructor(deps: { clients: StripeClientSource; calls: StripeCallPolicy; now?: () => number }) {
    this.#now = deps.now ?? Date.now;
    this.#calls = deps.calls;
    this.#stripe = new StripeCaller(deps.clients, deps.calls, {
      unavailable: (message, options) => new StripeSourceUnavailableError(message, options),
      rejected: (code, error) => new StripeLookupRejectedError(code, { cause: error }),
    });
  }

  paused(): boolean {
    return this.#calls.state === 'open';
  }

  async customerById(
    customerId: string,
    options: { allSubscriptions?: boolean } = {},
  ): Promise<StripeCustomerRecord | null> {
    let customer: Stripe.Response<Stripe.Customer | Stripe.DeletedCustomer>;
    try {
      customer = await this.#stripe.call((stripe, timeout) =>
        stripe.customers.retrieve(
          customerId,
          options.allSubscriptions ? {} : { expand: ['subscriptions'] },
          { timeout },
        ),
      );
    } catch (error) {
      if (error instanceof StripeLookupRejectedError && error.code === 'resource_missing') {
        return null;
      }
      throw error;
    }
    if ('deleted' in customer && customer.deleted) return null;
    const live = customer as Stripe.Customer;
    const subscriptions = options.allSubscriptions
      ? await this.#allSubscriptions(customerId)
      : await this.#rest(live);
    return { customer: live, subscriptions, fetchedAt: this.#fetchedAt(customer) };
  }

  async customersOfUser(userId: string): Promise<StripeCustomerRecord[]> {
    // User ids are letters, digits and . _ : @ | + - (request-params.ts): nothing to escape.
    const query = `metadata['userId']:'${userId}' OR metadata['user_id']:'${userId}'`;
    const found = await this.#stripe.call((stripe, timeout) =>
      stripe.customers.search(
        { query, limit: SEARCH_LIMIT, expand: ['data.subscriptions'] },
        { timeout },
      ),
    );
    const fetchedAt = this.#fetchedAt(found);
    const records: StripeCustomerRecord[] = [];
    for (const customer of found.data) {
      records.push({ customer, subscriptions: await this.#rest(customer), fetchedAt });
    }
    return records;
  }

  /** The expanded subscriptions, and the rest of them when one page did not hold all. */
  async #rest(customer: Stripe.Customer): Promise<Stripe.Subscription[]> {
    const list = customer.subscriptions;
    if (!list) return [];
    if (!list.has_more) return list.data;
    return [...list.data, ...(await this.#pages(customer.id, 'current', list.data.at(-1)?.id))];
  }

  #allSubscriptions(customerId: string): Promise<Stripe.Subscription[]> {
    return this.#pages(customerId, 'all', undefined);
  }

  async #pages(
    customerId: string,
    /** 'current': what Stripe lists by default, every status but canceled. */
    status: 'all' | 'current',
    startingAfter: string | undefined,
  ): Promise<Stripe.Subscription[]> {
    const subscriptions: Stripe.Subscription[] = [];
    let after = startingAfter;
    for (;;) {
      const page = await this.#stripe.call((stripe, timeout) =>
        stripe.subscriptions.list(
          {
            customer: customerId,
            ...(status === 'all' ? { status } : {}),
            limit: LIST_LIMIT,
            ...(after ? { starting_after: after } : {}),
          },
          { timeout },
        ),
      );
      subscriptions.push(...page.data);
      if (!page.has_more || page.data.length === 0) return subscriptions;
      after = page.data.at(-1)!.id;
    }
  }

  #fetchedAt(response: { lastResponse?: { headers?: Record<string, string> } }): number {
    const stripeDate = Date.parse(response.lastResponse?.headers?.date ?? '');
    return Math.floor((Number.isFinite(stripeDate) ? stripeDate : this.#now()) / 1000);
  }
}
