/**
 * The credit refresh in the synthesized templates (DESIGN §8.2): the planner's
 * schedule, the worker's queue mapping, the functions' grants and env, the credit
 * routes and the credit alarms. The refresh queue and the slot index are in the data
 * stack's tests (billing-data-stack.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { CREDIT_SLOT_INDEX } from '../../functions/adapters/dynamodb/credit-table-schema.ts';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  PENALTY_STATUS_INDEX,
} from '../../functions/adapters/dynamodb/penalty-table-schema.ts';
import { creditAllowancesEnv, readEnv } from '../../functions/commons/env.ts';
import { ENV } from '../../functions/commons/env-names.ts';
import { METRIC, METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import { CREDIT_ROUTES } from '../../functions/commons/routes.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../functions/core/credits/allowances.ts';
import { parseMaxReceiveCount } from '../../functions/credit-worker.ts';
import { createBillingApp } from '../../lib/billing-app.ts';
import { ConfigError, creditAllowancesFromContext } from '../../lib/config.ts';
import { CREDIT_PLANNER_SCHEDULE } from '../../lib/credit-refresh.ts';
import { CREDIT_WORKER_SETTINGS } from '../../lib/event-family-queue.ts';
import { renderBody } from './metric-coverage.ts';
import {
  actionsOf,
  actionsOn,
  type CfnResourceJson,
  CONSUMER_ENTRY,
  type CreditIds,
  creditIds,
  type DataIds,
  dataIds,
  ENTRY,
  envOf,
  functionByEntry,
  getAtt,
  indexArn,
  integrationFunction,
  mappingsOf,
  observabilityAlarm,
  onlyResource,
  RUNTIME_ACTIONS,
  resolveImport,
  resolveImports,
  resources,
  resourcesOfService,
  roleStatements,
  routeByKey,
  type Statement,
  sortedJson,
  stageRouteSettings,
  statementsOf,
  synthTemplates,
  type Templates,
} from './synth.ts';

/** Every function's own log group and X-Ray, beside its bindings. */
const XRAY_ACTIONS = RUNTIME_ACTIONS;
/** What the planner (and the admin, which runs it on demand) may do on the billing table. */
const PLANNER_TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'];
/** The input Scheduler sends, before it fills in the context attribute. */
const SCHEDULED_TIME_INPUT = { scheduledTime: '<aws.scheduler.scheduled-time>' };

let t: Templates;
let ids: DataIds;
let credit: CreditIds;
beforeAll(() => {
  t = synthTemplates();
  ids = dataIds(t);
  credit = creditIds(t);
});

function fnResource(logicalId: string): CfnResourceJson {
  const found = resources(t.service, 'AWS::Lambda::Function')[logicalId];
  if (!found) throw new Error(`no function ${logicalId}`);
  return found;
}

function statementsOfFn(logicalId: string): Statement[] {
  return roleStatements(t.service, fnResource(logicalId));
}

/** Resource → allowed actions, every import resolved: two grants compared as a whole. */
function grantsByResource(statements: Statement[]): Record<string, string[]> {
  const resourcesNamed = new Set(
    statements.flatMap((s) => s.Resource.map((r) => JSON.stringify(resolveImports(t.data, r)))),
  );
  return Object.fromEntries(
    [...resourcesNamed]
      .sort()
      .map((resource) => [resource, actionsOn(t.data, statements, JSON.parse(resource))]),
  );
}

