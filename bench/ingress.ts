/**
 * Ingress: the real webhook handler (the wired `handler` export, with its default
 * SQS client, Powertools middleware and env) fed signed Stripe payloads under the
 * same closed loop and concurrency as the raw SendMessage run, so the ratio says
 * what verification, parsing, middleware and logging cost on top of the enqueue.
 * Optionally also through the local runtime's HTTP server, to show what the HTTP
 * hop adds (not part of the target).
 */
import { cpus } from 'node:os';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createLambdaContext, type LambdaHandler, localFunction } from '../local/lambda-context.ts';
import { stripeWebhookEvent } from '../test/helpers/apigw-events.ts';
import type { StripeEventJson } from '../test/helpers/stripe-history.ts';
import { signPayload } from '../test/helpers/stripe-signing.ts';
import type { AwsUsage } from './aws-meter.ts';
import type { BenchContext } from './context.ts';
import { meanBilledDurationMs } from './cost-model.ts';
import { type ClosedLoopOptions, type ClosedLoopResult, runClosedLoop } from './load.ts';
import { subscriptionResources } from './provision.ts';
import type { RawLimits } from './raw-limits.ts';
import type { Figure, Section } from './report.ts';
import { type LatencySummary, median, summarize } from './stats.ts';

export type WebhookHandler = LambdaHandler<APIGatewayProxyEventV2, { statusCode?: number }>;

export interface IngressRun {
  acked: number;
  failed: number;
  ackedPerSecond: number;
  latency: LatencySummary;
  firstError?: string;
}

export interface IngressResult {
  concurrency: number;
  /** Raw SendMessage measured in slices alternating with the handler's, on the same machine state. */
  pairedRawSend?: {
    perSecond: number;
    latency: LatencySummary;
    rounds: number;
    /** Handler rate over raw rate in each round, to show how much the machine drifted. */
    roundRatios: number[];
  };
  inProcess: IngressRun & {
    /** Mean of per-invocation durations rounded up to 1 ms, as Lambda bills. */
    billedDurationMs: number;
    usagePerWebhook: AwsUsage;
    logBytesPerWebhook: number;
    logLinesPerWebhook: number;
  };
  http?: IngressRun & { url: string };
  httpSkipped?: string;
}

/** Bodies to send: real generated events, re-stamped with a unique id per request. */
export function makeBodySource(templates: readonly StripeEventJson[], runTag: string) {
  return (i: number): string => {
    const template = templates[i % templates.length]!;
    return JSON.stringify({ ...template, id: `evt_ing${runTag}${i}` });
  };
}

