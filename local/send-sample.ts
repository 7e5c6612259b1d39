/**
 * `npm run send-sample [fixture-name-or-path] [--url http://localhost:3000] [--user demo-user] [--tier silver]`
 *
 * Sends real Stripe webhook payloads (the captured fixtures in test/fixtures/stripe),
 * re-stamped with fresh event ids and times and tied to one app user, signed exactly
 * as Stripe signs them (the Stripe SDK's `generateTestHeaderString`), to the running
 * local suite; then polls the read API until the user's state changes and prints it.
 *
 * Without a fixture it sends a subscription-mode `checkout.session.completed` and then
 * `customer.subscription.created` for the demo user. The customer and subscription ids
 * are derived from the user id, so a later `npm run send-sample
 * customer.subscription.deleted.stripe-sync-engine` acts on the same subscription.
 *
 * The functions here are exported for the end-to-end tests.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Stripe from 'stripe';

/**
 * The local runtime's documented default secret (`DEFAULT_LOCAL_WEBHOOK_SECRET` in
 * runtime.ts, not imported because that module loads the whole CDK app; an
 * end-to-end test checks the two agree).
 */
export const SAMPLE_WEBHOOK_SECRET = 'whsec_local_development_secret';
export const DEMO_USER_ID = 'demo-user';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const STRIPE_FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures', 'stripe');
const DEFAULT_SAMPLE = [
  'checkout.session.completed.mode-subscription.WRAPPED.pay-rails',
  'customer.subscription.created.stripe-sync-engine',
];
const PERIOD_SECONDS = 30 * 86_400;

export interface StripeEventJson {
  id: string;
  object: string;
  type: string;
  created: number;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  [key: string]: unknown;
}

