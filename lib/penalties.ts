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
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  PENALTY_STATUS_INDEX,
  PENDING_SETTLEMENT_INDEX,
} from '../functions/adapters/dynamodb/penalty-table-schema.ts';
import { ENV } from '../functions/commons/env-names.ts';
import { PENALTY_ROUTES } from '../functions/commons/routes.ts';
import type { FreeHabitLimits } from '../functions/core/penalties/habits.ts';
import { BillingFunction, type DynamoDbItemAction } from './billing-function.ts';
import type { BillingHttpApi, RouteThrottle } from './billing-http-api.ts';

/**
 * Hourly, at a quarter past (UTC). The assessor assesses yesterday and resumes where an
 * earlier run stopped, so the hourly runs finish a day too big for one run, and each
 * run publishes PenaltyAssessmentOverdue, which keeps the overdue alarm fed.
 */
export const PENALTY_ASSESSOR_SCHEDULE = 'cron(15 * * * ? *)';

/**
 * Hourly, at a quarter to (UTC), apart from the assessment's runs. A settlement counts
 * as abandoned an hour after it started, so a closed payment sheet is released within
 * two hours.
 */
export const PENALTY_SETTLEMENT_SWEEP_SCHEDULE = 'cron(45 * * * ? *)';

/**
 * What the assessment needs on the penalties table, whoever runs it (the schedule or
 * an operator): Query (the shard progress items; the sparse `byAssessment` index of
 * accounts), BatchGetItem (re-reading accounts after a conflict), and the one
 * TransactWriteItems per slice, which IAM authorises item by item: UpdateItem
 * (accounts with their habits and summary, shard progress) and PutItem (new
 * penalties). No GetItem, no DeleteItem, no billing table.
 * `test/integration/penalty-role-grants.test.ts` runs each role with exactly its list.
 */
export const PENALTY_ASSESSMENT_ACTIONS = [
  'Query',
  'BatchGetItem',
  'PutItem',
  'UpdateItem',
] as const satisfies readonly DynamoDbItemAction[];

/**
 * The admin function's needs: the assessment's, plus for mark-paid BatchGetItem (the
 * penalties named), UpdateItem (their status, summaries, totals) and GetItem: a commit
 * that brings a user's per-date unpaid counts to zero reads those counts back by key
 * (one consistent GetItem) and removes the zeros, so the account does not keep a count
 * for every date ever unpaid.
 */
export const PENALTY_ADMIN_ACTIONS = [
  ...PENALTY_ASSESSMENT_ACTIONS,
  'GetItem',
] as const satisfies readonly DynamoDbItemAction[];

/**
 * The payment consumer's needs on the penalties table when a penalty PaymentIntent
 * settles: BatchGetItem (the intent's penalties), UpdateItem (one transaction of updates:
 * status, summary, recipients' totals, the lock's release) and GetItem (the per-date
 * counts that commit brought to zero, read back to remove them, as for mark-paid).
 * Never credits, never the billing table.
 */
export const PAYMENT_CONSUMER_PENALTY_ACTIONS = [
  'BatchGetItem',
  'GetItem',
  'UpdateItem',
] as const satisfies readonly DynamoDbItemAction[];

/**
 * The user routes' needs on the penalties table: GetItem (the account with its habits
 * and summary, recipients' totals), Query (penalties by date in the user's partition or
 * by status on `byStatus`), BatchGetItem (the penalties a settlement re-reads),
 * UpdateItem (habits and verifications on the account, and every item of the
 * settlement transactions).
 * Nothing of the API ever puts a whole item, so no PutItem.
 */
export const PENALTY_API_ACTIONS = [
  'GetItem',
  'Query',
  'BatchGetItem',
  'UpdateItem',
] as const satisfies readonly DynamoDbItemAction[];

/**
 * What the sweep of abandoned settlements needs on the penalties table: Query (the
 * sparse `byPendingSettlement` index), GetItem (the account, re-read by key),
 * BatchGetItem (the settlement's penalties, re-read before they move) and UpdateItem
 * (every item of the transaction that releases the lock: penalties, summary, recipients'
 * totals). No PutItem, no billing table: a release spends no credits.
 */
