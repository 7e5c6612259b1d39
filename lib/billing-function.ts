import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CfnResource, Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  Code,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvName } from '../functions/commons/env-names.ts';
import { METRICS_NAMESPACE } from '../functions/commons/metric-names.ts';
import type { ConsumedQueue } from './event-family-queue.ts';
import { BUNDLE_CONTEXT_KEY, METADATA } from './metadata.ts';

/** Repository root: entries are given relative to it and the lock file lives there. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Log level the functions run at, both for Lambda's JSON log filter and Powertools. */
const APPLICATION_LOG_LEVEL = ApplicationLogLevel.INFO;

/**
 * esbuild emits ESM, but some bundled CommonJS dependencies still call `require` for
 * Node built-ins; ESM has no `require`, so the banner recreates it.
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

/**
 * DynamoDB item-level actions a function may be granted on a whole table. No
 * BatchWriteItem: IAM grants a batch's deletes with its puts, so the stores put their
 * pointers with PutItem (dynamodb-batch.ts `putEach`) and no function can batch-delete.
 */
export type DynamoDbItemAction =
  | 'GetItem'
  | 'BatchGetItem'
  | 'Query'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'ConditionCheckItem';

export interface BillingFunctionProps {
  /** Handler entry, relative to the repository root, e.g. `functions/webhook-ingress.ts`. */
  readonly entry: string;
  /** POWERTOOLS_SERVICE_NAME; also the `service` dimension of the function's custom metrics. */
  readonly serviceName: string;
  readonly description?: string;
  /** @default 10 seconds */
  readonly timeout?: Duration;
  /** @default 512 MB (CPU scales with memory, which shortens cold starts) */
  readonly memorySize?: number;
  /** @default one month */
  readonly logRetention?: RetentionDays;
}

/**
 * The one Lambda function construct: it carries every default (Node.js 22 on arm64,
 * active X-Ray tracing, JSON logs at INFO with system logs at WARN into an explicit log
 * group with retention, minified ESM bundle with source maps and the AWS SDK bundled at
 * the versions pinned in package-lock.json, Powertools env) and binds resources by
 * setting the env var and the least-privilege grant in one call.
 *
 * The CloudFormation resource carries metadata `billing:entry` (the repo-relative entry)
 * so the local runtime can load the right module from the synthesized template.
 *
 * When the app's context sets `billing:bundle` to false (in-process synth for the local
 * stack model and fast tests) the code is an inline placeholder: no esbuild run and no
 * dependency on the handler files existing.
 */
export class BillingFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly logGroup: LogGroup;
  public readonly serviceName: string;
  public readonly entry: string;

  constructor(scope: Construct, id: string, props: BillingFunctionProps) {
    super(scope, id);
    this.entry = props.entry;
    this.serviceName = props.serviceName;

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
    });
    // Its own role instead of AWSLambdaBasicExecutionRole: logs go to this group only.
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.serviceName}: its log group, X-Ray, and what its bindings grant`,
    });
    role.addToPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    // X-Ray's "*" and the pinned runtime are acknowledged for cdk-nag in nag-suppressions.ts.

    const bundle = this.node.tryGetContext(BUNDLE_CONTEXT_KEY) !== false;
    const code = bundle
      ? {}
      : {
          code: Code.fromInline('export const handler = async () => undefined;'),
          handler: 'index.handler',
        };

    this.function = new NodejsFunction(this, 'Function', {
      entry: resolve(REPO_ROOT, props.entry),
      handler: 'handler',
      ...code,
      projectRoot: REPO_ROOT,
      depsLockFilePath: resolve(REPO_ROOT, 'package-lock.json'),
      description: props.description,
      role,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(10),
      memorySize: props.memorySize ?? 512,
      tracing: Tracing.ACTIVE,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: APPLICATION_LOG_LEVEL,
      systemLogLevelV2: SystemLogLevel.WARN,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: APPLICATION_LOG_LEVEL,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        sourceMap: true,
        // Stack traces map to file:line without shipping the sources in the zip.
        sourcesContent: false,
        // The runtime's SDK version drifts; bundling pins the one we tested against.
        bundleAwsSDK: true,
      },
    });

    (this.function.node.defaultChild as CfnResource).addMetadata(METADATA.entry, props.entry);
  }

  /** Sets a literal environment variable. */
  setEnvironment(name: EnvName, value: string): this {
    this.function.addEnvironment(name, value);
    return this;
  }

  /**
   * Puts the table's name in `name` and grants exactly `actions` on the table; on its
   * indexes only when `Query` is among them (the item actions do not apply to indexes).
   */
  bindTable(
    name: EnvName,
    table: ITable,
    actions: readonly DynamoDbItemAction[],
    /** The indexes the function queries (with `Query`): only these, never `index/*`. */
    indexes: readonly string[] = [],
  ): this {
    if (actions.length === 0)
      throw new Error(`bindTable(${name}): at least one action is required`);
    if (indexes.length > 0 && !actions.includes('Query')) {
      throw new Error(`bindTable(${name}): indexes are only read with Query`);
    }
    this.function.addEnvironment(name, table.tableName);
    Grant.addToPrincipal({
      grantee: this.function,
      actions: actions.map((action) => `dynamodb:${action}`),
      resourceArns: [table.tableArn, ...indexes.map((index) => `${table.tableArn}/index/${index}`)],
    });
    // AWS-managed encryption needs no key grant; a customer-managed key would.
    table.encryptionKey?.grantEncryptDecrypt(this.function);
    return this;
  }

  /** Puts the queue's URL in `name` and grants sqs:SendMessage on it, nothing else. */
  bindQueueSender(name: EnvName, queue: IQueue): this {
    this.function.addEnvironment(name, queue.queueUrl);
    Grant.addToPrincipal({
      grantee: this.function,
      actions: ['sqs:SendMessage'],
      resourceArns: [queue.queueArn],
    });
    // SSE-SQS needs no key grant; a customer-managed key would need kms:GenerateDataKey.
    queue.encryptionMasterKey?.grant(this.function, 'kms:GenerateDataKey', 'kms:Decrypt');
    return this;
  }

  /**
   * Makes this function the consumer of a queue with the queue's consumer
   * settings (batch size, window, maximum concurrency) and partial batch failures.
   * Fails synth when the function may run longer than the queue's visibility
   * timeout was derived for, so a batch is never handed out twice while running.
   */
  bindQueueConsumer(events: ConsumedQueue): this {
    const { consumer } = events;
    const timeout = this.function.timeout?.toSeconds() ?? 3;
    if (timeout > consumer.timeout.toSeconds()) {
      throw new Error(
        `${this.serviceName}: timeout ${timeout} s exceeds the ${consumer.timeout.toSeconds()} s ` +
          `the ${events.name} queue's visibility timeout (${events.visibilityTimeout.toSeconds()} s) was derived from`,
      );
    }
    this.function.addEventSource(
      new SqsEventSource(events.queue, {
        batchSize: consumer.batchSize,
        maxBatchingWindow: consumer.maxBatchingWindow,
        maxConcurrency: consumer.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    return this;
  }

  /** Puts the secret's ARN in `name` and grants read access to that secret only. */
  bindSecretReader(name: EnvName, secret: ISecret): this {
    this.function.addEnvironment(name, secret.secretArn);
    secret.grantRead(this.function);
    return this;
  }
}
