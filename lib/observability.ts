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
import {
  METRIC,
  METRIC_DIMENSION,
  METRICS_NAMESPACE,
  STRIPE_CIRCUIT_STATE_VALUE,
} from '../functions/commons/metric-names.ts';
import type { BillingFunction } from './billing-function.ts';
import type { ConsumedQueue } from './event-family-queue.ts';

/** A queue (an event family's, or a work queue) and the function that consumes it. */
export interface WatchedConsumer {
  readonly events: ConsumedQueue;
  readonly handler: BillingFunction;
}

/** The credit refresh's pieces the dashboard and alarms watch. */
export interface WatchedCreditRefresh {
  readonly refreshQueue: ConsumedQueue;
  readonly planner: BillingFunction;
  readonly worker: BillingFunction;
  readonly scheduleDeadLetterQueue: IQueue;
}

/** The penalties' pieces the dashboard and alarms watch. */
export interface WatchedPenalties {
  /** The user routes: publishes the settlement metrics. */
  readonly api: BillingFunction;
  /** The operators' routes: on-demand assessments and mark-paid. */
  readonly admin: BillingFunction;
  /** The scheduled assessment: the only publisher of PenaltyAssessmentOverdue. */
  readonly assessor: BillingFunction;
  /** The payments consumer, which marks a settlement's penalties paid when its PaymentIntent succeeds. */
  readonly paymentConsumer: BillingFunction;
  /** The hourly sweep that releases settlements abandoned for an hour. */
  readonly settlementSweeper: BillingFunction;
  readonly scheduleDeadLetterQueue: IQueue;
}

export interface ObservabilityProps {
  readonly functions: readonly BillingFunction[];
  /** Every family's queue and consumer: each gets its alarms and widgets. */
  readonly consumers: readonly WatchedConsumer[];
  /** The function that publishes the webhook metrics. */
  readonly webhook: BillingFunction;
  /** The credit refresh, when deployed. */
  readonly credits?: WatchedCreditRefresh;
  /** The penalties, when deployed. */
  readonly penalties?: WatchedPenalties;
  readonly httpApi: HttpApi;
  /** The read route with its Stripe fallback, and every other function that calls Stripe. */
  readonly stripe?: {
    readonly subscriptionRead: BillingFunction;
    readonly callers: readonly BillingFunction[];
  };
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
    const api5xx = props.httpApi.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' });
    const api4xx = props.httpApi.metricClientError({ period: FIVE_MINUTES, statistic: 'Sum' });
    const watched = props.consumers.map((consumer) => {
      const { events, handler } = consumer;
      const perMinute = { period: Duration.minutes(1), statistic: 'Maximum' } as const;
      return {
        ...consumer,
        title: pascalCase(events.name.replace(/-events$/, '')),
        dlqDepth: events.deadLetterQueue.metricApproximateNumberOfMessagesVisible(perMinute),
        oldestAge: events.queue.metricApproximateAgeOfOldestMessage(perMinute),
        queueDepth: events.queue.metricApproximateNumberOfMessagesVisible(perMinute),
        inFlight: events.queue.metricApproximateNumberOfMessagesNotVisible(perMinute),
        eventsFailed: customMetric(METRIC.eventsFailed, handler),
      };
    });

