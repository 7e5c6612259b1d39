/**
 * End to end through the local runtime: real emulators, the real handlers, HTTP in
 * and out, real Stripe payloads signed by the Stripe SDK's own helper.
 */
import { createServer, type Server } from 'node:net';
import { GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrerequisiteError } from '../../local/emulators.ts';
import { AccessDeniedError } from '../../local/iam-scope.ts';
import { invokeLocally, localFunction } from '../../local/lambda-context.ts';
import {
  buildLocalEnvironment,
  DEFAULT_LOCAL_WEBHOOK_SECRET,
  LocalEnvironmentConflictError,
  type LocalRuntime,
  resolveRuntimeOptions,
  startLocalRuntime,
} from '../../local/runtime.ts';
import {
  buildDefaultSample,
  loadFixtureEvent,
  restampEvent,
  SAMPLE_WEBHOOK_SECRET,
  sampleIds,
} from '../../local/send-sample.ts';
import { type FunctionModel, loadStackModel } from '../../local/stack-model.ts';
import {
  consumed,
  dumpTables,
  eventually,
  getSubscription,
  postWebhook,
  recordsFor,
  uniqueUserId,
  waitForSubscription,
} from './e2e-helpers.ts';

/** The price in the captured subscription fixtures. */
const FIXTURE_PRICE_ID = 'price_1IDQm5JDPojXS6LNM31hxKzp';

