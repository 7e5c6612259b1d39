/**
 * Pipeline, end to end: signed webhooks into the real webhook handler, through the
 * SQS emulator, polled with the stack model's event source mapping settings (the
 * local runtime's queue poller), into the real subscription consumer, committed to
 * DynamoDB Local. Deliveries are realistic customer histories in the bursty order
 * (a few customers active at once, see delivery-order.ts), with duplicates and local
 * reordering injected.
 *
 * Afterwards it checks the DESIGN §3 invariant on what DynamoDB holds: every account
 * and user view equals the pure fold of its history applied once, in order; every
 * event is in a ledger page (0 lost); none was applied twice (see ledger-check.ts).
 */
import { performance } from 'node:perf_hooks';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
  encodeAccount,
} from '../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import {
  type CustomerAccount,
  foldFacts,
  projectUserView,
  type UserSubscriptionView,
} from '../functions/core/subscriptions/customer-account.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/emulators.ts';
import { createLambdaContext } from '../local/lambda-context.ts';
import { type SqsConsumerHandler, startQueuePoller } from '../local/queue-poller.ts';
import { stripeWebhookEvent } from '../test/helpers/apigw-events.ts';
import {
  deliverInBursts,
  type GeneratedHistory,
  generateHistory,
  historyFacts,
} from '../test/helpers/stripe-history.ts';
import { signPayload } from '../test/helpers/stripe-signing.ts';
import { type AwsUsage, formatWruByItem } from './aws-meter.ts';
import type { BenchContext } from './context.ts';
import { meanBilledDurationMs } from './cost-model.ts';
import { type BatchSpread, customerOfEvent, SpreadMeter } from './delivery-order.ts';
import { itemSize } from './dynamo-capacity.ts';
import type { WebhookHandler } from './ingress.ts';
import {
  checkLedger,
  countCommit,
  emptyMeteredCommits,
  type LedgerCheck,
  type MeteredCommits,
  pool,
} from './ledger-check.ts';
import { type ClosedLoopResult, runClosedLoop, runOpenLoop } from './load.ts';
import { subscriptionResources } from './provision.ts';
import type { RawLimits, RawRate } from './raw-limits.ts';
import type { Figure, Section } from './report.ts';
import { type LatencySummary, mean, summarize } from './stats.ts';

export type ConsumerHandler = SqsConsumerHandler;

export interface PipelineOptions {
  ctx: BenchContext;
  webhook: WebhookHandler;
  consumer: ConsumerHandler;
}

export interface Correctness {
  customers: number;
  expectedEvents: number;
  /** Expected events recorded in a ledger page. */
  inLedger: number;
  lost: number;
  /** Events recorded as 'applied' in two pages, or committed as 'applied' by two successful writes. */
  appliedTwice: number;
  /** Informational: events recorded in two pages or by two writes, whatever the outcome. */
  recordedTwice: number;
  ledger: LedgerCheck;
  accountMismatches: number;
  viewMismatches: number;
  /** Mean size of the stored account items, by DynamoDB's sizing rules. */
  meanAccountItemBytes: number;
  /** A few mismatching customers, for the JSON. */
  examples: string[];
}

export interface PhaseResult {
  histories: number;
  uniqueEvents: number;
  /** Webhooks delivered, duplicates included. */
  deliveries: number;
  duplicates: number;
  /** Open-loop feed rate, webhooks/s; absent for the saturating (closed-loop) phase. */
  targetWebhooksPerSecond?: number;
  feed: {
    acked: number;
    failed: number;
    elapsedMs: number;
    perSecond: number;
    firstError?: string;
  };
  /** From the phase's first webhook to its last first-time commit. */
  elapsedMs: number;
  eventsAppliedPerSecond: number;
  /** SQS SentTimestamp of an event's first delivery to its first commit. */
  lag: LatencySummary;
  /** Set when the queue had not drained when the wait ended. */
  timedOut: boolean;
  /** The consumer's batches in this phase: how many events of each customer one batch held. */
  batchSpread: BatchSpread;
}

