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
import type { UserSubscriptionView } from './core/customer-account.ts';
import type { UserViewReader } from './core/ports.ts';

export interface SubscriptionReadDeps {
  reader: UserViewReader;
  logger?: Logger;
  metrics?: Metrics;
}

/** App user ids: opaque, but bounded and free of characters that could alter a key. */
const USER_ID_RULE = 'must be 1-128 letters, digits or . _ : @ | + -';
const userIdSchema = z
  .string()
  .check(z.minLength(1), z.maxLength(128), z.regex(/^[A-Za-z0-9._:@|+-]+$/));

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
