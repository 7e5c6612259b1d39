/**
 * The payments read API (DESIGN §8.1) over the in-memory store, filled by the real
 * use case (`applyPaymentEvents`) from re-stamped real Stripe payloads: every route's
 * answer field by field, paging to the end, filters, and every bad input answered
 * with the right status and a `{"error":{"code","message"}}` that names the field.
 */
import {
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { InMemoryPaymentStore } from '../../functions/adapters/memory/in-memory-payment-store.ts';
import { CursorSeal } from '../../functions/adapters/paging/cursor-seal.ts';
import { ServiceUnavailableError } from '../../functions/commons/http.ts';
import { USER_ID_RULE } from '../../functions/commons/request-params.ts';
import { PAYMENT_ROUTES } from '../../functions/commons/routes.ts';
import { applyPaymentEvents } from '../../functions/core/payments/apply-payment-events.ts';
import { PAYMENT_STATUSES, type UserProfiles } from '../../functions/core/payments/ports.ts';
import { systemClock } from '../../functions/core/shared/clock.ts';
import { createPaymentReadHandler, MAX_REPORT_DAYS } from '../../functions/payment-read.ts';
import { httpApiEvent } from '../helpers/apigw-events.ts';
import { testCursorSeal } from '../helpers/cursor-seal.ts';
import { PAYMENT_FIELDS } from '../helpers/payment-contract.ts';
import {
  chargeRefundedEvent,
  chargeSucceededEvent,
  disputeCreatedEvent,
  expectedPaymentView,
  fixturePayment,
  intentCreatedEvent,
  intentFailedEvent,
  intentSucceededEvent,
  isoOf,
  type PaymentEventBody,
  secondsOf,
  uniquePaymentTag,
} from '../helpers/payment-fixture-events.ts';

const context = { functionName: 'payment-read', awsRequestId: 'test' } as Context;

/** What a DynamoDB error message may carry that a caller must never see. */
const DYNAMO_INTERNALS =
  'arn:aws:dynamodb:eu-west-1:123456789012:table/billing-payments/index/byStatusPaid';

const tag = uniquePaymentTag();
const U1 = `user-u1-${tag}`;
const U2 = `user-u2-${tag}`;
const at = (iso: string) => secondsOf(iso);

// U1: a penalty payment, a partially refunded one, a failed one, a refunded subscription payment.
const p1 = fixturePayment({
  userId: U1,
  customerId: `cus_u1${tag}`,
  amount: 2000,
  purpose: 'penalty',
  penaltyIds: ['pen_a', 'pen_b'],
  created: at('2026-03-01T09:00:00Z'),
});
const p2 = fixturePayment({
  userId: U1,
  customerId: `cus_u1${tag}`,
  amount: 5000,
  created: at('2026-03-02T10:00:00Z'),
});
const p3 = fixturePayment({
  userId: U1,
  customerId: `cus_u1${tag}`,
  amount: 1000,
  created: at('2026-03-03T11:00:00Z'),
});
const p4 = fixturePayment({
  userId: U1,
  customerId: `cus_u1${tag}`,
  amount: 1200,
  purpose: 'subscription',
  created: at('2026-03-04T12:00:00Z'),
});
// U2: a euro payment and a disputed one.
const q1 = fixturePayment({
  userId: U2,
  customerId: `cus_u2${tag}`,
  amount: 3000,
  currency: 'eur',
  created: at('2026-03-02T08:00:00Z'),
});
const d1 = fixturePayment({
  userId: U2,
  customerId: `cus_u2${tag}`,
  amount: 2500,
  created: at('2026-03-04T15:00:00Z'),
});
// A charge without a PaymentIntent, and without a user: keyed by its charge id.
const s1Charge = `ch_solo${tag}`;
const s1 = fixturePayment({
  paymentId: s1Charge,
  chargeId: s1Charge,
  amount: 700,
  created: at('2026-03-02T09:30:00Z'),
  chargeCreated: at('2026-03-02T09:30:00Z'),
});

const p2Refund = { refundId: `re_p2${tag}`, amount: 1500, created: at('2026-03-05T08:00:00Z') };
const p4Refund = { refundId: `re_p4${tag}`, amount: 1200, created: at('2026-03-06T07:00:00Z') };
const d1DisputedAt = at('2026-03-07T10:00:00Z');

const history: PaymentEventBody[] = [
  intentCreatedEvent(p1),
  intentSucceededEvent(p1),
  intentCreatedEvent(p2),
  intentSucceededEvent(p2),
  chargeRefundedEvent(p2, p2Refund.created, [p2Refund]),
  intentCreatedEvent(p3),
  intentFailedEvent(p3, p3.created + 120, 'card_declined'),
  intentCreatedEvent(p4),
  intentSucceededEvent(p4),
  chargeRefundedEvent(p4, p4Refund.created, [p4Refund]),
  intentCreatedEvent(q1),
  intentSucceededEvent(q1),
  intentCreatedEvent(d1),
  intentSucceededEvent(d1),
  disputeCreatedEvent(d1, d1DisputedAt, { reason: 'product_not_received' }),
  chargeSucceededEvent(s1),
];

const views = {
  p1: expectedPaymentView(p1),
  p2: expectedPaymentView(p2, {
    status: 'partially_refunded',
    amountRefunded: 1500,
    refundedAt: isoOf(p2Refund.created),
  }),
  p3: expectedPaymentView(p3, { status: 'failed', paidAt: null, failureCode: 'card_declined' }),
  p4: expectedPaymentView(p4, {
    status: 'refunded',
    amountRefunded: 1200,
    refundedAt: isoOf(p4Refund.created),
  }),
  q1: expectedPaymentView(q1),
  d1: expectedPaymentView(d1, {
    status: 'disputed',
    dispute: { status: 'needs_response', reason: 'product_not_received', amount: 2500 },
  }),
  s1: expectedPaymentView(s1),
};

let store: InMemoryPaymentStore;
let read: ReturnType<typeof createPaymentReadHandler>;

beforeAll(async () => {
  store = new InMemoryPaymentStore();
  // One record per event, in Stripe's order, in two batches (the second folds over the first).
  const events = history.map((event, index) => ({
    recordId: `rec-${index}`,
    body: JSON.stringify(event),
    receivedAt: Date.now(),
  }));
  for (const batch of [events.slice(0, 7), events.slice(7)]) {
    const outcomes = await applyPaymentEvents(batch, {
      store,
      directory: store,
      clock: systemClock,
    });
    expect([...outcomes.values()].map((outcome) => outcome.status)).toEqual(
      batch.map(() => 'applied'),
    );
  }
  read = createPaymentReadHandler({
    queries: store,
    profiles: profilesOf([PROFILE_ONLY]),
    cursors: testCursorSeal(),
  });
});

interface Request {
  method?: string;
  route: string;
  path: string;
  pathParameters?: Record<string, string>;
  query?: Record<string, string>;
}

/** Sends `request` (GET unless it says otherwise) to `handler`. */
function send(handler: typeof read, request: Request) {
  const method = request.method ?? 'GET';
  return handler(
    httpApiEvent({
      method,
      path: request.path,
      routeKey: `${method} ${request.route}`,
      ...(request.pathParameters ? { pathParameters: request.pathParameters } : {}),
      ...(request.query ? { queryStringParameters: request.query } : {}),
    }),
    context,
  );
}

async function call(request: Request) {
  const response = await send(read, request);
  return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
}

/** One valid request of every route (the history with and without a status). */
const EVERY_ROUTE: readonly Request[] = [
  { route: '/payments/{id}', path: '/payments/pi_1', pathParameters: { id: 'pi_1' } },
  { route: '/payments/{id}', path: '/payments/ch_1', pathParameters: { id: 'ch_1' } },
  {
    route: '/users/{userId}/payments',
    path: `/users/${U1}/payments`,
    pathParameters: { userId: U1 },
  },
  {
    route: '/users/{userId}/payments',
    path: `/users/${U1}/payments`,
    pathParameters: { userId: U1 },
    query: { status: 'succeeded' },
  },
  {
    route: '/reports/refunds',
    path: '/reports/refunds',
    query: { from: '2026-03-01', to: '2026-03-02' },
  },
  {
    route: '/reports/payments',
    path: '/reports/payments',
    query: { status: 'succeeded', paidFrom: '2026-03-01', paidTo: '2026-03-02' },
  },
  {
    route: '/reports/daily-summary',
    path: '/reports/daily-summary',
    query: { date: '2026-03-02' },
  },
];

const getPayment = (id: string, query?: Record<string, string>) =>
  call({
    route: '/payments/{id}',
    path: `/payments/${encodeURIComponent(id)}`,
    pathParameters: { id },
    ...(query ? { query } : {}),
  });
const userPayments = (userId: string, query?: Record<string, string>) =>
  call({
    route: '/users/{userId}/payments',
    path: `/users/${encodeURIComponent(userId)}/payments`,
    pathParameters: { userId },
    ...(query ? { query } : {}),
  });
const refundsReport = (query?: Record<string, string>) =>
  call({ route: '/reports/refunds', path: '/reports/refunds', ...(query ? { query } : {}) });
const paymentsReport = (query?: Record<string, string>) =>
  call({ route: '/reports/payments', path: '/reports/payments', ...(query ? { query } : {}) });
const dailySummary = (query?: Record<string, string>) =>
  call({
    route: '/reports/daily-summary',
    path: '/reports/daily-summary',
    ...(query ? { query } : {}),
  });

type Response = Awaited<ReturnType<typeof call>>;

/** A 4xx with the error body of DESIGN §8: `{"error":{"code","message"}}` and nothing else. */
function expectError(response: Response, status: number, code: string, message: string | RegExp) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toBe('application/json');
  expect(Object.keys(response.json)).toEqual(['error']);
  const error = response.json.error as { code: string; message: string };
  expect(Object.keys(error).sort()).toEqual(['code', 'message']);
  expect(error.code).toBe(code);
  if (typeof message === 'string') expect(error.message).toBe(message);
  else expect(error.message).toMatch(message);
}

