/**
 * `npm run ops` against the local runtime itself: the queues and DLQs of the
 * synthesized template, polled by the runtime's own consumers (batch window, partial
 * failures, order guard). Messages are put in a DLQ exactly as the webhook queues them
 * (the SQS adapter, so body and attributes are the real contract).
 *
 * - a poison record redriven once its cause is fixed is applied exactly once, with its
 *   message attributes intact; the duplicate an earlier interrupted redrive left is
 *   absorbed; dry runs and peeks change nothing;
 * - the CLI as a separate process on the deployed path (`--outputs` and the SDK's
 *   usual endpoint, region and credential variables), killed between a batch's send
 *   and its delete, loses nothing: the cut batch is in both queues, every other message
 *   in exactly one, and a second redrive gets every event applied exactly once;
 * - help and usage mistakes give the documented exit codes from the real entry;
 * - stats prints every capability, locally and on the deployed path, where the region
 *   is the stack's (read from the outputs) when AWS_REGION is not set, and the webhook
 *   and Stripe figures come from CloudWatch (a fake speaking its JSON protocol);
 * - locally, stats reads the webhook and Stripe figures from the running runtime, and
 *   they move as webhooks are received and rejected and as Stripe calls fail.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbSubscriptionStore } from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { SqsEventQueue } from '../../functions/adapters/sqs/sqs-event-queue.ts';
import { METRIC, METRICS_NAMESPACE } from '../../functions/commons/metric-names.ts';
import { localDynamoDbClient, localSqsClient } from '../../local/emulators.ts';
import {
  type ConsumedQueue,
  describeLocalRuntime,
  type NamedQueue,
  type TargetDescription,
} from '../../local/operations/target.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import { buildDefaultSample, type StripeEventJson, sampleIds } from '../../local/send-sample.ts';
import {
  eventually,
  getSubscription,
  postWebhook,
  uniqueUserId,
  waitForSubscription,
} from '../e2e/e2e-helpers.ts';
import { runOpsOn } from '../helpers/ops.ts';

const REPO = new URL('../..', import.meta.url).pathname;
const CLI = 'local/operations/cli.ts';

let runtime: LocalRuntime;
let target: TargetDescription;
let sqs: SQSClient;
let dynamo: DynamoDBClient;
let subscriptions: ConsumedQueue;
let workDir: string;
/** The JSON `cdk deploy --outputs-file` would write for this runtime's queues and tables. */
let outputsFile: string;
let cloudWatch: Awaited<ReturnType<typeof fakeCloudWatch>>;

beforeAll(async () => {
  runtime = await startLocalRuntime({ port: 0, inMemory: true, logLevel: 'silent' });
  target = describeLocalRuntime(runtime);
  sqs = localSqsClient(runtime.sqsEndpoint);
  dynamo = localDynamoDbClient(runtime.dynamoEndpoint);
  subscriptions = target.consumedQueues.find((q) => q.url === target.eventQueues.subscriptions)!;
  const payments = target.consumedQueues.find((q) => q.url === target.eventQueues.payments)!;
  const credits = target.consumedQueues.find((q) => q !== subscriptions && q !== payments)!;
  cloudWatch = await fakeCloudWatch();
  workDir = await mkdtemp(join(tmpdir(), 'ops-runtime-'));
  outputsFile = join(workDir, 'outputs.json');
  await writeFile(
    outputsFile,
    JSON.stringify({
      BillingData: {
        SubscriptionEventsQueueUrl: subscriptions.url,
        SubscriptionEventsDeadLetterQueueUrl: subscriptions.deadLetter.url,
        PaymentEventsQueueUrl: payments.url,
        PaymentEventsDeadLetterQueueUrl: payments.deadLetter.url,
        CreditRefreshQueueUrl: credits.url,
        CreditRefreshDeadLetterQueueUrl: credits.deadLetter.url,
        BillingTableName: target.tables.billing,
        SubscriptionLedgerTableName: target.tables.ledger,
        PaymentsTableName: target.tables.payments,
        PenaltiesTableName: target.tables.penalties,
        StripeApiKeySecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:unused',
      },
      BillingService: { ApiUrl: `${runtime.apiUrl}/` },
    }),
  );
});
afterAll(async () => {
  cloudWatch?.server.closeAllConnections();
  cloudWatch?.server.close();
  sqs?.destroy();
  dynamo?.destroy();
  await runtime?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The ops entry in this process, on the local runtime's description. */
const ops = (...argv: string[]) => runOpsOn(target, argv);

/** What an operator's shell gives the entry on the deployed path, pointed at the emulators. */
function deployedEnv(sqsEndpoint = runtime.sqsEndpoint): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ENDPOINT_URL_SQS: sqsEndpoint,
    AWS_ENDPOINT_URL_DYNAMODB: runtime.dynamoEndpoint,
    AWS_ENDPOINT_URL_CLOUDWATCH: cloudWatch.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  };
}

