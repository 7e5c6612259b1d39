/**
 * Stripe fallback (issue 15): the read route through its handler on DynamoDB Local with
 * the real Stripe SDK on the fake Stripe. A hit (one profile GetItem) against the raw
 * GetItem timed beside it; a miss through the fake with 100 ms of injected latency (the
 * lease on the user, one Stripe call, then the snapshot commit); and, with the fake
 * failing until the breaker opens, the 503 answered without calling Stripe (the profile GetItem that
 * must still come first, since a stored user is served whatever Stripe's state).
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { billingKeys } from '../functions/adapters/dynamodb/billing-table-keys.ts';
import { DynamoDbStripeLookupLeases } from '../functions/adapters/dynamodb/dynamodb-lookup-leases.ts';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { StaticSecretString } from '../functions/adapters/secrets/secret-string.ts';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../functions/adapters/stripe/stripe-client.ts';
import { StripeCustomerLookup } from '../functions/adapters/stripe/stripe-customer-source.ts';
import { StripeCallPolicy } from '../functions/adapters/stripe/stripe-resilience.ts';
import { ENV } from '../functions/commons/env-names.ts';
import { withPowertools } from '../functions/commons/middleware.ts';
import { systemClock } from '../functions/core/shared/clock.ts';
import { SubscriptionReadThrough } from '../functions/core/subscriptions/read-through.ts';
import { createSubscriptionReadHandler } from '../functions/subscription-read.ts';
import { startFakeStripe } from '../local/fake-stripe.ts';
import { httpApiEvent } from '../test/helpers/apigw-events.ts';
import type { BenchContext } from './context.ts';
import { runClosedLoop, timeAlternating } from './load.ts';
import { boundResource, functionByEntry } from './provision.ts';
import { mustBeZero, type Section } from './report.ts';
import { type LatencySummary, ratio, summarize } from './stats.ts';

const PRICE = 'price_bench_gold';
const INJECTED_LATENCY_MS = 100;

export interface FallbackResult {
  hit: LatencySummary;
  rawGetItem: LatencySummary;
  miss: LatencySummary & { users: number };
  /** Stripe requests per miss (target: exactly 1). */
  stripeRequestsPerMiss: number;
  missesNotAnswered200: number;
  breakerOpen: LatencySummary;
  rawGetItemBeside503: LatencySummary;
  /** Stripe requests made while the breaker was open (target 0). */
  stripeRequestsWhileOpen: number;
  answersOtherThan503: number;
}

export async function measureSubscriptionFallback(ctx: BenchContext): Promise<FallbackResult> {
  const read = functionByEntry(ctx.model, 'functions/subscription-read.ts');
  const consumer = functionByEntry(ctx.model, 'functions/subscription-consumer.ts');
  const billingTableName = ctx.provisioned.tableNames[boundResource(read, ENV.billingTableName)]!;
  const ledgerTableName =
    ctx.provisioned.tableNames[boundResource(consumer, ENV.subscriptionLedgerTableName)]!;
  const dynamo = ctx.harness.dynamo;
  const stripe = await startFakeStripe();
  try {
    const calls = new StripeCallPolicy({ breakerThreshold: 5, breakerOpenMs: 600_000 });
    const reader = new DynamoDbUserViewReader({ client: dynamo, billingTableName });
    // Wrapped as deployed: the Powertools middleware flushes the metrics every invocation
    // (unwrapped, they pile up and every 100th request pays for a flush of 100).
    const handler = withPowertools(
      createSubscriptionReadHandler({
        reader,
        readThrough: new SubscriptionReadThrough({
          reader,
          leases: new DynamoDbStripeLookupLeases({ client: dynamo, billingTableName }),
          source: new StripeCustomerLookup({
            clients: new StripeClientSource(
              new StaticSecretString(stripe.secretKey, 'key', (m) => new Error(m)),
              parseStripeApiUrl(stripe.url),
            ),
            calls,
          }),
          store: new DynamoDbSubscriptionStore({
            client: dynamo,
            billingTableName,
            ledgerTableName,
          }),
          clock: systemClock,
          priceTierMap: { [PRICE]: 'gold' },
        }),
      }),
    );
    const context = { functionName: 'subscription-read', awsRequestId: 'bench' } as Context;
    const get = (userId: string) =>
      handler(
        httpApiEvent({
          path: `/users/${userId}/subscription`,
          routeKey: 'GET /users/{userId}/subscription',
          pathParameters: { userId },
        }),
        context,
      );

    // Users Stripe knows and the store does not.
    const tag = Date.now().toString(36);
    const warmups = 10;
    const users = Array.from({ length: (ctx.quick ? 100 : 400) + warmups }, (_, i) => {
      const userId = `fb-${tag}-${i}`;
      const customer = stripe.createCustomer({ metadata: { userId } }).data.object.id;
      stripe.createSubscription({ customer, priceId: PRICE });
      return userId;
    });

    ctx.log(
      `fallback: ${users.length} misses through the fake Stripe (+${INJECTED_LATENCY_MS} ms)`,
    );
    stripe.setLatency(INJECTED_LATENCY_MS);
    let missesNotAnswered200 = 0;
    // One at a time, as a user's first read arrives; the first few warm the SDK and sockets.
    for (const userId of users.splice(0, warmups)) await get(userId);
    const requestsBefore = stripe.requests.length;
    const misses = await runClosedLoop(
      async (i) => {
        const response = await get(users[i]!);
        if (response.statusCode !== 200) missesNotAnswered200 += 1;
      },
      { concurrency: 1, total: users.length },
    );
    const stripeRequestsPerMiss = (stripe.requests.length - requestsBefore) / users.length;
    stripe.setLatency(0);

    ctx.log('fallback: hits against raw GetItem');
    let next = 0;
    const profileKey = (userId: string) => {
      const key = billingKeys.profile(userId);
      return { pk: { S: key.pk }, sk: { S: key.sk } };
    };
    const hits = await timeAlternating(
      () => get(users[next++ % users.length]!),
      () =>
        dynamo.send(
          new GetItemCommand({ TableName: billingTableName, Key: profileKey(users[0]!) }),
        ),
      { slices: 4, durationMs: ctx.sizes.paymentReadDurationMs, warmupMs: ctx.sizes.warmupMs },
    );

    ctx.log('fallback: Stripe down, breaker open');
    stripe.injectFault({ kind: 'status', status: 500 }, 1_000_000);
    let unknown = 0;
    while (calls.state !== 'open') await get(`fb-${tag}-unknown-${unknown++}`);
    const requestsAtOpen = stripe.requests.length;
    let answersOtherThan503 = 0;
    const down = await timeAlternating(
      async () => {
        const response = await get(`fb-${tag}-unknown-${unknown++}`);
        if (response.statusCode !== 503) answersOtherThan503 += 1;
      },
      () =>
        dynamo.send(
          new GetItemCommand({ TableName: billingTableName, Key: profileKey(users[0]!) }),
        ),
      { slices: 4, durationMs: ctx.sizes.paymentReadDurationMs, warmupMs: ctx.sizes.warmupMs },
    );
    return {
      hit: summarize(hits.own),
      rawGetItem: summarize(hits.base),
      miss: { ...summarize(misses.latenciesMs), users: users.length },
      stripeRequestsPerMiss,
      missesNotAnswered200: missesNotAnswered200 + misses.failed,
      breakerOpen: summarize(down.own),
      rawGetItemBeside503: summarize(down.base),
      stripeRequestsWhileOpen: stripe.requests.length - requestsAtOpen,
      answersOtherThan503: answersOtherThan503 + down.failed,
    };
  } finally {
    await stripe.close();
  }
}