/** A 400 whose message starts with the field's name. */
const expectBadField = (response: Response, field: string, message?: string) =>
  expectError(
    response,
    400,
    'invalid_parameter',
    message ?? new RegExp(`^${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `),
  );

/** Follows `nextCursor` to the end, collecting payment ids page by page. */
async function pageThrough(
  fetchPage: (cursor: string | undefined) => Promise<Response>,
): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 50; guard++) {
    const response = await fetchPage(cursor);
    expect(response.statusCode, response.body).toBe(200);
    expect(Object.keys(response.json).sort()).toEqual(['items', 'nextCursor']);
    const items = response.json.items as { paymentId: string }[];
    pages.push(items.map((item) => item.paymentId));
    const next = response.json.nextCursor as string | null;
    if (next === null) return pages;
    expect(typeof next).toBe('string');
    cursor = next;
  }
  throw new Error('cursors never ended');
}

describe('GET /payments/{id}', () => {
  it('answers a payment by its PaymentIntent id with exactly the §8.1 fields', async () => {
    const response = await getPayment(p2.paymentId);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(Object.keys(response.json)).toEqual(PAYMENT_FIELDS);
    expect(response.json).toEqual(views.p2);
  });

  it('answers the same payment by a charge id of that PaymentIntent', async () => {
    const byCharge = await getPayment(p2.chargeId);
    expect(byCharge.statusCode).toBe(200);
    expect(byCharge.json).toEqual(views.p2);
    expect(byCharge.body).toBe((await getPayment(p2.paymentId)).body);
  });

  it('answers every status, purpose, failure and dispute as stored', async () => {
    for (const [payment, view] of [
      [p1, views.p1],
      [p3, views.p3],
      [p4, views.p4],
      [q1, views.q1],
      [d1, views.d1],
    ] as const) {
      const response = await getPayment(payment.paymentId);
      expect(response.statusCode, payment.paymentId).toBe(200);
      expect(response.json).toEqual(view);
    }
    // The failed payment's charge id finds it too; its failure code is the card error's.
    expect((await getPayment(p3.chargeId)).json).toEqual(views.p3);
  });

  it('answers a charge without a PaymentIntent by its own charge id', async () => {
    const response = await getPayment(s1Charge);
    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual(views.s1);
    expect(response.json.paymentId).toBe(s1Charge);
    expect(response.json.userId).toBeNull();
  });

  it('answers 404 with payment_not_found for an unknown pi_ or ch_ id', async () => {
    expectError(
      await getPayment('pi_unknown1'),
      404,
      'payment_not_found',
      'No payment pi_unknown1.',
    );
    expectError(
      await getPayment('ch_unknown1'),
      404,
      'payment_not_found',
      'No payment ch_unknown1.',
    );
  });

  it.each([
    ['another prefix', 'xx_1'],
    ['a bare prefix', 'pi_'],
    ['300 characters', `pi_${'a'.repeat(297)}`],
    ['a character that could alter a key', 'pi_1#PAYMENT'],
    ['an empty id', ''],
  ])('answers 400 naming id for %s', async (_label, id) => {
    expectBadField(await getPayment(id), 'id');
  });

  it('answers 400 naming id for a malformed id, with the rule', async () => {
    expectBadField(await getPayment('xx_1'), 'id', 'id must be a pi_… or ch_… id.');
  });

  it('answers 400 for any query parameter (the route takes none)', async () => {
    expectError(
      await getPayment(p2.paymentId, { expand: 'charges' }),
      400,
      'unknown_parameter',
      'Unknown query parameter: expand.',
    );
  });
});