/** `npm run ops -- ...` as its own process: exit code and output. */
async function opsProcess(argv: string[], env: NodeJS.ProcessEnv = deployedEnv()) {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', CLI, ...argv],
      { cwd: REPO, env },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function depth(queue: NamedQueue) {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queue.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
  };
}

/** The event ids waiting in a queue, read without consuming (each made visible again). */
async function waitingIds(queue: NamedQueue): Promise<string[]> {
  const ids: string[] = [];
  const handles: string[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 30,
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) break;
    for (const m of Messages) {
      ids.push(m.MessageAttributes!.eventId!.StringValue!);
      handles.push(m.ReceiptHandle!);
    }
  }
  for (const handle of handles) {
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queue.url,
        ReceiptHandle: handle,
        VisibilityTimeout: 0,
      }),
    );
  }
  return ids;
}

/** Puts an event in the subscriptions DLQ as the webhook would have queued it. */
async function deadLetter(event: StripeEventJson, receivedAt: number) {
  await new SqsEventQueue({
    queueUrls: { subscriptions: subscriptions.deadLetter.url, payments: 'unused' },
    client: sqs,
  }).enqueue(
    { body: JSON.stringify(event), eventId: event.id, eventType: event.type, receivedAt },
    'subscriptions',
  );
}

/** Every ledger entry of the users' customers, by event id. */
async function ledgerEntries(userIds: readonly string[]) {
  const store = new DynamoDbSubscriptionStore({
    client: dynamo,
    billingTableName: target.tables.billing,
    ledgerTableName: target.tables.ledger,
  });
  const entries = [];
  for (const userId of userIds) {
    for (const page of await store.readLedger(sampleIds(userId).customerId)) {
      entries.push(...page.events);
    }
  }
  return entries;
}

const countBy = (ids: readonly string[]) => {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
};

async function drained() {
  await eventually(
    async () => {
      const [dead, source] = await Promise.all([
        depth(subscriptions.deadLetter),
        depth(subscriptions),
      ]);
      return dead.visible + dead.inFlight + source.visible + source.inFlight === 0
        ? true
        : undefined;
    },
    20_000,
    'the subscriptions queue and its DLQ to be empty',
  );
}

/**
 * An SQS endpoint in front of the emulator for the CLI process: it can hold one request
 * forever (the process is killed while it waits), and it shortens the redrive's 60 s
 * receive hold so a cut batch is visible again in seconds. Nothing else is changed.
 */
async function sqsProxy(options: {
  upstream: string;
  visibilitySeconds: number;
  hold: (action: string, nth: number) => boolean;
  onHold: () => void;
}): Promise<{ server: Server; url: string; calls: Map<string, number> }> {
  const upstream = new URL(options.upstream);
  const calls = new Map<string, number>();
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    const action = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSQS\./, '');
    const nth = (calls.get(action) ?? 0) + 1;
    calls.set(action, nth);
    if (options.hold(action, nth)) {
      options.onHold();
      return; // never answered
    }
    if (action === 'ReceiveMessage') {
      const input = JSON.parse(body.toString('utf8')) as { VisibilityTimeout?: number };
      if (input.VisibilityTimeout !== undefined) {
        input.VisibilityTimeout = options.visibilitySeconds;
        body = Buffer.from(JSON.stringify(input));
      }
    }
    const forwarded = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host, 'content-length': body.length },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 500, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    forwarded.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
  };
}

