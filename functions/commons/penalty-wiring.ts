/**
 * Production wiring shared by the penalty functions: the DynamoDB penalty store (with
 * the billing table for profiles when the function is given it), from env. Built on
 * first use and reused while warm.
 */
import * as z from 'zod/mini';
import { DynamoDbPenaltyStore } from '../adapters/dynamodb/dynamodb-penalty-store.ts';
import { defaultDynamoDbClient } from './aws-clients.ts';
import { lazyEnv, requiredString } from './env.ts';
import { ENV } from './env-names.ts';
import { lazy } from './lazy.ts';
import { logger } from './powertools.ts';

const storeEnv = lazyEnv(
  z.object({
    [ENV.penaltiesTableName]: requiredString(),
    // The API's profiles (tier, customer, credits); the admin and assessor go without.
    [ENV.billingTableName]: z.optional(requiredString()),
  }),
);

/** A commit landed but its zero per-date counts stayed: harmless once, a sign of a missing grant if it repeats. */
export function logPruneFailure(error: unknown): void {
  logger.warn('Removing zero per-date unpaid counts failed; they stay on the account', {
    error,
  });
}

export const penaltyStoreFromEnv = lazy(() => {
  const env = storeEnv();
  return new DynamoDbPenaltyStore({
    client: defaultDynamoDbClient(),
    penaltiesTableName: env[ENV.penaltiesTableName],
    ...(env[ENV.billingTableName] ? { billingTableName: env[ENV.billingTableName] } : {}),
    onPruneFailure: logPruneFailure,
  });
});
