import { beforeAll, describe, expect, it } from 'vitest';
import { CREDIT_SLOT_INDEX } from '../../functions/adapters/dynamodb/credit-table-schema.ts';
import {
  PAYMENT_INDEX,
  PAYMENT_INDEXES,
  PAYMENT_TABLE_KEY,
  PAYMENT_TTL_ATTRIBUTE,
} from '../../functions/adapters/dynamodb/payment-table-schema.ts';
import { EVENT_FAMILIES } from '../../functions/core/shared/event-families.ts';
import {
  CONSUMER_SETTINGS,
  CREDIT_WORKER_SETTINGS,
  DEFAULT_MAX_RECEIVE_COUNT,
  visibilityTimeoutFor,
} from '../../lib/event-family-queue.ts';
import { LOCAL_NAME_PREFIX, METADATA } from '../../lib/metadata.ts';
import {
  type CfnResourceJson,
  CONSUMER_ENTRY,
  type DataIds,
  dataIds,
  ENTRY,
  functionByEntry,
  getAtt,
  mappingsOf,
  resolveImport,
  resources,
  statementsOf,
  synthTemplates,
  type Templates,
} from './synth.ts';

let t: Templates;
let ids: DataIds;
beforeAll(() => {
  t = synthTemplates();
  ids = dataIds(t);
});

function table(logicalId: string): CfnResourceJson {
  const found = resources(t.data, 'AWS::DynamoDB::Table')[logicalId];
  if (!found) throw new Error(`no table ${logicalId}`);
  return found;
}

function queue(logicalId: string): CfnResourceJson {
  const found = resources(t.data, 'AWS::SQS::Queue')[logicalId];
  if (!found) throw new Error(`no queue ${logicalId}`);
  return found;
}

const STATEFUL = {
  BillingMode: 'PAY_PER_REQUEST',
  PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
  SSESpecification: { SSEEnabled: true },
  DeletionProtectionEnabled: true,
};

describe('tables', () => {
  it('every table is on-demand, PITR on, encrypted, deletion-protected and retained', () => {
    const tables = resources(t.data, 'AWS::DynamoDB::Table');
    expect(Object.keys(tables)).toEqual(
      expect.arrayContaining([ids.billing, ids.subscriptionLedger, ids.payments, ids.penalties]),
    );
    for (const [id, resource] of Object.entries(tables)) {
      expect(resource.Properties, id).toMatchObject(STATEFUL);
      expect(resource, id).toMatchObject({
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
      expect(resource.Properties.ProvisionedThroughput, id).toBeUndefined();
    }
  });

  it('the billing table is keyed pk/sk (strings) with no TTL', () => {
    expect(table(ids.billing).Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ]),
    });
    expect(table(ids.billing).Properties.TimeToLiveSpecification).toBeUndefined();
  });

  it('the billing table has exactly one index, the slot index of the credit schema module', () => {
    const gsis = table(ids.billing).Properties.GlobalSecondaryIndexes as Array<{
      IndexName: string;
      KeySchema: unknown;
      Projection: { ProjectionType: string; NonKeyAttributes?: string[] };
      ProvisionedThroughput?: unknown;
    }>;
    expect(gsis.map((gsi) => gsi.IndexName)).toEqual([CREDIT_SLOT_INDEX.indexName]);
    const [slot] = gsis;
    // "The users of slot s not yet refreshed for period P": slot (number) then period (date).
    expect(slot?.KeySchema).toEqual([
      { AttributeName: 'refreshSlot', KeyType: 'HASH' },
      { AttributeName: 'creditPeriod', KeyType: 'RANGE' },
    ]);
    expect(slot?.KeySchema).toEqual([
      { AttributeName: CREDIT_SLOT_INDEX.partitionKey.name, KeyType: 'HASH' },
      { AttributeName: CREDIT_SLOT_INDEX.sortKey.name, KeyType: 'RANGE' },
    ]);
    expect(table(ids.billing).Properties.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'refreshSlot', AttributeType: CREDIT_SLOT_INDEX.partitionKey.type },
        { AttributeName: 'creditPeriod', AttributeType: CREDIT_SLOT_INDEX.sortKey.type },
      ]),
    );
    expect(CREDIT_SLOT_INDEX.partitionKey.type).toBe('N');
    expect(CREDIT_SLOT_INDEX.sortKey.type).toBe('S');
    // What the planner enqueues and nothing more: not the balance, not the whole profile.
    expect(slot?.Projection.ProjectionType).toBe('INCLUDE');
    expect([...(slot?.Projection.NonKeyAttributes ?? [])].sort()).toEqual(
      [...CREDIT_SLOT_INDEX.projected].sort(),
    );
    expect([...CREDIT_SLOT_INDEX.projected].sort()).toEqual(['tier', 'userId']);
    expect(slot?.ProvisionedThroughput).toBeUndefined();
    expect(table(ids.billing).Properties.LocalSecondaryIndexes).toBeUndefined();
  });

  it('the subscription ledger is keyed by customer and account revision, with TTL on expiresAt', () => {
    expect(table(ids.subscriptionLedger).Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'customerId', KeyType: 'HASH' },
        { AttributeName: 'revision', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'customerId', AttributeType: 'S' },
        { AttributeName: 'revision', AttributeType: 'N' },
      ]),
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });
});