export interface PipelineResult {
  /** Webhooks fed as fast as the closed loop goes: throughput. */
  saturated: PhaseResult;
  /** Fresh histories fed at a fixed share of that throughput: lag at a sustainable load. */
  /** Absent when the saturated phase did not drain: its rate is no basis for a load. */
  paced?: PhaseResult;
  pacedLoad: number;
  /** Customers delivering at once in the bursty order. */
  activeCustomers: number;
  /** Both phases. */
  uniqueEvents: number;
  webhooksAcked: number;
  duplicates: number;
  consumer: {
    invocations: number;
    records: number;
    meanRecordsPerInvocation: number;
    meanDurationMs: number;
    billedDurationMs: number;
    failedBatches: number;
    retriedRecords: number;
    memoryMb: number;
    batchSize: number;
    maximumConcurrency: number;
    batchingWindowSeconds: number;
  };
  webhookBilledDurationMs: number;
  store: { busyMs: number; eventsPerBusySecond: number };
  usage: AwsUsage;
  logBytes: { webhook: number; consumer: number };
  logLines: { webhook: number; consumer: number };
  /** First error-level log lines of each handler, to explain failures. */
  errorLogs: { webhook: string[]; consumer: string[] };
  correctness: Correctness;
  /** Some users whose profile the pipeline wrote (the read API's cold-start plan reads them). */
  sampleUserIds: string[];
}

/** The domain facts of a history, in order (shared with the tests). */
export const factsOf = historyFacts;

