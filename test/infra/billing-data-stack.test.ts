import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CfnResourceJson,
  functionByEntry,
  onlyResource,
  resources,
  statementsOf,
  synthTemplates,
  type Templates,
} from './synth.ts';

let t: Templates;
beforeAll(() => {
  t = synthTemplates();
});

function queues(): { main: [string, CfnResourceJson]; dlq: [string, CfnResourceJson] } {
  const all = Object.entries(resources(t.data, 'AWS::SQS::Queue'));
  expect(all).toHaveLength(2);
  const main = all.find(([, q]) => q.Properties.RedrivePolicy !== undefined);
  const dlq = all.find(([, q]) => q.Properties.RedrivePolicy === undefined);
  if (!main || !dlq) throw new Error('expected one queue with a redrive policy and one without');
  return { main, dlq };
}

describe('tables', () => {
  it('both tables are on-demand, PITR on, encrypted, deletion-protected and retained', () => {
    const tables = Object.values(resources(t.data, 'AWS::DynamoDB::Table'));
    expect(tables).toHaveLength(2);
    for (const table of tables) {
      expect(table.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
      });
      expect(table).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
      expect(table.Properties.ProvisionedThroughput).toBeUndefined();
    }
  });

  it('the billing table is keyed pk/sk (strings) with no TTL', () => {
    t.data.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ]),
      TimeToLiveSpecification: Match.absent(),
    });
  });

  it('the events ledger is keyed by customer and account revision, with TTL on expiresAt', () => {
    t.data.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'customerId', KeyType: 'HASH' },
        { AttributeName: 'revision', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: 'customerId', AttributeType: 'S' },
        { AttributeName: 'revision', AttributeType: 'N' },
      ]),
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });
});

describe('queues', () => {
  it('the event queue redrives to the DLQ after 5 receives', () => {
    const { main, dlq } = queues();
    expect(main[1].Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [dlq[0], 'Arn'] },
      maxReceiveCount: 5,
    });
  });

  it('the DLQ keeps messages 14 days', () => {
    expect(queues().dlq[1].Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  it('visibility timeout is at least 6x the consumer timeout plus its batching window', () => {
    const { main } = queues();
    const [consumerId, consumer] = functionByEntry(t.service, 'functions/subscription-consumer.ts');
    const [, mapping] = onlyResource(t.service, 'AWS::Lambda::EventSourceMapping');
    expect(mapping.Properties.FunctionName).toEqual({ Ref: consumerId });
    const timeout = consumer.Properties.Timeout as number;
    const window = mapping.Properties.MaximumBatchingWindowInSeconds as number;
    expect(timeout).toBeGreaterThan(0);
    expect(main[1].Properties.VisibilityTimeout as number).toBeGreaterThanOrEqual(
      6 * timeout + window,
    );
  });

  it('both queues use SSE-SQS and deny any request not made over TLS', () => {
    const policies = Object.values(resources(t.data, 'AWS::SQS::QueuePolicy'));
    for (const [id, queue] of Object.entries(resources(t.data, 'AWS::SQS::Queue'))) {
      expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
      const statements = policies
        .filter((p) => (p.Properties.Queues as Array<{ Ref?: string }>).some((q) => q.Ref === id))
        .flatMap((p) => statementsOf(p.Properties.PolicyDocument));
      expect(statements).toContainEqual(
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

describe('webhook signing secret', () => {
  it('is generated (no value in the template) and retained', () => {
    const [, secret] = onlyResource(t.data, 'AWS::SecretsManager::Secret');
    expect(secret.Properties.SecretString).toBeUndefined();
    expect(secret.Properties.GenerateSecretString).toBeDefined();
    expect(secret).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });
});

describe('no hard-coded physical names', () => {
  it('tables, queues, secret, functions, log groups and topics are named by CloudFormation', () => {
    const named: Array<[string, string]> = [
      ['AWS::DynamoDB::Table', 'TableName'],
      ['AWS::SQS::Queue', 'QueueName'],
      ['AWS::SecretsManager::Secret', 'Name'],
      ['AWS::Lambda::Function', 'FunctionName'],
      ['AWS::Logs::LogGroup', 'LogGroupName'],
      ['AWS::SNS::Topic', 'TopicName'],
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
  it('export the queue, DLQ and secret for operators', () => {
    const { main, dlq } = queues();
    const [secretId] = onlyResource(t.data, 'AWS::SecretsManager::Secret');
    t.data.hasOutput('EventQueueUrl', { Value: { Ref: main[0] } });
    t.data.hasOutput('DeadLetterQueueUrl', { Value: { Ref: dlq[0] } });
    t.data.hasOutput('WebhookSecretArn', { Value: { Ref: secretId } });
  });
});
