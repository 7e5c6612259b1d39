/**
 * Cost per million webhooks at AWS list prices (us-east-1), from usage measured per
 * webhook. Pure arithmetic, no I/O: the benchmark feeds it measured figures and the
 * unit test feeds it hand-computed ones.
 */

/** List prices, USD. */
export interface PriceTable {
  /** API Gateway HTTP API, per million requests (first 300 M/month tier). */
  apiGatewayHttpPerMillionRequests: number;
  /** Lambda, per million requests. */
  lambdaPerMillionRequests: number;
  /** Lambda arm64 compute, per GB-second (first 7.5 B GB-s/month tier). */
  lambdaArmPerGbSecond: number;
  /** SQS standard queue, per million requests (each 64 KiB chunk of payload is a request). */
  sqsStandardPerMillionRequests: number;
  /** DynamoDB on-demand, per million write request units. */
  dynamoPerMillionWru: number;
  /** DynamoDB on-demand, per million read request units. */
  dynamoPerMillionRru: number;
  /** CloudWatch Logs (standard class) ingestion, per GB. */
  logsIngestionPerGb: number;
}

/** us-east-1 list prices; DynamoDB on-demand as cut on 1 Nov 2024. */
export const US_EAST_1_PRICES: PriceTable = {
  apiGatewayHttpPerMillionRequests: 1.0,
  lambdaPerMillionRequests: 0.2,
  lambdaArmPerGbSecond: 0.0000133334,
  sqsStandardPerMillionRequests: 0.4,
  dynamoPerMillionWru: 0.625,
  dynamoPerMillionRru: 0.125,
  logsIngestionPerGb: 0.5,
};

/** Same, with DynamoDB on-demand at its pre-November-2024 price (twice today's). */
export const US_EAST_1_PRICES_PRE_NOV_2024: PriceTable = {
  ...US_EAST_1_PRICES,
  dynamoPerMillionWru: 1.25,
  dynamoPerMillionRru: 0.25,
};

/** CloudWatch bills log data in GB of 10^9 bytes; the smaller unit is the conservative reading. */
export const BYTES_PER_GB = 1e9;

export interface LambdaUsage {
  name: string;
  memoryMb: number;
  /** Invocations per webhook (the consumer handles a batch per invocation: < 1). */
  invocationsPerWebhook: number;
  /** Mean billed duration per invocation, ms (Lambda rounds each invocation up to 1 ms). */
  billedDurationMs: number;
}

/** What one webhook costs in requests, capacity and bytes, end to end. */
export interface UsagePerWebhook {
  /** API Gateway requests per webhook; 1 unless Stripe retries. */
  apiRequests: number;
  lambdas: LambdaUsage[];
  /** SQS requests as billed (64 KiB chunks): send, receive, delete, empty polls. */
  sqsBilledRequests: number;
  /** Write request units of committed writes. */
  dynamoWru: number;
  /**
   * Write request units of writes rejected by their condition (DynamoDB bills those too).
   * An estimate: counted as if every item of a cancelled transaction was written. Default 0.
   */
  dynamoRejectedWru?: number;
  dynamoRru: number;
  /** Log bytes ingested: the handlers' own lines plus Lambda's platform lines. */
  logBytes: number;
}

export interface CostLine {
  service: string;
  /** USD per million webhooks. */
  usdPerMillion: number;
  /** How the figure was reached, in words a reviewer can check. */
  basis: string;
}

export interface CostBreakdown {
  lines: CostLine[];
  /** USD per million webhooks, all lines. */
  totalUsdPerMillion: number;
}

const MILLION = 1_000_000;

/** GB-seconds one invocation bills. */
export function gbSeconds(memoryMb: number, billedDurationMs: number): number {
  return (memoryMb / 1024) * (billedDurationMs / 1000);
}

/** Mean of each duration rounded up to the next whole ms, as Lambda bills. */
export function meanBilledDurationMs(durationsMs: ArrayLike<number>): number {
  if (durationsMs.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < durationsMs.length; i++) sum += Math.max(1, Math.ceil(durationsMs[i] ?? 0));
  return sum / durationsMs.length;
}

/** USD per million webhooks, one line per service. */
export function costPerMillionWebhooks(usage: UsagePerWebhook, prices: PriceTable): CostBreakdown {
  const fmt = (n: number, digits = 3) => Number(n.toPrecision(digits)).toString();
  const lines: CostLine[] = [
    {
      service: 'API Gateway HTTP API',
      usdPerMillion: usage.apiRequests * prices.apiGatewayHttpPerMillionRequests,
      basis: `${fmt(usage.apiRequests)} request/webhook x $${prices.apiGatewayHttpPerMillionRequests}/M`,
    },
  ];
  for (const fn of usage.lambdas) {
    const requests = fn.invocationsPerWebhook * prices.lambdaPerMillionRequests;
    const compute =
      fn.invocationsPerWebhook *
      gbSeconds(fn.memoryMb, fn.billedDurationMs) *
      MILLION *
      prices.lambdaArmPerGbSecond;
    lines.push({
      service: `Lambda ${fn.name} requests`,
      usdPerMillion: requests,
      basis: `${fmt(fn.invocationsPerWebhook)} invocation/webhook x $${prices.lambdaPerMillionRequests}/M`,
    });
    lines.push({
      service: `Lambda ${fn.name} compute`,
      usdPerMillion: compute,
      basis: `${fmt(fn.invocationsPerWebhook)} x ${fmt(fn.billedDurationMs)} ms x ${fn.memoryMb} MB arm64 x $${prices.lambdaArmPerGbSecond}/GB-s`,
    });
  }
  lines.push(
    {
      service: 'SQS standard',
      usdPerMillion: usage.sqsBilledRequests * prices.sqsStandardPerMillionRequests,
      basis: `${fmt(usage.sqsBilledRequests)} billed requests/webhook x $${prices.sqsStandardPerMillionRequests}/M`,
    },
    {
      service: 'DynamoDB writes',
      usdPerMillion: usage.dynamoWru * prices.dynamoPerMillionWru,
      basis: `${fmt(usage.dynamoWru)} WRU/webhook x $${prices.dynamoPerMillionWru}/M`,
    },
    ...(usage.dynamoRejectedWru
      ? [
          {
            service: 'DynamoDB rejected writes (est.)',
            usdPerMillion: usage.dynamoRejectedWru * prices.dynamoPerMillionWru,
            basis: `${fmt(usage.dynamoRejectedWru)} WRU/webhook x $${prices.dynamoPerMillionWru}/M (upper bound: all items of each cancelled transaction)`,
          },
        ]
      : []),
    {
      service: 'DynamoDB reads',
      usdPerMillion: usage.dynamoRru * prices.dynamoPerMillionRru,
      basis: `${fmt(usage.dynamoRru)} RRU/webhook x $${prices.dynamoPerMillionRru}/M`,
    },
    {
      service: 'CloudWatch Logs ingestion',
      usdPerMillion: ((usage.logBytes * MILLION) / BYTES_PER_GB) * prices.logsIngestionPerGb,
      basis: `${fmt(usage.logBytes)} bytes/webhook x $${prices.logsIngestionPerGb}/GB`,
    },
  );
  const totalUsdPerMillion = lines.reduce((sum, line) => sum + line.usdPerMillion, 0);
  return { lines, totalUsdPerMillion };
}
