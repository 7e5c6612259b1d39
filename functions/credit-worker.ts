/**
 * SQS consumer of the credit refresh work (event source mapping with
 * ReportBatchItemFailures): each message holds up to 25 users; every user is refreshed
 * with one conditional write (`refreshCredits`), so a redelivered message changes
 * nothing for the users already done. A message with a user that failed is reported
 * as a batch item failure; after the queue's maximum receives it lands in the DLQ.
 * The record's receive count against that maximum tells `refreshCredits` which failures
 * are final and which users an earlier receive already counted, so the stats count users.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import { decodeRefreshMessage } from './adapters/sqs/sqs-refresh-queue.ts';
import { creditStoreFromEnv } from './commons/credit-wiring.ts';
import { configEnv, creditAllowancesEnv, lazyEnv } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import type { CreditAllowances } from './core/credits/allowances.ts';
import type { CreditRunLog, CreditStore, RefreshWork } from './core/credits/ports.ts';
import { type Delivery, refreshCredits } from './core/credits/refresh-credits.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';
import { asError } from './core/shared/errors.ts';

export interface CreditWorkerDeps {
  store: CreditStore & CreditRunLog;
  allowances: CreditAllowances;
  /** The refresh queue's maxReceiveCount: a failure on that receive is final (DLQ next). */
  maxReceiveCount: number;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

/** The worker over explicit dependencies (a getter defers building them to the first call). */
export function createCreditWorker(
  deps: CreditWorkerDeps | (() => CreditWorkerDeps),
): BaseHandler<SQSEvent, SQSBatchResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event, context) => {
    const {
      store,
      allowances,
      maxReceiveCount,
      clock = systemClock,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    const failedRecords = new Map<string, Error>();
    const deliveries = new Map(
      event.Records.map((record) => [record.messageId, deliveryOf(record, maxReceiveCount)]),
    );
    const works: { recordId: string; work: RefreshWork }[] = [];
    for (const record of event.Records) {
      try {
        for (const work of decodeRefreshMessage(record.body)) {
          works.push({ recordId: record.messageId, work });
        }
      } catch (error) {
        failedRecords.set(record.messageId, asError(error));
      }
    }
    const { results, outcomes } = await refreshCredits(
      works.map(({ work }) => work),
      { store, runLog: store, allowances, clock },
      works.map(({ recordId }) => deliveries.get(recordId)!),
    );
    results.forEach((result, index) => {
      const { recordId } = works[index]!;
      if (result.result === 'failed' && !failedRecords.has(recordId)) {
        failedRecords.set(
          recordId,
          new Error(`refresh of ${result.work.userId} failed: ${result.error}`),
        );
      }
    });
    metrics.addMetric(METRIC.creditsRefreshed, MetricUnit.Count, outcomes.refreshed);
    metrics.addMetric(METRIC.creditsSkipped, MetricUnit.Count, outcomes.skipped);
    metrics.addMetric(METRIC.creditsFailed, MetricUnit.Count, outcomes.failed);
    logger.info('Credit refresh batch', {
      records: event.Records.length,
      users: works.length,
      refreshed: outcomes.refreshed,
      skipped: outcomes.skipped,
      failed: outcomes.failed,
    });
    for (const [messageId, error] of failedRecords) {
      logger.error(
        deliveries.get(messageId)?.final
          ? 'Credit refresh work failed on its last receive; it goes to the DLQ'
          : 'Credit refresh work failed; the queue will redeliver it',
        { messageId, error },
      );
    }

    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(
      event,
      (record: SQSRecord) => {
        const error = failedRecords.get(record.messageId);
        if (error) throw error;
      },
      processor,
      { context, throwOnFullBatchFailure: false },
    );
  };
}

/** Which receive of its message a record is (a missing count reads as the first). */
export function deliveryOf(record: SQSRecord, maxReceiveCount: number): Delivery {
  const receiveCount = Number(record.attributes?.ApproximateReceiveCount) || 1;
  return { redelivered: receiveCount > 1, final: receiveCount >= maxReceiveCount };
}

/** SQS's range for a redrive policy's maxReceiveCount; required: the stack always sets it. */
export function parseMaxReceiveCount(value: string | undefined): number {
  const count = Number(value);
  if (!value || !Number.isInteger(count) || count < 1 || count > 1000) {
    throw new Error(`expected a whole number from 1 to 1000, got ${JSON.stringify(value)}`);
  }
  return count;
}

const workerEnv = lazyEnv(
  z.object({
    [ENV.creditAllowances]: creditAllowancesEnv(),
    [ENV.creditRefreshMaxReceiveCount]: configEnv(parseMaxReceiveCount),
  }),
);

export const handler = withPowertools(
  createCreditWorker(() => ({
    store: creditStoreFromEnv(),
    allowances: workerEnv()[ENV.creditAllowances],
    maxReceiveCount: workerEnv()[ENV.creditRefreshMaxReceiveCount],
  })),
);
