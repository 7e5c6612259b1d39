/**
 * `npm run send-sample [fixture-name-or-path | --payments | --penalties] [--url http://localhost:3000] [--user demo-user] [--tier silver]`
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
 * `--penalties` sends no fixture: it walks the penalty routes (DESIGN §8.3) as the app
 * backend and an operator would (runPenaltySample).
 *
 * The functions here are exported for the end-to-end tests.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Stripe from 'stripe';
import type { AssessmentCounts, Habit, Penalty } from '../functions/core/penalties/ports.ts';
import type { SettlementResult } from '../functions/core/penalties/settlement.ts';
import { PENALTY_PURPOSE, penaltyIdsMetadata } from '../functions/core/shared/penalty-metadata.ts';
import { FAKE_PAYMENT_INTENT_PREFIX } from './fake-stripe.ts';

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

/** Runs `work` against the suite at `apiUrl`; the suite not running is one clear line and exit code 1. */
async function withRunningSuite(apiUrl: string, work: () => Promise<number>): Promise<number> {
  try {
    return await work();
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

/** The suite is not listening: fetch's cause says ECONNREFUSED (or similar). */
function isConnectionError(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } }).cause;
  return (
    error instanceof TypeError &&
    ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH'].includes(cause?.code ?? '')
  );
}

/** Where the penalties sample's non-free habits send their penalty money. */
export const SAMPLE_RECIPIENT_ID = 'sample-charity';

/**
 * The penalties sample's habits. A habit id lives under its user
 * (`/users/{userId}/habits/{habitId}`), so fixed ids are already per user and a re-run
 * finds the same three habits; the `sample-` prefix keeps them apart from habits made by
 * hand (the README's `run`).
 */
export const SAMPLE_HABITS = {
  'sample-meditate': { name: 'Meditate', penaltyAmount: 0, currency: 'usd', free: true },
  'sample-run': {
    name: 'Run',
    penaltyAmount: 500,
    currency: 'usd',
    free: false,
    recipientId: SAMPLE_RECIPIENT_ID,
  },
  'sample-read': {
    name: 'Read',
    penaltyAmount: 300,
    currency: 'usd',
    free: false,
    recipientId: SAMPLE_RECIPIENT_ID,
  },
} as const;
/** The habit the sample marks done on each day it runs. */
export const SAMPLE_DONE_HABIT = 'sample-run';
/** The non-free habit the sample never marks done: the one that costs a penalty. */
const MISSED_HABIT = 'sample-read';

