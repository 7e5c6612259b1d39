import { Capture, Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { PAYMENT_INDEXES } from '../../functions/adapters/dynamodb/payment-table-schema.ts';
import { ENV, EVENT_QUEUE_URL_ENV } from '../../functions/commons/env-names.ts';
import { METRIC, METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import { PAYMENT_ROUTES } from '../../functions/commons/routes.ts';
import {
  EVENT_FAMILIES,
  type EventFamilyName,
} from '../../functions/core/shared/event-families.ts';
import { CONSUMER_SETTINGS } from '../../lib/event-family-queue.ts';
import { renderBody } from './metric-coverage.ts';
import {
  actionsOf,
  allPolicyStatements,
  type CfnResourceJson,
  CONSUMER_ENTRY,
  type DataIds,
  dataIds,
  ENTRY,
  envOf,
  functionByEntry,
  getAtt,
  indexArn,
  mappingsOf,
  observabilityAlarm,
  onlyResource,
  RUNTIME_ACTIONS,
  resolveImport,
  resources,
  roleStatements,
  routeByKey,
  type Statement,
  actionsOn as sharedActionsOn,
  integrationFunction as sharedIntegrationFunction,
  resourcesOfService as sharedResourcesOfService,
  sortedJson,
  stageRouteSettings,
  synthTemplates,
  type Templates,
} from './synth.ts';

/** Every function's own log group and X-Ray, beside its bindings. */
const XRAY_ACTIONS = RUNTIME_ACTIONS;
/** How each family is titled in the alarm ids (`<Family>DeadLetterQueueNotEmpty`...). */
const FAMILY_TITLE: Record<EventFamilyName, string> = {
  subscriptions: 'Subscriptions',
  payments: 'Payments',
};

let t: Templates;
let ids: DataIds;
beforeAll(() => {
  t = synthTemplates();
  ids = dataIds(t);
});

/** The actions `statements` allow on exactly `resource` (compared as CloudFormation JSON). */
function actionsOn(statements: Statement[], resource: unknown): string[] {
  return sharedActionsOn(t.data, statements, resource);
}

/** Every resource the statements allowing any of `prefix`'s actions name, once each. */
function resourcesOfService(statements: Statement[], prefix: string): string[] {
  return [...new Set(sharedResourcesOfService(t.data, statements, prefix))];
}

/** No function may hold BatchWriteItem: IAM grants a batch's deletes with its puts. */
function expectNoBatchWrites(statements: Statement[]): void {
  expect(statements.filter((s) => s.Action.includes('dynamodb:BatchWriteItem'))).toEqual([]);
}

function mappingOf(consumerEntry: string): CfnResourceJson {
  const [consumerId] = functionByEntry(t.service, consumerEntry);
  const mappings = mappingsOf(t.service, consumerId);
  if (mappings.length !== 1) {
    throw new Error(
      `expected one event source mapping on ${consumerEntry}, found ${mappings.length}`,
    );
  }
  return mappings[0]!;
}

describe('every function', () => {
  it('runs Node.js 22 on arm64 with active tracing and JSON logs into a retained log group', () => {
    const functions = resources(t.service, 'AWS::Lambda::Function');
    const logGroups = resources(t.service, 'AWS::Logs::LogGroup');
    for (const fn of Object.values(functions)) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'WARN' },
      });
      const logGroupId = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup
        .Ref;
      expect(logGroups[logGroupId]?.Properties.RetentionInDays).toBe(30);
    }
  });

  it('names its entry and carries the Powertools env', () => {
    const entries = Object.values(resources(t.service, 'AWS::Lambda::Function')).map((fn) => {
      expect(envOf(fn)).toMatchObject({
        POWERTOOLS_SERVICE_NAME: expect.any(String),
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      });
      return fn.Metadata?.['billing:entry'];
    });
    expect(entries.sort()).toEqual(Object.values(ENTRY).sort());
  });

  it('publishes its metrics under a service name of its own', () => {
    const services = Object.values(resources(t.service, 'AWS::Lambda::Function')).map(
      (fn) => envOf(fn).POWERTOOLS_SERVICE_NAME,
    );
    expect(new Set(services).size).toBe(services.length);
  });
});

