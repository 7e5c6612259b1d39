/**
 * Counts what the code under test asks of AWS: requests per command, DynamoDB request
 * units (computed by DynamoDB's sizing rules, and as DynamoDB Local reports them: every
 * request is sent with `ReturnConsumedCapacity: 'TOTAL'`), SQS billed
 * requests (64 KiB chunks), the wall time DynamoDB was busy, and which Stripe events a
 * successful write recorded in a ledger page (for the processing lag and the
 * applied-twice check).
 *
 * It wraps `send` on the SDK's shared smithy `Client` prototype instead of adding a
 * middleware to particular clients: handlers wired with their default clients (as the
 * local runtime runs them) build those clients themselves, and both `DynamoDBClient`
 * and the lib-dynamodb document client funnel through that one `send`. The harness's
 * own clients are excluded by their config object (a document client shares it with
 * the client it wraps).
 */
import { performance } from 'node:perf_hooks';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { decodeLedgerPages } from '../functions/adapters/dynamodb/ledger-pack-codec.ts';
import { rejectedWriteUnits, requestUnits, writeUnitsByItemKind } from './dynamo-capacity.ts';

const SQS_CHUNK_BYTES = 64 * 1024;

const DYNAMO_WRITES = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
]);
const DYNAMO_READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
/** lib-dynamodb command names -> the wire operation they send. */
const DOCUMENT_COMMANDS: Record<string, string> = {
  Put: 'PutItem',
  Get: 'GetItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchWrite: 'BatchWriteItem',
  BatchGet: 'BatchGetItem',
  TransactWrite: 'TransactWriteItems',
  TransactGet: 'TransactGetItems',
};

export interface DynamoUsage {
  requests: Record<string, number>;
  /** Write request units by DynamoDB's sizing rules (see dynamo-capacity.ts): what AWS would bill. */
  wru: number;
  /** `wru` split by item kind (table, and the pk prefix on the billing table); sums to `wru`. */
  wruByItem: Record<string, number>;
  /** Read request units by DynamoDB's sizing rules. */
  rru: number;
  /** Write capacity DynamoDB Local reported (`ReturnConsumedCapacity: 'TOTAL'`); it under-reports transactions. */
  reportedWcu: number;
  /** Read capacity DynamoDB Local reported; it reports 0 for batch keys that found nothing. */
  reportedRcu: number;
  /** Writes rejected by a condition (including cancelled transactions): billed on AWS, reported by no response. */
  rejectedWrites: number;
  /** Our estimate of what those cost, included in neither `wru` nor `reportedWcu`. */
  rejectedWru: number;
  /** Why: ConditionalCheckFailed, TransactionConflict... (one count per cancelled item). */
  rejectedReasons: Record<string, number>;
  /** Wall time with at least one DynamoDB request in flight. */
  busyMs: number;
}

export interface SqsUsage {
  requests: Record<string, number>;
  /** Requests as SQS bills them: each 64 KiB chunk of payload is one request. */
  billedRequests: number;
  messagesSent: number;
  messagesReceived: number;
  emptyReceives: number;
}

export interface AwsUsage {
  dynamo: DynamoUsage;
  sqs: SqsUsage;
}

/** One event of a ledger page a successful write put. */
export interface LedgerCommitEvent {
  eventId: string;
  /** 'applied' or 'stale'; undefined if the page did not say. */
  outcome: string | undefined;
}

export interface AwsMeterHooks {
  /** A successful DynamoDB write put ledger pages recording these Stripe events. */
  onLedgerCommit?: (events: LedgerCommitEvent[], atMs: number) => void;
  /** A ReceiveMessage returned these messages (eventId from the message attribute). */
  onReceive?: (messages: { eventId: string | undefined; sentTimestampMs: number }[]) => void;
}

type Sendable = { config: object; send: (command: unknown, ...rest: unknown[]) => unknown };
type CommandLike = { constructor: { name: string }; input?: Record<string, unknown> };

/** `wruByItem` as "billing/CUSTOMER 2,040 (41%), ..." for a report note, largest first. */
export function formatWruByItem(byItem: Record<string, number>): string {
  const total = Object.values(byItem).reduce((sum, wru) => sum + wru, 0);
  const entries = Object.entries(byItem).sort(([, a], [, b]) => b - a);
  if (entries.length === 0) return 'none';
  return entries
    .map(
      ([kind, wru]) =>
        `${kind} ${wru.toLocaleString('en-US')} (${Math.round((100 * wru) / total)}%)`,
    )
    .join(', ');
}

function emptyUsage(): AwsUsage {
  return {
    dynamo: {
      requests: {},
      wru: 0,
      wruByItem: {},
      rru: 0,
      reportedWcu: 0,
      reportedRcu: 0,
      rejectedWrites: 0,
      rejectedWru: 0,
      rejectedReasons: {},
      busyMs: 0,
    },
    sqs: {
      requests: {},
      billedRequests: 0,
      messagesSent: 0,
      messagesReceived: 0,
      emptyReceives: 0,
    },
  };
}

function isDocumentCommand(command: CommandLike): boolean {
  return command.constructor.name.replace(/Command$/, '') in DOCUMENT_COMMANDS;
}

