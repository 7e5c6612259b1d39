/**
 * Typed loaders for the captured third-party payloads in test/fixtures/ (see
 * SOURCES.md there). Each call returns a fresh deep copy, so a test may mutate what
 * it gets. Raw text is available too, for tests that sign or compare exact bytes.
 */
import { readFileSync } from 'node:fs';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  EventBridgeEvent,
  ScheduledEvent,
  SQSEvent,
} from 'aws-lambda';
import type Stripe from 'stripe';

const FIXTURES_DIR = new URL('../fixtures/', import.meta.url);

/** Full Stripe event envelopes (`object: "event"`). */
export const STRIPE_EVENT_FIXTURES = [
  'charge.dispute.closed.zulip',
  'charge.dispute.created.stripe-ruby-mock',
  'charge.dispute.created.zulip',
  'charge.failed.zulip',
  'charge.refund.updated.refund-failed.zulip',
  'charge.refund.updated.stripe-ruby-mock',
  'charge.succeeded.zulip',
  'charge.refunded.stripe-sync-engine',
  'checkout.session.completed.mode-payment.stripe-sync-engine',
  'checkout.session.completed.mode-subscription.WRAPPED.pay-rails',
  'customer.created.WRAPPED.openapi-fixtures3',
  'customer.subscription.created.stripe-sync-engine',
  'customer.subscription.deleted.stripe-sync-engine',
  'customer.subscription.updated.stripe-sync-engine',
  'invoice.paid.stripe-sync-engine',
  'payment_intent.created.stripe-ruby-mock',
  'payment_intent.payment_failed.stripe-sync-engine',
  'payment_intent.succeeded.stripe-ruby-mock',
] as const;
export type StripeEventFixture = (typeof STRIPE_EVENT_FIXTURES)[number];

/** An event's `data` member only (`{ object, previous_attributes? }`), no envelope. */
export const STRIPE_DATA_FIXTURES = [
  'charge.refunded.partial.data-only.pay-rails',
  'checkout.session.completed.mode-subscription.data-only.pay-rails',
  'invoice.payment_failed.data-only.pay-rails',
] as const;
export type StripeDataFixture = (typeof STRIPE_DATA_FIXTURES)[number];

/** Canonical API objects from stripe/openapi, keyed by object type. */
export const STRIPE_OBJECT_FIXTURES = [
  'charge',
  'checkout.session',
  'customer',
  'event',
  'invoice',
  'payment_intent',
  'refund',
  'subscription',
] as const;
export type StripeObjectFixture = (typeof STRIPE_OBJECT_FIXTURES)[number];

/** AWS trigger events, with the @types/aws-lambda type each one has. */
export interface AwsEventFixtures {
  'apigw-http-v2.powertools': APIGatewayProxyEventV2;
  'apigw-http-v2.aws-lambda-go': APIGatewayProxyEventV2;
  'apigw-rest-v1.powertools': APIGatewayProxyEvent;
  'apigw-rest-v1.aws-lambda-go': APIGatewayProxyEvent;
  'sqs.powertools': SQSEvent;
  'sqs.aws-lambda-go': SQSEvent;
  'eventbridge-generic.powertools': EventBridgeEvent<string, unknown>;
  'eventbridge-scheduled-event.sam-cli': ScheduledEvent;
}
export type AwsEventFixture = keyof AwsEventFixtures;

const rawCache = new Map<string, string>();

function readFixture(relativePath: string): string {
  let text = rawCache.get(relativePath);
  if (text === undefined) {
    text = readFileSync(new URL(relativePath, FIXTURES_DIR), 'utf8');
    rawCache.set(relativePath, text);
  }
  return text;
}

/** The exact file text of a Stripe event fixture (what Stripe would have POSTed). */
export function readStripeEventRaw(name: StripeEventFixture): string {
  return readFixture(`stripe/${name}.json`);
}

/**
 * A Stripe event envelope. Typed as the SDK's `Stripe.Event` by default; the captured
 * events use older API versions, so pass a narrower type where a field's shape matters.
 */
export function loadStripeEvent<T = Stripe.Event>(name: StripeEventFixture): T {
  return JSON.parse(readStripeEventRaw(name)) as T;
}

/**
 * A Stripe event fixture with top-level fields replaced, e.g. a unique `id` per test
 * or a chosen `created`, so tests sharing emulators never collide on event ids.
 */
export function stripeEventWith<T extends { id: string; created: number } = Stripe.Event>(
  name: StripeEventFixture,
  overrides: Partial<T> = {},
): T {
  return { ...loadStripeEvent<T>(name), ...overrides };
}

/** A unique Stripe-looking event id (`evt_test_...`). */
export function uniqueEventId(): string {
  return `evt_test_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

/** The `data` member of an event (`{ object, previous_attributes? }`). */
export function loadStripeEventData<T = { object: Record<string, unknown> }>(
  name: StripeDataFixture,
): T {
  return JSON.parse(readFixture(`stripe/${name}.json`)) as T;
}

/** A canonical Stripe API object, e.g. `loadStripeObject<Stripe.Subscription>('subscription')`. */
export function loadStripeObject<T = Record<string, unknown>>(name: StripeObjectFixture): T {
  return JSON.parse(
    readFixture(`stripe/openapi-canonical/${name}.object.openapi-fixtures3.json`),
  ) as T;
}

/** An AWS trigger event fixture, typed by name. */
export function loadAwsEvent<K extends AwsEventFixture>(name: K): AwsEventFixtures[K] {
  return JSON.parse(readFixture(`aws/${name}.json`)) as AwsEventFixtures[K];
}