/** The fixtures that can be sent (file names without `.json`). */
export function listFixtures(dir = STRIPE_FIXTURES_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/**
 * A fixture as a full event: by name (`customer.subscription.deleted.stripe-sync-engine`)
 * or path. A data-only fixture (`{ object, previous_attributes? }`) is put in an event
 * envelope whose type comes from the file name.
 */
export function loadFixtureEvent(nameOrPath: string, dir = STRIPE_FIXTURES_DIR): StripeEventJson {
  const candidates = [nameOrPath, join(dir, nameOrPath), join(dir, `${nameOrPath}.json`)];
  const file = candidates.find((c) => c.endsWith('.json') && existsSync(c));
  if (!file) {
    throw new Error(
      `No fixture "${nameOrPath}". Available: ${listFixtures(dir).join(', ')} (or give a path to a .json file).`,
    );
  }
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  if (parsed.object === 'event') return parsed as StripeEventJson;
  if (typeof parsed.object === 'object' && parsed.object !== null) {
    const type = basename(file, '.json')
      .split('.data-only')[0]!
      .replace(/\.mode-[a-z]+$/, '');
    return {
      id: 'evt_placeholder',
      object: 'event',
      api_version: null,
      created: 0,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
      data: parsed as StripeEventJson['data'],
    };
  }
  throw new Error(`${file} is neither a Stripe event nor an event's data member.`);
}

/** The customer and subscription ids the samples use for a user (stable across runs). */
export function sampleIds(userId: string): { customerId: string; subscriptionId: string } {
  const slug = userId.replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'user';
  return { customerId: `cus_local${slug}`, subscriptionId: `sub_local${slug}` };
}

export interface RestampOptions {
  userId: string;
  /** Event `created`, unix seconds. Default now. */
  created?: number;
  /** Sets `metadata.tier` on the subscription's prices (the consumer prefers it to the price map). */
  tier?: string;
  customerId?: string;
  subscriptionId?: string;
}

function randomSuffix(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A copy of `event` with a fresh id and `created`, tied to `userId`: the object's
 * customer (and subscription) ids become the user's sample ids and the user id goes
 * where Stripe integrations put it (`metadata.userId`, `client_reference_id`).
 */
export function restampEvent(event: StripeEventJson, options: RestampOptions): StripeEventJson {
  const created = options.created ?? Math.floor(Date.now() / 1000);
  const ids = { ...sampleIds(options.userId), ...options };
  const copy = structuredClone(event);
  copy.id = `evt_local_${randomSuffix()}`;
  copy.created = created;
  const object = copy.data.object;
  const withUser = () => ({
    ...(isRecord(object.metadata) ? object.metadata : {}),
    userId: options.userId,
  });

  switch (object.object) {
    case 'checkout.session':
      object.id = `cs_test_local_${randomSuffix()}`;
      object.customer = ids.customerId;
      if (object.mode === 'subscription') object.subscription = ids.subscriptionId;
      object.client_reference_id = options.userId;
      object.metadata = withUser();
      object.created = created;
      break;
    case 'subscription': {
      object.id = ids.subscriptionId;
      object.customer = ids.customerId;
      object.metadata = withUser();
      object.created ??= created;
      object.start_date = created;
      object.billing_cycle_anchor = created;
      object.current_period_start = created;
      object.current_period_end = created + PERIOD_SECONDS;
      const items =
        isRecord(object.items) && Array.isArray(object.items.data) ? object.items.data : [];
      for (const item of items as Record<string, unknown>[]) {
        item.subscription = ids.subscriptionId;
        // Newer API versions keep the period on each item.
        if ('current_period_end' in item) {
          item.current_period_start = created;
          item.current_period_end = created + PERIOD_SECONDS;
        }
        if (options.tier && isRecord(item.price)) {
          item.price.metadata = {
            ...(isRecord(item.price.metadata) ? item.price.metadata : {}),
            tier: options.tier,
          };
        }
      }
      break;
    }
    case 'customer':
      object.id = ids.customerId;
      object.metadata = withUser();
      break;
    case 'invoice':
      object.id = `in_local_${randomSuffix()}`;
      object.customer = ids.customerId;
      if (typeof object.subscription === 'string') object.subscription = ids.subscriptionId;
      if (isRecord(object.parent) && isRecord(object.parent.subscription_details)) {
        object.parent.subscription_details.subscription = ids.subscriptionId;
      }
      break;
    default:
      if (typeof object.customer === 'string') object.customer = ids.customerId;
  }
  return copy;
}

/** Ids of the sample payment of a user (fresh each run, so histories accumulate). */
export function samplePaymentIds(): { paymentIntentId: string; chargeId: string } {
  const suffix = randomSuffix();
  return { paymentIntentId: `pi_local${suffix}`, chargeId: `ch_local${suffix}` };
}

/**
 * A payment's life as Stripe reports it, from the captured fixtures re-pointed at one
 * new PaymentIntent of the user: succeeded (the 2020-era shape with `charges`), a
 * partial refund, the full refund, then a dispute. Amount 2000 (minor units) in usd,
 * one second apart so the history reads in order.
 */
export function buildPaymentSample(options: RestampOptions): StripeEventJson[] {
  const created = options.created ?? Math.floor(Date.now() / 1000);
  const { customerId } = { ...sampleIds(options.userId), ...options };
  const { paymentIntentId, chargeId } = samplePaymentIds();
  const amount = 2000;
  const stamp = (event: StripeEventJson, at: number) => {
    const copy = structuredClone(event);
    copy.id = `evt_local_${randomSuffix()}`;
    copy.created = at;
    return copy;
  };
  const charge = (amountRefunded: number) => ({
    id: chargeId,
    amount,
    amount_refunded: amountRefunded,
    refunded: amountRefunded >= amount,
    currency: 'usd',
    customer: customerId,
    payment_intent: paymentIntentId,
    invoice: null,
    created,
    status: 'succeeded',
    metadata: { userId: options.userId },
    // Stripe lists every refund of the charge; the full refund is a second one of the rest.
    refunds: {
      object: 'list',
      data: [500, amount - 500]
        .slice(0, amountRefunded === 0 ? 0 : amountRefunded < amount ? 1 : 2)
        .map((refundAmount, index) => ({
          id: `re_local${chargeId.slice(8)}${index}`,
          object: 'refund',
          amount: refundAmount,
          charge: chargeId,
          payment_intent: paymentIntentId,
          created: created + 1 + index,
          currency: 'usd',
          status: 'succeeded',
        })),
    },
  });

  const succeeded = stamp(loadFixtureEvent('payment_intent.succeeded.stripe-ruby-mock'), created);
  Object.assign(succeeded.data.object, {
    id: paymentIntentId,
    amount,
    amount_received: amount,
    currency: 'usd',
    customer: customerId,
    created,
    metadata: { userId: options.userId },
  });
  const charges = succeeded.data.object.charges as { data: Record<string, unknown>[] };
  charges.data = [{ ...charges.data[0], ...charge(0) }];

  const refunded = (amountRefunded: number, at: number) => {
    const event = stamp(loadFixtureEvent('charge.refunded.stripe-sync-engine'), at);
    event.data.object = { ...event.data.object, ...charge(amountRefunded) };
    return event;
  };
  const disputed = stamp(loadFixtureEvent('charge.dispute.created.zulip'), created + 3);
  Object.assign(disputed.data.object, {
    id: `du_local${chargeId.slice(8)}`,
    amount,
    charge: chargeId,
    payment_intent: paymentIntentId,
    created: created + 3,
  });
  return [succeeded, refunded(500, created + 1), refunded(amount, created + 2), disputed];
}

/** The default sample: checkout completed, then the subscription it created. */
export function buildDefaultSample(options: RestampOptions): StripeEventJson[] {
  const created = options.created ?? Math.floor(Date.now() / 1000);
  return DEFAULT_SAMPLE.map((name) =>
    restampEvent(loadFixtureEvent(name), { ...options, created }),
  );
}

export interface DeliveryResult {
  status: number;
  body: string;
}

/** POSTs the event as Stripe would: pretty JSON body, `Stripe-Signature` over exactly those bytes. */
export async function deliverSignedEvent(
  apiUrl: string,
  event: StripeEventJson,
  secret: string,
): Promise<DeliveryResult> {
  const payload = JSON.stringify(event, null, 2);
  const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret });
  const res = await fetch(new URL('/webhooks/stripe', apiUrl), {
    method: 'POST',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'stripe-signature': signature,
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
    },
    body: payload,
  });
  return { status: res.status, body: await res.text() };
}