function operationName(command: CommandLike): string {
  const bare = command.constructor.name.replace(/Command$/, '');
  return DOCUMENT_COMMANDS[bare] ?? bare;
}

function capacityOf(consumed: unknown): number {
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  let total = 0;
  for (const entry of list as { CapacityUnits?: number }[]) total += entry.CapacityUnits ?? 0;
  return total;
}

function bytes(value: unknown): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : 0;
}

/** Size SQS counts for a message: body plus attribute names, types and values. */
function messagePayloadBytes(body: unknown, attributes: unknown): number {
  let size = bytes(body);
  if (attributes && typeof attributes === 'object') {
    for (const [name, attr] of Object.entries(
      attributes as Record<string, Record<string, unknown>>,
    )) {
      size += bytes(name) + bytes(attr.DataType) + bytes(attr.StringValue);
    }
  }
  return size;
}

function chunks(payloadBytes: number): number {
  return Math.max(1, Math.ceil(payloadBytes / SQS_CHUNK_BYTES));
}

function attributeString(attributes: unknown, name: string): string | undefined {
  const attr = (attributes as Record<string, { StringValue?: string }> | undefined)?.[name];
  return attr?.StringValue;
}

/** A plain JS value from a document-client value or a wire-format AttributeValue. */
function plain(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const attr = value as Record<string, unknown>;
  const tags = Object.keys(attr);
  if (tags.length !== 1) return value;
  if (typeof attr.S === 'string') return attr.S;
  if (typeof attr.N === 'string') return Number(attr.N);
  if (attr.NULL !== undefined) return null;
  if (Array.isArray(attr.L)) return attr.L;
  if (attr.M && typeof attr.M === 'object') return attr.M;
  return value;
}

/** A ledger pack's `pages`: deflated (ledger-pack-codec.ts) or, in earlier packs, a list. */
function packPages(value: unknown): unknown {
  const binary = value instanceof Uint8Array ? value : (value as { B?: unknown } | undefined)?.B;
  return binary instanceof Uint8Array ? decodeLedgerPages(binary) : plain(value);
}

/**
 * The events of the ledger pages a write request puts (`events` list of each page
 * Put to the ledger table, or of each page in a ledger pack's `pages`), for
 * document-client and wire-format items alike.
 */
function ledgerEvents(
  operation: string,
  input: Record<string, unknown>,
  ledgerTable: string,
): LedgerCommitEvent[] {
  const found: LedgerCommitEvent[] = [];
  const fromPage = (item: unknown): void => {
    const pages = packPages((item as Record<string, unknown> | undefined)?.pages);
    if (Array.isArray(pages)) {
      for (const page of pages) fromPage(plain(page));
      return;
    }
    const events = plain((item as Record<string, unknown> | undefined)?.events);
    if (!Array.isArray(events)) return;
    for (const entry of events) {
      const event = plain(entry) as Record<string, unknown> | undefined;
      const eventId = plain(event?.eventId);
      const outcome = plain(event?.outcome);
      if (typeof eventId === 'string')
        found.push({ eventId, outcome: typeof outcome === 'string' ? outcome : undefined });
    }
  };
  if (operation === 'PutItem' && input.TableName === ledgerTable) fromPage(input.Item);
  if (operation === 'TransactWriteItems') {
    for (const entry of (input.TransactItems ?? []) as Record<string, Record<string, unknown>>[]) {
      if (entry.Put?.TableName === ledgerTable) fromPage(entry.Put.Item);
    }
  }
  if (operation === 'BatchWriteItem') {
    const requests = (
      input.RequestItems as Record<string, { PutRequest?: { Item?: unknown } }[]>
    )?.[ledgerTable];
    for (const request of requests ?? []) fromPage(request.PutRequest?.Item);
  }
  return found;
}

/** Meters every AWS SDK request made in this process, except the harness's own clients. */
export class AwsMeter {
  private usage = emptyUsage();
  private readonly excluded = new WeakSet<object>();
  private inFlight = 0;
  private busySince = 0;
  private restore: (() => void) | undefined;
  /** Name of the ledger table whose page writes mark an event as committed. */
  ledgerTable: string | undefined;
  hooks: AwsMeterHooks = {};

  /** Starts metering. Idempotent. */
  install(): void {
    if (this.restore) return;
    const prototypes = new Set<Sendable>([
      Object.getPrototypeOf(DynamoDBClient.prototype) as Sendable,
      Object.getPrototypeOf(SQSClient.prototype) as Sendable,
    ]);
    const restorers: (() => void)[] = [];
    for (const proto of prototypes) {
      const original = proto.send;
      const meter = this;
      proto.send = function (this: Sendable, command: unknown, ...rest: unknown[]) {
        const service = (this.config as { serviceId?: string }).serviceId;
        // Callback-style calls are passed through unmetered; nothing here uses them.
        if (rest.some((arg) => typeof arg === 'function') || meter.excluded.has(this.config)) {
          return original.call(this, command, ...rest);
        }
        if (service === 'DynamoDB')
          return meter.dynamo(original, this, command as CommandLike, rest);
        if (service === 'SQS') return meter.sqs(original, this, command as CommandLike, rest);
        return original.call(this, command, ...rest);
      };
      restorers.push(() => {
        proto.send = original;
      });
    }
    this.restore = () => {
      for (const undo of restorers) undo();
    };
  }

