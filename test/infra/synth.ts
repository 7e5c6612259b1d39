/**
 * Helpers for the infrastructure tests: an in-process synth with bundling and CDK's
 * WASM template validation off (both are exercised by the CLI synth test), and small
 * readers that follow the references the assertions need.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { PENALTY_ROUTES } from '../../functions/commons/routes.ts';
import {
  EVENT_FAMILIES,
  type EventFamilyName,
} from '../../functions/core/shared/event-families.ts';
import { createBillingApp } from '../../lib/billing-app.ts';
import type { BillingDataStack } from '../../lib/billing-data-stack.ts';
import type { BillingServiceStack } from '../../lib/billing-service-stack.ts';

/** Handler entries (`billing:entry` metadata) of every function. */
export const ENTRY = {
  webhook: 'functions/webhook-ingress.ts',
  subscriptionConsumer: 'functions/subscription-consumer.ts',
  subscriptionRead: 'functions/subscription-read.ts',
  paymentConsumer: 'functions/payment-consumer.ts',
  paymentRead: 'functions/payment-read.ts',
  creditPlanner: 'functions/credit-planner.ts',
  creditWorker: 'functions/credit-worker.ts',
  creditRead: 'functions/credit-read.ts',
  creditAdmin: 'functions/credit-admin.ts',
  penaltyApi: 'functions/penalty-api.ts',
  penaltyAdmin: 'functions/penalty-admin.ts',
  penaltyAssessor: 'functions/penalty-assessor.ts',
  penaltySettlementSweeper: 'functions/penalty-settlement-sweeper.ts',
} as const;

/**
 * The penalties routes of DESIGN §8.3, written out here (not read from lib/) so the
 * tests check the stack against the design: method, path and the function answering.
 */
export const PENALTY_ROUTE_SPEC: ReadonlyArray<{
  method: 'GET' | 'PUT' | 'POST';
  path: (typeof PENALTY_ROUTES)[keyof typeof PENALTY_ROUTES];
  entry: string;
}> = [
  { method: 'PUT', path: PENALTY_ROUTES.habit, entry: ENTRY.penaltyApi },
  { method: 'GET', path: PENALTY_ROUTES.habits, entry: ENTRY.penaltyApi },
  { method: 'PUT', path: PENALTY_ROUTES.verification, entry: ENTRY.penaltyApi },
  { method: 'POST', path: PENALTY_ROUTES.assess, entry: ENTRY.penaltyAdmin },
  { method: 'GET', path: PENALTY_ROUTES.penalties, entry: ENTRY.penaltyApi },
  { method: 'GET', path: PENALTY_ROUTES.summary, entry: ENTRY.penaltyApi },
  { method: 'POST', path: PENALTY_ROUTES.markPaid, entry: ENTRY.penaltyAdmin },
  { method: 'POST', path: PENALTY_ROUTES.settle, entry: ENTRY.penaltyApi },
  { method: 'GET', path: PENALTY_ROUTES.recipientTotals, entry: ENTRY.penaltyApi },
];

/** The function that consumes each event family's queue. */
export const CONSUMER_ENTRY: Record<EventFamilyName, string> = {
  subscriptions: ENTRY.subscriptionConsumer,
  payments: ENTRY.paymentConsumer,
};

export interface Templates {
  data: Template;
  service: Template;
  /** The stacks the templates came from, to find a construct's logical id. */
  stacks: { data: BillingDataStack; service: BillingServiceStack };
}

/** Logical ids of the data stack's resources, taken from the constructs that own them. */
export interface DataIds {
  billing: string;
  subscriptionLedger: string;
  payments: string;
  penalties: string;
  /** The webhook signing secret. */
  secret: string;
  /** The Stripe API key secret (penalty settlement). */
  stripeApiKey: string;
  /** The key the paged routes seal their cursors with. */
  cursorSigningKey: string;
  queues: Record<EventFamilyName, { queue: string; dlq: string }>;
  /** The credit refresh work queue (planner → worker) and its DLQ. */
  creditRefresh: { queue: string; dlq: string };
}

/** Logical ids of the penalties' resources in the service stack. */
export interface PenaltyIds {
  api: string;
  admin: string;
  assessor: string;
  schedule: string;
  settlementSweeper: string;
  settlementSweepSchedule: string;
  /** Where Scheduler puts the assessor and sweeper invocations it gave up on. */
  scheduleDlq: string;
}

/** Logical ids of the credit refresh's resources in the service stack. */
export interface CreditIds {
  planner: string;
  worker: string;
  reader: string;
  admin: string;
  schedule: string;
  /** Where Scheduler puts the planner invocations it gave up on. */
  scheduleDlq: string;
}

/** What every function's role allows beside its bindings: its own log group, and X-Ray. */
export const RUNTIME_ACTIONS = [
  'logs:CreateLogStream',
  'logs:PutLogEvents',
  'xray:PutTelemetryRecords',
  'xray:PutTraceSegments',
];

export interface CfnResourceJson {
  Type: string;
  Properties: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string[];
}

export interface Statement {
  Effect: string;
  Action: string[];
  Resource: unknown[];
  Condition?: unknown;
  Principal?: unknown;
}

