/**
 * The wired consumer handler against DynamoDB Local: realistic histories with
 * duplicates and reordering, partial batch failures, unknown types, and faults.
 */
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../functions/core/credits/allowances.ts';
import { bestView } from '../../functions/core/subscriptions/user-standing.ts';
import { createSubscriptionConsumer } from '../../functions/subscription-consumer.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { loadStripeEvent } from '../helpers/fixtures.ts';
import { sqsBatch } from '../helpers/sqs-events.ts';
import {
  deliver,
  expectedView,
  generateHistory,
  HISTORY_PRICE_TIER_MAP,
} from '../helpers/stripe-history.ts';

const context = { functionName: 'subscription-consumer', awsRequestId: 'test' } as Context;
const priceTierMap = HISTORY_PRICE_TIER_MAP;

let tables: { billingTableName: string; ledgerTableName: string };
let dynamo: DynamoDBClient;

beforeAll(async () => {
  dynamo = emulatorClients().dynamo;
  tables = await createBillingTables(dynamo);
});

const storeOn = (client: DynamoDBClient) => new DynamoDbSubscriptionStore({ client, ...tables });
const reader = () =>
  new DynamoDbUserViewReader({ client: dynamo, billingTableName: tables.billingTableName });

const failedIds = (response: SQSBatchResponse) =>
  response.batchItemFailures.map((f) => f.itemIdentifier);

