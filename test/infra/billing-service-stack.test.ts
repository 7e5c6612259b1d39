import { Capture, Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/commons/env-names.ts';
import { METRIC, METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import {
  actionsOf,
  type CfnResourceJson,
  envOf,
  functionByEntry,
  onlyResource,
  resolveImport,
  resources,
  roleStatements,
  type Statement,
  statementsOf,
  synthTemplates,
  type Templates,
} from './synth.ts';

const WEBHOOK = 'functions/webhook-ingress.ts';
const CONSUMER = 'functions/subscription-consumer.ts';
const READ = 'functions/subscription-read.ts';
const XRAY_ACTIONS = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];

let t: Templates;
beforeAll(() => {
  t = synthTemplates();
});

/** Logical ids of the data stack's resources, told apart by what they are, not by name. */
function dataIds() {
  const tables = Object.entries(resources(t.data, 'AWS::DynamoDB::Table'));
  const billing = tables.find(([, r]) => r.Properties.TimeToLiveSpecification === undefined);
  const events = tables.find(([, r]) => r.Properties.TimeToLiveSpecification !== undefined);
  const queues = Object.entries(resources(t.data, 'AWS::SQS::Queue'));
  const queue = queues.find(([, r]) => r.Properties.RedrivePolicy !== undefined);
  const dlq = queues.find(([, r]) => r.Properties.RedrivePolicy === undefined);
  const [secret] = onlyResource(t.data, 'AWS::SecretsManager::Secret');
  if (!billing || !events || !queue || !dlq) throw new Error('data stack shape changed');
  return { billing: billing[0], events: events[0], queue: queue[0], dlq: dlq[0], secret };
}

/** Resolves a statement's resources through imports, e.g. `{ 'Fn::GetAtt': [queueId, 'Arn'] }`. */
function resolvedResources(statement: Statement): unknown[] {
  return statement.Resource.map((r) => resolveImport(t.data, r));
}

describe('every function', () => {
  it('runs Node.js 22 on arm64 with active tracing and JSON logs into a retained log group', () => {
    const functions = resources(t.service, 'AWS::Lambda::Function');
    const logGroups = resources(t.service, 'AWS::Logs::LogGroup');
    expect(Object.keys(functions)).toHaveLength(3);
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
    expect(entries.sort()).toEqual([CONSUMER, READ, WEBHOOK].sort());
  });
});

describe('subscription consumer', () => {
  it('polls the event queue in batches of 100, 2 s window, max 5 concurrent, partial failures', () => {
    const [consumerId] = functionByEntry(t.service, CONSUMER);
    const source = new Capture();
    t.service.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: consumerId },
      EventSourceArn: source,
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 2,
      ScalingConfig: { MaximumConcurrency: 5 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(resolveImport(t.data, source.asObject())).toEqual({
      'Fn::GetAtt': [dataIds().queue, 'Arn'],
    });
  });

  it('has a 30 s timeout, 512 MB, and its tables, price map and ledger retention in env', () => {
    const [, consumer] = functionByEntry(t.service, CONSUMER);
    const ids = dataIds();
    expect(consumer.Properties).toMatchObject({ Timeout: 30, MemorySize: 512 });
    const env = envOf(consumer);
    expect(resolveImport(t.data, env[ENV.billingTableName])).toEqual({ Ref: ids.billing });
    expect(resolveImport(t.data, env[ENV.eventsTableName])).toEqual({ Ref: ids.events });
    expect(env[ENV.priceTierMap]).toBe('{}');
    expect(Number(env[ENV.ledgerRetentionDays])).toBeGreaterThan(0);
  });

  it('passes the priceTierMap context through to PRICE_TIER_MAP', () => {
    const custom = synthTemplates({ priceTierMap: { price_gold: 'gold', price_b: 'bronze' } });
    const [, consumer] = functionByEntry(custom.service, CONSUMER);
    expect(JSON.parse(String(envOf(consumer)[ENV.priceTierMap]))).toEqual({
      price_gold: 'gold',
      price_b: 'bronze',
    });
  });
});

describe('least privilege', () => {
  it('webhook: SendMessage on the event queue and read of the signing secret, nothing else', () => {
    const [, webhook] = functionByEntry(t.service, WEBHOOK);
    const statements = roleStatements(t.service, webhook);
    const ids = dataIds();
    expect(actionsOf(statements)).toEqual(
      [
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'sqs:SendMessage',
        ...XRAY_ACTIONS,
      ].sort(),
    );
    for (const statement of statements) {
      if (statement.Action.some((a) => a.startsWith('sqs:'))) {
        expect(resolvedResources(statement)).toEqual([{ 'Fn::GetAtt': [ids.queue, 'Arn'] }]);
      }
      if (statement.Action.some((a) => a.startsWith('secretsmanager:'))) {
        expect(resolvedResources(statement)).toEqual([{ Ref: ids.secret }]);
      }
    }
    const env = envOf(webhook);
    expect(resolveImport(t.data, env[ENV.eventQueueUrl])).toEqual({ Ref: ids.queue });
    expect(resolveImport(t.data, env[ENV.webhookSecretArn])).toEqual({ Ref: ids.secret });
    expect(env[ENV.webhookSecret]).toBeUndefined();
  });

  it('read API: GetItem on the billing table only', () => {
    const [, read] = functionByEntry(t.service, READ);
    const statements = roleStatements(t.service, read);
    expect(actionsOf(statements)).toEqual(['dynamodb:GetItem', ...XRAY_ACTIONS].sort());
    const dynamo = statements.filter((s) => s.Action.includes('dynamodb:GetItem'));
    expect(dynamo.flatMap(resolvedResources)).toEqual([
      { 'Fn::GetAtt': [dataIds().billing, 'Arn'] },
    ]);
  });

  it('consumer: the item actions of the contract on each table, and queue consumption', () => {
    const [, consumer] = functionByEntry(t.service, CONSUMER);
    const statements = roleStatements(t.service, consumer);
    const ids = dataIds();
    const actionsOn = (resource: unknown) =>
      actionsOf(
        statements.filter((s) =>
          resolvedResources(s).some((r) => JSON.stringify(r) === JSON.stringify(resource)),
        ),
      );
    expect(actionsOn({ 'Fn::GetAtt': [ids.billing, 'Arn'] })).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ].sort(),
    );
    // Ledger pages are only appended by the consumer.
    expect(actionsOn({ 'Fn::GetAtt': [ids.events, 'Arn'] })).toEqual(['dynamodb:PutItem']);
    const sqsActions = actionsOf(statements).filter((a) => a.startsWith('sqs:'));
    expect(sqsActions).not.toContain('sqs:SendMessage');
    expect(sqsActions).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
    expect(actionsOf(statements).some((a) => a.startsWith('secretsmanager:'))).toBe(false);
  });

  it('no DynamoDB or SQS action is allowed on a wildcard resource, and no action is a wildcard', () => {
    const allows = [t.data, t.service].flatMap((template) =>
      Object.values(resources(template, 'AWS::IAM::Policy'))
        .flatMap((p: CfnResourceJson) => statementsOf(p.Properties.PolicyDocument))
        .filter((s) => s.Effect === 'Allow'),
    );
    expect(allows.length).toBeGreaterThan(0);
    for (const statement of allows) {
      expect(statement.Action.every((a) => !a.endsWith(':*') && a !== '*')).toBe(true);
      if (statement.Action.some((a) => a.startsWith('dynamodb:') || a.startsWith('sqs:'))) {
        expect(statement.Resource).not.toContain('*');
      }
    }
  });

  it('roles use only the basic execution managed policy (logs)', () => {
    for (const role of Object.values(resources(t.service, 'AWS::IAM::Role'))) {
      const managed = JSON.stringify(role.Properties.ManagedPolicyArns ?? []);
      expect(managed).toContain('service-role/AWSLambdaBasicExecutionRole');
      expect((role.Properties.ManagedPolicyArns as unknown[]).length).toBe(1);
    }
  });
});