const DAY_MS = 86_400_000;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** `${count} ${noun}`, with the plural the noun takes. */
function counted(count: number, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : plural}`;
}

/**
 * `payment_intent.succeeded` for a settlement's PaymentIntent, as Stripe sends it once
 * the customer paid: the captured fixture (2020-era shape, its charge listed) re-pointed
 * at that PaymentIntent, with the metadata the settlement gave it (purpose, user,
 * penalty ids). The settlement's own customer is not known here; the payment consumer
 * finds the user and the penalties in the metadata.
 */
export function buildPenaltyPaymentSucceeded(payment: {
  userId: string;
  paymentIntentId: string;
  amount: number;
  currency: string;
  penaltyIds: readonly string[];
  created?: number;
}): StripeEventJson {
  const created = payment.created ?? Math.floor(Date.now() / 1000);
  const metadata = {
    purpose: PENALTY_PURPOSE,
    userId: payment.userId,
    ...penaltyIdsMetadata(payment.penaltyIds),
  };
  const event = loadFixtureEvent('payment_intent.succeeded.stripe-ruby-mock');
  event.id = `evt_local_${randomSuffix()}`;
  event.created = created;
  // What the PaymentIntent and its one charge have in common.
  const common = { amount: payment.amount, currency: payment.currency, customer: null, created };
  Object.assign(event.data.object, {
    ...common,
    id: payment.paymentIntentId,
    amount_received: payment.amount,
    status: 'succeeded',
    metadata,
  });
  const charges = event.data.object.charges as { data: Record<string, unknown>[] };
  charges.data = [
    {
      ...charges.data[0],
      ...common,
      id: `ch_local${randomSuffix()}`,
      amount_captured: payment.amount,
      amount_refunded: 0,
      refunded: false,
      payment_intent: payment.paymentIntentId,
      status: 'succeeded',
      metadata,
      refunds: { object: 'list', data: [] },
    },
  ];
  return event;
}

export interface PenaltySampleOptions {
  apiUrl: string;
  userId: string;
  /** Signs the `payment_intent.succeeded` the sample sends, playing Stripe, for a settlement. */
  webhookSecret: string;
  /** How long to wait for the payment consumer to mark a settlement's penalties paid. Default 20 s. */
  timeoutMs?: number;
  /** Where the lines go. Default console.log. */
  print?: (line: string) => void;
}

type ApiAnswer<T> = { status: number; body: T & { error?: { code?: string; message?: string } } };

/** Calls one route of the suite with a JSON body (when given) and reads its JSON answer. */
async function callRoute<T>(
  apiUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer<T>> {
  const res = await fetch(new URL(path, apiUrl), {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    // Not the suite's JSON (another server on the port?): keep the text for the error.
    return { status: res.status, body: { error: { message: text } } as ApiAnswer<T>['body'] };
  }
}

/** The error for a route that answered what the sample cannot go on from: the route's own words. */
function unexpectedAnswer(call: string, answer: ApiAnswer<unknown>): Error {
  const { code, message } = answer.body.error ?? {};
  const reason = message ?? JSON.stringify(answer.body);
  return new Error(`${call} answered ${answer.status}${code ? ` ${code}` : ''}: ${reason}`);
}

function describeHabit(habit: {
  name: string;
  free: boolean;
  penaltyAmount: number;
  currency: string;
  recipientId?: string | null;
}): string {
  if (habit.free) return `"${habit.name}", free (a missed day costs nothing)`;
  const to = habit.recipientId ? `, paid to ${habit.recipientId}` : '';
  return `"${habit.name}", a missed day costs ${habit.penaltyAmount} ${habit.currency}${to}`;
}

/**
 * The penalties walk-through against a running suite, every step through the routes of
 * DESIGN §8.3 and printed in words: the sample habits (created, or found again), one
 * of them done today, the assessment of yesterday (an operator's route), the user's
 * habits, penalties and unpaid summary, then a settlement of what is unpaid (credits
 * first, the rest by a PaymentIntent on the suite's Stripe), whose
 * `payment_intent.succeeded` it sends signed, as Stripe would once the customer paid.
 *
 * A habit is assessed from the day it was created, so on the first day there is nothing
 * to assess yet: the missed day (`sample-read`, undone) costs its penalty once that day
 * is assessed, by the hourly schedule after midnight UTC or by this sample run the next
 * day. Running it again is harmless: the habits are updated in place, a verification
 * and an assessment are idempotent, a settled penalty is not settled twice. Throws with
 * the route's answer when a step fails.
 */
export async function runPenaltySample(options: PenaltySampleOptions): Promise<void> {
  const { apiUrl, userId } = options;
  const print = options.print ?? console.log;
  const user = `/users/${encodeURIComponent(userId)}`;
  const now = Date.now();
  const today = isoDate(now);
  const yesterday = isoDate(now - DAY_MS);
  print(`Penalties sample for ${userId}; today is ${today} (UTC).`);

  print(`\n1. Habits: PUT ${user}/habits/{habitId}`);
  const createdToday: string[] = [];
  for (const [habitId, settings] of Object.entries(SAMPLE_HABITS)) {
    const call = `PUT ${user}/habits/${habitId}`;
    const answer = await callRoute<Habit>(apiUrl, 'PUT', `${user}/habits/${habitId}`, settings);
    if (answer.status === 201 || answer.status === 200) {
      const since = answer.body.createdAt.slice(0, 10);
      if (since === today) createdToday.push(habitId);
      const what =
        answer.status === 201 ? 'created' : `already there (since ${since}), settings re-applied`;
      print(`   ${habitId} -> ${answer.status} ${what}: ${describeHabit(settings)}`);
    } else if (answer.status === 409) {
      // Past the tier's free-habit limit (or 100 habits): the route leaves the user's
      // habits as they are, and the sample goes on without this one.
      print(`   ${habitId} -> 409 not created: ${answer.body.error?.message}`);
    } else {
      throw unexpectedAnswer(call, answer);
    }
  }

  // Today, not yesterday: a day before a habit was created is refused, and yesterday is
  // usually assessed already (the hourly schedule), after which it takes no verification.
  const verification = `${user}/habits/${SAMPLE_DONE_HABIT}/verifications/${today}`;
  const verified = await callRoute<unknown>(apiUrl, 'PUT', verification);
  if (verified.status !== 200) throw unexpectedAnswer(`PUT ${verification}`, verified);
  print(`\n2. Done today: PUT ${verification} -> 200`);
  print(
    `   ${SAMPLE_DONE_HABIT} is done for ${today}; the other habits are left undone, so today they are missed.`,
  );

  const assessed = await callRoute<AssessmentCounts>(apiUrl, 'POST', '/admin/penalties/assess', {
    date: yesterday,
  });
  if (assessed.status !== 200 && assessed.status !== 202) {
    throw unexpectedAnswer('POST /admin/penalties/assess', assessed);
  }
  const totals = assessed.body;
  print(
    `\n3. Assessment of ${yesterday}: POST /admin/penalties/assess -> ${assessed.status} (an operator's route: IAM on AWS, no auth locally)`,
  );
  print(
    `   Habits due that day (all users): ${totals.habits}; ${totals.verified} done, ${totals.missed} missed, ${counted(totals.penaltiesCreated, 'penalty', 'penalties')} created. Assessing a day again creates nothing.`,
  );
  if (assessed.status === 202) {
    print('   Not finished yet: the next call or the hourly schedule goes on where it stopped.');
  }
  if (createdToday.length > 0) {
    print(
      `   ${createdToday.join(', ')}: created today, and a habit is assessed from the day it was created, so nothing of theirs for ${yesterday}.`,
    );
    print(
      `   Today is assessed tomorrow (the hourly schedule after midnight UTC, or this sample run again tomorrow): then ${MISSED_HABIT}, not done, costs its penalty; ${SAMPLE_DONE_HABIT} (done) and the free habit cost nothing.`,
    );
  }

  print(`\n4. Where ${userId} stands`);
  const habits = await callRoute<{ items: Habit[] }>(apiUrl, 'GET', `${user}/habits`);
  if (habits.status !== 200) throw unexpectedAnswer(`GET ${user}/habits`, habits);
  print(`   GET ${user}/habits -> 200`);
  for (const habit of habits.body.items) {
    const assessedOn = habit.lastAssessedDate
      ? `last assessed ${habit.lastAssessedDate}`
      : 'not assessed yet';
    print(
      `     ${habit.habitId}: ${describeHabit(habit)}; streak ${habit.currentStreak} (longest ${habit.longestStreak}), ${assessedOn}`,
    );
  }
  await printPenalties(apiUrl, user, print);

  print(`\n5. Settlement`);
  const unpaid = await readSummary(apiUrl, user);
  if (unpaid.unpaidCount > 0) {
    const call = `POST ${user}/penalties/settle`;
    const settled = await callRoute<SettlementResult>(apiUrl, 'POST', `${user}/penalties/settle`);
    if (settled.status === 200) {
      const { waived, payment } = settled.body;
      print(`   ${call} -> 200`);
      if (waived.length > 0) {
        print(
          `   ${counted(waived.length, 'penalty', 'penalties')} waived, one credit each: ${waived.join(', ')}`,
        );
      }
      if (payment) {
        print(
          `   ${counted(payment.penaltyIds.length, 'penalty', 'penalties')} to pay by one PaymentIntent, ${payment.paymentIntentId} (${payment.amount} ${payment.currency}), pending until Stripe says it is paid.`,
        );
      }
    } else if (settled.status === 409 && settled.body.error?.code === 'settlement_pending') {
      // An earlier run's settlement was left pending: its payment is finished below.
      print(`   ${call} -> 409: ${settled.body.error.message}`);
    } else {
      throw unexpectedAnswer(call, settled);
    }
  }
  const pending = await pendingPayments(apiUrl, user);
  for (const payment of pending) {
    await payAsStripe({ ...options, print }, user, payment);
  }
  if (unpaid.unpaidCount === 0 && pending.length === 0) {
    print('   Nothing unpaid or pending: nothing to settle.');
    return;
  }
  const after = await readSummary(apiUrl, user);
  print(`   GET ${user}/penalties/summary -> 200: ${describeSummary(after)}`);
}