describe('subscription consumer on DynamoDB Local', () => {
  it('applies duplicated, reordered histories exactly once, in batches of 10', async () => {
    const histories = Array.from({ length: 12 }, (_, index) =>
      generateHistory(9000 + index, { prefix: 'it' }),
    );
    const bodies = deliver(histories, 7, { duplicateRate: 0.3, reorderWindow: 8 });
    const consumer = createSubscriptionConsumer({ store: storeOn(dynamo), priceTierMap });
    for (let index = 0; index < bodies.length; index += 10) {
      const response = await consumer(sqsBatch(bodies.slice(index, index + 10)), context);
      expect(response.batchItemFailures).toEqual([]);
    }
    // Redelivering everything (an SQS or Stripe retry storm) changes nothing.
    const replay = await consumer(sqsBatch(bodies.slice(0, 10)), context);
    expect(replay.batchItemFailures).toEqual([]);

    for (const history of histories) {
      expect(await reader().getUserView(history.userId)).toEqual(expectedView(history));
    }
    // Every event recorded once across the ledger pages: redeliveries are not recorded again.
    const pages = await dynamo.send(new ScanCommand({ TableName: tables.ledgerTableName }));
    const recorded = (pages.Items ?? []).flatMap(
      (page) => page.events?.L?.map((event) => event.M?.eventId?.S) ?? [],
    );
    const unique = histories.flatMap((history) => history.events.map((event) => event.id));
    expect(recorded.sort()).toEqual(unique.sort());
  });

  it('gives a user with several customers the best of them, across concurrent batches, and moves a customer away', async () => {
    const [first, second] = ['user-it-multi-1', 'user-it-multi-2'];
    const histories = [
      generateHistory(9101, { prefix: 'itm', userId: first }),
      generateHistory(9102, { prefix: 'itm', userId: first }),
      generateHistory(9103, { prefix: 'itm', userId: first, movesTo: second }),
      generateHistory(9104, { prefix: 'itm', userId: second }),
    ];
    const bodies = deliver(histories, 11, { duplicateRate: 0.3, reorderWindow: 8 });
    const consumer = createSubscriptionConsumer({ store: storeOn(dynamo), priceTierMap });
    let pending = bodies;
    // Three batches at a time, as concurrent consumer instances would take them; records
    // failed after lost races come back, as SQS redelivers them.
    for (let round = 0; pending.length > 0 && round < 10; round++) {
      const batches: string[][] = [];
      for (let index = 0; index < pending.length; index += 5)
        batches.push(pending.slice(index, index + 5));
      const retry: string[] = [];
      for (let index = 0; index < batches.length; index += 3) {
        const group = batches.slice(index, index + 3).map((batch) => sqsBatch(batch));
        const responses = await Promise.all(group.map((batch) => consumer(batch, context)));
        responses.forEach((response, position) => {
          const failed = new Set(failedIds(response));
          for (const record of group[position]!.Records) {
            if (failed.has(record.messageId)) retry.push(record.body);
          }
        });
      }
      pending = retry;
    }
    expect(pending).toEqual([]);
    const views = histories.map(expectedView);
    for (const userId of [first, second]) {
      const own = Object.fromEntries(
        views.flatMap((view) => (view?.userId === userId ? [[view.stripeCustomerId, view]] : [])),
      );
      expect(await reader().getUserView(userId)).toEqual(bestView(own));
    }
    // The moved customer counts for the second user only.
    expect(views[2]?.userId).toBe(second);
  });

  it('reports only the poison record, acknowledges unknown types, and applies the rest', async () => {
    const history = generateHistory(4242, { prefix: 'poison' });
    const good = history.events.map((event) => JSON.stringify(event));
    const unknown = JSON.stringify({
      ...loadStripeEvent('charge.refunded.stripe-sync-engine'),
      id: 'evt_unknown_type_1',
    });
    const badSubscription = { ...history.events[2]!, id: 'evt_bad_status_1' } as {
      data: { object: Record<string, unknown> };
    };
    badSubscription.data = { object: { ...badSubscription.data.object, status: 'not-a-status' } };
    const batch = sqsBatch([...good, 'not json at all', unknown, JSON.stringify(badSubscription)]);
    const consumer = createSubscriptionConsumer({ store: storeOn(dynamo), priceTierMap });

    const response = await consumer(batch, context);
    const records = batch.Records;
    expect(failedIds(response).sort()).toEqual(
      [records[good.length]!.messageId, records[good.length + 2]!.messageId].sort(),
    );
    expect(await reader().getUserView(history.userId)).toEqual(expectedView(history));
  });

  it('fails the batch records while DynamoDB is unreachable and loses nothing once it is back', async () => {
    const history = generateHistory(777, { prefix: 'fault' });
    const batch = sqsBatch(history.events.map((event) => JSON.stringify(event)));
    const unreachable = new DynamoDBClient({
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
    const down = await createSubscriptionConsumer({ store: storeOn(unreachable), priceTierMap })(
      batch,
      context,
    );
    expect(failedIds(down).sort()).toEqual(batch.Records.map((record) => record.messageId).sort());
    expect(await reader().getUserView(history.userId)).toBeNull();

    // SQS redelivers the same messages once the table answers again.
    const up = await createSubscriptionConsumer({ store: storeOn(dynamo), priceTierMap })(
      batch,
      context,
    );
    expect(up.batchItemFailures).toEqual([]);
    expect(await reader().getUserView(history.userId)).toEqual(expectedView(history));
  });

  it('rides out throttling through the SDK retry and still applies once', async () => {
    const history = generateHistory(778, { prefix: 'throttle' });
    const throttled = new DynamoDBClient({
      endpoint: (dynamo.config as { endpoint?: unknown }).endpoint as never,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 4,
      retryMode: 'standard',
    });
    let injected = 0;
    // Fault injection: the first two transactions are throttled by "the service".
    throttled.middlewareStack.add(
      (next, ctx) => async (args) => {
        if (ctx.commandName === 'TransactWriteItemsCommand' && injected < 2) {
          injected += 1;
          const error = Object.assign(
            new Error('Rate of requests exceeds the allowed throughput.'),
            {
              name: 'ThrottlingException',
              $fault: 'client',
              $metadata: { httpStatusCode: 400 },
            },
          );
          throw error;
        }
        return next(args);
      },
      { step: 'finalizeRequest', name: 'injectThrottling', priority: 'low' },
    );
    const batch = sqsBatch(history.events.map((event) => JSON.stringify(event)));
    const response = await createSubscriptionConsumer({ store: storeOn(throttled), priceTierMap })(
      batch,
      context,
    );
    expect(injected).toBe(2);
    expect(response.batchItemFailures).toEqual([]);
    expect(await reader().getUserView(history.userId)).toEqual(expectedView(history));
  });
});

// Last: the tests above scan every ledger page of the shared tables.
describe('subscription consumer: configuration gaps', () => {
  it('counts a price with no tier (UnmappedPrices, alarmed on) and grants free', async () => {
    const recorded: [string, number][] = [];
    const metrics = {
      addMetric: (name: string, _unit: string, value: number) => recorded.push([name, value]),
    };
    // No price map at all: the fixture's price has no metadata.tier either.
    const consumer = createSubscriptionConsumer({
      store: storeOn(dynamo),
      priceTierMap: {},
      metrics: metrics as never,
    });
    const event = {
      ...loadStripeEvent('customer.subscription.created.stripe-sync-engine'),
      id: `evt_unmapped_${Date.now()}`,
    };
    const response = await consumer(sqsBatch([JSON.stringify(event)]), context);
    expect(response.batchItemFailures).toEqual([]);
    expect(recorded).toContainEqual(['UnmappedPrices', 1]);
  });
});

describe('a new subscriber credits on day one', () => {
  it('gets the paid allowance whatever the order and batching of the signup events', async () => {
    const store = new DynamoDbSubscriptionStore({
      client: dynamo,
      ...tables,
      creditAllowances: DEFAULT_CREDIT_ALLOWANCES,
    });
    const clock = { now: () => Date.parse('2026-11-05T10:00:00Z') };
    const consumer = createSubscriptionConsumer({ store, priceTierMap, clock });
    const documents = DynamoDBDocumentClient.from(dynamo);
    const credited: string[] = [];
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const ways = {
        inOrder: (bodies: string[]) => bodies.map((body) => [body]),
        oneBatch: (bodies: string[]) => [bodies],
        reversed: (bodies: string[]) => [...bodies].reverse().map((body) => [body]),
      };
      for (const [way, batches] of Object.entries(ways)) {
        const history = generateHistory(seed, { prefix: `signup${way}` });
        // The signup: every event up to the first that gives the user a paid tier.
        const paidAt = history.events.findIndex(
          (_, index) =>
            (expectedView({ ...history, events: history.events.slice(0, index + 1) })?.tier ??
              'free') !== 'free',
        );
        if (paidAt < 0) continue;
        const signup = history.events.slice(0, paidAt + 1);
        const tier = expectedView({ ...history, events: signup })!.tier;
        for (const batch of batches(signup.map((event) => JSON.stringify(event)))) {
          const response = await consumer(sqsBatch(batch), context);
          expect(failedIds(response)).toEqual([]);
        }
        const { Item } = await documents.send(
          new GetCommand({
            TableName: tables.billingTableName,
            Key: billingKeys.profile(history.userId),
            ConsistentRead: true,
          }),
        );
        expect({ way, seed, tier: Item?.tier, credits: Item?.credits }).toEqual({
          way,
          seed,
          tier,
          credits: DEFAULT_CREDIT_ALLOWANCES[tier],
        });
        credited.push(`${seed}:${way}`);
      }
    }
    // Enough signups reached a paid tier for the comparison to mean something.
    expect(credited.length).toBeGreaterThanOrEqual(12);
  });
});
