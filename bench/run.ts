/**
 * `npm run bench` (full, < ~10 min) and `npm run bench:quick` (CI-sized, < ~2 min).
 *
 * One run on this machine: starts DynamoDB Local and fauxqs, creates the stack
 * model's tables and queues, measures the emulators' raw limits, then ingress, the
 * pipeline, the store stage, payments, cold starts, and the cost per million webhooks
 * (subscriptions and payments); prints a table and
 * writes bench/results/<timestamp>.json and bench/results/latest.json.
 *
 * Options: --quick; --only=raw,ingress,pipeline,store,payments,credits,penalties,fallback,coldStart (cost needs ingress
 * and pipeline); --out=<dir> (default bench/results).
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { foldFacts } from '../functions/core/subscriptions/customer-account.ts';
import {
  emulatorClients,
  LOCAL_CREDENTIALS,
  type RunningEmulator,
  startDynamoDbLocal,
  startSqsEmulator,
} from '../local/emulators.ts';
import { localFunction } from '../local/lambda-context.ts';
import { type FunctionModel, loadStackModel } from '../local/stack-model.ts';
import {
  generateHistory,
  HISTORY_PRICE_TIER_MAP,
  historyFacts,
  type StripeEventJson,
} from '../test/helpers/stripe-history.ts';
import { TEST_WEBHOOK_SECRET } from '../test/helpers/stripe-signing.ts';
import { AwsMeter } from './aws-meter.ts';
import { coldStartSection, type FunctionColdStart, measureColdStarts } from './cold-start.ts';
import { coldStartPlans } from './cold-start-plans.ts';
import {
  applyInProcessEnv,
  type BenchContext,
  FULL_SIZES,
  functionEnv,
  QUICK_SIZES,
} from './context.ts';
import { costSection, paymentsCostSection } from './cost-report.ts';
import { creditsSection, measureCredits } from './credits.ts';
import { valueSize } from './dynamo-capacity.ts';
import type { ConsumerHandler } from './family-pipeline.ts';
import {
  type IngressResult,
  ingressSection,
  measureIngress,
  type WebhookHandler,
} from './ingress.ts';
import { LogCapture, progress } from './log-capture.ts';
import { measurePaymentReads } from './payment-reads.ts';
import { measurePaymentsEndToEnd, type PaymentsEndToEnd, paymentsSection } from './payments.ts';
import { measurePenalties, penaltiesSection } from './penalties.ts';
import { measurePipeline, type PipelineResult, pipelineSection } from './pipeline.ts';
import { paymentResources, provisionStack, subscriptionResources } from './provision.ts';
import {
  createRawProbe,
  measureRawLimits,
  type RawLimits,
  rate,
  rawLimitsSection,
} from './raw-limits.ts';
import {
  type BenchReport,
  checkTargets,
  machineInfo,
  renderTable,
  type Section,
  writeReport,
} from './report.ts';
import { measureStoreStage, type StoreStageResult, storeStageSection } from './store-stage.ts';
import {
  measureSubscriptionFallback,
  subscriptionFallbackSection,
} from './subscription-fallback.ts';

const SCENARIOS = [
  'raw',
  'ingress',
  'pipeline',
  'store',
  'payments',
  'credits',
  'penalties',
  'fallback',
  'coldStart',
] as const;
type Scenario = (typeof SCENARIOS)[number];

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: resolve(repoRoot, 'bench/results') },
    },
  });
  const only = values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of only ?? []) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new Error(`--only: unknown scenario "${name}" (one of ${SCENARIOS.join(', ')})`);
    }
  }
  return {
    quick: values.quick ?? false,
    scenarios: new Set<Scenario>((only as Scenario[] | undefined) ?? SCENARIOS),
    out: values.out ?? resolve(repoRoot, 'bench/results'),
  };
}

/** Event templates the ingress run re-stamps: a realistic mix of types and sizes. */
function ingressTemplates(): StripeEventJson[] {
  const events: StripeEventJson[] = [];
  for (let seed = 1; events.length < 200; seed++)
    events.push(...generateHistory(seed, { prefix: 'tpl' }).events);
  return events;
}

/** Size of a typical stored account: one generated history folded by the domain. */
function sampleAccountBytes(): number {
  const history = generateHistory(7, { prefix: 'size' });
  return valueSize(foldFacts(history.customerId, historyFacts(history)), false);
}