/** Users with a profile (and so known without a payment). */
const PROFILE_ONLY = 'user-with-profile-only';
function profilesOf(userIds: readonly string[]): UserProfiles {
  const known = new Set(userIds);
  return { exists: async (userId) => known.has(userId) };
}

describe('GET /users/{userId}/payments', () => {
  it('answers 404 for a user with neither payments nor a profile, and an empty list for one with a profile', async () => {
    const unknown = await userPayments('nobody-here');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json).toEqual({
      error: {
        code: 'user_not_found',
        message: 'No payments and no profile are known for user nobody-here.',
      },
    });
    const profileOnly = await userPayments(PROFILE_ONLY);
    expect(profileOnly.statusCode).toBe(200);
    expect(profileOnly.json).toEqual({ items: [], nextCursor: null });
  });

  it('answers an empty list, not 404, for a user with payments of other statuses only', async () => {
    const response = await userPayments(U1, { status: 'canceled' });
    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual({ items: [], nextCursor: null });
    expect((await userPayments('nobody-here', { status: 'canceled' })).statusCode).toBe(404);
  });

  it('lists the user payments newest createdAt first, in the default page', async () => {
    const response = await userPayments(U1);
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.json).toEqual({
      items: [views.p4, views.p3, views.p2, views.p1],
      nextCursor: null,
    });
    for (const item of response.json.items as Record<string, unknown>[]) {
      expect(Object.keys(item)).toEqual(PAYMENT_FIELDS);
    }
    expect(await userPayments(U2).then((r) => r.json)).toEqual({
      items: [views.d1, views.q1],
      nextCursor: null,
    });
  });

  it('pages with nextCursor to the end, each page full until the last', async () => {
    const byTwo = await pageThrough((cursor) =>
      userPayments(U1, { limit: '2', ...(cursor ? { cursor } : {}) }),
    );
    expect(byTwo).toEqual([
      [p4.paymentId, p3.paymentId],
      [p2.paymentId, p1.paymentId],
    ]);
    const byThree = await pageThrough((cursor) =>
      userPayments(U1, { limit: '3', ...(cursor ? { cursor } : {}) }),
    );
    expect(byThree).toEqual([[p4.paymentId, p3.paymentId, p2.paymentId], [p1.paymentId]]);
    const byOne = await pageThrough((cursor) =>
      userPayments(U1, { limit: '1', ...(cursor ? { cursor } : {}) }),
    );
    expect(byOne.flat()).toEqual([p4.paymentId, p3.paymentId, p2.paymentId, p1.paymentId]);
    expect(byOne.every((page) => page.length === 1)).toBe(true);
  });

  it('filters by status', async () => {
    const status = async (value: string) => (await userPayments(U1, { status: value })).json;
    expect(await status('succeeded')).toEqual({ items: [views.p1], nextCursor: null });
    expect(await status('failed')).toEqual({ items: [views.p3], nextCursor: null });
    expect(await status('refunded')).toEqual({ items: [views.p4], nextCursor: null });
    expect(await status('partially_refunded')).toEqual({ items: [views.p2], nextCursor: null });
    expect(await status('disputed')).toEqual({ items: [], nextCursor: null });
    expect((await userPayments(U2, { status: 'disputed' })).json).toEqual({
      items: [views.d1],
      nextCursor: null,
    });
  });

  it.each([
    ['spaces', 'bad id'],
    ['129 characters', 'u'.repeat(129)],
    ['a # that could alter a key', 'user#1'],
    ['a slash', 'user/1'],
    ['an empty id', ''],
  ])('answers 400 naming userId for %s', async (_label, userId) => {
    expectBadField(await userPayments(userId), 'userId');
  });

  it('names the userId rule', async () => {
    expectBadField(await userPayments('bad id'), 'userId', `userId ${USER_ID_RULE}.`);
  });

  it('answers 400 naming status for an unknown status', async () => {
    const response = await userPayments(U1, { status: 'paid' });
    expectBadField(response, 'status', `status must be one of ${PAYMENT_STATUSES.join(', ')}.`);
    expectBadField(await userPayments(U1, { status: 'SUCCEEDED' }), 'status');
    expectBadField(await userPayments(U1, { status: '' }), 'status');
  });

  it.each(['0', '101', 'ten', '1.5', '-1', '', '1e2', ' 5'])(
    'answers 400 naming limit for limit=%j',
    async (limit) => {
      expectBadField(
        await userPayments(U1, { limit }),
        'limit',
        'limit must be an integer from 1 to 100.',
      );
    },
  );

  it('accepts the limit bounds 1 and 100', async () => {
    expect((await userPayments(U1, { limit: '1' })).statusCode).toBe(200);
    const all = await userPayments(U1, { limit: '100' });
    expect(all.statusCode).toBe(200);
    expect((all.json.items as unknown[]).length).toBe(4);
  });

  it('answers 400 for an unknown query parameter, naming it', async () => {
    expectError(
      await userPayments(U1, { sort: 'asc' }),
      400,
      'unknown_parameter',
      'Unknown query parameter: sort.',
    );
    expectError(
      await userPayments(U1, { userId: U2, page: '2' }),
      400,
      'unknown_parameter',
      'Unknown query parameters: userId, page.',
    );
  });

  it('answers 400 for a forged, altered or oversized cursor', async () => {
    const first = await userPayments(U1, { limit: '1' });
    const cursor = first.json.nextCursor as string;
    expect(typeof cursor).toBe('string');

    const forged = [
      'not-a-cursor!',
      'abc',
      Buffer.from('{"p":"2026-03-04T12:00:00.000Z#pi_x","h":"AAAAAAAAAAAAAAAAAAAAAA"}').toString(
        'base64url',
      ),
      Buffer.from(JSON.stringify({ p: 'anything' })).toString('base64url'),
      // The real cursor with one character of its payload changed, its seal kept.
      (() => {
        const [inner, tag] = cursor.split('.') as [string, string];
        const json = Buffer.from(inner, 'base64url').toString('utf8');
        const index = json.search(/[0-9]/);
        const swapped = `${json.slice(0, index)}${json[index] === '1' ? '2' : '1'}${json.slice(index + 1)}`;
        return `${Buffer.from(swapped).toString('base64url')}.${tag}`;
      })(),
    ];
    for (const value of forged) {
      const response = await userPayments(U1, { limit: '1', cursor: value });
      expectError(response, 400, 'invalid_parameter', 'cursor is not valid for this query.');
    }
    expectBadField(await userPayments(U1, { cursor: 'a'.repeat(2049) }), 'cursor');
    expectBadField(await userPayments(U1, { cursor: '' }), 'cursor');
  });

  it('answers 400 for a cursor this deployment did not seal, even one the store would take', async () => {
    const first = await userPayments(U1, { limit: '1' });
    const sealed = first.json.nextCursor as string;
    const second = await userPayments(U1, { limit: '1', cursor: sealed });
    const sealedLater = second.json.nextCursor as string;
    expect(sealed).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    const [inner, tag] = sealed.split('.') as [string, string];
    const [laterInner] = sealedLater.split('.') as [string];
    const refused = [
      // The store's own cursor, genuine for this query: only the seal is missing.
      inner,
      // Another genuine store cursor of the same query under the first one's seal.
      `${laterInner}.${tag}`,
      // Sealed by another deployment (another key).
      (await testCursorSeal().seal(PAYMENT_ROUTES.userPayments, inner)) as string,
      `${inner}.${'A'.repeat(22)}`,
      `${inner}.${tag.slice(0, 21)}`,
      `${inner}.${tag}.${tag}`,
    ];
    for (const value of refused) {
      const response = await userPayments(U1, { limit: '1', cursor: value });
      expectError(response, 400, 'invalid_parameter', 'cursor is not valid for this query.');
    }
    // Sealed by this deployment: the next page.
    expect((await userPayments(U1, { limit: '1', cursor: sealedLater })).statusCode).toBe(200);
  });

  it("answers 400 for a cursor from another user's query, and never that user's data", async () => {
    const u1Page = await userPayments(U1, { limit: '1' });
    const u1Cursor = u1Page.json.nextCursor as string;
    const asU2 = await userPayments(U2, { limit: '1', cursor: u1Cursor });
    expectError(asU2, 400, 'invalid_parameter', 'cursor is not valid for this query.');
    for (const payment of [p1, p2, p3, p4]) expect(asU2.body).not.toContain(payment.paymentId);
    expect(asU2.body).not.toContain(U1);

    // Nor the other way round, nor across a status filter of the same user.
    const u2Cursor = (await userPayments(U2, { limit: '1' })).json.nextCursor as string;
    const asU1 = await userPayments(U1, { limit: '1', cursor: u2Cursor });
    expectError(asU1, 400, 'invalid_parameter', 'cursor is not valid for this query.');
    expect(asU1.body).not.toContain(q1.paymentId);
    expectError(
      await userPayments(U1, { limit: '1', cursor: u1Cursor, status: 'succeeded' }),
      400,
      'invalid_parameter',
      'cursor is not valid for this query.',
    );
    // The same cursor still works for the query that issued it (another page size is fine).
    const next = await userPayments(U1, { limit: '2', cursor: u1Cursor });
    expect(next.statusCode).toBe(200);
    expect((next.json.items as { paymentId: string }[]).map((i) => i.paymentId)).toEqual([
      p3.paymentId,
      p2.paymentId,
    ]);
  });
});

