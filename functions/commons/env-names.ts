/**
 * Environment variable names shared by the CDK constructs (lib/), the Lambda
 * handlers (functions/) and the local runtime (local/), so the three cannot drift.
 */
import type { EventFamilyName } from '../core/shared/event-families.ts';

export const ENV = {
  /** Single table holding profiles, customer accounts and subscription pointers (`pk`/`sk`). */
  billingTableName: 'BILLING_TABLE_NAME',
  /** The subscription ledger: one page per account commit (pk `customerId`, sk `revision`, TTL `expiresAt`). */
  subscriptionLedgerTableName: 'SUBSCRIPTION_LEDGER_TABLE_NAME',
  /** Payments, their charge pointers, ledger pages and daily summary shards (`pk`/`sk`). */
  paymentsTableName: 'PAYMENTS_TABLE_NAME',
  /** Standard SQS queue of the subscriptions family (fed by the webhook). */
  subscriptionEventsQueueUrl: 'SUBSCRIPTION_EVENTS_QUEUE_URL',
  /** Standard SQS queue of the payments family (fed by the webhook). */
  paymentEventsQueueUrl: 'PAYMENT_EVENTS_QUEUE_URL',
  /** Secrets Manager secret ARN holding the Stripe signing secret (deployed). */
  webhookSecretArn: 'STRIPE_WEBHOOK_SECRET_ARN',
  /** Plain signing secret, local runtime and tests only; never set by the stack. */
  webhookSecret: 'STRIPE_WEBHOOK_SECRET',
  /** Secrets Manager secret ARN holding the Stripe secret API key (deployed). */
  stripeApiKeySecretArn: 'STRIPE_API_KEY_SECRET_ARN',
  /** Plain Stripe secret API key, local runtime and tests only; never set by the stack. */
  stripeSecretKey: 'STRIPE_SECRET_KEY',
  /** Secrets Manager secret ARN holding the key the API seals its page cursors with (deployed). */
  cursorKeySecretArn: 'CURSOR_KEY_SECRET_ARN',
  /** Plain cursor signing key, local runtime and tests only; never set by the stack. */
  cursorSigningKey: 'CURSOR_SIGNING_KEY',
  /**
   * JSON array of the operator role ARNs (the `operatorRoleArns` context's, else the stack's
   * OperatorRole), on functions serving operator routes: always set, never empty, by the
   * stack; missing in Lambda, those routes are refused; unset only locally (no IAM) and in tests.
   */
  operatorRoleArns: 'OPERATOR_ROLE_ARNS',
  /** 'true' (live) or 'false' (test): the Stripe mode the webhook accepts events of; unset: no check. */
  stripeLivemode: 'STRIPE_LIVEMODE',
  /** Base URL of the Stripe API (default Stripe's own); locally and in tests, the fake Stripe. */
  stripeApiUrl: 'STRIPE_API_URL',
  /** JSON object price id -> tier, used when a price has no `metadata.tier`. */
  priceTierMap: 'PRICE_TIER_MAP',
  /** Standard SQS queue of credit refresh work (planner → worker). */
  creditRefreshQueueUrl: 'CREDIT_REFRESH_QUEUE_URL',
  /** JSON object tier -> daily credits (core/credits/allowances.ts). */
  creditAllowances: 'CREDIT_ALLOWANCES',
  /** The refresh queue's maxReceiveCount: the worker counts a failure as final on that receive. */
  creditRefreshMaxReceiveCount: 'CREDIT_REFRESH_MAX_RECEIVE_COUNT',
  /** Habits, verifications, penalties, summaries, recipients' totals and assessment progress (`pk`/`sk`). */
  penaltiesTableName: 'PENALTIES_TABLE_NAME',
  /** JSON object tier -> active free habits allowed (core/penalties/habits.ts). */
  freeHabitLimits: 'FREE_HABIT_LIMITS',
  /** UTC hour by which yesterday's assessment must be complete, else the overdue metric is 1. */
  assessmentDeadlineHour: 'PENALTY_ASSESSMENT_DEADLINE_HOUR',
  /** Days a ledger page is kept before DynamoDB TTL removes it. */
  ledgerRetentionDays: 'LEDGER_RETENTION_DAYS',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** The variable that carries each event family's queue URL to the webhook. */
export const EVENT_QUEUE_URL_ENV = {
  subscriptions: ENV.subscriptionEventsQueueUrl,
  payments: ENV.paymentEventsQueueUrl,
} as const satisfies Record<EventFamilyName, EnvName>;