interface PenaltySummary {
  unpaidCount: number;
  unpaidAmount: { currency: string; amount: number }[];
  oldestUnpaidDate: string | null;
}

async function readSummary(apiUrl: string, user: string): Promise<PenaltySummary> {
  const summary = await callRoute<PenaltySummary>(apiUrl, 'GET', `${user}/penalties/summary`);
  if (summary.status !== 200) throw unexpectedAnswer(`GET ${user}/penalties/summary`, summary);
  return summary.body;
}

function describeSummary(summary: PenaltySummary): string {
  if (summary.unpaidCount === 0) return 'nothing unpaid';
  const amounts = summary.unpaidAmount.map((a) => `${a.amount} ${a.currency}`).join(' + ');
  return `${summary.unpaidCount} unpaid (${amounts}), the oldest of ${summary.oldestUnpaidDate}`;
}

async function printPenalties(
  apiUrl: string,
  user: string,
  print: (line: string) => void,
): Promise<void> {
  const path = `${user}/penalties?limit=10`;
  const penalties = await callRoute<{ items: Penalty[]; nextCursor: string | null }>(
    apiUrl,
    'GET',
    path,
  );
  if (penalties.status !== 200) throw unexpectedAnswer(`GET ${path}`, penalties);
  print(`   GET ${path} -> 200${penalties.body.items.length === 0 ? ': none' : ''}`);
  for (const penalty of penalties.body.items) {
    const by = penalty.paymentId ? ` by ${penalty.paymentId}` : '';
    print(
      `     ${penalty.penaltyId}: ${penalty.amount} ${penalty.currency}, ${penalty.status}${by}`,
    );
  }
  if (penalties.body.nextCursor) print('     (older ones on the next pages)');
  print(
    `   GET ${user}/penalties/summary -> 200: ${describeSummary(await readSummary(apiUrl, user))}`,
  );
}

