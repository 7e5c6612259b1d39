import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { App } from 'aws-cdk-lib';
import { BillingDataStack } from './billing-data-stack.ts';
import { REPO_ROOT } from './billing-function.ts';
import { BillingServiceStack } from './billing-service-stack.ts';
import { readBillingConfig } from './config.ts';
import { BUNDLE_CONTEXT_KEY } from './metadata.ts';
import { acknowledgeNagFindings } from './nag-suppressions.ts';

export const DATA_STACK_ID = 'BillingData';
export const SERVICE_STACK_ID = 'BillingService';

export interface CreateBillingAppOptions {
  /**
   * Bundle the handlers with esbuild. `false` uses inline placeholder code instead:
   * synth takes well under a second and does not need the handler files.
   * @default true
   */
  readonly bundle?: boolean;
  /** Extra context (e.g. `priceTierMap`, `alarmEmail`), over cdk.json's. */
  readonly context?: Record<string, unknown>;
  /** Cloud assembly directory. @default CDK_OUTDIR or a temporary directory */
  readonly outdir?: string;
  /**
   * Run CDK's built-in CloudFormation template validation (a WASM engine that costs
   * seconds per synth). The CLI synth keeps it; the local stack model skips it.
   * @default true
   */
  readonly validate?: boolean;
  /**
   * Apply the cdk-nag acknowledgements of nag-suppressions.ts (the cdk-nag test turns
   * this off to apply them itself, one left out at a time).
   * @default true
   */
  readonly acknowledgeNagFindings?: boolean;
}

export interface BillingApp {
  app: App;
  dataStack: BillingDataStack;
  serviceStack: BillingServiceStack;
}

/**
 * Builds the CDK app: `BillingData` (stateful) and `BillingService` (stateless).
 * Stacks are environment-agnostic, so synth needs no AWS credentials. Used by
 * `bin/app.ts`, the infrastructure tests and the local stack model. cdk.json's context
 * is applied here too, so an in-process synth matches `cdk synth`; under the CLI the
 * CLI's own context (including `-c` values) still wins.
 */
export function createBillingApp(options: CreateBillingAppOptions = {}): BillingApp {
  const bundle = options.bundle ?? true;
  const app = new App({
    ...(options.outdir ? { outdir: options.outdir } : {}),
    ...(options.validate === false
      ? { builtinCloudFormationValidation: false, treeMetadata: false }
      : {}),
    context: {
      ...cdkJsonContext(),
      ...options.context,
      [BUNDLE_CONTEXT_KEY]: bundle,
      ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
  });
  const config = readBillingConfig((key) => app.node.tryGetContext(key));

  const dataStack = new BillingDataStack(app, DATA_STACK_ID, {
    description:
      'Billing suite: tables, one event queue and DLQ per event family, webhook signing secret, Stripe API key',
  });
  const serviceStack = new BillingServiceStack(app, SERVICE_STACK_ID, {
    description: 'Billing suite: webhook, consumers and read functions, HTTP API, alarms',
    data: dataStack,
    priceTierMap: config.priceTierMap,
    ledgerRetentionDays: config.ledgerRetentionDays,
    creditAllowances: config.creditAllowances,
    freeHabitLimits: config.freeHabitLimits,
    assessmentDeadlineHour: config.assessmentDeadlineHour,
    ...(config.stripeApiUrl ? { stripeApiUrl: config.stripeApiUrl } : {}),
    ...(config.stripeMode ? { stripeMode: config.stripeMode } : {}),
    appBackendRoleArns: config.appBackendRoleArns,
    operatorRoleArns: config.operatorRoleArns,
    ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
  });
  if (options.acknowledgeNagFindings !== false) acknowledgeNagFindings({ dataStack, serviceStack });
  return { app, dataStack, serviceStack };
}

function cdkJsonContext(): Record<string, unknown> {
  const raw: unknown = JSON.parse(readFileSync(resolve(REPO_ROOT, 'cdk.json'), 'utf8'));
  const context = (raw as { context?: unknown }).context;
  return typeof context === 'object' && context !== null
    ? (context as Record<string, unknown>)
    : {};
}
