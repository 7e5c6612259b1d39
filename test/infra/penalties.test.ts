/**
 * Penalties in the synthesized templates (DESIGN §8.3): the penalties table built from
 * the schema module, the Stripe API key secret, the four penalty functions (env,
 * timeouts, least-privilege grants), the IAM-authorised routes, the assessor's and the
 * settlement sweeper's hourly schedules with their DLQ, the payment consumer's penalty
 * grants, and the penalty alarms and dashboard row.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  PENALTY_KEYS,
  PENALTY_STATUS_INDEX,
  PENDING_SETTLEMENT_INDEX,
} from '../../functions/adapters/dynamodb/penalty-table-schema.ts';
import { parseStripeApiUrl } from '../../functions/adapters/stripe/stripe-client.ts';
import {
  assessmentDeadlineHourEnv,
  freeHabitLimitsEnv,
  readEnv,
} from '../../functions/commons/env.ts';
import { ENV } from '../../functions/commons/env-names.ts';
import { METRIC, METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import { PENALTY_ROUTES } from '../../functions/commons/routes.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../functions/core/penalties/habits.ts';
import { ASSESSMENT_DEADLINE_HOUR } from '../../functions/core/shared/config-values.ts';
import { REPO_ROOT } from '../../lib/billing-function.ts';
import { LOCAL_NAME_PREFIX, METADATA } from '../../lib/metadata.ts';
import {
  PENALTY_ASSESSOR_SCHEDULE,
  PENALTY_SETTLEMENT_SWEEP_SCHEDULE,
} from '../../lib/penalties.ts';
import { PENALTY_INDEXES, penaltyTableKey } from '../../lib/penalty-tables.ts';
import { graphedMetricNames, renderBody, scanEmittedMetrics } from './metric-coverage.ts';
import {
  actionsOf,
  actionsOn,
  allPolicyStatements,
  type CfnResourceJson,
  type DataIds,
  dataIds,
  ENTRY,
  envOf,
  functionByEntry,
  getAtt,
  indexArn,
  integrationFunction,
  logicalIdOf,
  mappingsOf,
  observabilityAlarm,
  onlyResource,
  PENALTY_ROUTE_SPEC,
  type PenaltyIds,
  penaltyIds,
  RUNTIME_ACTIONS,
  resolvedResources,
  resolveImport,
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
const SECRET_READ_ACTIONS = ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'];
/** The input Scheduler sends, before it fills in the context attribute. */
const SCHEDULED_TIME_INPUT = { scheduledTime: '<aws.scheduler.scheduled-time>' };
/** The actions the assessment (scheduled or on demand) and mark-paid need on the penalties table. */
const ASSESSMENT_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
];
/** The admin's: the assessment's, and GetItem for mark-paid's read-back of the per-date counts it brought to zero. */
const ADMIN_ACTIONS = [...ASSESSMENT_ACTIONS, 'dynamodb:GetItem'].sort();
/** The settlement sweeper's actions on the penalties table: read the lock, release it. */
const SWEEP_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:GetItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
];
/** The user routes' actions on the penalties table: no PutItem, no DeleteItem. */
const API_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:GetItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
];

let t: Templates;
let ids: DataIds;
let penalty: PenaltyIds;
beforeAll(() => {
  t = synthTemplates();
  ids = dataIds(t);
  penalty = penaltyIds(t);
});

function fnResource(logicalId: string, templates = t): CfnResourceJson {
  const found = resources(templates.service, 'AWS::Lambda::Function')[logicalId];
  if (!found) throw new Error(`no function ${logicalId}`);
  return found;
}

function statementsOfFn(logicalId: string): Statement[] {
  return roleStatements(t.service, fnResource(logicalId));
}

function penaltiesTable(): CfnResourceJson {
  const found = resources(t.data, 'AWS::DynamoDB::Table')[ids.penalties];
  if (!found) throw new Error('no penalties table');
  return found;
}