describe.each(EVENT_FAMILIES)('the %s consumer', (family) => {
  it("polls its family's queue with the family's settings and partial batch failures", () => {
    const settings = CONSUMER_SETTINGS[family];
    const mapping = mappingOf(CONSUMER_ENTRY[family]);
    expect(mapping.Properties).toMatchObject({
      BatchSize: settings.batchSize,
      MaximumBatchingWindowInSeconds: settings.maxBatchingWindow.toSeconds(),
      ScalingConfig: { MaximumConcurrency: settings.maxConcurrency },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(resolveImport(t.data, mapping.Properties.EventSourceArn)).toEqual(
      getAtt(ids.queues[family].queue),
    );
  });

  it("runs with the family's timeout and memory and the ledger retention in env", () => {
    const [, consumer] = functionByEntry(t.service, CONSUMER_ENTRY[family]);
    expect(consumer.Properties).toMatchObject({
      Timeout: CONSUMER_SETTINGS[family].timeout.toSeconds(),
      MemorySize: CONSUMER_SETTINGS[family].memorySize,
    });
    expect(Number(envOf(consumer)[ENV.ledgerRetentionDays])).toBeGreaterThan(0);
  });

  it('may consume its own queue only, and send to none', () => {
    const [, consumer] = functionByEntry(t.service, CONSUMER_ENTRY[family]);
    const statements = roleStatements(t.service, consumer);
    const sqsActions = actionsOf(statements).filter((a) => a.startsWith('sqs:'));
    expect(sqsActions).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
    expect(sqsActions).not.toContain('sqs:SendMessage');
    expect(resourcesOfService(statements, 'sqs:')).toEqual(
      sortedJson([getAtt(ids.queues[family].queue)]),
    );
    expect(actionsOf(statements).some((a) => a.startsWith('secretsmanager:'))).toBe(false);
  });
});

describe('subscription consumer', () => {
  it('polls its queue in batches of 100, 2 s window, max 5 concurrent, partial failures', () => {
    const source = new Capture();
    t.service.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionByEntry(t.service, ENTRY.subscriptionConsumer)[0] },
      EventSourceArn: source,
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 2,
      ScalingConfig: { MaximumConcurrency: 5 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(resolveImport(t.data, source.asObject())).toEqual(
      getAtt(ids.queues.subscriptions.queue),
    );
  });

  it('has a 30 s timeout, 512 MB, and its tables, price map and ledger retention in env', () => {
    const [, consumer] = functionByEntry(t.service, ENTRY.subscriptionConsumer);
    expect(consumer.Properties).toMatchObject({ Timeout: 30, MemorySize: 512 });
    const env = envOf(consumer);
    expect(resolveImport(t.data, env[ENV.billingTableName])).toEqual({ Ref: ids.billing });
    expect(resolveImport(t.data, env[ENV.subscriptionLedgerTableName])).toEqual({
      Ref: ids.subscriptionLedger,
    });
    expect(env[ENV.priceTierMap]).toBe('{}');
    expect(Number(env[ENV.ledgerRetentionDays])).toBeGreaterThan(0);
  });

  it('passes the priceTierMap context through to PRICE_TIER_MAP', () => {
    const custom = synthTemplates({ priceTierMap: { price_gold: 'gold', price_b: 'bronze' } });
    const [, consumer] = functionByEntry(custom.service, ENTRY.subscriptionConsumer);
    expect(JSON.parse(String(envOf(consumer)[ENV.priceTierMap]))).toEqual({
      price_gold: 'gold',
      price_b: 'bronze',
    });
  });
});

describe('payment consumer', () => {
  it('has the payments, billing and penalties tables and the ledger retention in env, no price map', () => {
    const [, consumer] = functionByEntry(t.service, ENTRY.paymentConsumer);
    const env = envOf(consumer);
    expect(resolveImport(t.data, env[ENV.paymentsTableName])).toEqual({ Ref: ids.payments });
    expect(resolveImport(t.data, env[ENV.billingTableName])).toEqual({ Ref: ids.billing });
    expect(resolveImport(t.data, env[ENV.penaltiesTableName])).toEqual({ Ref: ids.penalties });
    // The consumer never calls Stripe.
    expect(env[ENV.stripeApiKeySecretArn]).toBeUndefined();
    expect(env[ENV.ledgerRetentionDays]).toBe(
      envOf(functionByEntry(t.service, ENTRY.subscriptionConsumer)[1])[ENV.ledgerRetentionDays],
    );
    expect(env[ENV.subscriptionLedgerTableName]).toBeUndefined();
    expect(env[ENV.priceTierMap]).toBeUndefined();
  });

  it('polls its queue in batches of 100, 2 s window, max 30 concurrent (10,000 events/s, docs/payments-capacity.md), partial failures', () => {
    const source = new Capture();
    t.service.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionByEntry(t.service, ENTRY.paymentConsumer)[0] },
      EventSourceArn: source,
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 2,
      ScalingConfig: { MaximumConcurrency: 30 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(resolveImport(t.data, source.asObject())).toEqual(getAtt(ids.queues.payments.queue));
  });
});

describe('least privilege', () => {
  it('webhook: SendMessage to exactly the two family queues and read of the secret, nothing else', () => {
    const [, webhook] = functionByEntry(t.service, ENTRY.webhook);
    const statements = roleStatements(t.service, webhook);
    expect(actionsOf(statements)).toEqual(
      [
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'sqs:SendMessage',
        ...XRAY_ACTIONS,
      ].sort(),
    );
    expect(resourcesOfService(statements, 'sqs:')).toEqual(
      sortedJson(EVENT_FAMILIES.map((family) => getAtt(ids.queues[family].queue))),
    );
    expect(resourcesOfService(statements, 'secretsmanager:')).toEqual(
      sortedJson([{ Ref: ids.secret }]),
    );
    const env = envOf(webhook);
    for (const family of EVENT_FAMILIES) {
      expect(resolveImport(t.data, env[EVENT_QUEUE_URL_ENV[family]]), family).toEqual({
        Ref: ids.queues[family].queue,
      });
    }
    expect(resolveImport(t.data, env[ENV.webhookSecretArn])).toEqual({ Ref: ids.secret });
    expect(env[ENV.webhookSecret]).toBeUndefined();
  });

  it('subscription read API: reads the profile; its Stripe fallback commits a snapshot like the consumer (no BatchGetItem, no Query), 15 s', () => {
    const [, read] = functionByEntry(t.service, ENTRY.subscriptionRead);
    const statements = roleStatements(t.service, read);
    expect(actionsOn(statements, getAtt(ids.billing))).toEqual(
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'].sort(),
    );
    expect(actionsOn(statements, getAtt(ids.subscriptionLedger))).toEqual(['dynamodb:PutItem']);
    expect(resourcesOfService(statements, 'dynamodb:')).toEqual(
      sortedJson([getAtt(ids.billing), getAtt(ids.subscriptionLedger)]),
    );
    const env = (read.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining([
        'BILLING_TABLE_NAME',
        'SUBSCRIPTION_LEDGER_TABLE_NAME',
        'STRIPE_API_KEY_SECRET_ARN',
        'PRICE_TIER_MAP',
        'LEDGER_RETENTION_DAYS',
      ]),
    );
    expect(env.STRIPE_SECRET_KEY).toBeUndefined();
    expect(read.Properties.Timeout).toBe(15);
    // Its snapshot's subscription pointers are put with PutItem: nothing can be deleted.
    expectNoBatchWrites(statements);
  });

  it('subscription consumer: the item actions of the contract on each table, and queue consumption', () => {
    const [, consumer] = functionByEntry(t.service, ENTRY.subscriptionConsumer);
    const statements = roleStatements(t.service, consumer);
    expect(actionsOn(statements, getAtt(ids.billing))).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ].sort(),
    );
    // Ledger pages are only appended by the consumer.
    expect(actionsOn(statements, getAtt(ids.subscriptionLedger))).toEqual(['dynamodb:PutItem']);
    expect(resourcesOfService(statements, 'dynamodb:')).toEqual(
      sortedJson([getAtt(ids.billing), getAtt(ids.subscriptionLedger)]),
    );
    // Subscription pointers are put with PutItem: nothing of the table can be deleted.
    expectNoBatchWrites(statements);
  });

  it('payment consumer: item actions on the payments table, BatchGetItem only on the billing table, BatchGetItem, GetItem and UpdateItem on the penalties table', () => {
    const [, consumer] = functionByEntry(t.service, ENTRY.paymentConsumer);
    const statements = roleStatements(t.service, consumer);
    expect(actionsOn(statements, getAtt(ids.payments))).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ].sort(),
    );
    // The customer → user link is the subscription consumer's: read in batches, never written.
    expect(actionsOn(statements, getAtt(ids.billing))).toEqual(['dynamodb:BatchGetItem']);
    // Settling a penalty PaymentIntent: its penalties read in a batch, then one
    // transaction of updates (status, summary, recipients' totals, the lock's release),
    // then the per-date counts it brought to zero read back by key and removed.
    expect(actionsOn(statements, getAtt(ids.penalties))).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
    ]);
    // No other table (the subscription ledger least of all), and no index: item actions
    // do not apply to indexes, so bindTable grants them on the table only.
    expect(resourcesOfService(statements, 'dynamodb:')).toEqual(
      sortedJson([getAtt(ids.payments), getAtt(ids.billing), getAtt(ids.penalties)]),
    );
    // Charge pointers are put with PutItem: no payment or ledger page can be deleted.
    expectNoBatchWrites(statements);
    expect(actionsOf(statements).filter((a) => !a.startsWith('sqs:'))).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        ...XRAY_ACTIONS,
      ].sort(),
    );
  });

  it('payment read API: GetItem, BatchGetItem and Query on the payments table and its indexes, GetItem on the billing table (profiles); read the cursor key', () => {
    const [, read] = functionByEntry(t.service, ENTRY.paymentRead);
    const statements = roleStatements(t.service, read);
    const readActions = ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'];
    const secretRead = ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'];
    expect(actionsOf(statements)).toEqual([...readActions, ...secretRead, ...XRAY_ACTIONS].sort());
    expect(resourcesOfService(statements, 'secretsmanager:')).toEqual(
      sortedJson([{ Ref: ids.cursorSigningKey }]),
    );
    expect(resolveImport(t.data, envOf(read)[ENV.cursorKeySecretArn])).toEqual({
      Ref: ids.cursorSigningKey,
    });
    const indexes = PAYMENT_INDEXES.map((index) => indexArn(ids.payments, index.indexName));
    expect(resourcesOfService(statements, 'dynamodb:')).toEqual(
      sortedJson([getAtt(ids.payments), ...indexes, getAtt(ids.billing)]),
    );
    expect(actionsOn(statements, getAtt(ids.payments))).toEqual(readActions);
    for (const index of indexes) expect(actionsOn(statements, index)).toEqual(readActions);
    // Whether a user with no payments has a profile: one GetItem, nothing else there.
    expect(actionsOn(statements, getAtt(ids.billing))).toEqual(['dynamodb:GetItem']);
    expect(resolveImport(t.data, envOf(read)[ENV.billingTableName])).toEqual({ Ref: ids.billing });
  });

  it('no policy anywhere allows Scan', () => {
    const actions = allPolicyStatements(t.data, t.service)
      .filter((s) => s.Effect === 'Allow')
      .flatMap((s) => s.Action);
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.filter((a) => /^dynamodb:(Scan|\*)$/i.test(a) || a === '*')).toEqual([]);
  });

  it('no DynamoDB or SQS action is allowed on a wildcard resource, and no action is a wildcard', () => {
    const allows = allPolicyStatements(t.data, t.service).filter((s) => s.Effect === 'Allow');
    expect(allows.length).toBeGreaterThan(0);
    for (const statement of allows) {
      expect(statement.Action.every((a) => !a.endsWith(':*') && a !== '*')).toBe(true);
      if (statement.Action.some((a) => a.startsWith('dynamodb:') || a.startsWith('sqs:'))) {
        expect(statement.Resource).not.toContain('*');
      }
    }
  });

  it('function roles carry no managed policy, and write logs only to their own log group', () => {
    const lambdaRoles = Object.values(resources(t.service, 'AWS::IAM::Role')).filter((role) =>
      JSON.stringify(role.Properties.AssumeRolePolicyDocument).includes('lambda.amazonaws.com'),
    );
    expect(lambdaRoles.length).toBeGreaterThanOrEqual(Object.keys(ENTRY).length);
    for (const role of lambdaRoles) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    for (const fn of Object.values(resources(t.service, 'AWS::Lambda::Function'))) {
      const logs = roleStatements(t.service, fn).filter((s) =>
        s.Action.some((a) => a.startsWith('logs:')),
      );
      const logGroup = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(logs.flatMap((s) => s.Resource)).toEqual([getAtt(logGroup)]);
    }
  });
});