    for (const { title, dlqDepth, oldestAge, eventsFailed, handler } of watched) {
      this.alarm(`${title}DeadLetterQueueNotEmpty`, dlqDepth, {
        threshold: 0,
        operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description: `${title} events gave up after the maximum receives and wait in their DLQ.`,
      });
      this.alarm(`${title}OldestMessageTooOld`, oldestAge, {
        threshold: maxMessageAge.toSeconds(),
        operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        description: `Oldest ${title.toLowerCase()} event has waited more than ${maxMessageAge.toSeconds()} s: ${handler.serviceName} is behind or failing.`,
      });
      this.alarm(`${title}EventsFailed`, eventsFailed, {
        threshold: 1,
        description: `${handler.serviceName} reported batch item failures (they are retried, then DLQ).`,
      });
    }
    // Every webhook refused for its signature (say the placeholder secret was never
    // replaced) is silent otherwise: Stripe just retries for days.
    const signatureRejections = new MathExpression({
      expression: 'FILL(invalid, 0) + FILL(missing, 0) + FILL(expired, 0)',
      usingMetrics: Object.fromEntries(
        (
          [
            ['invalid', 'invalid_signature'],
            ['missing', 'missing_signature'],
            ['expired', 'expired_signature'],
          ] as const
        ).map(([id, reason]) => [
          id,
          customMetric(METRIC.webhookRejected, props.webhook).with({
            dimensionsMap: {
              [METRIC_DIMENSION.service]: props.webhook.serviceName,
              [METRIC_DIMENSION.reason]: reason,
            },
          }),
        ]),
      ),
      label: 'webhooks rejected for their signature',
      period: FIVE_MINUTES,
    });
    this.alarm('WebhookSignaturesRejected', signatureRejections, {
      threshold: 5,
      description:
        "Webhooks are being refused for their Stripe signature: is the signing secret in Secrets Manager the endpoint's whsec_…?",
    });
    const subscriptionConsumer = props.consumers.find(
      (c) => c.events.name === 'subscriptions-events',
    );
    if (subscriptionConsumer) {
      this.alarm(
        'UnmappedPrices',
        customMetric(METRIC.unmappedPrices, subscriptionConsumer.handler),
        {
          threshold: 1,
          description:
            'A subscription price has no tier (no metadata.tier, not in priceTierMap): its users are on free until it is mapped.',
        },
      );
    }
    if (subscriptionConsumer) {
      this.alarm(
        'SubscriptionTiesUnresolved',
        customMetric(METRIC.subscriptionTiesUnresolved, subscriptionConsumer.handler),
        {
          threshold: 1,
          description:
            'Same-second subscription updates could not be ordered by their payloads: run `npm run ops -- resync --marked`.',
        },
      );
    }
    // A test-mode endpoint pointed at production (or the reverse): events acknowledged, not applied.
    this.alarm('WebhookWrongMode', customMetric(METRIC.webhookWrongMode, props.webhook), {
      threshold: 1,
      description:
        'Webhooks of the other Stripe mode (live vs test) are arriving and are not applied: check the endpoint and stripeLivemode, then replay.',
    });
    // Types no family consumes, for an hour: the endpoint sends more than the suite handles.
    this.alarm('WebhookTypesUnrouted', customMetric(METRIC.webhookUnrouted, props.webhook), {
      threshold: 1,
      evaluationPeriods: 12,
      description:
        'For an hour, Stripe has sent event types no family consumes: remove them from the webhook endpoint (the dashboard lists them by type).',
    });
    const stripeWidgets = props.stripe ? this.stripeAlarms(props.stripe) : [];
    this.alarm('Api5xx', api5xx, {
      threshold: 1,
      description: 'The HTTP API answered 5xx (Stripe retries webhooks; app reads failed).',
    });
    for (const fn of props.functions) {
      // The owning construct's id ('WebhookIngress'), plus the function's own when a
      // construct holds several ('CreditRefreshPlanner').
      const owner = fn.node.scope?.node.id ?? '';
      const name = fn.node.id === 'Handler' ? owner || fn.node.id : `${owner}${fn.node.id}`;
      this.alarm(`${name}Errors`, fn.function.metricErrors({ period: FIVE_MINUTES }), {
        threshold: 1,
        description: `${fn.serviceName} invocations failed (uncaught error or timeout).`,
      });
      this.alarm(`${name}Throttles`, fn.function.metricThrottles({ period: FIVE_MINUTES }), {
        threshold: 1,
        description: `${fn.serviceName} invocations were throttled.`,
      });
    }

