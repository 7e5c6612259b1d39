import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/commons/env-names.ts';
import { METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import {
  type FunctionModel,
  loadStackModel,
  resolveEnvironment,
  StackModelError,
} from '../../local/stack-model.ts';

const model = loadStackModel();

function fn(entry: string): FunctionModel {
  const found = model.functions.find((f) => f.entry === entry);
  if (!found) throw new Error(`no function for ${entry}`);
  return found;
}

describe('loadStackModel', () => {
  it('finds the billing table and the events ledger with its TTL', () => {
    expect(model.tables.map((t) => t.localName).sort()).toEqual([
      'billing-suite-billing',
      'billing-suite-events',
    ]);
    const billing = model.tables.find((t) => t.localName === 'billing-suite-billing');
    const events = model.tables.find((t) => t.localName === 'billing-suite-events');
    expect(billing?.create).toMatchObject({
      TableName: 'billing-suite-billing',
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
    expect(billing?.ttlAttribute).toBeUndefined();
    expect(events?.create.KeySchema).toEqual([
      { AttributeName: 'customerId', KeyType: 'HASH' },
      { AttributeName: 'revision', KeyType: 'RANGE' },
    ]);
    expect(events?.ttlAttribute).toBe('expiresAt');
  });

  it('finds the event queue and its DLQ link', () => {
    expect(model.queues).toHaveLength(2);
    const main = model.queues.find((q) => q.deadLetter);
    const dlq = model.queues.find((q) => !q.deadLetter);
    expect(main?.deadLetter).toEqual({ targetLogicalId: dlq?.logicalId, maxReceiveCount: 5 });
    expect(main?.localName).toBe('billing-suite-stripe-events');
    expect(Number(main?.attributes.VisibilityTimeout)).toBeGreaterThanOrEqual(6 * 30);
    expect(main?.attributes.RedrivePolicy).toBeUndefined();
    expect(dlq?.attributes.MessageRetentionPeriod).toBe(String(14 * 24 * 3600));
  });

  it('finds the three functions with their entries, sizes and bound resources', () => {
    expect(model.functions.map((f) => f.entry).sort()).toEqual([
      'functions/subscription-consumer.ts',
      'functions/subscription-read.ts',
      'functions/webhook-ingress.ts',
    ]);
    const [main] = model.queues.filter((q) => q.deadLetter);
    const webhook = fn('functions/webhook-ingress.ts');
    expect(webhook.exportName).toBe('handler');
    expect(webhook.environment[ENV.eventQueueUrl]).toEqual({
      kind: 'queueUrl',
      queueLogicalId: main?.logicalId,
    });
    expect(webhook.environment[ENV.webhookSecretArn]?.kind).toBe('secretArn');
    const consumer = fn('functions/subscription-consumer.ts');
    expect(consumer).toMatchObject({ timeoutSeconds: 30, memoryMb: 512 });
    const tableIds = Object.fromEntries(model.tables.map((t) => [t.localName, t.logicalId]));
    expect(consumer.environment[ENV.billingTableName]).toEqual({
      kind: 'tableName',
      tableLogicalId: tableIds['billing-suite-billing'],
    });
    expect(consumer.environment[ENV.eventsTableName]).toEqual({
      kind: 'tableName',
      tableLogicalId: tableIds['billing-suite-events'],
    });
    expect(consumer.environment[ENV.priceTierMap]).toEqual({ kind: 'literal', value: '{}' });
  });

  it('finds both routes with their authorization and throttle', () => {
    const byKey = Object.fromEntries(model.routes.map((r) => [`${r.method} ${r.path}`, r]));
    expect(Object.keys(byKey).sort()).toEqual([
      'GET /users/{userId}/subscription',
      'POST /webhooks/stripe',
    ]);
    expect(byKey['POST /webhooks/stripe']).toMatchObject({
      authorization: 'NONE',
      functionLogicalId: fn('functions/webhook-ingress.ts').logicalId,
      throttle: { rateLimit: expect.any(Number), burstLimit: expect.any(Number) },
    });
    expect(byKey['GET /users/{userId}/subscription']).toMatchObject({
      authorization: 'AWS_IAM',
      functionLogicalId: fn('functions/subscription-read.ts').logicalId,
    });
  });

  it('finds the consumer mapping with its settings', () => {
    const [main] = model.queues.filter((q) => q.deadLetter);
    expect(model.queueConsumers).toEqual([
      {
        queueLogicalId: main?.logicalId,
        functionLogicalId: fn('functions/subscription-consumer.ts').logicalId,
        batchSize: 100,
        maximumBatchingWindowSeconds: 2,
        maximumConcurrency: 5,
        reportBatchItemFailures: true,
      },
    ]);
  });

  it('is stable across calls and returns copies callers cannot corrupt', () => {
    const again = loadStackModel();
    expect(again).toEqual(model);
    again.functions.pop();
    expect(loadStackModel().functions).toHaveLength(3);
  });

  it('applies context (priceTierMap) when given', () => {
    const custom = loadStackModel({ context: { priceTierMap: { price_x: 'gold' } } });
    const consumer = custom.functions.find((f) => f.entry === 'functions/subscription-consumer.ts');
    expect(consumer?.environment[ENV.priceTierMap]).toEqual({
      kind: 'literal',
      value: '{"price_x":"gold"}',
    });
  });
});

describe('resolveEnvironment', () => {
  const tableNames = Object.fromEntries(model.tables.map((t) => [t.logicalId, t.localName]));
  const queueUrls = Object.fromEntries(
    model.queues.map((q) => [q.logicalId, `http://localhost:9324/000000000000/${q.localName}`]),
  );

  it('turns table and queue references into the local names and URLs', () => {
    const env = resolveEnvironment(fn('functions/subscription-consumer.ts'), {
      tableNames,
      queueUrls,
    });
    expect(env).toMatchObject({
      [ENV.billingTableName]: 'billing-suite-billing',
      [ENV.eventsTableName]: 'billing-suite-events',
      [ENV.priceTierMap]: '{}',
      POWERTOOLS_SERVICE_NAME: 'subscription-consumer',
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    });
  });

  it('replaces the secret ARN by the plain secret when one is given', () => {
    const webhook = fn('functions/webhook-ingress.ts');
    const env = resolveEnvironment(webhook, { tableNames, queueUrls, secretValue: 'whsec_x' });
    expect(env[ENV.webhookSecret]).toBe('whsec_x');
    expect(env[ENV.webhookSecretArn]).toBeUndefined();
    expect(env[ENV.eventQueueUrl]).toBe(
      'http://localhost:9324/000000000000/billing-suite-stripe-events',
    );
    expect(resolveEnvironment(webhook, { tableNames, queueUrls })[ENV.webhookSecret]).toBe(
      undefined,
    );
    const read = resolveEnvironment(fn('functions/subscription-read.ts'), {
      tableNames,
      queueUrls,
      secretValue: 'whsec_x',
    });
    expect(read[ENV.webhookSecret]).toBeUndefined();
  });

  it('fails clearly when a referenced table was not created', () => {
    expect(() =>
      resolveEnvironment(fn('functions/subscription-read.ts'), { tableNames: {}, queueUrls }),
    ).toThrow(StackModelError);
  });
});
