/**
 * Environment variable names shared by the CDK constructs (lib/), the Lambda
 * handlers (functions/) and the local runtime (local/), so the three cannot drift.
 */
export const ENV = {
  /** Single table holding profiles, customers, subscription pointers. */
  billingTableName: 'BILLING_TABLE_NAME',
  /** Events ledger table (pk `eventId`, TTL attribute `expiresAt`). */
  eventsTableName: 'EVENTS_TABLE_NAME',
  /** Standard SQS queue that the webhook Lambda feeds. */
  eventQueueUrl: 'EVENT_QUEUE_URL',
  /** Secrets Manager secret ARN holding the Stripe signing secret (deployed). */
  webhookSecretArn: 'STRIPE_WEBHOOK_SECRET_ARN',
  /** Plain signing secret, local runtime and tests only; never set by the stack. */
  webhookSecret: 'STRIPE_WEBHOOK_SECRET',
  /** JSON object price id -> tier, used when a price has no `metadata.tier`. */
  priceTierMap: 'PRICE_TIER_MAP',
  /** Days an events-ledger entry is kept before DynamoDB TTL removes it. */
  ledgerRetentionDays: 'LEDGER_RETENTION_DAYS',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