describe('the penalties table', () => {
  it('is keyed by the schema module’s key attributes (strings), the ones every item is written with', () => {
    const key = penaltyTableKey();
    expect(key).toEqual({ partition: 'pk', sort: 'sk' });
    for (const item of [
      PENALTY_KEYS.account('u'),
      PENALTY_KEYS.penalty('u', 'h', '2026-01-01'),
      PENALTY_KEYS.recipient('r'),
      PENALTY_KEYS.assessmentShard('2026-01-01', 3),
    ]) {
      expect(Object.keys(item)).toEqual([key.partition, key.sort]);
    }
    expect(penaltiesTable().Properties).toMatchObject({
      KeySchema: [
        { AttributeName: key.partition, KeyType: 'HASH' },
        { AttributeName: key.sort, KeyType: 'RANGE' },
      ],
    });
  });

  it('has exactly the GSIs of the schema module, with their key schemas and projections', () => {
    expect(PENALTY_INDEXES).toEqual([
      PENALTY_STATUS_INDEX,
      ACCOUNT_ASSESSMENT_INDEX,
      PENDING_SETTLEMENT_INDEX,
    ]);
    const gsis = penaltiesTable().Properties.GlobalSecondaryIndexes as Array<{
      IndexName: string;
      KeySchema: unknown;
      Projection: { ProjectionType: string; NonKeyAttributes?: string[] };
      ProvisionedThroughput?: unknown;
    }>;
    expect(gsis.map((gsi) => gsi.IndexName).sort()).toEqual([
      'byAssessment',
      'byPendingSettlement',
      'byStatus',
    ]);
    for (const index of PENALTY_INDEXES) {
      const gsi = gsis.find((candidate) => candidate.IndexName === index.indexName);
      expect(gsi?.KeySchema, index.indexName).toEqual([
        { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
        { AttributeName: index.sortKey.name, KeyType: 'RANGE' },
      ]);
      expect(gsi?.ProvisionedThroughput, index.indexName).toBeUndefined();
    }
    // A penalty list answers any `fields`; the assessment reads whole habits off its index.
    for (const index of [PENALTY_STATUS_INDEX, ACCOUNT_ASSESSMENT_INDEX]) {
      const gsi = gsis.find((candidate) => candidate.IndexName === index.indexName);
      expect(gsi?.Projection, index.indexName).toEqual({ ProjectionType: 'ALL' });
    }
    // The sweep needs only whose lock it is: it re-reads the account by key.
    expect(
      gsis.find((gsi) => gsi.IndexName === PENDING_SETTLEMENT_INDEX.indexName)?.Projection,
    ).toEqual({ ProjectionType: 'INCLUDE', NonKeyAttributes: ['userId'] });
    expect(penaltiesTable().Properties.LocalSecondaryIndexes).toBeUndefined();
  });

  it('declares each key attribute once, with the schema module’s type (the shard is a number)', () => {
    const definitions = penaltiesTable().Properties.AttributeDefinitions as Array<{
      AttributeName: string;
      AttributeType: string;
    }>;
    expect(Object.fromEntries(definitions.map((d) => [d.AttributeName, d.AttributeType]))).toEqual({
      pk: 'S',
      sk: 'S',
      [PENALTY_STATUS_INDEX.partitionKey.name]: PENALTY_STATUS_INDEX.partitionKey.type,
      [ACCOUNT_ASSESSMENT_INDEX.partitionKey.name]: ACCOUNT_ASSESSMENT_INDEX.partitionKey.type,
      [ACCOUNT_ASSESSMENT_INDEX.sortKey.name]: ACCOUNT_ASSESSMENT_INDEX.sortKey.type,
      [PENDING_SETTLEMENT_INDEX.partitionKey.name]: PENDING_SETTLEMENT_INDEX.partitionKey.type,
      [PENDING_SETTLEMENT_INDEX.sortKey.name]: PENDING_SETTLEMENT_INDEX.sortKey.type,
    });
    expect(definitions).toHaveLength(7);
    expect(ACCOUNT_ASSESSMENT_INDEX.partitionKey.type).toBe('N');
    expect(PENDING_SETTLEMENT_INDEX.partitionKey).toEqual({ name: 'pendingShard', type: 'N' });
    expect(PENDING_SETTLEMENT_INDEX.sortKey).toEqual({ name: 'pendingSince', type: 'S' });
  });

  it('is stateful like the other tables: on-demand, PITR, encrypted, protected, retained, no TTL', () => {
    const table = penaltiesTable();
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: true,
    });
    expect(table).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(table.Properties.TimeToLiveSpecification).toBeUndefined();
    expect(table.Properties.TableName).toBeUndefined();
  });

  it('is named billing-suite-penalties locally', () => {
    expect(penaltiesTable().Metadata?.[METADATA.localName]).toBe(`${LOCAL_NAME_PREFIX}-penalties`);
  });
});

describe('the penalty functions', () => {
  it('are the four penalty entries, each with a service name of its own', () => {
    expect(functionByEntry(t.service, ENTRY.penaltyApi)[0]).toBe(penalty.api);
    expect(functionByEntry(t.service, ENTRY.penaltyAdmin)[0]).toBe(penalty.admin);
    expect(functionByEntry(t.service, ENTRY.penaltyAssessor)[0]).toBe(penalty.assessor);
    expect(functionByEntry(t.service, ENTRY.penaltySettlementSweeper)[0]).toBe(
      penalty.settlementSweeper,
    );
    expect(envOf(fnResource(penalty.api)).POWERTOOLS_SERVICE_NAME).toBe('penalty-api');
    expect(envOf(fnResource(penalty.admin)).POWERTOOLS_SERVICE_NAME).toBe('penalty-admin');
    expect(envOf(fnResource(penalty.assessor)).POWERTOOLS_SERVICE_NAME).toBe('penalty-assessor');
    expect(envOf(fnResource(penalty.settlementSweeper)).POWERTOOLS_SERVICE_NAME).toBe(
      'penalty-settlement-sweeper',
    );
  });

  it('answer the API within its 30 s integration limit; the assessor and the sweeper run up to five minutes', () => {
    // The API outlives a Stripe call's 10 s deadline, so it answers 503 itself.
    expect(fnResource(penalty.api).Properties.Timeout).toBe(29);
    // The on-demand assessment stops taking pages at 25 s.
    expect(fnResource(penalty.admin).Properties.Timeout).toBe(29);
    // Both stop a minute before their timeout; the next hourly run resumes.
    expect(fnResource(penalty.assessor).Properties.Timeout).toBe(300);
    expect(fnResource(penalty.settlementSweeper).Properties.Timeout).toBe(300);
  });
});

