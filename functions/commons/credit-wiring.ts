/**
 * Production wiring shared by the credit functions (planner, admin, worker, read): the
 * DynamoDB credit store on the billing table and the SQS refresh queue, from env.
 * Built on first use and reused while warm.
 */
import * as z from 'zod/mini';
import { DynamoDbCreditStore } from '../adapters/dynamodb/dynamodb-credit-store.ts';
import { SqsRefreshQueue } from '../adapters/sqs/sqs-refresh-queue.ts';
import { defaultDynamoDbClient } from './aws-clients.ts';
import { lazyEnv, requiredString } from './env.ts';
import { ENV } from './env-names.ts';
import { lazy } from './lazy.ts';

const storeEnv = lazyEnv(z.object({ [ENV.billingTableName]: requiredString() }));
const queueEnv = lazyEnv(z.object({ [ENV.creditRefreshQueueUrl]: z.url() }));

/** The credit store (also the run log) on the billing table. */
export const creditStoreFromEnv = lazy(
  () =>
    new DynamoDbCreditStore({
      client: defaultDynamoDbClient(),
      billingTableName: storeEnv()[ENV.billingTableName],
    }),
);

/** The refresh work queue. */
export const refreshQueueFromEnv = lazy(
  () => new SqsRefreshQueue({ queueUrl: queueEnv()[ENV.creditRefreshQueueUrl] }),
);
