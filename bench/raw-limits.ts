/**
 * The emulators' own limits on this machine, measured with the same closed loop and
 * concurrency as the scenarios, so every scenario figure can be read as a ratio:
 * plain SendMessage/s on fauxqs, and on DynamoDB Local single-item PutItem/s,
 * BatchWriteItem (25 items) items/s, and one 3-item TransactWriteItems per event —
 * the "one transaction per event" baseline a consumer that does not batch would hit.
 *
 * Runs against suffixed copies of the model's table and queue so the real ones
 * start empty for the scenarios.
 */
import {
  BatchWriteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  TransactWriteItemsCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { StackModel } from '../local/stack-model.ts';
import { type ClosedLoopOptions, type ClosedLoopResult, runClosedLoop } from './load.ts';
import { provisionStack, subscriptionResources } from './provision.ts';
import type { Figure, Section } from './report.ts';
import { type LatencySummary, summarize } from './stats.ts';

export interface RawProbeOptions {
  model: StackModel;
  clients: { dynamo: DynamoDBClient; sqs: SQSClient };
  /**
   * The message bodies to send in turn: the Stripe events the ingress scenario's
   * handler enqueues, so the raw sends and the handler's carry the same bytes.
   */
  sampleBodies: readonly string[];
  /** Size of the payload in the account item, bytes: the size of a real account, so the baseline writes the same items. */
  accountPayloadBytes: number;
}

export interface RawLimitsOptions {
  /** Same as the ingress scenario's. */
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  /** Recorded in the result; the probe was built with them. */
  sampleBodies: readonly string[];
  accountPayloadBytes: number;
  log: (message: string) => void;
}

export interface RawRate {
  perSecond: number;
  latency: LatencySummary;
  failed: number;
}

export interface RawLimits {
  concurrency: number;
  accountPayloadBytes: number;
  sendMessage: RawRate & { bodyBytes: number };
  putItem: RawRate;
  batchWrite: RawRate & { itemsPerSecond: number; itemsPerRequest: number };
  transactWrite: RawRate & { itemsPerEvent: number };
}

const BATCH_ITEMS = 25;

export function rate(result: ClosedLoopResult): RawRate {
  if (result.completed === 0 && result.firstError) throw result.firstError;
  return {
    perSecond: result.perSecond,
    latency: summarize(result.latenciesMs),
    failed: result.failed,
  };
}

/** The raw operations, each runnable on demand (the scenarios re-run some next to their own runs). */
export interface RawProbe {
  /** One SendMessage per call. */
  sendMessage(loop: ClosedLoopOptions): Promise<ClosedLoopResult>;
  putItem(loop: ClosedLoopOptions): Promise<ClosedLoopResult>;
  /** One 25-item BatchWriteItem per call. */
  batchWrite(loop: ClosedLoopOptions): Promise<ClosedLoopResult>;
  /** One 3-item TransactWriteItems (one event) per call. */
  transactWrite(loop: ClosedLoopOptions): Promise<ClosedLoopResult>;
}

/** Creates suffixed copies of the model's table and queue and returns the raw operations on them. */
export async function createRawProbe(options: RawProbeOptions): Promise<RawProbe> {
  const { clients } = options;
  const resources = subscriptionResources(options.model);
  const raw = await provisionStack(options.model, clients, `-raw${Date.now().toString(36)}`);
  const queueUrl = raw.queueUrls[resources.queueLogicalId]!;
  const billingTable = raw.tableNames[resources.billingTableLogicalId]!;
  const eventsTable = raw.tableNames[resources.eventsTableLogicalId]!;
  const payload = 'x'.repeat(options.accountPayloadBytes);
  const bodies = options.sampleBodies;
  if (bodies.length === 0) throw new Error('createRawProbe needs at least one sample body');
  // Ids stay unique across repeated runs of the same probe.
  let runs = 0;
  const tag = () => `${Date.now().toString(36)}r${runs++}`;

  return {
    sendMessage: (loop) => {
      const run = tag();
      return runClosedLoop(async (i) => {
        await clients.sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: bodies[i % bodies.length]!,
            MessageAttributes: {
              eventId: { DataType: 'String', StringValue: `evt_raw_${run}_${i}` },
              eventType: { DataType: 'String', StringValue: 'customer.subscription.updated' },
              receivedAt: { DataType: 'Number', StringValue: String(Date.now()) },
            },
          }),
        );
      }, loop);
    },
    putItem: (loop) => {
      const run = tag();
      return runClosedLoop(async (i) => {
        await clients.dynamo.send(
          new PutItemCommand({
            TableName: billingTable,
            Item: accountItem(`put${run}${i}`, payload),
          }),
        );
      }, loop);
    },
    batchWrite: (loop) => {
      const run = tag();
      return runClosedLoop(async (i) => {
        let pending: WriteRequest[] = Array.from({ length: BATCH_ITEMS }, (_, j) => ({
          PutRequest: { Item: accountItem(`batch${run}${i}x${j}`, payload) },
        }));
        // DynamoDB Local rarely leaves items unprocessed, but a limit that dropped them would flatter it.
        while (pending.length > 0) {
          const out = await clients.dynamo.send(
            new BatchWriteItemCommand({ RequestItems: { [billingTable]: pending } }),
          );
          pending = out.UnprocessedItems?.[billingTable] ?? [];
        }
      }, loop);
    },
    transactWrite: (loop) => {
      const run = tag();
      return runClosedLoop(async (i) => {
        const id = `tx${run}${i}`;
        await clients.dynamo.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Put: {
                  TableName: eventsTable,
                  Item: ledgerPage(`evt_${id}`, id),
                  ConditionExpression: 'attribute_not_exists(customerId)',
                },
              },
              {
                Put: {
                  TableName: billingTable,
                  Item: accountItem(id, payload),
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                Update: {
                  TableName: billingTable,
                  Key: { pk: { S: `USER#user-${id}` }, sk: { S: 'PROFILE' } },
                  UpdateExpression:
                    'SET tier = :tier, stripeCustomerId = :customer, updatedAt = :at',
                  ExpressionAttributeValues: {
                    ':tier': { S: 'gold' },
                    ':customer': { S: `cus_${id}` },
                    ':at': { N: String(Date.now()) },
                  },
                },
              },
            ],
          }),
        );
      }, loop);
    },
  };
}

