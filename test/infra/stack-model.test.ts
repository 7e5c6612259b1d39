import { describe, expect, it } from 'vitest';
import { CREDIT_SLOT_INDEX } from '../../functions/adapters/dynamodb/credit-table-schema.ts';
import {
  createPaymentsTableInput,
  PAYMENT_TTL_ATTRIBUTE,
} from '../../functions/adapters/dynamodb/payment-table-schema.ts';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  PENALTY_STATUS_INDEX,
  PENDING_SETTLEMENT_INDEX,
} from '../../functions/adapters/dynamodb/penalty-table-schema.ts';
import { ENV, EVENT_QUEUE_URL_ENV } from '../../functions/commons/env-names.ts';
import { METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import { CREDIT_ROUTES, PAYMENT_ROUTES } from '../../functions/commons/routes.ts';
import { EVENT_FAMILIES } from '../../functions/core/shared/event-families.ts';
import { creditAllowancesFromContext } from '../../lib/config.ts';
import { CREDIT_PLANNER_SCHEDULE } from '../../lib/credit-refresh.ts';
import {
  CONSUMER_SETTINGS,
  CREDIT_WORKER_SETTINGS,
  visibilityTimeoutFor,
} from '../../lib/event-family-queue.ts';
import {
  PENALTY_ASSESSOR_SCHEDULE,
  PENALTY_SETTLEMENT_SWEEP_SCHEDULE,
} from '../../lib/penalties.ts';
import { nextFire, parseCron, scheduleInput } from '../../local/scheduler.ts';
import {
  type FunctionModel,
  loadStackModel,
  type QueueModel,
  resolveEnvironment,
  StackModelError,
  type TableModel,
} from '../../local/stack-model.ts';
import { CONSUMER_ENTRY, ENTRY, PENALTY_ROUTE_SPEC } from './synth.ts';

const model = loadStackModel();

const TABLE = {
  billing: 'billing-suite-billing',
  subscriptionLedger: 'billing-suite-subscription-ledger',
  payments: 'billing-suite-payments',
  penalties: 'billing-suite-penalties',
} as const;

function fn(entry: string): FunctionModel {
  const found = model.functions.find((f) => f.entry === entry);
  if (!found) throw new Error(`no function for ${entry}`);
  return found;
}

function table(localName: string): TableModel {
  const found = model.tables.find((t) => t.localName === localName);
  if (!found) throw new Error(`no table ${localName}`);
  return found;
}

function queue(localName: string): QueueModel {
  const found = model.queues.find((q) => q.localName === localName);
  if (!found) throw new Error(`no queue ${localName}`);
  return found;
}

/** Each family's queue, named `billing-suite-<family>-events`, and its DLQ. */
function familyQueues(family: string): { main: QueueModel; dlq: QueueModel } {
  return {
    main: queue(`billing-suite-${family}-events`),
    dlq: queue(`billing-suite-${family}-events-dlq`),
  };
}

describe('loadStackModel', () => {
  it('finds the billing table, the subscription ledger with its TTL, the payments and the penalties tables', () => {
    expect(model.tables.map((t) => t.localName).sort()).toEqual(Object.values(TABLE).sort());
    expect(table(TABLE.billing).create).toMatchObject({
      TableName: TABLE.billing,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
    expect(table(TABLE.billing).ttlAttribute).toBeUndefined();
    expect(table(TABLE.subscriptionLedger).create.KeySchema).toEqual([
      { AttributeName: 'customerId', KeyType: 'HASH' },
      { AttributeName: 'revision', KeyType: 'RANGE' },
    ]);
    expect(table(TABLE.subscriptionLedger).ttlAttribute).toBe('expiresAt');
  });

  it('creates the payments table locally as the adapter’s own schema defines it', () => {
    const payments = table(TABLE.payments);
    const expected = createPaymentsTableInput(TABLE.payments);
    const byName = <T extends { AttributeName?: string; IndexName?: string }>(items: T[] = []) =>
      [...items].sort((a, b) =>
        String(a.IndexName ?? a.AttributeName).localeCompare(
          String(b.IndexName ?? b.AttributeName),
        ),
      );
    expect(payments.create).toMatchObject({
      TableName: expected.TableName,
      BillingMode: expected.BillingMode,
      KeySchema: expected.KeySchema,
    });
    expect(byName(payments.create.AttributeDefinitions)).toEqual(
      byName(expected.AttributeDefinitions),
    );
    expect(byName(payments.create.GlobalSecondaryIndexes)).toEqual(
      byName(expected.GlobalSecondaryIndexes),
    );
    expect(payments.ttlAttribute).toBe(PAYMENT_TTL_ATTRIBUTE);
  });

  it('creates the penalties table locally with the keys and indexes of the penalty schema module', () => {
    const penalties = table(TABLE.penalties);
    expect(penalties.ttlAttribute).toBeUndefined();
    expect(penalties.create).toMatchObject({
      TableName: TABLE.penalties,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
    const indexes = [PENALTY_STATUS_INDEX, ACCOUNT_ASSESSMENT_INDEX, PENDING_SETTLEMENT_INDEX];
    expect(
      [...(penalties.create.GlobalSecondaryIndexes ?? [])].sort((a, b) =>
        String(a.IndexName).localeCompare(String(b.IndexName)),
      ),
    ).toEqual(
      indexes
        .map((index) => ({
          IndexName: index.indexName,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
            { AttributeName: index.sortKey.name, KeyType: 'RANGE' },
          ],
          Projection:
            'nonKeyAttributes' in index
              ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.nonKeyAttributes] }
              : { ProjectionType: 'ALL' },
        }))
        .sort((a, b) => a.IndexName.localeCompare(b.IndexName)),
    );
    const definitions = new Map(
      (penalties.create.AttributeDefinitions ?? []).map((d) => [d.AttributeName, d.AttributeType]),
    );
    expect(Object.fromEntries(definitions)).toEqual({
      pk: 'S',
      sk: 'S',
      [PENALTY_STATUS_INDEX.partitionKey.name]: PENALTY_STATUS_INDEX.partitionKey.type,
      [ACCOUNT_ASSESSMENT_INDEX.partitionKey.name]: ACCOUNT_ASSESSMENT_INDEX.partitionKey.type,
      [ACCOUNT_ASSESSMENT_INDEX.sortKey.name]: ACCOUNT_ASSESSMENT_INDEX.sortKey.type,
      [PENDING_SETTLEMENT_INDEX.partitionKey.name]: PENDING_SETTLEMENT_INDEX.partitionKey.type,
      [PENDING_SETTLEMENT_INDEX.sortKey.name]: PENDING_SETTLEMENT_INDEX.sortKey.type,
    });
  });

  it('creates the billing table locally with the slot index of the credit schema module', () => {
    const billing = table(TABLE.billing);
    expect(billing.create.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: CREDIT_SLOT_INDEX.indexName,
        KeySchema: [
          { AttributeName: CREDIT_SLOT_INDEX.partitionKey.name, KeyType: 'HASH' },
          { AttributeName: CREDIT_SLOT_INDEX.sortKey.name, KeyType: 'RANGE' },
        ],
        Projection: {
          ProjectionType: 'INCLUDE',
          NonKeyAttributes: [...CREDIT_SLOT_INDEX.projected],
        },
      },
    ]);
    expect(billing.create.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        {
          AttributeName: CREDIT_SLOT_INDEX.partitionKey.name,
          AttributeType: CREDIT_SLOT_INDEX.partitionKey.type,
        },
        {
          AttributeName: CREDIT_SLOT_INDEX.sortKey.name,
          AttributeType: CREDIT_SLOT_INDEX.sortKey.type,
        },
      ]),
    );
  });

  it('finds the credit refresh queue and its own DLQ link', () => {
    const main = queue('billing-suite-credit-refresh');
    const dlq = queue('billing-suite-credit-refresh-dlq');
    expect(main.deadLetter).toEqual({ targetLogicalId: dlq.logicalId, maxReceiveCount: 5 });
    expect(main.attributes.VisibilityTimeout).toBe(
      String(visibilityTimeoutFor(CREDIT_WORKER_SETTINGS).toSeconds()),
    );
    expect(main.attributes.MessageRetentionPeriod).toBe(String(24 * 3600));
    expect(dlq.deadLetter).toBeUndefined();
    expect(dlq.attributes.MessageRetentionPeriod).toBe(String(14 * 24 * 3600));
  });

  it.each(EVENT_FAMILIES)('finds the %s queue and its own DLQ link', (family) => {
    const { main, dlq } = familyQueues(family);
    expect(main.deadLetter).toEqual({ targetLogicalId: dlq.logicalId, maxReceiveCount: 5 });
    expect(Number(main.attributes.VisibilityTimeout)).toBeGreaterThanOrEqual(
      6 * CONSUMER_SETTINGS[family].timeout.toSeconds() +
        CONSUMER_SETTINGS[family].maxBatchingWindow.toSeconds(),
    );
    expect(main.attributes.RedrivePolicy).toBeUndefined();
    expect(dlq.deadLetter).toBeUndefined();
    expect(dlq.attributes.MessageRetentionPeriod).toBe(String(14 * 24 * 3600));
  });

  it('finds every function with its entry, size and bound resources', () => {
    expect(model.functions.map((f) => f.entry).sort()).toEqual(Object.values(ENTRY).sort());
    const webhook = fn(ENTRY.webhook);
    expect(webhook.exportName).toBe('handler');
    for (const family of EVENT_FAMILIES) {
      expect(webhook.environment[EVENT_QUEUE_URL_ENV[family]], family).toEqual({
        kind: 'queueUrl',
        queueLogicalId: familyQueues(family).main.logicalId,
      });
    }
    expect(webhook.environment[ENV.webhookSecretArn]?.kind).toBe('secretArn');

    const tableRef = (localName: string) => ({
      kind: 'tableName',
      tableLogicalId: table(localName).logicalId,
    });
    const consumer = fn(ENTRY.subscriptionConsumer);
    expect(consumer).toMatchObject({ timeoutSeconds: 30, memoryMb: 512 });
    expect(consumer.environment[ENV.billingTableName]).toEqual(tableRef(TABLE.billing));
    expect(consumer.environment[ENV.subscriptionLedgerTableName]).toEqual(
      tableRef(TABLE.subscriptionLedger),
    );
    expect(consumer.environment[ENV.priceTierMap]).toEqual({ kind: 'literal', value: '{}' });

    const paymentConsumer = fn(ENTRY.paymentConsumer);
    expect(paymentConsumer).toMatchObject({
      timeoutSeconds: CONSUMER_SETTINGS.payments.timeout.toSeconds(),
      memoryMb: CONSUMER_SETTINGS.payments.memorySize,
    });
    expect(paymentConsumer.environment[ENV.paymentsTableName]).toEqual(tableRef(TABLE.payments));
    expect(paymentConsumer.environment[ENV.billingTableName]).toEqual(tableRef(TABLE.billing));
    expect(paymentConsumer.environment[ENV.penaltiesTableName]).toEqual(tableRef(TABLE.penalties));
    expect(paymentConsumer.environment[ENV.ledgerRetentionDays]?.kind).toBe('literal');

    const penaltyApi = fn(ENTRY.penaltyApi);
    expect(penaltyApi.environment[ENV.penaltiesTableName]).toEqual(tableRef(TABLE.penalties));
    expect(penaltyApi.environment[ENV.billingTableName]).toEqual(tableRef(TABLE.billing));
    expect(penaltyApi.environment[ENV.stripeApiKeySecretArn]?.kind).toBe('secretArn');
    expect(penaltyApi.environment[ENV.freeHabitLimits]?.kind).toBe('literal');
    for (const entry of [ENTRY.penaltyAdmin, ENTRY.penaltyAssessor]) {
      const { environment } = fn(entry);
      expect(environment[ENV.penaltiesTableName], entry).toEqual(tableRef(TABLE.penalties));
      expect(environment[ENV.billingTableName], entry).toBeUndefined();
      expect(environment[ENV.stripeApiKeySecretArn], entry).toBeUndefined();
    }
    const sweeper = fn(ENTRY.penaltySettlementSweeper).environment;
    expect(sweeper[ENV.penaltiesTableName]).toEqual(tableRef(TABLE.penalties));
    expect(sweeper[ENV.stripeApiKeySecretArn]?.kind).toBe('secretArn');
    expect(sweeper[ENV.billingTableName]).toBeUndefined();
    expect(fn(ENTRY.penaltyAssessor).environment[ENV.assessmentDeadlineHour]).toEqual({
      kind: 'literal',
      value: '6',
    });

    expect(fn(ENTRY.subscriptionRead).environment[ENV.billingTableName]).toEqual(
      tableRef(TABLE.billing),
    );
    expect(fn(ENTRY.paymentRead).environment[ENV.paymentsTableName]).toEqual(
      tableRef(TABLE.payments),
    );
  });

  it('finds every route with its authorization, function and throttle', () => {
    const byKey = Object.fromEntries(model.routes.map((r) => [`${r.method} ${r.path}`, r]));
    const paymentKeys = Object.values(PAYMENT_ROUTES).map((path) => `GET ${path}`);
    const creditRoutes: [string, string][] = [
      [`GET ${CREDIT_ROUTES.userCredits}`, ENTRY.creditRead],
      [`GET ${CREDIT_ROUTES.stats}`, ENTRY.creditAdmin],
      [`POST ${CREDIT_ROUTES.refresh}`, ENTRY.creditAdmin],
    ];
    const penaltyRoutes: [string, string][] = PENALTY_ROUTE_SPEC.map((route) => [
      `${route.method} ${route.path}`,
      route.entry,
    ]);
    expect(Object.keys(byKey).sort()).toEqual(
      [
        'POST /webhooks/stripe',
        'GET /users/{userId}/subscription',
        ...paymentKeys,
        ...creditRoutes.map(([key]) => key),
        ...penaltyRoutes.map(([key]) => key),
      ].sort(),
    );
    for (const [key, entry] of [...creditRoutes, ...penaltyRoutes]) {
      expect(byKey[key], key).toMatchObject({
        authorization: 'AWS_IAM',
        functionLogicalId: fn(entry).logicalId,
        throttle: { rateLimit: expect.any(Number), burstLimit: expect.any(Number) },
      });
    }
    const throttle = { rateLimit: expect.any(Number), burstLimit: expect.any(Number) };
    expect(byKey['POST /webhooks/stripe']).toMatchObject({
      authorization: 'NONE',
      functionLogicalId: fn(ENTRY.webhook).logicalId,
      throttle,
    });
    expect(byKey['GET /users/{userId}/subscription']).toMatchObject({
      authorization: 'AWS_IAM',
      functionLogicalId: fn(ENTRY.subscriptionRead).logicalId,
      throttle,
    });
    for (const key of paymentKeys) {
      expect(byKey[key], key).toMatchObject({
        authorization: 'AWS_IAM',
        functionLogicalId: fn(ENTRY.paymentRead).logicalId,
        throttle,
      });
    }
  });

  it("finds each family's consumer mapping with its settings, and the credit worker's", () => {
    const workQueue = model.queues.find((q) => q.localName.endsWith('-credit-refresh'));
    const expected = EVENT_FAMILIES.map((family) => {
      const settings = CONSUMER_SETTINGS[family];
      return {
        queueLogicalId: familyQueues(family).main.logicalId,
        functionLogicalId: fn(CONSUMER_ENTRY[family]).logicalId,
        batchSize: settings.batchSize,
        maximumBatchingWindowSeconds: settings.maxBatchingWindow.toSeconds(),
        maximumConcurrency: settings.maxConcurrency,
        reportBatchItemFailures: true,
      };
    });
    expected.push({
      queueLogicalId: workQueue?.logicalId ?? 'missing credit-refresh queue',
      functionLogicalId: fn(ENTRY.creditWorker).logicalId,
      batchSize: CREDIT_WORKER_SETTINGS.batchSize,
      maximumBatchingWindowSeconds: CREDIT_WORKER_SETTINGS.maxBatchingWindow.toSeconds(),
      maximumConcurrency: CREDIT_WORKER_SETTINGS.maxConcurrency,
      reportBatchItemFailures: true,
    });
    const byQueue = (a: { queueLogicalId: string }, b: { queueLogicalId: string }) =>
      a.queueLogicalId.localeCompare(b.queueLogicalId);
    expect([...model.queueConsumers].sort(byQueue)).toEqual(expected.sort(byQueue));
  });

  it('finds the credit planner, penalty assessor and settlement sweeper schedules with their functions and input', () => {
    const input = JSON.stringify({ scheduledTime: '<aws.scheduler.scheduled-time>' });
    const byExpression = (a: { expression: string }, b: { expression: string }) =>
      a.expression.localeCompare(b.expression);
    expect([...model.schedules].sort(byExpression)).toEqual(
      [
        {
          logicalId: expect.any(String),
          expression: CREDIT_PLANNER_SCHEDULE,
          functionLogicalId: fn(ENTRY.creditPlanner).logicalId,
          input,
        },
        {
          logicalId: expect.any(String),
          expression: PENALTY_ASSESSOR_SCHEDULE,
          functionLogicalId: fn(ENTRY.penaltyAssessor).logicalId,
          input,
        },
        {
          logicalId: expect.any(String),
          expression: PENALTY_SETTLEMENT_SWEEP_SCHEDULE,
          functionLogicalId: fn(ENTRY.penaltySettlementSweeper).logicalId,
          input,
        },
      ].sort(byExpression),
    );
  });

  it('the local scheduler can fire the assessor schedule: hourly at a quarter past', () => {
    const cron = parseCron(PENALTY_ASSESSOR_SCHEDULE);
    const at = Date.UTC(2026, 11, 3, 10, 5);
    expect(new Date(nextFire(cron, at)).toISOString()).toBe('2026-12-03T10:15:00.000Z');
    expect(new Date(nextFire(cron, Date.UTC(2026, 11, 3, 10, 15))).toISOString()).toBe(
      '2026-12-03T11:15:00.000Z',
    );
  });

  it('the local scheduler can fire the settlement sweep schedule: hourly at a quarter to', () => {
    const cron = parseCron(PENALTY_SETTLEMENT_SWEEP_SCHEDULE);
    expect(new Date(nextFire(cron, Date.UTC(2026, 11, 3, 10, 5))).toISOString()).toBe(
      '2026-12-03T10:45:00.000Z',
    );
    expect(new Date(nextFire(cron, Date.UTC(2026, 11, 3, 10, 45))).toISOString()).toBe(
      '2026-12-03T11:45:00.000Z',
    );
  });

  it("fills the schedule's input as Scheduler does, into a scheduledTime the planner reads", () => {
    const schedule = model.schedules.find((s) => s.expression === CREDIT_PLANNER_SCHEDULE);
    const at = Date.UTC(2026, 11, 3, 10, 5);
    const event = scheduleInput(schedule?.input, at, 'arn:local:schedule') as {
      scheduledTime?: string;
    };
    expect(event).toEqual({ scheduledTime: '2026-12-03T10:05:00.000Z' });
    expect(Date.parse(event.scheduledTime ?? '')).toBe(at);
  });

  it('binds the credit functions to the billing table, the refresh queue and the allowances', () => {
    const billing = { kind: 'tableName', tableLogicalId: table(TABLE.billing).logicalId };
    const refreshQueue = {
      kind: 'queueUrl',
      queueLogicalId: queue('billing-suite-credit-refresh').logicalId,
    };
    const allowances = {
      kind: 'literal',
      value: JSON.stringify(creditAllowancesFromContext(undefined)),
    };
    for (const entry of [ENTRY.creditPlanner, ENTRY.creditAdmin]) {
      const { environment } = fn(entry);
      expect(environment[ENV.billingTableName], entry).toEqual(billing);
      expect(environment[ENV.creditRefreshQueueUrl], entry).toEqual(refreshQueue);
      expect(environment[ENV.creditAllowances], entry).toBeUndefined();
    }
    for (const entry of [ENTRY.creditWorker, ENTRY.creditRead]) {
      const { environment } = fn(entry);
      expect(environment[ENV.billingTableName], entry).toEqual(billing);
      expect(environment[ENV.creditAllowances], entry).toEqual(allowances);
      expect(environment[ENV.creditRefreshQueueUrl], entry).toBeUndefined();
    }
    expect(fn(ENTRY.creditWorker)).toMatchObject({
      timeoutSeconds: CREDIT_WORKER_SETTINGS.timeout.toSeconds(),
      memoryMb: CREDIT_WORKER_SETTINGS.memorySize,
    });
  });

  it('is stable across calls and returns copies callers cannot corrupt', () => {
    const again = loadStackModel();
    expect(again).toEqual(model);
    again.functions.pop();
    again.queues.length = 0;
    expect(loadStackModel().functions).toHaveLength(model.functions.length);
    expect(loadStackModel().queues).toHaveLength(model.queues.length);
  });

  it('applies context (priceTierMap) when given', () => {
    const custom = loadStackModel({ context: { priceTierMap: { price_x: 'gold' } } });
    const consumer = custom.functions.find((f) => f.entry === ENTRY.subscriptionConsumer);
    expect(consumer?.environment[ENV.priceTierMap]).toEqual({
      kind: 'literal',
      value: '{"price_x":"gold"}',
    });
  });

  it('applies context (creditAllowances) when given', () => {
    const custom = loadStackModel({ context: { creditAllowances: { gold: 12 } } });
    for (const entry of [ENTRY.creditWorker, ENTRY.creditRead]) {
      const found = custom.functions.find((f) => f.entry === entry);
      expect(found?.environment[ENV.creditAllowances], entry).toEqual({
        kind: 'literal',
        value: JSON.stringify({ free: 1, bronze: 3, silver: 5, gold: 12 }),
      });
    }
  });
});

