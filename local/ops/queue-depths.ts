/**
 * Samples the depth of the runtime's queues for the operations page: every
 * `intervalMs`, GetQueueAttributes (ApproximateNumberOfMessages + NotVisible, what the
 * deployed alarms and dashboard read) on every queue, recorded as gauges in one round
 * so the samples line up. A failed read (emulator stopping) skips that queue's sample.
 */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { LocalLog } from '../lambda-context.ts';
import type { OpsCollector } from './collector.ts';

export interface SampledQueue {
  /** The gauge key (the queue's local name). */
  key: string;
  url: string;
}

/** Messages waiting plus in flight. */
export type DepthReader = (queueUrl: string) => Promise<number>;

export function sqsDepthReader(sqs: SQSClient): DepthReader {
  return async (queueUrl) => {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(Attributes.ApproximateNumberOfMessages ?? 0) +
      Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  };
}

export interface QueueDepthSampler {
  /** Takes one round now (also what the timer does). */
  sample(): Promise<void>;
  /** Stops the timer and waits for a round in progress. */
  stop(): Promise<void>;
}

export function startQueueDepthSampler(options: {
  queues: readonly SampledQueue[];
  read: DepthReader;
  collector: Pick<OpsCollector, 'recordGauge' | 'now'>;
  /** Default 2000. */
  intervalMs?: number;
  log?: Pick<LocalLog, 'debug'>;
}): QueueDepthSampler {
  const { queues, read, collector, log } = options;
  const intervalMs = options.intervalMs ?? 2000;
  let round: Promise<void> | undefined;
  let stopped = false;

  const sample = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    round ??= (async () => {
      const at = collector.now();
      const depths = await Promise.all(
        queues.map((q) =>
          read(q.url).catch((error: unknown) => {
            log?.debug(`ops: depth of ${q.key} not read: ${(error as Error).message}`);
            return undefined;
          }),
        ),
      );
      if (stopped) return;
      queues.forEach((q, i) => {
        const depth = depths[i];
        if (depth !== undefined && Number.isFinite(depth)) collector.recordGauge(q.key, depth, at);
      });
    })().finally(() => {
      round = undefined;
    });
    return round;
  };

  const timer = setInterval(() => void sample(), intervalMs);
  timer.unref();
  void sample();
  return {
    sample,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await round;
    },
  };
}
