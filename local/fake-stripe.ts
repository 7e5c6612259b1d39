/**
 * A small fake of the Stripe API, for the local runtime and the tests (Stripe itself is
 * never reachable here): node:http on 127.0.0.1, the SDK pointed at it by
 * STRIPE_API_URL. It speaks what the suite calls — PaymentIntents (create, retrieve,
 * cancel) — the way Stripe does: form-encoded bodies with `a[b]=c` nesting, Bearer
 * auth, JSON errors `{error: {type, code, message}}` with Stripe's statuses,
 * idempotency keys (the same key and body replays the first answer with
 * `Idempotent-Replayed: true`; the same key with another body is a 400
 * `idempotency_error`). Tests inject faults (status codes, hangs, dropped connections)
 * for the next requests and read the request log; `succeedPaymentIntent` and friends
 * move a PaymentIntent on and return the event Stripe would send.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const FAKE_STRIPE_SECRET_KEY = 'sk_test_local_fake_stripe';
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

export interface FakeStripeEvent {
  id: string;
  object: 'event';
  type: string;
  created: number;
  api_version: string;
  livemode: false;
  pending_webhooks: number;
  request: { id: null; idempotency_key: null };
  data: { object: FakePaymentIntent };
}

export interface FakeStripe {
  /** e.g. `http://127.0.0.1:41234`: the STRIPE_API_URL to give the suite. */
  url: string;
  secretKey: string;
  requests: FakeStripeRequest[];
  paymentIntents: Map<string, FakePaymentIntent>;
  /** The next `count` requests (to `pathPrefix`, when given) get `fault` instead of an answer. */
  injectFault(fault: FakeStripeFault, count?: number, pathPrefix?: string): void;
  clearFaults(): void;
  succeedPaymentIntent(id: string): FakeStripeEvent;
  failPaymentIntent(id: string): FakeStripeEvent;
  close(): Promise<void>;
}

interface Route {
  method: string;
  pattern: RegExp;
  handle: (params: Record<string, unknown>, match: RegExpMatchArray) => [number, unknown];
}

/** Starts the fake on 127.0.0.1 (port 0: any free port). */
export async function startFakeStripe(
  options: {
    port?: number;
    secretKey?: string;
    now?: () => number;
    /** Let the process exit while the server listens (the local runtime's process-wide fake). */
    unref?: boolean;
  } = {},
): Promise<FakeStripe> {
  const secretKey = options.secretKey ?? FAKE_STRIPE_SECRET_KEY;
  const now = options.now ?? Date.now;
  const requests: FakeStripeRequest[] = [];
  const paymentIntents = new Map<string, FakePaymentIntent>();
  const idempotent = new Map<string, { bodyDigest: string; status: number; body: unknown }>();
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
        if (!Number.isInteger(amount) || amount < 1) {
          return invalid('amount', 'amount_too_small', 'Amount must be at least 1 in minor units.');
        }
        if (!/^[a-z]{3}$/.test(currency)) return invalid('currency', 'parameter_invalid_string');
        const id = `pi_${randomBytes(12).toString('hex')}`;
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
      handle: (_params, match) => {
        const intent = paymentIntents.get(match[1]!);
        if (!intent) return missing('payment_intent', match[1]!);
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
        Object.assign(intent, { status: 'canceled', canceled_at: seconds() });
        return [200, intent];
      },
    },
  ];

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

    const injected = faults.find((f) => f.remaining > 0 && url.pathname.startsWith(f.pathPrefix));
    if (injected) {
      injected.remaining -= 1;
      faults = faults.filter((f) => f.remaining > 0);
      const { fault } = injected;
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
      entry.status = 401;
      send(res, 401, stripeError('invalid_request_error', undefined, 'Invalid API Key provided.'));
      return;
    }

    const route = routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
    if (!route) {
      entry.status = 404;
      send(
        res,
        404,
        stripeError(
          'invalid_request_error',
          undefined,
          `Unrecognized request URL (${req.method}: ${url.pathname}).`,
        ),
      );
      return;
    }

    // Stripe keys idempotency per API key; the body must match the first request's.
    const bodyDigest = createHash('sha256')
      .update(`${req.method} ${url.pathname} ${raw}`)
      .digest('hex');
    if (idempotencyKey && req.method === 'POST') {
      const seen = idempotent.get(idempotencyKey);
      if (seen) {
        if (seen.bodyDigest !== bodyDigest) {
          entry.status = 400;
          send(
            res,
            400,
            stripeError(
              'idempotency_error',
              'idempotency_key_in_use',
              'Keys for idempotent requests can only be used with the same parameters they were first used with.',
            ),
          );
          return;
        }
        entry.status = seen.status;
        send(res, seen.status, seen.body, { 'idempotent-replayed': 'true' });
        return;
      }
    }
    const [status, body] = route.handle(params, url.pathname.match(route.pattern)!);
    // Like Stripe, only answers that did something are replayed; a 5xx is not stored.
    if (idempotencyKey && req.method === 'POST' && status < 500) {
      idempotent.set(idempotencyKey, { bodyDigest, status, body: structuredClone(body) });
    }
    entry.status = status;
    send(res, status, body);
  }

  function transition(id: string, status: string, type: string): FakeStripeEvent {
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
    return {
      id: `evt_${randomBytes(12).toString('hex')}`,
      object: 'event',
      type,
      created: seconds(),
      api_version: EVENT_API_VERSION,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: structuredClone(intent) },
    };
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
    injectFault(fault, count = 1, pathPrefix = '/') {
      faults.push({ fault, remaining: count, pathPrefix });
    },
    clearFaults() {
      faults = [];
    },
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

function invalid(param: string, code: string, message = `Invalid ${param}.`): [number, unknown] {
  return [400, { error: { type: 'invalid_request_error', code, param, message } }];
}

function missing(resource: string, id: string): [number, unknown] {
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