describe('HTTP API', () => {
  function route(routeKey: string): CfnResourceJson {
    const found = Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route')).find(
      (r) => r.Properties.RouteKey === routeKey,
    );
    if (!found) throw new Error(`no route ${routeKey}`);
    return found;
  }

  function integrationFunction(r: CfnResourceJson): string {
    const target = JSON.stringify(r.Properties.Target);
    const integrationId = /"Ref":"([^"]+)"/.exec(target)?.[1] ?? '';
    const integration = resources(t.service, 'AWS::ApiGatewayV2::Integration')[integrationId];
    if (!integration) throw new Error(`no integration ${integrationId}`);
    return (integration.Properties.IntegrationUri as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
  }

  it('POST /webhooks/stripe has no authorizer (Stripe signs) and reaches the webhook', () => {
    const webhookRoute = route('POST /webhooks/stripe');
    expect(webhookRoute.Properties.AuthorizationType).toBe('NONE');
    expect(webhookRoute.Properties.AuthorizerId).toBeUndefined();
    expect(integrationFunction(webhookRoute)).toBe(functionByEntry(t.service, WEBHOOK)[0]);
  });

  it('GET /users/{userId}/subscription requires IAM and reaches the read function', () => {
    const readRoute = route('GET /users/{userId}/subscription');
    expect(readRoute.Properties.AuthorizationType).toBe('AWS_IAM');
    expect(integrationFunction(readRoute)).toBe(functionByEntry(t.service, READ)[0]);
  });

  it('throttles each route on the stage, which is deployed after the routes exist', () => {
    const [, stage] = onlyResource(t.service, 'AWS::ApiGatewayV2::Stage');
    const settings = stage.Properties.RouteSettings as Record<string, Record<string, number>>;
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

  it('alarms when the DLQ has any message', () => {
    const [alarm] = alarmOn('ApproximateNumberOfMessagesVisible', 'AWS/SQS');
    expect(alarm?.Properties).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    const dimension = (alarm?.Properties.Dimensions as Array<{ Value: unknown }> | undefined)?.[0]
      ?.Value;
    expect(resolveImport(t.data, dimension)).toEqual({
      'Fn::GetAtt': [dataIds().dlq, 'QueueName'],
    });
  });

  it('alarms when the oldest event is older than 300 s', () => {
    const [alarm] = alarmOn('ApproximateAgeOfOldestMessage', 'AWS/SQS');
    expect(alarm?.Properties).toMatchObject({
      Threshold: 300,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    const dimension = (alarm?.Properties.Dimensions as Array<{ Value: unknown }> | undefined)?.[0]
      ?.Value;
    expect(resolveImport(t.data, dimension)).toEqual({
      'Fn::GetAtt': [dataIds().queue, 'QueueName'],
    });
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

  it("alarms on the consumer's EventsFailed metric with the service dimension it publishes", () => {
    const [, consumer] = functionByEntry(t.service, CONSUMER);
    t.service.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.eventsFailed,
      Dimensions: [{ Name: 'service', Value: envOf(consumer).POWERTOOLS_SERVICE_NAME }],
    });
  });

  it('sends every alarm to the SNS topic, and e-mails it only when alarmEmail is set', () => {
    const [topicId] = onlyResource(t.service, 'AWS::SNS::Topic');
    for (const alarm of alarms()) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
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
});