describe('penalty env', () => {
  const penaltiesRef = () => ({ Ref: ids.penalties });

  it('api: the penalties and billing tables, the free-habit limits and the Stripe key’s ARN', () => {
    const env = envOf(fnResource(penalty.api));
    expect(resolveImport(t.data, env[ENV.penaltiesTableName])).toEqual(penaltiesRef());
    expect(resolveImport(t.data, env[ENV.billingTableName])).toEqual({ Ref: ids.billing });
    expect(resolveImport(t.data, env[ENV.stripeApiKeySecretArn])).toEqual({
      Ref: ids.stripeApiKey,
    });
    expect(JSON.parse(String(env[ENV.freeHabitLimits]))).toEqual(DEFAULT_FREE_HABIT_LIMITS);
    // Unset: Stripe's own API. The plain key is for local runs only.
    expect(env[ENV.stripeApiUrl]).toBeUndefined();
    expect(env[ENV.stripeSecretKey]).toBeUndefined();
    expect(env[ENV.webhookSecretArn]).toBeUndefined();
    expect(env[ENV.assessmentDeadlineHour]).toBeUndefined();
  });

  it('admin: the penalties table only', () => {
    const env = envOf(fnResource(penalty.admin));
    expect(resolveImport(t.data, env[ENV.penaltiesTableName])).toEqual(penaltiesRef());
    for (const name of [
      ENV.billingTableName,
      ENV.stripeApiKeySecretArn,
      ENV.stripeApiUrl,
      ENV.freeHabitLimits,
      ENV.assessmentDeadlineHour,
    ]) {
      expect(env[name], name).toBeUndefined();
    }
  });

  it('assessor: the penalties table and the deadline hour', () => {
    const env = envOf(fnResource(penalty.assessor));
    expect(resolveImport(t.data, env[ENV.penaltiesTableName])).toEqual(penaltiesRef());
    expect(env[ENV.assessmentDeadlineHour]).toBe(String(ASSESSMENT_DEADLINE_HOUR.default));
    for (const name of [
      ENV.billingTableName,
      ENV.stripeApiKeySecretArn,
      ENV.stripeApiUrl,
      ENV.freeHabitLimits,
    ]) {
      expect(env[name], name).toBeUndefined();
    }
  });

  it('settlement sweeper: the penalties table and the ARN of the Stripe key only', () => {
    const env = envOf(fnResource(penalty.settlementSweeper));
    expect(resolveImport(t.data, env[ENV.penaltiesTableName])).toEqual(penaltiesRef());
    expect(resolveImport(t.data, env[ENV.stripeApiKeySecretArn])).toEqual({
      Ref: ids.stripeApiKey,
    });
    for (const name of [
      ENV.billingTableName,
      ENV.stripeApiUrl,
      ENV.stripeSecretKey,
      ENV.freeHabitLimits,
      ENV.assessmentDeadlineHour,
      ENV.cursorKeySecretArn,
    ]) {
      expect(env[name], name).toBeUndefined();
    }
  });

  it('context overrides reach the functions, and the handlers read back what synth wrote', () => {
    const custom = synthTemplates({
      freeHabitLimits: { gold: 60, free: 0 },
      assessmentDeadlineHour: '9',
      stripeApiUrl: 'https://stripe-proxy.example.com/',
    });
    const api = envOf(functionByEntry(custom.service, ENTRY.penaltyApi)[1]);
    const assessor = envOf(functionByEntry(custom.service, ENTRY.penaltyAssessor)[1]);
    const limits = String(api[ENV.freeHabitLimits]);
    const hour = String(assessor[ENV.assessmentDeadlineHour]);
    expect(
      readEnv(z.object({ [ENV.freeHabitLimits]: freeHabitLimitsEnv() }), {
        [ENV.freeHabitLimits]: limits,
      }),
    ).toEqual({ [ENV.freeHabitLimits]: { ...DEFAULT_FREE_HABIT_LIMITS, gold: 60, free: 0 } });
    expect(
      readEnv(z.object({ [ENV.assessmentDeadlineHour]: assessmentDeadlineHourEnv() }), {
        [ENV.assessmentDeadlineHour]: hour,
      }),
    ).toEqual({ [ENV.assessmentDeadlineHour]: 9 });
    expect(api[ENV.stripeApiUrl]).toBe('https://stripe-proxy.example.com');
    expect(parseStripeApiUrl(String(api[ENV.stripeApiUrl]))?.origin).toBe(
      'https://stripe-proxy.example.com',
    );
    // The sweeper cancels at the same Stripe as the API creates; the others never call it.
    expect(
      envOf(functionByEntry(custom.service, ENTRY.penaltySettlementSweeper)[1])[ENV.stripeApiUrl],
    ).toBe('https://stripe-proxy.example.com');
    for (const entry of [ENTRY.penaltyAdmin, ENTRY.penaltyAssessor, ENTRY.paymentConsumer]) {
      expect(envOf(functionByEntry(custom.service, entry)[1])[ENV.stripeApiUrl], entry).toBe(
        undefined,
      );
    }
  });

  it('the default limits and hour are values the handlers accept', () => {
    const api = envOf(fnResource(penalty.api));
    const assessor = envOf(fnResource(penalty.assessor));
    expect(
      readEnv(z.object({ [ENV.freeHabitLimits]: freeHabitLimitsEnv() }), {
        [ENV.freeHabitLimits]: String(api[ENV.freeHabitLimits]),
      }),
    ).toEqual({ [ENV.freeHabitLimits]: DEFAULT_FREE_HABIT_LIMITS });
    expect(
      readEnv(z.object({ [ENV.assessmentDeadlineHour]: assessmentDeadlineHourEnv() }), {
        [ENV.assessmentDeadlineHour]: String(assessor[ENV.assessmentDeadlineHour]),
      }),
    ).toEqual({ [ENV.assessmentDeadlineHour]: ASSESSMENT_DEADLINE_HOUR.default });
  });
});

