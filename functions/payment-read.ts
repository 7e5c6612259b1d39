/**
 * The payment lookups and reports of DESIGN §8.1, one function for the five GET
 * routes: a payment by `pi_…`/`ch_…` id, a user's history, refunds by date, payments
 * by status and paid date, and the daily summary. Each is one key lookup or index
 * query behind `PaymentQueries`; this file only validates, calls and maps.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { DynamoDbPaymentStore } from './adapters/dynamodb/dynamodb-payment-store.ts';
import { DynamoDbUserProfiles } from './adapters/dynamodb/dynamodb-user-profiles.ts';
import type { CursorSeal } from './adapters/paging/cursor-seal.ts';
import { defaultDynamoDbClient } from './commons/aws-clients.ts';
import { cursorSealFromEnv } from './commons/cursor-wiring.ts';
import { lazyEnv, requiredString } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import {
  type HttpResponse,
  jsonResponse,
  MethodNotAllowedError,
  NotFoundError,
  toHttpErrorResponse,
} from './commons/http.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { operatorRoutesGuard } from './commons/operator-access.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import {
  checkDateRange,
  cursorParam,
  dateParam,
  limitParam,
  parseParams,
  parseQuery,
  userIdParam,
} from './commons/request-params.ts';
import { PAYMENT_ROUTES, routePathOf } from './commons/routes.ts';
import {
  PAID_STATUSES,
  PAYMENT_STATUSES,
  type Page,
  type PaymentQueries,
  type PaymentView,
  type UserProfiles,
} from './core/payments/ports.ts';

export interface PaymentReadDeps {
  queries: PaymentQueries;
  /** Tells an unknown user (404) from one with no payments (an empty list). */
  profiles: UserProfiles;
  /** Seals the cursors the lists hand out, so a forged or edited one is a 400. */
  cursors: CursorSeal;
  logger?: Logger;
  metrics?: Metrics;
}

/** Longest report range, in days (a quarter): bounds the index partitions one request reads. */
export const MAX_REPORT_DAYS = 92;

const statusParam = () =>
  z.enum(PAYMENT_STATUSES, { message: `must be one of ${PAYMENT_STATUSES.join(', ')}` });
/** Reconciliation reads payments by paid date: a status no paid payment has is a mistake, not an empty report. */
const paidStatusParam = () =>
  z.enum(PAID_STATUSES, {
    message: `must be one of ${PAID_STATUSES.join(', ')} (processing, failed and canceled payments have no paid date)`,
  });
const paymentIdParam = () =>
  z
    .string()
    .check(
      z.maxLength(255, { message: 'must be a pi_… or ch_… id' }),
      z.regex(/^(pi|ch)_[A-Za-z0-9_]+$/, { message: 'must be a pi_… or ch_… id' }),
    );
const noQuery = z.object({});

const listFields = { limit: limitParam(), cursor: cursorParam() };

type Route = (
  event: APIGatewayProxyEventV2,
  deps: { queries: PaymentQueries; profiles: UserProfiles; list: PagedList },
) => Promise<unknown>;

/** Runs one list query: the caller's cursor opened for the route, the next one sealed for it. */
type PagedList = <Q extends { cursor?: string }>(
  query: Q,
  read: (query: Q) => Promise<Page<PaymentView>>,
) => Promise<ReturnType<typeof toPageBody>>;

/** A payment as the routes answer it: the fields of DESIGN §8.1, in its order. */
export function toPaymentBody(view: PaymentView) {
  return {
    paymentId: view.paymentId,
    chargeId: view.chargeId,
    userId: view.userId,
    customerId: view.customerId,
    amount: view.amount,
    amountRefunded: view.amountRefunded,
    currency: view.currency,
    status: view.status,
    purpose: view.purpose,
    penaltyIds: view.penaltyIds,
    createdAt: view.createdAt,
    paidAt: view.paidAt,
    refundedAt: view.refundedAt,
    failureCode: view.failureCode,
    dispute: view.dispute
      ? { status: view.dispute.status, reason: view.dispute.reason, amount: view.dispute.amount }
      : null,
  };
}

function toPageBody(page: Page<PaymentView>) {
  return { items: page.items.map(toPaymentBody), nextCursor: page.nextCursor };
}