describe('GET /reports/refunds', () => {
  const march = { from: '2026-03-01', to: '2026-03-31' };

  it('lists refunded and partially refunded payments by refundedAt, oldest first', async () => {
    const response = await refundsReport(march);
    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual({ items: [views.p2, views.p4], nextCursor: null });
  });

  it('includes both ends of the range and excludes days outside it', async () => {
    const oneDay = async (date: string) =>
      (await refundsReport({ from: date, to: date })).json.items as { paymentId: string }[];
    expect((await oneDay('2026-03-05')).map((i) => i.paymentId)).toEqual([p2.paymentId]);
    expect((await oneDay('2026-03-06')).map((i) => i.paymentId)).toEqual([p4.paymentId]);
    expect(await oneDay('2026-03-07')).toEqual([]);
    const upTo = await refundsReport({ from: '2026-02-01', to: '2026-03-05' });
    expect(upTo.json).toEqual({ items: [views.p2], nextCursor: null });
  });

  it('pages oldest first with nextCursor to the end', async () => {
    const pages = await pageThrough((cursor) =>
      refundsReport({ ...march, limit: '1', ...(cursor ? { cursor } : {}) }),
    );
    expect(pages).toEqual([[p2.paymentId], [p4.paymentId]]);
  });

  it('answers 400 for a cursor of another range or of another report', async () => {
    const cursor = (await refundsReport({ ...march, limit: '1' })).json.nextCursor as string;
    expectError(
      await refundsReport({ from: '2026-03-01', to: '2026-03-30', limit: '1', cursor }),
      400,
      'invalid_parameter',
      'cursor is not valid for this query.',
    );
    expectError(
      await paymentsReport({
        status: 'refunded',
        paidFrom: march.from,
        paidTo: march.to,
        cursor,
      }),
      400,
      'invalid_parameter',
      'cursor is not valid for this query.',
    );
    expectError(
      await userPayments(U1, { cursor }),
      400,
      'invalid_parameter',
      'cursor is not valid for this query.',
    );
  });

  it('answers 400 naming the missing, malformed or impossible date', async () => {
    expectBadField(await refundsReport(), 'from', 'from is required.');
    expectBadField(await refundsReport({ from: '2026-03-01' }), 'to', 'to is required.');
    expectBadField(await refundsReport({ to: '2026-03-01' }), 'from', 'from is required.');
    for (const bad of ['2026-3-01', '2026/03/01', '01-03-2026', '2026-03-01T00:00:00Z', 'today']) {
      expectBadField(
        await refundsReport({ from: bad, to: '2026-03-31' }),
        'from',
        'from must be a date YYYY-MM-DD.',
      );
    }
    for (const impossible of ['2026-02-30', '2026-13-01', '2026-04-31', '2025-02-29']) {
      expectBadField(
        await refundsReport({ from: '2026-01-01', to: impossible }),
        'to',
        'to must be a date YYYY-MM-DD.',
      );
    }
  });

  it('answers 400 naming to when it is before from', async () => {
    expectBadField(
      await refundsReport({ from: '2026-03-10', to: '2026-03-09' }),
      'to',
      'to must not be before from.',
    );
  });

  it(`answers 400 naming to for a range over ${MAX_REPORT_DAYS} days, and 200 at ${MAX_REPORT_DAYS}`, async () => {
    expect(MAX_REPORT_DAYS).toBe(92);
    // 2026-01-01 .. 2026-04-02 is 92 days, both ends included.
    const longest = await refundsReport({ from: '2026-01-01', to: '2026-04-02' });
    expect(longest.statusCode).toBe(200);
    expect(longest.json).toEqual({ items: [views.p2, views.p4], nextCursor: null });
    const response = await refundsReport({ from: '2026-01-01', to: '2026-04-03' });
    expectBadField(response, 'to');
    expect((response.json.error as { message: string }).message).toContain('92 days');
    expectBadField(await refundsReport({ from: '2000-01-01', to: '2026-03-31' }), 'to');
  });

  it('answers 400 for limit and unknown parameters', async () => {
    for (const limit of ['0', '101', 'ten', '1.5']) {
      expectBadField(await refundsReport({ ...march, limit }), 'limit');
    }
    expectError(
      await refundsReport({ ...march, status: 'refunded' }),
      400,
      'unknown_parameter',
      'Unknown query parameter: status.',
    );
  });
});

