/**
 * The penalties routes of the app backend (DESIGN §8.3), one function: habits and
 * verifications, the user's penalties and unpaid summary, settlement, and recipients'
 * totals. Thin: parameters are checked here, the rules live in core/penalties/.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import type { CursorSeal } from './adapters/paging/cursor-seal.ts';
import { cursorCodec } from './adapters/paging/query-cursor.ts';
import { withStripeDeadline } from './adapters/stripe/stripe-resilience.ts';
import { cursorSealFromEnv } from './commons/cursor-wiring.ts';
import { freeHabitLimitsEnv, lazyEnv } from './commons/env.ts';
import { ENV } from './commons/env-names.ts';
import { HttpError, type HttpResponse, jsonResponse, NotFoundError } from './commons/http.ts';
import { lazy } from './commons/lazy.ts';
import { METRIC } from './commons/metric-names.ts';
import { type BaseHandler, withPowertools } from './commons/middleware.ts';
import { penaltyErrorResponse, recipientIdParam } from './commons/penalty-http.ts';
import { penaltyStoreFromEnv } from './commons/penalty-wiring.ts';
import { logger as sharedLogger, metrics as sharedMetrics } from './commons/powertools.ts';
import {
  cursorParam,
  dateParam,
  invalidParameter,
  limitParam,
  parseJsonBody,
  parseParams,
  parseQuery,
  userIdParam,
} from './commons/request-params.ts';
import { PENALTY_ROUTES, routePathOf } from './commons/routes.ts';
import { stripePenaltyGatewayFromEnv } from './commons/stripe-wiring.ts';
import {
  PenaltyConflictError,
  PenaltyNotFoundError,
  PenaltyRequestError,
} from './core/penalties/errors.ts';
import { type HabitPosition, pageOfHabits } from './core/penalties/habit-pages.ts';
import { type FreeHabitLimits, penaltyAmountProblem } from './core/penalties/habits.ts';
import { saveHabit, verifyHabit } from './core/penalties/manage-habits.ts';
import { HABIT_ID_PATTERN, HABIT_ID_RULE } from './core/penalties/penalty-ids.ts';
import {
  type Habit,
  PaymentRejectedError,
  PENALTY_FIELDS,
  PENALTY_STATUSES,
  type PenaltyAccount,
  type PenaltyField,
  type PenaltyPaymentGateway,
  type PenaltyStore,
} from './core/penalties/ports.ts';
import { MAX_PAYMENT_AMOUNT, settlePenalties } from './core/penalties/settlement.ts';
import { type Clock, systemClock } from './core/shared/clock.ts';
import { InvalidCursorError } from './core/shared/paging.ts';

export interface PenaltyApiDeps {
  store: PenaltyStore;
  /** Seals the cursors of the penalties list, so a forged or edited one is a 400. */
  cursors: CursorSeal;
  gateway: PenaltyPaymentGateway;
  freeHabitLimits: FreeHabitLimits;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
  /** The settle's Stripe calls, all together. Default SETTLE_STRIPE_DEADLINE_MS. */
  settleStripeDeadlineMs?: number;
}

/** A habit as the routes answer it: the settings still owed to past days are the assessment's. */
function habitAnswer({ earlierSettings: _owed, ...habit }: Habit): Omit<Habit, 'earlierSettings'> {
  return habit;
}

/** A habits page's cursor: bound to the user, at the last habit of the page. */
const habitsCursor = cursorCodec<{ userId: string }, HabitPosition>({
  scope: 'penalties.habits',
  params: (query) => ({ userId: query.userId }),
  parse: (position) => {
    const { createdAt, habitId } = (position ?? {}) as Partial<
      Record<keyof HabitPosition, unknown>
    >;
    return typeof createdAt === 'string' && typeof habitId === 'string'
      ? { createdAt, habitId }
      : undefined;
  },
  invalid: (reason) => new InvalidCursorError(reason),
});

/** A penalty is paid by one PaymentIntent at most: Stripe's largest amount. */
const MAX_PENALTY_AMOUNT = MAX_PAYMENT_AMOUNT;

const habitIdParam = () => z.string().check(z.regex(HABIT_ID_PATTERN, { message: HABIT_ID_RULE }));

/**
 * The currencies in use (ISO 4217, from the runtime's ICU data: no fund or test codes),
 * lower-case as Stripe writes them. Stripe itself refuses the few it does not settle in.
 */
const isoCurrencies = lazy(
  () => new Set(Intl.supportedValuesOf('currency').map((code) => code.toLowerCase())),
);

