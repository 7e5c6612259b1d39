/**
 * A small fake of the Stripe API, for the local runtime and the tests (Stripe itself is
 * never reachable here): node:http on 127.0.0.1, the SDK pointed at it by
 * STRIPE_API_URL. It speaks what the suite calls — PaymentIntents (create, retrieve,
 * cancel), customers (create, retrieve, search on metadata), subscriptions (create,
 * update, cancel, list) and events (list, retrieve) — the way Stripe does: form-encoded bodies with `a[b]=c` nesting, Bearer
 * auth, JSON errors `{error: {type, code, message}}` with Stripe's statuses,
 * idempotency keys on POSTs as Stripe's v1 API keeps them (see `idempotencyLayer`
 * below: the same key and body replays the first answer with `Idempotent-Replayed:
 * true`; the same key with another body is a 400 `idempotency_error`; the same key while
 * its first request still runs is a 409 `idempotency_key_in_use`; a request refused by
 * parameter validation saves nothing). Tests inject faults (status codes, hangs, dropped
 * connections) for the next requests, add latency to every answer, and read the request
 * log; `createCustomer`, `createSubscription`, `succeedPaymentIntent` and friends change
 * the fake's objects and return the event Stripe would send (also listed by
 * `/v1/events`), as do the API routes that change an object (a customer or subscription
 * created, updated or deleted, a PaymentIntent canceled).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { minimumChargeOf } from '../functions/core/shared/stripe-amounts.ts';

/**
 * How the fake's PaymentIntent ids begin, so a local tool can tell them from a real
 * Stripe's (`npm run send-sample -- --penalties` plays Stripe for the fake's only).
 */
export const FAKE_PAYMENT_INTENT_PREFIX = 'pi_localfake';

export const FAKE_STRIPE_SECRET_KEY = 'sk_test_local_fake_stripe';
/** The `cancellation_reason`s Stripe takes when a PaymentIntent is canceled through the API. */
const CANCELLATION_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'];
/** The API version events are stamped with (the SDK's own pinned version is sent by clients). */
const EVENT_API_VERSION = '2026-04-22.dahlia';

export type FakeStripeFault =
  | {
      kind: 'status';
      status: number;
      type?: string;
      code?: string;
      headers?: Record<string, string>;
    }
  /** Never answers (until the server closes). */
  | { kind: 'hang' }
  /** Accepts the request and drops the connection without an answer. */
  | { kind: 'drop' };

export interface FakeStripeRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  params: Record<string, unknown>;
  status: number | 'hang' | 'drop';
}

export type FakePaymentIntent = Record<string, unknown> & {
  id: string;
  amount: number;
  currency: string;
  status: string;
  metadata: Record<string, string>;
  client_secret: string;
};

export type FakeStripeObject = Record<string, unknown> & { id: string };

export type FakeCustomer = FakeStripeObject & { metadata: Record<string, string> };

export type FakeSubscription = FakeStripeObject & {
  customer: string;
  status: string;
  created: number;
  metadata: Record<string, string>;
};

export interface FakeStripeEvent<O extends FakeStripeObject = FakeStripeObject> {
  id: string;
  object: 'event';
  type: string;
  created: number;
  api_version: string;
  livemode: false;
  pending_webhooks: number;
  request: { id: null; idempotency_key: null };
  data: { object: O; previous_attributes?: Record<string, unknown> };
}

export interface FakeRefund {
  id: string;
  object: 'refund';
  amount: number;
  currency: string;
  payment_intent: string;
  reason: string | null;
  status: 'succeeded';
  created: number;
  metadata: Record<string, string>;
}

export interface FakeSubscriptionParams {
  customer: string;
  priceId: string;
  /** Written to the price's `metadata.tier` when given. */
  tier?: string;
  status?: string;
  metadata?: Record<string, string>;
}

