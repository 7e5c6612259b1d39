/**
 * The operator commands (`npm run ops`) against the emulators and the fake Stripe, run
 * in-process through the CLI's own entry: a poison record that reached the DLQ is
 * applied exactly once after its cause is fixed and it is redriven; an interrupted
 * redrive loses nothing; a replay of applied events changes nothing and resumes after
 * a stop; a resync repairs a tier computed before the price map was fixed, refuses an
 * empty map (nothing written), and writes with the consumer's credit allowances and
 * ledger retention; a runtime calling a real Stripe API is reached with the operator's
 * STRIPE_SECRET_KEY; refunds have a dry run; usage mistakes exit 2.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbCreditStore } from '../../functions/adapters/dynamodb/dynamodb-credit-store.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import type { PriceTierMap } from '../../functions/core/shared/tiers.ts';
import { createSubscriptionConsumer } from '../../functions/subscription-consumer.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators.ts';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';
import { runOps } from '../../local/operations/cli.ts';
import { redrive } from '../../local/operations/dead-letters.ts';
import type { ConsumedQueue, TargetDescription } from '../../local/operations/target.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { emulatorTarget, runOpsOn } from '../helpers/ops.ts';
import { sqsBatch } from '../helpers/sqs-events.ts';

const PRICE = 'price_ops_gold';
const PRICE_MAP: PriceTierMap = { [PRICE]: 'gold' };
/** What the target's subscription consumer is given (not the defaults: 10 gold credits, 90 days). */
const CREDIT_ALLOWANCES = { free: 1, bronze: 3, silver: 5, gold: 12 };
const LEDGER_RETENTION_DAYS = 30;
const context = { functionName: 'subscription-consumer', awsRequestId: 'ops' } as never;

let dynamo: DynamoDBClient;
let sqs: SQSClient;
let stripe: FakeStripe;
let target: TargetDescription;
let tables: Awaited<ReturnType<typeof createBillingTables>>;

async function queuePair(name: string): Promise<ConsumedQueue> {
  const dlqName = uniqueName(`${name}-dlq`);
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: dlqName }));
  const arn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes!.QueueArn!;
  const sourceName = uniqueName(name);
  const source = await sqs.send(
    new CreateQueueCommand({
      QueueName: sourceName,
      Attributes: {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: 1 }),
      },
    }),
  );
  return {
    name: sourceName,
    url: source.QueueUrl!,
    deadLetter: { name: dlqName, url: dlq.QueueUrl! },
  };
}

beforeAll(async () => {
  ({ dynamo, sqs } = emulatorClients());
  tables = await createBillingTables(dynamo);
  stripe = await startFakeStripe();
  const [subscriptions, payments, credits] = await Promise.all([
    queuePair('ops-subscriptions'),
    queuePair('ops-payments'),
    queuePair('ops-credits'),
  ]);
  target = emulatorTarget(tables, {
    eventQueues: { subscriptions: subscriptions.url, payments: payments.url },
    consumedQueues: [subscriptions, payments, credits],
    scheduleDeadLetters: [],
    priceTierMap: PRICE_MAP,
    creditAllowances: CREDIT_ALLOWANCES,
    ledgerRetentionDays: LEDGER_RETENTION_DAYS,
    stripe: { apiUrl: stripe.url, secretKey: stripe.secretKey },
  });
});
afterAll(async () => {
  await stripe.close();
});

const ops = (...argv: string[]) => runOpsOn(target, argv);

/** Every message of a queue, received and deleted. */
async function drain(url: string) {
  const bodies: string[] = [];
  for (let empty = 0; empty < 2; ) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) {
      empty += 1;
      continue;
    }
    empty = 0;
    for (const message of Messages) {
      bodies.push(message.Body!);
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle! }),
      );
    }
  }
  return bodies;
}

const consumerWith = (client: DynamoDBClient, priceTierMap = PRICE_MAP) =>
  createSubscriptionConsumer({
    store: new DynamoDbSubscriptionStore({ client, ...tables }),
    priceTierMap,
  });
