/**
 * What the local runtime needs to know about the deployed shape — tables, queues,
 * functions, routes, event source mappings — read from the synthesized CloudFormation
 * templates, so the local run cannot drift from what `cdk deploy` creates. Synthesis
 * is in-process with bundling and template validation off (a few hundred ms), and the
 * handler code is never read: each function names its entry in `billing:entry` metadata.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  AttributeDefinition,
  CreateTableCommandInput,
  GlobalSecondaryIndex,
  KeySchemaElement,
  LocalSecondaryIndex,
} from '@aws-sdk/client-dynamodb';
import { ENV } from '../functions/commons/env-names.ts';
import { createBillingApp } from '../lib/billing-app.ts';
import { LOCAL_NAME_PREFIX, METADATA } from '../lib/metadata.ts';

export type EnvValue =
  | { kind: 'literal'; value: string }
  | { kind: 'tableName'; tableLogicalId: string }
  | { kind: 'queueUrl'; queueLogicalId: string }
  | { kind: 'secretArn'; secretLogicalId: string };

export interface TableModel {
  logicalId: string;
  localName: string;
  create: CreateTableCommandInput;
  ttlAttribute?: string;
}

export interface QueueModel {
  logicalId: string;
  localName: string;
  /** CreateQueue attributes (timeouts, retention...); the redrive policy is in `deadLetter`. */
  attributes: Record<string, string>;
  deadLetter?: { targetLogicalId: string; maxReceiveCount: number };
}

export interface FunctionModel {
  logicalId: string;
  /** Repo-relative entry, e.g. `functions/webhook-ingress.ts`. */
  entry: string;
  /** Exported handler name, e.g. `handler`. */
  exportName: string;
  timeoutSeconds: number;
  memoryMb: number;
  environment: Record<string, EnvValue>;
  /** What its role's policies allow on DynamoDB, per table: the local runtime enforces it. */
  dynamoDbGrants: DynamoDbGrant[];
}

/** DynamoDB actions (without `dynamodb:`) a role may use on one table and on which of its indexes. */
export interface DynamoDbGrant {
  tableLogicalId: string;
  actions: string[];
  /** Index names granted (`*` for all), for Query and Scan on an index. */
  indexes: string[];
}

export interface RouteModel {
  method: string;
  /** e.g. `/users/{userId}/subscription` */
  path: string;
  functionLogicalId: string;
  authorization: 'NONE' | 'AWS_IAM' | 'JWT';
  throttle?: { rateLimit: number; burstLimit: number };
}

export interface QueueConsumerModel {
  queueLogicalId: string;
  functionLogicalId: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  maximumConcurrency: number;
  reportBatchItemFailures: boolean;
}

/** An EventBridge Scheduler schedule whose target is one of the functions. */
export interface ScheduleModel {
  logicalId: string;
  /** e.g. `cron(0/5 * * * ? *)` */
  expression: string;
  functionLogicalId: string;
  /** The target's input (JSON text with Scheduler's `<aws.scheduler.…>` attributes), if any. */
  input?: string;
}

export interface StackModel {
  tables: TableModel[];
  queues: QueueModel[];
  functions: FunctionModel[];
  routes: RouteModel[];
  queueConsumers: QueueConsumerModel[];
  schedules: ScheduleModel[];
}

/** The templates contain something the model cannot represent; the message names it. */
export class StackModelError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StackModelError';
  }
}

export interface LoadStackModelOptions {
  /** CDK context over cdk.json's (e.g. `priceTierMap`). Calls with context are not cached. */
  context?: Record<string, unknown>;
}

let cached: StackModel | undefined;

/** Synthesizes the CDK app in-process (no bundling, no credentials) and reads the template(s). */
export function loadStackModel(options: LoadStackModelOptions = {}): StackModel {
  if (options.context === undefined && cached) return structuredClone(cached);
  const model = buildStackModel(synthesizeTemplates(options.context));
  if (options.context === undefined) cached = model;
  return structuredClone(model);
}

