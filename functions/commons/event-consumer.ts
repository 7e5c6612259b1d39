/**
 * The one SQS consumer shape every event family uses (event source mapping with
 * ReportBatchItemFailures): the whole batch goes to the family's use case (so one
 * aggregate's burst folds into one transaction); the Powertools batch processor then
 * turns per-record outcomes into the partial batch response: only failed records
 * are retried, and a record that keeps failing reaches the DLQ through the queue's
 * redrive policy. Duplicates, stale and unhandled event types are acknowledged.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Clock } from '../core/shared/clock.ts';
import { systemClock } from '../core/shared/clock.ts';
import type { QueuedEvent, RecordOutcome } from '../core/shared/event-batch.ts';
import { METRIC } from './metric-names.ts';
import type { BaseHandler } from './middleware.ts';
import {
  clearEventCorrelation,
  setEventCorrelation,
  logger as sharedLogger,
  metrics as sharedMetrics,
} from './powertools.ts';
import { toQueuedEvent } from './queue-message.ts';

export interface EventConsumerDeps {
  /** The family's use case: one outcome per record id. */
  apply: (events: readonly QueuedEvent[]) => Promise<Map<string, RecordOutcome>>;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

const OUTCOME_METRIC: Record<RecordOutcome['status'], string> = {
  applied: METRIC.eventsProcessed,
  stale: METRIC.eventsOutOfOrder,
  duplicate: METRIC.eventsDuplicate,
  ignored: METRIC.eventsIgnored,
  failed: METRIC.eventsFailed,
};

/** A consumer over explicit dependencies (a getter defers building them to the first call). */
export function createEventConsumer(
  deps: EventConsumerDeps | (() => EventConsumerDeps),
): BaseHandler<SQSEvent, SQSBatchResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event, context) => {
    const {
      apply,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    const outcomes = await apply(event.Records.map(toQueuedEvent));
    const committedAt = clock.now();

    const counts: Record<RecordOutcome['status'], number> = {
      applied: 0,
      stale: 0,
      duplicate: 0,
      ignored: 0,
      failed: 0,
    };
    for (const record of event.Records) {
      const outcome = outcomes.get(record.messageId);
      if (!outcome) continue;
      counts[outcome.status] += 1;
      if (outcome.status === 'applied') {
        const sentAt = Number(record.attributes?.SentTimestamp);
        if (Number.isFinite(sentAt) && sentAt > 0) {
          metrics.addMetric(METRIC.processingLag, MetricUnit.Milliseconds, committedAt - sentAt);
        }
        metrics.addMetric(
          METRIC.endToEndLag,
          MetricUnit.Milliseconds,
          Math.max(0, committedAt - outcome.created * 1000),
        );
      }
      if (outcome.status === 'failed') {
        if (outcome.eventId) setEventCorrelation(outcome.eventId, logger);
        logger.error('Event failed; the queue will redeliver it', {
          messageId: record.messageId,
          eventType: outcome.type,
          receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 0),
          error: outcome.error,
        });
        clearEventCorrelation(logger);
      }
    }
    for (const [status, count] of Object.entries(counts) as [RecordOutcome['status'], number][]) {
      if (count > 0) metrics.addMetric(OUTCOME_METRIC[status], MetricUnit.Count, count);
    }
    logger.info('Batch applied', { records: event.Records.length, ...counts });

    // Powertools builds the partial batch response (and throws when every record
    // failed, which makes Lambda retry the whole batch, as it would anyway).
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(
      event,
      (record: SQSRecord) => {
        const outcome = outcomes.get(record.messageId);
        if (!outcome) throw new Error(`no outcome for record ${record.messageId}`);
        if (outcome.status === 'failed') throw outcome.error;
      },
      processor,
      { context, throwOnFullBatchFailure: false },
    );
  };
}