describe('GET /reports/payments', () => {
  const march = { paidFrom: '2026-03-01', paidTo: '2026-03-31' };

  it('lists the payments of one status by paidAt, oldest first', async () => {
    const succeeded = await paymentsReport({ status: 'succeeded', ...march });
    expect(succeeded.statusCode).toBe(200);
    expect(succeeded.json).toEqual({ items: [views.p1, views.q1, views.s1], nextCursor: null });
    expect((await paymentsReport({ status: 'refunded', ...march })).json).toEqual({
      items: [views.p4],
      nextCursor: null,
    });
    expect((await paymentsReport({ status: 'partially_refunded', ...march })).json).toEqual({
      items: [views.p2],
      nextCursor: null,
    });
    expect((await paymentsReport({ status: 'disputed', ...march })).json).toEqual({
      items: [views.d1],
      nextCursor: null,
    });
  });

  it('keeps to the paid-date range, both ends included', async () => {
    const day = await paymentsReport({
      status: 'succeeded',
      paidFrom: '2026-03-02',
      paidTo: '2026-03-02',
    });
    expect(day.json).toEqual({ items: [views.q1, views.s1], nextCursor: null });
    const before = await paymentsReport({
      status: 'succeeded',
      paidFrom: '2026-02-01',
      paidTo: '2026-02-28',
    });
    expect(before.json).toEqual({ items: [], nextCursor: null });
  });

  it('pages with nextCursor to the end', async () => {
    const pages = await pageThrough((cursor) =>
      paymentsReport({ status: 'succeeded', ...march, limit: '2', ...(cursor ? { cursor } : {}) }),
    );
    expect(pages).toEqual([[p1.paymentId, q1.paymentId], [s1.paymentId]]);
  });

  it('answers 400 for a cursor of another status', async () => {
    const cursor = (await paymentsReport({ status: 'succeeded', ...march, limit: '1' })).json
      .nextCursor as string;
    const response = await paymentsReport({ status: 'refunded', ...march, limit: '1', cursor });
    expectError(response, 400, 'invalid_parameter', 'cursor is not valid for this query.');
    expect(response.body).not.toContain(p1.paymentId);
  });

  it('answers 400 naming status, paidFrom or paidTo', async () => {
    // A missing status is answered with the rule (the allowed values), naming the field.
    expectBadField(await paymentsReport(march), 'status');
    expectBadField(await paymentsReport({ status: 'paid', ...march }), 'status');
    // Statuses no paid payment has: refused with the reason, not answered with an empty report.
    for (const status of ['processing', 'failed', 'canceled']) {
      expectBadField(
        await paymentsReport({ status, ...march }),
        'status',
        'status must be one of succeeded, partially_refunded, refunded, disputed (processing, failed and canceled payments have no paid date).',
      );
    }
    expectBadField(
      await paymentsReport({ status: 'succeeded', paidTo: '2026-03-31' }),
      'paidFrom',
      'paidFrom is required.',
    );
    expectBadField(
      await paymentsReport({ status: 'succeeded', paidFrom: '2026-02-30', paidTo: '2026-03-31' }),
      'paidFrom',
      'paidFrom must be a date YYYY-MM-DD.',
    );
    expectBadField(
      await paymentsReport({ status: 'succeeded', paidFrom: '2026-03-01', paidTo: '2026-3-1' }),
      'paidTo',
      'paidTo must be a date YYYY-MM-DD.',
    );
    expectBadField(
      await paymentsReport({ status: 'succeeded', paidFrom: '2026-03-02', paidTo: '2026-03-01' }),
      'paidTo',
      'paidTo must not be before paidFrom.',
    );
    const long = await paymentsReport({
      status: 'succeeded',
      paidFrom: '2026-01-01',
      paidTo: '2026-04-03',
    });
    expectBadField(long, 'paidTo');
    expect((long.json.error as { message: string }).message).toContain('92 days');
    expect(
      (await paymentsReport({ status: 'succeeded', paidFrom: '2026-01-01', paidTo: '2026-04-02' }))
        .statusCode,
    ).toBe(200);
  });

  it('answers 400 for limit and unknown parameters', async () => {
    for (const limit of ['0', '101', 'ten', '1.5']) {
      expectBadField(await paymentsReport({ status: 'succeeded', ...march, limit }), 'limit');
    }
    expectError(
      await paymentsReport({ status: 'succeeded', ...march, from: '2026-03-01' }),
      400,
      'unknown_parameter',
      'Unknown query parameter: from.',
    );
  });
});

