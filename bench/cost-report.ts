/**
 * Turns the measured figures into cost per million webhooks: requests, capacity
 * and log bytes per webhook from the pipeline run, or the payments run (duplicates included, since Stripe
 * bills nothing but AWS bills every delivery), Lambda durations from sequential warm
 * invocations in a fresh process when the cold-start run has them (closest to one
 * Lambda instance serving one request), else from the in-process runs, which share
 * two cores between 16 concurrent calls and so overstate per-call time.
 */
import type { StackModel } from '../local/stack-model.ts';
import type { FunctionColdStart } from './cold-start.ts';
import {
  type CostBreakdown,
  costPerMillionWebhooks,
  gbSeconds,
  type PriceTable,
  US_EAST_1_PRICES,
  US_EAST_1_PRICES_PRE_NOV_2024,
  type UsagePerWebhook,
} from './cost-model.ts';
import type { FamilyResult } from './family-pipeline.ts';
import type { IngressResult } from './ingress.ts';
import type { PaymentsEndToEnd } from './payments.ts';
import type { PipelineResult } from './pipeline.ts';
import { paymentResources, subscriptionResources } from './provision.ts';
import { type Figure, formatNumber, type Section } from './report.ts';
import type { StoreStageResult } from './store-stage.ts';

export interface CostInputs {
  model: StackModel;
  ingress: IngressResult;
  pipeline: PipelineResult;
  coldStarts?: FunctionColdStart[];
  /** The isolated store stage's uniform-order run: its DynamoDB usage gives the worst-case total. */
  storeWorstCase?: StoreStageResult;
}

export const COST_TARGET_USD_PER_MILLION = 3;

type FamilyUsage = Pick<FamilyResult, 'webhooksAcked' | 'consumer' | 'usage' | 'logBytes'>;

/** Mean billed ms of a function's sequential warm invocations in the cold-start run, when it ran clean. */
function warmBilledMs(coldStarts: FunctionColdStart[] | undefined, logicalId: string) {
  return coldStarts?.find(
    (c) => c.logicalId === logicalId && !c.error && (c.failedInvocations ?? 0) === 0,
  )?.warmBilledDurationMs;
}

/** Usage per webhook of one family's run (duplicates included): its webhook and consumer Lambdas, SQS, DynamoDB, logs. */
function familyUsage(
  run: FamilyUsage,
  webhook: { memoryMb: number; ms: number },
  consumer: { name: string; memoryMb: number; ms: number },
  indexWru = 0,
): UsagePerWebhook {
  const webhooks = Math.max(1, run.webhooksAcked);
  const d = run.usage.dynamo;
  return {
    apiRequests: 1,
    lambdas: [
      {
        name: 'webhook',
        memoryMb: webhook.memoryMb,
        invocationsPerWebhook: 1,
        billedDurationMs: webhook.ms,
      },
      {
        name: consumer.name,
        memoryMb: consumer.memoryMb,
        invocationsPerWebhook: run.consumer.invocations / webhooks,
        billedDurationMs: consumer.ms,
      },
    ],
    sqsBilledRequests: run.usage.sqs.billedRequests / webhooks,
    dynamoWru: (d.wru + indexWru) / webhooks,
    dynamoRejectedWru: d.rejectedWru / webhooks,
    dynamoRru: d.rru / webhooks,
    logBytes: (run.logBytes.webhook + run.logBytes.consumer) / webhooks,
  };
}

/** A figure per cost line, then the total against the aim. */
function costFigures(prefix: string, cost: CostBreakdown, totalLabel: string): Figure[] {
  const total = cost.totalUsdPerMillion;
  return [
    ...cost.lines.map((line) => ({
      id: `${prefix}.${line.service.replace(/[^A-Za-z]+/g, '')}`,
      label: line.service,
      value: line.usdPerMillion,
      unit: '$/M webhooks',
      ratio: { value: line.usdPerMillion / total, to: 'total' },
    })),
    {
      id: `${prefix}.total`,
      label: totalLabel,
      value: total,
      unit: '$/M webhooks',
      ratio: {
        value: total / COST_TARGET_USD_PER_MILLION,
        to: `$${COST_TARGET_USD_PER_MILLION} aim`,
      },
      target: { op: '<', value: COST_TARGET_USD_PER_MILLION },
    },
  ];
}