/** Synthesizes both stacks without bundling; `context` is applied over cdk.json's. */
export function synthTemplates(context?: Record<string, unknown>): Templates {
  const outdir = mkdtempSync(join(tmpdir(), 'billing-infra-test-'));
  try {
    const { dataStack, serviceStack } = createBillingApp({
      bundle: false,
      validate: false,
      outdir,
      ...(context ? { context } : {}),
    });
    return {
      data: Template.fromStack(dataStack),
      service: Template.fromStack(serviceStack),
      stacks: { data: dataStack, service: serviceStack },
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The logical id of a construct's CloudFormation resource (an L2's default child). */
export function logicalIdOf(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(element).getLogicalId(element);
}

export function dataIds(t: Templates): DataIds {
  const {
    tables,
    paymentTables,
    penaltyTables,
    eventQueues,
    creditRefreshQueue,
    signingSecret,
    stripeApiKey,
    cursorSigningKey,
  } = t.stacks.data;
  const queues = Object.fromEntries(
    EVENT_FAMILIES.map((family) => [
      family,
      {
        queue: logicalIdOf(eventQueues[family].queue),
        dlq: logicalIdOf(eventQueues[family].deadLetterQueue),
      },
    ]),
  ) as DataIds['queues'];
  return {
    billing: logicalIdOf(tables.billing),
    subscriptionLedger: logicalIdOf(tables.subscriptionLedger),
    payments: logicalIdOf(paymentTables.payments),
    penalties: logicalIdOf(penaltyTables.penalties),
    secret: logicalIdOf(signingSecret.secret),
    stripeApiKey: logicalIdOf(stripeApiKey.secret),
    cursorSigningKey: logicalIdOf(cursorSigningKey.secret),
    queues,
    creditRefresh: {
      queue: logicalIdOf(creditRefreshQueue.queue),
      dlq: logicalIdOf(creditRefreshQueue.deadLetterQueue),
    },
  };
}

export function creditIds(t: Templates): CreditIds {
  const { credits } = t.stacks.service;
  return {
    planner: logicalIdOf(credits.planner.function),
    worker: logicalIdOf(credits.worker.function),
    reader: logicalIdOf(credits.reader.function),
    admin: logicalIdOf(credits.admin.function),
    schedule: logicalIdOf(credits.schedule),
    scheduleDlq: logicalIdOf(credits.scheduleDeadLetterQueue),
  };
}

export function penaltyIds(t: Templates): PenaltyIds {
  const { penalties } = t.stacks.service;
  return {
    api: logicalIdOf(penalties.api.function),
    admin: logicalIdOf(penalties.admin.function),
    assessor: logicalIdOf(penalties.assessor.function),
    schedule: logicalIdOf(penalties.schedule),
    settlementSweeper: logicalIdOf(penalties.settlementSweeper.function),
    settlementSweepSchedule: logicalIdOf(penalties.settlementSweepSchedule),
    scheduleDlq: logicalIdOf(penalties.scheduleDeadLetterQueue),
  };
}

/** `{ 'Fn::GetAtt': [logicalId, attribute] }` */
export function getAtt(logicalId: string, attribute = 'Arn'): unknown {
  return { 'Fn::GetAtt': [logicalId, attribute] };
}

/** The ARN pattern `Table.grant` adds for a table's indexes. */
/** The ARN of one named index of a table (grants name their indexes, never `index/*`). */
export function indexArn(tableId: string, indexName: string): unknown {
  return { 'Fn::Join': ['', [getAtt(tableId), `/index/${indexName}`]] };
}

export function resources(template: Template, type: string): Record<string, CfnResourceJson> {
  return template.findResources(type) as Record<string, CfnResourceJson>;
}

export function onlyResource(template: Template, type: string): [string, CfnResourceJson] {
  const entries = Object.entries(resources(template, type));
  if (entries.length !== 1) throw new Error(`expected one ${type}, found ${entries.length}`);
  return entries[0]!;
}

/** The function whose `billing:entry` metadata names `entry`. */
export function functionByEntry(template: Template, entry: string): [string, CfnResourceJson] {
  const found = Object.entries(resources(template, 'AWS::Lambda::Function')).find(
    ([, fn]) => fn.Metadata?.['billing:entry'] === entry,
  );
  if (!found) throw new Error(`no function with billing:entry ${entry}`);
  return found;
}

export function envOf(fn: CfnResourceJson): Record<string, unknown> {
  const environment = fn.Properties.Environment as { Variables?: Record<string, unknown> };
  return environment?.Variables ?? {};
}

/**
 * Like `resolveImport`, at any depth: `{ 'Fn::Join': ['', [{ 'Fn::ImportValue': … }, '/index/*']] }`
 * becomes `{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, '/index/*']] }`.
 */
export function resolveImports(data: Template, value: unknown): unknown {
  const resolved = resolveImport(data, value);
  if (resolved !== value) return resolveImports(data, resolved);
  if (Array.isArray(value)) return value.map((item) => resolveImports(data, item));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, resolveImports(data, item)]),
    );
  }
  return value;
}

