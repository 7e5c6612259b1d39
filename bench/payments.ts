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
 *   parallel) into a copy of the stack's payments table; `getPayment`, a history page of
 *   25 and `dailySummary` one at a time, each in slices alternating with the raw DynamoDB
 *   call it makes; the summary's read units at 1,000 payments and at the full count.
 * - Cost per million payment webhooks: the cost model over the end-to-end run's usage.
 */
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import {
  BatchGetItemCommand,
  DynamoDBClient,
  GetItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, PurgeQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import {
  DynamoDbPaymentStore,
  type PaymentReadOperation,
} from '../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import {
  DEFAULT_SUMMARY_SHARDS,
  PAYMENT_INDEX,
  PAYMENT_INDEXES,
  paymentIndexAttributes,
  paymentIndexKeys,
  paymentKeys,
} from '../functions/adapters/dynamodb/payment-table-schema.ts';
import { addDays } from '../functions/adapters/paging/query-cursor.ts';
import { planPaymentCommit } from '../functions/core/payments/apply-payment-events.ts';
import type {
  DailySummaryRow,
  PaymentCommit,
  PaymentView,
  StoredPayment,
} from '../functions/core/payments/ports.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/emulators.ts';
import { createLambdaContext } from '../local/lambda-context.ts';
import { startQueuePoller } from '../local/queue-poller.ts';
import type { StackModel } from '../local/stack-model.ts';
import { stripeWebhookEvent } from '../test/helpers/apigw-events.ts';
import {
  deliver,
  type ExpectedPayment,
  type GeneratedPayment,
  generatePaymentHistory,
  historyEvents,
  seededRandom,
} from '../test/helpers/payment-history.ts';
import { signPayload } from '../test/helpers/stripe-signing.ts';
import { formatWruByItem } from './aws-meter.ts';
import type { FunctionColdStart } from './cold-start.ts';
import type { BenchContext } from './context.ts';
import { costPerMillionWebhooks, meanBilledDurationMs, US_EAST_1_PRICES } from './cost-model.ts';
import { COST_TARGET_USD_PER_MILLION } from './cost-report.ts';
import { SpreadMeter } from './delivery-order.ts';
import { itemSize, writeUnits } from './dynamo-capacity.ts';
import type { WebhookHandler } from './ingress.ts';
import { checkLedger, countCommit, emptyMeteredCommits, pool } from './ledger-check.ts';
import { runClosedLoop, runOpenLoop } from './load.ts';
import type { ConsumerHandler, PipelineResult } from './pipeline.ts';
import { paymentResources, provisionTableCopy } from './provision.ts';
import type { RawLimits, RawRate } from './raw-limits.ts';
import type { Figure, Section } from './report.ts';
import { type LatencySummary, ratio, summarize } from './stats.ts';

export type PaymentsEndToEnd = Awaited<ReturnType<typeof measurePaymentsEndToEnd>>;
export type PaymentReads = Awaited<ReturnType<typeof measurePaymentReads>>;
type PaymentPhase = PaymentsEndToEnd['saturated'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const errorText = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).slice(0, 300);

/** date -> `status|currency` -> row: the daily summary recounted from final views. */
type Recount = Map<string, Map<string, DailySummaryRow>>;

function recountView(recount: Recount, view: ExpectedPayment): void {
  const date = view.createdAt.slice(0, 10);
  const rows = recount.get(date) ?? new Map<string, DailySummaryRow>();
  recount.set(date, rows);
  const key = `${view.status}|${view.currency}`;
  const row: DailySummaryRow = rows.get(key) ?? {
    status: view.status,
    gateway: 'stripe',
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
) {
  const days = new Set<string>();
  for (const date of recount.keys()) for (const d of [-1, 0, 1]) days.add(addDays(date, d));
  let mismatches = 0;
  await pool([...days], 8, async (date) => {
    // Sorted as `dailySummary` sorts: by status, then currency.
    const expected = [...(recount.get(date)?.entries() ?? [])]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, row]) => row);
    if (!isDeepStrictEqual(await store.dailySummary(date), expected)) {
      mismatches += 1;
      if (examples.length < 5) examples.push(`summary ${date}`);
    }
  });
  return { days: days.size, mismatches };
}