export function usagePerWebhook(inputs: CostInputs): {
  usage: UsagePerWebhook;
  durationSource: string[];
} {
  const { pipeline, ingress, model } = inputs;
  const { webhook, consumer } = subscriptionResources(model);
  const webhookWarm = warmBilledMs(inputs.coldStarts, webhook.logicalId);
  const consumerWarm = warmBilledMs(inputs.coldStarts, consumer.logicalId);
  const webhookMs = webhookWarm ?? ingress.inProcess.billedDurationMs;
  const consumerMs = consumerWarm ?? pipeline.consumer.billedDurationMs;
  const durationSource = [
    `webhook ${formatNumber(webhookMs)} ms/invocation (${webhookWarm !== undefined ? 'sequential warm invocations, fresh process' : 'in-process ingress run'}; in-process at ${ingress.concurrency} concurrent: ${formatNumber(ingress.inProcess.billedDurationMs)} ms)`,
    `consumer ${formatNumber(consumerMs)} ms/invocation of ~${formatNumber(pipeline.consumer.meanRecordsPerInvocation)} records (${consumerWarm !== undefined ? 'sequential warm invocations, fresh process' : 'in-process pipeline run'}; in the pipeline: ${formatNumber(pipeline.consumer.billedDurationMs)} ms)`,
  ];
  return {
    usage: familyUsage(
      pipeline,
      { memoryMb: webhook.memoryMb, ms: webhookMs },
      { name: 'consumer', memoryMb: consumer.memoryMb, ms: consumerMs },
    ),
    durationSource,
  };
}

function priceNotes(prices: PriceTable): string {
  return (
    `Prices (us-east-1 list): API Gateway HTTP $${prices.apiGatewayHttpPerMillionRequests}/M requests; ` +
    `Lambda $${prices.lambdaPerMillionRequests}/M requests + $${prices.lambdaArmPerGbSecond}/GB-s (arm64); ` +
    `SQS standard $${prices.sqsStandardPerMillionRequests}/M requests (64 KiB chunks); ` +
    `DynamoDB on-demand $${prices.dynamoPerMillionWru}/M WRU, $${prices.dynamoPerMillionRru}/M RRU ` +
    `(before Nov 2024: $${US_EAST_1_PRICES_PRE_NOV_2024.dynamoPerMillionWru}/$${US_EAST_1_PRICES_PRE_NOV_2024.dynamoPerMillionRru}); ` +
    `CloudWatch Logs ingestion $${prices.logsIngestionPerGb}/GB (10^9 bytes).`
  );
}

export function costSection(inputs: CostInputs): Section {
  const { usage, durationSource } = usagePerWebhook(inputs);
  const current = costPerMillionWebhooks(usage, US_EAST_1_PRICES);
  const before = costPerMillionWebhooks(usage, US_EAST_1_PRICES_PRE_NOV_2024);
  const worst = inputs.storeWorstCase;
  const worstCase = worst
    ? costPerMillionWebhooks(
        {
          ...usage,
          dynamoWru: worst.perDelivery.wru,
          dynamoRejectedWru: worst.perDelivery.rejectedWru,
          dynamoRru: worst.perDelivery.rru,
        },
        US_EAST_1_PRICES,
      )
    : undefined;
  const worstCaseWithoutRejected = worst
    ? costPerMillionWebhooks(
        {
          ...usage,
          dynamoWru: worst.perDelivery.wru,
          dynamoRejectedWru: 0,
          dynamoRru: worst.perDelivery.rru,
        },
        US_EAST_1_PRICES,
      )
    : undefined;
  const figures = costFigures('cost', current, 'TOTAL (current prices)');
  figures.push(
    ...withoutRejectedEstimate('cost', usage),
    ...(worst && worstCase
      ? [
          {
            id: 'cost.totalWorstCaseOrder',
            label: 'TOTAL, worst-case order (informational)',
            value: worstCase.totalUsdPerMillion,
            unit: '$/M webhooks',
            ratio: {
              value: worstCase.totalUsdPerMillion / current.totalUsdPerMillion,
              to: 'current total',
            },
          },
        ]
      : []),
    {
      id: 'cost.totalPreNov2024',
      label: 'TOTAL (DynamoDB at pre-Nov-2024 prices)',
      value: before.totalUsdPerMillion,
      unit: '$/M webhooks',
      ratio: { value: before.totalUsdPerMillion / current.totalUsdPerMillion, to: 'current total' },
    },
  );
  const { webhook, consumer } = subscriptionResources(inputs.model);
  const initNotes = (inputs.coldStarts ?? [])
    .filter(
      (c) =>
        c.initMsMedian !== undefined &&
        [webhook.logicalId, consumer.logicalId].includes(c.logicalId),
    )
    .map((c) => {
      const perThousand =
        gbSeconds(c.memoryMb, c.initMsMedian ?? 0) * 1000 * US_EAST_1_PRICES.lambdaArmPerGbSecond;
      return `${c.entry} ${formatNumber(c.initMsMedian ?? 0)} ms = $${formatNumber(perThousand)} per 1,000 cold starts`;
    });
  const notes = [
    priceNotes(US_EAST_1_PRICES),
    ...current.lines.map((line) => `${line.service}: ${line.basis}`),
    `Durations: ${durationSource.join('; ')}.`,
    `Per webhook from the pipeline run (${inputs.pipeline.webhooksAcked} webhooks incl. ${inputs.pipeline.duplicates} duplicates, bursty delivery order): ` +
      `batches as filled at saturation and at ${inputs.pipeline.pacedLoad * 100}% load; at a trickle the ${inputs.pipeline.consumer.batchingWindowSeconds} s window gathers fewer records per invocation.`,
    ...(worst
      ? [
          `TOTAL, worst-case order: the same model with the DynamoDB lines taken from the isolated store stage's uniform-order run ` +
            `(${formatNumber(worst.batchSpread.meanEventsPerCustomer)} events per customer per batch; per delivery ${formatNumber(worst.perDelivery.wru)} WRU, ` +
            `${formatNumber(worst.perDelivery.rejectedWru)} rejected-write WRU (est.), ${formatNumber(worst.perDelivery.rru)} RRU, against ` +
            `${formatNumber(usage.dynamoWru)} / ${formatNumber(usage.dynamoRejectedWru ?? 0)} / ${formatNumber(usage.dynamoRru)} in the bursty pipeline run); ` +
            `${formatNumber(worstCase?.totalUsdPerMillion ?? Number.NaN)} $/M with the rejected-write estimate, ${formatNumber(worstCaseWithoutRejected?.totalUsdPerMillion ?? Number.NaN)} without it. ` +
            "Lambda, SQS and logs stay the pipeline's, so the longer consumer invocations of that order are not in it. No target.",
        ]
      : []),
    'Log bytes = everything the handlers wrote (JSON logs + EMF metrics). Lambda START/END/REPORT lines are not counted: ' +
      'the functions log JSON with system log level WARN, which drops them.',
    `Not included: free tiers; INIT billing of cold starts (${initNotes.join('; ') || 'see cold start'}); ` +
      'X-Ray traces; Secrets Manager (secret cached per instance); CloudWatch custom metrics from EMF ($0.30/metric-month, ' +
      'independent of volume), alarms and dashboard; storage, PITR and backups; data transfer; idle event-source polling.',
  ];
  return {
    id: 'cost',
    title: 'Cost per million webhooks (us-east-1 list prices)',
    figures,
    notes,
    detail: {
      usagePerWebhook: usage,
      current,
      preNov2024: before,
      ...(worstCase ? { worstCaseOrder: worstCase } : {}),
    },
  };
}