const view = (userId: string) =>
  new DynamoDbUserViewReader({
    client: dynamo,
    billingTableName: tables.billingTableName,
  }).getUserView(userId);

describe('npm run ops', () => {
  it('redrives a poison record once its cause is fixed, and it is applied exactly once', async () => {
    const [subscriptions] = target.consumedQueues;
    const userId = uniqueName('ops-poison');
    const customer = stripe.createCustomer({ metadata: { userId } });
    const created = stripe.createSubscription({
      customer: customer.data.object.id,
      priceId: PRICE,
      metadata: { userId },
    });
    const body = JSON.stringify(created);
    await sqs.send(new SendMessageCommand({ QueueUrl: subscriptions!.url, MessageBody: body }));

    // The store is unreachable: the consumer fails the record, SQS moves it to the DLQ.
    const broken = new DynamoDBClient({
      endpoint: 'http://127.0.0.1:9',
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
    const first = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: subscriptions!.url, VisibilityTimeout: 1 }),
    );
    const failed = await consumerWith(broken)(sqsBatch([first.Messages![0]!.Body!]), context);
    expect(failed.batchItemFailures).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1_200));
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: subscriptions!.url, WaitTimeSeconds: 1 }));

    const listed = await ops('dlq:list', '--peek', '5');
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(`${subscriptions!.deadLetter.name}: 1 waiting`);
    expect(listed.out).toContain('customer.subscription.created');

    // Dry run moves nothing; the redrive moves it back.
    expect((await ops('dlq:redrive', '--queue', subscriptions!.name, '--dry-run')).out).toContain(
      'would move 1',
    );
    const moved = await ops('dlq:redrive', '--queue', subscriptions!.name);
    expect(moved.code).toBe(0);
    expect(moved.out).toContain('moved 1; 0 waiting now');

    // Fixed: the healthy consumer applies it, once.
    const bodies = await drain(subscriptions!.url);
    expect(bodies).toEqual([body]);
    const applied = await consumerWith(dynamo)(sqsBatch(bodies), context);
    expect(applied.batchItemFailures).toEqual([]);
    expect((await view(userId))?.tier).toBe('gold');
    // A second redrive finds nothing; the same event again changes nothing.
    expect((await ops('dlq:redrive', '--queue', subscriptions!.name)).out).toContain(
      'nothing to move',
    );
    await consumerWith(dynamo)(sqsBatch([body]), context);
    const ledger = await new DynamoDbSubscriptionStore({ client: dynamo, ...tables }).readLedger(
      customer.data.object.id,
    );
    const applications = ledger
      .flatMap((page) => page.events)
      .filter((e) => e.eventId === created.id && e.outcome === 'applied');
    expect(applications).toHaveLength(1);
  });

  it('loses nothing when a redrive is interrupted between send and delete', async () => {
    const payments = target.consumedQueues[1]!;
    const ids = Array.from({ length: 25 }, (_, i) => `evt_ops_interrupted_${i}`);
    for (const id of ids) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: payments.deadLetter.url,
          MessageBody: JSON.stringify({ id, object: 'event', type: 'charge.succeeded' }),
          MessageAttributes: { eventId: { DataType: 'String', StringValue: id } },
        }),
      );
    }
    let batches = 0;
    await expect(
      redrive(sqs, payments, {
        visibilitySeconds: 1,
        afterSend: () => {
          batches += 1;
          if (batches === 2) throw new Error('killed between send and delete');
        },
      }),
    ).rejects.toThrow('killed');
    await new Promise((r) => setTimeout(r, 1_200));
    // Finish the job: every message ends in the source queue; the cut batch twice at most.
    await redrive(sqs, payments, { visibilitySeconds: 1 });
    const bodies = await drain(payments.url);
    const found = bodies.map((b) => (JSON.parse(b) as { id: string }).id);
    expect(new Set(found)).toEqual(new Set(ids));
    expect(found.length).toBeLessThanOrEqual(ids.length + 10);
    expect(await drain(payments.deadLetter.url)).toEqual([]);
  });

  it('redrives large events in batches SQS accepts: each SendMessageBatch within 256 KiB', async () => {
    const payments = target.consumedQueues[1]!;
    // Ten events of 100 KB: 1 MB, four times what one batch may carry.
    const ids = Array.from({ length: 10 }, (_, i) => `evt_ops_large_${i}`);
    for (const id of ids) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: payments.deadLetter.url,
          MessageBody: JSON.stringify({ id, object: 'event', padding: 'x'.repeat(100_000) }),
          MessageAttributes: { eventId: { DataType: 'String', StringValue: id } },
        }),
      );
    }
    const batchBytes: number[] = [];
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand') {
          const input = args.input as { Entries: { MessageBody: string }[] };
          batchBytes.push(
            input.Entries.reduce((sum, e) => sum + Buffer.byteLength(e.MessageBody), 0),
          );
        }
        return next(args);
      },
      { step: 'initialize', name: 'measureBatches' },
    );
    try {
      expect(await redrive(sqs, payments, { visibilitySeconds: 1 })).toBe(10);
    } finally {
      sqs.middlewareStack.remove('measureBatches');
    }
    expect(batchBytes.length).toBeGreaterThanOrEqual(4);
    for (const bytes of batchBytes) expect(bytes).toBeLessThanOrEqual(256 * 1024);
    const found = (await drain(payments.url)).map((b) => (JSON.parse(b) as { id: string }).id);
    expect(new Set(found)).toEqual(new Set(ids));
    expect(await drain(payments.deadLetter.url)).toEqual([]);
  });

  it('replays a range through the queues: applied events change nothing, a stopped run resumes', async () => {
    const [subscriptions] = target.consumedQueues;
    // A Stripe of its own: the range holds exactly this test's events.
    const own = await startFakeStripe();
    const outer = { stripe, target };
    stripe = own;
    target = {
      ...target,
      where: `${target.where} replay`,
      stripe: { apiUrl: own.url, secretKey: own.secretKey },
    };
    try {
      const from = new Date(Date.now() - 60_000).toISOString();
      const userId = uniqueName('ops-replay');
      const customer = stripe.createCustomer({ metadata: { userId } });
      stripe.createSubscription({ customer: customer.data.object.id, priceId: PRICE });
      // Enough events for two pages of Stripe's list.
      for (let i = 0; i < 120; i++)
        stripe.createCustomer({ metadata: { userId: `${userId}-n${i}` } });

      const dry = await ops('replay', '--from', from, '--dry-run');
      expect(dry.out).toMatch(/Would send 122 of 122 events/);
      expect(await drain(subscriptions!.url)).toEqual([]);

      // Stripe fails after the first page: the run stops with its cursor saved.
      let injected = false;
      const stopped = await runOps(['replay', '--from', from], {
        target,
        print: (line) => {
          if (line.includes('page 1:') && !injected) {
            injected = true;
            stripe.injectFault({ kind: 'status', status: 500 }, 3, '/v1/events');
          }
        },
        printError: () => {},
      });
      expect(stopped).toBe(1);
      const resumed = await ops('replay', '--from', from);
      expect(resumed.code).toBe(0);
      expect(resumed.out).toContain('Resuming after');
      const bodies = await drain(subscriptions!.url);
      const eventIds = new Set(bodies.map((b) => (JSON.parse(b) as { id: string }).id));
      expect(eventIds.size).toBe(122);
      expect(bodies.length).toBe(122); // the page that failed was never sent: no duplicate

      const consumer = consumerWith(dynamo);
      expect((await consumer(sqsBatch(bodies.slice(0, 100)), context)).batchItemFailures).toEqual(
        [],
      );
      expect((await consumer(sqsBatch(bodies.slice(100)), context)).batchItemFailures).toEqual([]);
      const before = await view(userId);
      expect(before?.tier).toBe('gold');

      // The same range again (a finished run starts over): nothing changes.
      await ops('replay', '--from', from);
      const again = await drain(subscriptions!.url);
      expect(again.length).toBe(122);
      await consumer(sqsBatch(again.slice(0, 100)), context);
      await consumer(sqsBatch(again.slice(100)), context);
      expect(await view(userId)).toEqual(before);
    } finally {
      await own.close();
      ({ stripe, target } = outer);
    }
  });

  it('resyncs a customer whose tier was computed before the price map knew its price', async () => {
    const userId = uniqueName('ops-resync');
    const customer = stripe.createCustomer({ metadata: { userId } });
    const customerId = customer.data.object.id;
    const created = stripe.createSubscription({ customer: customerId, priceId: PRICE });
    await consumerWith(dynamo, {})(
      sqsBatch([JSON.stringify(customer), JSON.stringify(created)]),
      context,
    );
    expect((await view(userId))?.tier).toBe('free');
    await new Promise((r) => setTimeout(r, 1_100)); // Stripe's answer is a later second

    const dry = await ops('resync', '--customer', customerId, '--dry-run');
    expect(dry.out).toContain(
      `${customerId}: would give 1 subscription(s) → ${userId} gold active`,
    );
    expect((await view(userId))?.tier).toBe('free');

    const done = await ops('resync', '--user', userId);
    expect(done.code).toBe(0);
    expect(done.out).toContain(
      `${customerId}: resynced, 1 subscription(s) → ${userId} gold active`,
    );
    expect((await view(userId))?.tier).toBe('gold');
    expect((await ops('resync', '--marked')).out).toContain('No customer is marked');
    expect((await ops('resync', '--customer', 'cus_unknown')).out).toContain('does not know');
  });

  it('refuses to resync with an empty price map and writes nothing; --price-tier-map gives the map', async () => {
    const userId = uniqueName('ops-resync-empty');
    const customer = stripe.createCustomer({ metadata: { userId } });
    const customerId = customer.data.object.id;
    const created = stripe.createSubscription({ customer: customerId, priceId: PRICE });
    await consumerWith(dynamo)(
      sqsBatch([JSON.stringify(customer), JSON.stringify(created)]),
      context,
    );
    expect((await view(userId))?.tier).toBe('gold');
    await new Promise((r) => setTimeout(r, 1_100)); // Stripe's answer is a later second

    // A stack deployed without a map: the resync would overwrite gold with free.
    const empty: TargetDescription = { ...target, priceTierMap: {} };
    const store = new DynamoDbSubscriptionStore({ client: dynamo, ...tables });
    const ledger = await store.readLedger(customerId);
    const before = await view(userId);
    const refused = await runOpsOn(empty, ['resync', '--user', userId]);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('is empty');
    expect(refused.out).toContain('--allow-empty-price-map');
    expect(await view(userId)).toEqual(before);
    expect(await store.readLedger(customerId)).toEqual(ledger);
    // What it would have done, had free been intended.
    const intended = await runOpsOn(empty, [
      'resync',
      '--customer',
      customerId,
      '--allow-empty-price-map',
      '--dry-run',
    ]);
    expect(intended.code).toBe(0);
    expect(intended.out).toContain(
      `${customerId}: would give 1 subscription(s) → ${userId} free active`,
    );
    // The map passed by the operator.
    const given = await runOpsOn(empty, [
      'resync',
      '--customer',
      customerId,
      '--price-tier-map',
      JSON.stringify(PRICE_MAP),
    ]);
    expect(given.code).toBe(0);
    expect(given.out).toContain('Price→tier map: 1 price(s), from --price-tier-map.');
    expect(given.out).toContain(
      `${customerId}: resynced, 1 subscription(s) → ${userId} gold active`,
    );
    expect((await view(userId))?.tier).toBe('gold');
  });

  it("writes as the subscription consumer does: a profile resync creates gets its first credit refresh with the target's allowances, its ledger pages the target's retention", async () => {
    const userId = uniqueName('ops-resync-new');
    const customer = stripe.createCustomer({ metadata: { userId } });
    const customerId = customer.data.object.id;
    stripe.createSubscription({ customer: customerId, priceId: PRICE });
    const done = await ops('resync', '--customer', customerId);
    expect(done.code).toBe(0);
    expect(done.out).toContain(
      `${customerId}: resynced, 1 subscription(s) → ${userId} gold active`,
    );
    const account = await new DynamoDbCreditStore({
      client: dynamo,
      billingTableName: tables.billingTableName,
    }).getAccount(userId);
    expect(account).toMatchObject({
      tier: 'gold',
      balance: CREDIT_ALLOWANCES.gold,
      allowance: CREDIT_ALLOWANCES.gold,
      period: new Date().toISOString().slice(0, 10),
    });
    const { Items = [] } = await dynamo.send(
      new QueryCommand({
        TableName: tables.ledgerTableName,
        KeyConditionExpression: 'customerId = :c',
        ExpressionAttributeValues: { ':c': { S: customerId } },
      }),
    );
    expect(Items.length).toBeGreaterThan(0);
    for (const page of Items) {
      expect(Number(page.expiresAt?.N)).toBe(
        Math.floor(Number(page.appliedAt?.N) / 1000) + LEDGER_RETENTION_DAYS * 86_400,
      );
    }
  });

  it("reaches a real (non-fake) Stripe API of the local runtime with the operator's STRIPE_SECRET_KEY", async () => {
    // The runtime writes no real key to its file: only the API's URL.
    const realApi: TargetDescription = { ...target, stripe: { apiUrl: stripe.url } };
    const userId = uniqueName('ops-real-stripe');
    const customer = stripe.createCustomer({ metadata: { userId } });
    stripe.createSubscription({ customer: customer.data.object.id, priceId: PRICE });
    const saved = process.env.STRIPE_SECRET_KEY;
    try {
      delete process.env.STRIPE_SECRET_KEY;
      const missing = await runOpsOn(realApi, ['resync', '--user', userId]);
      expect(missing.code).toBe(2);
      expect(missing.out).toContain(`calls Stripe at ${stripe.url}: set STRIPE_SECRET_KEY`);
      process.env.STRIPE_SECRET_KEY = stripe.secretKey;
      const done = await runOpsOn(realApi, ['resync', '--user', userId]);
      expect(done.code).toBe(0);
      expect(done.out).toContain(`${userId} gold active`);
    } finally {
      if (saved === undefined) delete process.env.STRIPE_SECRET_KEY;
      else process.env.STRIPE_SECRET_KEY = saved;
    }
  });

  it('refunds an overpaid penalty once at Stripe, through the real SDK; Stripe down leaves it open', async () => {
    const penalties = new DynamoDbPenaltyStore({
      client: dynamo,
      penaltiesTableName: target.tables.penalties,
    });
    // A settlement PaymentIntent that succeeded for 1,500: three penalties of 500.
    const created = await fetch(`${stripe.url}/v1/payment_intents`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stripe.secretKey}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'amount=1500&currency=eur&metadata[purpose]=penalty',
    });
    const intent = (await created.json()) as { id: string };
    stripe.succeedPaymentIntent(intent.id);
    const owed = (penaltyId: string) => ({
      paymentIntentId: intent.id,
      penaltyId,
      userId: 'u-refund',
      amount: 500,
      currency: 'eur',
      settledAs: 'waived' as const,
      settledBy: null,
      recordedAt: new Date().toISOString(),
      refundId: null,
      refundedAt: null,
    });
    await penalties.recordOverpayments([owed('pen_u-refund_h_2026-11-01')]);

    const listed = await ops('refunds');
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(`${intent.id} paid pen_u-refund_h_2026-11-01 (500 eur`);
    expect(listed.out).toContain('refund due');

    // A dry run says what --issue would refund, and refunds nothing.
    const dry = await ops('refunds', '--issue', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`${intent.id} paid pen_u-refund_h_2026-11-01 (500 eur`);
    expect(dry.out).toContain('would refund');
    expect(dry.out).toContain('nothing was refunded (dry run)');
    expect([...stripe.refunds.values()].filter((r) => r.payment_intent === intent.id)).toEqual([]);
    expect((await ops('refunds')).out).toContain('refund due');

    const issued = await ops('refunds', '--issue');
    expect(issued.code).toBe(0);
    const refunds = [...stripe.refunds.values()].filter((r) => r.payment_intent === intent.id);
    expect(refunds).toEqual([
      expect.objectContaining({
        amount: 500,
        reason: 'duplicate',
        metadata: expect.objectContaining({ purpose: 'penalty' }),
      }),
    ]);
    expect(issued.out).toContain(`refunded ${refunds[0]!.id}`);
    // Issued again: nothing is due, nothing is refunded twice.
    expect((await ops('refunds', '--issue')).code).toBe(0);
    expect([...stripe.refunds.values()].filter((r) => r.payment_intent === intent.id)).toHaveLength(
      1,
    );
    expect((await ops('refunds', '--all')).out).toContain(`refunded ${refunds[0]!.id}`);

    // Stripe down: exit 1, and the refund stays due for the next run.
    await penalties.recordOverpayments([owed('pen_u-refund_h_2026-11-02')]);
    stripe.injectFault({ kind: 'status', status: 500 }, 100, '/v1/refunds');
    const down = await ops('refunds', '--issue');
    stripe.clearFaults();
    expect(down.code).toBe(1);
    expect(down.out).toContain('not issued');
    expect(
      (await penalties.listOverpayments()).some((o) => o.penaltyId === 'pen_u-refund_h_2026-11-02'),
    ).toBe(true);
    expect((await ops('refunds', '--issue', '--all')).code).toBe(2);
    // stats counts what is still owed.
    const stats = JSON.parse((await ops('stats', '--json')).out) as {
      penalties: { refundsDue: number };
    };
    expect(stats.penalties.refundsDue).toBeGreaterThanOrEqual(1);
  });

  it('prints every capability in stats, and answers usage mistakes with exit code 2', async () => {
    const stats = await ops('stats', '--json');
    expect(stats.code).toBe(0);
    const figures = JSON.parse(stats.out);
    expect(Object.keys(figures)).toEqual([
      'target',
      'date',
      'queues',
      'webhooks',
      'credits',
      'penalties',
      'payments',
      'subscriptions',
      'stripe',
    ]);
    // This target has no running runtime to read the handlers' metrics from: said, not zeroed.
    expect(figures.webhooks).toEqual({
      available: false,
      why: expect.stringContaining(`${target.where} names no operations page`),
    });
    expect(figures.stripe).toEqual(figures.webhooks);
    const text = await ops('stats');
    expect(text.out).toContain(
      "  webhooks: not available (locally they come from the running runtime's /ops/metrics",
    );
    expect(text.out).toContain('  stripe: not available (');
    // Credits in words like the other lines, not a JSON blob.
    expect(text.out).toMatch(
      /\n {2}credits: \d+ planned, \d+ refreshed, \d+ skipped, \d+ failed; [\d.]+% success, \d+ ms average; \d+ slot\(s\) behind; last run /,
    );
    expect(text.out).not.toContain('"successRate"');
    expect((await ops('nope')).code).toBe(2);
    expect((await ops('dlq:redrive', '--bogus')).code).toBe(2);
    expect((await ops('dlq:redrive', '--max', '0')).code).toBe(2);
    expect((await ops('replay')).code).toBe(2);
    expect((await ops('replay', '--from', 'yesterday')).code).toBe(2);
    expect((await ops('resync', '--user', 'u', '--marked')).code).toBe(2);
    expect((await ops('stats', '--date', '2026-13-01')).code).toBe(2);
  });

  it('runs as `npm run ops` does: help lists every command', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'local/operations/cli.ts', '--help'],
      { cwd: new URL('../..', import.meta.url).pathname },
    );
    for (const command of ['dlq:list', 'dlq:redrive', 'replay', 'resync', 'refunds', 'stats']) {
      expect(stdout).toContain(command);
    }
  });
});
