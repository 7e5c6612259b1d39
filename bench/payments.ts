/**
 * Payments (DESIGN §8.1; capacity arithmetic in docs/payments-capacity.md).
 *
 * - End to end: generated payment histories (failed attempts, refunds that fail or are
 *   canceled, disputes, checkout sessions, both API versions) as signed Stripe events
 *   through the real webhook handler, duplicated and shuffled (`deliver`), polled from
 *   the payments queue with the stack's event source mapping settings into the real
 *   payment consumer. Then what DynamoDB holds is checked: every payment's view equals
 *   the generator's expected view, every event is in a ledger page (0 lost), none is
 *   recorded 'applied' twice, and each day's summary equals a recount of the final views.
 * - Reads on a large store: payments seeded through `commitAll` (planned commits, in
 *   parallel) into a copy of the stack's payments table, then `getPayment`, a history
 *   page of 25 and `dailySummary` in closed loops, and the summary's read units at
 *   1,000 payments and at the full count.
 * - Cost per million payment webhooks from the end-to-end run's metered usage.
 */
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, PurgeQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import {
  DynamoDbPaymentStore,
  type PaymentReadOperation,
} from '../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import { addDays } from '../functions/adapters/dynamodb/query-cursor.ts';
import { planPaymentCommit } from '../functions/core/payments/apply-payment-events.ts';
import type { DailySummaryRow, PaymentCommit } from '../functions/core/payments/ports.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/emulators.ts';
import { createLambdaContext } from '../local/lambda-context.ts';
import { startQueuePoller } from '../local/queue-poller.ts';
import type { StackModel } from '../local/stack-model.ts';
import { stripeWebhookEvent } from '../test/helpers/apigw-events.ts';
import {
  deliver,
  type ExpectedPayment,
  generatePaymentHistory,
  historyEvents,
  seededRandom,
} from '../test/helpers/payment-history.ts';
import { signPayload } from '../test/helpers/stripe-signing.ts';
import { type AwsUsage, formatWruByItem } from './aws-meter.ts';
import type { FunctionColdStart } from './cold-start.ts';
import type { BenchContext } from './context.ts';
import { costPerMillionWebhooks, meanBilledDurationMs, US_EAST_1_PRICES } from './cost-model.ts';
import { COST_TARGET_USD_PER_MILLION } from './cost-report.ts';
import { type BatchSpread, SpreadMeter } from './delivery-order.ts';
import type { WebhookHandler } from './ingress.ts';
import {
  checkLedger,
  countCommit,
  emptyMeteredCommits,
  type LedgerCheck,
  pool,
} from './ledger-check.ts';
import { runClosedLoop, runOpenLoop } from './load.ts';
import type { ConsumerHandler, PipelineResult } from './pipeline.ts';
import { paymentResources, provisionTableCopy } from './provision.ts';
import type { RawLimits, RawRate } from './raw-limits.ts';
import type { Figure, Section } from './report.ts';
import { type LatencySummary, ratio, summarize } from './stats.ts';

export interface PaymentPhase {
  histories: number;
  payments: number;
  uniqueEvents: number;
  deliveries: number;
  duplicates: number;
  /** Open-loop feed rate, webhooks/s; absent for the saturating phase. */
  targetWebhooksPerSecond?: number;
  feed: { acked: number; failed: number; perSecond: number; firstError?: string };
  /** First webhook to last first-time commit. */
  elapsedMs: number;
  eventsAppliedPerSecond: number;
  /** SQS SentTimestamp of an event's first delivery to the commit of its ledger page. */
  lag: LatencySummary;
  timedOut: boolean;
  /** Consumer batches: events per payment per batch. */
  batchSpread: BatchSpread;
}

export interface PaymentsCorrectness {
  payments: number;
  ledger: LedgerCheck;
  viewMismatches: number;
  summaryDays: number;
  summaryMismatches: number;
  examples: string[];
}

export interface PaymentsEndToEnd {
  saturated: PaymentPhase;
  paced?: PaymentPhase;
  pacedLoad: number;
  historiesPerGroup: number;
  uniqueEvents: number;
  webhooksAcked: number;
  duplicates: number;
  consumer: {
    invocations: number;
    records: number;
    meanRecordsPerInvocation: number;
    billedDurationMs: number;
    failedBatches: number;
    retriedRecords: number;
    memoryMb: number;
    batchSize: number;
    maximumConcurrency: number;
    batchingWindowSeconds: number;
  };
  webhookBilledDurationMs: number;
  usage: AwsUsage;
  logBytes: { webhook: number; consumer: number };
  errorLogs: string[];
  correctness: PaymentsCorrectness;
}

export interface ReadLoop {
  concurrency: number;
  perSecond: number;
  latency: LatencySummary;
  failed: number;
  firstError?: string;
  /** Read units the store reported through `onReadUnits` (DynamoDB Local's figure), per call. */
  reportedUnitsPerCall: number;
  /** Read request units by DynamoDB's sizing rules (the meter), per call. */
  rruPerCall: number;
}