/** JSON with sorted keys: DynamoDB does not keep map key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function measurePipeline(options: PipelineOptions): Promise<PipelineResult> {
  const { ctx } = options;
  const { sizes } = ctx;
  const resources = subscriptionResources(ctx.model);
  const queueUrl = ctx.provisioned.queueUrls[resources.queueLogicalId]!;
  const billingTable = ctx.provisioned.tableNames[resources.billingTableLogicalId]!;
  const eventsTable = ctx.provisioned.tableNames[resources.eventsTableLogicalId]!;
  const mapping = ctx.model.queueConsumers.find(
    (c) =>
      c.functionLogicalId === resources.consumer.logicalId &&
      c.queueLogicalId === resources.queueLogicalId,
  );
  if (!mapping)
    throw new Error('the stack model has no event source mapping from the queue to the consumer');

  const tag = Date.now().toString(36);
  const makeSet = (prefix: string, count: number, seed: number) => {
    const histories = Array.from({ length: count }, (_, i) => generateHistory(i + 1, { prefix }));
    const deliveries = deliverInBursts(histories, seed, {
      activeCustomers: sizes.activeCustomers,
      duplicateRate: sizes.duplicateRate,
      reorderWindow: sizes.reorderWindow,
    });
    const expected = histories.map((history) => {
      const facts = factsOf(history);
      const account = foldFacts(history.customerId, facts);
      return {
        history,
        account,
        view: projectUserView(account),
        eventIds: facts.map((f) => f.eventId),
      };
    });
    return {
      histories,
      deliveries,
      expected,
      ids: new Set(expected.flatMap((e) => e.eventIds)),
      customerOf: customerOfEvent(histories),
    };
  };
  const sets = {
    saturated: makeSet(`ps${tag}`, sizes.pipelineHistories, 42),
    paced: makeSet(`pp${tag}`, sizes.pacedHistories, 43),
  };

  // What the meter sees, keyed by event id.
  const firstSentAt = new Map<string, number>();
  const firstCommitAt = new Map<string, number>();
  const commits: MeteredCommits = emptyMeteredCommits();
  ctx.meter.ledgerTable = eventsTable;
  ctx.meter.hooks = {
    onReceive: (messages) => {
      for (const { eventId, sentTimestampMs } of messages) {
        if (!eventId || !Number.isFinite(sentTimestampMs)) continue;
        const known = firstSentAt.get(eventId);
        if (known === undefined || sentTimestampMs < known)
          firstSentAt.set(eventId, sentTimestampMs);
      }
    },
    onLedgerCommit: (events, at) => {
      countCommit(commits, events);
      for (const { eventId } of events)
        if (!firstCommitAt.has(eventId)) firstCommitAt.set(eventId, at);
    },
  };

  const consumerFn = resources.consumer;
  const consumerDurations: number[] = [];
  let consumerRecords = 0;
  // The phase being fed: its batches' spread over customers is measured as they arrive.
  let phaseSpread = new SpreadMeter();
  let phaseCustomerOf: ReadonlyMap<string, string> = new Map();
  const wrappedConsumer: ConsumerHandler = (event, context) =>
    ctx.capture.run('consumer', async () => {
      phaseSpread.add(
        event.Records.map((record) => {
          const eventId = record.messageAttributes.eventId?.stringValue;
          return eventId === undefined ? undefined : phaseCustomerOf.get(eventId);
        }),
      );
      const started = performance.now();
      try {
        return await options.consumer(event, context);
      } finally {
        consumerDurations.push(performance.now() - started);
        consumerRecords += event.Records.length;
      }
    });

  const webhookFn = resources.webhook;
  const webhookDurations: number[] = [];
  const webhookFunction = {
    functionName: webhookFn.logicalId,
    timeoutSeconds: webhookFn.timeoutSeconds,
    memoryMb: webhookFn.memoryMb,
  };
  const sendWebhook = async (_i: number, event: APIGatewayProxyEventV2) => {
    const started = performance.now();
    const response = await ctx.capture.run('webhook', () =>
      options.webhook(event, createLambdaContext(webhookFunction)),
    );
    webhookDurations.push(performance.now() - started);
    if (response?.statusCode !== 200) throw new Error(`webhook answered ${response?.statusCode}`);
  };
  const signed = (deliveries: readonly string[]) => (i: number) => {
    const body = deliveries[i]!;
    return stripeWebhookEvent(body, signPayload(body, ctx.webhookSecret));
  };

  ctx.meter.reset();
  ctx.capture.reset();
  // A separate, metered client: the event source mapping's receives and deletes are billed requests.
  const pollerSqs = new SQSClient({
    endpoint: ctx.endpoints.sqs,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const poller = await startQueuePoller({
    sqs: pollerSqs,
    queueUrl,
    mapping,
    fn: {
      functionName: consumerFn.logicalId,
      timeoutSeconds: consumerFn.timeoutSeconds,
      memoryMb: consumerFn.memoryMb,
    },
    handler: wrappedConsumer,
  });

  /** Feeds one set, then waits until every event is committed and the queue is empty. */
  const runPhase = async (
    name: string,
    set: ReturnType<typeof makeSet>,
    feedWith: (
      send: typeof sendWebhook,
      prepare: (i: number) => APIGatewayProxyEventV2,
    ) => Promise<ClosedLoopResult>,
    targetWebhooksPerSecond?: number,
  ): Promise<PhaseResult> => {
    ctx.log(
      `pipeline ${name}: ${set.histories.length} customer histories, ${set.ids.size} events, ` +
        `${set.deliveries.length} webhooks (${sizes.duplicateRate * 100}% duplicated, reordered within ${sizes.reorderWindow})` +
        (targetWebhooksPerSecond ? ` at ${targetWebhooksPerSecond.toFixed(1)} webhooks/s` : ''),
    );
    phaseSpread = new SpreadMeter();
    phaseCustomerOf = set.customerOf;
    const feedStart = Date.now();
    const feed = await feedWith(sendWebhook, signed(set.deliveries));
    ctx.log(
      `pipeline ${name}: ${feed.completed} webhooks acked in ${(feed.elapsedMs / 1000).toFixed(1)} s; draining`,
    );
    // Duplicates still queued cost consumer work too, so wait for the queue to empty as well.
    const deadline = Date.now() + (ctx.quick ? 60_000 : 180_000);
    let timedOut = false;
    for (;;) {
      const committed = [...set.ids].filter((id) => firstCommitAt.has(id)).length;
      const { Attributes } = await ctx.harness.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      const queued =
        Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
        Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
      if (committed === set.ids.size && queued === 0 && poller.stats().inFlight === 0) break;
      if (Date.now() > deadline) {
        timedOut = true;
        ctx.log(
          `pipeline ${name}: gave up waiting: ${set.ids.size - committed} events uncommitted, ${queued} messages queued`,
        );
        break;
      }
      await sleep(100);
    }
    const lags: number[] = [];
    let lastCommit = feedStart;
    let committed = 0;
    for (const id of set.ids) {
      const committedAt = firstCommitAt.get(id);
      if (committedAt === undefined) continue;
      committed++;
      lastCommit = Math.max(lastCommit, committedAt);
      const sentAt = firstSentAt.get(id);
      if (sentAt !== undefined) lags.push(committedAt - sentAt);
    }
    const elapsedMs = Math.max(1, lastCommit - feedStart);
    return {
      histories: set.histories.length,
      uniqueEvents: set.ids.size,
      deliveries: set.deliveries.length,
      duplicates: set.deliveries.length - new Set(set.deliveries).size,
      ...(targetWebhooksPerSecond ? { targetWebhooksPerSecond } : {}),
      feed: {
        acked: feed.completed,
        failed: feed.failed,
        elapsedMs: feed.elapsedMs,
        perSecond: feed.perSecond,
        ...(feed.firstError === undefined
          ? {}
          : { firstError: String(feed.firstError).slice(0, 300) }),
      },
      elapsedMs,
      eventsAppliedPerSecond: committed / (elapsedMs / 1000),
      lag: summarize(lags),
      timedOut,
      batchSpread: phaseSpread.summary(),
    };
  };

  let saturated: PhaseResult;
  let paced: PhaseResult | undefined;
  try {
    saturated = await runPhase('saturated', sets.saturated, (send, prepare) =>
      runClosedLoop(
        send,
        { concurrency: sizes.concurrency, total: sets.saturated.deliveries.length },
        prepare,
      ),
    );
    if (!saturated.timedOut) {
      // Webhooks per event > 1 (duplicates): convert the applied-events rate into a feed rate.
      const webhooksPerEvent = sets.paced.deliveries.length / Math.max(1, sets.paced.ids.size);
      const rate = Math.max(
        1,
        saturated.eventsAppliedPerSecond * sizes.pacedLoad * webhooksPerEvent,
      );
      paced = await runPhase(
        'paced',
        sets.paced,
        (send, prepare) =>
          runOpenLoop(send, { ratePerSecond: rate, total: sets.paced.deliveries.length }, prepare),
        rate,
      );
    }
  } finally {
    await poller.stop({ drainTimeoutMs: 30_000 });
    pollerSqs.destroy();
  }
  const usage = ctx.meter.snapshot();
  ctx.meter.hooks = {};
  const pollerStats = poller.stats();

  ctx.log('pipeline: checking DynamoDB against the in-order fold of each history');
  const ran = paced ? [sets.saturated, sets.paced] : [sets.saturated];
  const expected = ran.flatMap((set) => set.expected);
  const expectedIds = new Set(ran.flatMap((set) => [...set.ids]));
  const correctness = await verify(
    ctx,
    { billingTable, eventsTable },
    expected,
    expectedIds,
    commits,
  );
  const committedExpected = [...expectedIds].filter((id) => firstCommitAt.has(id)).length;
  return {
    saturated,
    ...(paced ? { paced } : {}),
    pacedLoad: sizes.pacedLoad,
    activeCustomers: sizes.activeCustomers,
    uniqueEvents: expectedIds.size,
    webhooksAcked: saturated.feed.acked + (paced?.feed.acked ?? 0),
    duplicates: saturated.duplicates + (paced?.duplicates ?? 0),
    consumer: {
      invocations: consumerDurations.length,
      records: consumerRecords,
      meanRecordsPerInvocation: consumerRecords / Math.max(1, consumerDurations.length),
      meanDurationMs: mean(consumerDurations),
      billedDurationMs: meanBilledDurationMs(consumerDurations),
      failedBatches: pollerStats.failedBatches,
      retriedRecords: pollerStats.retried,
      memoryMb: consumerFn.memoryMb,
      batchSize: mapping.batchSize,
      maximumConcurrency: mapping.maximumConcurrency,
      batchingWindowSeconds: mapping.maximumBatchingWindowSeconds,
    },
    webhookBilledDurationMs: meanBilledDurationMs(webhookDurations),
    store: {
      busyMs: usage.dynamo.busyMs,
      eventsPerBusySecond: committedExpected / (usage.dynamo.busyMs / 1000),
    },
    usage,
    logBytes: {
      webhook: ctx.capture.bytesOf('webhook'),
      consumer: ctx.capture.bytesOf('consumer'),
    },
    logLines: {
      webhook: ctx.capture.linesOf('webhook'),
      consumer: ctx.capture.linesOf('consumer'),
    },
    errorLogs: {
      webhook: ctx.capture.errorsOf('webhook'),
      consumer: ctx.capture.errorsOf('consumer'),
    },
    correctness,
    sampleUserIds: expected.flatMap((e) => (e.view ? [e.view.userId] : [])).slice(0, 100),
  };
}