describe('HTTP API', () => {
  const route = (routeKey: string) => routeByKey(t.service, routeKey);
  const integrationFunction = (r: CfnResourceJson) => sharedIntegrationFunction(t.service, r);
  const routeSettings = () => stageRouteSettings(t.service);

  it('POST /webhooks/stripe has no authorizer (Stripe signs) and reaches the webhook', () => {
    const webhookRoute = route('POST /webhooks/stripe');
    expect(webhookRoute.Properties.AuthorizationType).toBe('NONE');
    expect(webhookRoute.Properties.AuthorizerId).toBeUndefined();
    expect(integrationFunction(webhookRoute)).toBe(functionByEntry(t.service, ENTRY.webhook)[0]);
  });

  it('GET /users/{userId}/subscription requires IAM and reaches the subscription read function', () => {
    const readRoute = route('GET /users/{userId}/subscription');
    expect(readRoute.Properties.AuthorizationType).toBe('AWS_IAM');
    expect(integrationFunction(readRoute)).toBe(
      functionByEntry(t.service, ENTRY.subscriptionRead)[0],
    );
  });

  it.each(Object.entries(PAYMENT_ROUTES))(
    'payment route %s (%s) is a throttled, IAM-authorised GET on the payment read function',
    (_, path) => {
      const key = `GET ${path}`;
      const paymentRoute = route(key);
      expect(paymentRoute.Properties.AuthorizationType).toBe('AWS_IAM');
      expect(integrationFunction(paymentRoute)).toBe(
        functionByEntry(t.service, ENTRY.paymentRead)[0],
      );
      expect(routeSettings()[key]?.ThrottlingRateLimit).toBeGreaterThan(0);
      expect(routeSettings()[key]?.ThrottlingBurstLimit).toBeGreaterThan(0);
      // Reads only: no other method on a payment path.
      const methods = Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route'))
        .map((r) => String(r.Properties.RouteKey))
        .filter((routeKey) => routeKey.endsWith(` ${path}`));
      expect(methods).toEqual([key]);
    },
  );

  it('every route except the Stripe webhook requires IAM', () => {
    for (const r of Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route'))) {
      if (r.Properties.RouteKey === 'POST /webhooks/stripe') continue;
      expect(r.Properties.AuthorizationType, String(r.Properties.RouteKey)).toBe('AWS_IAM');
    }
  });

  it('throttles each route on the stage, which is deployed after the routes exist', () => {
    const [, stage] = onlyResource(t.service, 'AWS::ApiGatewayV2::Stage');
    const settings = routeSettings();
    const routeKeys = Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route')).map(
      (r) => r.Properties.RouteKey as string,
    );
    expect(Object.keys(settings).sort()).toEqual([...routeKeys].sort());
    for (const key of routeKeys) {
      expect(settings[key]?.ThrottlingRateLimit).toBeGreaterThan(0);
      expect(settings[key]?.ThrottlingBurstLimit).toBeGreaterThan(0);
    }
    const routeIds = Object.keys(resources(t.service, 'AWS::ApiGatewayV2::Route'));
    expect(stage.DependsOn).toEqual(expect.arrayContaining(routeIds));
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: {
        ThrottlingRateLimit: expect.any(Number),
        ThrottlingBurstLimit: expect.any(Number),
      },
    });
  });

  it('writes access logs to a log group with retention', () => {
    const [, stage] = onlyResource(t.service, 'AWS::ApiGatewayV2::Stage');
    const settings = stage.Properties.AccessLogSettings as {
      DestinationArn: { 'Fn::GetAtt': [string] };
      Format: string;
    };
    expect(JSON.parse(settings.Format)).toMatchObject({ requestId: '$context.requestId' });
    const logGroup = resources(t.service, 'AWS::Logs::LogGroup')[
      settings.DestinationArn['Fn::GetAtt'][0]
    ];
    expect(logGroup?.Properties.RetentionInDays).toBeGreaterThan(0);
  });
});