const habitBody = z.object({
  name: z.string().check(
    z.trim(),
    z.minLength(1, { message: 'must be 1-100 characters' }),
    z.maxLength(100, { message: 'must be 1-100 characters' }),
    // A name is shown in apps and e-mails: no line breaks, tabs or other control characters.
    z.regex(/^\P{Cc}*$/u, { message: 'must not contain control characters' }),
  ),
  penaltyAmount: z
    .int({ message: `must be a whole number of minor units from 0 to ${MAX_PENALTY_AMOUNT}` })
    .check(
      z.gte(0, {
        message: `must be a whole number of minor units from 0 to ${MAX_PENALTY_AMOUNT}`,
      }),
      z.lte(MAX_PENALTY_AMOUNT, {
        message: `must be a whole number of minor units from 0 to ${MAX_PENALTY_AMOUNT}`,
      }),
    ),
  currency: z.string().check(
    z.refine((code) => isoCurrencies().has(code), {
      message: 'must be a lower-case ISO 4217 currency code in use, e.g. usd',
    }),
  ),
  free: z.boolean({ message: 'must be true or false' }),
  recipientId: z.optional(z.nullable(recipientIdParam())),
  active: z.optional(z.boolean({ message: 'must be true or false' })),
});

const statusParam = () =>
  z.enum(PENALTY_STATUSES, { message: `must be one of ${PENALTY_STATUSES.join(', ')}` });

/** `fields=a,b`: a comma-separated subset of the penalty's attributes. */
function parseFields(raw: string | undefined): PenaltyField[] | undefined {
  if (raw === undefined) return undefined;
  const fields = raw.split(',').map((field) => field.trim());
  const unknown = fields.filter((field) => !(PENALTY_FIELDS as readonly string[]).includes(field));
  if (fields.length === 0 || unknown.length > 0 || fields.some((field) => field === '')) {
    throw invalidParameter(
      'fields',
      `must be a comma-separated list of ${PENALTY_FIELDS.join(', ')}`,
    );
  }
  return [...new Set(fields)] as PenaltyField[];
}

/** The API handler over explicit dependencies (a getter defers building them to the first call). */
export function createPenaltyApiHandler(
  deps: PenaltyApiDeps | (() => PenaltyApiDeps),
): BaseHandler<APIGatewayProxyEventV2, HttpResponse> {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return async (event) => {
    const resolved = resolve();
    const { store, clock = systemClock, logger = sharedLogger, metrics = sharedMetrics } = resolved;
    const route = routePathOf(event);
    try {
      const params = event.pathParameters ?? {};
      switch (route) {
        case PENALTY_ROUTES.habit: {
          parseQuery(event, z.object({}));
          const key = parseParams(
            z.object({ userId: userIdParam(), habitId: habitIdParam() }),
            params,
          );
          const body = parseJsonBody(event, habitBody);
          const amountProblem = penaltyAmountProblem(body);
          if (amountProblem) throw invalidParameter('penaltyAmount', amountProblem);
          const { habit, created } = await saveHabit(
            key,
            {
              name: body.name,
              penaltyAmount: body.penaltyAmount,
              currency: body.currency,
              free: body.free,
              // Left out: kept as the habit has them (saveHabit), not reset.
              ...(body.recipientId !== undefined ? { recipientId: body.recipientId } : {}),
              ...(body.active !== undefined ? { active: body.active } : {}),
            },
            { store, clock, freeHabitLimits: resolved.freeHabitLimits },
          );
          return jsonResponse(created ? 201 : 200, habitAnswer(habit));
        }
        case PENALTY_ROUTES.habits: {
          const query = parseQuery(event, z.object({ limit: limitParam(), cursor: cursorParam() }));
          const { userId } = parseParams(z.object({ userId: userIdParam() }), params);
          const opened = await resolved.cursors.open(route, query.cursor);
          const after = opened === undefined ? undefined : habitsCursor.decode({ userId }, opened);
          const [, habits] = await Promise.all([
            knownAccount(store, userId),
            store.listHabits(userId),
          ]);
          const page = pageOfHabits(habits, query.limit, after);
          const nextCursor = await resolved.cursors.seal(
            route,
            page.next ? habitsCursor.encode({ userId }, page.next) : null,
          );
          return jsonResponse(
            200,
            { items: page.items.map(habitAnswer), nextCursor },
            { 'cache-control': 'no-store' },
          );
        }
        case PENALTY_ROUTES.verification: {
          parseQuery(event, z.object({}));
          parseJsonBody(event, z.object({}));
          const { userId, habitId, date } = parseParams(
            z.object({ userId: userIdParam(), habitId: habitIdParam(), date: dateParam() }),
            params,
          );
          await verifyHabit({ userId, habitId }, date, { store, clock });
          return jsonResponse(200, { userId, habitId, date, verified: true });
        }
        case PENALTY_ROUTES.penalties: {
          const query = parseQuery(
            event,
            z.object({
              status: z.optional(statusParam()),
              limit: limitParam(),
              cursor: cursorParam(),
              fields: z.optional(z.string()),
            }),
          );
          const { userId } = parseParams(z.object({ userId: userIdParam() }), params);
          const fields = parseFields(query.fields);
          await knownAccount(store, userId);
          const cursor = await resolved.cursors.open(route, query.cursor);
          const page = await store.listPenalties({
            userId,
            limit: query.limit,
            ...(query.status ? { status: query.status } : {}),
            ...(cursor ? { cursor } : {}),
            ...(fields ? { fields } : {}),
          });
          const nextCursor = await resolved.cursors.seal(route, page.nextCursor);
          return jsonResponse(200, { ...page, nextCursor }, { 'cache-control': 'no-store' });
        }
        case PENALTY_ROUTES.summary: {
          parseQuery(event, z.object({}));
          const { userId } = parseParams(z.object({ userId: userIdParam() }), params);
          // Counts, amounts and the oldest date, all from the one account item.
          const account = await knownAccount(store, userId);
          return jsonResponse(
            200,
            {
              userId,
              unpaidCount: account.unpaidCount,
              unpaidAmount: account.unpaidAmount,
              oldestUnpaidDate: account.oldestUnpaidDate,
            },
            { 'cache-control': 'no-store' },
          );
        }
        case PENALTY_ROUTES.settle: {
          parseQuery(event, z.object({}));
          parseJsonBody(event, z.object({}));
          const { userId } = parseParams(z.object({ userId: userIdParam() }), params);
          try {
            const result = await withStripeDeadline(
              resolved.settleStripeDeadlineMs ?? SETTLE_STRIPE_DEADLINE_MS,
              () => settlePenalties(userId, { store, gateway: resolved.gateway, clock }),
            );
            metrics.addMetric(METRIC.penaltySettlements, MetricUnit.Count, 1);
            logger.info('Penalties settled', {
              userId,
              waived: result.waived.length,
              paid: result.payment?.penaltyIds.length ?? 0,
              paymentIntentId: result.payment?.paymentIntentId,
            });
            return jsonResponse(200, result);
          } catch (error) {
            if (isSettlementFailure(error)) {
              metrics.addMetric(METRIC.penaltySettlementFailures, MetricUnit.Count, 1);
            }
            throw error;
          }
        }
        case PENALTY_ROUTES.recipientTotals: {
          parseQuery(event, z.object({}));
          const { recipientId } = parseParams(
            z.object({ recipientId: recipientIdParam() }),
            params,
          );
          const totals = await store.recipientTotals(recipientId);
          return jsonResponse(200, totals ?? { recipientId, penaltiesPaid: 0, amounts: [] }, {
            'cache-control': 'no-store',
          });
        }
        default:
          throw new NotFoundError();
      }
    } catch (error) {
      return penaltyErrorResponse(error, logger);
    }
  };
}

