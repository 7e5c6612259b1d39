/**
 * `GET /users/{userId}/subscription`: the user's tier and current subscription,
 * from one DynamoDB key lookup of the profile item. No Stripe call.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { DynamoDbUserViewReader } from './adapters/dynamodb/dynamodb-subscription-store.ts';
import { defaultDynamoDbClient } from './commons/aws-clients.ts';
import { lazyEnv, requiredString } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import {
  BadRequestError,
  type HttpResponse,
  jsonResponse,
  MethodNotAllowedError,
  NotFoundError,
  toHttpErrorResponse,
} from './commons/http.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import { USER_ID_RULE, userIdParam } from './commons/request-params.ts';
import type { UserSubscriptionView } from './core/subscriptions/customer-account.ts';
import type { UserViewReader } from './core/subscriptions/ports.ts';

export interface SubscriptionReadDeps {
  reader: UserViewReader;
  logger?: Logger;
  metrics?: Metrics;
}

const userIdSchema = userIdParam();

/** The JSON the read API answers with. */
export function toResponseBody(view: UserSubscriptionView) {
  return {
    userId: view.userId,
    tier: view.tier,
    status: view.status,
    stripeCustomerId: view.stripeCustomerId,
    subscriptionId: view.subscriptionId,
    priceId: view.priceId,
    currentPeriodEnd:
      view.currentPeriodEnd === null ? null : new Date(view.currentPeriodEnd * 1000).toISOString(),
    cancelAtPeriodEnd: view.cancelAtPeriodEnd,
    latestInvoiceOutcome: view.latestInvoiceOutcome,
  };
}

export function createSubscriptionReadHandler(
  deps: SubscriptionReadDeps | (() => SubscriptionReadDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const { reader, logger = sharedLogger, metrics = sharedMetrics } = resolve();
    try {
      const method = event.requestContext?.http?.method?.toUpperCase();
      if (method !== 'GET') throw new MethodNotAllowedError(['GET']);
      const parsed = z.safeParse(userIdSchema, event.pathParameters?.userId ?? '');
      if (!parsed.success) {
        throw new BadRequestError(`userId ${USER_ID_RULE}.`, { code: 'invalid_user_id' });
      }
      const view = await reader.getUserView(parsed.data);
      if (!view) {
        metrics.addMetric(METRIC.subscriptionReadMisses, MetricUnit.Count, 1);
        throw new NotFoundError(`No subscription is known for user ${parsed.data}.`, {
          code: 'user_not_found',
        });
      }
      metrics.addMetric(METRIC.subscriptionReads, MetricUnit.Count, 1);
      return jsonResponse(200, toResponseBody(view), { 'cache-control': 'no-store' });
    } catch (error) {
      return toHttpErrorResponse(error, logger);
    }
  };
}

const readEnv = lazyEnv(z.object({ [ENV.billingTableName]: requiredString() }));

/** Production wiring from env, built on the first invocation and reused while warm. */
const defaultDeps = lazy(
  (): SubscriptionReadDeps => ({
    reader: new DynamoDbUserViewReader({
      client: defaultDynamoDbClient(),
      billingTableName: readEnv()[ENV.billingTableName],
    }),
  }),
);

export const handler = withPowertools(createSubscriptionReadHandler(defaultDeps));
