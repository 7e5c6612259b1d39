import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE } from '../functions/commons/metric-names.ts';
import type { BillingFunction } from './billing-function.ts';

export interface ObservabilityProps {
  readonly functions: readonly BillingFunction[];
  /** The function whose `EventsFailed` metric is alarmed on. */
  readonly consumer: BillingFunction;
  /** The function that publishes the webhook metrics. */
  readonly webhook: BillingFunction;
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly httpApi: HttpApi;
  /** Age of the oldest queued event above which the backlog alarm fires. @default 300 s */
  readonly maxMessageAge?: Duration;
  /** Subscribed to the alarm topic when set. */
  readonly alarmEmail?: string;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * The on-call view: one dashboard and the alarms that page (DLQ not empty, oldest
 * message too old, consumer record failures, API 5xx, and each function's errors
 * and throttles), all sent to one SNS topic.
 */
export class Observability extends Construct {
  public readonly alarmTopic: Topic;
  public readonly dashboard: Dashboard;
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.alarmTopic = new Topic(this, 'AlarmTopic', {
      displayName: 'Billing suite alarms',
      enforceSSL: true,
    });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
    }

    const maxMessageAge = props.maxMessageAge ?? Duration.seconds(300);
    const dlqDepth = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: 'Maximum',
    });
    const oldestAge = props.queue.metricApproximateAgeOfOldestMessage({
      period: Duration.minutes(1),
      statistic: 'Maximum',
    });
    const queueDepth = props.queue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: 'Maximum',
    });
    const eventsFailed = customMetric(METRIC.eventsFailed, props.consumer);
    const api5xx = props.httpApi.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' });
    const api4xx = props.httpApi.metricClientError({ period: FIVE_MINUTES, statistic: 'Sum' });

    this.alarm('DeadLetterQueueNotEmpty', dlqDepth, {
      threshold: 0,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description: 'Stripe events gave up after the maximum receives and wait in the DLQ.',
    });
    this.alarm('OldestMessageTooOld', oldestAge, {
      threshold: maxMessageAge.toSeconds(),
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      description: `Oldest Stripe event has waited more than ${maxMessageAge.toSeconds()} s: the consumer is behind or failing.`,
    });
    this.alarm('ConsumerEventsFailed', eventsFailed, {
      threshold: 1,
      description: 'The consumer reported batch item failures (they are retried, then DLQ).',
    });
    this.alarm('Api5xx', api5xx, {
      threshold: 1,
      description: 'The HTTP API answered 5xx (Stripe retries webhooks; app reads failed).',
    });
    for (const fn of props.functions) {
      const name = fn.node.scope?.node.id ?? fn.node.id;
      this.alarm(`${name}Errors`, fn.function.metricErrors({ period: FIVE_MINUTES }), {
        threshold: 1,
        description: `${fn.serviceName} invocations failed (uncaught error or timeout).`,
      });
      this.alarm(`${name}Throttles`, fn.function.metricThrottles({ period: FIVE_MINUTES }), {
        threshold: 1,
        description: `${fn.serviceName} invocations were throttled.`,
      });
    }

    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
    });
    const webhookMetric = (name: string) => customMetric(name, props.webhook);
    const consumerMetric = (name: string) => customMetric(name, props.consumer);
    const perFunction = (pick: (fn: BillingFunction) => IMetric) => props.functions.map(pick);
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '# Billing suite\nStripe → HTTP API → webhook → SQS → consumer → DynamoDB. ' +
          'A non-empty DLQ means events need a redrive after the cause is fixed.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      graph('Webhooks', [
        webhookMetric(METRIC.webhookReceived),
        webhookMetric(METRIC.webhookEnqueued),
        webhookMetric(METRIC.webhookEnqueueFailed),
      ]),
      graph('Webhooks rejected (4xx), by reason', [rejectedByReason(props.webhook)]),
      graph('HTTP API responses', [
        props.httpApi.metricCount({ period: FIVE_MINUTES, statistic: 'Sum' }),
        api4xx,
        api5xx,
      ]),
      graph('HTTP API latency p99 (ms)', [
        props.httpApi.metricLatency({ period: FIVE_MINUTES, statistic: 'p99' }),
        props.httpApi.metricIntegrationLatency({ period: FIVE_MINUTES, statistic: 'p99' }),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Events applied', [
        consumerMetric(METRIC.eventsProcessed),
        consumerMetric(METRIC.eventsDuplicate),
        consumerMetric(METRIC.eventsOutOfOrder),
        consumerMetric(METRIC.eventsIgnored),
        eventsFailed,
      ]),
      graph('Processing lag (ms)', [
        consumerMetric(METRIC.processingLag).with({ statistic: 'p50', label: 'lag p50' }),
        consumerMetric(METRIC.processingLag).with({ statistic: 'p99', label: 'lag p99' }),
        consumerMetric(METRIC.endToEndLag).with({ statistic: 'p99', label: 'end-to-end p99' }),
      ]),
      graph('Queue', [queueDepth, oldestAge, dlqDepth]),
    );
    this.dashboard.addWidgets(
      graph(
        'Lambda errors',
        perFunction((fn) =>
          fn.function.metricErrors({ period: FIVE_MINUTES, label: fn.serviceName }),
        ),
      ),
      graph(
        'Lambda throttles',
        perFunction((fn) =>
          fn.function.metricThrottles({ period: FIVE_MINUTES, label: fn.serviceName }),
        ),
      ),
      graph(
        'Lambda duration p99 (ms)',
        perFunction((fn) =>
          fn.function.metricDuration({
            period: FIVE_MINUTES,
            statistic: 'p99',
            label: fn.serviceName,
          }),
        ),
      ),
    );
  }

  private alarm(
    id: string,
    metric: IMetric,
    options: {
      threshold: number;
      description: string;
      operator?: ComparisonOperator;
      evaluationPeriods?: number;
    },
  ): Alarm {
    const alarm = new Alarm(this, id, {
      metric,
      threshold: options.threshold,
      comparisonOperator: options.operator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      // No data means no traffic (or no failures being reported), not an outage.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    alarm.addOkAction(new SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
    return alarm;
  }
}

/**
 * A Powertools EMF metric: Powertools adds the `service` dimension (the function's
 * POWERTOOLS_SERVICE_NAME), so the alarm must name it to match the published series.
 */
function customMetric(metricName: string, fn: BillingFunction): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: fn.serviceName },
    period: FIVE_MINUTES,
    statistic: 'Sum',
  });
}

/**
 * Rejections carry a `reason` dimension (bad signature, too large...), so a metric
 * with the service dimension alone would have no data: search every reason instead.
 */
function rejectedByReason(fn: BillingFunction): MathExpression {
  return new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},reason,service} MetricName="${METRIC.webhookRejected}" service="${fn.serviceName}"', 'Sum', 300)`,
    label: '',
    period: FIVE_MINUTES,
  });
}

function graph(title: string, metrics: IMetric[]): GraphWidget {
  return new GraphWidget({ title, left: metrics, width: 8, height: 6 });
}