async function verify(
  ctx: BenchContext,
  tables: { billingTable: string; eventsTable: string },
  expected: {
    history: GeneratedHistory;
    account: CustomerAccount;
    view: UserSubscriptionView | null;
  }[],
  expectedIds: Set<string>,
  commits: MeteredCommits,
): Promise<Correctness> {
  const store = new DynamoDbSubscriptionStore({
    client: ctx.harness.dynamo,
    billingTableName: tables.billingTable,
    ledgerTableName: tables.eventsTable,
  });
  const reader = new DynamoDbUserViewReader({
    client: ctx.harness.dynamo,
    billingTableName: tables.billingTable,
  });
  const customerIds = expected.map((e) => e.history.customerId);
  const ledger = await checkLedger(store, customerIds, expectedIds, commits);
  const accounts = await store.loadAccounts(customerIds);
  let accountMismatches = 0;
  let viewMismatches = 0;
  let accountBytes = 0;
  for (const [customerId, stored] of accounts) {
    accountBytes += itemSize(
      {
        pk: `CUSTOMER#${customerId}`,
        sk: 'ACCOUNT',
        customerId,
        ...(stored.account.userId ? { userId: stored.account.userId } : {}),
        revision: stored.revision,
        account: encodeAccount(stored.account),
        recentEvents: stored.recentEvents,
      },
      false,
    );
  }
  const examples: string[] = [...ledger.examples];
  await pool(expected, 16, async ({ history, account, view }) => {
    const stored = accounts.get(history.customerId)?.account ?? null;
    if (canonical(stored) !== canonical(account)) {
      accountMismatches++;
      if (examples.length < 5) examples.push(`account ${history.customerId}`);
    }
    const storedView = await reader.getUserView(history.userId);
    if (canonical(storedView) !== canonical(view)) {
      viewMismatches++;
      if (examples.length < 5) examples.push(`view ${history.userId}`);
    }
  });
  return {
    customers: expected.length,
    expectedEvents: expectedIds.size,
    inLedger: ledger.inLedger,
    lost: ledger.lost,
    appliedTwice: ledger.appliedTwice,
    recordedTwice: ledger.recordedTwice,
    ledger,
    accountMismatches,
    viewMismatches,
    meanAccountItemBytes: accountBytes / Math.max(1, accounts.size),
    examples,
  };
}

