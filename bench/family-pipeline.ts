/**
 * One event family end to end, whatever the family: signed Stripe webhooks into the real
 * webhook handler, through the SQS emulator, polled from the family's queue with its
 * event source mapping settings (the local runtime's queue poller) into the family's
 * real consumer, committed to DynamoDB Local. Two phases: a saturated closed loop
 * (throughput), then fresh deliveries paced at a share of that rate (lag at a
 * sustainable load). Each phase waits for its events to be committed and the queue to
 * drain. Lag is SQS SentTimestamp to the first ledger page recording the event.
 *
 * A family brings its deliveries (`FeedSet`), its handlers and resources, and checks
 * what DynamoDB holds afterwards itself; the section helpers at the end print the
 * figures and notes every family shares.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, PurgeQueueCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createLambdaContext, localFunction } from '../local/lambda-context.ts';
import { type SqsConsumerHandler, startQueuePoller } from '../local/queue-poller.ts';
import type { FunctionModel, QueueConsumerModel } from '../local/stack-model.ts';
import { stripeWebhookEvent } from '../test/helpers/apigw-events.ts';
import { signPayload } from '../test/helpers/stripe-signing.ts';
import type { AwsUsage } from './aws-meter.ts';
import { type BenchContext, localSqs } from './context.ts';
import { meanBilledDurationMs } from './cost-model.ts';
import { type BatchSpread, SpreadMeter } from './delivery-order.ts';
import type { WebhookHandler } from './ingress.ts';
import { countCommit, emptyMeteredCommits, type MeteredCommits } from './ledger-check.ts';
import { runClosedLoop, runOpenLoop } from './load.ts';
import type { RawLimits, RawRate } from './raw-limits.ts';
import type { Figure } from './report.ts';
import { type LatencySummary, mean, summarize } from './stats.ts';

export type ConsumerHandler = SqsConsumerHandler;

/** What one phase delivers, and what must come out of it. */
export interface FeedSet {
  /** Generated histories the deliveries come from. */
  histories: number;
  /** Event bodies in delivery order, duplicates included. */
  deliveries: readonly string[];
  /** The events that must each be committed: one ledger record at least. */
  ids: ReadonlySet<string>;
  /** Event id -> the aggregate the consumer commits it under (customer, payment): the batch spread. */
  keyOf: ReadonlyMap<string, string>;
}

export interface FamilyPipelineOptions<S extends FeedSet> {
  ctx: BenchContext;
  /** Prefix of the progress lines. */
  name: string;
  webhook: { fn: FunctionModel; handler: WebhookHandler };
  consumer: { fn: FunctionModel; handler: ConsumerHandler; mapping: QueueConsumerModel };
  queueUrl: string;
  /** The table the family's ledger pages go to: their writes mark events committed. */
  ledgerTable: string;
  /** Log-capture labels of the two handlers. */
  logAs: { webhook: string; consumer: string };
  saturated: S;
  paced: S;
  /** Empty the queue first: other scenarios' webhooks may have routed messages to it. */
  purgeFirst?: boolean;
}

export interface PhaseResult {
  histories: number;
  /** Distinct aggregates (customers, payments) of the phase's events. */
  aggregates: number;
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
  webhookBilledDurationMs: number;
  /** From the phase's first webhook to its last first-time commit. */
  elapsedMs: number;
  eventsAppliedPerSecond: number;
  /** SQS SentTimestamp of an event's first delivery to its first commit. */
  lag: LatencySummary;
  /** Set when the queue had not drained when the wait ended. */
  timedOut: boolean;
  /** The consumer's batches in this phase: how many events of each aggregate one batch held. */
  batchSpread: BatchSpread;
}

/** What a family's run reports: the phases, the consumer, the usage, the logs. */
export interface FamilyResult {
  saturated: PhaseResult;
  /** Absent when the saturated phase did not drain: its rate is no basis for a load. */
  paced?: PhaseResult;
  pacedLoad: number;
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
  usage: AwsUsage;
  logBytes: { webhook: number; consumer: number };
  logLines: { webhook: number; consumer: number };
  /** First error-level log lines of each handler, to explain failures. */
  errorLogs: { webhook: string[]; consumer: string[] };
}