/**
 * Secrets Manager is not emulated: a function given a secret's ARN in one of these
 * variables reads the plain value from the paired variable instead (local only).
 */
export const LOCAL_SECRET_VARIABLES: Readonly<Record<string, string>> = {
  [ENV.webhookSecretArn]: ENV.webhookSecret,
  [ENV.stripeApiKeySecretArn]: ENV.stripeSecretKey,
  [ENV.cursorKeySecretArn]: ENV.cursorSigningKey,
};

/** Turns a function's environment into plain strings once tables/queues exist locally. */
export function resolveEnvironment(
  fn: FunctionModel,
  resolved: {
    tableNames: Record<string, string>;
    queueUrls: Record<string, string>;
    /** Plain secret values by their local variable (`STRIPE_WEBHOOK_SECRET`, `STRIPE_SECRET_KEY`). */
    secretValues?: Readonly<Record<string, string>>;
  },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(fn.environment)) {
    switch (value.kind) {
      case 'literal':
        env[name] = value.value;
        break;
      case 'tableName':
        env[name] = required(resolved.tableNames, value.tableLogicalId, fn, name, 'table');
        break;
      case 'queueUrl':
        env[name] = required(resolved.queueUrls, value.queueLogicalId, fn, name, 'queue');
        break;
      case 'secretArn': {
        const plain = LOCAL_SECRET_VARIABLES[name];
        if (!plain) {
          throw new StackModelError(
            `${fn.logicalId}: ${name} holds a secret ARN the local runtime has no plain variable for (add it to LOCAL_SECRET_VARIABLES)`,
          );
        }
        const secret = resolved.secretValues?.[plain];
        if (secret !== undefined) env[plain] = secret;
        break;
      }
    }
  }
  return env;
}

function required(
  names: Record<string, string>,
  logicalId: string,
  fn: FunctionModel,
  envName: string,
  what: string,
): string {
  const value = names[logicalId];
  if (value === undefined) {
    throw new StackModelError(
      `${fn.logicalId} (${fn.entry}): ${envName} needs ${what} ${logicalId}, which was not created locally`,
    );
  }
  return value;
}

// ---------------------------------------------------------------------------
// Synthesis and template reading

interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

interface CfnTemplate {
  Resources?: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name?: unknown } }>;
}

type Templates = Record<string, CfnTemplate>;