export interface FakeStripe {
  /** e.g. `http://127.0.0.1:41234`: the STRIPE_API_URL to give the suite. */
  url: string;
  secretKey: string;
  requests: FakeStripeRequest[];
  paymentIntents: Map<string, FakePaymentIntent>;
  /** Refunds created through `POST /v1/refunds`, by id. */
  refunds: Map<string, FakeRefund>;
  customers: Map<string, FakeCustomer>;
  subscriptions: Map<string, FakeSubscription>;
  /** Every event the fake's changes produced, oldest first (`/v1/events` lists them newest first). */
  events: FakeStripeEvent[];
  /** The next `count` requests (to `pathPrefix`, when given) get `fault` instead of an answer. */
  injectFault(fault: FakeStripeFault, count?: number, pathPrefix?: string): void;
  clearFaults(): void;
  /**
   * Every answer (faults included) waits this long first; 0 to stop. For a request that
   * reaches an endpoint it is the endpoint's running time: a POST's idempotency key is
   * in use meanwhile, and another request with it is answered 409
   * `idempotency_key_in_use` at once (the one answer that does not wait).
   */
  setLatency(ms: number): void;
  succeedPaymentIntent(id: string): FakeStripeEvent<FakePaymentIntent>;
  failPaymentIntent(id: string): FakeStripeEvent<FakePaymentIntent>;
  createCustomer(params?: {
    id?: string;
    email?: string;
    metadata?: Record<string, string>;
  }): FakeStripeEvent<FakeCustomer>;
  createSubscription(params: FakeSubscriptionParams): FakeStripeEvent<FakeSubscription>;
  /** Changes a subscription (status, price, cancel_at_period_end...): `customer.subscription.updated`. */
  updateSubscription(
    id: string,
    changes: { status?: string; priceId?: string; tier?: string; cancelAtPeriodEnd?: boolean },
  ): FakeStripeEvent<FakeSubscription>;
  cancelSubscription(id: string): FakeStripeEvent<FakeSubscription>;
  close(): Promise<void>;
}

/**
 * An endpoint's answer: status and body, and `false` third when the request was refused
 * by parameter validation before the endpoint began executing (Stripe saves no
 * idempotent result for it).
 */
type Answer = [status: number, body: unknown, executed?: false];

interface Route {
  method: string;
  pattern: RegExp;
  handle: (params: Record<string, unknown>, match: RegExpMatchArray) => Answer;
}

