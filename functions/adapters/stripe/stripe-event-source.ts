/**
 * Stripe's events list for the operators' replay: one page of up to 100 events per
 * call, newest first, under the shared call policy. Stripe keeps events for 30 days.
 */
import type Stripe from 'stripe';
import type { StripeEventPage, StripeEventSource } from '../../core/intake/replay-events.ts';
import { StripeCaller } from './stripe-call.ts';
import type { StripeClientSource } from './stripe-client.ts';
import type { StripeCallPolicy } from './stripe-resilience.ts';

/** Stripe could not be used for the replay (down, breaker open, key refused, request refused). */
export class StripeEventsUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StripeEventsUnavailableError';
  }
}

const PAGE_SIZE = 100;

export class StripeEventList implements StripeEventSource {
  readonly #stripe: StripeCaller;

  constructor(deps: { clients: StripeClientSource; calls: StripeCallPolicy }) {
    this.#stripe = new StripeCaller(deps.clients, deps.calls, {
      unavailable: (message, options) => new StripeEventsUnavailableError(message, options),
      rejected: (code, error) =>
        new StripeEventsUnavailableError(`Stripe refused the events list (${code}).`, {
          cause: error,
        }),
    });
  }

  async listEvents(query: {
    fromSeconds: number;
    toSeconds: number;
    types: readonly string[];
    startingAfter: string | undefined;
  }): Promise<StripeEventPage> {
    const params: Stripe.EventListParams = {
      created: { gte: query.fromSeconds, lte: query.toSeconds },
      limit: PAGE_SIZE,
      ...(query.types.length > 0 ? { types: [...query.types] } : {}),
      ...(query.startingAfter ? { starting_after: query.startingAfter } : {}),
    };
    const page = await this.#stripe.call((stripe, timeout) =>
      stripe.events.list(params, { timeout }),
    );
    return { events: page.data, hasMore: page.has_more };
  }
}