describe('the credit functions', () => {
  it('are the four credit entries, each with a service name of its own', () => {
    expect(envOf(fnResource(credit.planner)).POWERTOOLS_SERVICE_NAME).toBe('credit-planner');
    expect(envOf(fnResource(credit.worker)).POWERTOOLS_SERVICE_NAME).toBe('credit-worker');
    expect(envOf(fnResource(credit.reader)).POWERTOOLS_SERVICE_NAME).toBe('credit-read');
    expect(envOf(fnResource(credit.admin)).POWERTOOLS_SERVICE_NAME).toBe('credit-admin');
    expect(functionByEntry(t.service, ENTRY.creditPlanner)[0]).toBe(credit.planner);
    expect(functionByEntry(t.service, ENTRY.creditWorker)[0]).toBe(credit.worker);
    expect(functionByEntry(t.service, ENTRY.creditRead)[0]).toBe(credit.reader);
    expect(functionByEntry(t.service, ENTRY.creditAdmin)[0]).toBe(credit.admin);
  });

  it('answer the API within its 30 s integration limit (admin 29 s), and the planner within 2 min', () => {
    expect(fnResource(credit.admin).Properties.Timeout).toBe(29);
    expect(fnResource(credit.reader).Properties.Timeout).toBeLessThanOrEqual(29);
    // Well inside the five minutes between two runs.
    expect(fnResource(credit.planner).Properties.Timeout).toBe(120);
  });
});