/**
 * Write units the indexes take when a payment's view goes from `before` to `after`: the
 * meter sizes the items a request names, but DynamoDB also bills each index entry put
 * (its keys plus the projected view) and each one deleted when its key moves or goes.
 */
function indexWriteUnits(paymentId: string, before: PaymentView | null, after: PaymentView | null) {
  const entry = (view: PaymentView | null, index: (typeof PAYMENT_INDEXES)[number]) => {
    const keys = view ? paymentIndexAttributes(view) : {};
    const [pk, sk] = [keys[index.partitionKey], keys[index.sortKey]];
    if (!view || pk === undefined || sk === undefined) return undefined;
    const item = {
      ...paymentKeys.payment(paymentId),
      [index.partitionKey]: pk,
      [index.sortKey]: sk,
    };
    return { key: `${pk}|${sk}`, item: { ...item, view } };
  };
  let units = 0;
  for (const index of PAYMENT_INDEXES) {
    const [old, now] = [entry(before, index), entry(after, index)];
    if (isDeepStrictEqual(old, now)) continue;
    if (old && old.key !== now?.key) units += writeUnits(itemSize(old.item, false));
    if (now) units += writeUnits(itemSize(now.item, false));
  }
  return units;
}

/**
 * Replays each payment's commits from its ledger pages (each page's recorded events,
 * folded over the state the previous page left) to size the index writes they made;
 * the replayed final view must be the expected one.
 */
async function replayIndexWrites(store: DynamoDbPaymentStore, payments: GeneratedPayment[]) {
  let units = 0;
  let mismatches = 0;
  await pool(payments, 16, async (payment) => {
    const factOf = new Map(payment.facts.map((fact) => [fact.eventId, fact]));
    let stored: StoredPayment | undefined;
    let view: PaymentView | null = null;
    for (const page of await store.readLedger(payment.paymentId)) {
      const facts = page.events.flatMap((event) => {
        const fact = factOf.get(event.eventId);
        return fact ? [{ recordIds: [], fact, receivedAt: event.receivedAt }] : [];
      });
      const { commit } = planPaymentCommit(payment.paymentId, facts, stored, page.appliedAt);
      if (!commit) continue;
      units += indexWriteUnits(payment.paymentId, view, commit.view);
      view = commit.view;
      stored = { state: commit.state, revision: page.revision, recentEvents: commit.recentEvents };
    }
    if (!isDeepStrictEqual(view, payment.expected)) mismatches += 1;
  });
  return { units, mismatches };
}