export const PENALTY_SWEEP_ACTIONS = [
  'GetItem',
  'Query',
  'BatchGetItem',
  'UpdateItem',
] as const satisfies readonly DynamoDbItemAction[];

/**
 * The API's needs on the billing table: GetItem (the profile's tier, customer and
 * credits) and UpdateItem (the credits a settlement spends, a conditional decrement in
 * the settlement transaction). No Query: profiles are read by key.
 */
export const PENALTY_API_BILLING_ACTIONS = [
  'GetItem',
  'UpdateItem',
] as const satisfies readonly DynamoDbItemAction[];

export interface PenaltiesProps {
  readonly api: BillingHttpApi;
  /** Habits, penalties, summaries, recipients' totals and assessment progress. */
  readonly penaltiesTable: ITable;
  /** Profiles: the tier (free-habit limit), the Stripe customer, and the credits settlement spends. */
  readonly billingTable: ITable;
  /** The Stripe secret API key; only the API and the settlement sweeper may read it. */
  readonly stripeApiKey: ISecret;
  /** The key the penalties list's cursors are sealed with; only the API function may read it. */
  readonly cursorSigningKey: ISecret;
  readonly freeHabitLimits: FreeHabitLimits;
  /** UTC hour by which yesterday's assessment must be complete (1-23). */
  readonly assessmentDeadlineHour: number;
  /** Base URL of the Stripe API; unset: Stripe's own (the variable is then not set at all). */
  readonly stripeApiUrl?: string;
  /** @default 20 requests/s, burst 40 per route */
  readonly throttle?: RouteThrottle;
}

/**
 * Penalties (DESIGN §8.3): the user routes on one function (habits, verifications,
 * penalties and their summary, settlement through Stripe, recipients' totals), the
 * operators' routes on another (assess a date now, mark paid), the scheduled
 * assessor and the sweeper of abandoned settlements, each fired hourly by EventBridge
 * Scheduler (flexible window off, bounded retries, one DLQ for what still fails).
 * Every route requires IAM.
 */