function failedSection(id: string, title: string, error: unknown): Section {
  const message = error instanceof Error ? error.message : String(error);
  progress(`${title} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
  return { id, title, figures: [], notes: [], skipped: `failed: ${message.split('\n')[0]}` };
}

async function main(): Promise<void> {
  // The pinned SDK supports Node 20; its notice is about releases after January 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = parseOptions();
  const started = new Date();
  const sizes = options.quick ? QUICK_SIZES : FULL_SIZES;
  progress(`${options.quick ? 'quick' : 'full'} run: ${[...options.scenarios].join(', ')}`);

  // The history generator's silver price has no metadata tier; the map is the deploy-time config for it.
  const model = loadStackModel({ context: { priceTierMap: HISTORY_PRICE_TIER_MAP } });
  progress('starting DynamoDB Local and fauxqs');
  const emulators: RunningEmulator[] = [];
  const stopAll = async () => {
    await Promise.allSettled(emulators.splice(0).map((e) => e.stop()));
  };
  const onSignal = () => {
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const sections: Section[] = [];
  const meter = new AwsMeter();
  const capture = new LogCapture();
  try {
    const [dynamo, sqs] = await Promise.all([startDynamoDbLocal(), startSqsEmulator()]);
    emulators.push(dynamo, sqs);
    const endpoints = { dynamo: dynamo.endpoint, sqs: sqs.endpoint };
    const harness = emulatorClients(endpoints);
    meter.install();
    meter.exclude(harness.dynamo);
    meter.exclude(harness.sqs);
    const provisioned = await provisionStack(model, harness);
    const ctx: BenchContext = {
      quick: options.quick,
      sizes,
      repoRoot,
      model,
      endpoints,
      harness,
      provisioned,
      meter,
      capture,
      webhookSecret: TEST_WEBHOOK_SECRET,
      log: progress,
    };
    const resources = subscriptionResources(model);
    const templates = ingressTemplates();

    /** Runs one scenario, timed; a failure becomes a section saying why, and the run goes on. */
    const scenario = async (id: string, title: string, run: () => Promise<Section>) => {
      const t0 = Date.now();
      let section: Section;
      try {
        section = await run();
      } catch (error) {
        section = failedSection(id, title, error);
      }
      section.durationSeconds = (Date.now() - t0) / 1000;
      sections.push(section);
    };

    const sampleBodies = templates.map((t) => JSON.stringify(t));
    const accountPayloadBytes = sampleAccountBytes();
    // The raw operations, also re-run next to the scenarios so their ratios compare like with like.
    const probe = await createRawProbe({
      model,
      clients: harness,
      sampleBodies,
      accountPayloadBytes,
    });
    let raw: RawLimits | undefined;
    if (options.scenarios.has('raw')) {
      await scenario('raw', 'Raw emulator limits', async () => {
        raw = await measureRawLimits(probe, {
          concurrency: sizes.concurrency,
          durationMs: sizes.rawDurationMs,
          warmupMs: sizes.warmupMs,
          sampleBodies,
          accountPayloadBytes,
          log: progress,
        });
        return rawLimitsSection(raw);
      });
    }

    // Handlers read their env on first use and Powertools at import: set it, then import.
    applyInProcessEnv(ctx, [
      resources.webhook,
      resources.consumer,
      ...(options.scenarios.has('payments') ? [paymentResources(model).consumer] : []),
    ]);
    const importHandler = async <T>(fn: FunctionModel): Promise<T> => {
      const module = (await import(pathToFileURL(resolve(repoRoot, fn.entry)).href)) as Record<
        string,
        unknown
      >;
      const handler = module[fn.exportName];
      if (typeof handler !== 'function')
        throw new Error(`${fn.entry} exports no function ${fn.exportName}`);
      return handler as T;
    };
    capture.install();
    let ingress: IngressResult | undefined;
    let pipeline: PipelineResult | undefined;
    let storeWorstCase: StoreStageResult | undefined;
    let paymentsE2e: PaymentsEndToEnd | undefined;
    try {
      if (options.scenarios.has('ingress')) {
        await scenario('ingress', 'Ingress', async () => {
          const handler = await importHandler<WebhookHandler>(resources.webhook);
          const http = await startWebhookHttp(ctx, handler);
          try {
            ingress = await measureIngress({
              ctx,
              handler,
              templates,
              rawSend: (loop) => probe.sendMessage(loop),
              rounds: sizes.ingressRounds,
              ...http.options,
            });
          } finally {
            await http.close();
          }
          return ingressSection(ingress, raw);
        });
      }
      if (options.scenarios.has('pipeline')) {
        await scenario('pipeline', 'Pipeline', async () => {
          pipeline = await measurePipeline({
            ctx,
            webhook: await importHandler<WebhookHandler>(resources.webhook),
            consumer: await importHandler<ConsumerHandler>(resources.consumer),
          });
          progress('raw TransactWriteItems again, right after the pipeline');
          const after = rate(
            await probe.transactWrite({
              concurrency: sizes.concurrency,
              durationMs: sizes.rawDurationMs / 2,
            }),
          );
          return pipelineSection(pipeline, raw, raw ? after : undefined);
        });
      }
      if (options.scenarios.has('store')) {
        await scenario('store', 'Consumer store stage', async () => {
          const common = { histories: sizes.storeHistories, baselineMs: sizes.storeBaselineMs };
          // Bursty order (the target figures): one batch in flight, then the mapping's
          // maximum concurrency; then the uniform order at that concurrency (worst case).
          const results = [
            await measureStoreStage(ctx, probe, { ...common, order: 'bursty', concurrency: 1 }),
            await measureStoreStage(ctx, probe, { ...common, order: 'bursty' }),
            await measureStoreStage(ctx, probe, { ...common, order: 'uniform' }),
          ];
          storeWorstCase = results[2];
          return storeStageSection(results);
        });
      }
      if (options.scenarios.has('payments')) {
        await scenario('payments', 'Payments', async () => {
          const { webhook, consumer } = paymentResources(model);
          const e2e = await measurePaymentsEndToEnd({
            ctx,
            webhook: await importHandler<WebhookHandler>(webhook),
            consumer: await importHandler<ConsumerHandler>(consumer),
          });
          paymentsE2e = e2e;
          progress('raw TransactWriteItems again, right after the payment pipeline');
          const after = rate(
            await probe.transactWrite({
              concurrency: sizes.concurrency,
              durationMs: sizes.rawDurationMs / 2,
            }),
          );
          const reads = await measurePaymentReads(ctx);
          return paymentsSection({ e2e, reads }, raw, raw ? after : undefined, pipeline);
        });
      }
      if (options.scenarios.has('credits')) {
        await scenario('credits', 'Credits', async () => creditsSection(await measureCredits(ctx)));
      }
      if (options.scenarios.has('penalties')) {
        await scenario('penalties', 'Penalties', async () =>
          penaltiesSection(await measurePenalties(ctx)),
        );
      }
      if (options.scenarios.has('fallback')) {
        await scenario('fallback', 'Stripe fallback', async () =>
          subscriptionFallbackSection(await measureSubscriptionFallback(ctx)),
        );
      }
    } finally {
      capture.uninstall();
    }

    let coldStarts: FunctionColdStart[] | undefined;
    if (options.scenarios.has('coldStart')) {
      await scenario('coldStart', 'Cold start', async () => {
        coldStarts = await measureColdStarts({
          repoRoot,
          model,
          samples: sizes.coldStartSamples,
          envFor: (fn) => ({
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '',
            ...functionEnv(fn, ctx),
          }),
          plans: coldStartPlans(ctx, {
            templates,
            ...(pipeline
              ? {
                  consumerBatchRecords: pipeline.consumer.meanRecordsPerInvocation,
                  knownUserIds: pipeline.sampleUserIds,
                }
              : {}),
          }),
          log: progress,
        });
        return coldStartSection(coldStarts, sizes.coldStartSamples);
      });
    }

    if (options.scenarios.has('ingress') || options.scenarios.has('pipeline')) {
      await scenario('cost', 'Cost per million webhooks', async () => {
        if (!ingress || !pipeline) {
          return {
            id: 'cost',
            title: 'Cost per million webhooks',
            figures: [],
            notes: [],
            skipped: 'needs both the ingress and the pipeline results',
          };
        }
        return costSection({
          model,
          ingress,
          pipeline,
          ...(coldStarts ? { coldStarts } : {}),
          ...(storeWorstCase ? { storeWorstCase } : {}),
        });
      });
    }
    if (paymentsE2e) {
      const e2e = paymentsE2e;
      await scenario('paymentsCost', 'Cost per million payment webhooks', async () =>
        paymentsCostSection(model, e2e, coldStarts),
      );
    }
  } finally {
    meter.uninstall();
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const finished = new Date();
  const report: BenchReport = {
    schemaVersion: 1,
    mode: options.quick ? 'quick' : 'full',
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationSeconds: (finished.getTime() - started.getTime()) / 1000,
    sizes: { ...sizes },
    machine: machineInfo(),
    sections,
    targets: checkTargets(sections),
  };
  const path = await writeReport(report, options.out, repoRoot);
  process.stdout.write(`${renderTable(report)}\n\nResults: ${path} (and latest.json beside it)\n`);
}

/**
 * The webhook behind the local runtime's HTTP server (the real route model, minus
 * the route's throttle, which would cap the measurement at the deployed 100 req/s).
 */
async function startWebhookHttp(ctx: BenchContext, handler: WebhookHandler) {
  const { webhook } = subscriptionResources(ctx.model);
  const route = ctx.model.routes.find((r) => r.functionLogicalId === webhook.logicalId);
  let server: { url: string; close(): Promise<void> } | undefined;
  let skipped: string | undefined;
  try {
    const { startHttpServer } = await import('../local/http-server.ts');
    if (!route) throw new Error('the stack model has no route to the webhook');
    server = await startHttpServer({
      routes: [
        {
          method: route.method,
          path: route.path,
          authorization: route.authorization,
          fn: localFunction(webhook),
          handler: (event, context) =>
            ctx.capture.run('webhook-http', () => handler(event, context)),
        },
      ],
    });
  } catch (error) {
    skipped = error instanceof Error ? error.message : String(error);
  }
  return {
    options: server ? { httpBaseUrl: server.url } : { httpSkipped: skipped ?? 'unavailable' },
    close: async () => {
      await server?.close();
    },
  };
}

// Credentials for any default client built before the env is applied.
process.env.AWS_ACCESS_KEY_ID ??= LOCAL_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY ??= LOCAL_CREDENTIALS.secretAccessKey;
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE ??= '1';

main().then(
  () => process.exit(0),
  (error: unknown) => {
    progress(
      `benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exit(1);
  },
);
