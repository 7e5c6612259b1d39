import { type CfnResource, Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { LOCAL_NAME_PREFIX, METADATA } from './metadata.ts';

/** Receives before a message is moved to the DLQ. */
export const DEFAULT_MAX_RECEIVE_COUNT = 5;

/**
 * Lambda's guidance for an SQS event source: visibility timeout at least six times the
 * function timeout plus the batching window, so a batch that is retried by the poller
 * (throttles, errors) is not handed out again while a first attempt is still running.
 */
export function visibilityTimeoutFor(
  consumerTimeout: Duration,
  batchingWindow: Duration,
): Duration {
  return Duration.seconds(6 * consumerTimeout.toSeconds() + batchingWindow.toSeconds());
}

export interface StripeEventQueueProps {
  /** Timeout of the Lambda function that consumes the queue. */
  readonly consumerTimeout: Duration;
  /** Maximum batching window of the event source mapping. */
  readonly consumerBatchingWindow: Duration;
  /** @default 5 */
  readonly maxReceiveCount?: number;
}

/**
 * The standard queue between the webhook and the consumer, with its dead-letter queue.
 * Both are SSE-SQS encrypted and TLS-only; the DLQ keeps messages the maximum 14 days
 * so operators have time to redrive them.
 */
export class StripeEventQueue extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly visibilityTimeout: Duration;
  public readonly maxReceiveCount: number;

  constructor(scope: Construct, id: string, props: StripeEventQueueProps) {
    super(scope, id);
    this.maxReceiveCount = props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    this.visibilityTimeout = visibilityTimeoutFor(
      props.consumerTimeout,
      props.consumerBatchingWindow,
    );

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    setLocalName(this.deadLetterQueue, 'stripe-events-dlq');

    this.queue = new Queue(this, 'Queue', {
      visibilityTimeout: this.visibilityTimeout,
      // Stripe retries undelivered webhooks for three days; keep a day more than that.
      retentionPeriod: Duration.days(4),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceiveCount },
    });
    setLocalName(this.queue, 'stripe-events');
  }
}

function setLocalName(queue: Queue, suffix: string): void {
  (queue.node.defaultChild as CfnResource).addMetadata(
    METADATA.localName,
    `${LOCAL_NAME_PREFIX}-${suffix}`,
  );
}
