/**
 * The operations page of the local runtime, wired: a collector fed by the handlers'
 * metrics (tap on the shared Powertools `Metrics`) and by queue depth samples, the
 * figures document built from it, and the `/ops` routes serving both (and the
 * metrics per day, `/ops/metrics`, for `npm run ops -- stats`).
 *
 * `startOpsPage` must run after the handler modules were imported, so that the
 * shared Powertools module it taps is the one they use (and was evaluated with the
 * handlers' environment).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { LocalLog } from '../lambda-context.ts';
import type { StackModel } from '../stack-model.ts';
import { OpsCollector } from './collector.ts';
import { buildFigures, type FiguresDocument, type QueueSpec } from './figures.ts';
import { addEmfSink, tapMetrics } from './metrics-tap.ts';
import { createOpsRoutes, type LocalPageHandler } from './ops-routes.ts';
import { type QueueDepthSampler, sqsDepthReader, startQueueDepthSampler } from './queue-depths.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The module every handler takes its `metrics` from. */
const SHARED_POWERTOOLS = join(REPO_ROOT, 'functions', 'commons', 'powertools.ts');

export interface OpsPageOptions {
  model: Pick<StackModel, 'queues'>;
  queueUrls: Readonly<Record<string, string>>;
  sqs: SQSClient;
  /** The schedules' clock, for the slots of the day. */
  dayClock: () => number;
  /** How often the page polls `/ops/figures`. Default 2000. */
  refreshMs?: number;
  /** How often queue depths are sampled. Default 2000. */
  sampleIntervalMs?: number;
  /** Per-second window kept. Default 900 s. */
  windowSeconds?: number;
  /**
   * Where the day-long figures (slot counts, per-day metrics) are kept across a restart:
   * read at start, written at stop. Unset (in-memory runtime): nothing is kept.
   */
  daysFile?: string;
  log: LocalLog;
}

export interface OpsPage {
  readonly handler: LocalPageHandler;
  readonly collector: OpsCollector;
  figures(): FiguresDocument;
  /** Stops sampling and listening to the handlers' metrics. */
  stop(): Promise<void>;
}

/** Consumed queues and DLQs of the stack, labelled for the plots; keys are local queue names. */
export function queueSpecs(
  model: Pick<StackModel, 'queues'>,
  queueUrls: Readonly<Record<string, string>>,
): {
  queues: Array<QueueSpec & { url: string }>;
  deadLetterQueues: Array<QueueSpec & { url: string }>;
} {
  const spec = (logicalId: string) => {
    const queue = model.queues.find((q) => q.logicalId === logicalId)!;
    const short = queue.localName.replace(/^billing-suite-/, '');
    // Names CDK made up end in the logical id's hash: the logical id reads better.
    const label = /[0-9a-f]{8}$/.test(short) ? logicalId.replace(/[0-9A-F]{8}$/, '') : short;
    return { key: queue.localName, label, url: queueUrls[logicalId] ?? '' };
  };
  const sources = model.queues.filter((q) => q.deadLetter);
  const sourceIds = new Set(sources.map((q) => q.logicalId));
  return {
    queues: sources.map((q) => spec(q.logicalId)),
    deadLetterQueues: model.queues
      .filter((q) => !sourceIds.has(q.logicalId))
      .map((q) => spec(q.logicalId)),
  };
}

export async function startOpsPage(options: OpsPageOptions): Promise<OpsPage> {
  const { metrics } = (await import(pathToFileURL(SHARED_POWERTOOLS).href)) as {
    metrics: Parameters<typeof tapMetrics>[0];
  };
  tapMetrics(metrics);
  const collector = new OpsCollector({
    dayClock: options.dayClock,
    ...(options.windowSeconds ? { windowSeconds: options.windowSeconds } : {}),
  });
  if (options.daysFile) await restoreDays(collector, options.daysFile, options.log);
  const removeSink = addEmfSink((document) => collector.recordEmf(document));
  const specs = queueSpecs(options.model, options.queueUrls);
  const sampler: QueueDepthSampler = startQueueDepthSampler({
    queues: [...specs.queues, ...specs.deadLetterQueues].filter((q) => q.url),
    read: sqsDepthReader(options.sqs),
    collector,
    intervalMs: options.sampleIntervalMs ?? 2000,
    log: options.log,
  });
  const figures = () =>
    buildFigures(collector, {
      queues: specs.queues,
      deadLetterQueues: specs.deadLetterQueues,
      refreshMs: options.refreshMs ?? 2000,
    });
  return {
    handler: createOpsRoutes({
      figures,
      metrics: () => collector.dailyMetrics(),
      log: options.log,
    }),
    collector,
    figures,
    async stop() {
      removeSink();
      await sampler.stop();
      if (options.daysFile) await saveDays(collector, options.daysFile, options.log);
    },
  };
}

/** The day-long figures of the last run, if it kept any; a file not of that shape is set aside. */
async function restoreDays(collector: OpsCollector, file: string, log: LocalLog): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    collector.restoreDays(JSON.parse(text));
  } catch (error) {
    // The plots start empty rather than the runtime not starting; the file stays for a look.
    await rename(file, `${file}.unreadable`);
    log.warn(
      `The operations page's figures of the last run could not be read (${(error as Error).message}); moved to ${file}.unreadable`,
    );
  }
}

async function saveDays(collector: OpsCollector, file: string, log: LocalLog): Promise<void> {
  try {
    // Write then rename: a stop cut short never leaves half a file.
    await writeFile(`${file}.tmp`, `${JSON.stringify(collector.exportDays())}\n`);
    await rename(`${file}.tmp`, file);
  } catch (error) {
    log.error("Saving the operations page's figures of the day failed", error);
  }
}