export class Penalties extends Construct {
  public readonly api: BillingFunction;
  public readonly admin: BillingFunction;
  public readonly assessor: BillingFunction;
  public readonly schedule: Schedule;
  /** Releases abandoned settlements (their PaymentIntent never sends a webhook). */
  public readonly settlementSweeper: BillingFunction;
  public readonly settlementSweepSchedule: Schedule;
  /** Assessor and sweeper invocations Scheduler gave up on. */
  public readonly scheduleDeadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: PenaltiesProps) {
    super(scope, id);
    const { penaltiesTable } = props;

    this.api = new BillingFunction(this, 'Api', {
      entry: 'functions/penalty-api.ts',
      serviceName: 'penalty-api',
      description: 'Habits, verifications, penalties, settlement and recipients’ totals',
      // A settlement may wait out Stripe's 10 s deadline and still answer 503 itself,
      // inside the HTTP API's 30 s integration limit.
      timeout: Duration.seconds(29),
    })
      .bindTable(ENV.penaltiesTableName, penaltiesTable, PENALTY_API_ACTIONS, [
        PENALTY_STATUS_INDEX.indexName,
      ])
      .bindTable(ENV.billingTableName, props.billingTable, PENALTY_API_BILLING_ACTIONS)
      .bindSecretReader(ENV.stripeApiKeySecretArn, props.stripeApiKey)
      .bindSecretReader(ENV.cursorKeySecretArn, props.cursorSigningKey)
      .setEnvironment(ENV.freeHabitLimits, JSON.stringify(props.freeHabitLimits));
    if (props.stripeApiUrl) this.api.setEnvironment(ENV.stripeApiUrl, props.stripeApiUrl);

    this.admin = new BillingFunction(this, 'Admin', {
      entry: 'functions/penalty-admin.ts',
      serviceName: 'penalty-admin',
      description: 'Assesses a past date on demand, and marks penalties paid',
      // It stops taking assessment pages at 25 s and answers 202 with the totals so far.
      timeout: Duration.seconds(29),
    }).bindTable(ENV.penaltiesTableName, penaltiesTable, PENALTY_ADMIN_ACTIONS, [
      ACCOUNT_ASSESSMENT_INDEX.indexName,
    ]);

    this.assessor = new BillingFunction(this, 'Assessor', {
      entry: 'functions/penalty-assessor.ts',
      serviceName: 'penalty-assessor',
      description: "Assesses yesterday's habits (hourly, resumable) and reports when overdue",
      // It stops taking pages a minute before this; the next hourly run resumes.
      timeout: Duration.minutes(5),
    })
      .bindTable(ENV.penaltiesTableName, penaltiesTable, PENALTY_ASSESSMENT_ACTIONS, [
        ACCOUNT_ASSESSMENT_INDEX.indexName,
      ])
      .setEnvironment(ENV.assessmentDeadlineHour, String(props.assessmentDeadlineHour));

    this.settlementSweeper = new BillingFunction(this, 'SettlementSweeper', {
      entry: 'functions/penalty-settlement-sweeper.ts',
      serviceName: 'penalty-settlement-sweeper',
      description:
        'Releases abandoned penalty settlements (hourly): cancels at Stripe, back to unpaid',
      // It stops taking users a minute before this; the next hourly run takes the rest.
      timeout: Duration.minutes(5),
    })
      .bindTable(ENV.penaltiesTableName, penaltiesTable, PENALTY_SWEEP_ACTIONS, [
        PENDING_SETTLEMENT_INDEX.indexName,
      ])
      .bindSecretReader(ENV.stripeApiKeySecretArn, props.stripeApiKey);
    if (props.stripeApiUrl) {
      this.settlementSweeper.setEnvironment(ENV.stripeApiUrl, props.stripeApiUrl);
    }

    this.scheduleDeadLetterQueue = new Queue(this, 'ScheduleDeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // What the PenaltyScheduleDeadLetterQueueNotEmpty alarm points operators to.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // A missed run of either is made up by the next one an hour later: retry within the hour only.
    const hourlyTarget = (fn: BillingFunction) =>
      new LambdaInvoke(fn.function, {
        input: ScheduleTargetInput.fromObject({ scheduledTime: ContextAttribute.scheduledTime }),
        deadLetterQueue: this.scheduleDeadLetterQueue,
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
      });
    this.schedule = new Schedule(this, 'AssessorSchedule', {
      description: 'Penalty assessment of yesterday, hourly at a quarter past (resumes until done)',
      schedule: ScheduleExpression.expression(PENALTY_ASSESSOR_SCHEDULE),
      target: hourlyTarget(this.assessor),
    });
    this.settlementSweepSchedule = new Schedule(this, 'SettlementSweepSchedule', {
      description: 'Releases penalty settlements abandoned for an hour, hourly at a quarter to',
      schedule: ScheduleExpression.expression(PENALTY_SETTLEMENT_SWEEP_SCHEDULE),
      target: hourlyTarget(this.settlementSweeper),
    });

    const throttle = props.throttle ?? { rateLimit: 20, burstLimit: 40 };
    const routes: [string, HttpMethod, string, BillingFunction][] = [
      ['PutHabit', HttpMethod.PUT, PENALTY_ROUTES.habit, this.api],
      ['ListHabits', HttpMethod.GET, PENALTY_ROUTES.habits, this.api],
      ['PutVerification', HttpMethod.PUT, PENALTY_ROUTES.verification, this.api],
      ['ListPenalties', HttpMethod.GET, PENALTY_ROUTES.penalties, this.api],
      ['PenaltySummary', HttpMethod.GET, PENALTY_ROUTES.summary, this.api],
      ['SettlePenalties', HttpMethod.POST, PENALTY_ROUTES.settle, this.api],
      ['RecipientTotals', HttpMethod.GET, PENALTY_ROUTES.recipientTotals, this.api],
      ['AssessPenalties', HttpMethod.POST, PENALTY_ROUTES.assess, this.admin],
      ['MarkPenaltiesPaid', HttpMethod.POST, PENALTY_ROUTES.markPaid, this.admin],
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