/** Slices of one measurement as if they were one run. */
export function mergeRuns(runs: readonly ClosedLoopResult[]): ClosedLoopResult {
  const completed = runs.reduce((n, r) => n + r.completed, 0);
  const elapsedMs = runs.reduce((n, r) => n + r.elapsedMs, 0);
  const firstError = runs.find((r) => r.firstError !== undefined)?.firstError;
  const latencies = new Float64Array(runs.reduce((n, r) => n + r.latenciesMs.length, 0));
  let offset = 0;
  for (const r of runs) {
    latencies.set(r.latenciesMs, offset);
    offset += r.latenciesMs.length;
  }
  return {
    completed,
    failed: runs.reduce((n, r) => n + r.failed, 0),
    elapsedMs,
    perSecond: completed / (elapsedMs / 1000),
    latenciesMs: latencies,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** "min / median / max" of per-round ratios. */
function spread(values: readonly number[]): string {
  const figures = [Math.min(...values), median(values), Math.max(...values)];
  return `${figures.map((v) => v.toFixed(2)).join(' / ')} (min / median / max)`;
}

function toRun(result: ClosedLoopResult): IngressRun {
  return {
    acked: result.completed,
    failed: result.failed,
    ackedPerSecond: result.perSecond,
    latency: summarize(result.latenciesMs),
    ...(result.firstError === undefined
      ? {}
      : { firstError: String(result.firstError).slice(0, 300) }),
  };
}

export interface IngressOptions {
  ctx: BenchContext;
  handler: WebhookHandler;
  templates: readonly StripeEventJson[];
  /** Base URL of the local runtime's HTTP server, when there is one. */
  httpBaseUrl?: string;
  /**
   * Plain SendMessage under the same loop. Given, the measured time is split into
   * rounds alternating raw and handler slices, so a change in machine load hits both.
   */
  rawSend?: (loop: ClosedLoopOptions) => Promise<ClosedLoopResult>;
  rounds?: number;
  httpSkipped?: string;
}

export async function measureIngress(options: IngressOptions): Promise<IngressResult> {
  const { ctx, handler } = options;
  const { webhook, queueLogicalId } = subscriptionResources(ctx.model);
  const queueUrl = ctx.provisioned.queueUrls[queueLogicalId]!;
  const loop = {
    concurrency: ctx.sizes.concurrency,
    durationMs: ctx.sizes.ingressDurationMs,
    // At least 2 s even in a quick run: the handler's code starts cold while the raw
    // SendMessage path is already warm from the raw limits.
    warmupMs: Math.max(ctx.sizes.warmupMs, 2_000),
  };
  const fn = localFunction(webhook);
  const body = makeBodySource(options.templates, Date.now().toString(36));

  ctx.log(`ingress in-process, ${loop.concurrency} concurrent`);
  const durations: number[] = [];
  let measuring = false;
  // Ids stay unique across the warm-up and every slice.
  let nextBody = 0;
  const sign = () => {
    const raw = body(nextBody++);
    return stripeWebhookEvent(raw, signPayload(raw, ctx.webhookSecret));
  };
  const invoke = async (event: APIGatewayProxyEventV2) => {
    const started = performance.now();
    const response = await ctx.capture.run('webhook', () =>
      handler(event, createLambdaContext(fn)),
    );
    if (measuring) durations.push(performance.now() - started);
    if (response?.statusCode !== 200) {
      throw new Error(
        `webhook answered ${response?.statusCode}: ${JSON.stringify(response).slice(0, 200)}`,
      );
    }
  };
  /**
   * One measured slice of the handler. Stripe builds and signs deliveries on its own
   * machines, so they are built before the slice starts (enough for 1.5x the raw rate
   * just measured; past that, built on the fly), so that the handler, like the raw
   * sends, does not share the cores with the load generator's JSON and HMAC work.
   */
  const handlerSlice = async (slice: ClosedLoopOptions, expectedPerSecond: number) => {
    const count = Math.ceil((expectedPerSecond * 1.5 * (slice.durationMs ?? 0)) / 1000);
    const deliveries = Array.from({ length: count + slice.concurrency }, sign);
    return runClosedLoop<APIGatewayProxyEventV2>(
      (_i, event) => invoke(event),
      slice,
      (i) => deliveries[i] ?? sign(),
    );
  };

  // Warm-up as its own run (it builds the clients and reads the secret), so the meter
  // and the log capture count only the measured calls.
  await runClosedLoop(
    (_i, event) => invoke(event),
    { concurrency: loop.concurrency, durationMs: loop.warmupMs },
    sign,
  );
  ctx.meter.reset();
  ctx.capture.reset();
  const rounds = options.rawSend ? Math.max(1, options.rounds ?? 2) : 1;
  const slice = { concurrency: loop.concurrency, durationMs: loop.durationMs / rounds };
  const handlerSlices: ClosedLoopResult[] = [];
  const rawSlices: ClosedLoopResult[] = [];
  // Without paired raw slices, the first slice's deliveries are sized from a generous guess.
  let expectedPerSecond = 1_000;
  for (let round = 0; round < rounds; round++) {
    if (options.rawSend) {
      const rawSlice = await options.rawSend(slice);
      rawSlices.push(rawSlice);
      expectedPerSecond = rawSlice.perSecond;
    }
    measuring = true;
    handlerSlices.push(await handlerSlice(slice, expectedPerSecond));
    measuring = false;
  }
  const inProcess = mergeRuns(handlerSlices);
  const usage = ctx.meter.snapshot();
  const acked = Math.max(1, inProcess.completed);
  const pairedRaw = rawSlices.length > 0 ? mergeRuns(rawSlices) : undefined;
  const result: IngressResult = {
    concurrency: loop.concurrency,
    ...(pairedRaw
      ? {
          pairedRawSend: {
            perSecond: pairedRaw.perSecond,
            latency: summarize(pairedRaw.latenciesMs),
            rounds,
            roundRatios: handlerSlices.map(
              (h, i) => h.perSecond / (rawSlices[i]?.perSecond ?? Number.NaN),
            ),
          },
        }
      : {}),
    inProcess: {
      ...toRun(inProcess),
      billedDurationMs: meanBilledDurationMs(durations),
      usagePerWebhook: usage,
      logBytesPerWebhook: ctx.capture.bytesOf('webhook') / acked,
      logLinesPerWebhook: ctx.capture.linesOf('webhook') / acked,
    },
  };

  if (options.httpBaseUrl) {
    const url = `${options.httpBaseUrl.replace(/\/$/, '')}/webhooks/stripe`;
    ctx.log(`ingress over HTTP (${url}), ${loop.concurrency} concurrent`);
    const post = async (raw: string) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'stripe-signature': signPayload(raw, ctx.webhookSecret),
        },
        body: raw,
      });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    };
    const http = await runClosedLoop((_i, raw) => post(raw), loop, body);
    result.http = { ...toRun(http), url };
  } else if (options.httpSkipped) {
    result.httpSkipped = options.httpSkipped;
  }

  // The pipeline scenario must start from an empty queue.
  await ctx.harness.sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
  return result;
}