describe('penalty grants (least privilege)', () => {
  const table = () => getAtt(ids.penalties);
  const indexes = () => indexArn(ids.penalties, PENALTY_STATUS_INDEX.indexName);
  const assessIndex = () => indexArn(ids.penalties, ACCOUNT_ASSESSMENT_INDEX.indexName);

  it('api: read and update the penalties table and its indexes; GetItem and UpdateItem on the billing table; read the Stripe key', () => {
    const statements = statementsOfFn(penalty.api);
    expect(actionsOn(t.data, statements, table())).toEqual(API_ACTIONS);
    // Query is what reaches the indexes (byStatus); bindTable names them for every action it grants.
    expect(actionsOn(t.data, statements, indexes())).toContain('dynamodb:Query');
    // Profiles by key: the tier and customer read, the credits a settlement spends.
    expect(actionsOn(t.data, statements, getAtt(ids.billing))).toEqual([
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
    ]);
    expect(resourcesOfService(t.data, statements, 'dynamodb:')).toEqual(
      sortedJson([table(), indexes(), getAtt(ids.billing)]),
    );
    expect(resourcesOfService(t.data, statements, 'secretsmanager:')).toEqual(
      sortedJson([{ Ref: ids.stripeApiKey }, { Ref: ids.cursorSigningKey }]),
    );
    expect(actionsOf(statements)).toEqual(
      [...API_ACTIONS, ...SECRET_READ_ACTIONS, ...XRAY_ACTIONS].sort(),
    );
  });

  it('admin and assessor: the assessment’s actions on the penalties table only (the admin also GetItem, for mark-paid), no secret, no billing table', () => {
    for (const [fnId, actions] of [
      [penalty.admin, ADMIN_ACTIONS],
      [penalty.assessor, ASSESSMENT_ACTIONS],
    ] as const) {
      const statements = statementsOfFn(fnId);
      expect(actionsOn(t.data, statements, table()), fnId).toEqual(actions);
      expect(actionsOn(t.data, statements, assessIndex()), fnId).toContain('dynamodb:Query');
      expect(resourcesOfService(t.data, statements, 'dynamodb:'), fnId).toEqual(
        sortedJson([table(), assessIndex()]),
      );
      expect(actionsOf(statements), fnId).toEqual([...actions, ...XRAY_ACTIONS].sort());
    }
  });

  it('settlement sweeper: read and release locks on the penalties table, Query on the pending index only, read the Stripe key, no billing table', () => {
    const statements = statementsOfFn(penalty.settlementSweeper);
    const pendingIndex = indexArn(ids.penalties, PENDING_SETTLEMENT_INDEX.indexName);
    expect(actionsOn(t.data, statements, table())).toEqual(SWEEP_ACTIONS);
    expect(actionsOn(t.data, statements, pendingIndex)).toContain('dynamodb:Query');
    expect(resourcesOfService(t.data, statements, 'dynamodb:')).toEqual(
      sortedJson([table(), pendingIndex]),
    );
    expect(resourcesOfService(t.data, statements, 'secretsmanager:')).toEqual(
      sortedJson([{ Ref: ids.stripeApiKey }]),
    );
    expect(actionsOn(t.data, statements, getAtt(ids.billing))).toEqual([]);
    expect(actionsOf(statements)).toEqual(
      [...SWEEP_ACTIONS, ...SECRET_READ_ACTIONS, ...XRAY_ACTIONS].sort(),
    );
  });

  it('no penalty function may Scan, delete, or write in batches', () => {
    for (const fnId of [penalty.api, penalty.admin, penalty.assessor, penalty.settlementSweeper]) {
      const actions = actionsOf(statementsOfFn(fnId));
      for (const forbidden of ['dynamodb:Scan', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']) {
        expect(actions, `${fnId} ${forbidden}`).not.toContain(forbidden);
      }
    }
  });

  it('only the penalty API, the settlement sweeper and the read route (its fallback) may read the Stripe API key (not the assessor, the admin or the webhook)', () => {
    const readers = Object.values(resources(t.service, 'AWS::IAM::Policy'))
      .filter((policy) =>
        statementsOf(policy.Properties.PolicyDocument).some(
          (s) =>
            s.Effect === 'Allow' &&
            resolvedResources(t.data, s).some(
              (r) => JSON.stringify(r) === JSON.stringify({ Ref: ids.stripeApiKey }),
            ),
        ),
      )
      .flatMap((policy) => (policy.Properties.Roles as Array<{ Ref: string }>).map((r) => r.Ref));
    const roleOf = (fn: CfnResourceJson) =>
      (fn.Properties.Role as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
    const [, read] = functionByEntry(t.service, ENTRY.subscriptionRead);
    expect(readers.sort()).toEqual(
      [
        roleOf(fnResource(penalty.api)),
        roleOf(fnResource(penalty.settlementSweeper)),
        roleOf(read),
      ].sort(),
    );
    // And the API may not read the webhook signing secret.
    expect(actionsOn(t.data, statementsOfFn(penalty.api), { Ref: ids.secret })).toEqual([]);
  });

  it('only the penalty functions and the payment consumer reach the penalties table', () => {
    const [paymentConsumer] = functionByEntry(t.service, ENTRY.paymentConsumer);
    const allowed = new Set([
      penalty.api,
      penalty.admin,
      penalty.assessor,
      penalty.settlementSweeper,
      paymentConsumer,
    ]);
    for (const [fnId, fn] of Object.entries(resources(t.service, 'AWS::Lambda::Function'))) {
      const statements = roleStatements(t.service, fn);
      const reaches =
        actionsOn(t.data, statements, table()).length > 0 ||
        actionsOn(t.data, statements, indexes()).length > 0;
      expect(reaches, fnId).toBe(allowed.has(fnId));
    }
  });

  it('payment consumer: BatchGetItem, GetItem and UpdateItem on the penalties table, no index', () => {
    const [, consumer] = functionByEntry(t.service, ENTRY.paymentConsumer);
    const statements = roleStatements(t.service, consumer);
    expect(actionsOn(t.data, statements, table())).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
    ]);
    expect(actionsOn(t.data, statements, indexes())).toEqual([]);
    // It never spends credits: the billing table stays read-only for it.
    expect(actionsOn(t.data, statements, getAtt(ids.billing))).toEqual(['dynamodb:BatchGetItem']);
  });

  it('no policy anywhere allows a wildcard action or a DynamoDB action on a wildcard resource', () => {
    for (const statement of allPolicyStatements(t.data, t.service)) {
      if (statement.Effect !== 'Allow') continue;
      expect(statement.Action.every((a) => !a.endsWith(':*') && a !== '*')).toBe(true);
      if (statement.Action.some((a) => a.startsWith('dynamodb:'))) {
        expect(statement.Resource).not.toContain('*');
      }
    }
  });
});