async function readRoute(apiUrl: string, path: string): Promise<DeliveryResult> {
  const res = await fetch(new URL(path, apiUrl));
  return { status: res.status, body: await res.text() };
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** The suite is not listening: fetch's cause says ECONNREFUSED (or similar). */
function isConnectionError(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } }).cause;
  return (
    error instanceof TypeError &&
    ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH'].includes(cause?.code ?? '')
  );
}

async function main(): Promise<number> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: {
        type: 'string',
        default: process.env.API_URL ?? `http://localhost:${process.env.PORT ?? 3000}`,
      },
      user: { type: 'string', default: DEMO_USER_ID },
      tier: { type: 'string', default: 'silver' },
      timeout: { type: 'string', default: '20' },
      list: { type: 'boolean', default: false },
      payments: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || values.list) {
    console.log(
      'Usage: npm run send-sample [-- fixture-name-or-path | --payments] [--url URL] [--user ID] [--tier TIER] [--timeout SECONDS]',
    );
    console.log(
      '  --payments  a payment history: succeeded, partial refund, full refund, dispute; then the payment routes',
    );
    console.log(`Fixtures (${STRIPE_FIXTURES_DIR}):\n  ${listFixtures().join('\n  ')}`);
    return 0;
  }
  const secret = process.env.STRIPE_WEBHOOK_SECRET || SAMPLE_WEBHOOK_SECRET;
  const userId = values.user;
  const options: RestampOptions = { userId, ...(values.tier ? { tier: values.tier } : {}) };
  const events = values.payments
    ? buildPaymentSample(options)
    : positionals[0]
      ? [restampEvent(loadFixtureEvent(positionals[0]), options)]
      : buildDefaultSample(options);
  const apiUrl = values.url;
  const user = encodeURIComponent(userId);
  // What to watch: the payment's route (it ends `disputed`), else the user's subscription.
  const paymentId = values.payments ? String(events[0]?.data.object.id) : undefined;
  const watched = paymentId ? `/payments/${paymentId}` : `/users/${user}/subscription`;
  const settled = (body: string) => !paymentId || body.includes('"disputed"');

  try {
    const before = await readRoute(apiUrl, watched);
    for (const event of events) {
      const result = await deliverSignedEvent(apiUrl, event, secret);
      console.log(
        `POST /webhooks/stripe ${event.type} (${event.id}) -> ${result.status} ${result.body}`,
      );
      if (result.status >= 300) {
        if (result.status === 400 && result.body.includes('signature')) {
          console.error(
            `The signature was refused: is the suite using another STRIPE_WEBHOOK_SECRET? This sender used ${secret === SAMPLE_WEBHOOK_SECRET ? 'the local default' : 'STRIPE_WEBHOOK_SECRET'}.`,
          );
        }
        return 1;
      }
    }

    console.log(`\nWaiting for GET ${watched} to show the change...`);
    const deadline = Date.now() + Number(values.timeout) * 1000;
    for (;;) {
      const now = await readRoute(apiUrl, watched);
      if (now.status === 200 && now.body !== before.body && settled(now.body)) {
        console.log(`GET ${watched} -> ${now.status}\n${pretty(now.body)}`);
        if (paymentId) {
          // The sample's own day (it was paid, refunded and created then), not the clock's.
          const day = new Date((events[0]?.created ?? Date.now() / 1000) * 1000)
            .toISOString()
            .slice(0, 10);
          for (const path of [
            `/users/${user}/payments?limit=5`,
            `/reports/refunds?from=${day}&to=${day}`,
            // Reconciliation: payments of one status by paid date; the sample ends disputed.
            `/reports/payments?status=disputed&paidFrom=${day}&paidTo=${day}`,
            `/reports/daily-summary?date=${day}`,
          ]) {
            const answer = await readRoute(apiUrl, path);
            console.log(`\nGET ${path} -> ${answer.status}\n${pretty(answer.body)}`);
          }
        }
        return 0;
      }
      if (Date.now() > deadline) {
        console.log(
          `No change after ${values.timeout} s (the event may not change this user's state). Current answer: ${now.status}\n${pretty(now.body)}`,
        );
        return now.status === 200 ? 0 : 1;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (error) {
    if (isConnectionError(error)) {
      console.error(
        `Nothing answers at ${apiUrl}. Start the suite first with \`npm start\` (in another terminal), or pass --url.`,
      );
      return 1;
    }
    throw error;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error((error as Error).message ?? error);
      process.exit(1);
    },
  );
}
