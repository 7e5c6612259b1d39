/**
 * What every scenario gets: the stack model, the emulators, the harness's own
 * clients (never metered), the meter and log capture, and the environment the
 * handlers read — exactly what the stack model gives each function, resolved
 * against the locally created tables and queues.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../functions/commons/env-names.ts';
import {
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  localDynamoDbClient,
  localSqsClient,
} from '../local/emulators.ts';
import { type FunctionModel, resolveEnvironment, type StackModel } from '../local/stack-model.ts';
import type { AwsMeter } from './aws-meter.ts';
import type { LogCapture } from './log-capture.ts';
import type { Provisioned } from './provision.ts';

export interface BenchSizes {
  /** Closed-loop concurrency of the raw SendMessage and the ingress runs. */
  concurrency: number;
  rawDurationMs: number;
  ingressDurationMs: number;
  /**
   * Ingress time is split into this many rounds, each a raw SendMessage slice then a
   * handler slice. Short slices, many of them: this machine's speed drifts by tens of
   * percent within seconds (GC, the other core's load), and only fine interleaving
   * makes both sides see the same drift. Each slice stays >= 10 round trips long.
   */
  ingressRounds: number;
  warmupMs: number;
  /** Customer histories pushed through the pipeline at saturation (about 8 events each). */
  pipelineHistories: number;
  /** Fresh histories then fed at a fixed rate, for lag at a sustainable load. */
  pacedHistories: number;
  /** That rate, as a share of the events/s measured at saturation. */
  pacedLoad: number;
  /** Share of deliveries sent twice. */
  duplicateRate: number;
  /** Each delivery may swap with one up to this many places ahead. */
  reorderWindow: number;
  /**
   * Bursty delivery order (`deliverInBursts`): customers live at once, each delivering
   * its events while live, the next starting when one finishes.
   */
  activeCustomers: number;
  /**
   * Customers per isolated store-stage run. The uniform order spreads a batch of 50 over
   * 36 (200 customers) to 38 (400) of them; with fewer, the mapping's concurrent batches
   * share so many accounts that write races outlast the consumer's retries.
   */
  storeHistories: number;
  /** Each baseline run (before and after) of an isolated store-stage measurement. */
  storeBaselineMs: number;
  coldStartSamples: number;
  /** Invocations after the first in each cold-start process. */
  warmInvocations: number;
  /** Payment histories (1-4 payments, ~14 events each) through the payment pipeline at saturation. */
  paymentHistories: number;
  /** Fresh payment histories then fed at `pacedLoad` of that rate, for lag at a sustainable load. */
  paymentPacedHistories: number;
  /** Payments seeded into the read benchmark's table (DESIGN §8.1: at least 100,000). */
  paymentReadPayments: number;
  /** Users and UTC days those payments are spread over. */
  paymentReadUsers: number;
  paymentReadDays: number;
  /** Each read loop (getPayment, history page, daily summary), per concurrency. */
  paymentReadDurationMs: number;
}

export const QUICK_SIZES: BenchSizes = {
  concurrency: 16,
  rawDurationMs: 2_500,
  ingressDurationMs: 6_000,
  ingressRounds: 8,
  warmupMs: 500,
  pipelineHistories: 60,
  pacedHistories: 20,
  pacedLoad: 0.5,
  duplicateRate: 0.2,
  reorderWindow: 6,
  activeCustomers: 8,
  storeHistories: 200,
  storeBaselineMs: 2_000,
  coldStartSamples: 3,
  warmInvocations: 5,
  paymentHistories: 80,
  paymentPacedHistories: 24,
  paymentReadPayments: 10_000,
  paymentReadUsers: 200,
  paymentReadDays: 5,
  paymentReadDurationMs: 1_500,
};

export const FULL_SIZES: BenchSizes = {
  concurrency: 16,
  rawDurationMs: 10_000,
  ingressDurationMs: 15_000,
  ingressRounds: 20,
  warmupMs: 2_000,
  pipelineHistories: 400,
  pacedHistories: 100,
  pacedLoad: 0.5,
  duplicateRate: 0.2,
  reorderWindow: 6,
  activeCustomers: 8,
  storeHistories: 400,
  storeBaselineMs: 4_000,
  coldStartSamples: 10,
  warmInvocations: 10,
  paymentHistories: 400,
  paymentPacedHistories: 100,
  paymentReadPayments: 100_000,
  paymentReadUsers: 400,
  paymentReadDays: 5,
  paymentReadDurationMs: 4_000,
};

export interface BenchContext {
  quick: boolean;
  sizes: BenchSizes;
  repoRoot: string;
  model: StackModel;
  endpoints: { dynamo: string; sqs: string };
  /** The harness's clients: excluded from the meter. */
  harness: { dynamo: DynamoDBClient; sqs: SQSClient };
  provisioned: Provisioned;
  meter: AwsMeter;
  capture: LogCapture;
  /** Signing secret the webhook verifies against (STRIPE_WEBHOOK_SECRET locally). */
  webhookSecret: string;
  log: (message: string) => void;
}

/** A client at the DynamoDB emulator: metered, unless passed to `meter.exclude`. */
export const localDynamo = (endpoint: string) => localDynamoDbClient(endpoint);
/** A client at the SQS emulator: metered, unless passed to `meter.exclude`. */
export const localSqs = (endpoint: string) => localSqsClient(endpoint);

/** Standard SDK env that points default clients at the emulators, as the local runtime does. */
export function awsEnv(endpoints: { dynamo: string; sqs: string }): Record<string, string> {
  return {
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamo,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
  };
}

/**
 * Powertools settings for measured runs: metrics on (EMF lines are log bytes Lambda
 * ingests), tracing off (there is no X-Ray daemon), no dev mode (pretty-printed logs
 * would inflate the byte count).
 */
export const MEASURED_POWERTOOLS_ENV = {
  POWERTOOLS_DEV: 'false',
  POWERTOOLS_METRICS_DISABLED: 'false',
  POWERTOOLS_TRACE_ENABLED: 'false',
} as const;

/** The full environment one function sees: its own stack-model env plus the local endpoints. */
export function functionEnv(
  fn: FunctionModel,
  ctx: Pick<BenchContext, 'provisioned' | 'endpoints' | 'webhookSecret'>,
): Record<string, string> {
  return {
    ...resolveEnvironment(fn, {
      ...ctx.provisioned,
      secretValues: { [ENV.webhookSecret]: ctx.webhookSecret },
    }),
    ...awsEnv(ctx.endpoints),
    ...MEASURED_POWERTOOLS_ENV,
  };
}

/**
 * Sets, in this process, the env of every function that runs in-process. They share
 * one process here (on Lambda each has its own), so a variable two functions set
 * differently (the service name) takes the first one's value; NODE_OPTIONS is left
 * out because it only matters at process start.
 */
export function applyInProcessEnv(ctx: BenchContext, functions: readonly FunctionModel[]): void {
  const merged: Record<string, string> = {};
  for (const fn of functions) {
    for (const [name, value] of Object.entries(functionEnv(fn, ctx))) {
      if (name === 'NODE_OPTIONS' || name in merged) continue;
      merged[name] = value;
    }
  }
  Object.assign(process.env, merged);
}