interface PendingPayment {
  paymentIntentId: string;
  amount: number;
  currency: string;
  penaltyIds: string[];
}

/** The user's pending penalties grouped by the PaymentIntent they wait for (one per settlement). */
async function pendingPayments(apiUrl: string, user: string): Promise<PendingPayment[]> {
  const path = `${user}/penalties?status=pending&limit=100`;
  const pending = await callRoute<{ items: Penalty[] }>(apiUrl, 'GET', path);
  if (pending.status !== 200) throw unexpectedAnswer(`GET ${path}`, pending);
  const byPayment = new Map<string, PendingPayment>();
  for (const penalty of pending.body.items) {
    if (!penalty.paymentId) continue;
    const payment = byPayment.get(penalty.paymentId) ?? {
      paymentIntentId: penalty.paymentId,
      amount: 0,
      currency: penalty.currency,
      penaltyIds: [],
    };
    payment.amount += penalty.amount;
    payment.penaltyIds.push(penalty.penaltyId);
    byPayment.set(penalty.paymentId, payment);
  }
  return [...byPayment.values()];
}

/**
 * Plays Stripe for a pending settlement: nothing confirms a PaymentIntent locally (the
 * fake Stripe has no checkout), so the sample sends the signed `payment_intent.succeeded`
 * Stripe would send once the customer paid, then waits for the payment consumer.
 */