/**
 * Follows `Fn::ImportValue` back to the value the data stack exported, so an assertion
 * can say "this is the DLQ" instead of matching generated export names.
 */
export function resolveImport(data: Template, value: unknown): unknown {
  const name = (value as { 'Fn::ImportValue'?: unknown })?.['Fn::ImportValue'];
  if (typeof name !== 'string') return value;
  const outputs = data.toJSON().Outputs as Record<
    string,
    { Value: unknown; Export?: { Name: string } }
  >;
  const output = Object.values(outputs).find((o) => o.Export?.Name === name);
  if (!output) throw new Error(`no export named ${name}`);
  return output.Value;
}

/** Every statement of the inline policies attached to the function's role. */
export function roleStatements(template: Template, fn: CfnResourceJson): Statement[] {
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return Object.values(resources(template, 'AWS::IAM::Policy'))
    .filter((policy) =>
      (policy.Properties.Roles as Array<{ Ref?: string }>).some((role) => role.Ref === roleId),
    )
    .flatMap((policy) => statementsOf(policy.Properties.PolicyDocument));
}

export function statementsOf(document: unknown): Statement[] {
  const statements = (document as { Statement: Array<Record<string, unknown>> }).Statement;
  return statements.map((s) => ({
    ...(s as unknown as Statement),
    Action: ([] as string[]).concat(s.Action as string | string[]),
    Resource: ([] as unknown[]).concat(s.Resource ?? []),
  }));
}

export function actionsOf(statements: Statement[]): string[] {
  return [...new Set(statements.flatMap((s) => s.Action))].sort();
}

/** Every statement of every IAM policy in the given templates. */
export function allPolicyStatements(...templates: Template[]): Statement[] {
  return templates.flatMap((template) =>
    Object.values(resources(template, 'AWS::IAM::Policy')).flatMap((p) =>
      statementsOf(p.Properties.PolicyDocument),
    ),
  );
}

/** Order-insensitive comparison key for lists of CloudFormation values. */
export function sortedJson(values: readonly unknown[]): string[] {
  return values.map((value) => JSON.stringify(value)).sort();
}

/** A statement's resources with every cross-stack import followed back to the data stack. */
export function resolvedResources(data: Template, statement: Statement): unknown[] {
  return statement.Resource.map((r) => resolveImports(data, r));
}

/** The actions `statements` allow on exactly `resource` (compared as CloudFormation JSON). */
export function actionsOn(data: Template, statements: Statement[], resource: unknown): string[] {
  const wanted = JSON.stringify(resource);
  return actionsOf(
    statements.filter(
      (s) =>
        s.Effect === 'Allow' &&
        resolvedResources(data, s).some((r) => JSON.stringify(r) === wanted),
    ),
  );
}

/** Every resource the statements allowing any of `prefix`'s actions name. */
export function resourcesOfService(
  data: Template,
  statements: Statement[],
  prefix: string,
): string[] {
  return sortedJson(
    statements
      .filter((s) => s.Effect === 'Allow' && s.Action.some((a) => a.startsWith(prefix)))
      .flatMap((s) => resolvedResources(data, s)),
  );
}

/** The event source mappings whose function is `functionId`. */
export function mappingsOf(service: Template, functionId: string): CfnResourceJson[] {
  return Object.values(resources(service, 'AWS::Lambda::EventSourceMapping')).filter(
    (m) => JSON.stringify(m.Properties.FunctionName) === JSON.stringify({ Ref: functionId }),
  );
}

/** The HTTP API route with `routeKey` (`GET /users/{userId}/credits`). */
export function routeByKey(service: Template, routeKey: string): CfnResourceJson {
  const found = Object.values(resources(service, 'AWS::ApiGatewayV2::Route')).find(
    (r) => r.Properties.RouteKey === routeKey,
  );
  if (!found) throw new Error(`no route ${routeKey}`);
  return found;
}

/** The logical id of the function a route's Lambda integration invokes. */
export function integrationFunction(service: Template, route: CfnResourceJson): string {
  const target = JSON.stringify(route.Properties.Target);
  const integrationId = /"Ref":"([^"]+)"/.exec(target)?.[1] ?? '';
  const integration = resources(service, 'AWS::ApiGatewayV2::Integration')[integrationId];
  if (!integration) throw new Error(`no integration ${integrationId}`);
  return (integration.Properties.IntegrationUri as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
}

/** The `$default` stage's per-route settings (throttles), keyed by route key. */
export function stageRouteSettings(service: Template): Record<string, Record<string, number>> {
  const [, stage] = onlyResource(service, 'AWS::ApiGatewayV2::Stage');
  return stage.Properties.RouteSettings as Record<string, Record<string, number>>;
}

/** The alarm the Observability construct created under construct id `id`. */
export function observabilityAlarm(t: Templates, id: string): CfnResourceJson {
  const construct = t.stacks.service.observability.node.tryFindChild(id);
  if (!construct) throw new Error(`no alarm ${id}`);
  const found = resources(t.service, 'AWS::CloudWatch::Alarm')[logicalIdOf(construct)];
  if (!found) throw new Error(`alarm ${id} is not in the template`);
  return found;
}