/** Starts the fake on 127.0.0.1 (port 0: any free port). */
export async function startFakeStripe(
  options: {
    port?: number;
    secretKey?: string;
    now?: () => number;
    /** Let the process exit while the server listens (the local runtime's process-wide fake). */
    unref?: boolean;
    /** How its PaymentIntent ids begin. Default FAKE_PAYMENT_INTENT_PREFIX; a test may pose as Stripe's own (`pi_3`). */
    paymentIntentIdPrefix?: string;
  } = {},
): Promise<FakeStripe> {
  const secretKey = options.secretKey ?? FAKE_STRIPE_SECRET_KEY;
  const now = options.now ?? Date.now;
  const requests: FakeStripeRequest[] = [];
  const paymentIntents = new Map<string, FakePaymentIntent>();
  const refunds = new Map<string, FakeRefund>();
  const customers = new Map<string, FakeCustomer>();
  const subscriptions = new Map<string, FakeSubscription>();
  const events: FakeStripeEvent[] = [];
  let latencyMs = 0;
  /** By idempotency key: the request's digest, and its saved answer once its endpoint has run. */
  const idempotent = new Map<
    string,
    { bodyDigest: string; saved?: { status: number; body: unknown } }
  >();
  let faults: { fault: FakeStripeFault; remaining: number; pathPrefix: string }[] = [];
  const hanging = new Set<ServerResponse>();
  const seconds = () => Math.floor(now() / 1000);

  const routes: Route[] = [
    {
      method: 'POST',
      pattern: /^\/v1\/payment_intents$/,
      handle: (params) => {
        const amount = Number(params.amount);
        const currency = typeof params.currency === 'string' ? params.currency : '';
        if (!/^[a-z]{3}$/.test(currency)) return invalid('currency', 'parameter_invalid_string');
        const minimum = minimumChargeOf(currency);
        if (!Number.isInteger(amount) || amount < minimum) {
          return invalid(
            'amount',
            'amount_too_small',
            `Amount must be at least ${minimum} ${currency} in minor units.`,
          );
        }
        const id = `${options.paymentIntentIdPrefix ?? FAKE_PAYMENT_INTENT_PREFIX}${randomBytes(12).toString('hex')}`;
        const intent: FakePaymentIntent = {
          id,
          object: 'payment_intent',
          amount,
          amount_received: 0,
          currency,
          customer: typeof params.customer === 'string' ? params.customer : null,
          description: typeof params.description === 'string' ? params.description : null,
          metadata: stringRecord(params.metadata),
          automatic_payment_methods: { enabled: true },
          client_secret: `${id}_secret_${randomBytes(12).toString('hex')}`,
          created: seconds(),
          livemode: false,
          latest_charge: null,
          canceled_at: null,
          cancellation_reason: null,
          status: 'requires_payment_method',
        };
        paymentIntents.set(id, intent);
        return [200, intent];
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/payment_intents\/([^/]+)$/,
      handle: (_params, match) => {
        const intent = paymentIntents.get(match[1]!);
        return intent ? [200, intent] : missing('payment_intent', match[1]!);
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/payment_intents\/([^/]+)\/cancel$/,
      handle: (params, match) => {
        const intent = paymentIntents.get(match[1]!);
        if (!intent) return missing('payment_intent', match[1]!);
        const reason = params.cancellation_reason;
        if (reason !== undefined && !CANCELLATION_REASONS.includes(String(reason))) {
          return invalid('cancellation_reason', 'parameter_invalid_string');
        }
        // Stripe cancels an intent still waiting for the customer (processing only rarely).
        if (['succeeded', 'canceled', 'processing'].includes(intent.status)) {
          return [
            400,
            stripeError(
              'invalid_request_error',
              'payment_intent_unexpected_state',
              `You cannot cancel this PaymentIntent because it has a status of ${intent.status}.`,
            ),
          ];
        }
        Object.assign(intent, {
          status: 'canceled',
          canceled_at: seconds(),
          cancellation_reason: reason === undefined ? null : String(reason),
        });
        // Like every change the API makes, the cancel is an event (sent as a webhook by Stripe).
        emit('payment_intent.canceled', intent);
        return [200, intent];
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/refunds$/,
      handle: (params) => {
        const intentId = typeof params.payment_intent === 'string' ? params.payment_intent : '';
        const intent = paymentIntents.get(intentId);
        if (!intent) return missing('payment_intent', intentId);
        const refunded = [...refunds.values()]
          .filter((r) => r.payment_intent === intentId)
          .reduce((sum, r) => sum + r.amount, 0);
        const received = Number(intent.amount_received ?? 0);
        const amount = params.amount === undefined ? received - refunded : Number(params.amount);
        if (intent.status !== 'succeeded') {
          return [
            400,
            stripeError(
              'invalid_request_error',
              'charge_not_refundable',
              'This PaymentIntent has not succeeded.',
            ),
          ];
        }
        if (!Number.isInteger(amount) || amount < 1 || refunded + amount > received) {
          return [
            400,
            stripeError(
              'invalid_request_error',
              'amount_too_large',
              'Refund amount is greater than the unrefunded amount.',
            ),
          ];
        }
        const refund: FakeRefund = {
          id: `re_${randomBytes(12).toString('hex')}`,
          object: 'refund',
          amount,
          currency: intent.currency,
          payment_intent: intentId,
          reason: typeof params.reason === 'string' ? params.reason : null,
          status: 'succeeded',
          created: seconds(),
          metadata: stringRecord(params.metadata),
        };
        refunds.set(refund.id, refund);
        return [200, refund];
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/customers$/,
      handle: (params) => [
        200,
        createCustomer({
          ...(typeof params.email === 'string' ? { email: params.email } : {}),
          metadata: stringRecord(params.metadata),
        }).data.object,
      ],
    },
    {
      method: 'POST',
      pattern: /^\/v1\/subscriptions$/,
      handle: (params) => {
        const customer = typeof params.customer === 'string' ? params.customer : '';
        if (!customers.has(customer)) return missing('customer', customer);
        const price = listOf(
          Object.values((params.items ?? {}) as Record<string, { price?: string }>).map(
            (item) => item.price,
          ),
        )[0];
        if (!price || price === 'undefined') return invalid('items', 'parameter_missing');
        return [
          200,
          createSubscription({ customer, priceId: price, metadata: stringRecord(params.metadata) })
            .data.object,
        ];
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/subscriptions\/([^/]+)$/,
      handle: (params, match) => {
        if (!subscriptions.has(match[1]!)) return missing('subscription', match[1]!);
        const cancel = params.cancel_at_period_end;
        return [
          200,
          updateSubscription(match[1]!, {
            ...(cancel === undefined ? {} : { cancelAtPeriodEnd: cancel === 'true' }),
          }).data.object,
        ];
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/subscriptions\/([^/]+)$/,
      handle: (_params, match) =>
        subscriptions.has(match[1]!)
          ? [200, cancelSubscription(match[1]!).data.object]
          : missing('subscription', match[1]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/customers\/search$/,
      handle: (params) => {
        const matches = parseSearchQuery(String(params.query ?? ''));
        if (!matches) return invalid('query', 'parameter_invalid_string', 'Invalid search query.');
        const found = [...customers.values()]
          .filter((customer) => matches(customer))
          .sort(newestFirst)
          .slice(0, listLimit(params.limit));
        const expandSubscriptions = listOf(params.expand).includes('data.subscriptions');
        return [
          200,
          {
            object: 'search_result',
            url: '/v1/customers/search',
            has_more: false,
            next_page: null,
            data: found.map((customer) =>
              expandSubscriptions ? withSubscriptions(customer) : customer,
            ),
          },
        ];
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/customers\/([^/]+)$/,
      handle: (params, match) => {
        const customer = customers.get(match[1]!);
        if (!customer) return missing('customer', match[1]!);
        if (customer.deleted) return [200, { id: customer.id, object: 'customer', deleted: true }];
        return [
          200,
          listOf(params.expand).includes('subscriptions') ? withSubscriptions(customer) : customer,
        ];
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/subscriptions$/,
      handle: (params) => {
        const status = typeof params.status === 'string' ? params.status : undefined;
        const all = [...subscriptions.values()]
          .filter((sub) => params.customer === undefined || sub.customer === params.customer)
          .filter((sub) =>
            status === 'all' ? true : status ? sub.status === status : sub.status !== 'canceled',
          )
          .sort(newestFirst);
        return [200, page(all, params, '/v1/subscriptions')];
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/events$/,
      handle: (params) => {
        const created = (params.created ?? {}) as Record<string, string>;
        const bound = (key: string) =>
          created[key] === undefined ? undefined : Number(created[key]);
        const [gte, gt, lte, lt] = [bound('gte'), bound('gt'), bound('lte'), bound('lt')];
        const types = [...listOf(params.types), ...listOf(params.type)];
        const selected = [...events]
          .reverse()
          .filter(
            (event) =>
              (gte === undefined || event.created >= gte) &&
              (gt === undefined || event.created > gt) &&
              (lte === undefined || event.created <= lte) &&
              (lt === undefined || event.created < lt) &&
              (types.length === 0 || types.some((type) => typeMatches(type, event.type))),
          );
        return [200, page(selected, params, '/v1/events')];
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/events\/([^/]+)$/,
      handle: (_params, match) => {
        const event = events.find((candidate) => candidate.id === match[1]);
        return event ? [200, event] : missing('event', match[1]!);
      },
    },
  ];

  /** A customer with its current subscriptions, as `expand[]=subscriptions` answers it. */
  function withSubscriptions(customer: FakeCustomer): FakeCustomer {
    const current = [...subscriptions.values()]
      .filter((sub) => sub.customer === customer.id && sub.status !== 'canceled')
      .sort(newestFirst);
    return {
      ...customer,
      subscriptions: {
        object: 'list',
        url: `/v1/customers/${customer.id}/subscriptions`,
        has_more: false,
        total_count: current.length,
        data: current,
      },
    };
  }

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, stripeError('api_error', undefined, String(error)));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake-stripe');
    const raw = await readBody(req);
    const params =
      req.method === 'GET' ? parseForm(url.searchParams) : parseForm(new URLSearchParams(raw));
    const idempotencyKey = header(req, 'idempotency-key');
    const entry: FakeStripeRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      idempotencyKey,
      params,
      status: 0,
    };
    requests.push(entry);
    // Read now: a request's latency is the one set when it arrived.
    const latency = latencyMs;
    const wait = () =>
      latency > 0 ? new Promise((resolve) => setTimeout(resolve, latency)) : Promise.resolve();
    const answer = async (status: number, body: unknown, headers?: Record<string, string>) => {
      await wait();
      entry.status = status;
      send(res, status, body, headers);
    };

    // Injected faults answer in front of everything else, the idempotency layer included:
    // they play what fails before any endpoint begins (a 429 from the rate limiter, a 5xx
    // or a hang from a proxy, a dropped connection), so nothing is saved for the key and a
    // retry with the same key executes anew, which the suite's retries rely on. (A 5xx
    // from an endpoint that had begun is saved and replayed by Stripe; no fault plays it.)
    const injected = faults.find((f) => f.remaining > 0 && url.pathname.startsWith(f.pathPrefix));
    if (injected) {
      injected.remaining -= 1;
      faults = faults.filter((f) => f.remaining > 0);
      const { fault } = injected;
      await wait();
      if (fault.kind === 'hang') {
        entry.status = 'hang';
        hanging.add(res);
        return;
      }
      if (fault.kind === 'drop') {
        entry.status = 'drop';
        req.socket.destroy();
        return;
      }
      entry.status = fault.status;
      const type = fault.type ?? (fault.status === 429 ? 'invalid_request_error' : 'api_error');
      const code = fault.code ?? (fault.status === 429 ? 'rate_limit' : undefined);
      send(res, fault.status, stripeError(type, code, `Injected ${fault.status}.`), fault.headers);
      return;
    }

    if (header(req, 'authorization') !== `Bearer ${secretKey}`) {
      await answer(
        401,
        stripeError('invalid_request_error', undefined, 'Invalid API Key provided.'),
      );
      return;
    }

    const route = routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
    if (!route) {
      await answer(
        404,
        stripeError(
          'invalid_request_error',
          undefined,
          `Unrecognized request URL (${req.method}: ${url.pathname}).`,
        ),
      );
      return;
    }
    const match = url.pathname.match(route.pattern)!;

    // Stripe keys idempotency on POSTs only (it ignores the header on GET and DELETE).
    if (!idempotencyKey || req.method !== 'POST') {
      await wait();
      const [status, body] = route.handle(params, match);
      entry.status = status;
      send(res, status, body);
      return;
    }
    await idempotencyLayer(idempotencyKey, () => route.handle(params, match));

    /**
     * Stripe's v1 idempotency layer (docs.stripe.com/api/idempotent_requests): the first
     * request with a key saves its status and body once its endpoint began executing,
     * whatever they are; a later request with the key and the same endpoint and
     * parameters gets that answer again, `Idempotent-Replayed: true`; with other ones a
     * 400 `idempotency_error`. Nothing is saved when the parameters failed validation
     * (the endpoint never began), so a retry executes anew; nor for a request that
     * conflicted with the key's first request still executing: a 409
     * `idempotency_key_in_use`. The fake's latency is the endpoint's running time here.
     */
    async function idempotencyLayer(key: string, execute: () => Answer): Promise<void> {
      // Keyed per API key at Stripe; the fake has one.
      const bodyDigest = createHash('sha256')
        .update(`${req.method} ${url.pathname} ${raw}`)
        .digest('hex');
      const seen = idempotent.get(key);
      if (seen && seen.bodyDigest !== bodyDigest) {
        await answer(
          400,
          stripeError(
            'idempotency_error',
            undefined,
            `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
          ),
        );
        return;
      }
      if (seen?.saved) {
        await answer(seen.saved.status, structuredClone(seen.saved.body), {
          'idempotent-replayed': 'true',
        });
        return;
      }
      if (seen) {
        // Refused at once, without the latency: no endpoint runs for it.
        entry.status = 409;
        send(
          res,
          409,
          stripeError(
            'invalid_request_error',
            'idempotency_key_in_use',
            `There is currently another in-progress request using this idempotency key (that probably means you submitted twice, and the other request is still going through): ${key}. Please try again later.`,
          ),
        );
        return;
      }
      const running = { bodyDigest };
      idempotent.set(key, running);
      let result: Answer;
      try {
        await wait();
        result = execute();
      } catch (error) {
        if (idempotent.get(key) === running) idempotent.delete(key);
        throw error;
      }
      const [status, body, executed] = result;
      if (idempotent.get(key) === running) {
        if (executed === false) idempotent.delete(key);
        else idempotent.set(key, { bodyDigest, saved: { status, body: structuredClone(body) } });
      }
      entry.status = status;
      send(res, status, body);
    }
  }

  function emit<O extends FakeStripeObject>(
    type: string,
    object: O,
    previous?: Record<string, unknown>,
  ): FakeStripeEvent<O> {
    const event: FakeStripeEvent<O> = {
      id: `evt_${randomBytes(12).toString('hex')}`,
      object: 'event',
      type,
      created: seconds(),
      api_version: EVENT_API_VERSION,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: {
        object: structuredClone(object),
        ...(previous ? { previous_attributes: previous } : {}),
      },
    };
    events.push(event as FakeStripeEvent);
    return event;
  }

  function subscriptionItems(priceId: string, tier: string | undefined, periodEnd: number) {
    return {
      object: 'list',
      has_more: false,
      data: [
        {
          id: `si_${randomBytes(8).toString('hex')}`,
          object: 'subscription_item',
          current_period_end: periodEnd,
          price: {
            id: priceId,
            object: 'price',
            metadata: tier ? { tier } : {},
          },
          quantity: 1,
        },
      ],
    };
  }

  function subscriptionOf(id: string): FakeSubscription {
    const subscription = subscriptions.get(id);
    if (!subscription) throw new Error(`The fake Stripe has no subscription ${id}.`);
    return subscription;
  }

  function createCustomer(
    params: Parameters<FakeStripe['createCustomer']>[0] = {},
  ): FakeStripeEvent<FakeCustomer> {
    const id = params.id ?? `cus_${randomBytes(7).toString('hex')}`;
    const customer: FakeCustomer = {
      id,
      object: 'customer',
      created: seconds(),
      email: params.email ?? null,
      livemode: false,
      metadata: { ...params.metadata },
    };
    customers.set(id, customer);
    return emit('customer.created', customer);
  }
  function createSubscription(params: FakeSubscriptionParams): FakeStripeEvent<FakeSubscription> {
    if (!customers.has(params.customer)) {
      throw new Error(`The fake Stripe has no customer ${params.customer}.`);
    }
    const created = seconds();
    const subscription: FakeSubscription = {
      id: `sub_${randomBytes(12).toString('hex')}`,
      object: 'subscription',
      customer: params.customer,
      status: params.status ?? 'active',
      created,
      start_date: created,
      cancel_at_period_end: false,
      canceled_at: null,
      livemode: false,
      metadata: { ...params.metadata },
      items: subscriptionItems(params.priceId, params.tier, created + 30 * 86_400),
    };
    subscriptions.set(subscription.id, subscription);
    return emit('customer.subscription.created', subscription);
  }
  function updateSubscription(
    id: string,
    changes: Parameters<FakeStripe['updateSubscription']>[1],
  ): FakeStripeEvent<FakeSubscription> {
    const subscription = subscriptionOf(id);
    const previous: Record<string, unknown> = {};
    if (changes.status !== undefined) {
      previous.status = subscription.status;
      subscription.status = changes.status;
    }
    if (changes.cancelAtPeriodEnd !== undefined) {
      previous.cancel_at_period_end = subscription.cancel_at_period_end;
      subscription.cancel_at_period_end = changes.cancelAtPeriodEnd;
    }
    if (changes.priceId !== undefined) {
      previous.items = subscription.items;
      const periodEnd = seconds() + 30 * 86_400;
      subscription.items = subscriptionItems(changes.priceId, changes.tier, periodEnd);
    }
    return emit('customer.subscription.updated', subscription, previous);
  }
  function cancelSubscription(id: string): FakeStripeEvent<FakeSubscription> {
    const subscription = subscriptionOf(id);
    Object.assign(subscription, { status: 'canceled', canceled_at: seconds() });
    return emit('customer.subscription.deleted', subscription);
  }

  function transition(
    id: string,
    status: string,
    type: string,
  ): FakeStripeEvent<FakePaymentIntent> {
    const intent = paymentIntents.get(id);
    if (!intent) throw new Error(`The fake Stripe has no PaymentIntent ${id}.`);
    Object.assign(intent, {
      status,
      ...(status === 'succeeded'
        ? { amount_received: intent.amount, latest_charge: `ch_${randomBytes(12).toString('hex')}` }
        : {
            last_payment_error: {
              type: 'card_error',
              code: 'card_declined',
              decline_code: 'generic_decline',
              message: 'Your card was declined.',
            },
          }),
    });
    return emit(type, intent);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  if (options.unref) server.unref();

  return {
    url: `http://127.0.0.1:${port}`,
    secretKey,
    requests,
    paymentIntents,
    refunds,
    customers,
    subscriptions,
    events,
    injectFault(fault, count = 1, pathPrefix = '/') {
      faults.push({ fault, remaining: count, pathPrefix });
    },
    clearFaults() {
      faults = [];
    },
    setLatency(ms) {
      latencyMs = Math.max(0, ms);
    },
    createCustomer,
    createSubscription,
    updateSubscription,
    cancelSubscription,
    succeedPaymentIntent: (id) => transition(id, 'succeeded', 'payment_intent.succeeded'),
    failPaymentIntent: (id) =>
      transition(id, 'requires_payment_method', 'payment_intent.payment_failed'),
    async close() {
      for (const res of hanging) res.destroy();
      hanging.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Stripe's form encoding: `metadata[purpose]=penalty`, `expand[]=x`, `a[b][c]=d`. */
export function parseForm(form: URLSearchParams): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of form) {
    const path = key.replace(/\]/g, '').split('[');
    let node = result;
    path.forEach((segment, index) => {
      const last = index === path.length - 1;
      if (segment === '') {
        // `list[]=x`: append to the array the previous segment names.
        return;
      }
      if (last || path[index + 1] === '') {
        if (path[index + 1] === '') {
          const list = (node[segment] as unknown[] | undefined) ?? [];
          list.push(value);
          node[segment] = list;
        } else {
          node[segment] = value;
        }
        return;
      }
      node[segment] ??= {};
      node = node[segment] as Record<string, unknown>;
    });
  }
  return result;
}

/** A list parameter as the SDK sends it: `a[]=x`, `a[0]=x`, or a single `a=x`. */
function listOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'object') return Object.values(value).map(String);
  return [String(value)];
}

function listLimit(value: unknown): number {
  const limit = value === undefined ? 10 : Number(value);
  return Number.isInteger(limit) && limit >= 1 && limit <= 100 ? limit : 10;
}

function newestFirst(a: { created?: unknown; id: string }, b: { created?: unknown; id: string }) {
  return (
    Number(b.created ?? 0) - Number(a.created ?? 0) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
  );
}

/** One page of a newest-first list, after `starting_after` when given. */
function page<T extends { id: string }>(items: T[], params: Record<string, unknown>, url: string) {
  const after = typeof params.starting_after === 'string' ? params.starting_after : undefined;
  const start = after ? items.findIndex((item) => item.id === after) + 1 : 0;
  const limit = listLimit(params.limit);
  const data = items.slice(start, start + limit);
  return { object: 'list', url, has_more: start + limit < items.length, data };
}

/** `customer.*` matches every customer event type, as Stripe's `types[]` wildcards do. */
function typeMatches(pattern: string, type: string): boolean {
  return pattern.endsWith('.*') ? type.startsWith(pattern.slice(0, -1)) : pattern === type;
}

/**
 * The part of Stripe's search language the suite uses: `field:'value'` and
 * `metadata['key']:'value'` clauses joined by one of OR / AND. Anything else is refused.
 */
function parseSearchQuery(query: string): ((customer: FakeCustomer) => boolean) | null {
  const clause = /^(\w+)(?:\['([^']+)'\])?:'([^']*)'$/;
  const joiner = / OR | AND /.exec(query)?.[0];
  const parts = joiner ? query.split(joiner) : [query];
  if (joiner && parts.some((part) => / OR | AND /.test(part))) return null;
  const tests: ((customer: FakeCustomer) => boolean)[] = [];
  for (const part of parts) {
    const match = clause.exec(part.trim());
    if (!match) return null;
    const [, field, key, value] = match;
    if (field === 'metadata' && key) {
      tests.push((customer) => customer.metadata[key] === value);
    } else if (!key && (field === 'email' || field === 'name')) {
      tests.push((customer) => customer[field] === value);
    } else {
      return null;
    }
  }
  return joiner === ' AND '
    ? (customer) => tests.every((test) => test(customer))
    : (customer) => tests.some((test) => test(customer));
}

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(
    Object.entries(value).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
  );
}

function stripeError(type: string, code: string | undefined, message: string) {
  return { error: { type, ...(code ? { code } : {}), message } };
}

/** A parameter refused by validation, before the endpoint executes: no idempotent result is saved. */
function invalid(param: string, code: string, message = `Invalid ${param}.`): Answer {
  return [400, { error: { type: 'invalid_request_error', code, param, message } }, false];
}

function missing(resource: string, id: string): Answer {
  return [
    404,
    {
      error: {
        type: 'invalid_request_error',
        code: 'resource_missing',
        message: `No such ${resource}: '${id}'`,
      },
    },
  ];
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'request-id': `req_${randomBytes(8).toString('hex')}`,
    ...headers,
  });
  res.end(text);
}
