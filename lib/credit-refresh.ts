import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import {
  ContextAttribute,
  Schedule,
  ScheduleExpression,
  ScheduleTargetInput,
} from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CREDIT_SLOT_INDEX } from '../functions/adapters/dynamodb/credit-table-schema.ts';
import { ENV } from '../functions/commons/env-names.ts';
import { CREDIT_ROUTES } from '../functions/commons/routes.ts';
import type { CreditAllowances } from '../functions/core/credits/allowances.ts';
import { BillingFunction } from './billing-function.ts';
import type { BillingHttpApi, RouteThrottle } from './billing-http-api.ts';
import type { ConsumedQueue } from './event-family-queue.ts';

/** Every five minutes on the clock, so each run starts at a slot boundary (00:00, 00:05...). */
export const CREDIT_PLANNER_SCHEDULE = 'cron(0/5 * * * ? *)';

export interface CreditRefreshProps {
  readonly api: BillingHttpApi;
  /** Profiles (credits, tier, slot) and the run log live here; the slot index is on it. */
  readonly billingTable: ITable;
  readonly refreshQueue: ConsumedQueue;
  readonly allowances: CreditAllowances;
  /** @default 20 requests/s, burst 40 per route */
  readonly throttle?: RouteThrottle;
}

/**
 * The daily credit refresh (DESIGN §8.2): an EventBridge Scheduler schedule fires the
 * planner every five minutes (flexible window off, bounded retries, a DLQ for what
 * still fails); the planner pages through the due slots' users on the slot index and
 * enqueues refresh work; the worker refreshes each user with one conditional write.
 * Plus the credits routes: the user's credits, and the operators' stats and "run now".
 */
export class CreditRefresh extends Construct {
  public readonly planner: BillingFunction;
  public readonly worker: BillingFunction;
  public readonly reader: BillingFunction;
  public readonly admin: BillingFunction;
  public readonly schedule: Schedule;
  /** Planner invocations Scheduler gave up on. */
  public readonly scheduleDeadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: CreditRefreshProps) {
    super(scope, id);
    const { billingTable, refreshQueue } = props;
    const allowances = JSON.stringify(props.allowances);

    // Reads the slot index and the run log, records runs, enqueues work.
    const plannerGrants = ['Query', 'GetItem', 'UpdateItem'] as const;
    this.planner = new BillingFunction(this, 'Planner', {
      entry: 'functions/credit-planner.ts',
      serviceName: 'credit-planner',
      description: 'Plans the due credit refresh slots and enqueues their users',
      timeout: Duration.minutes(2),
    })
      .bindTable(ENV.billingTableName, billingTable, plannerGrants, [CREDIT_SLOT_INDEX.indexName])
      .bindQueueSender(ENV.creditRefreshQueueUrl, refreshQueue.queue);

    this.worker = new BillingFunction(this, 'Worker', {
      entry: 'functions/credit-worker.ts',
      serviceName: 'credit-worker',
      description: 'Refreshes users’ daily credits, once per user per day',
      timeout: refreshQueue.consumer.timeout,
      memorySize: refreshQueue.consumer.memorySize,
    })
      // One conditional UpdateItem per user; GetItem after a tier change; the run log.
      .bindTable(ENV.billingTableName, billingTable, ['GetItem', 'UpdateItem', 'PutItem'])
      .setEnvironment(ENV.creditAllowances, allowances)
      .bindQueueConsumer(refreshQueue);
    // The worker counts a user's failure once, on the message's last receive before the DLQ.
    this.worker.function.addEnvironment(
      ENV.creditRefreshMaxReceiveCount,
      String(refreshQueue.maxReceiveCount),
    );

    this.reader = new BillingFunction(this, 'Reader', {
      entry: 'functions/credit-read.ts',
      serviceName: 'credit-read',
      description: "Returns a user's credits",
    })
      .bindTable(ENV.billingTableName, billingTable, ['GetItem'])
      .setEnvironment(ENV.creditAllowances, allowances);

    this.admin = new BillingFunction(this, 'Admin', {
      entry: 'functions/credit-admin.ts',
      serviceName: 'credit-admin',
      description: 'Credit refresh stats, and running the planner on demand',
      timeout: Duration.seconds(29),
    })
      .bindTable(ENV.billingTableName, billingTable, plannerGrants, [CREDIT_SLOT_INDEX.indexName])
      .bindQueueSender(ENV.creditRefreshQueueUrl, refreshQueue.queue);

    this.scheduleDeadLetterQueue = new Queue(this, 'ScheduleDeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // What the CreditScheduleDeadLetterQueueNotEmpty alarm points operators to.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.schedule = new Schedule(this, 'PlannerSchedule', {
      description: 'Credit refresh planner, every five minutes',
      schedule: ScheduleExpression.expression(CREDIT_PLANNER_SCHEDULE),
      target: new LambdaInvoke(this.planner.function, {
        input: ScheduleTargetInput.fromObject({ scheduledTime: ContextAttribute.scheduledTime }),
        deadLetterQueue: this.scheduleDeadLetterQueue,
        // A missed run is caught up by the next one five minutes later: retry briefly only.
        retryAttempts: 2,
        maxEventAge: Duration.minutes(5),
      }),
    });

    const throttle = props.throttle ?? { rateLimit: 20, burstLimit: 40 };
    const routes: [string, HttpMethod, string, BillingFunction][] = [
      ['UserCredits', HttpMethod.GET, CREDIT_ROUTES.userCredits, this.reader],
      ['CreditStats', HttpMethod.GET, CREDIT_ROUTES.stats, this.admin],
      ['CreditRefreshNow', HttpMethod.POST, CREDIT_ROUTES.refresh, this.admin],
    ];
    for (const [routeId, method, path, fn] of routes) {
      props.api.addRoute(routeId, {
        method,
        path,
        handler: fn.function,
        authorizer: new HttpIamAuthorizer(),
        throttle,
      });
    }
  }
}