    const credits = props.credits ? this.creditAlarms(props.credits) : undefined;
    const penalties = props.penalties ? this.penaltyAlarms(props.penalties) : undefined;

    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
    });
    const webhookMetric = (name: string) => customMetric(name, props.webhook);
    const perFunction = (pick: (fn: BillingFunction) => IMetric) => props.functions.map(pick);
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '# Billing suite\nStripe → HTTP API → webhook → one SQS queue per event family → ' +
          "that family's consumer → DynamoDB. A non-empty DLQ means events need a redrive " +
          'after the cause is fixed.',
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
      graph('Webhooks no family consumes, by type', [
        searchByDimension(props.webhook, METRIC.webhookUnrouted, METRIC_DIMENSION.eventType),
      ]),
      graph('Webhooks rejected (4xx), by reason', [
        searchByDimension(props.webhook, METRIC.webhookRejected, METRIC_DIMENSION.reason),
      ]),
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
    for (const {
      title,
      handler,
      eventsFailed,
      queueDepth,
      inFlight,
      oldestAge,
      dlqDepth,
    } of watched) {
      const consumerMetric = (name: string) => customMetric(name, handler);
      this.dashboard.addWidgets(
        graph(`${title}: events per second`, [
          perSecond(consumerMetric(METRIC.eventsProcessed), 'applied'),
          perSecond(consumerMetric(METRIC.eventsDuplicate), 'duplicate'),
          perSecond(consumerMetric(METRIC.eventsOutOfOrder), 'out of order'),
          perSecond(consumerMetric(METRIC.eventsIgnored), 'ignored'),
          perSecond(eventsFailed, 'failed'),
        ]),
        graph(`${title}: processing lag (ms)`, [
          consumerMetric(METRIC.processingLag).with({ statistic: 'p50', label: 'lag p50' }),
          consumerMetric(METRIC.processingLag).with({ statistic: 'p99', label: 'lag p99' }),
          consumerMetric(METRIC.endToEndLag).with({ statistic: 'p99', label: 'end-to-end p99' }),
        ]),
        graph(`${title}: queue`, [queueDepth, inFlight, oldestAge, dlqDepth]),
      );
    }
    if (credits) this.dashboard.addWidgets(...credits.widgets);
    if (penalties) this.dashboard.addWidgets(...penalties.widgets);
    if (stripeWidgets.length > 0) this.dashboard.addWidgets(...stripeWidgets);
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

  /** Alarms of the credit refresh; returns its dashboard row. */
  private creditAlarms(credits: WatchedCreditRefresh): { widgets: GraphWidget[] } {
    const worker = (name: string) => customMetric(name, credits.worker);
    const perMinute = { period: Duration.minutes(1), statistic: 'Maximum' } as const;
    const refreshDlq =
      credits.refreshQueue.deadLetterQueue.metricApproximateNumberOfMessagesVisible(perMinute);
    const scheduleDlq =
      credits.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible(perMinute);
    const slotLag = customMetric(METRIC.creditSlotLag, credits.planner).with({
      statistic: 'Maximum',
    });
    // Every successful planner run (one each 5 minutes) publishes the lag, so 10 minutes
    // without a value is two runs in a row failed or never run: one missed run is not
    // paged (the next one catches up), a stopped planner is.
    const slotLagAlarmed = slotLag.with({ period: Duration.minutes(10) });
    const failureRate = new MathExpression({
      expression: 'IF(refreshed + failed > 0, 100 * failed / (refreshed + failed), 0)',
      usingMetrics: {
        refreshed: worker(METRIC.creditsRefreshed),
        failed: worker(METRIC.creditsFailed),
      },
      label: 'failure rate (%)',
      period: FIVE_MINUTES,
    });
    this.alarm('CreditRefreshDeadLetterQueueNotEmpty', refreshDlq, {
      threshold: 0,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description: 'Credit refresh work failed every receive and waits in its DLQ.',
    });
    this.alarm('CreditScheduleDeadLetterQueueNotEmpty', scheduleDlq, {
      threshold: 0,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description: 'EventBridge Scheduler could not invoke the credit planner.',
    });
    this.alarm('CreditSlotBehind', slotLagAlarmed, {
      threshold: 30,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.BREACHING,
      description:
        "A credit refresh slot was planned more than 30 minutes after it started, or the credit planner has completed no run for 10 minutes (failing or not running): see the planner's logs and the schedule DLQ, or run POST /admin/credits/refresh.",
    });
    // The worker counts a user as failed once, on its message's last receive (DLQ next),
    // so this is the share of users the refresh gave up on, not of deliveries retried.
    this.alarm('CreditRefreshFailureRate', failureRate, {
      threshold: 1,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'More than 1% of credit refreshes failed for good (every receive of their work failed) in five minutes.',
    });
    return {
      widgets: [
        graph('Credits: refreshes', [
          customMetric(METRIC.creditsPlanned, credits.planner),
          worker(METRIC.creditsRefreshed),
          worker(METRIC.creditsSkipped),
          worker(METRIC.creditsFailed),
        ]),
        // The day's 288 slots side by side, whatever the dashboard's time range.
        new GraphWidget({
          title: 'Credits: refreshes per 5-minute slot, last 24 h',
          left: [
            customMetric(METRIC.creditsPlanned, credits.planner),
            worker(METRIC.creditsRefreshed),
          ],
          start: '-PT24H',
          width: 8,
          height: 6,
        }),
        graph('Credits: slot lag (min)', [slotLag]),
        graph('Credits: queues', [
          credits.refreshQueue.queue.metricApproximateNumberOfMessagesVisible(perMinute),
          credits.refreshQueue.queue.metricApproximateNumberOfMessagesNotVisible(perMinute),
          refreshDlq,
          scheduleDlq,
        ]),
      ],
    };
  }

  /** Alarms of the penalties; returns their dashboard row. */
  private penaltyAlarms(penalties: WatchedPenalties): { widgets: GraphWidget[] } {
    const { api, admin, assessor, paymentConsumer, settlementSweeper } = penalties;
    const labelled = (name: string, fn: BillingFunction, label: string) =>
      customMetric(name, fn).with({ label });
    const hourly = { period: Duration.hours(1), statistic: 'Maximum' } as const;
    // Unlabelled in the alarm: a label would turn the alarm into metric math.
    const overdue = customMetric(METRIC.penaltyAssessmentOverdue, assessor).with(hourly);
    const scheduleDlq = penalties.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: 'Maximum',
    });
    const settlementFailures = customMetric(METRIC.penaltySettlementFailures, api);
    const overpaid = customMetric(METRIC.penaltiesOverpaid, paymentConsumer);
    const releaseFailures = customMetric(
      METRIC.penaltySettlementReleaseFailures,
      settlementSweeper,
    ).with({ period: Duration.hours(1) });
    // Every assessor run publishes 0 or 1, so an hour with no value means no run at all:
    // a stopped schedule, or an assessor that fails before it reports, is overdue too.
    this.alarm('PenaltyAssessmentOverdue', overdue, {
      threshold: 1,
      treatMissingData: TreatMissingData.BREACHING,
      description:
        "Yesterday's penalty assessment is not complete past the deadline hour, or the hourly assessor has stopped reporting: see the assessor's logs and the schedule DLQ, or run POST /admin/penalties/assess.",
    });
    this.alarm('PenaltyScheduleDeadLetterQueueNotEmpty', scheduleDlq, {
      threshold: 0,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'EventBridge Scheduler could not invoke the penalty assessor or the settlement sweeper.',
    });
    // The sweep runs hourly; one failed run is retried by the next.
    this.alarm('PenaltySettlementReleaseFailures', releaseFailures, {
      threshold: 1,
      operator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      description:
        'Abandoned settlements could not be released for three hourly runs (Stripe unavailable or refusing): their penalties stay pending. See the settlement sweeper logs.',
    });
    // One failure is a user retrying later (Stripe busy, a settlement still pending);
    // failures in three five-minute periods running mean settlement is broken.
    this.alarm('PenaltySettlementFailures', settlementFailures, {
      threshold: 0,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      description:
        'Penalty settlements have failed for 15 minutes (Stripe unavailable or refusing, e.g. the API key secret is still the placeholder).',
    });
    // Money owed back: rare, and a person decides (the refund command lists them first).
    this.alarm('PenaltiesOverpaid', overpaid, {
      threshold: 0,
      operator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'A settlement PaymentIntent paid penalties already waived or paid: a refund is due. List and issue it with `npm run ops -- refunds` (then `--issue`).',
    });
    return {
      widgets: [
        graph('Penalties: assessment', [
          labelled(METRIC.penaltyHabitsAssessed, assessor, 'habits assessed (scheduled)'),
          labelled(METRIC.penaltyHabitsAssessed, admin, 'habits assessed (on demand)'),
          labelled(METRIC.penaltiesCreated, assessor, 'penalties created (scheduled)'),
          labelled(METRIC.penaltiesCreated, admin, 'penalties created (on demand)'),
        ]),
        new GraphWidget({
          title: 'Penalties: assessment runs',
          left: [
            customMetric(METRIC.penaltyAssessmentDuration, assessor).with({
              statistic: 'Maximum',
              label: 'run time max (ms, scheduled)',
            }),
            customMetric(METRIC.penaltyAssessmentDuration, admin).with({
              statistic: 'Maximum',
              label: 'run time max (ms, on demand)',
            }),
          ],
          right: [overdue.with({ label: "yesterday's assessment overdue (1 = yes)" }), scheduleDlq],
          width: 8,
          height: 6,
        }),
        graph('Penalties: settlement and payment', [
          labelled(METRIC.penaltySettlements, api, 'settlements'),
          settlementFailures.with({ label: 'settlement failures' }),
          labelled(METRIC.penaltiesPaid, paymentConsumer, 'paid (PaymentIntent succeeded)'),
          labelled(METRIC.penaltiesPaid, admin, 'paid (marked by an operator)'),
          overpaid.with({ label: 'paid when already settled (refund due)' }),
          labelled(
            METRIC.penaltySettlementsReleased,
            settlementSweeper,
            'abandoned settlements released',
          ),
          labelled(
            METRIC.penaltySettlementReleaseFailures,
            settlementSweeper,
            'abandoned releases failed',
          ),
          labelled(METRIC.penaltiesPaid, settlementSweeper, 'paid (abandoned, paid at Stripe)'),
        ]),
      ],
    };
  }

  /** Stripe calls (read fallback, settlement): the breaker alarm and state, the calls' figures. */
  private stripeAlarms(stripe: NonNullable<ObservabilityProps['stripe']>): GraphWidget[] {
    const sum = (metricName: string, statistic = 'Sum') =>
      new MathExpression({
        expression: stripe.callers.map((_, i) => `FILL(m${i}, 0)`).join(' + '),
        usingMetrics: Object.fromEntries(
          stripe.callers.map((fn, i) => [
            `m${i}`,
            customMetric(metricName, fn).with({ statistic }),
          ]),
        ),
        label: metricName,
        period: FIVE_MINUTES,
      });
    this.alarm('StripeCircuitOpen', sum(METRIC.stripeCircuitOpened), {
      threshold: 1,
      description:
        'The Stripe circuit breaker opened: Stripe calls (read fallback, settlement) answer 503 until it closes. Check Stripe status and the API key secret.',
    });
    return [
      graph('Stripe: calls and fallback', [
        ...stripe.callers.map((fn) =>
          customMetric(METRIC.stripeCalls, fn).with({ label: `Stripe calls (${fn.serviceName})` }),
        ),
        customMetric(METRIC.subscriptionFallbackHits, stripe.subscriptionRead).with({
          label: 'read misses answered from Stripe',
        }),
        sum(METRIC.stripeCircuitRejected),
      ]),
      graph(
        'Stripe: call latency p99 (ms, retries included)',
        stripe.callers.map((fn) =>
          customMetric(METRIC.stripeCallLatency, fn).with({
            statistic: 'p99',
            label: fn.serviceName,
          }),
        ),
      ),
      // Each function's breaker is its own (one per warm process): one line each, the
      // worst state of the period. Published on transitions only, so gaps mean no change.
      new GraphWidget({
        title: 'Stripe: circuit breaker state (0 closed, 1 half-open, 2 open)',
        left: stripe.callers.map((fn) =>
          customMetric(METRIC.stripeCircuitState, fn).with({
            statistic: 'Maximum',
            label: fn.serviceName,
          }),
        ),
        leftYAxis: { min: 0, max: STRIPE_CIRCUIT_STATE_VALUE.open, showUnits: false },
        leftAnnotations: [{ value: STRIPE_CIRCUIT_STATE_VALUE.open, label: 'open' }],
        width: 8,
        height: 6,
      }),
    ];
  }

  private alarm(
    id: string,
    metric: IMetric,
    options: {
      threshold: number;
      description: string;
      operator?: ComparisonOperator;
      evaluationPeriods?: number;
      /** @default NOT_BREACHING */
      treatMissingData?: TreatMissingData;
    },
  ): Alarm {
    const alarm = new Alarm(this, id, {
      metric,
      threshold: options.threshold,
      comparisonOperator: options.operator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      // By default no data means no traffic (or no failures being reported), not an outage.
      treatMissingData: options.treatMissingData ?? TreatMissingData.NOT_BREACHING,
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
    dimensionsMap: { [METRIC_DIMENSION.service]: fn.serviceName },
    period: FIVE_MINUTES,
    statistic: 'Sum',
  });
}