describe('the planner schedule', () => {
  function schedule(): CfnResourceJson {
    const found = resources(t.service, 'AWS::Scheduler::Schedule')[credit.schedule];
    if (!found) throw new Error(`no schedule ${credit.schedule}`);
    return found;
  }

  it('is the only schedule invoking the planner', () => {
    const planners = Object.entries(resources(t.service, 'AWS::Scheduler::Schedule')).filter(
      ([, s]) =>
        JSON.stringify((s.Properties.Target as { Arn: unknown }).Arn) ===
        JSON.stringify(getAtt(credit.planner)),
    );
    expect(planners.map(([id]) => id)).toEqual([credit.schedule]);
  });

  function target(): Record<string, unknown> {
    return schedule().Properties.Target as Record<string, unknown>;
  }

  it('fires every five minutes on the clock (UTC), enabled, with the flexible time window off', () => {
    expect(CREDIT_PLANNER_SCHEDULE).toBe('cron(0/5 * * * ? *)');
    expect(schedule().Properties).toMatchObject({
      ScheduleExpression: CREDIT_PLANNER_SCHEDULE,
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
    });
    // Slots are UTC five-minute windows: a cron read in another zone would shift them.
    expect(schedule().Properties.ScheduleExpressionTimezone ?? 'UTC').toMatch(/^(Etc\/)?UTC$/);
  });

  it('invokes the planner with the time it was scheduled for', () => {
    expect(target().Arn).toEqual(getAtt(credit.planner));
    expect(JSON.parse(String(target().Input))).toEqual(SCHEDULED_TIME_INPUT);
  });

  it('retries at most twice within five minutes, then dead-letters into its own queue', () => {
    expect(target().RetryPolicy).toEqual({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 300,
    });
    expect(target().DeadLetterConfig).toEqual({ Arn: getAtt(credit.scheduleDlq) });
    expect(credit.scheduleDlq).not.toBe(ids.creditRefresh.dlq);
  });

  it('dead-letters into a queue that is SSE-SQS, TLS-only and keeps messages 14 days', () => {
    const dlq = resources(t.service, 'AWS::SQS::Queue')[credit.scheduleDlq];
    expect(dlq?.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    expect(dlq?.Properties.RedrivePolicy).toBeUndefined();
    const statements = Object.values(resources(t.service, 'AWS::SQS::QueuePolicy'))
      .filter((p) =>
        (p.Properties.Queues as Array<{ Ref?: string }>).some((q) => q.Ref === credit.scheduleDlq),
      )
      .flatMap((p) => statementsOf(p.Properties.PolicyDocument));
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Action: ['sqs:*'],
        Principal: { AWS: '*' },
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
  });

  it("runs as a role only this account's Scheduler assumes: invoke the planner, write its DLQ, nothing else", () => {
    const roleId = (target().RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const role = resources(t.service, 'AWS::IAM::Role')[roleId];
    if (!role) throw new Error(`no role ${roleId}`);
    const trust = statementsOf(role.Properties.AssumeRolePolicyDocument);
    expect(trust).toHaveLength(1);
    expect(trust[0]).toMatchObject({
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Principal: { Service: 'scheduler.amazonaws.com' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();

    const statements = roleStatements(t.service, {
      Type: 'AWS::Lambda::Function',
      Properties: { Role: getAtt(roleId) },
    });
    expect(actionsOf(statements)).toEqual(['lambda:InvokeFunction', 'sqs:SendMessage']);
    // The planner, and its versions and aliases (`<arn>:*`): no other function.
    for (const resource of resourcesOfService(t.data, statements, 'lambda:')) {
      expect(resource).toContain(`"${credit.planner}"`);
    }
    expect(resourcesOfService(t.data, statements, 'sqs:')).toEqual(
      sortedJson([getAtt(credit.scheduleDlq)]),
    );
  });

  it('is the only way the planner is invoked: no route, no queue, no resource policy', () => {
    expect(mappingsOf(t.service, credit.planner)).toEqual([]);
    for (const route of Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route'))) {
      expect(integrationFunction(t.service, route), String(route.Properties.RouteKey)).not.toBe(
        credit.planner,
      );
    }
    const permissions = Object.values(resources(t.service, 'AWS::Lambda::Permission')).filter((p) =>
      JSON.stringify(p.Properties.FunctionName).includes(`"${credit.planner}"`),
    );
    expect(permissions).toEqual([]);
  });
});

describe('the worker', () => {
  it('consumes the refresh queue with CREDIT_WORKER_SETTINGS and partial batch failures', () => {
    const mappings = mappingsOf(t.service, credit.worker);
    expect(mappings).toHaveLength(1);
    const [mapping] = mappings;
    expect(mapping?.Properties).toMatchObject({
      BatchSize: CREDIT_WORKER_SETTINGS.batchSize,
      MaximumBatchingWindowInSeconds: CREDIT_WORKER_SETTINGS.maxBatchingWindow.toSeconds(),
      ScalingConfig: { MaximumConcurrency: CREDIT_WORKER_SETTINGS.maxConcurrency },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(resolveImport(t.data, mapping?.Properties.EventSourceArn)).toEqual(
      getAtt(ids.creditRefresh.queue),
    );
  });

  it('is the only consumer of the refresh queue', () => {
    const consumers = Object.values(resources(t.service, 'AWS::Lambda::EventSourceMapping'))
      .filter(
        (m) =>
          JSON.stringify(resolveImport(t.data, m.Properties.EventSourceArn)) ===
          JSON.stringify(getAtt(ids.creditRefresh.queue)),
      )
      .map((m) => m.Properties.FunctionName);
    expect(consumers).toEqual([{ Ref: credit.worker }]);
  });

  it("runs with the timeout and memory the refresh queue's visibility timeout was derived from", () => {
    expect(fnResource(credit.worker).Properties).toMatchObject({
      Timeout: CREDIT_WORKER_SETTINGS.timeout.toSeconds(),
      MemorySize: CREDIT_WORKER_SETTINGS.memorySize,
    });
  });
});

describe('credit grants (least privilege)', () => {
  const billing = () => getAtt(ids.billing);
  const billingIndexes = () => indexArn(ids.billing, CREDIT_SLOT_INDEX.indexName);

  it("the billing table's only index is the slot index, so its index grants are the slot index's", () => {
    const table = resources(t.data, 'AWS::DynamoDB::Table')[ids.billing];
    if (!table) throw new Error('no billing table');
    const gsis = table.Properties.GlobalSecondaryIndexes as Array<{ IndexName: string }>;
    const indexes = gsis.map((gsi) => gsi.IndexName);
    expect(indexes).toEqual([CREDIT_SLOT_INDEX.indexName]);
    expect(table.Properties.LocalSecondaryIndexes).toBeUndefined();
  });

  it('planner: Query on the slot index, GetItem/UpdateItem on the table, SendMessage to the refresh queue only', () => {
    const statements = statementsOfFn(credit.planner);
    expect(actionsOf(statements)).toEqual(
      [...PLANNER_TABLE_ACTIONS, 'sqs:SendMessage', ...XRAY_ACTIONS].sort(),
    );
    expect(actionsOn(t.data, statements, billingIndexes())).toContain('dynamodb:Query');
    expect(actionsOn(t.data, statements, billing())).toEqual(
      expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:UpdateItem']),
    );
    // No other table, and nothing beyond the billing table and its (slot) index.
    expect(resourcesOfService(t.data, statements, 'dynamodb:')).toEqual(
      sortedJson([billing(), billingIndexes()]),
    );
    expect(actionsOf(statements).filter((a) => a.startsWith('sqs:'))).toEqual(['sqs:SendMessage']);
    expect(resourcesOfService(t.data, statements, 'sqs:')).toEqual(
      sortedJson([getAtt(ids.creditRefresh.queue)]),
    );
  });

  it('worker: GetItem, UpdateItem and PutItem on the table only, and consumes only the refresh queue', () => {
    const statements = statementsOfFn(credit.worker);
    const tableActions = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'];
    expect(actionsOn(t.data, statements, billing())).toEqual(tableActions);
    // Item actions only: no Query, so no index, and no other table.
    expect(resourcesOfService(t.data, statements, 'dynamodb:')).toEqual(sortedJson([billing()]));
    const sqsActions = actionsOf(statements).filter((a) => a.startsWith('sqs:'));
    // What an SQS event source needs, as for the family consumers; never SendMessage.
    const [, subscriptionConsumer] = functionByEntry(t.service, CONSUMER_ENTRY.subscriptions);
    expect(sqsActions).toEqual(
      actionsOf(roleStatements(t.service, subscriptionConsumer)).filter((a) =>
        a.startsWith('sqs:'),
      ),
    );
    expect(sqsActions).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
    expect(sqsActions).not.toContain('sqs:SendMessage');
    expect(resourcesOfService(t.data, statements, 'sqs:')).toEqual(
      sortedJson([getAtt(ids.creditRefresh.queue)]),
    );
    expect(actionsOf(statements)).toEqual([...tableActions, ...sqsActions, ...XRAY_ACTIONS].sort());
  });

  it('reader: GetItem on the billing table only', () => {
    const statements = statementsOfFn(credit.reader);
    expect(actionsOf(statements)).toEqual(['dynamodb:GetItem', ...XRAY_ACTIONS].sort());
    expect(resourcesOfService(t.data, statements, 'dynamodb:')).toEqual(sortedJson([billing()]));
  });

  it("admin: exactly the planner's grants (it runs the planner on demand)", () => {
    // Beside its own log group (each function writes to its own).
    const bound = (fnId: string) =>
      statementsOfFn(fnId).filter((s) => !s.Action.every((a) => a.startsWith('logs:')));
    const admin = grantsByResource(bound(credit.admin));
    expect(admin).toEqual(grantsByResource(bound(credit.planner)));
    expect(Object.keys(admin).length).toBeGreaterThan(1);
  });

  it('no credit function may reach the ledger, payments, penalties, event queues or the secrets', () => {
    const elsewhere = [
      getAtt(ids.subscriptionLedger),
      getAtt(ids.payments),
      getAtt(ids.penalties),
      indexArn(ids.penalties, PENALTY_STATUS_INDEX.indexName),
      indexArn(ids.penalties, ACCOUNT_ASSESSMENT_INDEX.indexName),
      getAtt(ids.creditRefresh.dlq),
      { Ref: ids.secret },
      { Ref: ids.stripeApiKey },
      ...Object.values(ids.queues).flatMap(({ queue, dlq }) => [getAtt(queue), getAtt(dlq)]),
    ];
    for (const fnId of [credit.planner, credit.worker, credit.reader, credit.admin]) {
      const statements = statementsOfFn(fnId);
      for (const resource of elsewhere) {
        expect(
          actionsOn(t.data, statements, resource),
          `${fnId} on ${JSON.stringify(resource)}`,
        ).toEqual([]);
      }
    }
  });
});

describe('credit env', () => {
  const tableRef = () => ({ Ref: ids.billing });
  const queueRef = () => ({ Ref: ids.creditRefresh.queue });

  it('planner and admin get the billing table and the refresh queue URL, no allowances', () => {
    for (const fnId of [credit.planner, credit.admin]) {
      const env = envOf(fnResource(fnId));
      expect(resolveImport(t.data, env[ENV.billingTableName]), fnId).toEqual(tableRef());
      expect(resolveImport(t.data, env[ENV.creditRefreshQueueUrl]), fnId).toEqual(queueRef());
      expect(env[ENV.creditAllowances], fnId).toBeUndefined();
    }
  });

  it('worker and reader get the billing table and the allowances, no queue URL', () => {
    for (const fnId of [credit.worker, credit.reader]) {
      const env = envOf(fnResource(fnId));
      expect(resolveImport(t.data, env[ENV.billingTableName]), fnId).toEqual(tableRef());
      expect(env[ENV.creditAllowances], fnId).toEqual(expect.any(String));
      expect(env[ENV.creditRefreshQueueUrl], fnId).toBeUndefined();
    }
  });

  it("worker alone gets the refresh queue's maxReceiveCount, as its redrive policy says", () => {
    const queue = resources(t.data, 'AWS::SQS::Queue')[ids.creditRefresh.queue]!;
    const { maxReceiveCount } = queue.Properties.RedrivePolicy as { maxReceiveCount: number };
    const env = envOf(fnResource(credit.worker));
    expect(env[ENV.creditRefreshMaxReceiveCount]).toBe(String(maxReceiveCount));
    // The value the worker's own parse accepts.
    expect(parseMaxReceiveCount(String(env[ENV.creditRefreshMaxReceiveCount]))).toBe(
      maxReceiveCount,
    );
    for (const fnId of [credit.planner, credit.reader, credit.admin]) {
      expect(envOf(fnResource(fnId))[ENV.creditRefreshMaxReceiveCount], fnId).toBeUndefined();
    }
  });
});

describe('CREDIT_ALLOWANCES: the validated context, in the worker and the reader', () => {
  /** The handlers' own parse of CREDIT_ALLOWANCES (functions/commons/env.ts). */
  const handlerEnvSchema = z.object({ [ENV.creditAllowances]: creditAllowancesEnv() });

  function allowancesEnv(templates: Templates): string[] {
    return [ENTRY.creditWorker, ENTRY.creditRead].map((entry) =>
      String(envOf(functionByEntry(templates.service, entry)[1])[ENV.creditAllowances]),
    );
  }

  it('is the defaults when the context has no creditAllowances', () => {
    const expected = creditAllowancesFromContext(undefined);
    expect(expected).toEqual(DEFAULT_CREDIT_ALLOWANCES);
    for (const value of allowancesEnv(t)) {
      expect(JSON.parse(value)).toEqual(expected);
      expect(readEnv(handlerEnvSchema, { [ENV.creditAllowances]: value })).toEqual({
        [ENV.creditAllowances]: expected,
      });
    }
  });

  it.each([[{ gold: 12 }], ['{"gold":12}'], [{ free: 0, silver: 7 }]])(
    'a creditAllowances context override %j reaches both, completed with the defaults',
    (value) => {
      const expected = creditAllowancesFromContext(value);
      expect(expected).not.toEqual(DEFAULT_CREDIT_ALLOWANCES);
      const written = allowancesEnv(synthTemplates({ creditAllowances: value }));
      expect(written).toHaveLength(2);
      for (const env of written) {
        expect(JSON.parse(env)).toEqual(expected);
        // What synth wrote is what the handlers read.
        expect(readEnv(handlerEnvSchema, { [ENV.creditAllowances]: env })).toEqual({
          [ENV.creditAllowances]: expected,
        });
      }
    },
  );

  it('an invalid override fails synth naming the key', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'billing-credit-allowances-'));
    try {
      const synth = () =>
        createBillingApp({
          bundle: false,
          validate: false,
          outdir,
          context: { creditAllowances: { gold: 10_000 } },
        });
      expect(synth).toThrow(ConfigError);
      expect(synth).toThrow(/^Invalid CDK context "creditAllowances": gold: /);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('credit routes', () => {
  const routes = (): Array<[string, string]> => [
    [`GET ${CREDIT_ROUTES.userCredits}`, credit.reader],
    [`GET ${CREDIT_ROUTES.stats}`, credit.admin],
    [`POST ${CREDIT_ROUTES.refresh}`, credit.admin],
  ];

  it('are GET /users/{userId}/credits, GET /admin/credits/stats and POST /admin/credits/refresh', () => {
    expect(routes().map(([key]) => key)).toEqual([
      'GET /users/{userId}/credits',
      'GET /admin/credits/stats',
      'POST /admin/credits/refresh',
    ]);
  });

  it.each([0, 1, 2])(
    'route %#: IAM-authorised, throttled at 20/s burst 40, on its function',
    (i) => {
      const [key, functionId] = routes()[i]!;
      const route = routeByKey(t.service, key);
      expect(route.Properties.AuthorizationType, key).toBe('AWS_IAM');
      expect(integrationFunction(t.service, route), key).toBe(functionId);
      expect(stageRouteSettings(t.service)[key], key).toEqual({
        ThrottlingRateLimit: 20,
        ThrottlingBurstLimit: 40,
      });
    },
  );

  it('no other method is open on a credit path', () => {
    const paths = Object.values(CREDIT_ROUTES);
    const keys = Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route'))
      .map((r) => String(r.Properties.RouteKey))
      .filter((key) => paths.some((path) => key.endsWith(` ${path}`)));
    expect(keys.sort()).toEqual(
      routes()
        .map(([key]) => key)
        .sort(),
    );
  });
});

describe('credit alarms', () => {
  const alarm = (id: string) => observabilityAlarm(t, id);

  function dimensions(a: CfnResourceJson): Array<{ Name: string; Value: unknown }> {
    return (a.Properties.Dimensions as Array<{ Name: string; Value: unknown }>).map((d) => ({
      Name: d.Name,
      Value: resolveImport(t.data, d.Value),
    }));
  }

  const serviceOf = (fnId: string) => envOf(fnResource(fnId)).POWERTOOLS_SERVICE_NAME;

  it('CreditRefreshDeadLetterQueueNotEmpty fires on any message in the refresh DLQ', () => {
    const a = alarm('CreditRefreshDeadLetterQueueNotEmpty');
    expect(a.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(dimensions(a)).toEqual([
      { Name: 'QueueName', Value: getAtt(ids.creditRefresh.dlq, 'QueueName') },
    ]);
  });

  it("CreditScheduleDeadLetterQueueNotEmpty fires on any message in the schedule's DLQ", () => {
    const a = alarm('CreditScheduleDeadLetterQueueNotEmpty');
    expect(a.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(dimensions(a)).toEqual([
      { Name: 'QueueName', Value: getAtt(credit.scheduleDlq, 'QueueName') },
    ]);
  });

  it("CreditSlotBehind fires when the planner's slot lag exceeds 30 minutes", () => {
    const a = alarm('CreditSlotBehind');
    expect(a.Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.creditSlotLag,
      Statistic: 'Maximum',
      Threshold: 30,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(dimensions(a)).toEqual([{ Name: 'service', Value: serviceOf(credit.planner) }]);
    expect(a.Properties.AlarmDescription).toMatch(/more than 30 minutes after it started/);
  });

  it('CreditSlotBehind treats no lag reported as breaching: the planner is failing or stopped', () => {
    const a = alarm('CreditSlotBehind');
    expect(a.Properties).toMatchObject({
      TreatMissingData: 'breaching',
      // Two 5-minute runs: one missed run is caught up by the next, not paged.
      Period: 600,
      EvaluationPeriods: 1,
    });
    expect(a.Properties.AlarmDescription).toMatch(/planner has completed no run for 10 minutes/);
  });

  it("CreditRefreshFailureRate fires above 1% of the worker's refreshes failing", () => {
    const a = alarm('CreditRefreshFailureRate');
    expect(a.Properties).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    const queries = a.Properties.Metrics as Array<{
      Id: string;
      Expression?: string;
      ReturnData?: boolean;
      MetricStat?: { Metric: Record<string, unknown>; Stat: string; Period: number };
    }>;
    const returned = queries.filter((q) => q.ReturnData !== false);
    expect(returned).toHaveLength(1);
    expect(returned[0]?.Expression).toBe(
      'IF(refreshed + failed > 0, 100 * failed / (refreshed + failed), 0)',
    );
    const stat = (id: string) => queries.find((q) => q.Id === id)?.MetricStat;
    const workerService = [{ Name: 'service', Value: serviceOf(credit.worker) }];
    expect(stat('refreshed')).toMatchObject({
      Metric: {
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC.creditsRefreshed,
        Dimensions: workerService,
      },
      Stat: 'Sum',
    });
    expect(stat('failed')).toMatchObject({
      Metric: {
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC.creditsFailed,
        Dimensions: workerService,
      },
      Stat: 'Sum',
    });
  });

  it.each([
    'CreditRefreshDeadLetterQueueNotEmpty',
    'CreditScheduleDeadLetterQueueNotEmpty',
    'CreditRefreshFailureRate',
  ])('%s notifies the alarm topic on alarm and on OK, and treats no data as fine', (id) => {
    const [topicId] = onlyResource(t.service, 'AWS::SNS::Topic');
    expect(alarm(id).Properties).toMatchObject({
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
      TreatMissingData: 'notBreaching',
    });
  });

  it('CreditSlotBehind notifies the alarm topic on alarm and on OK', () => {
    const [topicId] = onlyResource(t.service, 'AWS::SNS::Topic');
    expect(alarm('CreditSlotBehind').Properties).toMatchObject({
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
  });

  it('each credit function has Errors and Throttles alarms named <Owner><FunctionId>', () => {
    const functions: Array<[string, string]> = [
      ['Planner', credit.planner],
      ['Worker', credit.worker],
      ['Reader', credit.reader],
      ['Admin', credit.admin],
    ];
    for (const [id, fnId] of functions) {
      for (const metric of ['Errors', 'Throttles']) {
        const a = alarm(`CreditRefresh${id}${metric}`);
        expect(a.Properties, `CreditRefresh${id}${metric}`).toMatchObject({
          Namespace: 'AWS/Lambda',
          MetricName: metric,
        });
        expect(a.Properties.Dimensions).toEqual([{ Name: 'FunctionName', Value: { Ref: fnId } }]);
      }
    }
  });

  it('a construct holding one function keeps its alarm ids (a new id would replace the alarm)', () => {
    for (const owner of [
      'WebhookIngress',
      'SubscriptionProcessing',
      'PaymentProcessing',
      'SubscriptionReadApi',
      'PaymentReadApi',
    ]) {
      expect(() => alarm(`${owner}Errors`), owner).not.toThrow();
      expect(() => alarm(`${owner}Throttles`), owner).not.toThrow();
    }
  });
});

describe('dashboard figures the local operations page also shows', () => {
  it('graphs credit refreshes per slot over the last 24 h, and the queues in flight', () => {
    const [, dashboard] = onlyResource(t.service, 'AWS::CloudWatch::Dashboard');
    const body = JSON.parse(renderBody(dashboard.Properties.DashboardBody)) as {
      widgets: Array<{ properties?: { title?: string; start?: string; metrics?: unknown[][] } }>;
    };
    const perSlot = body.widgets.find((w) => w.properties?.title?.includes('per 5-minute slot'));
    expect(perSlot?.properties?.start).toBe('-PT24H');
    expect(perSlot?.properties?.metrics?.map((row) => row[1])).toEqual([
      METRIC.creditsPlanned,
      METRIC.creditsRefreshed,
    ]);
    const inFlight = body.widgets.filter((w) =>
      JSON.stringify(w.properties?.metrics ?? []).includes('ApproximateNumberOfMessagesNotVisible'),
    );
    // Each family's queue widget and the credit queues'.
    expect(inFlight.length).toBe(3);
  });
});