describe('resolveEnvironment', () => {
  const tableNames = Object.fromEntries(model.tables.map((t) => [t.logicalId, t.localName]));
  const queueUrls = Object.fromEntries(
    model.queues.map((q) => [q.logicalId, `http://localhost:9324/000000000000/${q.localName}`]),
  );

  it('turns table and queue references into the local names and URLs', () => {
    const env = resolveEnvironment(fn(ENTRY.subscriptionConsumer), { tableNames, queueUrls });
    expect(env).toMatchObject({
      [ENV.billingTableName]: TABLE.billing,
      [ENV.subscriptionLedgerTableName]: TABLE.subscriptionLedger,
      [ENV.priceTierMap]: '{}',
      POWERTOOLS_SERVICE_NAME: 'subscription-consumer',
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    });
    expect(resolveEnvironment(fn(ENTRY.paymentConsumer), { tableNames, queueUrls })).toMatchObject({
      [ENV.paymentsTableName]: TABLE.payments,
      [ENV.billingTableName]: TABLE.billing,
      POWERTOOLS_SERVICE_NAME: 'payment-consumer',
    });
    expect(resolveEnvironment(fn(ENTRY.paymentRead), { tableNames, queueUrls })).toMatchObject({
      [ENV.paymentsTableName]: TABLE.payments,
      [ENV.billingTableName]: TABLE.billing,
      POWERTOOLS_SERVICE_NAME: 'payment-read',
    });
    expect(resolveEnvironment(fn(ENTRY.creditPlanner), { tableNames, queueUrls })).toMatchObject({
      [ENV.billingTableName]: TABLE.billing,
      [ENV.creditRefreshQueueUrl]:
        'http://localhost:9324/000000000000/billing-suite-credit-refresh',
      POWERTOOLS_SERVICE_NAME: 'credit-planner',
    });
  });

  it('replaces the secret ARN by the plain secret when one is given', () => {
    const webhook = fn(ENTRY.webhook);
    const env = resolveEnvironment(webhook, {
      tableNames,
      queueUrls,
      secretValues: { [ENV.webhookSecret]: 'whsec_x' },
    });
    expect(env[ENV.webhookSecret]).toBe('whsec_x');
    expect(env[ENV.webhookSecretArn]).toBeUndefined();
    expect(env[ENV.subscriptionEventsQueueUrl]).toBe(
      'http://localhost:9324/000000000000/billing-suite-subscriptions-events',
    );
    expect(env[ENV.paymentEventsQueueUrl]).toBe(
      'http://localhost:9324/000000000000/billing-suite-payments-events',
    );
    expect(resolveEnvironment(webhook, { tableNames, queueUrls })[ENV.webhookSecret]).toBe(
      undefined,
    );
    const read = resolveEnvironment(fn(ENTRY.subscriptionRead), {
      tableNames,
      queueUrls,
      secretValues: { [ENV.webhookSecret]: 'whsec_x' },
    });
    expect(read[ENV.webhookSecret]).toBeUndefined();
  });

  it('fails clearly when a referenced table was not created', () => {
    expect(() =>
      resolveEnvironment(fn(ENTRY.subscriptionRead), { tableNames: {}, queueUrls }),
    ).toThrow(StackModelError);
    expect(() => resolveEnvironment(fn(ENTRY.paymentRead), { tableNames: {}, queueUrls })).toThrow(
      StackModelError,
    );
  });
});