describe('penalty routes', () => {
  it('the spec covers every PENALTY_ROUTES path once, with the methods of DESIGN §8.3', () => {
    expect(PENALTY_ROUTE_SPEC.map((r) => r.path).sort()).toEqual(
      Object.values(PENALTY_ROUTES).sort(),
    );
    expect(PENALTY_ROUTE_SPEC.map((r) => `${r.method} ${r.path}`).sort()).toEqual(
      [
        'PUT /users/{userId}/habits/{habitId}',
        'GET /users/{userId}/habits',
        'PUT /users/{userId}/habits/{habitId}/verifications/{date}',
        'POST /admin/penalties/assess',
        'GET /users/{userId}/penalties',
        'GET /users/{userId}/penalties/summary',
        'POST /admin/penalties/mark-paid',
        'POST /users/{userId}/penalties/settle',
        'GET /recipients/{recipientId}/totals',
      ].sort(),
    );
  });

  it.each(PENALTY_ROUTE_SPEC.map((r) => [`${r.method} ${r.path}`, r.entry]))(
    '%s: IAM-authorised, throttled at 20/s burst 40, on %s',
    (key, entry) => {
      const route = routeByKey(t.service, key);
      expect(route.Properties.AuthorizationType).toBe('AWS_IAM');
      expect(integrationFunction(t.service, route)).toBe(functionByEntry(t.service, entry)[0]);
      expect(stageRouteSettings(t.service)[key]).toEqual({
        ThrottlingRateLimit: 20,
        ThrottlingBurstLimit: 40,
      });
    },
  );

  it('admin routes reach the admin function, every other penalty route the API', () => {
    for (const route of PENALTY_ROUTE_SPEC) {
      expect(route.entry, route.path).toBe(
        route.path.startsWith('/admin/') ? ENTRY.penaltyAdmin : ENTRY.penaltyApi,
      );
    }
  });

  it('no other method is open on a penalty path', () => {
    const paths = Object.values(PENALTY_ROUTES) as string[];
    const keys = Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route'))
      .map((r) => String(r.Properties.RouteKey))
      .filter((key) => paths.includes(key.slice(key.indexOf(' ') + 1)));
    expect(keys.sort()).toEqual(PENALTY_ROUTE_SPEC.map((r) => `${r.method} ${r.path}`).sort());
  });
});