function synthesizeTemplates(context?: Record<string, unknown>): Templates {
  const outdir = mkdtempSync(join(tmpdir(), 'billing-stack-model-'));
  try {
    const { app } = createBillingApp({
      bundle: false,
      validate: false,
      outdir,
      ...(context ? { context } : {}),
    });
    const assembly = app.synth();
    const templates: Templates = {};
    for (const stack of assembly.stacks) templates[stack.stackName] = stack.template as CfnTemplate;
    return templates;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** A resource located by a Ref / Fn::GetAtt, possibly through a cross-stack import. */
interface ResourceRef {
  logicalId: string;
  attribute?: string;
  resource: CfnResource;
}

class TemplateSet {
  private readonly resources = new Map<string, CfnResource>();
  private readonly exports = new Map<string, { stack: string; value: unknown }>();

  constructor(templates: Templates) {
    for (const [stack, template] of Object.entries(templates)) {
      for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
        if (this.resources.has(logicalId)) {
          // The model identifies resources by logical id alone.
          throw new StackModelError(`Logical id ${logicalId} appears in more than one stack`);
        }
        this.resources.set(logicalId, resource);
      }
      for (const output of Object.values(template.Outputs ?? {})) {
        const name = output.Export?.Name;
        if (typeof name === 'string') this.exports.set(name, { stack, value: output.Value });
      }
    }
  }

  all(type: string): Array<[string, CfnResource]> {
    return [...this.resources].filter(([, resource]) => resource.Type === type);
  }

  /** Follows Ref, Fn::GetAtt and Fn::ImportValue (back to the exporting stack's resource). */
  ref(value: unknown): ResourceRef | undefined {
    if (!isRecord(value)) return undefined;
    if (typeof value.Ref === 'string') return this.located(value.Ref);
    const getAtt = value['Fn::GetAtt'];
    if (Array.isArray(getAtt) && typeof getAtt[0] === 'string' && typeof getAtt[1] === 'string') {
      return this.located(getAtt[0], getAtt[1]);
    }
    const imported = value['Fn::ImportValue'];
    if (typeof imported === 'string') {
      const exported = this.exports.get(imported);
      if (!exported) throw new StackModelError(`Fn::ImportValue ${imported}: no stack exports it`);
      return this.ref(exported.value);
    }
    return undefined;
  }

  private located(logicalId: string, attribute?: string): ResourceRef | undefined {
    const resource = this.resources.get(logicalId);
    if (!resource) return undefined; // a pseudo parameter such as AWS::Region
    return attribute === undefined ? { logicalId, resource } : { logicalId, attribute, resource };
  }
}

function buildStackModel(templates: Templates): StackModel {
  const set = new TemplateSet(templates);
  return {
    tables: set.all('AWS::DynamoDB::Table').map(([id, r]) => tableModel(id, r)),
    queues: set.all('AWS::SQS::Queue').map(([id, r]) => queueModel(set, id, r)),
    functions: set
      .all('AWS::Lambda::Function')
      .filter(([, r]) => typeof r.Metadata?.[METADATA.entry] === 'string')
      .map(([id, r]) => functionModel(set, id, r)),
    routes: routeModels(set),
    queueConsumers: set
      .all('AWS::Lambda::EventSourceMapping')
      .map(([id, r]) => queueConsumerModel(set, id, r))
      .filter((consumer) => consumer !== undefined),
    schedules: set.all('AWS::Scheduler::Schedule').map(([id, r]) => scheduleModel(set, id, r)),
  };
}

function scheduleModel(set: TemplateSet, logicalId: string, resource: CfnResource): ScheduleModel {
  const p = resource.Properties ?? {};
  const target = isRecord(p.Target) ? p.Target : {};
  const fn = set.ref(target.Arn);
  if (fn?.resource.Type !== 'AWS::Lambda::Function' || typeof p.ScheduleExpression !== 'string') {
    throw new StackModelError(
      `Schedule ${logicalId}: only schedules invoking a function are supported`,
    );
  }
  return {
    logicalId,
    expression: p.ScheduleExpression,
    functionLogicalId: fn.logicalId,
    ...(typeof target.Input === 'string' ? { input: target.Input } : {}),
  };
}

function localName(logicalId: string, resource: CfnResource): string {
  const fromMetadata = resource.Metadata?.[METADATA.localName];
  if (typeof fromMetadata === 'string') return fromMetadata;
  return `${LOCAL_NAME_PREFIX}-${logicalId.toLowerCase()}`;
}

function tableModel(logicalId: string, resource: CfnResource): TableModel {
  const p = resource.Properties ?? {};
  const billingMode = p.BillingMode === 'PAY_PER_REQUEST' ? 'PAY_PER_REQUEST' : 'PROVISIONED';
  const provisioned = (value: unknown) =>
    billingMode === 'PROVISIONED' && isRecord(value)
      ? {
          ProvisionedThroughput: {
            ReadCapacityUnits: Number(value.ReadCapacityUnits),
            WriteCapacityUnits: Number(value.WriteCapacityUnits),
          },
        }
      : {};
  const gsis = asArray<Record<string, unknown>>(p.GlobalSecondaryIndexes).map(
    (gsi): GlobalSecondaryIndex => ({
      IndexName: String(gsi.IndexName),
      KeySchema: gsi.KeySchema as KeySchemaElement[],
      Projection: gsi.Projection as GlobalSecondaryIndex['Projection'],
      ...provisioned(gsi.ProvisionedThroughput),
    }),
  );
  const lsis = asArray<Record<string, unknown>>(p.LocalSecondaryIndexes).map(
    (lsi): LocalSecondaryIndex => ({
      IndexName: String(lsi.IndexName),
      KeySchema: lsi.KeySchema as KeySchemaElement[],
      Projection: lsi.Projection as LocalSecondaryIndex['Projection'],
    }),
  );
  const name = localName(logicalId, resource);
  const create: CreateTableCommandInput = {
    TableName: name,
    KeySchema: p.KeySchema as KeySchemaElement[],
    AttributeDefinitions: p.AttributeDefinitions as AttributeDefinition[],
    BillingMode: billingMode,
    ...provisioned(p.ProvisionedThroughput),
    ...(gsis.length > 0 ? { GlobalSecondaryIndexes: gsis } : {}),
    ...(lsis.length > 0 ? { LocalSecondaryIndexes: lsis } : {}),
  };
  const ttl = p.TimeToLiveSpecification;
  const ttlAttribute =
    isRecord(ttl) && ttl.Enabled === true && typeof ttl.AttributeName === 'string'
      ? ttl.AttributeName
      : undefined;
  return { logicalId, localName: name, create, ...(ttlAttribute ? { ttlAttribute } : {}) };
}

/** Queue properties that change behaviour locally; encryption and policies do not. */
const QUEUE_ATTRIBUTES = [
  'VisibilityTimeout',
  'MessageRetentionPeriod',
  'DelaySeconds',
  'ReceiveMessageWaitTimeSeconds',
  'MaximumMessageSize',
  'FifoQueue',
  'ContentBasedDeduplication',
] as const;

function queueModel(set: TemplateSet, logicalId: string, resource: CfnResource): QueueModel {
  const p = resource.Properties ?? {};
  const attributes: Record<string, string> = {};
  for (const key of QUEUE_ATTRIBUTES) {
    if (p[key] !== undefined) attributes[key] = String(p[key]);
  }
  const model: QueueModel = { logicalId, localName: localName(logicalId, resource), attributes };
  const redrive = p.RedrivePolicy;
  if (isRecord(redrive)) {
    const target = set.ref(redrive.deadLetterTargetArn);
    if (target?.resource.Type !== 'AWS::SQS::Queue') {
      throw new StackModelError(`Queue ${logicalId}: dead-letter target is not a queue here`);
    }
    model.deadLetter = {
      targetLogicalId: target.logicalId,
      maxReceiveCount: Number(redrive.maxReceiveCount),
    };
  }
  return model;
}

function functionModel(set: TemplateSet, logicalId: string, resource: CfnResource): FunctionModel {
  const p = resource.Properties ?? {};
  const entry = String(resource.Metadata?.[METADATA.entry]);
  const handler = typeof p.Handler === 'string' ? p.Handler : 'index.handler';
  const variables = isRecord(p.Environment) ? p.Environment.Variables : undefined;
  const environment: Record<string, EnvValue> = {};
  for (const [name, value] of Object.entries(isRecord(variables) ? variables : {})) {
    // The operator roles' ARNs, resolved by CloudFormation: no IAM locally (runtime.ts drops them).
    if (name === ENV.operatorRoleArns) continue;
    environment[name] = envValue(set, value, `${logicalId} (${entry}) env ${name}`);
  }
  return {
    logicalId,
    entry,
    exportName: handler.slice(handler.lastIndexOf('.') + 1),
    // CloudFormation's defaults when the properties are absent.
    timeoutSeconds: typeof p.Timeout === 'number' ? p.Timeout : 3,
    memoryMb: typeof p.MemorySize === 'number' ? p.MemorySize : 128,
    environment,
    dynamoDbGrants: dynamoDbGrantsOf(set, logicalId, p.Role),
  };
}

/**
 * The DynamoDB part of the function's role: every Allow statement of the policies
 * attached to it, resolved to table logical ids (a table's ARN, or its ARN joined with
 * `/index/<name>`). A resource of another shape under a `dynamodb:` action is an error,
 * so a grant the local runtime cannot check is never silently dropped.
 */
function dynamoDbGrantsOf(set: TemplateSet, fnLogicalId: string, role: unknown): DynamoDbGrant[] {
  const roleRef = set.ref(role);
  if (!roleRef) return [];
  const grants = new Map<string, { actions: Set<string>; indexes: Set<string> }>();
  for (const [policyId, policy] of set.all('AWS::IAM::Policy')) {
    const p = policy.Properties ?? {};
    const roles = Array.isArray(p.Roles) ? p.Roles : [];
    if (!roles.some((r) => set.ref(r)?.logicalId === roleRef.logicalId)) continue;
    const document = isRecord(p.PolicyDocument) ? p.PolicyDocument : {};
    const statements = Array.isArray(document.Statement) ? document.Statement : [];
    for (const statement of statements.filter(isRecord)) {
      if (statement.Effect !== 'Allow') continue;
      const actions = ([] as unknown[])
        .concat(statement.Action)
        .filter((a): a is string => typeof a === 'string' && a.startsWith('dynamodb:'))
        .map((a) => a.slice('dynamodb:'.length));
      if (actions.length === 0) continue;
      for (const resource of ([] as unknown[]).concat(statement.Resource)) {
        const target = dynamoDbResource(set, resource);
        if (!target) {
          throw new StackModelError(
            `${fnLogicalId}: policy ${policyId} grants dynamodb:${actions.join(',')} on ${JSON.stringify(resource)}, which is not a table or an index of one`,
          );
        }
        const grant = grants.get(target.table) ?? { actions: new Set(), indexes: new Set() };
        if (target.index === undefined) for (const action of actions) grant.actions.add(action);
        else grant.indexes.add(target.index);
        grants.set(target.table, grant);
      }
    }
  }
  return [...grants].map(([tableLogicalId, grant]) => ({
    tableLogicalId,
    actions: [...grant.actions].sort(),
    indexes: [...grant.indexes].sort(),
  }));
}

/** A table's ARN, or `Fn::Join` of it and `/index/<name>`. */
function dynamoDbResource(
  set: TemplateSet,
  resource: unknown,
): { table: string; index?: string } | undefined {
  const table = (value: unknown) => {
    const target = set.ref(value);
    return target?.resource.Type === 'AWS::DynamoDB::Table' && target.attribute === 'Arn'
      ? target.logicalId
      : undefined;
  };
  const direct = table(resource);
  if (direct) return { table: direct };
  const join = isRecord(resource) ? resource['Fn::Join'] : undefined;
  if (!Array.isArray(join) || join[0] !== '' || !Array.isArray(join[1]) || join[1].length !== 2) {
    return undefined;
  }
  const [arn, suffix] = join[1] as [unknown, unknown];
  const index = typeof suffix === 'string' ? /^\/index\/(.+)$/.exec(suffix)?.[1] : undefined;
  const base = table(arn);
  return base && index ? { table: base, index } : undefined;
}

function envValue(set: TemplateSet, value: unknown, where: string): EnvValue {
  if (typeof value === 'string') return { kind: 'literal', value };
  if (typeof value === 'number' || typeof value === 'boolean') {
    return { kind: 'literal', value: String(value) };
  }
  const target = set.ref(value);
  if (target && target.attribute === undefined) {
    switch (target.resource.Type) {
      case 'AWS::DynamoDB::Table':
        return { kind: 'tableName', tableLogicalId: target.logicalId };
      case 'AWS::SQS::Queue':
        return { kind: 'queueUrl', queueLogicalId: target.logicalId };
      case 'AWS::SecretsManager::Secret':
        return { kind: 'secretArn', secretLogicalId: target.logicalId };
    }
  }
  throw new StackModelError(
    `${where}: ${JSON.stringify(value)} is not a literal, a table name, a queue URL or a secret ARN`,
  );
}

const AUTHORIZATION_TYPES = ['NONE', 'AWS_IAM', 'JWT'] as const;

function routeModels(set: TemplateSet): RouteModel[] {
  const stages = set.all('AWS::ApiGatewayV2::Stage');
  return set.all('AWS::ApiGatewayV2::Route').map(([logicalId, resource]) => {
    const p = resource.Properties ?? {};
    const routeKey = String(p.RouteKey);
    const [method, path] = routeKey.includes(' ') ? routeKey.split(' ', 2) : ['ANY', routeKey];
    const authorization = p.AuthorizationType ?? 'NONE';
    if (!AUTHORIZATION_TYPES.includes(authorization as (typeof AUTHORIZATION_TYPES)[number])) {
      throw new StackModelError(
        `Route ${routeKey}: authorization ${String(authorization)} is not supported locally`,
      );
    }
    const integration = set.ref(findRef(p.Target));
    const fn = integration ? set.ref(integration.resource.Properties?.IntegrationUri) : undefined;
    if (fn?.resource.Type !== 'AWS::Lambda::Function') {
      throw new StackModelError(
        `Route ${routeKey} (${logicalId}): target is not a Lambda function`,
      );
    }
    const apiId = set.ref(p.ApiId)?.logicalId;
    const stage = stages
      .filter(([, s]) => set.ref(s.Properties?.ApiId)?.logicalId === apiId)
      .sort(
        ([, a], [, b]) =>
          Number(b.Properties?.StageName === '$default') -
          Number(a.Properties?.StageName === '$default'),
      )[0]?.[1];
    const settings = stage?.Properties?.RouteSettings;
    const throttle =
      throttleOf(isRecord(settings) ? settings[routeKey] : undefined) ??
      throttleOf(stage?.Properties?.DefaultRouteSettings);
    return {
      method: method ?? 'ANY',
      path: path ?? routeKey,
      functionLogicalId: fn.logicalId,
      authorization: authorization as RouteModel['authorization'],
      ...(throttle ? { throttle } : {}),
    };
  });
}

function throttleOf(settings: unknown): RouteModel['throttle'] {
  if (!isRecord(settings)) return undefined;
  const { ThrottlingRateLimit: rateLimit, ThrottlingBurstLimit: burstLimit } = settings;
  return typeof rateLimit === 'number' && typeof burstLimit === 'number'
    ? { rateLimit, burstLimit }
    : undefined;
}

/** The first `{ Ref }` inside an expression such as `Fn::Join ['', ['integrations/', { Ref }]]`. */
function findRef(value: unknown): unknown {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findRef(item);
      if (found) return found;
    }
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  if (typeof value.Ref === 'string') return value;
  for (const nested of Object.values(value)) {
    const found = findRef(nested);
    if (found) return found;
  }
  return undefined;
}

