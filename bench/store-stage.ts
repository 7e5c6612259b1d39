/**
 * The consumer's store stage on its own: queued batches (realistic histories, with
 * duplicates and reordering) handed straight to the real consumer handler, at the
 * event source mapping's batch size and maximum concurrency, with nothing else on
 * the machine's 2 cores. The one-transaction-per-event baseline runs right before
 * and right after at the same concurrency, so the ratio compares like with like.
 * (The pipeline's own store figure shares the cores with the webhook feed.)
 */
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { createSubscriptionConsumer } from '../functions/subscription-consumer.ts';
import { toSqsRecord } from '../local/queue-poller.ts';
import {
  deliver,
  expectedView,
  generateHistory,
  HISTORY_PRICE_TIER_MAP,
} from '../test/helpers/stripe-history.ts';
import type { BenchContext } from './context.ts';
import { provisionStack, subscriptionResources } from './provision.ts';
import { type RawProbe, rate } from './raw-limits.ts';
import type { Section } from './report.ts';

export interface StoreStageResult {
  histories: number;
  uniqueEvents: number;
  deliveries: number;
  batches: number;
  batchSize: number;
  concurrency: number;
  elapsedMs: number;
  eventsPerSecond: number;
  baselineEventsPerSecond: number;
  failedRecords: number;
  mismatches: number;
}

export async function measureStoreStage(
  ctx: BenchContext,
  probe: RawProbe,
  histories: number,
  concurrencyOverride?: number,
): Promise<StoreStageResult> {
  const resources = subscriptionResources(ctx.model);
  const mapping = ctx.model.queueConsumers.find(
    (consumer) => consumer.functionLogicalId === resources.consumer.logicalId,
  );
  if (!mapping) throw new Error('no event source mapping for the consumer in the stack model');
  const tables = await provisionStack(ctx.model, ctx.harness, `-store${Date.now().toString(36)}`);
  const billingTableName = tables.tableNames[resources.billingTableLogicalId]!;
  const eventsTableName = tables.tableNames[resources.eventsTableLogicalId]!;
  const consumer = createSubscriptionConsumer({
    store: new DynamoDbSubscriptionStore({
      client: ctx.harness.dynamo,
      billingTableName,
      eventsTableName,
    }),
    priceTierMap: HISTORY_PRICE_TIER_MAP,
  });

  const generated = Array.from({ length: histories }, (_, index) =>
    generateHistory(index + 1, { prefix: `st${Date.now().toString(36)}` }),
  );
  const bodies = deliver(generated, 99, {
    duplicateRate: ctx.sizes.duplicateRate,
    reorderWindow: ctx.sizes.reorderWindow,
  });
  const batches: SQSEvent[] = [];
  for (let index = 0; index < bodies.length; index += mapping.batchSize) {
    batches.push({
      Records: bodies.slice(index, index + mapping.batchSize).map((body, offset) =>
        toSqsRecord(
          {
            MessageId: `store-${index + offset}`,
            ReceiptHandle: `handle-${index + offset}`,
            Body: body,
            Attributes: {
              SentTimestamp: String(Date.now()),
              ApproximateReceiveCount: '1',
              ApproximateFirstReceiveTimestamp: String(Date.now()),
            },
          },
          'arn:aws:sqs:us-east-1:000000000000:store-stage',
        ),
      ),
    });
  }

  const context = { functionName: 'store-stage', awsRequestId: 'bench' } as Context;
  const concurrency = concurrencyOverride ?? mapping.maximumConcurrency;
  const before = rate(await probe.transactWrite({ concurrency, durationMs: 4_000 }));
  let next = 0;
  let failedRecords = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const response: SQSBatchResponse = await consumer(batch, context);
        failedRecords += response.batchItemFailures.length;
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const after = rate(await probe.transactWrite({ concurrency, durationMs: 4_000 }));

  const reader = new DynamoDbUserViewReader({ client: ctx.harness.dynamo, billingTableName });
  let mismatches = 0;
  for (const history of generated) {
    const expected = expectedView(history);
    const actual = await reader.getUserView(history.userId);
    if (!isDeepStrictEqual(actual, expected)) mismatches += 1;
  }
  const uniqueEvents = generated.reduce((sum, history) => sum + history.events.length, 0);
  return {
    histories,
    uniqueEvents,
    deliveries: bodies.length,
    batches: batches.length,
    batchSize: mapping.batchSize,
    concurrency,
    elapsedMs,
    eventsPerSecond: (uniqueEvents / elapsedMs) * 1000,
    baselineEventsPerSecond: (before.perSecond + after.perSecond) / 2,
    failedRecords,
    mismatches,
  };
}

export function storeStageSection(results: StoreStageResult[]): Section {
  const figures: Section['figures'] = [];
  const notes: string[] = [];
  for (const result of results) {
    const key = `store.c${result.concurrency}`;
    figures.push(
      {
        id: `${key}.eventsPerSecond`,
        label: `events applied, ${result.concurrency} batch(es) in flight`,
        value: result.eventsPerSecond,
        unit: 'events/s',
        ratio: {
          value: result.eventsPerSecond / result.baselineEventsPerSecond,
          to: `raw 1-tx-per-event events/s at ${result.concurrency} concurrent`,
          target: { op: '>=', value: 3 },
        },
      },
      {
        id: `${key}.baselineEventsPerSecond`,
        label: `baseline: one 3-item transaction per event, ${result.concurrency} concurrent`,
        value: result.baselineEventsPerSecond,
        unit: 'events/s',
      },
      {
        id: `${key}.mismatches`,
        label: `user views differing from the in-order fold (${result.concurrency} in flight)`,
        value: result.mismatches,
        unit: 'users',
        target: { op: '<', value: 1 },
      },
    );
    notes.push(
      `${result.concurrency} in flight: ${result.histories} customers, ${result.uniqueEvents} events, ${result.deliveries} deliveries (duplicates and reordering injected) in ${result.batches} batches of ${result.batchSize}; ${result.failedRecords} records reported as batch item failures (lost write races past the retry budget; SQS redelivers them in production, here they are not redelivered and show as mismatches).`,
    );
  }
  notes.push(
    'Baselines run right before and right after each measurement at the same concurrency. With several batches in flight over one population of customers, concurrent batches race on the same accounts (optimistic revision check): the losers re-read and retry, which is what separates the two rows.',
  );
  return {
    id: 'store',
    title: 'Consumer store stage, isolated (queued batches -> consumer -> DynamoDB Local)',
    figures,
    notes,
    detail: results,
  };
}