export async function measurePaymentsEndToEnd(options: {
  ctx: BenchContext;
  webhook: WebhookHandler;
  consumer: ConsumerHandler;
}) {
  const { ctx } = options;
  const { sizes } = ctx;
  const resources = paymentResources(ctx.model);
  const { mapping } = resources;
  const queueUrl = ctx.provisioned.queueUrls[resources.queueLogicalId]!;
  const table = ctx.provisioned.tableNames[resources.paymentsTableLogicalId]!;
  const tag = Date.now().toString(36);
  const group = sizes.activeCustomers;

  // Histories delivered `group` at a time, each group's events duplicated and fully
  // shuffled (`deliver`): a few payers live at once, like the pipeline's bursty order.
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
  const webhookFn = {
    functionName: resources.webhook.logicalId,
    timeoutSeconds: resources.webhook.timeoutSeconds,
    memoryMb: resources.webhook.memoryMb,
  };
  let webhookDurations: number[] = [];
  const send = async (_i: number, event: APIGatewayProxyEventV2) => {
    const started = performance.now();
    const response = await ctx.capture.run('payment-webhook', () =>
      options.webhook(event, createLambdaContext(webhookFn)),
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
  // A client of its own, metered: the mapping's receives and deletes are billed requests.
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

  /** Feeds one set, then waits until every event is committed and the queue is empty. */
  const runPhase = async (name: string, set: ReturnType<typeof makeSet>, rate?: number) => {
    ctx.log(
      `payments ${name}: ${set.payments.length} payments, ${set.ids.size} events, ${set.deliveries.length} webhooks` +
        (rate ? ` at ${rate.toFixed(1)} webhooks/s` : ''),
    );
    spread = new SpreadMeter();
    paymentOf = set.paymentOf;
    webhookDurations = [];
    const feedStart = Date.now();
    const total = set.deliveries.length;
    const feed = rate
      ? await runOpenLoop(send, { ratePerSecond: rate, total }, signed(set.deliveries))
      : await runClosedLoop(
          send,
          { concurrency: sizes.concurrency, total },
          signed(set.deliveries),
        );
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
      /** Open-loop feed rate, webhooks/s; absent for the saturating phase. */
      targetWebhooksPerSecond: rate,
      feed: {
        acked: feed.completed,
        failed: feed.failed,
        perSecond: feed.perSecond,
        firstError: feed.firstError === undefined ? undefined : errorText(feed.firstError),
      },
      webhookBilledDurationMs: meanBilledDurationMs(webhookDurations),
      /** First webhook to the last first-time commit (a ledger page naming the event). */
      elapsedMs,
      eventsAppliedPerSecond: committed / (elapsedMs / 1000),
      /** SQS SentTimestamp of an event's first delivery to the commit of its ledger page. */
      lag: summarize(lags),
      timedOut,
      /** The consumer's batches: events per payment per batch ("customer" = payment here). */
      batchSpread: spread.summary(),
    };
  };

  let saturated: Awaited<ReturnType<typeof runPhase>>;
  let paced: typeof saturated | undefined;
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
          ...page,
          customerId: page.paymentId,
          userId: null,
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
  const indexWrites = await replayIndexWrites(store, payments);

  return {
    saturated,
    paced,
    pacedLoad: sizes.pacedLoad,
    historiesPerGroup: group,
    uniqueEvents: ledger.expectedEvents,
    webhooksAcked: saturated.feed.acked + (paced?.feed.acked ?? 0),
    duplicates: saturated.duplicates + (paced?.duplicates ?? 0),
    consumer: {
      invocations: consumerDurations.length,
      meanRecordsPerInvocation: consumerRecords / Math.max(1, consumerDurations.length),
      billedDurationMs: meanBilledDurationMs(consumerDurations),
      failedBatches: stats.failedBatches,
      retriedRecords: stats.retried,
      batchSize: mapping.batchSize,
      maximumConcurrency: mapping.maximumConcurrency,
      batchingWindowSeconds: mapping.maximumBatchingWindowSeconds,
    },
    usage,
    /** Index write units of the run's commits (not in `usage`: see indexWriteUnits). */
    indexWru: indexWrites.units,
    /** Payments whose replayed commits do not end on the expected view (0: the replay is sound). */
    indexReplayMismatches: indexWrites.mismatches,
    logBytes: ctx.capture.bytesOf('payment-webhook') + ctx.capture.bytesOf('payment-consumer'),
    errorLogs: [
      ...ctx.capture.errorsOf('payment-webhook'),
      ...ctx.capture.errorsOf('payment-consumer'),
    ].slice(0, 2),
    correctness: {
      ledger,
      viewMismatches,
      summaryDays: summary.days,
      summaryMismatches: summary.mismatches,
      examples,
    },
  };
}

/** Commits per `commitAll` call while seeding (8 packs of 49 payments), and calls in flight. */
const SEED_CHUNK = 392;
const SEED_WORKERS = 4;
/** Each read is timed in this many slices, alternating with its raw DynamoDB call. */
const READ_SLICES = 3;

export async function measurePaymentReads(ctx: BenchContext) {
  const { sizes, harness } = ctx;
  const { paymentsTableLogicalId } = paymentResources(ctx.model);
  const tag = Date.now().toString(36);
  const table = await provisionTableCopy(
    ctx.model,
    harness.dynamo,
    paymentsTableLogicalId,
    `-reads${tag}`,
  );
  const users = Array.from({ length: sizes.paymentReadUsers }, (_, i) => `user-rd${tag}-${i}`);
  const firstDay = Date.UTC(2025, 5, 1) / 1000;
  const dates = Array.from({ length: sizes.paymentReadDays }, (_, d) =>
    new Date((firstDay + d * 86_400) * 1000).toISOString().slice(0, 10),
  );

  // Seeding through the harness's (unmetered) client: planned commits straight into commitAll.
  const seedStore = new DynamoDbPaymentStore({ client: harness.dynamo, paymentsTableName: table });
  const intentIds: string[] = [];
  const chargeIds: string[] = [];
  const recount: Recount = new Map();
  const seed = { payments: 0, histories: 0, chunks: 0, elapsedMs: 0, resent: 0, failed: 0 };
  /** One chunk of planned commits, all created on one day, users in turn. */
  const plan = (day: number, size: number): PaymentCommit[] => {
    const commits: PaymentCommit[] = [];
    while (commits.length < size) {
      const n = ++seed.histories;
      const start = firstDay + day * 86_400 + ((n * 7_919) % 80_000);
      for (const payment of generatePaymentHistory(n, { prefix: `rd${tag}`, payments: 4, start })
        .payments) {
        if (commits.length === size) break;
        const userId = users[seed.payments % users.length]!;
        const facts = payment.facts.map((fact) => ({
          recordIds: [],
          fact: fact.userId === null ? fact : { ...fact, userId },
          receivedAt: null,
        }));
        const { commit } = planPaymentCommit(payment.paymentId, facts, undefined, Date.now());
        if (!commit?.view) continue;
        commits.push(commit);
        seed.payments += 1;
        recountView(recount, commit.view);
        if (commit.paymentId.startsWith('pi_')) intentIds.push(commit.paymentId);
        // A charge id finds its payment: by a pointer (charge of a PaymentIntent) or its own key.
        const chargeId = commit.view.chargeId;
        if (chargeId) chargeIds.push(chargeId);
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
    ctx.log(`payments reads: seeding up to ${target.toLocaleString('en-US')} payments`);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SEED_WORKERS }, async () => {
        while (seed.payments < target) {
          const size = Math.min(SEED_CHUNK, target - seed.payments);
          await commitAll(plan(seed.chunks++ % dates.length, size));
        }
      }),
    );
    seed.elapsedMs += performance.now() - t0;
  };

  // Reads through a client of their own, metered: each read also gets RRU by DynamoDB's rules.
  const readClient = new DynamoDBClient({
    endpoint: ctx.endpoints.dynamo,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  let onUnits: ((operation: PaymentReadOperation, units: number) => void) | undefined;
  const store = new DynamoDbPaymentStore({
    client: readClient,
    paymentsTableName: table,
    onReadUnits: (operation, units) => onUnits?.(operation, units),
  });
  /** Read units of one `dailySummary` of the first day: the larger of DynamoDB Local's and the sizing rules'. */
  const summaryUnits = async () => {
    let reported = 0;
    onUnits = (_operation, units) => {
      reported = Math.max(reported, units);
    };
    ctx.meter.reset();
    for (let i = 0; i < 5; i++) await store.dailySummary(dates[0]!);
    onUnits = undefined;
    const computed = ctx.meter.snapshot().dynamo.rru / 5;
    const thatDay = [...(recount.get(dates[0]!)?.values() ?? [])].reduce((n, r) => n + r.count, 0);
    return {
      payments: seed.payments,
      thatDay,
      reported,
      computed,
      units: Math.max(reported, computed),
    };
  };
  await seedTo(1_000);
  const small = await summaryUnits();
  await seedTo(sizes.paymentReadPayments);
  const full = await summaryUnits();
  ctx.log(`payments reads: seeded in ${(seed.elapsedMs / 1000).toFixed(1)} s; timing reads`);

  const random = seededRandom(7);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const wireKey = (key: { pk: string; sk: string }) => ({ pk: { S: key.pk }, sk: { S: key.sk } });
  let historyItems = 0;
  let historyPages = 0;
  /** `op` one at a time, in slices alternating with `baseline` (the raw call it makes), if any. */
  const timed = async (op: () => Promise<unknown>, baseline?: () => Promise<unknown>) => {
    const own: number[] = [];
    const raw: number[] = [];
    let calls = 0;
    let units = 0;
    let failed = 0;
    let firstError: unknown;
    onUnits = (_operation, value) => {
      units += value;
    };
    ctx.meter.reset();
    for (let slice = 0; slice < READ_SLICES; slice++) {
      const loop = {
        concurrency: 1,
        durationMs: sizes.paymentReadDurationMs / READ_SLICES,
        warmupMs: slice === 0 ? sizes.warmupMs : 0,
      };
      if (baseline)
        raw.push(...(await runClosedLoop(async () => void (await baseline()), loop)).latenciesMs);
      const run = await runClosedLoop(async () => {
        calls += 1;
        await op();
      }, loop);
      own.push(...run.latenciesMs);
      failed += run.failed;
      firstError ??= run.firstError;
    }
    onUnits = undefined;
    return {
      latency: summarize(own),
      raw: baseline ? summarize(raw) : undefined,
      failed,
      firstError: firstError === undefined ? undefined : errorText(firstError),
      /** Read units the store reported through `onReadUnits` (DynamoDB Local's figure), per call. */
      reportedUnits: units / Math.max(1, calls),
      /** By DynamoDB's sizing rules (the meter), per call. */
      computedUnits: ctx.meter.snapshot().dynamo.rru / Math.max(1, calls),
    };
  };
  const found = async (view: Promise<unknown>) => {
    if (!(await view)) throw new Error('seeded payment not found');
  };
  try {
    const getPayment = await timed(
      () => found(store.getPayment(pick(intentIds))),
      () =>
        harness.dynamo.send(
          new GetItemCommand({
            TableName: table,
            Key: wireKey(paymentKeys.payment(pick(intentIds))),
            ProjectionExpression: '#view',
            ExpressionAttributeNames: { '#view': 'view' },
          }),
        ),
    );
    const getByCharge = await timed(() => found(store.getPayment(pick(chargeIds))));
    const history = await timed(
      async () => {
        historyItems += (await store.listUserPayments({ userId: pick(users), limit: 25 })).items
          .length;
        historyPages += 1;
      },
      () =>
        harness.dynamo.send(
          new QueryCommand({
            TableName: table,
            IndexName: PAYMENT_INDEX.userHistory,
            KeyConditionExpression: 'userPk = :pk',
            ExpressionAttributeValues: { ':pk': { S: paymentIndexKeys.user(pick(users)) } },
            ProjectionExpression: 'createdSk, #view',
            ExpressionAttributeNames: { '#view': 'view' },
            ScanIndexForward: false,
            Limit: 26,
          }),
        ),
    );
    const summary = await timed(
      () => store.dailySummary(pick(dates)),
      () => {
        const date = pick(dates);
        return harness.dynamo.send(
          new BatchGetItemCommand({
            RequestItems: {
              [table]: {
                Keys: Array.from({ length: DEFAULT_SUMMARY_SHARDS }, (_, shard) =>
                  wireKey(paymentKeys.summary(date, shard)),
                ),
              },
            },
          }),
        );
      },
    );
    return {
      payments: seed.payments,
      users: users.length,
      days: dates.length,
      seed: {
        elapsedMs: seed.elapsedMs,
        paymentsPerSecond: seed.payments / (seed.elapsedMs / 1000),
        resent: seed.resent,
        failed: seed.failed,
      },
      getPayment,
      getByCharge,
      history,
      summary,
      meanHistoryPageItems: historyItems / Math.max(1, historyPages),
      summaryUnits: { small, full },
      /** Seeded days whose summary differs from the recount of the seeded views. */
      summaryMismatches: (await summaryMismatches(seedStore, recount, [])).mismatches,
    };
  } finally {
    readClient.destroy();
  }
}

export function paymentsSection(
  result: { e2e: PaymentsEndToEnd; reads: PaymentReads },
  raw: RawLimits | undefined,
  rawAfter: RawRate | undefined,
  pipeline: PipelineResult | undefined,
): Section {
  const { e2e, reads } = result;
  const rawTx =
    raw && rawAfter
      ? (raw.transactWrite.perSecond + rawAfter.perSecond) / 2
      : (raw?.transactWrite.perSecond ?? Number.NaN);
  const { saturated: sat, paced, correctness: c, usage: u } = e2e;
  const d = u.dynamo;
  const perEvent = (n: number) => n / Math.max(1, e2e.uniqueEvents);
  const windowMs = e2e.consumer.batchingWindowSeconds * 1000;
  const zero = (id: string, label: string, value: number, unit: string): Figure => ({
    id: `payments.${id}`,
    label,
    value,
    unit,
    target: { op: '<', value: 1 },
  });
  const lag = (phase: PaymentPhase, key: string, label: string): Figure[] =>
    (['p50', 'p99'] as const).map((p) => ({
      id: `payments.${key}.lag.${p}`,
      label: `processing lag ${p}, ${label}`,
      value: phase.lag[`${p}Ms`],
      unit: 'ms',
      ratio: { value: phase.lag[`${p}Ms`] / windowMs, to: 'batching window' },
    }));
  type Read = PaymentReads['getPayment'];
  const read = (
    key: string,
    label: string,
    r: Read,
    rawLabel?: string,
    target?: number,
  ): Figure[] =>
    (['p50', 'p99'] as const).map((p) => ({
      id: `payments.reads.${key}.${p}`,
      label: `${label} ${p}`,
      value: r.latency[`${p}Ms`],
      unit: 'ms',
      ...(r.raw && rawLabel
        ? {
            ratio: {
              value: ratio(r.latency[`${p}Ms`], r.raw[`${p}Ms`]),
              to: `raw ${rawLabel} ${p}`,
            },
          }
        : {}),
      ...(p === 'p99' && target ? { target: { op: '<' as const, value: target } } : {}),
    }));
  const units = (key: 'small' | 'full'): Figure => {
    const s = reads.summaryUnits[key];
    return {
      id: `payments.reads.summaryUnits.${key}`,
      label: `dailySummary read units, ${s.payments.toLocaleString('en-US')} payments stored`,
      value: s.units,
      unit: 'RCU',
      ...(key === 'full'
        ? {
            ratio: {
              value: ratio(s.units, reads.summaryUnits.small.units),
              to: 'at 1,000 payments',
            },
          }
        : {}),
      target: { op: '<=', value: 5 },
    };
  };
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
            label: 'payment events applied, against the subscription pipeline',
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
    ...(paced ? lag(paced, 'paced', `${e2e.pacedLoad * 100}% load`) : []),
    zero('lost', 'payment events lost', c.ledger.lost, 'events'),
    zero('appliedTwice', 'payment events applied twice', c.ledger.appliedTwice, 'events'),
    zero('viewMismatches', 'payment views differing from expected', c.viewMismatches, 'payments'),
    zero(
      'summaryMismatches',
      'daily summaries differing from a recount',
      c.summaryMismatches,
      'days',
    ),
    {
      id: 'payments.wruPerEvent',
      label: 'DynamoDB write request units per payment event, indexes included',
      value: perEvent(d.wru + d.rejectedWru + e2e.indexWru),
      unit: 'WRU/event',
      ratio: {
        value: ratio(e2e.indexWru, d.wru + d.rejectedWru + e2e.indexWru),
        to: 'share of the indexes',
      },
    },
    ...read(
      'getPayment',
      `getPayment(pi_), ${reads.payments.toLocaleString('en-US')} stored,`,
      reads.getPayment,
      'GetItem',
      5,
    ),
    ...read('history', 'history page of 25', reads.history, 'Query', 5),
    ...read('summary', 'dailySummary', reads.summary, 'BatchGetItem'),
    units('small'),
    units('full'),
  ];
  const phaseNote = (name: string, p: PaymentPhase) =>
    `${name}: ${p.histories} histories, ${p.payments} payments, ${p.uniqueEvents} events, ${p.deliveries} webhooks (${p.duplicates} duplicates), ` +
    `fed ${p.feed.acked} ok / ${p.feed.failed} failed at ${p.feed.perSecond.toFixed(1)} webhooks/s` +
    (p.targetWebhooksPerSecond
      ? ` (target ${p.targetWebhooksPerSecond.toFixed(1)})`
      : ' (closed loop)') +
    (p.timedOut ? '; TIMED OUT draining, figures cover what finished' : '') +
    `; ${p.batchSpread.batches} consumer batches held ${p.batchSpread.meanEventsPerCustomer.toFixed(2)} events per payment ` +
    `(${p.batchSpread.meanCustomers.toFixed(1)} payments) on average.`;
  const l = c.ledger;
  // The meter counts a request before it is sent: cancelled ones included.
  const sent = d.requests.TransactWriteItems ?? 0;
  const r = reads;
  const ms = (x: LatencySummary) => `${x.p50Ms.toFixed(1)} / ${x.p99Ms.toFixed(1)} ms`;
  const notes = [
    `Delivery: histories (1-4 payments each) in groups of ${e2e.historiesPerGroup}, each group's events sent again at ` +
      'the configured duplicate rate and fully shuffled (`deliver`): refunds and disputes often arrive before their payment.',
    phaseNote('Saturated', sat),
    paced ? phaseNote('Paced', paced) : 'Paced phase skipped: the saturated phase did not drain.',
    `Mapping: batch ${e2e.consumer.batchSize}, window ${e2e.consumer.batchingWindowSeconds} s, max concurrency ${e2e.consumer.maximumConcurrency}; ` +
      `${e2e.consumer.invocations} invocations of ${e2e.consumer.meanRecordsPerInvocation.toFixed(1)} records, ${e2e.consumer.failedBatches} failed batches, ${e2e.consumer.retriedRecords} records retried.`,
    `Baseline: ${rawTx.toFixed(1)} events/s` +
      (raw && rawAfter
        ? ` (mean of ${raw.transactWrite.perSecond.toFixed(1)} before and ${rawAfter.perSecond.toFixed(1)} right after).`
        : '.') +
      (pipeline
        ? ` Subscription pipeline in this run: ${pipeline.saturated.eventsAppliedPerSecond.toFixed(1)} events/s.`
        : ''),
    `Ledger: ${l.pages} pages for ${l.customers} payments, ${l.meanEventsPerPage.toFixed(2)} events per page; ${l.inLedger}/${l.expectedEvents} expected events recorded, ` +
      `${l.recordedTwice} recorded twice (any outcome), ${l.unexpected} unexpected. Summaries checked on ${c.summaryDays} days (the payments' days and the day either side).`,
    `DynamoDB requests: ${JSON.stringify(d.requests)}; ${d.rejectedWrites} of ${sent} transactions cancelled (${JSON.stringify(d.rejectedReasons)}; est. ${d.rejectedWru} WRU, in WRU/event); ` +
      `${perEvent(d.rru).toFixed(2)} RRU/event. Committed WRU by item: ${formatWruByItem(d.wruByItem)}; ` +
      `indexes ${e2e.indexWru.toLocaleString('en-US')} WRU more, sized by replaying each payment's ledger pages (${e2e.indexReplayMismatches} replays off the expected view).`,
    `SQS requests: ${JSON.stringify(u.sqs.requests)}; ${u.sqs.emptyReceives} empty receives. Checkout sessions also go to the subscriptions queue (not consumed here).`,
    `Reads: ${r.payments.toLocaleString('en-US')} payments over ${r.days} days and ${r.users} users, seeded through commitAll in ${(r.seed.elapsedMs / 1000).toFixed(1)} s ` +
      `(${r.seed.paymentsPerSecond.toFixed(0)} payments/s, ${r.seed.resent} commits resent, ${r.seed.failed} failed); ${r.summaryMismatches} of their days' summaries differ from a recount. ` +
      `Ids, users and days at random; one read at a time, in ${READ_SLICES} slices alternating with the raw call (p50 / p99): GetItem ${r.getPayment.raw ? ms(r.getPayment.raw) : ''}, ` +
      `Query of 26 ${r.history.raw ? ms(r.history.raw) : ''}, BatchGetItem of 8 ${r.summary.raw ? ms(r.summary.raw) : ''}. getPayment by charge id (pointer, then the payment): ${ms(r.getByCharge.latency)}. ` +
      `History pages held ${r.meanHistoryPageItems.toFixed(1)} items on average.`,
    `Read units per call, DynamoDB Local via onReadUnits / DynamoDB's sizing rules: getPayment ${r.getPayment.reportedUnits.toFixed(2)} / ${r.getPayment.computedUnits.toFixed(2)}, ` +
      `history page ${r.history.reportedUnits.toFixed(2)} (the meter sizes document-client queries as wire items: its figure is not shown), ` +
      `dailySummary ${r.summary.reportedUnits.toFixed(2)} / ${r.summary.computedUnits.toFixed(2)}. ` +
      `Summary units (the larger of the two): at ${r.summaryUnits.small.payments} payments (${r.summaryUnits.small.thatDay} that day) ${r.summaryUnits.small.reported} / ${r.summaryUnits.small.computed}, ` +
      `at ${r.summaryUnits.full.payments} (${r.summaryUnits.full.thatDay} that day) ${r.summaryUnits.full.reported} / ${r.summaryUnits.full.computed}; DynamoDB Local charges only the shards that exist.`,
  ];
  if (c.examples.length > 0) notes.push(`mismatches, e.g. ${c.examples.join(', ')}`);
  for (const line of e2e.errorLogs) notes.push(`handler error log: ${line.slice(0, 300)}`);
  for (const x of [r.getPayment, r.getByCharge, r.history, r.summary])
    if (x.firstError) notes.push(`read failure (${x.failed}): ${x.firstError}`);
  for (const p of paced ? [sat, paced] : [sat])
    if (p.feed.firstError) notes.push(`first webhook failure: ${p.feed.firstError}`);
  return {
    id: 'payments',
    title: 'Payments (webhook -> SQS -> payment consumer -> DynamoDB; reads on a large store)',
    figures,
    notes,
    detail: result,
  };
}

/** Cost per million payment webhooks: the subscription section's cost model over the payments run's usage. */
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
  // The paced phase's webhooks run mostly one at a time: closer to one Lambda instance per request.
  const fed = e2e.paced ?? e2e.saturated;
  const webhookMs = warmWebhook ?? fed.webhookBilledDurationMs;
  const d = e2e.usage.dynamo;
  const usage = {
    apiRequests: 1,
    lambdas: [
      {
        name: 'webhook',
        memoryMb: webhook.memoryMb,
        invocationsPerWebhook: 1,
        billedDurationMs: webhookMs,
      },
      {
        name: 'payment consumer',
        memoryMb: consumer.memoryMb,
        invocationsPerWebhook: e2e.consumer.invocations / webhooks,
        billedDurationMs: e2e.consumer.billedDurationMs,
      },
    ],
    sqsBilledRequests: e2e.usage.sqs.billedRequests / webhooks,
    dynamoWru: (d.wru + e2e.indexWru) / webhooks,
    dynamoRejectedWru: d.rejectedWru / webhooks,
    dynamoRru: d.rru / webhooks,
    logBytes: e2e.logBytes / webhooks,
  };
  const cost = costPerMillionWebhooks(usage, US_EAST_1_PRICES);
  const total = cost.totalUsdPerMillion;
  const figures: Figure[] = cost.lines.map((line) => ({
    id: `paymentsCost.${line.service.replace(/[^A-Za-z]+/g, '')}`,
    label: line.service,
    value: line.usdPerMillion,
    unit: '$/M webhooks',
    ratio: { value: line.usdPerMillion / total, to: 'total' },
  }));
  figures.push(
    {
      id: 'paymentsCost.total',
      label: 'TOTAL per million payment webhooks',
      value: total,
      unit: '$/M webhooks',
      ratio: {
        value: total / COST_TARGET_USD_PER_MILLION,
        to: `$${COST_TARGET_USD_PER_MILLION} aim`,
      },
      target: { op: '<', value: COST_TARGET_USD_PER_MILLION },
    },
    {
      id: 'paymentsCost.perDistinctEvent',
      label: 'TOTAL per million distinct payment events (duplicates included in the cost)',
      value: (total * webhooks) / Math.max(1, e2e.uniqueEvents),
      unit: '$/M events',
    },
  );
  return {
    id: 'paymentsCost',
    title:
      'Cost per million payment webhooks (us-east-1 list prices, as the subscription cost section)',
    figures,
    notes: [
      ...cost.lines.map((line) => `${line.service}: ${line.basis}`),
      `Per webhook of the payments run (${e2e.webhooksAcked} webhooks incl. ${e2e.duplicates} duplicates). ` +
        `DynamoDB writes include the index writes (${(e2e.indexWru / webhooks).toFixed(2)} of the WRU/webhook). Durations: webhook ` +
        (warmWebhook !== undefined
          ? 'from sequential warm invocations (cold-start run)'
          : `in-process, ${e2e.paced ? 'paced phase (mostly one at a time)' : 'saturated phase (16 concurrent: overstates)'}`) +
        '; payment consumer in-process, sharing the cores with the feed (overstates).',
      'Not included: the subscription consumer receiving the checkout sessions also routed to it; free tiers, INIT billing, storage, PITR, data transfer.',
    ],
    detail: { usagePerWebhook: usage, current: cost },
  };
}