const ROUTES: Record<string, Route> = {
  [PAYMENT_ROUTES.payment]: async (event, { queries }) => {
    parseQuery(event, noQuery);
    const { id } = parseParams(z.object({ id: paymentIdParam() }), event.pathParameters ?? {});
    const payment = await queries.getPayment(id);
    if (!payment) throw new NotFoundError(`No payment ${id}.`, { code: 'payment_not_found' });
    return toPaymentBody(payment);
  },
  [PAYMENT_ROUTES.userPayments]: async (event, { queries, profiles, list }) => {
    const { userId } = parseParams(z.object({ userId: userIdParam() }), event.pathParameters ?? {});
    const query = parseQuery(event, z.object({ ...listFields, status: z.optional(statusParam()) }));
    const page = await list({ userId, ...definedOnly(query) }, (q) => queries.listUserPayments(q));
    // An empty first page: a user with no payments (of that status), or no user at all.
    if (page.items.length === 0 && query.cursor === undefined) {
      const known =
        (await profiles.exists(userId)) ||
        (query.status !== undefined &&
          (await queries.listUserPayments({ userId, limit: 1 })).items.length > 0);
      if (!known) {
        throw new NotFoundError(`No payments and no profile are known for user ${userId}.`, {
          code: 'user_not_found',
        });
      }
    }
    return page;
  },
  [PAYMENT_ROUTES.refundsReport]: async (event, { queries, list }) => {
    const query = parseQuery(
      event,
      z.object({ ...listFields, from: dateParam(), to: dateParam() }),
    );
    checkDateRange(query.from, query.to, { from: 'from', to: 'to' }, MAX_REPORT_DAYS);
    return list(definedOnly(query), (q) => queries.listRefunds(q));
  },
  [PAYMENT_ROUTES.paymentsReport]: async (event, { queries, list }) => {
    const query = parseQuery(
      event,
      z.object({
        ...listFields,
        status: paidStatusParam(),
        paidFrom: dateParam(),
        paidTo: dateParam(),
      }),
    );
    checkDateRange(
      query.paidFrom,
      query.paidTo,
      { from: 'paidFrom', to: 'paidTo' },
      MAX_REPORT_DAYS,
    );
    return list(definedOnly(query), (q) => queries.listPaid(q));
  },
  [PAYMENT_ROUTES.dailySummary]: async (event, { queries }) => {
    const { date } = parseQuery(event, z.object({ date: dateParam() }));
    return { date, rows: await queries.dailySummary(date) };
  },
};

/** The route an event is for: `routeKey` when API Gateway matched one, else the raw path. */
function knownRoutePath(event: APIGatewayProxyEventV2): string | undefined {
  const path = routePathOf(event);
  return path && Object.hasOwn(ROUTES, path) ? path : undefined;
}

/** Drops undefined members: `exactOptionalPropertyTypes`-safe spreading into a query. */
function definedOnly<T extends Record<string, unknown>>(value: T) {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/** The handler over explicit dependencies (a getter defers building them to the first call). */
export function createPaymentReadHandler(
  deps: PaymentReadDeps | (() => PaymentReadDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const {
      queries,
      profiles,
      cursors,
      logger = sharedLogger,
      metrics = sharedMetrics,
    } = resolve();
    try {
      const method = event.requestContext?.http?.method?.toUpperCase();
      if (method !== 'GET') throw new MethodNotAllowedError(['GET']);
      const path = knownRoutePath(event);
      if (!path) throw new NotFoundError();
      const list: PagedList = async (query, read) => {
        const cursor = await cursors.open(path, query.cursor);
        const page = await read(cursor === undefined ? query : { ...query, cursor });
        return toPageBody({ ...page, nextCursor: await cursors.seal(path, page.nextCursor) });
      };
      const body = await ROUTES[path]!(event, { queries, profiles, list });
      metrics.addMetric(METRIC.paymentReads, MetricUnit.Count, 1);
      return jsonResponse(200, body, { 'cache-control': 'no-store' });
    } catch (error) {
      return toHttpErrorResponse(error, logger);
    }
  };
}

const readEnv = lazyEnv(
  z.object({
    [ENV.paymentsTableName]: requiredString(),
    [ENV.billingTableName]: requiredString(),
  }),
);

/** Production wiring from env, built on the first invocation and reused while warm. */
const defaultDeps = lazy((): PaymentReadDeps => {
  const env = readEnv();
  const client = defaultDynamoDbClient();
  return {
    queries: new DynamoDbPaymentStore({ client, paymentsTableName: env[ENV.paymentsTableName] }),
    profiles: new DynamoDbUserProfiles({ client, billingTableName: env[ENV.billingTableName] }),
    cursors: cursorSealFromEnv(),
  };
});

// The reports are the operators' routes; the lookups and the user history the app backend's.
export const handler = withPowertools(operatorRoutesGuard(createPaymentReadHandler(defaultDeps)));