/**
 * Whether a settle error counts as a PenaltySettlementFailure, the metric whose alarm
 * means "settlement is broken": Stripe unavailable (503: down, rate-limiting past the
 * retries, breaker open, the API key refused) and anything unexpected (500). A caller's
 * 4xx is not: an unknown user (404), a settlement still pending (a double click) or
 * penalties that moved while settling (409s that end by themselves), or those would
 * keep the alarm firing on routine traffic.
 *
 * Stripe refusing the PaymentIntent (409 payment_rejected) is counted: it is Stripe
 * turning down a request the suite built (an amount under its minimum, a currency the
 * account does not take, an idempotency key reused with other parameters), which no
 * retry fixes and which leaves the user unable to settle until someone acts. (Stripe's
 * 409 `idempotency_key_in_use`, the same settlement still in flight there, never gets
 * here: the call policy waits it out and the first answer is replayed.)
 */
/**
 * The Stripe calls of one settle, all together (an abandoned settlement's cancel and
 * retrieve, then the create, and its check): within the function's 29 s, with time left
 * for the writes that follow. Each call stops at it (the read path instead races its
 * lookup against its deadline; a settlement's writes follow its calls, so it must not
 * be left running behind an answer).
 */
const SETTLE_STRIPE_DEADLINE_MS = 20_000;

function isSettlementFailure(error: unknown): boolean {
  if (error instanceof PaymentRejectedError) return true;
  if (error instanceof HttpError) return error.statusCode >= 500;
  return !(
    error instanceof PenaltyNotFoundError ||
    error instanceof PenaltyConflictError ||
    error instanceof PenaltyRequestError
  );
}

/**
 * The user's penalties account; an empty one for a user with a billing profile but no
 * habit yet (known, just nothing to show, as the payments routes answer); 404 for a
 * user known to neither.
 */
async function knownAccount(store: PenaltyStore, userId: string): Promise<PenaltyAccount> {
  const account = await store.getAccount(userId);
  if (account) return account;
  if (!(await store.getUserBilling(userId)).hasProfile) throw unknownUser(userId);
  return {
    userId,
    habits: 0,
    freeHabits: 0,
    unpaidCount: 0,
    unpaidAmount: [],
    oldestUnpaidDate: null,
    pending: null,
  };
}

function unknownUser(userId: string): PenaltyNotFoundError {
  return new PenaltyNotFoundError(
    'user_not_found',
    `No habits or penalties are known for user ${userId}.`,
  );
}

const apiEnv = lazyEnv(z.object({ [ENV.freeHabitLimits]: freeHabitLimitsEnv() }));

const penaltyApiDepsFromEnv = lazy(
  (): PenaltyApiDeps => ({
    store: penaltyStoreFromEnv(),
    cursors: cursorSealFromEnv(),
    gateway: stripePenaltyGatewayFromEnv(),
    freeHabitLimits: apiEnv()[ENV.freeHabitLimits],
  }),
);

export const handler = withPowertools(createPenaltyApiHandler(penaltyApiDepsFromEnv));