/** Lambda's default maximum concurrency for an SQS event source without a scaling config. */
const SQS_DEFAULT_MAXIMUM_CONCURRENCY = 1000;

function queueConsumerModel(
  set: TemplateSet,
  logicalId: string,
  resource: CfnResource,
): QueueConsumerModel | undefined {
  const p = resource.Properties ?? {};
  const source = set.ref(p.EventSourceArn);
  if (source?.resource.Type !== 'AWS::SQS::Queue') return undefined; // not SQS
  const fn = set.ref(p.FunctionName);
  if (fn?.resource.Type !== 'AWS::Lambda::Function') {
    throw new StackModelError(`Event source mapping ${logicalId}: function not found`);
  }
  const scaling = isRecord(p.ScalingConfig) ? p.ScalingConfig : {};
  return {
    queueLogicalId: source.logicalId,
    functionLogicalId: fn.logicalId,
    batchSize: typeof p.BatchSize === 'number' ? p.BatchSize : 10,
    maximumBatchingWindowSeconds:
      typeof p.MaximumBatchingWindowInSeconds === 'number' ? p.MaximumBatchingWindowInSeconds : 0,
    maximumConcurrency:
      typeof scaling.MaximumConcurrency === 'number'
        ? scaling.MaximumConcurrency
        : SQS_DEFAULT_MAXIMUM_CONCURRENCY,
    reportBatchItemFailures: asArray(p.FunctionResponseTypes).includes('ReportBatchItemFailures'),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray<T = unknown>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
