import { type CfnResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EventFamilyName } from '../functions/core/shared/event-families.ts';
import { LOCAL_NAME_PREFIX, METADATA } from './metadata.ts';

/** Receives before a message is moved to the DLQ. */
export const DEFAULT_MAX_RECEIVE_COUNT = 5;

/**
 * How each family's consumer drains its queue. One place for both the queue (whose
 * visibility timeout derives from the consumer's timeout and window) and the event
 * source mapping, so the two cannot disagree.
 */
export interface ConsumerSettings {
  /** The consumer function's timeout. */
  readonly timeout: Duration;
  /** How long the poller may gather a batch. */
  readonly maxBatchingWindow: Duration;
  readonly batchSize: number;
  /** Concurrent invocations at most: a backlog cannot exhaust the tables or the account. */
  readonly maxConcurrency: number;
  readonly memorySize: number;
}

/**
 * Batches of up to 100 gathered for at most 2 s: a consumer folds a batch's events
 * per aggregate and writes each aggregate once, so a fuller batch means fewer writes
 * per event (the benchmark measured 21% fewer write units per webhook than batches
 * of 50). Each family has its own settings, queue and DLQ, so a flood or a poison
 * record of one family does not delay the other.
 */
export const CONSUMER_SETTINGS: Readonly<Record<EventFamilyName, ConsumerSettings>> = {
  subscriptions: {
    timeout: Duration.seconds(30),
    maxBatchingWindow: Duration.seconds(2),
    batchSize: 100,
    maxConcurrency: 5,
    memorySize: 512,
  },
  payments: {
    timeout: Duration.seconds(30),
    maxBatchingWindow: Duration.seconds(2),
    batchSize: 100,
    // 10,000 payment events/s at ~200 ms a batch of 100 needs 20 batches in flight;
    // 30 is 1.5x that and stays under what the sharded paid index takes
    // (docs/payments-capacity.md, "Consumer concurrency").
    maxConcurrency: 30,
    memorySize: 512,
  },
};

/**
 * The credit refresh worker: batches of 10 messages of up to 25 users each, so one
 * invocation refreshes up to 250 users with one conditional write each; at most 5 at
 * once, so a slot of 3,500 users takes seconds and never crowds the tables.
 */
export const CREDIT_WORKER_SETTINGS: ConsumerSettings = {
  timeout: Duration.seconds(60),
  maxBatchingWindow: Duration.seconds(1),
  batchSize: 10,
  maxConcurrency: 5,
  memorySize: 512,
};

/**
 * Lambda's guidance for an SQS event source: visibility timeout at least six times the
 * function timeout plus the batching window, so a batch that is retried by the poller
 * (throttles, errors) is not handed out again while a first attempt is still running.
 */
export function visibilityTimeoutFor(
  settings: Pick<ConsumerSettings, 'timeout' | 'maxBatchingWindow'>,
): Duration {
  return Duration.seconds(
    6 * settings.timeout.toSeconds() + settings.maxBatchingWindow.toSeconds(),
  );
}

export interface ConsumedQueueProps {
  /** Kebab-case name: the local queue name and, PascalCased, its alarms' ids. */
  readonly name: string;
  readonly consumer: ConsumerSettings;
  /** @default 5 */
  readonly maxReceiveCount?: number;
  /** How long an unconsumed message is kept. @default 4 days */
  readonly retentionPeriod?: Duration;
}

/**
 * A standard queue drained by one Lambda consumer, with its dead-letter queue. Both
 * are SSE-SQS encrypted, TLS-only and retained with the stack (they hold work not yet
 * done); the DLQ keeps messages the maximum 14 days so operators have time to redrive.
 */
export class ConsumedQueue extends Construct {
  public readonly name: string;
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly consumer: ConsumerSettings;
  public readonly visibilityTimeout: Duration;
  public readonly maxReceiveCount: number;

  constructor(scope: Construct, id: string, props: ConsumedQueueProps) {
    super(scope, id);
    this.name = props.name;
    this.consumer = props.consumer;
    this.maxReceiveCount = props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    this.visibilityTimeout = visibilityTimeoutFor(this.consumer);

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Holds events that were never applied: keep it if the stack goes away.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    setLocalName(this.deadLetterQueue, `${props.name}-dlq`);

    this.queue = new Queue(this, 'Queue', {
      visibilityTimeout: this.visibilityTimeout,
      retentionPeriod: props.retentionPeriod ?? Duration.days(4),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceiveCount },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    setLocalName(this.queue, props.name);
  }
}

export interface EventFamilyQueueProps {
  readonly family: EventFamilyName;
  /** @default CONSUMER_SETTINGS[family] */
  readonly consumer?: ConsumerSettings;
  /** @default 5 */
  readonly maxReceiveCount?: number;
}

/** One event family's queue between the webhook and the family's consumer. */
export class EventFamilyQueue extends ConsumedQueue {
  public readonly family: EventFamilyName;

  constructor(scope: Construct, id: string, props: EventFamilyQueueProps) {
    super(scope, id, {
      name: `${props.family}-events`,
      consumer: props.consumer ?? CONSUMER_SETTINGS[props.family],
      ...(props.maxReceiveCount ? { maxReceiveCount: props.maxReceiveCount } : {}),
      // Stripe retries undelivered webhooks for three days; keep a day more than that.
      retentionPeriod: Duration.days(4),
    });
    this.family = props.family;
  }
}

function setLocalName(queue: Queue, suffix: string): void {
  (queue.node.defaultChild as CfnResource).addMetadata(
    METADATA.localName,
    `${LOCAL_NAME_PREFIX}-${suffix}`,
  );
}