/** A day's webhook metrics as the deployed webhook function publishes them. */
const CLOUDWATCH_SERIES: Array<{
  metric: string;
  dimensions: Record<string, string>;
  sum: number;
}> = [
  { metric: METRIC.webhookReceived, dimensions: { service: 'webhook-ingress' }, sum: 7 },
  {
    metric: METRIC.webhookRejected,
    dimensions: { service: 'webhook-ingress', reason: 'invalid_signature' },
    sum: 2,
  },
];

/**
 * CloudWatch for the CLI process on the deployed path (AWS_ENDPOINT_URL_CLOUDWATCH): it
 * speaks the SDK's protocol (AWS JSON 1.0), answers ListMetrics and GetMetricData from
 * CLOUDWATCH_SERIES, and records each call with the region it was signed for.
 */
async function fakeCloudWatch() {
  const calls: Array<{ action: string; region: string; input: Record<string, unknown> }> = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    const action = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const region =
      /Credential=[^/]+\/\d+\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1] ?? '';
    calls.push({ action, region, input });
    const dims = (d: Record<string, string>) =>
      Object.entries(d).map(([Name, Value]) => ({ Name, Value }));
    let answer: unknown;
    if (action === 'ListMetrics') {
      answer = {
        Metrics: CLOUDWATCH_SERIES.filter((s) => s.metric === input.MetricName).map((s) => ({
          Namespace: input.Namespace,
          MetricName: s.metric,
          Dimensions: dims(s.dimensions),
        })),
      };
    } else if (action === 'GetMetricData') {
      const queries = input.MetricDataQueries as Array<{
        Id: string;
        MetricStat: { Metric: { MetricName: string; Dimensions: unknown }; Stat: string };
      }>;
      answer = {
        MetricDataResults: queries.map((q) => {
          const series = CLOUDWATCH_SERIES.find(
            (s) =>
              s.metric === q.MetricStat.Metric.MetricName &&
              JSON.stringify(dims(s.dimensions)) === JSON.stringify(q.MetricStat.Metric.Dimensions),
          )!;
          const value = q.MetricStat.Stat === 'Maximum' ? 1 : series.sum;
          return {
            Id: q.Id,
            StatusCode: 'Complete',
            Timestamps: [input.StartTime],
            Values: [value],
          };
        }),
      };
    } else {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify({ __type: 'InvalidAction', message: action }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, calls, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function exitOf(child: ChildProcess) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': every byte it wrote has been read by then.
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
}

describe('npm run ops against the local runtime', () => {
  it('lists every DLQ of the template, peeks without consuming, dry-runs without change, then redrives a fixed poison record applied exactly once', async () => {
    const userId = `ops-rt-poison-${Date.now().toString(36)}`;
    const events = buildDefaultSample({ userId, tier: 'gold' });
    const created = events.find((e) => e.type === 'customer.subscription.created')!;
    // An hour ago the webhook verified them; every receive failed (store down, say), so
    // after five receives SQS moved them here. An earlier redrive that was cut between
    // its send and its delete left the subscription's event twice.
    const receivedAt = Date.now() - 3_600_000;
    for (const event of [...events, created]) await deadLetter(event, receivedAt);

    const listed = await ops('dlq:list', '--peek', '10');
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(`${subscriptions.deadLetter.name}: 3 waiting, 0 in flight`);
    for (const event of events) expect(listed.out).toContain(`${event.id} ${event.type}`);
    const deadLetterQueues = runtime.model.queues.filter((q) => !q.deadLetter);
    expect(deadLetterQueues).toHaveLength(5); // three consumed queues' DLQs, two schedules'
    for (const q of deadLetterQueues) expect(listed.out).toContain(`${q.localName}:`);
    // The peek consumed nothing.
    expect(await depth(subscriptions.deadLetter)).toEqual({ visible: 3, inFlight: 0 });

    const dry = await ops('dlq:redrive', '--queue', 'subscriptions', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`3 waiting; would move 3 to ${subscriptions.name}`);
    await new Promise((r) => setTimeout(r, 2_500)); // longer than the consumer's batch window
    expect(await depth(subscriptions.deadLetter)).toEqual({ visible: 3, inFlight: 0 });
    expect(await depth(subscriptions)).toEqual({ visible: 0, inFlight: 0 });
    expect((await getSubscription(runtime, userId)).status).toBe(404);
    expect(countBy(await waitingIds(subscriptions.deadLetter))).toEqual(
      new Map([
        [events[0]!.id, 1],
        [created.id, 2],
      ]),
    );

    // The cause is fixed: the redrive moves them back and the runtime's consumer applies them.
    const redriven = await ops('dlq:redrive', '--queue', 'subscriptions');
    expect(redriven.code).toBe(0);
    expect(redriven.out).toContain(`${subscriptions.deadLetter.name}: 3 waiting; moving to`);
    expect(redriven.out).toContain('moved 3; 0 waiting now');
    const answer = await waitForSubscription(runtime, userId, (a) => a.tier === 'gold');
    expect(answer.subscriptionId).toBe(sampleIds(userId).subscriptionId);
    await drained(); // the duplicate was acknowledged, not failed back to the DLQ

    const ledger = await ledgerEntries([userId]);
    expect(countBy(ledger.map((e) => e.eventId))).toEqual(new Map(events.map((e) => [e.id, 1])));
    expect(ledger.find((e) => e.eventId === created.id)?.outcome).toBe('applied');
    // The attributes travelled unchanged: the ledger keeps the webhook's time, not the redrive's.
    expect(ledger.map((e) => e.receivedAt)).toEqual([receivedAt, receivedAt]);

    const again = await ops('dlq:redrive');
    expect(again.code).toBe(0);
    expect(again.out).toContain(`${subscriptions.deadLetter.name}: 0 waiting; nothing to move`);
  }, 60_000);

  it('loses nothing when the redrive process is killed between a send and its delete; a second redrive gets everything applied once', async () => {
    const stamp = Date.now().toString(36);
    const userIds = Array.from({ length: 25 }, (_, i) => `ops-rt-kill-${stamp}-${i}`);
    const events = userIds.flatMap((userId) => buildDefaultSample({ userId, tier: 'silver' }));
    const receivedAt = Date.now() - 60_000;
    for (const event of events) await deadLetter(event, receivedAt);
    const allIds = events.map((e) => e.id).sort();
    expect(await depth(subscriptions.deadLetter)).toEqual({ visible: 50, inFlight: 0 });

    // Batch 1 moves; batch 2 is sent to the queue, and the process dies before deleting it.
    let child: ChildProcess | undefined;
    let killedAt = Number.NaN;
    const proxy = await sqsProxy({
      upstream: runtime.sqsEndpoint,
      visibilitySeconds: 3,
      hold: (action, nth) => action === 'DeleteMessageBatch' && nth === 2,
      onHold: () => {
        killedAt = Date.now();
        child?.kill('SIGKILL');
      },
    });
    try {
      child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          CLI,
          'dlq:redrive',
          '--queue',
          'subscriptions',
          '--outputs',
          outputsFile,
        ],
        { cwd: REPO, env: deployedEnv(proxy.url), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      child.stdout!.on('data', (chunk) => {
        stdout += String(chunk);
      });
      const exit = await exitOf(child);
      expect(exit.signal).toBe('SIGKILL');
      expect(stdout).toContain('50 waiting; moving to');
      expect(stdout).toContain('  10 moved');
      expect(stdout).not.toContain('  20 moved');
      expect(proxy.calls.get('SendMessageBatch')).toBe(2);
    } finally {
      proxy.server.closeAllConnections();
      proxy.server.close();
    }

    // Nothing is in neither place: the 20 sent reach the consumer, the cut batch is
    // also back in the DLQ once its hold ends, and the 30 never touched are still there.
    await eventually(
      async () => ((await ledgerEntries(userIds)).length === 20 ? true : undefined),
      20_000,
      'the two sent batches to be applied',
    );
    // The cut batch's hold (3 s) ends; the emulator counts it visible again at the next receive.
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 3_500 - Date.now())));
    const applied = (await ledgerEntries(userIds)).map((e) => e.eventId);
    const stillDead = await waitingIds(subscriptions.deadLetter);
    expect(stillDead).toHaveLength(40);
    expect([...new Set([...applied, ...stillDead])].sort()).toEqual(allIds);
    expect(applied.filter((id) => stillDead.includes(id))).toHaveLength(10);

    // The second run (nothing held) moves the 40; the cut batch's 10 arrive a second time.
    const second = await opsProcess([
      'dlq:redrive',
      '--queue',
      'subscriptions',
      '--outputs',
      outputsFile,
    ]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('40 waiting; moving to');
    expect(second.stdout).toContain('moved 40; 0 waiting now');
    await eventually(
      async () => ((await ledgerEntries(userIds)).length >= 50 ? true : undefined),
      20_000,
      'every event to be applied',
    );
    await drained();
    const ledger = await ledgerEntries(userIds);
    expect(ledger.map((e) => e.eventId).sort()).toEqual(allIds); // each exactly once
    for (const userId of userIds) {
      const { body } = await getSubscription(runtime, userId);
      expect(body).toMatchObject({ userId, tier: 'silver' });
    }
  }, 120_000);

  it('answers help and usage mistakes from the real entry with the documented exit codes', async () => {
    const help = await opsProcess(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['dlq:list', 'dlq:redrive', 'replay', 'resync', 'stats']) {
      expect(help.stdout).toContain(command);
    }
    const unknown = await opsProcess(['dlq:purge']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command "dlq:purge"');
  }, 60_000);

  it("prints every capability's section in stats, locally and on the deployed path", async () => {
    const local = await ops('stats');
    expect(local.code).toBe(0);
    for (const queue of target.consumedQueues) {
      expect(local.out).toMatch(
        new RegExp(`queue ${queue.name}: \\d+ waiting, \\d+ in flight, \\d+ in its DLQ`),
      );
    }
    for (const section of [
      'webhooks (the local runtime, ',
      'credits: ',
      'penalties (',
      'payments: ',
      'subscriptions: ',
      'stripe (the local runtime, ',
    ]) {
      expect(local.out).toContain(section);
    }

    cloudWatch.calls.length = 0;
    const deployed = await opsProcess(['stats', '--json', '--outputs', outputsFile]);
    expect(deployed.code).toBe(0);
    const result = JSON.parse(deployed.stdout) as Record<string, unknown> & {
      queues: { queue: string }[];
      credits: { date: string };
    };
    expect(Object.keys(result)).toEqual([
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
    // The webhook and Stripe figures come from CloudWatch, the day in the functions' namespace.
    expect(result.webhooks).toMatchObject({
      available: true,
      source: `CloudWatch ${METRICS_NAMESPACE}`,
      from: `${result.date}T00:00:00.000Z`,
      received: 7,
      rejected: 2,
      rejectedByReason: { invalid_signature: 2 },
    });
    expect(result.stripe).toMatchObject({ available: true, services: [] });
    const dataCall = cloudWatch.calls.find((c) => c.action === 'GetMetricData')!;
    expect(dataCall.input.StartTime).toBe(Date.parse(`${result.date}T00:00:00Z`) / 1000);
    expect(new Set(cloudWatch.calls.map((c) => c.input.Namespace ?? METRICS_NAMESPACE))).toEqual(
      new Set([METRICS_NAMESPACE]),
    );
    expect(new Set(cloudWatch.calls.map((c) => c.region))).toEqual(new Set(['us-east-1']));

    const text = await opsProcess(['stats', '--outputs', outputsFile]);
    expect(text.stdout).toMatch(
      new RegExp(
        `webhooks \\(CloudWatch ${METRICS_NAMESPACE}, 00:00 to \\d\\d:\\d\\d UTC\\): 7 received, 2 rejected \\(invalid_signature 2\\)`,
      ),
    );
    expect(result.queues.map((q) => q.queue).sort()).toEqual(
      target.consumedQueues.map((q) => q.name).sort(),
    );
    expect(result.credits.date).toBe(result.date);

    // No AWS_REGION and no profile to name one: the region is the stack's, from its outputs.
    const {
      AWS_REGION: _region,
      AWS_DEFAULT_REGION: _defaultRegion,
      AWS_PROFILE: _profile,
      ...noRegion
    } = deployedEnv();
    cloudWatch.calls.length = 0;
    const stackRegion = await opsProcess(['stats', '--json', '--outputs', outputsFile], {
      ...noRegion,
      AWS_CONFIG_FILE: join(workDir, 'no-aws-config'),
    });
    expect(stackRegion.stderr).not.toContain('Region is missing');
    expect(stackRegion.code).toBe(0);
    expect(JSON.parse(stackRegion.stdout).webhooks).toMatchObject({ available: true, received: 7 });
    expect(new Set(cloudWatch.calls.map((c) => c.region))).toEqual(new Set(['us-east-1']));
    expect(JSON.parse(stackRegion.stdout).queues).toEqual(
      expect.arrayContaining([expect.objectContaining({ queue: subscriptions.name })]),
    );
  }, 60_000);

  // Last: it leaves the runtime's Stripe breaker open for its 30 s.
  it("reads the day's webhook and Stripe figures from the running runtime, and they move", async () => {
    type Figures = {
      webhooks: {
        available: boolean;
        source: string;
        received: number;
        rejected: number;
        rejectedByReason: Record<string, number>;
      };
      stripe: {
        available: boolean;
        services: Array<{
          service: string;
          calls: number;
          latencyMs: { average: number | null };
          circuitOpened: number;
          circuitRejected: number;
          circuitState: { worst: string | null; last: string | null };
        }>;
      };
    };
    const stats = async () => JSON.parse((await ops('stats', '--json')).out) as Figures;
    const before = await stats();
    expect(before.webhooks).toMatchObject({ available: true, source: 'the local runtime' });
    const stripeBefore = before.stripe.services[0];

    const [event] = buildDefaultSample({ userId: uniqueUserId('ops-stats') });
    expect((await postWebhook(runtime, event!)).status).toBe(200);
    expect((await postWebhook(runtime, event!, { secret: 'whsec_not_the_one' })).status).toBe(400);
    const unsigned = await fetch(`${runtime.apiUrl}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
    });
    expect(unsigned.status).toBe(400);
    // A user neither the store nor Stripe knows: the read route asks Stripe.
    expect((await getSubscription(runtime, uniqueUserId('ops-stats-nobody'))).status).toBe(404);

    const after = await eventually(async () => {
      const now = await stats();
      return now.webhooks.received === before.webhooks.received + 3 ? now : undefined;
    }, 10_000);
    const reasons = (f: Figures, reason: string) => f.webhooks.rejectedByReason[reason] ?? 0;
    expect(after.webhooks.rejected).toBe(before.webhooks.rejected + 2);
    expect(reasons(after, 'invalid_signature')).toBe(reasons(before, 'invalid_signature') + 1);
    expect(reasons(after, 'missing_signature')).toBe(reasons(before, 'missing_signature') + 1);
    expect(after.stripe.available).toBe(true);
    const [called] = after.stripe.services;
    expect(called!.calls).toBeGreaterThan(stripeBefore?.calls ?? 0);
    expect(called!.latencyMs.average).not.toBeNull();

    // Stripe goes down: two reads exhaust their retries and open the breaker; the next is refused at once.
    runtime.fakeStripe!.injectFault({ kind: 'status', status: 503 }, 50, '/v1/customers');
    try {
      for (let i = 0; i < 3; i += 1) {
        expect((await getSubscription(runtime, uniqueUserId('ops-stats-down'))).status).toBe(503);
      }
    } finally {
      runtime.fakeStripe!.clearFaults();
    }
    const down = await eventually(async () => {
      const now = await stats();
      const service = now.stripe.services.find((s) => s.service === called!.service);
      return service && service.circuitRejected > called!.circuitRejected ? service : undefined;
    }, 10_000);
    expect(down.circuitOpened).toBe(called!.circuitOpened + 1);
    expect(down.circuitState).toEqual({ worst: 'open', last: 'open', lastAt: expect.any(String) });

    const text = await ops('stats');
    expect(text.out).toMatch(
      new RegExp(
        `webhooks \\(the local runtime, \\d\\d:\\d\\d to \\d\\d:\\d\\d UTC\\): ${after.webhooks.received} received, ${after.webhooks.rejected} rejected \\(.*invalid_signature`,
      ),
    );
    expect(text.out).toContain(
      `${called!.service}: ${down.calls} call(s), latency average ${down.latencyMs.average} ms`,
    );
    expect(text.out).toContain(
      `${down.circuitRejected} call(s) refused while open; breaker last open`,
    );

    // A day before the runtime started is not read as a quiet day.
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const earlier = await ops('stats', '--date', yesterday);
    expect(earlier.code).toBe(0);
    expect(earlier.out).toContain(
      "webhooks: not available (the local runtime holds the handlers' metrics in memory only since",
    );
  }, 60_000);
});