  uninstall(): void {
    this.restore?.();
    this.restore = undefined;
  }

  /** Requests from this client (and document clients wrapping it) are not counted. */
  exclude(client: { config: object }): void {
    this.excluded.add(client.config);
  }

  reset(): void {
    this.usage = emptyUsage();
  }

  snapshot(): AwsUsage {
    return structuredClone(this.usage);
  }

  private async dynamo(
    original: Sendable['send'],
    client: Sendable,
    command: CommandLike,
    rest: unknown[],
  ): Promise<unknown> {
    const operation = operationName(command);
    const wire = !isDocumentCommand(command);
    const usage = this.usage.dynamo;
    usage.requests[operation] = (usage.requests[operation] ?? 0) + 1;
    const input = command.input ?? {};
    const metered = DYNAMO_WRITES.has(operation) || DYNAMO_READS.has(operation);
    // Mutating the caller's input (not replacing it) because lib-dynamodb commands hand
    // the same object to the wire command they wrap.
    if (metered) input.ReturnConsumedCapacity = 'TOTAL';
    if (this.inFlight++ === 0) this.busySince = performance.now();
    try {
      const output = (await original.call(client, command, ...rest)) as Record<string, unknown>;
      // Counted into the current usage object: a reset may have happened meanwhile.
      const current = this.usage.dynamo;
      const reported = capacityOf(output?.ConsumedCapacity);
      if (DYNAMO_WRITES.has(operation)) current.reportedWcu += reported;
      else if (DYNAMO_READS.has(operation)) current.reportedRcu += reported;
      if (DYNAMO_WRITES.has(operation)) {
        const byKind = writeUnitsByItemKind(operation, input, output ?? {}, wire);
        for (const [kind, wru] of Object.entries(byKind)) {
          current.wruByItem[kind] = (current.wruByItem[kind] ?? 0) + wru;
          current.wru += wru;
        }
      } else {
        current.rru += requestUnits(operation, input, output ?? {}, wire).rru;
      }
      if (DYNAMO_WRITES.has(operation) && this.ledgerTable && this.hooks.onLedgerCommit) {
        const events = ledgerEvents(operation, input, this.ledgerTable);
        if (events.length > 0) this.hooks.onLedgerCommit(events, Date.now());
      }
      return output;
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'ConditionalCheckFailedException' || name === 'TransactionCanceledException') {
        const current = this.usage.dynamo;
        current.rejectedWrites += 1;
        current.rejectedWru += rejectedWriteUnits(operation, input, wire);
        const reasons = (error as { CancellationReasons?: { Code?: string }[] })
          .CancellationReasons ?? [{ Code: 'ConditionalCheckFailed' }];
        for (const { Code } of reasons) {
          if (Code && Code !== 'None' && Code !== 'NONE') {
            current.rejectedReasons[Code] = (current.rejectedReasons[Code] ?? 0) + 1;
          }
        }
      }
      throw error;
    } finally {
      if (--this.inFlight === 0) this.usage.dynamo.busyMs += performance.now() - this.busySince;
    }
  }

  private async sqs(
    original: Sendable['send'],
    client: Sendable,
    command: CommandLike,
    rest: unknown[],
  ): Promise<unknown> {
    const operation = operationName(command);
    const input = command.input ?? {};
    // Counted before the call: a failed request is billed too.
    this.usage.sqs.requests[operation] = (this.usage.sqs.requests[operation] ?? 0) + 1;
    const output = (await original.call(client, command, ...rest)) as Record<string, unknown>;
    const usage = this.usage.sqs;
    switch (operation) {
      case 'SendMessage': {
        usage.messagesSent += 1;
        usage.billedRequests += chunks(
          messagePayloadBytes(input.MessageBody, input.MessageAttributes),
        );
        break;
      }
      case 'SendMessageBatch': {
        const entries = (input.Entries ?? []) as Record<string, unknown>[];
        usage.messagesSent += entries.length;
        let size = 0;
        for (const entry of entries)
          size += messagePayloadBytes(entry.MessageBody, entry.MessageAttributes);
        usage.billedRequests += chunks(size);
        break;
      }
      case 'ReceiveMessage': {
        const messages = (output?.Messages ?? []) as Record<string, unknown>[];
        usage.messagesReceived += messages.length;
        if (messages.length === 0) usage.emptyReceives += 1;
        let size = 0;
        for (const message of messages)
          size += messagePayloadBytes(message.Body, message.MessageAttributes);
        usage.billedRequests += chunks(size);
        this.hooks.onReceive?.(
          messages.map((message) => ({
            eventId: attributeString(message.MessageAttributes, 'eventId'),
            sentTimestampMs: Number(
              (message.Attributes as Record<string, string> | undefined)?.SentTimestamp ??
                Number.NaN,
            ),
          })),
        );
        break;
      }
      default:
        usage.billedRequests += 1;
    }
    return output;
  }
}