/**
 * A metric published with an extra dimension (a rejection's `reason`, an unrouted
 * event's `eventType`) has no data under the service dimension alone: search every
 * value of that dimension instead.
 */
function searchByDimension(
  fn: BillingFunction,
  metricName: string,
  dimension: string,
): MathExpression {
  return new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},${dimension},${METRIC_DIMENSION.service}} MetricName="${metricName}" ${METRIC_DIMENSION.service}="${fn.serviceName}"', 'Sum', 300)`,
    label: '',
    period: FIVE_MINUTES,
  });
}

/**
 * A Sum metric as a rate: the graph reads events per second whatever period the
 * dashboard is zoomed to (CloudWatch widens the period over long ranges).
 */
function perSecond(metric: IMetric, label: string): MathExpression {
  // Ids are per graph: one from the label, `out of order` → `out_of_order`.
  const id = label.replace(/[^a-z0-9]+/g, '_');
  return new MathExpression({
    expression: `${id} / PERIOD(${id})`,
    usingMetrics: { [id]: metric },
    label,
    period: FIVE_MINUTES,
  });
}

/** `credit-refresh` → `CreditRefresh`: construct ids and titles from a queue's name. */
function pascalCase(name: string): string {
  return name
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}

function graph(title: string, metrics: IMetric[]): GraphWidget {
  return new GraphWidget({ title, left: metrics, width: 8, height: 6 });
}