export function subscriptionFallbackSection(r: FallbackResult): Section {
  const ms = (s: LatencySummary) => `${s.p50Ms.toFixed(2)} / ${s.p99Ms.toFixed(2)} ms`;
  return {
    id: 'fallback',
    title: 'Stripe fallback (read route)',
    figures: [
      {
        id: 'fallback.hit.p99',
        label: 'read route p99 on a hit (handler + profile GetItem)',
        value: r.hit.p99Ms,
        unit: 'ms',
        ratio: { value: ratio(r.hit.p99Ms, r.rawGetItem.p99Ms), to: 'raw GetItem p99' },
        target: { op: '<', value: 5 },
      },
      {
        id: 'fallback.miss.p99',
        label: `read route p99 on a miss (lease, fake Stripe +${INJECTED_LATENCY_MS} ms, then the snapshot commit)`,
        value: r.miss.p99Ms,
        unit: 'ms',
        target: { op: '<', value: 150 },
      },
      {
        id: 'fallback.miss.stripeRequests',
        label: 'Stripe requests per miss',
        value: r.stripeRequestsPerMiss,
        unit: 'requests',
        target: { op: '<=', value: 1 },
      },
      mustBeZero(
        'fallback.miss.not200',
        'misses of users Stripe knows not answered 200',
        r.missesNotAnswered200,
        'reads',
      ),
      {
        id: 'fallback.breakerOpen.p99',
        label: '503 p99 with Stripe down and the breaker open (profile GetItem, no Stripe call)',
        value: r.breakerOpen.p99Ms,
        unit: 'ms',
        ratio: {
          value: ratio(r.breakerOpen.p99Ms, r.rawGetItemBeside503.p99Ms),
          to: 'raw GetItem p99',
        },
        target: { op: '<', value: 5 },
      },
      mustBeZero(
        'fallback.breakerOpen.stripeRequests',
        'Stripe requests while the breaker was open',
        r.stripeRequestsWhileOpen,
        'requests',
      ),
      mustBeZero(
        'fallback.breakerOpen.not503',
        'answers other than 503 while the breaker was open',
        r.answersOtherThan503,
        'reads',
      ),
    ],
    notes: [
      `Hit p50 / p99: ${ms(r.hit)}; raw GetItem beside it ${ms(r.rawGetItem)}.`,
      `Miss p50 / p99: ${ms(r.miss)} over ${r.miss.users} users, one at a time after 10 unrecorded (${INJECTED_LATENCY_MS} ms of it is the fake's injected latency).`,
      `503 p50 / p99 with the breaker open: ${ms(r.breakerOpen)}; raw GetItem beside it ${ms(r.rawGetItemBeside503)}. The profile read comes first on purpose: a stored user is answered whatever Stripe's state.`,
    ],
  };
}