export interface SummaryUnits {
  payments: number;
  paymentsThatDay: number;
  /** Most units `onReadUnits` reported for one `dailySummary`. */
  reported: number;
  /** By DynamoDB's sizing rules, per read. */
  computed: number;
}

export interface PaymentReads {
  payments: number;
  users: number;
  days: number;
  seed: { elapsedMs: number; paymentsPerSecond: number; resent: number; failed: number };
  single: Record<'getPayment' | 'history' | 'summary', ReadLoop>;
  loaded: Record<'getPayment' | 'history' | 'summary', ReadLoop>;
  meanHistoryPageItems: number;
  summaryUnits: { small: SummaryUnits; full: SummaryUnits };
  /** Days whose summary differs from the recount of the seeded views. */
  summaryMismatches: number;
}

export interface PaymentsResult {
  e2e: PaymentsEndToEnd;
  reads: PaymentReads;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const errorText = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).slice(0, 300);

/** Rows sorted as `dailySummary` sorts them: by status, then currency. */
function sortRows(rows: DailySummaryRow[]): DailySummaryRow[] {
  const key = (row: DailySummaryRow) => `${row.status}|${row.currency}`;
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** date -> `status|currency` -> row: the summary recounted from final views. */
type Recount = Map<string, Map<string, DailySummaryRow>>;

function recountView(recount: Recount, view: ExpectedPayment): void {
  const date = view.createdAt.slice(0, 10);
  const rows = recount.get(date) ?? new Map<string, DailySummaryRow>();
  recount.set(date, rows);
  const key = `${view.status}|${view.currency}`;
  const row = rows.get(key) ?? {
    status: view.status,
    gateway: 'stripe' as const,
    currency: view.currency,
    count: 0,
    amount: 0,
  };
  row.count += 1;
  row.amount += view.amount;
  rows.set(key, row);
}

/** Days (and the day either side, which must be empty) whose stored summary differs from the recount. */
async function summaryMismatches(
  store: DynamoDbPaymentStore,
  recount: Recount,
  examples: string[],
): Promise<{ days: number; mismatches: number }> {
  const days = new Set<string>();
  for (const date of recount.keys()) for (const d of [-1, 0, 1]) days.add(addDays(date, d));
  let mismatches = 0;
  await pool([...days], 8, async (date) => {
    const expected = sortRows([...(recount.get(date)?.values() ?? [])]);
    if (!isDeepStrictEqual(await store.dailySummary(date), expected)) {
      mismatches += 1;
      if (examples.length < 5) examples.push(`summary ${date}`);
    }
  });
  return { days: days.size, mismatches };
}

export async function measurePaymentsEndToEnd(options: {
  ctx: BenchContext;
  webhook: WebhookHandler;
  consumer: ConsumerHandler;
}): Promise<PaymentsEndToEnd> {
  const { ctx } = options;
  const { sizes } = ctx;
  const resources = paymentResources(ctx.model);
  const { mapping } = resources;
  const queueUrl = ctx.provisioned.queueUrls[resources.queueLogicalId]!;
  const table = ctx.provisioned.tableNames[resources.paymentsTableLogicalId]!;
  const tag = Date.now().toString(36);
  const group = sizes.activeCustomers;

  // Histories delivered `group` at a time, each group's events duplicated and fully
  // shuffled (`deliver`): a few payers live at once, as the pipeline's bursty order.
  const makeSet = (prefix: string, count: number, firstSeed: number) => {
    const histories = Array.from({ length: count }, (_, i) =>
      generatePaymentHistory(firstSeed + i, { prefix }),
    );
    const deliveries: string[] = [];
    for (let start = 0; start < count; start += group) {
      const bodies = histories
        .slice(start, start + group)
        .flatMap((history) => historyEvents(history).map((event) => JSON.stringify(event)));
      deliveries.push(...deliver(bodies, firstSeed + start, sizes.duplicateRate));
    }
    const payments = histories.flatMap((history) => history.payments);
    const paymentOf = new Map<string, string>();
    for (const payment of payments)
      for (const fact of payment.facts) paymentOf.set(fact.eventId, payment.paymentId);
    return { histories, deliveries, payments, paymentOf, ids: new Set(paymentOf.keys()) };
  };
  const sets = {
    saturated: makeSet(`pay${tag}s`, sizes.paymentHistories, 1),
    paced: makeSet(`pay${tag}p`, sizes.paymentPacedHistories, 1_000_001),
  };

  const firstSentAt = new Map<string, number>();
  const firstCommitAt = new Map<string, number>();
  const commits = emptyMeteredCommits();
  // Ledger pages live in the payments table: the only Puts there with an `events` list.
  ctx.meter.ledgerTable = table;
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

  const consumerDurations: number[] = [];
  let consumerRecords = 0;
  let spread = new SpreadMeter();
  let paymentOf: ReadonlyMap<string, string> = new Map();
  const consumer: ConsumerHandler = (event, context) =>
    ctx.capture.run('payment-consumer', async () => {
      spread.add(
        event.Records.map((record) => {
          const eventId = record.messageAttributes.eventId?.stringValue;
          return eventId === undefined ? undefined : paymentOf.get(eventId);
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
  const webhookContext = {
    functionName: webhookFn.logicalId,
    timeoutSeconds: webhookFn.timeoutSeconds,
    memoryMb: webhookFn.memoryMb,
  };
  const webhookDurations: number[] = [];
  const send = async (_i: number, event: APIGatewayProxyEventV2) => {
    const started = performance.now();
    const response = await ctx.capture.run('payment-webhook', () =>
      options.webhook(event, createLambdaContext(webhookContext)),
    );
    webhookDurations.push(performance.now() - started);
    if (response?.statusCode !== 200) throw new Error(`webhook answered ${response?.statusCode}`);
  };
  const signed = (deliveries: readonly string[]) => (i: number) => {
    const body = deliveries[i]!;
    return stripeWebhookEvent(body, signPayload(body, ctx.webhookSecret));
  };

  // Subscription-mode checkouts of an earlier pipeline run are routed here too: not ours to time.
  await ctx.harness.sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
  ctx.meter.reset();
  ctx.capture.reset();
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
      functionName: resources.consumer.logicalId,
      timeoutSeconds: resources.consumer.timeoutSeconds,
      memoryMb: resources.consumer.memoryMb,
    },
    handler: consumer,
  });

  const runPhase = async (
    name: string,
    set: ReturnType<typeof makeSet>,
    ratePerSecond?: number,
  ): Promise<PaymentPhase> => {
    ctx.log(
      `payments ${name}: ${set.payments.length} payments, ${set.ids.size} events, ${set.deliveries.length} webhooks` +
        (ratePerSecond ? ` at ${ratePerSecond.toFixed(1)} webhooks/s` : ''),
    );
    spread = new SpreadMeter();
    paymentOf = set.paymentOf;
    const feedStart = Date.now();
    const total = set.deliveries.length;
    const feed = ratePerSecond
      ? await runOpenLoop(send, { ratePerSecond, total }, signed(set.deliveries))
      : await runClosedLoop(send, { concurrency: sizes.concurrency, total }, signed(set.deliveries));
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
        ctx.log(`payments ${name}: gave up: ${set.ids.size - committed} events uncommitted`);
        break;
      }
      await sleep(100);
    }
    const lags: number[] = [];
    let lastCommit = feedStart;
    let committed = 0;
    for (const id of set.ids) {
      const at = firstCommitAt.get(id);
      if (at === undefined) continue;
      committed += 1;
      lastCommit = Math.max(lastCommit, at);
      const sentAt = firstSentAt.get(id);
      if (sentAt !== undefined) lags.push(at - sentAt);
    }
    const elapsedMs = Math.max(1, lastCommit - feedStart);
    return {
      histories: set.histories.length,
      payments: set.payments.length,
      uniqueEvents: set.ids.size,
      deliveries: total,
      duplicates: total - set.ids.size,
      ...(ratePerSecond ? { targetWebhooksPerSecond: ratePerSecond } : {}),
      feed: {
        acked: feed.completed,
        failed: feed.failed,
        perSecond: feed.perSecond,
        ...(feed.firstError === undefined ? {} : { firstError: errorText(feed.firstError) }),
      },
      elapsedMs,
      eventsAppliedPerSecond: committed / (elapsedMs / 1000),
      lag: summarize(lags),
      timedOut,
      batchSpread: spread.summary(),
    };
  };

  let saturated: PaymentPhase;
  let paced: PaymentPhase | undefined;
  try {
    saturated = await runPhase('saturated', sets.saturated);
    if (!saturated.timedOut && sets.paced.ids.size > 0) {
      const webhooksPerEvent = sets.paced.deliveries.length / sets.paced.ids.size;
      const rate = saturated.eventsAppliedPerSecond * sizes.pacedLoad * webhooksPerEvent;
      paced = await runPhase('paced', sets.paced, Math.max(1, rate));
    }
  } finally {
    await poller.stop({ drainTimeoutMs: 30_000 });
    pollerSqs.destroy();
  }
  const usage = ctx.meter.snapshot();
  ctx.meter.hooks = {};
  const stats = poller.stats();

  ctx.log('payments: checking views, ledger and daily summaries in DynamoDB');
  const ran = paced ? [sets.saturated, sets.paced] : [sets.saturated];
  const payments = ran.flatMap((set) => set.payments);
  const store = new DynamoDbPaymentStore({ client: ctx.harness.dynamo, paymentsTableName: table });
  const ledger = await checkLedger(
    {
      readLedger: async (paymentId) =>
        (await store.readLedger(paymentId)).map((page) => ({
          customerId: page.paymentId,
          revision: page.revision,
          userId: null,
          appliedAt: page.appliedAt,
          events: page.events,
        })),
    },
    payments.map((payment) => payment.paymentId),
    new Set(ran.flatMap((set) => [...set.ids])),
    commits,
  );
  const examples = [...ledger.examples];
  let viewMismatches = 0;
  const recount: Recount = new Map();
  await pool(payments, 16, async (payment) => {
    recountView(recount, payment.expected);
    if (!isDeepStrictEqual(await store.getPayment(payment.paymentId), payment.expected)) {
      viewMismatches += 1;
      if (examples.length < 5) examples.push(`view ${payment.paymentId}`);
    }
  });
  const summary = await summaryMismatches(store, recount, examples);

  return {
    saturated,
    ...(paced ? { paced } : {}),
    pacedLoad: sizes.pacedLoad,
    historiesPerGroup: group,
    uniqueEvents: ledger.expectedEvents,
    webhooksAcked: saturated.feed.acked + (paced?.feed.acked ?? 0),
    duplicates: saturated.duplicates + (paced?.duplicates ?? 0),
    consumer: {
      invocations: consumerDurations.length,
      records: consumerRecords,
      meanRecordsPerInvocation: consumerRecords / Math.max(1, consumerDurations.length),
      billedDurationMs: meanBilledDurationMs(consumerDurations),
      failedBatches: stats.failedBatches,
      retriedRecords: stats.retried,
      memoryMb: resources.consumer.memoryMb,
      batchSize: mapping.batchSize,
      maximumConcurrency: mapping.maximumConcurrency,
      batchingWindowSeconds: mapping.maximumBatchingWindowSeconds,
    },
    webhookBilledDurationMs: meanBilledDurationMs(webhookDurations),
    usage,
    logBytes: {
      webhook: ctx.capture.bytesOf('payment-webhook'),
      consumer: ctx.capture.bytesOf('payment-consumer'),
    },
    errorLogs: [
      ...ctx.capture.errorsOf('payment-webhook'),
      ...ctx.capture.errorsOf('payment-consumer'),
    ].slice(0, 3),
    correctness: {
      payments: payments.length,
      ledger,
      viewMismatches,
      summaryDays: summary.days,
      summaryMismatches: summary.mismatches,
      examples,
    },
  };
}

/** Commits per `commitAll` call while seeding: 8 packs of 49 payments. */
const SEED_CHUNK = 392;
/** `commitAll` calls in flight while seeding (each sends 4 transactions at a time). */
const SEED_WORKERS = 4;

export async function measurePaymentReads(ctx: BenchContext): Promise<PaymentReads> {
  const { sizes } = ctx;
  const { paymentsTableLogicalId } = paymentResources(ctx.model);
  const tag = Date.now().toString(36);
  const table = await provisionTableCopy(
    ctx.model,
    ctx.harness.dynamo,
    paymentsTableLogicalId,
    `-reads${tag}`,
  );
  const days = sizes.paymentReadDays;
  const users = Array.from({ length: sizes.paymentReadUsers }, (_, i) => `user-rd${tag}-${i}`);
  const firstDay = Date.UTC(2025, 5, 1) / 1000;
  const dates = Array.from({ length: days }, (_, d) =>
    new Date((firstDay + d * 86_400) * 1000).toISOString().slice(0, 10),
  );

  // Seeding: the harness's (unmetered) client; planned commits straight into commitAll.
  const seedStore = new DynamoDbPaymentStore({
    client: ctx.harness.dynamo,
    paymentsTableName: table,
  });
  const paymentIds: string[] = [];
  const recount: Recount = new Map();
  const perDay = new Map<string, number>();
  const seed = { histories: 0, chunks: 0, elapsedMs: 0, resent: 0, failed: 0 };
  /** One chunk of planned commits, all created on one day, users in turn. */
  const plan = (date: number, size: number): PaymentCommit[] => {
    const commits: PaymentCommit[] = [];
    while (commits.length < size) {
      const n = ++seed.histories;
      const start = firstDay + date * 86_400 + ((n * 7_919) % 80_000);
      for (const payment of generatePaymentHistory(n, { prefix: `rd${tag}`, payments: 4, start })
        .payments) {
        if (commits.length === size) break;
        const userId = users[paymentIds.length % users.length]!;
        const facts = payment.facts.map((fact) => ({
          recordIds: [],
          fact: fact.userId === null ? fact : { ...fact, userId },
          receivedAt: null,
        }));
        const { commit } = planPaymentCommit(payment.paymentId, facts, undefined, Date.now());
        if (!commit?.view) continue;
        commits.push(commit);
        paymentIds.push(commit.paymentId);
        recountView(recount, commit.view);
        const day = commit.view.createdAt.slice(0, 10);
        perDay.set(day, (perDay.get(day) ?? 0) + 1);
      }
    }
    return commits;
  };
  const commitAll = async (commits: PaymentCommit[]) => {
    let pending = commits;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const results = await seedStore.commitAll(pending);
      const again: PaymentCommit[] = [];
      results.forEach((result, i) => {
        if (result.status === 'committed') return;
        // After a resend, a revision conflict is the earlier attempt having landed.
        if (result.status === 'revision-conflict' && attempt > 0) return;
        if (result.status === 'revision-conflict' || attempt >= 5) seed.failed += 1;
        else again.push(pending[i]!);
      });
      seed.resent += again.length;
      pending = again;
    }
  };
  const seedTo = async (target: number) => {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SEED_WORKERS }, async () => {
        while (paymentIds.length < target) {
          const size = Math.min(SEED_CHUNK, target - paymentIds.length);
          await commitAll(plan(seed.chunks++ % days, size));
        }
      }),
    );
    seed.elapsedMs += performance.now() - t0;
  };

  // Reads: a client of its own, metered, so each loop also gives RRU by DynamoDB's rules.
  const readClient = new DynamoDBClient({
    endpoint: ctx.endpoints.dynamo,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  let reportedUnits: ((operation: PaymentReadOperation, units: number) => void) | undefined;
  const store = new DynamoDbPaymentStore({
    client: readClient,
    paymentsTableName: table,
    onReadUnits: (operation, units) => reportedUnits?.(operation, units),
  });
  const summaryUnits = async (): Promise<SummaryUnits> => {
    const reads = 5;
    let reported = 0;
    reportedUnits = (_operation, units) => {
      reported = Math.max(reported, units);
    };
    ctx.meter.reset();
    for (let i = 0; i < reads; i++) await store.dailySummary(dates[0]!);
    reportedUnits = undefined;
    return {
      payments: paymentIds.length,
      paymentsThatDay: perDay.get(dates[0]!) ?? 0,
      reported,
      computed: ctx.meter.snapshot().dynamo.rru / reads,
    };
  };

  ctx.log(`payments reads: seeding 1,000 payments over ${days} days, ${users.length} users`);
  await seedTo(1_000);
  const small = await summaryUnits();
  ctx.log(`payments reads: seeding up to ${sizes.paymentReadPayments.toLocaleString('en-US')}`);
  await seedTo(sizes.paymentReadPayments);
  const full = await summaryUnits();
  ctx.log(
    `payments reads: ${paymentIds.length} payments seeded in ${(seed.elapsedMs / 1000).toFixed(1)} s; timing reads`,
  );

  let historyItems = 0;
  let historyPages = 0;
  const random = seededRandom(7);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const ops = {
    getPayment: async () => {
      if (!(await store.getPayment(pick(paymentIds)))) throw new Error('seeded payment not found');
    },
    history: async () => {
      const page = await store.listUserPayments({ userId: pick(users), limit: 25 });
      historyItems += page.items.length;
      historyPages += 1;
    },
    summary: async () => {
      if ((await store.dailySummary(pick(dates))).length === 0) throw new Error('empty summary');
    },
  };
  const loop = async (op: () => Promise<void>, concurrency: number): Promise<ReadLoop> => {
    let calls = 0;
    let units = 0;
    reportedUnits = (_operation, value) => {
      units += value;
    };
    ctx.meter.reset();
    const result = await runClosedLoop(
      async () => {
        calls += 1;
        await op();
      },
      { concurrency, durationMs: sizes.paymentReadDurationMs, warmupMs: sizes.warmupMs },
    );
    reportedUnits = undefined;
    return {
      concurrency,
      perSecond: result.perSecond,
      latency: summarize(result.latenciesMs),
      failed: result.failed,
      ...(result.firstError === undefined ? {} : { firstError: errorText(result.firstError) }),
      reportedUnitsPerCall: units / Math.max(1, calls),
      rruPerCall: ctx.meter.snapshot().dynamo.rru / Math.max(1, calls),
    };
  };
  const timeAll = async (concurrency: number) => ({
    getPayment: await loop(ops.getPayment, concurrency),
    history: await loop(ops.history, concurrency),
    summary: await loop(ops.summary, concurrency),
  });
  try {
    const single = await timeAll(1);
    const loaded = await timeAll(sizes.concurrency);
    const mismatches = await summaryMismatches(seedStore, recount, []);
    return {
      payments: paymentIds.length,
      users: users.length,
      days,
      seed: {
        elapsedMs: seed.elapsedMs,
        paymentsPerSecond: paymentIds.length / (seed.elapsedMs / 1000),
        resent: seed.resent,
        failed: seed.failed,
      },
      single,
      loaded,
      meanHistoryPageItems: historyItems / Math.max(1, historyPages),
      summaryUnits: { small, full },
      summaryMismatches: mismatches.mismatches,
    };
  } finally {
    readClient.destroy();
  }
}

export function paymentsSection(
  result: PaymentsResult,
  raw: RawLimits | undefined,
  rawAfter: RawRate | undefined,
  pipeline: PipelineResult | undefined,
): Section {
  const { e2e, reads } = result;
  const rawTx =
    raw && rawAfter
      ? (raw.transactWrite.perSecond + rawAfter.perSecond) / 2
      : (raw?.transactWrite.perSecond ?? Number.NaN);
  const sat = e2e.saturated;
  const c = e2e.correctness;
  const d = e2e.usage.dynamo;
  const perEvent = (n: number) => n / Math.max(1, e2e.uniqueEvents);
  const windowMs = e2e.consumer.batchingWindowSeconds * 1000;
  const lag = (phase: PaymentPhase, key: string, label: string): Figure[] => [
    {
      id: `payments.${key}.lag.p50`,
      label: `processing lag p50, ${label}`,
      value: phase.lag.p50Ms,
      unit: 'ms',
      ratio: { value: phase.lag.p50Ms / windowMs, to: 'batching window' },
    },
    {
      id: `payments.${key}.lag.p99`,
      label: `processing lag p99, ${label}`,
      value: phase.lag.p99Ms,
      unit: 'ms',
      ratio: { value: phase.lag.p99Ms / windowMs, to: 'batching window' },
    },
  ];
  const readFigures = (key: 'getPayment' | 'history', label: string): Figure[] => [
    {
      id: `payments.reads.${key}.p50`,
      label: `${label} p50, 1 at a time`,
      value: reads.single[key].latency.p50Ms,
      unit: 'ms',
    },
    {
      id: `payments.reads.${key}.p99`,
      label: `${label} p99, 1 at a time`,
      value: reads.single[key].latency.p99Ms,
      unit: 'ms',
      target: { op: '<', value: 5 },
    },
  ];
  const pacedPct = `${e2e.pacedLoad * 100}% load`;
  const figures: Figure[] = [
    {
      id: 'payments.eventsAppliedPerSecond',
      label: 'payment events applied end to end (saturated)',
      value: sat.eventsAppliedPerSecond,
      unit: 'events/s',
      ratio: { value: ratio(sat.eventsAppliedPerSecond, rawTx), to: 'raw 1-tx-per-event events/s' },
    },
    ...(pipeline
      ? [
          {
            id: 'payments.vsSubscriptionPipeline',
            label: 'payment events applied vs the subscription pipeline',
            value: sat.eventsAppliedPerSecond,
            unit: 'events/s',
            ratio: {
              value: ratio(sat.eventsAppliedPerSecond, pipeline.saturated.eventsAppliedPerSecond),
              to: 'subscription pipeline events/s',
              target: { op: '>=' as const, value: 1 },
            },
          },
        ]
      : []),
    ...lag(sat, 'saturated', 'saturated'),
    ...(e2e.paced ? lag(e2e.paced, 'paced', pacedPct) : []),
    {
      id: 'payments.lost',
      label: 'payment events lost',
      value: c.ledger.lost,
      unit: 'events',
      target: { op: '<', value: 1 },
    },
    {
      id: 'payments.appliedTwice',
      label: 'payment events applied twice',
      value: c.ledger.appliedTwice,
      unit: 'events',
      target: { op: '<', value: 1 },
    },
    {
      id: 'payments.stateMismatches',
      label: 'payment views differing from expected',
      value: c.viewMismatches,
      unit: 'payments',
      target: { op: '<', value: 1 },
    },
    {
      id: 'payments.summaryMismatches',
      label: 'daily summaries differing from a recount',
      value: c.summaryMismatches,
      unit: 'days',
      target: { op: '<', value: 1 },
    },
    {
      id: 'payments.wruPerEvent',
      label: 'DynamoDB write request units per payment event',
      value: perEvent(d.wru + d.rejectedWru),
      unit: 'WRU/event',
    },
    {
      id: 'payments.rruPerEvent',
      label: 'DynamoDB read request units per payment event',
      value: perEvent(d.rru),
      unit: 'RRU/event',
    },
    {
      id: 'payments.recordsPerInvocation',
      label: 'records per payment consumer invocation',
      value: e2e.consumer.meanRecordsPerInvocation,
      unit: 'records',
      ratio: {
        value: e2e.consumer.meanRecordsPerInvocation / e2e.consumer.batchSize,
        to: 'batch size',
      },
    },
    ...readFigures('getPayment', `getPayment at ${reads.payments.toLocaleString('en-US')} payments`),
    ...readFigures('history', 'history page of 25'),
    {
      id: 'payments.reads.summary.p50',
      label: 'dailySummary p50, 1 at a time',
      value: reads.single.summary.latency.p50Ms,
      unit: 'ms',
    },
    {
      id: 'payments.reads.summary.p99',
      label: 'dailySummary p99, 1 at a time',
      value: reads.single.summary.latency.p99Ms,
      unit: 'ms',
    },
    ...(['getPayment', 'history', 'summary'] as const).map((key) => ({
      id: `payments.reads.${key}.loaded.perSecond`,
      label: `${key} at ${reads.loaded[key].concurrency} concurrent (p99 ${reads.loaded[key].latency.p99Ms.toFixed(1)} ms)`,
      value: reads.loaded[key].perSecond,
      unit: 'reads/s',
    })),
    {
      id: 'payments.reads.summaryUnits.small',
      label: `dailySummary read units at ${reads.summaryUnits.small.payments.toLocaleString('en-US')} payments`,
      value: reads.summaryUnits.small.reported,
      unit: 'RCU',
      target: { op: '<=', value: 5 },
    },
    {
      id: 'payments.reads.summaryUnits.full',
      label: `dailySummary read units at ${reads.summaryUnits.full.payments.toLocaleString('en-US')} payments`,
      value: reads.summaryUnits.full.reported,
      unit: 'RCU',
      ratio: {
        value: ratio(reads.summaryUnits.full.reported, reads.summaryUnits.small.reported),
        to: `at ${reads.summaryUnits.small.payments.toLocaleString('en-US')} payments`,
      },
      target: { op: '<=', value: 5 },
    },
  ];
  const phaseNote = (name: string, p: PaymentPhase) =>
    `${name}: ${p.histories} histories, ${p.payments} payments, ${p.uniqueEvents} events, ${p.deliveries} webhooks ` +
    `(${p.duplicates} duplicates), fed ${p.feed.acked} ok / ${p.feed.failed} failed at ${p.feed.perSecond.toFixed(1)} webhooks/s` +
    (p.targetWebhooksPerSecond
      ? ` (target ${p.targetWebhooksPerSecond.toFixed(1)})`
      : ' (closed loop)') +
    (p.timedOut ? '; TIMED OUT draining, figures cover what finished' : '') +
    `; ${p.batchSpread.batches} consumer batches held ${p.batchSpread.meanEventsPerCustomer.toFixed(2)} events per payment ` +
    `(${p.batchSpread.meanCustomers.toFixed(1)} payments per batch) on average.`;
  const u = e2e.usage;
  const l = c.ledger;
  const unit = (loop: ReadLoop) =>
    `${loop.reportedUnitsPerCall.toFixed(2)} reported / ${loop.rruPerCall.toFixed(2)} computed`;
  const txCount = d.requests.TransactWriteItems ?? 0;
  const notes = [
    `Delivery: histories (1-4 payments each) in groups of ${e2e.historiesPerGroup}, each group's events duplicated (${Math.round(
      100 * (e2e.duplicates / Math.max(1, e2e.webhooksAcked)),
    )}% of webhooks are copies) and fully shuffled with \`deliver\`: refunds and disputes often arrive before their payment.`,
    phaseNote('Saturated', sat),
    e2e.paced
      ? phaseNote('Paced', e2e.paced)
      : 'Paced phase skipped: the saturated phase did not drain.',
    `Mapping: batch ${e2e.consumer.batchSize}, window ${e2e.consumer.batchingWindowSeconds} s, max concurrency ${e2e.consumer.maximumConcurrency}; ` +
      `${e2e.consumer.invocations} invocations, ${e2e.consumer.failedBatches} failed batches, ${e2e.consumer.retriedRecords} records retried.`,
    `Baseline: ${rawTx.toFixed(1)} events/s` +
      (raw && rawAfter
        ? ` (mean of ${raw.transactWrite.perSecond.toFixed(1)} before and ${rawAfter.perSecond.toFixed(1)} right after).`
        : '.') +
      (pipeline
        ? ` Subscription pipeline: ${pipeline.saturated.eventsAppliedPerSecond.toFixed(1)} events/s (bursty order).`
        : ''),
    `Ledger: ${l.pages} pages for ${l.customers} payments, ${l.meanEventsPerPage.toFixed(2)} events per page; ${l.inLedger}/${l.expectedEvents} expected events recorded, ` +
      `${l.recordedTwice} recorded twice (any outcome), ${l.unexpected} unexpected. Summaries checked on ${c.summaryDays} days (the days of the payments and the day either side).`,
    `DynamoDB requests: ${JSON.stringify(u.dynamo.requests)}; ${u.dynamo.rejectedWrites} writes rejected (${JSON.stringify(u.dynamo.rejectedReasons)}; est. ${u.dynamo.rejectedWru} WRU, in WRU/event); ` +
      `transactions cancelled: ${((100 * u.dynamo.rejectedWrites) / Math.max(1, txCount + u.dynamo.rejectedWrites)).toFixed(1)}% of TransactWriteItems sent.`,
    `Committed WRU by item: ${formatWruByItem(u.dynamo.wruByItem)}.`,
    `SQS requests: ${JSON.stringify(u.sqs.requests)}; ${u.sqs.emptyReceives} empty receives. Checkout sessions are also sent to the subscriptions queue (not consumed here).`,
    `Reads: ${reads.payments.toLocaleString('en-US')} payments over ${reads.days} days and ${reads.users} users, seeded through commitAll in ${(reads.seed.elapsedMs / 1000).toFixed(1)} s ` +
      `(${reads.seed.paymentsPerSecond.toFixed(0)} payments/s, ${reads.seed.resent} commits resent, ${reads.seed.failed} failed); ` +
      `${reads.summaryMismatches} of their days' summaries differ from a recount. Ids, users and days picked at random; history pages held ${reads.meanHistoryPageItems.toFixed(1)} items on average.`,
    `Read units per call (DynamoDB Local via onReadUnits / DynamoDB's sizing rules): getPayment ${unit(reads.single.getPayment)}, history page ${unit(reads.single.history)}, dailySummary ${unit(reads.single.summary)}. ` +
      `Summary at ${reads.summaryUnits.small.payments} payments (${reads.summaryUnits.small.paymentsThatDay} that day): ${reads.summaryUnits.small.reported} reported, ${reads.summaryUnits.small.computed} computed; ` +
      `at ${reads.summaryUnits.full.payments} (${reads.summaryUnits.full.paymentsThatDay} that day): ${reads.summaryUnits.full.reported} reported, ${reads.summaryUnits.full.computed} computed.`,
    `Latency targets are on one read at a time (service time); at ${reads.loaded.getPayment.concurrency} concurrent the two cores are shared with DynamoDB Local's JVM: ` +
      (['getPayment', 'history', 'summary'] as const)
        .map(
          (key) =>
            `${key} p50 ${reads.loaded[key].latency.p50Ms.toFixed(1)} / p99 ${reads.loaded[key].latency.p99Ms.toFixed(1)} ms`,
        )
        .join(', ') +
      '.',
  ];
  if (c.examples.length > 0) notes.push(`mismatches, e.g. ${c.examples.join(', ')}`);
  for (const line of e2e.errorLogs.slice(0, 2)) notes.push(`handler error log: ${line.slice(0, 300)}`);
  for (const loop of [...Object.values(reads.single), ...Object.values(reads.loaded)])
    if (loop.firstError) notes.push(`read failure: ${loop.firstError}`);
  for (const p of e2e.paced ? [sat, e2e.paced] : [sat])
    if (p.feed.firstError) notes.push(`first webhook failure: ${p.feed.firstError}`);
  return {
    id: 'payments',
    title: 'Payments (webhook -> SQS -> payment consumer -> DynamoDB; reads on a large store)',
    figures,
    notes,
    detail: result,
  };
}

/** Cost per million payment webhooks: the cost model over the end-to-end run's usage. */
export function paymentsCostSection(
  model: StackModel,
  e2e: PaymentsEndToEnd,
  coldStarts?: FunctionColdStart[],
): Section {
  const { webhook, consumer } = paymentResources(model);
  const webhooks = Math.max(1, e2e.webhooksAcked);
  const warmWebhook = coldStarts?.find(
    (c) => c.logicalId === webhook.logicalId && !c.error && (c.failedInvocations ?? 0) === 0,
  )?.warmBilledDurationMs;
  const u = e2e.usage;
  const usage = {
    apiRequests: 1,
    lambdas: [
      {
        name: 'webhook',
        memoryMb: webhook.memoryMb,
        invocationsPerWebhook: 1,
        billedDurationMs: warmWebhook ?? e2e.webhookBilledDurationMs,
      },
      {
        name: 'payment consumer',
        memoryMb: consumer.memoryMb,
        invocationsPerWebhook: e2e.consumer.invocations / webhooks,
        billedDurationMs: e2e.consumer.billedDurationMs,
      },
    ],
    sqsBilledRequests: u.sqs.billedRequests / webhooks,
    dynamoWru: u.dynamo.wru / webhooks,
    dynamoRejectedWru: u.dynamo.rejectedWru / webhooks,
    dynamoRru: u.dynamo.rru / webhooks,
    logBytes: (e2e.logBytes.webhook + e2e.logBytes.consumer) / webhooks,
  };
  const cost = costPerMillionWebhooks(usage, US_EAST_1_PRICES);
  const perUniqueEvent = cost.totalUsdPerMillion * (webhooks / Math.max(1, e2e.uniqueEvents));
  const figures: Figure[] = cost.lines.map((line) => ({
    id: `paymentsCost.${line.service.replace(/[^A-Za-z]+/g, '')}`,
    label: line.service,
    value: line.usdPerMillion,
    unit: '$/M webhooks',
    ratio: { value: line.usdPerMillion / cost.totalUsdPerMillion, to: 'total' },
  }));
  figures.push(
    {
      id: 'paymentsCost.total',
      label: 'TOTAL per million payment webhooks (current prices)',
      value: cost.totalUsdPerMillion,
      unit: '$/M webhooks',
      ratio: {
        value: cost.totalUsdPerMillion / COST_TARGET_USD_PER_MILLION,
        to: `$${COST_TARGET_USD_PER_MILLION} aim`,
      },
      target: { op: '<', value: COST_TARGET_USD_PER_MILLION },
    },
    {
      id: 'paymentsCost.perUniqueEvent',
      label: 'TOTAL per million distinct payment events (duplicates paid by the others)',
      value: perUniqueEvent,
      unit: '$/M events',
    },
  );
  return {
    id: 'paymentsCost',
    title: 'Cost per million payment webhooks (us-east-1 list prices)',
    figures,
    notes: [
      ...cost.lines.map((line) => `${line.service}: ${line.basis}`),
      `Per webhook of the payments run (${e2e.webhooksAcked} webhooks incl. ${e2e.duplicates} duplicates); prices as in the subscription cost section.`,
      `Durations: webhook ${warmWebhook !== undefined ? 'from sequential warm invocations (cold-start run)' : 'in-process under the concurrent feed (overstates)'}; ` +
        `payment consumer in-process, sharing the cores with the feed (${e2e.consumer.billedDurationMs.toFixed(0)} ms per ~${e2e.consumer.meanRecordsPerInvocation.toFixed(0)} records; overstates).`,
      'Not included: the subscription consumer receiving the checkout sessions also routed to it; free tiers, INIT billing, storage, PITR, data transfer.',
    ],
    detail: { usagePerWebhook: usage, current: cost },
  };
}