async function payAsStripe(
  options: PenaltySampleOptions & { print: (line: string) => void },
  user: string,
  payment: PendingPayment,
): Promise<void> {
  const { apiUrl, print } = options;
  if (!payment.paymentIntentId.startsWith(FAKE_PAYMENT_INTENT_PREFIX)) {
    // The suite talks to another Stripe (STRIPE_API_URL): only that Stripe may say it was paid.
    print(
      `   ${payment.paymentIntentId} is not the fake Stripe's: it stays pending until that Stripe sends payment_intent.succeeded.`,
    );
    return;
  }
  const event = buildPenaltyPaymentSucceeded({ userId: options.userId, ...payment });
  const delivered = await deliverSignedEvent(apiUrl, event, options.webhookSecret);
  print(
    `   Playing Stripe, as if the customer paid ${payment.paymentIntentId}: POST /webhooks/stripe payment_intent.succeeded (${event.id}) -> ${delivered.status}`,
  );
  if (delivered.status !== 200) {
    throw new Error(
      `The webhook answered ${delivered.status}: ${delivered.body}${delivered.status === 400 ? ' (is the suite using another STRIPE_WEBHOOK_SECRET?)' : ''}`,
    );
  }
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await pendingPayments(apiUrl, user);
    if (!left.some((p) => p.paymentIntentId === payment.paymentIntentId)) break;
    if (Date.now() > deadline) {
      throw new Error(
        `${payment.paymentIntentId}'s penalties were still pending after ${timeoutMs / 1000} s: is the payments queue consumed (see the npm start terminal)?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  print(
    `   The payment consumer marked ${counted(payment.penaltyIds.length, 'penalty', 'penalties')} paid: ${payment.penaltyIds.join(', ')}`,
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
      penalties: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || values.list) {
    console.log(
      'Usage: npm run send-sample [-- fixture-name-or-path | --payments | --penalties] [--url URL] [--user ID] [--tier TIER] [--timeout SECONDS]',
    );
    console.log(
      '  --payments   a payment history: succeeded, partial refund, full refund, dispute; then the payment routes',
    );
    console.log(
      "  --penalties  habits (one free), one done today, yesterday's assessment, the penalties and summary, then a settlement (its payment_intent.succeeded sent as Stripe would)",
    );
    console.log(`Fixtures (${STRIPE_FIXTURES_DIR}):\n  ${listFixtures().join('\n  ')}`);
    return 0;
  }
  const secret = process.env.STRIPE_WEBHOOK_SECRET || SAMPLE_WEBHOOK_SECRET;
  const userId = values.user;
  if (values.penalties) {
    if (values.payments || positionals.length > 0) {
      console.error('--penalties sends no fixture: give it without --payments or a fixture name.');
      return 1;
    }
    return await withRunningSuite(values.url, async () => {
      await runPenaltySample({
        apiUrl: values.url,
        userId,
        webhookSecret: secret,
        timeoutMs: Number(values.timeout) * 1000,
      });
      return 0;
    });
  }
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

  return await withRunningSuite(apiUrl, async () => {
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
          // The sample's own day (it was paid and created then), not the clock's; its
          // refunds come a second or two later, so on the next day just before midnight.
          const createdAt = (events[0]?.created ?? Date.now() / 1000) * 1000;
          const day = new Date(createdAt).toISOString().slice(0, 10);
          const refundDay = new Date(createdAt + 3_000).toISOString().slice(0, 10);
          for (const path of [
            `/users/${user}/payments?limit=5`,
            `/reports/refunds?from=${day}&to=${refundDay}`,
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
  });
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