describe('payments table', () => {
  it('is on-demand, PITR on, encrypted, deletion-protected and retained, with TTL on expiresAt', () => {
    const payments = table(ids.payments);
    expect(payments.Properties).toMatchObject({
      ...STATEFUL,
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    // The adapter writes the TTL attribute under the name the schema module gives it.
    expect(PAYMENT_TTL_ATTRIBUTE).toBe('expiresAt');
    expect(payments).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  it('is keyed by the schema module’s table key (strings)', () => {
    const { partition, sort } = PAYMENT_TABLE_KEY;
    expect(table(ids.payments).Properties).toMatchObject({
      KeySchema: [
        { AttributeName: partition, KeyType: 'HASH' },
        { AttributeName: sort, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: partition, AttributeType: 'S' },
        { AttributeName: sort, AttributeType: 'S' },
      ]),
    });
  });

  it('has exactly the GSIs of the schema module, with its key schemas and projections', () => {
    const gsis = table(ids.payments).Properties.GlobalSecondaryIndexes as Array<{
      IndexName: string;
      KeySchema: unknown;
      Projection: { ProjectionType: string; NonKeyAttributes?: string[] };
      ProvisionedThroughput?: unknown;
    }>;
    // Every index the adapter queries by name exists.
    expect(gsis.map((gsi) => gsi.IndexName).sort()).toEqual(Object.values(PAYMENT_INDEX).sort());
    for (const index of PAYMENT_INDEXES) {
      const gsi = gsis.find((candidate) => candidate.IndexName === index.indexName);
      expect(gsi, index.indexName).toBeDefined();
      expect(gsi?.KeySchema, index.indexName).toEqual([
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: index.sortKey, KeyType: 'RANGE' },
      ]);
      expect(gsi?.Projection.ProjectionType, index.indexName).toBe('INCLUDE');
      expect([...(gsi?.Projection.NonKeyAttributes ?? [])].sort(), index.indexName).toEqual(
        [...index.projected].sort(),
      );
      expect(gsi?.ProvisionedThroughput, index.indexName).toBeUndefined();
    }
    const definitions = table(ids.payments).Properties.AttributeDefinitions;
    for (const index of PAYMENT_INDEXES) {
      expect(definitions).toEqual(
        expect.arrayContaining([
          { AttributeName: index.partitionKey, AttributeType: 'S' },
          { AttributeName: index.sortKey, AttributeType: 'S' },
        ]),
      );
    }
  });
});

describe.each(EVENT_FAMILIES)('the %s family queue', (family) => {
  it('redrives to its own DLQ after 5 receives', () => {
    const { queue: queueId, dlq } = ids.queues[family];
    expect(queue(queueId).Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: getAtt(dlq),
      maxReceiveCount: 5,
    });
    // No other family's queue shares this DLQ.
    for (const other of EVENT_FAMILIES.filter((f) => f !== family)) {
      expect(ids.queues[other].dlq).not.toBe(dlq);
    }
  });

  it('has a DLQ that keeps messages 14 days and redrives nowhere itself', () => {
    const dlq = queue(ids.queues[family].dlq);
    expect(dlq.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(dlq.Properties.RedrivePolicy).toBeUndefined();
  });

  it('and its DLQ are retained when the stack goes away', () => {
    for (const id of [ids.queues[family].queue, ids.queues[family].dlq]) {
      expect(queue(id), id).toMatchObject({
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
    }
  });

  it("has a visibility timeout of at least 6x its consumer's timeout plus batching window", () => {
    const [consumerId, consumer] = functionByEntry(t.service, CONSUMER_ENTRY[family]);
    const mapping = Object.values(resources(t.service, 'AWS::Lambda::EventSourceMapping')).find(
      (m) => JSON.stringify(m.Properties.FunctionName) === JSON.stringify({ Ref: consumerId }),
    );
    if (!mapping) throw new Error(`no event source mapping for ${CONSUMER_ENTRY[family]}`);
    expect(resolveImport(t.data, mapping.Properties.EventSourceArn)).toEqual(
      getAtt(ids.queues[family].queue),
    );
    const timeout = consumer.Properties.Timeout as number;
    const window = mapping.Properties.MaximumBatchingWindowInSeconds as number;
    expect(timeout).toBe(CONSUMER_SETTINGS[family].timeout.toSeconds());
    expect(
      queue(ids.queues[family].queue).Properties.VisibilityTimeout as number,
    ).toBeGreaterThanOrEqual(6 * timeout + window);
  });
});

describe('the credit refresh queue', () => {
  const refresh = () => ids.creditRefresh;

  it('redrives to its own DLQ after the default maximum receives', () => {
    expect(queue(refresh().queue).Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: getAtt(refresh().dlq),
      maxReceiveCount: DEFAULT_MAX_RECEIVE_COUNT,
    });
    expect(DEFAULT_MAX_RECEIVE_COUNT).toBe(5);
    // Refresh work never mixes with an event family's dead letters.
    for (const family of EVENT_FAMILIES) {
      expect(ids.queues[family].dlq).not.toBe(refresh().dlq);
      expect(ids.queues[family].queue).not.toBe(refresh().queue);
    }
  });

  it("keeps work a day (the next day's run replans it), its DLQ 14 days and redriving nowhere", () => {
    expect(queue(refresh().queue).Properties.MessageRetentionPeriod).toBe(24 * 3600);
    const dlq = queue(refresh().dlq);
    expect(dlq.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(dlq.Properties.RedrivePolicy).toBeUndefined();
  });

  it("has the visibility timeout derived from the worker's settings, at least 6x its timeout plus window", () => {
    const [workerId, worker] = functionByEntry(t.service, ENTRY.creditWorker);
    const [mapping] = mappingsOf(t.service, workerId);
    expect(resolveImport(t.data, mapping?.Properties.EventSourceArn)).toEqual(
      getAtt(refresh().queue),
    );
    const visibility = queue(refresh().queue).Properties.VisibilityTimeout as number;
    expect(visibility).toBe(visibilityTimeoutFor(CREDIT_WORKER_SETTINGS).toSeconds());
    const timeout = worker.Properties.Timeout as number;
    const window = mapping?.Properties.MaximumBatchingWindowInSeconds as number;
    expect(visibility).toBeGreaterThanOrEqual(6 * timeout + window);
  });

  it('and its DLQ are SSE-SQS, TLS-only and retained when the stack goes away', () => {
    const policies = Object.values(resources(t.data, 'AWS::SQS::QueuePolicy'));
    for (const id of [refresh().queue, refresh().dlq]) {
      expect(queue(id), id).toMatchObject({
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
      expect(queue(id).Properties.SqsManagedSseEnabled, id).toBe(true);
      const statements = policies
        .filter((p) => (p.Properties.Queues as Array<{ Ref?: string }>).some((q) => q.Ref === id))
        .flatMap((p) => statementsOf(p.Properties.PolicyDocument));
      expect(statements, id).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: ['sqs:*'],
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
    }
  });

  it('carries the local names the local runtime creates it under', () => {
    expect(queue(refresh().queue).Metadata?.[METADATA.localName]).toBe(
      `${LOCAL_NAME_PREFIX}-credit-refresh`,
    );
    expect(queue(refresh().dlq).Metadata?.[METADATA.localName]).toBe(
      `${LOCAL_NAME_PREFIX}-credit-refresh-dlq`,
    );
  });
});

describe('queues', () => {
  it('every queue uses SSE-SQS and denies any request not made over TLS', () => {
    const policies = Object.values(resources(t.data, 'AWS::SQS::QueuePolicy'));
    const queues = resources(t.data, 'AWS::SQS::Queue');
    expect(Object.keys(queues)).toEqual(
      expect.arrayContaining([
        ...EVENT_FAMILIES.flatMap((family) => [ids.queues[family].queue, ids.queues[family].dlq]),
        ids.creditRefresh.queue,
        ids.creditRefresh.dlq,
      ]),
    );
    for (const [id, resource] of Object.entries(queues)) {
      expect(resource.Properties.SqsManagedSseEnabled, id).toBe(true);
      const statements = policies
        .filter((p) => (p.Properties.Queues as Array<{ Ref?: string }>).some((q) => q.Ref === id))
        .flatMap((p) => statementsOf(p.Properties.PolicyDocument));
      expect(statements, id).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: ['sqs:*'],
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
    }
  });
});

describe('secrets: the webhook signing secret, the Stripe API key and the cursor signing key', () => {
  it('are exactly these three', () => {
    const all = [ids.secret, ids.stripeApiKey, ids.cursorSigningKey];
    expect(Object.keys(resources(t.data, 'AWS::SecretsManager::Secret')).sort()).toEqual(
      all.sort(),
    );
    expect(new Set(all).size).toBe(3);
  });

  it('are generated (no value in the template) and retained', () => {
    const secrets = resources(t.data, 'AWS::SecretsManager::Secret');
    for (const id of [ids.secret, ids.stripeApiKey, ids.cursorSigningKey]) {
      const secret = secrets[id];
      expect(secret?.Properties.SecretString, id).toBeUndefined();
      expect(secret?.Properties.GenerateSecretString, id).toBeDefined();
      expect(secret, id).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
  });

  it("say what to put in them after deploy (the Stripe key's description names sk_ and rk_)", () => {
    const secrets = resources(t.data, 'AWS::SecretsManager::Secret');
    expect(String(secrets[ids.secret]?.Properties.Description)).toContain('whsec_');
    const description = String(secrets[ids.stripeApiKey]?.Properties.Description);
    expect(description).toContain('sk_');
    expect(description).toContain('rk_');
    expect(description).toMatch(/after deploy/);
  });

  it('the cursor key is long and random: CloudFormation generates 64 characters nobody sets', () => {
    const secret = resources(t.data, 'AWS::SecretsManager::Secret')[ids.cursorSigningKey];
    expect(secret?.Properties.GenerateSecretString).toMatchObject({ PasswordLength: 64 });
    // No output for operators (only the export the service stack imports): there is nothing to put in it.
    const outputs = Object.values(
      (t.data.toJSON().Outputs ?? {}) as Record<string, { Export?: unknown }>,
    );
    const forOperators = outputs.filter((output) => output.Export === undefined);
    expect(forOperators.length).toBeGreaterThan(0);
    expect(JSON.stringify(forOperators)).not.toContain(ids.cursorSigningKey);
  });
});

describe('no hard-coded physical names', () => {
  it('tables, queues, secret, functions, log groups, topics and schedules are named by CloudFormation', () => {
    const named: Array<[string, string]> = [
      ['AWS::DynamoDB::Table', 'TableName'],
      ['AWS::SQS::Queue', 'QueueName'],
      ['AWS::SecretsManager::Secret', 'Name'],
      ['AWS::Lambda::Function', 'FunctionName'],
      ['AWS::Logs::LogGroup', 'LogGroupName'],
      ['AWS::SNS::Topic', 'TopicName'],
      ['AWS::Scheduler::Schedule', 'Name'],
      ['AWS::CloudWatch::Dashboard', 'DashboardName'],
    ];
    for (const template of [t.data, t.service]) {
      for (const [type, property] of named) {
        for (const resource of Object.values(resources(template, type))) {
          expect(resource.Properties[property], `${type}.${property}`).toBeUndefined();
        }
      }
    }
  });
});

describe('outputs', () => {
  it("export each family's queue and DLQ, the credit refresh queue and DLQ, the tables and the secret", () => {
    const prefixes = { subscriptions: 'SubscriptionEvents', payments: 'PaymentEvents' } as const;
    for (const family of EVENT_FAMILIES) {
      const prefix = prefixes[family];
      t.data.hasOutput(`${prefix}QueueUrl`, { Value: { Ref: ids.queues[family].queue } });
      t.data.hasOutput(`${prefix}DeadLetterQueueUrl`, { Value: { Ref: ids.queues[family].dlq } });
    }
    t.data.hasOutput('CreditRefreshQueueUrl', { Value: { Ref: ids.creditRefresh.queue } });
    t.data.hasOutput('CreditRefreshDeadLetterQueueUrl', {
      Value: { Ref: ids.creditRefresh.dlq },
    });
    t.data.hasOutput('WebhookSecretArn', { Value: { Ref: ids.secret } });
    t.data.hasOutput('BillingTableName', { Value: { Ref: ids.billing } });
    t.data.hasOutput('SubscriptionLedgerTableName', { Value: { Ref: ids.subscriptionLedger } });
    t.data.hasOutput('PaymentsTableName', { Value: { Ref: ids.payments } });
    t.data.hasOutput('PenaltiesTableName', { Value: { Ref: ids.penalties } });
    t.data.hasOutput('StripeApiKeySecretArn', { Value: { Ref: ids.stripeApiKey } });
  });
});