export async function measureRawLimits(
  probe: RawProbe,
  options: RawLimitsOptions,
): Promise<RawLimits> {
  const { concurrency } = options;
  const loop = { concurrency, durationMs: options.durationMs, warmupMs: options.warmupMs };
  options.log(`raw SendMessage, ${concurrency} concurrent`);
  const send = rate(await probe.sendMessage(loop));
  options.log(`raw PutItem, ${concurrency} concurrent`);
  const put = rate(await probe.putItem(loop));
  options.log(`raw BatchWriteItem x${BATCH_ITEMS}, ${concurrency} concurrent`);
  const batch = rate(await probe.batchWrite(loop));
  options.log(`raw TransactWriteItems (3 items per event), ${concurrency} concurrent`);
  const tx = rate(await probe.transactWrite(loop));
  return {
    concurrency,
    accountPayloadBytes: options.accountPayloadBytes,
    sendMessage: { ...send, bodyBytes: meanBytes(options.sampleBodies) },
    putItem: put,
    batchWrite: {
      ...batch,
      itemsPerSecond: batch.perSecond * BATCH_ITEMS,
      itemsPerRequest: BATCH_ITEMS,
    },
    transactWrite: { ...tx, itemsPerEvent: 3 },
  };
}

function meanBytes(texts: readonly string[]): number {
  return texts.reduce((n, text) => n + Buffer.byteLength(text), 0) / Math.max(1, texts.length);
}

function accountItem(id: string, payload: string) {
  return {
    pk: { S: `CUSTOMER#cus_${id}` },
    sk: { S: 'ACCOUNT' },
    customerId: { S: `cus_${id}` },
    revision: { N: '1' },
    account: { S: payload },
  };
}

/**
 * A ledger page (key customerId + revision) recording one event, as a consumer that
 * commits each event on its own would write it: a customer id unique to the event,
 * revision 1.
 */
function ledgerPage(eventId: string, id: string) {
  const now = Date.now();
  return {
    customerId: { S: `cus_${id}` },
    revision: { N: '1' },
    userId: { S: `user-${id}` },
    appliedAt: { N: String(now) },
    expiresAt: { N: String(Math.floor(now / 1000) + 30 * 86_400) },
    events: {
      L: [
        {
          M: {
            eventId: { S: eventId },
            type: { S: 'customer.subscription.updated' },
            outcome: { S: 'applied' },
            receivedAt: { N: String(now) },
          },
        },
      ],
    },
  };
}

export function rawLimitsSection(raw: RawLimits): Section {
  const figures: Figure[] = [
    {
      id: 'raw.sendMessage.perSecond',
      label: 'SendMessage (fauxqs)',
      value: raw.sendMessage.perSecond,
      unit: 'msg/s',
    },
    {
      id: 'raw.sendMessage.p50',
      label: 'SendMessage latency p50',
      value: raw.sendMessage.latency.p50Ms,
      unit: 'ms',
    },
    {
      id: 'raw.sendMessage.p99',
      label: 'SendMessage latency p99',
      value: raw.sendMessage.latency.p99Ms,
      unit: 'ms',
    },
    {
      id: 'raw.putItem.perSecond',
      label: 'PutItem, 1 item',
      value: raw.putItem.perSecond,
      unit: 'items/s',
    },
    {
      id: 'raw.batchWrite.itemsPerSecond',
      label: `BatchWriteItem, ${raw.batchWrite.itemsPerRequest} items`,
      value: raw.batchWrite.itemsPerSecond,
      unit: 'items/s',
      ratio: {
        value: raw.batchWrite.itemsPerSecond / raw.putItem.perSecond,
        to: 'PutItem items/s',
      },
    },
    {
      id: 'raw.transactWrite.eventsPerSecond',
      label: 'TransactWriteItems, 3 items = 1 event',
      value: raw.transactWrite.perSecond,
      unit: 'events/s',
      ratio: {
        value: (raw.transactWrite.perSecond * 3) / raw.putItem.perSecond,
        to: 'PutItem items/s (items, not events)',
      },
    },
  ];
  return {
    id: 'raw',
    title: `Raw emulator limits (closed loop, ${raw.concurrency} concurrent)`,
    figures,
    notes: [
      `SendMessage bodies: the ingress scenario's Stripe events in turn (mean ${Math.round(raw.sendMessage.bodyBytes)} bytes), with the 3 contract attributes.`,
      `Transaction per event: ledger page Put recording the one event (condition: new page) + account Put (${raw.accountPayloadBytes}-byte payload, the size of a folded history) + profile Update, as a consumer without batching writes.`,
      'Failed calls: ' +
        [raw.sendMessage, raw.putItem, raw.batchWrite, raw.transactWrite]
          .map((r) => r.failed)
          .join('/') +
        ' (send/put/batch/transact).',
    ],
    detail: raw,
  };
}
