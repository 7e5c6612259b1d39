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

const storeEnv = lazyEnv(
  z.object({
    [ENV.penaltiesTableName]: requiredString(),
    // The API's profiles (tier, customer, credits); the admin and assessor go without.
    [ENV.billingTableName]: z.optional(requiredString()),
  }),
);

export const penaltyStoreFromEnv = lazy(() => {
  const env = storeEnv();
  return new DynamoDbPenaltyStore({
    client: defaultDynamoDbClient(),
    penaltiesTableName: env[ENV.penaltiesTableName],
    ...(env[ENV.billingTableName] ? { billingTableName: env[ENV.billingTableName] } : {}),
  });
});