describe('observability', () => {
  const alarms = () => Object.values(resources(t.service, 'AWS::CloudWatch::Alarm'));

  function alarmOn(metricName: string, namespace: string): CfnResourceJson[] {
    return alarms().filter(
      (a) => a.Properties.MetricName === metricName && a.Properties.Namespace === namespace,
    );
  }

  const alarm = (id: string) => observabilityAlarm(t, id);

  function dimensions(a: CfnResourceJson): Array<{ Name: string; Value: unknown }> {
    return (a.Properties.Dimensions as Array<{ Name: string; Value: unknown }>).map((d) => ({
      Name: d.Name,
      Value: resolveImport(t.data, d.Value),
    }));
  }

  describe.each(EVENT_FAMILIES)('per family: %s', (family) => {
    const title = FAMILY_TITLE[family];

    it(`${title}DeadLetterQueueNotEmpty fires on any message in the family's DLQ`, () => {
      const a = alarm(`${title}DeadLetterQueueNotEmpty`);
      expect(a.Properties).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      expect(dimensions(a)).toEqual([
        { Name: 'QueueName', Value: getAtt(ids.queues[family].dlq, 'QueueName') },
      ]);
    });

    it(`${title}OldestMessageTooOld fires when the family's oldest event waited over 300 s`, () => {
      const a = alarm(`${title}OldestMessageTooOld`);
      expect(a.Properties).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Threshold: 300,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      expect(dimensions(a)).toEqual([
        { Name: 'QueueName', Value: getAtt(ids.queues[family].queue, 'QueueName') },
      ]);
    });

    it(`${title}EventsFailed watches the family consumer's EventsFailed with its service dimension`, () => {
      const a = alarm(`${title}EventsFailed`);
      const [, consumer] = functionByEntry(t.service, CONSUMER_ENTRY[family]);
      expect(a.Properties).toMatchObject({
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC.eventsFailed,
        Threshold: 1,
      });
      expect(dimensions(a)).toEqual([
        { Name: 'service', Value: envOf(consumer).POWERTOOLS_SERVICE_NAME },
      ]);
    });
  });

  it.each([
    ['WebhookWrongMode', METRIC.webhookWrongMode, ENTRY.webhook, 1, 1],
    ['WebhookTypesUnrouted', METRIC.webhookUnrouted, ENTRY.webhook, 1, 12],
    [
      'SubscriptionTiesUnresolved',
      METRIC.subscriptionTiesUnresolved,
      ENTRY.subscriptionConsumer,
      1,
      1,
    ],
  ])(
    '%s watches %s of its function (service dimension only)',
    (id, metricName, entry, threshold, periods) => {
      const a = alarm(id);
      const [, fn] = functionByEntry(t.service, entry);
      expect(a.Properties).toMatchObject({
        Namespace: METRICS_NAMESPACE,
        MetricName: metricName,
        Threshold: threshold,
        EvaluationPeriods: periods,
      });
      expect(dimensions(a)).toEqual([
        { Name: 'service', Value: envOf(fn).POWERTOOLS_SERVICE_NAME },
      ]);
    },
  );

  it('StripeCircuitOpen sums the breaker openings of every function that calls Stripe', () => {
    const a = alarm('StripeCircuitOpen');
    const metrics = a.Properties.Metrics as Array<{
      Id: string;
      Expression?: string;
      MetricStat?: { Metric: { MetricName: string; Dimensions: Array<{ Value: string }> } };
    }>;
    const stats = metrics.filter((m) => m.MetricStat);
    expect(new Set(stats.map((m) => m.MetricStat!.Metric.MetricName))).toEqual(
      new Set([METRIC.stripeCircuitOpened]),
    );
    expect(stats.map((m) => m.MetricStat!.Metric.Dimensions[0]!.Value).sort()).toEqual(
      ['penalty-api', 'penalty-settlement-sweeper', 'subscription-read'].sort(),
    );
    expect(metrics.find((m) => m.Expression)?.Expression).toBe(
      'FILL(m0, 0) + FILL(m1, 0) + FILL(m2, 0)',
    );
  });

  it("graphs each Stripe caller's breaker state (Maximum) beside the other Stripe widgets", () => {
    const [, dashboard] = onlyResource(t.service, 'AWS::CloudWatch::Dashboard');
    const body = JSON.parse(renderBody(dashboard.Properties.DashboardBody)) as {
      widgets: Array<{
        y: number;
        properties?: { title?: string; metrics?: unknown[][]; yAxis?: unknown };
      }>;
    };
    const titled = (prefix: string) => {
      const found = body.widgets.filter((w) => w.properties?.title?.startsWith(prefix));
      expect(found, prefix).toHaveLength(1);
      return found[0]!;
    };
    const state = titled('Stripe: circuit breaker state');
    // [namespace, name, 'service', service, { stat, label }], "." repeating the row above.
    let previous: unknown[] = [];
    const rows = (state.properties?.metrics ?? []).map((row) => {
      const full = row.map((cell, i) => (cell === '.' ? previous[i] : cell));
      previous = full;
      return full;
    });
    expect(rows.map((row) => row.slice(0, 4))).toEqual(
      ['subscription-read', 'penalty-api', 'penalty-settlement-sweeper'].map((service) => [
        METRICS_NAMESPACE,
        METRIC.stripeCircuitState,
        'service',
        service,
      ]),
    );
    for (const row of rows) expect(row[4]).toMatchObject({ stat: 'Maximum' });
    expect(state.properties?.yAxis).toMatchObject({ left: { min: 0, max: 2 } });
    // Same row as the calls and latency widgets.
    expect(state.y).toBe(titled('Stripe: calls and fallback').y);
    expect(state.y).toBe(titled('Stripe: call latency').y);
    // The opening alarm is still the one that pages.
    expect(alarm('StripeCircuitOpen').Properties.AlarmActions).toHaveLength(1);
  });

  it('alarms on API 5xx', () => {
    expect(alarmOn('5xx', 'AWS/ApiGateway')).toHaveLength(1);
  });

  it('alarms on errors and throttles of every function', () => {
    for (const fnId of Object.keys(resources(t.service, 'AWS::Lambda::Function'))) {
      for (const metric of ['Errors', 'Throttles']) {
        const matching = alarmOn(metric, 'AWS/Lambda').filter((a) =>
          JSON.stringify(a.Properties.Dimensions).includes(`"Ref":"${fnId}"`),
        );
        expect(matching, `${metric} alarm for ${fnId}`).toHaveLength(1);
      }
    }
  });

  it('sends every alarm to the SNS topic, and e-mails it only when alarmEmail is set', () => {
    const [topicId] = onlyResource(t.service, 'AWS::SNS::Topic');
    for (const a of alarms()) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    }
    t.service.resourceCountIs('AWS::SNS::Subscription', 0);
    const withEmail = synthTemplates({ alarmEmail: 'oncall@example.com' });
    withEmail.service.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });

  it('has a dashboard, and outputs its name and the API and webhook URLs', () => {
    const [dashboardId] = onlyResource(t.service, 'AWS::CloudWatch::Dashboard');
    t.service.hasOutput('DashboardName', { Value: { Ref: dashboardId } });
    t.service.hasOutput('ApiUrl', Match.anyValue());
    const webhookUrl = new Capture();
    t.service.hasOutput('WebhookUrl', { Value: webhookUrl });
    expect(JSON.stringify(webhookUrl.asObject())).toContain('/webhooks/stripe');
  });

  it("outputs the configuration the functions are deployed with, for the operators' resync: price→tier map, credit allowances, ledger retention", () => {
    // A deployment without context: the empty map, the defaults.
    t.service.hasOutput('PriceTierMap', { Value: '{}' });
    t.service.hasOutput('CreditAllowances', {
      Value: JSON.stringify({ free: 1, bronze: 3, silver: 5, gold: 10 }),
    });
    t.service.hasOutput('LedgerRetentionDays', { Value: '90' });
    // Deployed with -c priceTierMap=... (a string, as the CLI passes it) and the others.
    const custom = synthTemplates({
      priceTierMap: '{"price_gold":"gold","price_b":"bronze"}',
      creditAllowances: { gold: 12 },
      ledgerRetentionDays: 30,
    });
    const value = (key: string) => {
      const outputs = custom.service.findOutputs(key);
      expect(Object.keys(outputs), key).toEqual([key]);
      return outputs[key]!.Value as string;
    };
    expect(JSON.parse(value('PriceTierMap'))).toEqual({ price_gold: 'gold', price_b: 'bronze' });
    expect(JSON.parse(value('CreditAllowances'))).toEqual({
      free: 1,
      bronze: 3,
      silver: 5,
      gold: 12,
    });
    expect(value('LedgerRetentionDays')).toBe('30');
    // The same values the subscription consumer is given.
    const [, consumer] = functionByEntry(custom.service, ENTRY.subscriptionConsumer);
    const env = envOf(consumer);
    expect(value('PriceTierMap')).toBe(env[ENV.priceTierMap]);
    expect(value('CreditAllowances')).toBe(env[ENV.creditAllowances]);
    expect(value('LedgerRetentionDays')).toBe(env[ENV.ledgerRetentionDays]);
  });

  it('graphs webhook rejections by the reason dimension they are published with', () => {
    const [, dashboard] = onlyResource(t.service, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    const search =
      /SEARCH\('\{(\w+),reason,service\} MetricName=\\+"(\w+)\\+" service=\\+"([\w-]+)/.exec(body);
    expect(search?.slice(1)).toEqual([
      METRICS_NAMESPACE,
      METRIC.webhookRejected,
      'webhook-ingress',
    ]);
  });

  it("graphs the payment consumer's events per second, lag, queue and DLQ on a row of its own, and shows its alarms", () => {
    const [, dashboard] = onlyResource(t.service, 'AWS::CloudWatch::Dashboard');
    // The body with each CloudFormation token kept as a numbered placeholder (resolved
    // through the data stack's exports), so a widget's queue can be told from another's.
    const tokens: unknown[] = [];
    const render = (value: unknown): string => {
      if (typeof value === 'string') return value;
      const join = (value as { 'Fn::Join'?: [string, unknown[]] } | null)?.['Fn::Join'];
      if (join) return join[1].map(render).join(join[0]);
      tokens.push(resolveImport(t.data, value));
      return `__token_${tokens.length - 1}__`;
    };
    const resolved = (cell: unknown) => {
      const index = typeof cell === 'string' ? /^__token_(\d+)__$/.exec(cell)?.[1] : undefined;
      return index === undefined ? cell : tokens[Number(index)];
    };
    const body = JSON.parse(render(dashboard.Properties.DashboardBody)) as {
      widgets: Array<{
        type: string;
        y: number;
        properties?: { title?: string; metrics?: unknown[][]; alarms?: unknown[] };
      }>;
    };
    const titled = (title: string) => {
      const found = body.widgets.filter((w) => w.properties?.title === title);
      expect(found, title).toHaveLength(1);
      return found[0]!;
    };
    // [namespace, name, dimension, value, options?], "." repeating the row above.
    const rowsOf = (title: string) => {
      let previous: unknown[] = [];
      return (titled(title).properties?.metrics ?? []).map((row) => {
        const full = row.map((cell, i) => (cell === '.' ? previous[i] : cell));
        previous = full;
        return full.map(resolved);
      });
    };
    const [, consumer] = functionByEntry(t.service, ENTRY.paymentConsumer);
    const service = envOf(consumer).POWERTOOLS_SERVICE_NAME;
    const consumerRow = (name: string) => [METRICS_NAMESPACE, name, 'service', service];

    // Per second: each Sum divided by its period, the Sums themselves hidden.
    const eventRows = rowsOf('Payments: events per second');
    const expressions = eventRows
      .filter((row) => row.length === 1)
      .map((row) => row[0] as { expression: string; label: string });
    expect(expressions.map((e) => e.label)).toEqual([
      'applied',
      'duplicate',
      'out of order',
      'ignored',
      'failed',
    ]);
    const sums = eventRows.filter((row) => row.length > 1);
    expect(sums.map((row) => row.slice(0, 4))).toEqual(
      [
        METRIC.eventsProcessed,
        METRIC.eventsDuplicate,
        METRIC.eventsOutOfOrder,
        METRIC.eventsIgnored,
        METRIC.eventsFailed,
      ].map(consumerRow),
    );
    sums.forEach((row, index) => {
      const options = row[4] as { id: string; visible: boolean; stat: string };
      expect(options).toMatchObject({ visible: false, stat: 'Sum' });
      expect(expressions[index]?.expression).toBe(`${options.id} / PERIOD(${options.id})`);
    });
    const lag = rowsOf('Payments: processing lag (ms)');
    expect(lag.map((row) => row.slice(0, 4))).toEqual(
      [METRIC.processingLag, METRIC.processingLag, METRIC.endToEndLag].map(consumerRow),
    );
    expect(lag.map((row) => (row[4] as { stat?: string } | undefined)?.stat)).toEqual([
      'p50',
      'p99',
      'p99',
    ]);
    const queueName = getAtt(ids.queues.payments.queue, 'QueueName');
    const dlqName = getAtt(ids.queues.payments.dlq, 'QueueName');
    expect(rowsOf('Payments: queue').map((row) => row.slice(0, 4))).toEqual([
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', queueName],
      ['AWS/SQS', 'ApproximateNumberOfMessagesNotVisible', 'QueueName', queueName],
      ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', queueName],
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', dlqName],
    ]);
    // Not the subscriptions' queue or consumer: the families stay apart on the dashboard.
    expect(JSON.stringify(rowsOf('Subscriptions: queue'))).not.toContain(JSON.stringify(queueName));
    expect(rowsOf('Subscriptions: events per second').find((row) => row.length > 1)?.[3]).not.toBe(
      service,
    );
    // The three payment widgets share one row.
    const row = titled('Payments: events per second').y;
    expect(titled('Payments: processing lag (ms)').y).toBe(row);
    expect(titled('Payments: queue').y).toBe(row);

    // The alarm status widget shows the payment family's alarms.
    const shown = body.widgets
      .filter((w) => w.type === 'alarm')
      .flatMap((w) => (w.properties?.alarms ?? []).map(resolved));
    const alarmEntries = Object.entries(resources(t.service, 'AWS::CloudWatch::Alarm'));
    for (const id of [
      'PaymentsDeadLetterQueueNotEmpty',
      'PaymentsOldestMessageTooOld',
      'PaymentsEventsFailed',
    ]) {
      const expected = JSON.stringify(alarm(id));
      const [alarmId] = alarmEntries.find(([, a]) => JSON.stringify(a) === expected) ?? [];
      expect(alarmId, id).toBeDefined();
      expect(shown, id).toContainEqual(getAtt(alarmId!, 'Arn'));
    }
  });
});