describe('local runtime, end to end', () => {
  let runtime: LocalRuntime;

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      port: 0,
      inMemory: true,
      logLevel: 'warn',
      // The tests compare whole tables: a credit planner run between two reads would differ.
      schedules: false,
      // Exercises the path from CDK context through the stack model to the handler env.
      context: { priceTierMap: { [FIXTURE_PRICE_ID]: 'bronze' } },
    });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  /** Delivers the default sample (checkout, then subscription created) for `userId`. */
  async function subscribe(userId: string, tier?: string) {
    const events = buildDefaultSample({ userId, ...(tier ? { tier } : {}) });
    const consumedBefore = consumed(runtime);
    for (const event of events) {
      const res = await postWebhook(runtime, event);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ received: true });
    }
    const { subscriptionId } = sampleIds(userId);
    const answer = await waitForSubscription(
      runtime,
      userId,
      (a) => a.subscriptionId === subscriptionId,
    );
    // Every record of this delivery finished, so later snapshots see settled state.
    await eventually(
      async () => (consumed(runtime) >= consumedBefore + recordsFor(events) ? true : undefined),
      20_000,
      'the sample to be consumed',
    );
    return { events, answer };
  }

  it('holds each handler’s DynamoDB requests to its role’s grants in the template, as IAM would', async () => {
    // The credit reader's role may GetItem the billing table, nothing else.
    const reader = loadStackModel({
      context: { priceTierMap: { [FIXTURE_PRICE_ID]: 'bronze' } },
    }).functions.find((fn) => fn.entry === 'functions/credit-read.ts');
    if (!reader) throw new Error('no credit reader in the stack model');
    expect(reader.dynamoDbGrants.map((grant) => grant.actions)).toEqual([['GetItem']]);
    const billing = runtime.tableNames[reader.dynamoDbGrants[0]!.tableLogicalId]!;
    // The client every handler shares in this process.
    const { defaultDynamoDbClient } = await import('../../functions/commons/aws-clients.ts');
    const client = defaultDynamoDbClient();
    const key = { pk: { S: 'USER#nobody' }, sk: { S: 'PROFILE' } };
    const asReader = (request: () => Promise<unknown>) =>
      invokeLocally(localFunction(reader, runtime.tableNames), request, {});

    await expect(
      asReader(() => client.send(new GetItemCommand({ TableName: billing, Key: key }))),
    ).resolves.toMatchObject({ $metadata: { httpStatusCode: 200 } });
    const denied = await asReader(() => client.send(new ScanCommand({ TableName: billing }))).catch(
      (error: unknown) => error,
    );
    expect(denied).toBeInstanceOf(AccessDeniedError);
    expect((denied as Error).message).toBe(
      `${reader.logicalId} is not authorized to perform: dynamodb:Scan on resource: table/${billing} (its role in the template does not grant it)`,
    );
    // Outside an invocation (the runtime, operator commands) nothing is checked.
    await expect(
      client.send(new ScanCommand({ TableName: billing, Limit: 1 })),
    ).resolves.toBeTruthy();
  });

  it('uses the documented default secret, the one send-sample signs with', () => {
    expect(runtime.webhookSecret).toBe(DEFAULT_LOCAL_WEBHOOK_SECRET);
    expect(SAMPLE_WEBHOOK_SECRET).toBe(DEFAULT_LOCAL_WEBHOOK_SECRET);
  });

  it('answers 404 JSON for a user it does not know', async () => {
    const { status, body } = await getSubscription(runtime, uniqueUserId('nobody'));
    expect(status).toBe(404);
    expect(body).toMatchObject({ error: { code: 'user_not_found' } });
  });

  it('applies signed Stripe events: checkout and subscription show in the read API', async () => {
    const userId = uniqueUserId();
    const { customerId, subscriptionId } = sampleIds(userId);
    const { answer } = await subscribe(userId);
    expect(answer).toMatchObject({
      userId,
      // No metadata.tier on the price: the tier comes from the configured price map.
      tier: 'bronze',
      status: 'active',
      stripeCustomerId: customerId,
      subscriptionId,
      cancelAtPeriodEnd: false,
    });
    expect(Date.parse(answer.currentPeriodEnd ?? '')).toBeGreaterThan(Date.now());
  });

  it("prefers the price's metadata.tier, and a later cancellation shows up", async () => {
    const userId = uniqueUserId();
    const { answer } = await subscribe(userId, 'gold');
    expect(answer.tier).toBe('gold');

    const deleted = restampEvent(
      loadFixtureEvent('customer.subscription.deleted.stripe-sync-engine'),
      {
        userId,
        created: Math.floor(Date.now() / 1000) + 1,
      },
    );
    expect((await postWebhook(runtime, deleted)).status).toBe(200);
    const after = await waitForSubscription(runtime, userId, (a) => a.status === 'canceled');
    expect(after.tier).toBe('free');
  });

  it('rejects a bad signature with 400 and changes nothing', async () => {
    const userId = uniqueUserId();
    await subscribe(userId, 'silver');
    const before = await dumpTables(runtime);
    const consumedBefore = consumed(runtime);

    const deleted = restampEvent(
      loadFixtureEvent('customer.subscription.deleted.stripe-sync-engine'),
      {
        userId,
        created: Math.floor(Date.now() / 1000) + 1,
      },
    );
    const wrongSecret = await postWebhook(runtime, deleted, { secret: 'whsec_not_the_right_one' });
    expect(wrongSecret.status).toBe(400);
    const rawBody = JSON.stringify(deleted, null, 2);
    const tampered = await postWebhook(runtime, deleted, {
      rawBody: rawBody.replace('"canceled"', '"active"'),
      signedBody: rawBody,
    });
    expect(tampered.status).toBe(400);
    const unsigned = await fetch(`${runtime.apiUrl}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: rawBody,
    });
    expect(unsigned.status).toBe(400);

    // Barrier: a valid event for someone else. Anything the rejected requests had
    // enqueued would have been consumed by the time this one is.
    const other = uniqueUserId('barrier');
    const barrier = await subscribe(other);
    expect(consumed(runtime) - consumedBefore).toBe(recordsFor(barrier.events));
    const after = await dumpTables(runtime);
    for (const [table, items] of Object.entries(after)) {
      const added = items.filter((item) => !before[table]!.includes(item));
      expect(added.join('\n')).not.toContain(userId);
      expect(added.join('\n')).not.toContain(deleted.id);
      expect(before[table]!.filter((item) => !items.includes(item))).toEqual([]);
    }
    const { body } = await getSubscription(runtime, userId);
    expect(body).toMatchObject({ status: 'active', tier: 'silver' });
  });

  it('a duplicate delivery is acknowledged and changes nothing', async () => {
    const userId = uniqueUserId();
    const { events } = await subscribe(userId, 'silver');
    const created = events[1]!;
    const before = await dumpTables(runtime);
    const consumedBefore = consumed(runtime);

    // Stripe redelivers the same event (same id and body) with a fresh signature.
    const res = await postWebhook(runtime, created);
    expect(res.status).toBe(200);
    await eventually(
      async () => (consumed(runtime) > consumedBefore ? true : undefined),
      20_000,
      'the duplicate to be consumed',
    );
    const stats = runtime.consumers[0]!.stats();
    expect(stats.retried).toBe(0);

    expect(await dumpTables(runtime)).toEqual(before);
  });

  it('answers 404 for an unknown path and 405 with Allow for a wrong method', async () => {
    const notFound = await fetch(`${runtime.apiUrl}/webhooks/paypal`, { method: 'POST' });
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({ message: 'Not Found' });

    const getWebhook = await fetch(`${runtime.apiUrl}/webhooks/stripe`);
    expect(getWebhook.status).toBe(405);
    expect(getWebhook.headers.get('allow')).toBe('POST');

    const postRead = await fetch(`${runtime.apiUrl}/users/u1/subscription`, { method: 'POST' });
    expect(postRead.status).toBe(405);
    expect(postRead.headers.get('allow')).toBe('GET');
  });
});

describe('local runtime prerequisites', () => {
  let blocker: Server;
  let port: number;

  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(() => {
    blocker.close();
  });

  it('fails fast with a one-line PrerequisiteError when the HTTP port is in use', async () => {
    const started = Date.now();
    const error = await startLocalRuntime({ port, inMemory: true, logLevel: 'silent' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PrerequisiteError);
    expect((error as Error).message).toBe(
      `Port ${port} (HTTP API) is already in use. Stop it or set PORT to another port.`,
    );
    // Checked before any emulator starts.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('rejects a bad setting from the environment in one line', async () => {
    const error = await startLocalRuntime({ env: { PORT: 'eighty' }, inMemory: true }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PrerequisiteError);
    expect((error as Error).message).toBe('PORT must be a port number (0-65535), got "eighty".');
  });
});

describe('local runtime configuration', () => {
  const fn = (logicalId: string, environment: FunctionModel['environment']): FunctionModel => ({
    logicalId,
    entry: `functions/${logicalId}.ts`,
    exportName: 'handler',
    timeoutSeconds: 3,
    memoryMb: 128,
    environment,
    dynamoDbGrants: [],
  });
  const endpoints = {
    webhookSecret: 'whsec_x',
    stripe: { apiUrl: 'http://127.0.0.1:3', secretKey: 'sk_test_x' },
    cursorSigningKey: 'cursor-key-of-this-run-cursor-key-of-this-run',
    dynamoEndpoint: 'http://127.0.0.1:1',
    sqsEndpoint: 'http://sqs.us-east-1.localhost:2',
  };
  const resolved = { tableNames: { T: 'table-t' }, queueUrls: { Q: 'http://q' } };

  it('reads its settings from the environment, explicit options first', () => {
    const settings = resolveRuntimeOptions({
      env: { PORT: '4000', LOCAL_IN_MEMORY: '1', LOCAL_CLOCK_SPEED: '60', SQS_PORT: '4001' },
    });
    expect(settings).toMatchObject({
      port: 4000,
      dataDir: undefined,
      clockSpeed: 60,
      sqsPort: 4001,
    });
    expect(resolveRuntimeOptions({ port: 5, env: { PORT: '4000' } }).port).toBe(5);
    // The cursor key: the developer's, else one random key for the whole process.
    const ownKey = 'k'.repeat(40);
    expect(resolveRuntimeOptions({ env: { CURSOR_SIGNING_KEY: ownKey } }).cursorSigningKey).toBe(
      ownKey,
    );
    const generated = resolveRuntimeOptions({ env: {} }).cursorSigningKey;
    expect(generated.length).toBeGreaterThanOrEqual(32);
    expect(resolveRuntimeOptions({ env: {} }).cursorSigningKey).toBe(generated);
    expect(resolveRuntimeOptions({ env: {} })).toMatchObject({
      port: 3000,
      webhookSecret: DEFAULT_LOCAL_WEBHOOK_SECRET,
    });
    expect(() => resolveRuntimeOptions({ env: { PORT: '4000', SQS_PORT: '4000' } })).toThrow(
      'PORT and SQS_PORT are both 4000; give each its own port.',
    );
    expect(() => resolveRuntimeOptions({ env: { LOCAL_CLOCK_SPEED: '0' } })).toThrow(
      PrerequisiteError,
    );
  });

  it('gives the handlers the union of their environments, the endpoints and the secret', () => {
    const env = buildLocalEnvironment(
      {
        functions: [
          fn('A', {
            POWERTOOLS_SERVICE_NAME: { kind: 'literal', value: 'a' },
            POWERTOOLS_LOG_LEVEL: { kind: 'literal', value: 'INFO' },
            NODE_OPTIONS: { kind: 'literal', value: '--enable-source-maps' },
            OPERATOR_ROLE_ARNS: {
              kind: 'literal',
              value: '["arn:aws:iam::123456789012:role/ops"]',
            },
            TABLE: { kind: 'tableName', tableLogicalId: 'T' },
            STRIPE_WEBHOOK_SECRET_ARN: { kind: 'secretArn', secretLogicalId: 'S' },
            STRIPE_API_KEY_SECRET_ARN: { kind: 'secretArn', secretLogicalId: 'K' },
            CURSOR_KEY_SECRET_ARN: { kind: 'secretArn', secretLogicalId: 'C' },
          }),
          fn('B', {
            POWERTOOLS_SERVICE_NAME: { kind: 'literal', value: 'b' },
            TABLE: { kind: 'tableName', tableLogicalId: 'T' },
            QUEUE: { kind: 'queueUrl', queueLogicalId: 'Q' },
          }),
        ],
      },
      resolved,
      { ...endpoints, current: { POWERTOOLS_LOG_LEVEL: 'SILENT' } },
    );
    expect(env).toMatchObject({
      TABLE: 'table-t',
      QUEUE: 'http://q',
      STRIPE_WEBHOOK_SECRET: 'whsec_x',
      STRIPE_SECRET_KEY: 'sk_test_x',
      CURSOR_SIGNING_KEY: 'cursor-key-of-this-run-cursor-key-of-this-run',
      STRIPE_API_URL: 'http://127.0.0.1:3',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL_SQS: 'http://sqs.us-east-1.localhost:2',
      AWS_REGION: 'us-east-1',
      // Functions disagree on their own name: one process gets the suite's.
      POWERTOOLS_SERVICE_NAME: 'billing-suite',
      // The developer's (here: the test runner's) log level wins over the stack's.
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    });
    expect(env).not.toHaveProperty('NODE_OPTIONS');
    // No IAM locally: no caller to hold to the operator roles.
    expect(env).not.toHaveProperty('OPERATOR_ROLE_ARNS');
    expect(env).not.toHaveProperty('STRIPE_WEBHOOK_SECRET_ARN');
    expect(env).not.toHaveProperty('STRIPE_API_KEY_SECRET_ARN');
    expect(env).not.toHaveProperty('CURSOR_KEY_SECRET_ARN');
  });

  it('refuses two functions that need different values for one variable', () => {
    expect(() =>
      buildLocalEnvironment(
        {
          functions: [
            fn('A', { MODE: { kind: 'literal', value: 'x' } }),
            fn('B', { MODE: { kind: 'literal', value: 'y' } }),
          ],
        },
        resolved,
        endpoints,
      ),
    ).toThrow(LocalEnvironmentConflictError);
  });
});