describe('the assessor schedule', () => {
  function schedule(): CfnResourceJson {
    const found = resources(t.service, 'AWS::Scheduler::Schedule')[penalty.schedule];
    if (!found) throw new Error(`no schedule ${penalty.schedule}`);
    return found;
  }

  function target(): Record<string, unknown> {
    return schedule().Properties.Target as Record<string, unknown>;
  }

  it('fires hourly at a quarter past (UTC), enabled, with the flexible time window off', () => {
    expect(PENALTY_ASSESSOR_SCHEDULE).toBe('cron(15 * * * ? *)');
    expect(schedule().Properties).toMatchObject({
      ScheduleExpression: PENALTY_ASSESSOR_SCHEDULE,
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
    });
    // "Yesterday" and the deadline hour are UTC.
    expect(schedule().Properties.ScheduleExpressionTimezone ?? 'UTC').toMatch(/^(Etc\/)?UTC$/);
  });

  it('invokes the assessor with the time it was scheduled for', () => {
    expect(target().Arn).toEqual(getAtt(penalty.assessor));
    expect(JSON.parse(String(target().Input))).toEqual(SCHEDULED_TIME_INPUT);
  });

  it('retries at most twice within the hour, then dead-letters into its own queue', () => {
    expect(target().RetryPolicy).toEqual({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
    });
    expect(target().DeadLetterConfig).toEqual({ Arn: getAtt(penalty.scheduleDlq) });
    expect(penalty.scheduleDlq).not.toBe(
      logicalIdOf(t.stacks.service.credits.scheduleDeadLetterQueue),
    );
    expect(penalty.scheduleDlq).not.toBe(ids.creditRefresh.dlq);
  });

  it('dead-letters into a queue that is SSE-SQS, TLS-only, keeps messages 14 days and is retained', () => {
    const dlq = resources(t.service, 'AWS::SQS::Queue')[penalty.scheduleDlq];
    expect(dlq?.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    expect(dlq).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(dlq?.Properties.RedrivePolicy).toBeUndefined();
    const statements = Object.values(resources(t.service, 'AWS::SQS::QueuePolicy'))
      .filter((p) =>
        (p.Properties.Queues as Array<{ Ref?: string }>).some((q) => q.Ref === penalty.scheduleDlq),
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

  it("runs as a role only this account's Scheduler assumes: invoke the assessor, write its DLQ, nothing else", () => {
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
    const statements = roleStatements(t.service, {
      Type: 'AWS::Lambda::Function',
      Properties: { Role: getAtt(roleId) },
    });
    expect(actionsOf(statements)).toEqual(['lambda:InvokeFunction', 'sqs:SendMessage']);
    for (const resource of resourcesOfService(t.data, statements, 'lambda:')) {
      expect(resource).toContain(`"${penalty.assessor}"`);
    }
    expect(resourcesOfService(t.data, statements, 'sqs:')).toEqual(
      sortedJson([getAtt(penalty.scheduleDlq)]),
    );
  });

  it('is the only way the assessor is invoked: no route, no queue, no resource policy', () => {
    expect(mappingsOf(t.service, penalty.assessor)).toEqual([]);
    for (const route of Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route'))) {
      expect(integrationFunction(t.service, route), String(route.Properties.RouteKey)).not.toBe(
        penalty.assessor,
      );
    }
    const permissions = Object.values(resources(t.service, 'AWS::Lambda::Permission')).filter((p) =>
      JSON.stringify(p.Properties.FunctionName).includes(`"${penalty.assessor}"`),
    );
    expect(permissions).toEqual([]);
  });
});

describe('the settlement sweep schedule', () => {
  function schedule(): CfnResourceJson {
    const found = resources(t.service, 'AWS::Scheduler::Schedule')[penalty.settlementSweepSchedule];
    if (!found) throw new Error(`no schedule ${penalty.settlementSweepSchedule}`);
    return found;
  }

  function target(): Record<string, unknown> {
    return schedule().Properties.Target as Record<string, unknown>;
  }

  it('fires hourly at a quarter to (UTC), apart from the assessment, enabled, with the flexible time window off', () => {
    expect(PENALTY_SETTLEMENT_SWEEP_SCHEDULE).toBe('cron(45 * * * ? *)');
    expect(schedule().Properties).toMatchObject({
      ScheduleExpression: PENALTY_SETTLEMENT_SWEEP_SCHEDULE,
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
    });
    expect(schedule().Properties.ScheduleExpressionTimezone ?? 'UTC').toMatch(/^(Etc\/)?UTC$/);
    expect(penalty.settlementSweepSchedule).not.toBe(penalty.schedule);
  });

  it('invokes the sweeper with the time it was scheduled for, retrying as the assessor does, into the same DLQ', () => {
    expect(target().Arn).toEqual(getAtt(penalty.settlementSweeper));
    expect(JSON.parse(String(target().Input))).toEqual(SCHEDULED_TIME_INPUT);
    expect(target().RetryPolicy).toEqual({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
    });
    expect(target().DeadLetterConfig).toEqual({ Arn: getAtt(penalty.scheduleDlq) });
    expect(resources(t.service, 'AWS::SQS::Queue')[penalty.scheduleDlq]).toBeDefined();
  });

  it('runs as a role that may invoke the sweeper and write the DLQ, nothing else', () => {
    const roleId = (target().RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const statements = roleStatements(t.service, {
      Type: 'AWS::Lambda::Function',
      Properties: { Role: getAtt(roleId) },
    });
    expect(actionsOf(statements)).toEqual(['lambda:InvokeFunction', 'sqs:SendMessage']);
    for (const resource of resourcesOfService(t.data, statements, 'lambda:')) {
      expect(resource).toContain(`"${penalty.settlementSweeper}"`);
    }
    expect(resourcesOfService(t.data, statements, 'sqs:')).toEqual(
      sortedJson([getAtt(penalty.scheduleDlq)]),
    );
  });

  it('is the only way the sweeper is invoked: no route, no queue, no resource policy', () => {
    expect(mappingsOf(t.service, penalty.settlementSweeper)).toEqual([]);
    for (const route of Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route'))) {
      expect(integrationFunction(t.service, route), String(route.Properties.RouteKey)).not.toBe(
        penalty.settlementSweeper,
      );
    }
    const permissions = Object.values(resources(t.service, 'AWS::Lambda::Permission')).filter((p) =>
      JSON.stringify(p.Properties.FunctionName).includes(`"${penalty.settlementSweeper}"`),
    );
    expect(permissions).toEqual([]);
  });
});

describe('penalty alarms', () => {
  const alarm = (id: string) => observabilityAlarm(t, id);
  const serviceOf = (fnId: string) => envOf(fnResource(fnId)).POWERTOOLS_SERVICE_NAME;

  function dimensions(a: CfnResourceJson): Array<{ Name: string; Value: unknown }> {
    return (a.Properties.Dimensions as Array<{ Name: string; Value: unknown }>).map((d) => ({
      Name: d.Name,
      Value: resolveImport(t.data, d.Value),
    }));
  }

  it("PenaltyAssessmentOverdue: the assessor's hourly maximum ≥ 1, and no data is breaching", () => {
    const a = alarm('PenaltyAssessmentOverdue');
    expect(a.Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.penaltyAssessmentOverdue,
      Statistic: 'Maximum',
      Period: 3600,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      // A silent assessor (schedule stopped, failing before it reports) is overdue too.
      TreatMissingData: 'breaching',
    });
    expect(dimensions(a)).toEqual([{ Name: 'service', Value: serviceOf(penalty.assessor) }]);
  });

  it('PenaltyScheduleDeadLetterQueueNotEmpty fires on any message in the schedule’s DLQ', () => {
    const a = alarm('PenaltyScheduleDeadLetterQueueNotEmpty');
    expect(a.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(dimensions(a)).toEqual([
      { Name: 'QueueName', Value: getAtt(penalty.scheduleDlq, 'QueueName') },
    ]);
  });

  it("PenaltySettlementFailures fires when the API's settlements fail in three five-minute periods running", () => {
    const a = alarm('PenaltySettlementFailures');
    expect(a.Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.penaltySettlementFailures,
      Statistic: 'Sum',
      Period: 300,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      TreatMissingData: 'notBreaching',
    });
    expect(a.Properties.DatapointsToAlarm ?? 3).toBe(3);
    expect(dimensions(a)).toEqual([{ Name: 'service', Value: serviceOf(penalty.api) }]);
  });

  it('PenaltySettlementReleaseFailures fires when three hourly sweeps running failed to release', () => {
    const a = alarm('PenaltySettlementReleaseFailures');
    expect(a.Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.penaltySettlementReleaseFailures,
      Statistic: 'Sum',
      Period: 3600,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 3,
      TreatMissingData: 'notBreaching',
    });
    expect(dimensions(a)).toEqual([
      { Name: 'service', Value: serviceOf(penalty.settlementSweeper) },
    ]);
  });

  it.each([
    'PenaltyAssessmentOverdue',
    'PenaltyScheduleDeadLetterQueueNotEmpty',
    'PenaltySettlementFailures',
    'PenaltySettlementReleaseFailures',
  ])('%s notifies the alarm topic on alarm and on OK', (id) => {
    const [topicId] = onlyResource(t.service, 'AWS::SNS::Topic');
    expect(alarm(id).Properties).toMatchObject({
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
  });

  it('of the penalty alarms, only the overdue one treats missing data as breaching', () => {
    const breaching = Object.entries(resources(t.service, 'AWS::CloudWatch::Alarm'))
      .filter(([id, a]) => id.includes('Penalt') && a.Properties.TreatMissingData === 'breaching')
      .map(([id]) => id);
    const overdue = t.stacks.service.observability.node.findChild('PenaltyAssessmentOverdue');
    expect(breaching).toEqual([logicalIdOf(overdue)]);
  });

  it('each penalty function has Errors and Throttles alarms named Penalties<FunctionId>', () => {
    const functions: Array<[string, string]> = [
      ['Api', penalty.api],
      ['Admin', penalty.admin],
      ['Assessor', penalty.assessor],
      ['SettlementSweeper', penalty.settlementSweeper],
    ];
    for (const [id, fnId] of functions) {
      for (const metric of ['Errors', 'Throttles']) {
        const a = alarm(`Penalties${id}${metric}`);
        expect(a.Properties, `Penalties${id}${metric}`).toMatchObject({
          Namespace: 'AWS/Lambda',
          MetricName: metric,
        });
        expect(a.Properties.Dimensions).toEqual([{ Name: 'FunctionName', Value: { Ref: fnId } }]);
      }
    }
  });
});

describe('the penalties dashboard row', () => {
  const PENALTY_METRICS = [
    METRIC.penaltiesCreated,
    METRIC.penaltiesPaid,
    METRIC.penaltyHabitsAssessed,
    METRIC.penaltyAssessmentDuration,
    METRIC.penaltySettlements,
    METRIC.penaltySettlementFailures,
    METRIC.penaltyAssessmentOverdue,
  ];

  /** [metric name, service] of every custom-metric row of the dashboard. */
  function dashboardRows(): Array<[string, string]> {
    const [, dashboard] = onlyResource(t.service, 'AWS::CloudWatch::Dashboard');
    const body = JSON.parse(renderBody(dashboard.Properties.DashboardBody)) as {
      widgets: Array<{ properties?: { metrics?: unknown[][] } }>;
    };
    return body.widgets.flatMap((widget) =>
      (widget.properties?.metrics ?? [])
        .filter((row) => row[0] === METRICS_NAMESPACE)
        .map((row): [string, string] => {
          const service = row.indexOf('service');
          return [String(row[1]), service >= 0 ? String(row[service + 1]) : ''];
        }),
    );
  }

  it('graphs every penalty metric', () => {
    const graphed = graphedMetricNames(t.service.toJSON(), METRICS_NAMESPACE);
    for (const name of PENALTY_METRICS) expect(graphed.has(name), name).toBe(true);
    const onDashboard = new Set(dashboardRows().map(([name]) => name));
    for (const name of PENALTY_METRICS) expect(onDashboard.has(name), name).toBe(true);
  });

  it('graphs each penalty metric under the service of a function whose handler emits it', () => {
    const emitters = [
      ENTRY.penaltyApi,
      ENTRY.penaltyAdmin,
      ENTRY.penaltyAssessor,
      ENTRY.penaltySettlementSweeper,
      ENTRY.paymentConsumer,
    ];
    const emittedBy = new Map<string, Set<string>>();
    for (const entry of emitters) {
      const [, fn] = functionByEntry(t.service, entry);
      const service = String(envOf(fn).POWERTOOLS_SERVICE_NAME);
      // The handler's own calls and those of the shared modules it imports (./commons/…).
      const source = readFileSync(resolve(REPO_ROOT, entry), 'utf8');
      const shared = [...source.matchAll(/from '\.\/(commons\/[\w-]+\.ts)'/g)].map((match) =>
        join(dirname(entry), match[1] as string),
      );
      const names = new Set<string>();
      for (const file of [entry, ...shared]) {
        const text = file === entry ? source : readFileSync(resolve(REPO_ROOT, file), 'utf8');
        for (const name of scanEmittedMetrics(text, file).names) names.add(name);
      }
      emittedBy.set(service, names);
    }
    const rows = dashboardRows().filter(([name]) =>
      (PENALTY_METRICS as readonly string[]).includes(name),
    );
    expect(rows.length).toBeGreaterThanOrEqual(PENALTY_METRICS.length);
    for (const [name, service] of rows) {
      expect(emittedBy.get(service)?.has(name), `${name} under service=${service}`).toBe(true);
    }
  });
});