/** The result, and what the family needs to check what DynamoDB holds. */
export interface FamilyRun<S extends FeedSet> {
  result: FamilyResult;
  /** The sets whose phase ran, and their events. */
  ran: S[];
  expectedIds: Set<string>;
  /** Expected events committed at least once. */
  committed: number;
  /** Per event id, the successful ledger writes the meter saw. */
  commits: MeteredCommits;
}

export async function runFamilyPipeline<S extends FeedSet>(
  options: FamilyPipelineOptions<S>,
): Promise<FamilyRun<S>> {
  const { ctx, queueUrl, logAs } = options;
  const { sizes } = ctx;
  const { mapping } = options.consumer;

  // What the meter sees, keyed by event id.
  const firstSentAt = new Map<string, number>();
  const firstCommitAt = new Map<string, number>();
  const commits = emptyMeteredCommits();
  ctx.meter.ledgerTable = options.ledgerTable;
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
  // The phase being fed: its batches' spread over aggregates is measured as they arrive.
  let spread = new SpreadMeter();
  let keyOf: ReadonlyMap<string, string> = new Map();
  const consumer: ConsumerHandler = (event, context) =>
    ctx.capture.run(logAs.consumer, async () => {
      spread.add(
        event.Records.map((record) => {
          const eventId = record.messageAttributes.eventId?.stringValue;
          return eventId === undefined ? undefined : keyOf.get(eventId);
        }),
      );
      const started = performance.now();
      try {
        return await options.consumer.handler(event, context);
      } finally {
        consumerDurations.push(performance.now() - started);
        consumerRecords += event.Records.length;
      }
    });

  const webhookFn = localFunction(options.webhook.fn);
  const webhookDurations: number[] = [];
  let phaseWebhookDurations: number[] = [];
  const send = async (_i: number, event: APIGatewayProxyEventV2) => {
    const started = performance.now();
    const response = await ctx.capture.run(logAs.webhook, () =>
      options.webhook.handler(event, createLambdaContext(webhookFn)),
    );
    const ms = performance.now() - started;
    webhookDurations.push(ms);
    phaseWebhookDurations.push(ms);
    if (response?.statusCode !== 200) throw new Error(`webhook answered ${response?.statusCode}`);
  };
  // Built and signed outside the timed call: Stripe signs on its own machines.
  const signed = (deliveries: readonly string[]) => (i: number) => {
    const body = deliveries[i]!;
    return stripeWebhookEvent(body, signPayload(body, ctx.webhookSecret));
  };

  if (options.purgeFirst)
    await ctx.harness.sqs
      .send(new PurgeQueueCommand({ QueueUrl: queueUrl }))
      .catch(() => undefined);
  ctx.meter.reset();
  ctx.capture.reset();
  // A separate, metered client: the event source mapping's receives and deletes are billed requests.
  const pollerSqs = localSqs(ctx.endpoints.sqs);
  const poller = await startQueuePoller({
    sqs: pollerSqs,
    queueUrl,
    mapping,
    fn: localFunction(options.consumer.fn),
    handler: consumer,
  });

  const queued = async () => {
    const { Attributes } = await ctx.harness.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  };

  /** Feeds one set (closed loop, or at `rate` webhooks/s), then waits until it is committed and the queue is empty. */
  const runPhase = async (phase: string, set: S, rate?: number): Promise<PhaseResult> => {
    const name = `${options.name} ${phase}`;
    ctx.log(
      `${name}: ${set.histories} histories, ${set.ids.size} events, ${set.deliveries.length} webhooks` +
        (rate ? ` at ${rate.toFixed(1)} webhooks/s` : ''),
    );
    spread = new SpreadMeter();
    keyOf = set.keyOf;
    phaseWebhookDurations = [];
    const feedStart = Date.now();
    const total = set.deliveries.length;
    const feed = rate
      ? await runOpenLoop(send, { ratePerSecond: rate, total }, signed(set.deliveries))
      : await runClosedLoop(
          send,
          { concurrency: sizes.concurrency, total },
          signed(set.deliveries),
        );
    ctx.log(`${name}: ${feed.completed} webhooks acked in ${(feed.elapsedMs / 1000).toFixed(1)} s`);
    // Duplicates still queued cost consumer work too, so wait for the queue to empty as well.
    const deadline = Date.now() + (ctx.quick ? 60_000 : 180_000);
    let timedOut = false;
    for (;;) {
      const uncommitted = [...set.ids].filter((id) => !firstCommitAt.has(id)).length;
      const left = await queued();
      if (uncommitted === 0 && left === 0 && poller.stats().inFlight === 0) break;
      if (Date.now() > deadline) {
        timedOut = true;
        ctx.log(`${name}: gave up: ${uncommitted} events uncommitted, ${left} messages queued`);
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
      histories: set.histories,
      aggregates: new Set(set.keyOf.values()).size,
      uniqueEvents: set.ids.size,
      deliveries: total,
      duplicates: total - new Set(set.deliveries).size,
      ...(rate ? { targetWebhooksPerSecond: rate } : {}),
      feed: {
        acked: feed.completed,
        failed: feed.failed,
        elapsedMs: feed.elapsedMs,
        perSecond: feed.perSecond,
        ...(feed.firstError === undefined
          ? {}
          : { firstError: String(feed.firstError).slice(0, 300) }),
      },
      webhookBilledDurationMs: meanBilledDurationMs(phaseWebhookDurations),
      elapsedMs,
      eventsAppliedPerSecond: committed / (elapsedMs / 1000),
      lag: summarize(lags),
      timedOut,
      batchSpread: spread.summary(),
    };
  };

  const { saturated: saturatedSet, paced: pacedSet } = options;
  let saturated: PhaseResult;
  let paced: PhaseResult | undefined;
  try {
    saturated = await runPhase('saturated', saturatedSet);
    if (!saturated.timedOut && pacedSet.ids.size > 0) {
      // Webhooks per event > 1 (duplicates): convert the applied-events rate into a feed rate.
      const webhooksPerEvent = pacedSet.deliveries.length / pacedSet.ids.size;
      const rate = saturated.eventsAppliedPerSecond * sizes.pacedLoad * webhooksPerEvent;
      paced = await runPhase('paced', pacedSet, Math.max(1, rate));
    }
  } finally {
    await poller.stop({ drainTimeoutMs: 30_000 });
    pollerSqs.destroy();
  }
  const usage = ctx.meter.snapshot();
  ctx.meter.hooks = {};
  const stats = poller.stats();
  const ran = paced ? [saturatedSet, pacedSet] : [saturatedSet];
  const expectedIds = new Set(ran.flatMap((set) => [...set.ids]));
  const fn = options.consumer.fn;
  const both = <T>(of: (label: string) => T) => ({
    webhook: of(logAs.webhook),
    consumer: of(logAs.consumer),
  });
  const result: FamilyResult = {
    saturated,
    ...(paced ? { paced } : {}),
    pacedLoad: sizes.pacedLoad,
    uniqueEvents: expectedIds.size,
    webhooksAcked: saturated.feed.acked + (paced?.feed.acked ?? 0),
    duplicates: saturated.duplicates + (paced?.duplicates ?? 0),
    consumer: {
      invocations: consumerDurations.length,
      records: consumerRecords,
      meanRecordsPerInvocation: consumerRecords / Math.max(1, consumerDurations.length),
      meanDurationMs: mean(consumerDurations),
      billedDurationMs: meanBilledDurationMs(consumerDurations),
      failedBatches: stats.failedBatches,
      retriedRecords: stats.retried,
      memoryMb: fn.memoryMb,
      batchSize: mapping.batchSize,
      maximumConcurrency: mapping.maximumConcurrency,
      batchingWindowSeconds: mapping.maximumBatchingWindowSeconds,
    },
    webhookBilledDurationMs: meanBilledDurationMs(webhookDurations),
    usage,
    logBytes: both((label) => ctx.capture.bytesOf(label)),
    logLines: both((label) => ctx.capture.linesOf(label)),
    errorLogs: both((label) => ctx.capture.errorsOf(label)),
  };
  const committed = [...expectedIds].filter((id) => firstCommitAt.has(id)).length;
  return { result, ran, expectedIds, committed, commits };
}

// What the families' sections share.

/** The 1-tx-per-event baseline: measured before and, when given, right after the run, averaged. */
export function baselineRate(raw: RawLimits | undefined, rawAfter: RawRate | undefined) {
  return raw && rawAfter
    ? (raw.transactWrite.perSecond + rawAfter.perSecond) / 2
    : (raw?.transactWrite.perSecond ?? Number.NaN);
}

export function baselineNote(
  raw: RawLimits | undefined,
  rawAfter: RawRate | undefined,
  after: string,
): string {
  return (
    `Baseline: ${baselineRate(raw, rawAfter).toFixed(1)} events/s` +
    (raw && rawAfter
      ? ` (mean of ${raw.transactWrite.perSecond.toFixed(1)} before and ${rawAfter.perSecond.toFixed(1)} right after${after}).`
      : '.')
  );
}

/** p50 and p99 lag of one phase, against the batching window. */
export function lagFigures(
  run: Pick<FamilyResult, 'consumer'>,
  prefix: string,
  phase: PhaseResult,
  key: string,
  label: string,
): Figure[] {
  const windowMs = run.consumer.batchingWindowSeconds * 1000;
  return (['p50', 'p99'] as const).map((p) => ({
    id: `${prefix}.${key}.lag.${p}`,
    label: `processing lag ${p}, ${label}`,
    value: phase.lag[`${p}Ms`],
    unit: 'ms',
    ratio: { value: phase.lag[`${p}Ms`] / windowMs, to: 'batching window' },
  }));
}

/**
 * A note per phase (`note` writes one), or why the paced phase did not run. `fed` is the
 * part all families say the same way: events, webhooks, feed rate, timeout.
 */
export function phaseNotes(
  run: Pick<FamilyResult, 'saturated' | 'paced'>,
  note: (name: string, phase: PhaseResult, fed: string) => string,
): string[] {
  const fed = (p: PhaseResult) =>
    `${p.uniqueEvents} events, ${p.deliveries} webhooks (${p.duplicates} duplicates), ` +
    `fed ${p.feed.acked} ok / ${p.feed.failed} failed at ${p.feed.perSecond.toFixed(1)} webhooks/s` +
    (p.targetWebhooksPerSecond
      ? ` (target ${p.targetWebhooksPerSecond.toFixed(1)})`
      : ' (closed loop)') +
    (p.timedOut ? '; TIMED OUT draining, figures cover what finished' : '');
  return [
    note('Saturated', run.saturated, fed(run.saturated)),
    run.paced
      ? note('Paced', run.paced, fed(run.paced))
      : 'Paced phase skipped: the saturated phase did not drain.',
  ];
}

export function mappingNote(run: Pick<FamilyResult, 'consumer'>, withRecords = false) {
  const c = run.consumer;
  return (
    `Mapping: batch ${c.batchSize}, window ${c.batchingWindowSeconds} s, max concurrency ${c.maximumConcurrency}; ` +
    `${c.invocations} invocations${withRecords ? ` of ${c.meanRecordsPerInvocation.toFixed(1)} records` : ''}, ` +
    `${c.failedBatches} failed batches, ${c.retriedRecords} records retried.`
  );
}

/** Mismatch examples, handler error logs, `extra`, then each phase's first webhook failure. */
export function failureNotes(
  run: Pick<FamilyResult, 'saturated' | 'paced' | 'errorLogs'>,
  examples: readonly string[],
  extra: readonly string[] = [],
): string[] {
  const notes = examples.length > 0 ? [`mismatches, e.g. ${examples.join(', ')}`] : [];
  for (const line of [...run.errorLogs.webhook, ...run.errorLogs.consumer].slice(0, 2))
    notes.push(`handler error log: ${errorSummary(line)}`);
  notes.push(...extra);
  for (const p of run.paced ? [run.saturated, run.paced] : [run.saturated])
    if (p.feed.firstError) notes.push(`first webhook failure: ${p.feed.firstError}`);
  return notes;
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