/**
 * The total without the rejected-write line, which is an upper bound (every item of a
 * cancelled transaction counted as written): the figure to read beside it.
 */
function withoutRejectedEstimate(prefix: string, usage: UsagePerWebhook): Figure[] {
  if (!usage.dynamoRejectedWru) return [];
  const total = costPerMillionWebhooks(
    { ...usage, dynamoRejectedWru: 0 },
    US_EAST_1_PRICES,
  ).totalUsdPerMillion;
  return [
    {
      id: `${prefix}.totalWithoutRejectedEstimate`,
      label: 'TOTAL without the rejected-write estimate',
      value: total,
      unit: '$/M webhooks',
      ratio: {
        value: total / COST_TARGET_USD_PER_MILLION,
        to: `$${COST_TARGET_USD_PER_MILLION} aim`,
      },
    },
  ];
}

/** Cost per million payment webhooks: the same cost model over the payments run's usage. */
export function paymentsCostSection(
  model: StackModel,
  e2e: PaymentsEndToEnd,
  coldStarts?: FunctionColdStart[],
): Section {
  const { webhook, consumer } = paymentResources(model);
  const webhooks = Math.max(1, e2e.webhooksAcked);
  const warmWebhook = warmBilledMs(coldStarts, webhook.logicalId);
  // The paced phase's webhooks run mostly one at a time: closer to one Lambda instance per request.
  const fed = e2e.paced ?? e2e.saturated;
  const usage = familyUsage(
    e2e,
    { memoryMb: webhook.memoryMb, ms: warmWebhook ?? fed.webhookBilledDurationMs },
    { name: 'payment consumer', memoryMb: consumer.memoryMb, ms: e2e.consumer.billedDurationMs },
    e2e.indexWru,
  );
  const cost = costPerMillionWebhooks(usage, US_EAST_1_PRICES);
  const figures = costFigures('paymentsCost', cost, 'TOTAL per million payment webhooks');
  figures.push(...withoutRejectedEstimate('paymentsCost', usage), {
    id: 'paymentsCost.perDistinctEvent',
    label: 'TOTAL per million distinct payment events (duplicates included in the cost)',
    value: (cost.totalUsdPerMillion * webhooks) / Math.max(1, e2e.uniqueEvents),
    unit: '$/M events',
  });
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