describe('GET /reports/daily-summary', () => {
  const row = (status: string, currency: string, count: number, amount: number) => ({
    status,
    gateway: 'stripe',
    currency,
    count,
    amount,
  });

  it('answers {date, rows} of the payments created that UTC day, each under its current status', async () => {
    const response = await dailySummary({ date: '2026-03-02' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(Object.keys(response.json)).toEqual(['date', 'rows']);
    expect(response.json).toEqual({
      date: '2026-03-02',
      rows: [
        row('partially_refunded', 'usd', 1, 5000),
        row('succeeded', 'eur', 1, 3000),
        row('succeeded', 'usd', 1, 700),
      ],
    });
    for (const item of response.json.rows as Record<string, unknown>[]) {
      expect(Object.keys(item).sort()).toEqual(
        ['amount', 'count', 'currency', 'gateway', 'status'].sort(),
      );
    }
  });

  it('counts gross amounts (before refunds) and moves a payment with its status', async () => {
    expect((await dailySummary({ date: '2026-03-01' })).json).toEqual({
      date: '2026-03-01',
      rows: [row('succeeded', 'usd', 1, 2000)],
    });
    expect((await dailySummary({ date: '2026-03-03' })).json).toEqual({
      date: '2026-03-03',
      rows: [row('failed', 'usd', 1, 1000)],
    });
    // Refunded and disputed after that day: counted on their creation day, under the new status.
    expect((await dailySummary({ date: '2026-03-04' })).json).toEqual({
      date: '2026-03-04',
      rows: [row('disputed', 'usd', 1, 2500), row('refunded', 'usd', 1, 1200)],
    });
    // The refund and dispute days have no payment created on them.
    expect((await dailySummary({ date: '2026-03-06' })).json).toEqual({
      date: '2026-03-06',
      rows: [],
    });
  });

  it('answers 400 naming date when missing, malformed or impossible', async () => {
    expectBadField(await dailySummary(), 'date', 'date is required.');
    for (const bad of ['2026-02-30', '2026-3-2', '20260302', '2026-03-02T00:00:00Z', '']) {
      expectBadField(await dailySummary({ date: bad }), 'date', 'date must be a date YYYY-MM-DD.');
    }
  });

  it('answers 400 for an unknown query parameter', async () => {
    expectError(
      await dailySummary({ date: '2026-03-02', gateway: 'stripe' }),
      400,
      'unknown_parameter',
      'Unknown query parameter: gateway.',
    );
    expectError(
      await dailySummary({ date: '2026-03-02', limit: '10' }),
      400,
      'unknown_parameter',
      'Unknown query parameter: limit.',
    );
  });
});

describe('methods, routes and failures', () => {
  it.each([
    ['POST', '/payments/{id}', { id: 'pi_1' }],
    ['DELETE', '/payments/{id}', { id: 'pi_1' }],
    ['PUT', '/users/{userId}/payments', { userId: 'u1' }],
    ['POST', '/reports/refunds', undefined],
    ['PATCH', '/reports/payments', undefined],
    ['HEAD', '/reports/daily-summary', undefined],
  ] as const)('answers 405 with Allow: GET for %s %s', async (method, route, pathParameters) => {
    const response = await call({
      method,
      route,
      path: route,
      ...(pathParameters ? { pathParameters } : {}),
    });
    expectError(response, 405, 'method_not_allowed', 'Method not allowed; use GET.');
    expect(response.headers.allow).toBe('GET');
  });

  it('answers 404 for a route it does not serve', async () => {
    const response = await call({ route: '/payments', path: '/payments' });
    expect(response.statusCode).toBe(404);
    expect((response.json.error as { code: string }).code).toBe('not_found');
  });

  it('answers a generic 5xx when the store fails, never its internal message', async () => {
    const internal =
      'AccessDeniedException: arn:aws:dynamodb:eu-west-1:123456789012:table/billing-payments secret-token-xyz';
    const failing = new InMemoryPaymentStore({
      fault: (point) => {
        if (point.operation !== 'commit') throw new Error(internal);
        return undefined;
      },
    });
    const broken = createPaymentReadHandler({
      queries: failing,
      profiles: profilesOf([]),
      cursors: testCursorSeal(),
    });
    for (const request of EVERY_ROUTE) {
      const response = await send(broken, request);
      expect(response.statusCode, request.path).toBeGreaterThanOrEqual(500);
      expect(response.statusCode, request.path).toBeLessThan(600);
      const body = JSON.parse(response.body) as { error: { code: string; message: string } };
      expect(Object.keys(body)).toEqual(['error']);
      expect(typeof body.error.code).toBe('string');
      expect(typeof body.error.message).toBe('string');
      for (const secret of [
        'arn:aws',
        '123456789012',
        'secret-token',
        'AccessDenied',
        'billing-payments',
      ]) {
        expect(response.body).not.toContain(secret);
      }
    }
    // Validation still answers 400 before the store is touched.
    const bad = await broken(
      httpApiEvent({
        path: '/payments/xx_1',
        routeKey: 'GET /payments/{id}',
        pathParameters: { id: 'xx_1' },
      }),
      context,
    );
    expect(bad.statusCode).toBe(400);
  });

  it.each([
    [
      'throttled (ProvisionedThroughputExceededException)',
      () =>
        new ProvisionedThroughputExceededException({
          message: `Throughput exceeds the current capacity of your table or index: ${DYNAMO_INTERNALS}`,
          $metadata: { httpStatusCode: 400, requestId: 'REQ-THROTTLED-1' },
        }),
    ],
    [
      'throttled (ThrottlingException)',
      () =>
        new ThrottlingException({
          message: `Rate of requests exceeds the allowed throughput: ${DYNAMO_INTERNALS}`,
          $metadata: { httpStatusCode: 400, requestId: 'REQ-THROTTLED-2' },
        }),
    ],
    [
      'down (InternalServerError)',
      () =>
        new InternalServerError({
          message: `Internal server error: ${DYNAMO_INTERNALS}`,
          $metadata: { httpStatusCode: 500, requestId: 'REQ-DOWN-1' },
        }),
    ],
    [
      'unavailable (503 ServiceUnavailable)',
      () =>
        new DynamoDBServiceException({
          name: 'ServiceUnavailable',
          $fault: 'server',
          message: `Service unavailable: ${DYNAMO_INTERNALS}`,
          $metadata: { httpStatusCode: 503, requestId: 'REQ-DOWN-2' },
        }),
    ],
  ])('answers 503 with Retry-After on every route when DynamoDB is %s', async (_label, error) => {
    const unavailable = new InMemoryPaymentStore({
      fault: (point) => {
        if (point.operation !== 'commit') throw error();
        return undefined;
      },
    });
    const handler = createPaymentReadHandler({
      queries: unavailable,
      profiles: profilesOf([]),
      cursors: testCursorSeal(),
    });
    for (const request of EVERY_ROUTE) {
      const response = await send(handler, request);
      expect(response.statusCode, request.path).toBe(503);
      // A number of seconds (DESIGN §8), so a client can wait and retry.
      expect(response.headers['retry-after'], request.path).toMatch(/^[1-9]\d*$/);
      expect(response.headers['content-type']).toBe('application/json');
      expect(JSON.parse(response.body)).toEqual({
        error: { code: 'service_unavailable', message: expect.any(String) },
      });
      for (const internal of [
        'arn:aws',
        '123456789012',
        'billing-payments',
        'REQ-',
        'Throughput',
        'Throttling',
        'Internal server error',
        'ServiceUnavailable',
        'Service unavailable',
      ]) {
        expect(response.body, request.path).not.toContain(internal);
      }
    }
  });

  it('answers 503 with Retry-After on a list when the cursor key cannot be read, and keeps the other routes', async () => {
    // The deployed key comes from Secrets Manager: its outage is a dependency's, as the wiring reports it.
    const keyDown = new CursorSeal({
      get: () =>
        Promise.reject(
          new ServiceUnavailableError({
            cause: new Error(
              'Could not read the cursor signing key: AccessDeniedException arn:aws',
            ),
            retryAfterSeconds: 2,
          }),
        ),
      refresh: async () => undefined,
    });
    const handler = createPaymentReadHandler({
      queries: store,
      profiles: profilesOf([]),
      cursors: keyDown,
    });
    const list = await send(handler, {
      path: `/users/${U1}/payments`,
      route: PAYMENT_ROUTES.userPayments,
      pathParameters: { userId: U1 },
      query: { limit: '1' },
    });
    expect(list.statusCode).toBe(503);
    expect(list.headers['retry-after']).toBe('2');
    expect(list.body).not.toContain('arn:aws');
    expect(list.body).not.toContain('cursor signing key');
    const lookup = await send(handler, {
      path: `/payments/${p1.paymentId}`,
      route: PAYMENT_ROUTES.payment,
      pathParameters: { id: p1.paymentId },
    });
    expect(lookup.statusCode).toBe(200);
  });
});