export function pipelineSection(
  result: PipelineResult,
  raw: RawLimits | undefined,
  rawAfter?: RawRate,
): Section {
  // The baseline, measured before the pipeline and (when given) again right after it,
  // so a machine whose load changed meanwhile does not skew the ratio.
  const rawTx =
    rawAfter && raw
      ? (raw.transactWrite.perSecond + rawAfter.perSecond) / 2
      : (raw?.transactWrite.perSecond ?? Number.NaN);
  const c = result.correctness;
  const sat = result.saturated;
  const paced = result.paced;
  const perEvent = (n: number) => n / Math.max(1, result.uniqueEvents);
  const d = result.usage.dynamo;
  const wruPerEvent = perEvent(d.wru + d.rejectedWru);
  const windowMs = result.consumer.batchingWindowSeconds * 1000;
  const lagFigures = (phase: PhaseResult, key: string, label: string): Figure[] => [
    {
      id: `pipeline.${key}.lag.p50`,
      label: `processing lag p50, ${label}`,
      value: phase.lag.p50Ms,
      unit: 'ms',
      ratio: { value: phase.lag.p50Ms / windowMs, to: 'batching window' },
    },
    {
      id: `pipeline.${key}.lag.p99`,
      label: `processing lag p99, ${label}`,
      value: phase.lag.p99Ms,
      unit: 'ms',
      ratio: { value: phase.lag.p99Ms / windowMs, to: 'batching window' },
    },
  ];
  const figures: Figure[] = [
    {
      id: 'pipeline.eventsAppliedPerSecond',
      label: 'events applied end to end (saturated)',
      value: sat.eventsAppliedPerSecond,
      unit: 'events/s',
      ratio: { value: sat.eventsAppliedPerSecond / rawTx, to: 'raw 1-tx-per-event events/s' },
    },
    ...lagFigures(sat, 'saturated', 'saturated'),
    ...(paced
      ? [
          {
            id: 'pipeline.paced.eventsAppliedPerSecond',
            label: `events applied at ${result.pacedLoad * 100}% load`,
            value: paced.eventsAppliedPerSecond,
            unit: 'events/s',
            ratio: {
              value: paced.eventsAppliedPerSecond / sat.eventsAppliedPerSecond,
              to: 'saturated',
            },
          },
          ...lagFigures(paced, 'paced', `${result.pacedLoad * 100}% load`),
        ]
      : []),
    {
      id: 'pipeline.store.eventsPerBusySecond',
      label: 'consumer store stage, sharing the cores with the feed (target: isolated store stage)',
      value: result.store.eventsPerBusySecond,
      unit: 'events/s',
      ratio: {
        value: result.store.eventsPerBusySecond / rawTx,
        to: 'raw 1-tx-per-event events/s',
      },
    },
    {
      id: 'pipeline.lost',
      label: 'events lost',
      value: c.lost,
      unit: 'events',
      target: { op: '<', value: 1 },
    },
    {
      id: 'pipeline.appliedTwice',
      label: 'events applied twice',
      value: c.appliedTwice,
      unit: 'events',
      target: { op: '<', value: 1 },
    },
    {
      id: 'pipeline.recordedTwice',
      label: 'events recorded twice, any outcome (informational)',
      value: c.recordedTwice,
      unit: 'events',
    },
    {
      id: 'pipeline.stateMismatches',
      label: 'accounts/views differing from in-order fold',
      value: c.accountMismatches + c.viewMismatches,
      unit: 'items',
      target: { op: '<', value: 1 },
    },
    {
      id: 'pipeline.wruPerEvent',
      label: 'DynamoDB write request units per event',
      value: wruPerEvent,
      unit: 'WRU/event',
      ratio: { value: wruPerEvent / 6, to: '1 tx per event (3 items <= 1 KB x 2)' },
    },
    {
      id: 'pipeline.rruPerEvent',
      label: 'DynamoDB read request units per event',
      value: perEvent(d.rru),
      unit: 'RRU/event',
    },
    {
      id: 'pipeline.reportedWcuPerEvent',
      label: 'write capacity DynamoDB Local reported',
      value: perEvent(d.reportedWcu),
      unit: 'WCU/event',
      ratio: { value: d.reportedWcu / d.wru, to: 'computed WRU' },
    },
    {
      id: 'pipeline.reportedRcuPerEvent',
      label: 'read capacity DynamoDB Local reported',
      value: perEvent(d.reportedRcu),
      unit: 'RCU/event',
      ratio: { value: d.reportedRcu / d.rru, to: 'computed RRU' },
    },
    {
      id: 'pipeline.sqsRequestsPerEvent',
      label: 'SQS requests per event (send+receive+delete)',
      value: perEvent(Object.values(result.usage.sqs.requests).reduce((a, b) => a + b, 0)),
      unit: 'req/event',
    },
    {
      id: 'pipeline.recordsPerInvocation',
      label: 'records per consumer invocation',
      value: result.consumer.meanRecordsPerInvocation,
      unit: 'records',
      ratio: {
        value: result.consumer.meanRecordsPerInvocation / result.consumer.batchSize,
        to: 'batch size',
      },
    },
    {
      id: 'pipeline.consumerBilledDurationMs',
      label: 'consumer mean duration in-process',
      value: result.consumer.billedDurationMs,
      unit: 'ms/invocation',
    },
  ];
  const u = result.usage;
  const phaseNote = (name: string, p: PhaseResult) =>
    `${name}: ${p.histories} customers, ${p.uniqueEvents} events, ${p.deliveries} webhooks (${p.duplicates} duplicates), ` +
    `fed ${p.feed.acked} ok / ${p.feed.failed} failed at ${p.feed.perSecond.toFixed(1)} webhooks/s` +
    (p.targetWebhooksPerSecond
      ? ` (target ${p.targetWebhooksPerSecond.toFixed(1)})`
      : ' (closed loop)') +
    (p.timedOut ? '; TIMED OUT draining, figures cover what finished' : '') +
    `; its ${p.batchSpread.batches} consumer batches held ${p.batchSpread.meanEventsPerCustomer.toFixed(2)} events per customer ` +
    `(${p.batchSpread.meanCustomers.toFixed(1)} customers per batch) on average.`;
  const l = c.ledger;
  const notes = [
    `Delivery order: bursty (${result.activeCustomers} customers active at once, each sending its events while active, the next starting when one finishes; ` +
      'then duplicates and local reordering), as real Stripe traffic comes in per-customer bursts. The isolated store stage also runs the uniform (worst-case) order.',
    phaseNote('Saturated', sat),
    paced ? phaseNote('Paced', paced) : 'Paced phase skipped: the saturated phase did not drain.',
    `Mapping: batch ${result.consumer.batchSize}, window ${result.consumer.batchingWindowSeconds} s, max concurrency ${result.consumer.maximumConcurrency}; ` +
      `${result.consumer.invocations} invocations, ${result.consumer.failedBatches} failed batches, ${result.consumer.retriedRecords} records retried.`,
    `Baseline: ${rawTx.toFixed(1)} events/s` +
      (rawAfter && raw
        ? ` (mean of ${raw.transactWrite.perSecond.toFixed(1)} before and ${rawAfter.perSecond.toFixed(1)} right after the pipeline).`
        : '.'),
    `DynamoDB requests: ${JSON.stringify(u.dynamo.requests)}; ${u.dynamo.rejectedWrites} writes rejected (${JSON.stringify(u.dynamo.rejectedReasons)}; est. ${u.dynamo.rejectedWru} WRU, included in WRU/event).`,
    `Committed WRU by item: ${formatWruByItem(u.dynamo.wruByItem)}.`,
    "Request units are computed from each request and response by DynamoDB's sizing rules; DynamoDB Local's own ConsumedCapacity is shown for comparison (it counts one item per table in a transaction).",
    `SQS requests: ${JSON.stringify(u.sqs.requests)}; ${u.sqs.emptyReceives} empty receives.`,
    'Store stage = events committed / wall time with a consumer DynamoDB request in flight (reads + transactions).',
    `Stored account items average ${c.meanAccountItemBytes.toFixed(0)} bytes (compressed account and recent-events window included).`,
    `Ledger: ${l.pages} pages for ${l.customers} customers, ${l.meanEventsPerPage.toFixed(2)} events per page, ` +
      `${l.meanPageBytes.toFixed(0)} bytes per page on average (max ${l.maxPageBytes}); ${l.inLedger}/${l.expectedEvents} expected events recorded, ` +
      `${l.recordedTwice} recorded twice (any outcome), ${l.unexpected} recorded events not among the expected.`,
  ];
  if (c.examples.length > 0) notes.push(`mismatches, e.g. ${c.examples.join(', ')}`);
  for (const line of [...result.errorLogs.webhook, ...result.errorLogs.consumer].slice(0, 2)) {
    notes.push(`handler error log: ${errorSummary(line)}`);
  }
  for (const p of paced ? [sat, paced] : [sat])
    if (p.feed.firstError) notes.push(`first webhook failure: ${p.feed.firstError}`);
  return {
    id: 'pipeline',
    title: 'Pipeline (webhook -> SQS -> consumer -> DynamoDB)',
    figures,
    notes,
    detail: result,
  };
}

/** The message and error of a Powertools JSON error line, short enough for the table. */
function errorSummary(line: string): string {
  try {
    const parsed = JSON.parse(line) as {
      message?: string;
      error?: { name?: string; message?: string; location?: string };
    };
    const error = parsed.error;
    return `${parsed.message ?? ''}: ${error?.name ?? ''} ${error?.message ?? ''} ${error?.location ?? ''}`.slice(
      0,
      400,
    );
  } catch {
    return line.slice(0, 300);
  }
}