export function ingressSection(result: IngressResult, raw: RawLimits | undefined): Section {
  // The paired measurement, when there is one: same machine state as the handler's.
  const rawSend = result.pairedRawSend ?? raw?.sendMessage;
  const rawRate = rawSend?.perSecond ?? Number.NaN;
  const rawP50 = rawSend?.latency.p50Ms ?? Number.NaN;
  const rawP99 = rawSend?.latency.p99Ms ?? Number.NaN;
  const r = result.inProcess;
  const figures: Figure[] = [
    {
      id: 'ingress.inProcess.ackedPerSecond',
      label: 'acked webhooks (in-process handler)',
      value: r.ackedPerSecond,
      unit: 'webhooks/s',
      ratio: {
        value: r.ackedPerSecond / rawRate,
        to: 'raw SendMessage/s',
        target: { op: '>=', value: 0.7 },
      },
    },
    {
      id: 'ingress.inProcess.p50',
      label: 'ack latency p50',
      value: r.latency.p50Ms,
      unit: 'ms',
      ratio: { value: r.latency.p50Ms / rawP50, to: 'raw SendMessage p50' },
    },
    {
      id: 'ingress.inProcess.p99',
      label: 'ack latency p99',
      value: r.latency.p99Ms,
      unit: 'ms',
      ratio: { value: r.latency.p99Ms / rawP99, to: 'raw SendMessage p99' },
    },
    {
      id: 'ingress.inProcess.sqsRequestsPerWebhook',
      label: 'SQS requests per webhook',
      value: (r.usagePerWebhook.sqs.requests.SendMessage ?? 0) / Math.max(1, r.acked),
      unit: 'req/webhook',
    },
    {
      id: 'ingress.inProcess.logBytesPerWebhook',
      label: 'log bytes per webhook (incl. EMF)',
      value: r.logBytesPerWebhook,
      unit: 'bytes/webhook',
    },
    {
      id: 'ingress.inProcess.billedDurationMs',
      label: `mean billed duration in-process, ${result.concurrency} concurrent`,
      value: r.billedDurationMs,
      unit: 'ms/invocation',
    },
  ];
  const notes = [
    `${r.acked} acked, ${r.failed} failed at ${result.concurrency} concurrent; handler, SQS emulator and load generator share this machine's ${cpus().length} cores.`,
  ];
  if (result.pairedRawSend && raw) {
    // Shown so the paired baseline can be checked against the standalone one.
    figures.splice(1, 0, {
      id: 'ingress.inProcess.ackedPerSecondToStandaloneRaw',
      label: 'acked webhooks, to the standalone raw limit (informational)',
      value: r.ackedPerSecond,
      unit: 'webhooks/s',
      ratio: {
        value: r.ackedPerSecond / raw.sendMessage.perSecond,
        to: 'raw SendMessage/s, standalone run',
      },
    });
    notes.push(
      `The standalone raw limit (${raw.sendMessage.perSecond.toFixed(1)} msg/s) ran first, after its own warm-up, before ` +
        'any handler code was loaded, without the log capture (whose AsyncLocalStorage makes every await dearer ' +
        "process-wide on Node 20) and on an empty queue. The paired slices share the handler's process state, so the target uses them.",
    );
  }
  if (result.pairedRawSend) {
    notes.push(
      `Ratios use raw SendMessage measured in ${result.pairedRawSend.rounds} slices alternating with the handler's: ` +
        `${result.pairedRawSend.perSecond.toFixed(1)} msg/s, p50 ${result.pairedRawSend.latency.p50Ms.toFixed(1)} ms; ` +
        `ratio per round ${spread(result.pairedRawSend.roundRatios)}.`,
    );
  }
  if (r.firstError) notes.push(`first failure: ${r.firstError}`);
  if (result.http) {
    const h = result.http;
    figures.push(
      {
        id: 'ingress.http.ackedPerSecond',
        label: 'acked webhooks (local runtime HTTP)',
        value: h.ackedPerSecond,
        unit: 'webhooks/s',
        ratio: { value: h.ackedPerSecond / rawRate, to: 'raw SendMessage/s' },
      },
      { id: 'ingress.http.p50', label: 'HTTP ack latency p50', value: h.latency.p50Ms, unit: 'ms' },
      { id: 'ingress.http.p99', label: 'HTTP ack latency p99', value: h.latency.p99Ms, unit: 'ms' },
    );
    notes.push(
      `HTTP: ${h.acked} acked, ${h.failed} failed${h.firstError ? ` (${h.firstError})` : ''}.`,
    );
  } else {
    notes.push(
      `HTTP through the local runtime: not measured (${result.httpSkipped ?? 'no runtime'}).`,
    );
  }
  return {
    id: 'ingress',
    title: 'Ingress (POST /webhooks/stripe, signed payloads)',
    figures,
    notes,
    detail: result,
  };
}
