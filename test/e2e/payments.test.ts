/**
 * Payments end to end through the local runtime: a payment's life (succeeded, partial
 * refund, full refund, dispute) as signed real Stripe payloads over HTTP, delivered
 * shuffled and duplicated, read back through every payment route (the payment, by charge,
 * the user's history, the refund and reconciliation reports, the daily summary).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import { buildPaymentSample, sampleIds } from '../../local/send-sample.ts';
import { PAYMENT_FIELDS } from '../helpers/payment-contract.ts';
import { eventually, getJson, postWebhook, uniqueUserId } from './e2e-helpers.ts';

describe('payments through the local runtime', () => {
  let runtime: LocalRuntime;

  beforeAll(async () => {
    runtime = await startLocalRuntime({ port: 0, inMemory: true, logLevel: 'warn' });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  const get = (path: string) => getJson(runtime, path);

  it('records a payment history delivered shuffled and twice, and answers every route', async () => {
    const userId = uniqueUserId('pay');
    const created = Math.floor(Date.now() / 1000);
    const events = buildPaymentSample({ userId, created });
    const paymentId = String(events[0]!.data.object.id);
    const chargeId = `ch_${paymentId.slice(3)}`;
    // Newest first, then each again: the worst order a retried delivery can take.
    for (const event of [...events].reverse().concat(events)) {
      expect((await postWebhook(runtime, event)).status).toBe(200);
    }

    const payment = await eventually(
      async () => {
        const answer = await get(`/payments/${paymentId}`);
        return answer.status === 200 && answer.body.status === 'disputed' ? answer : undefined;
      },
      20_000,
      'the payment to end disputed',
    );
    const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
    expect(payment.body).toEqual({
      paymentId,
      chargeId,
      userId,
      customerId: sampleIds(userId).customerId,
      amount: 2000,
      amountRefunded: 2000,
      currency: 'usd',
      status: 'disputed',
      purpose: 'other',
      penaltyIds: [],
      createdAt: iso(created),
      paidAt: iso(created),
      refundedAt: iso(created + 1),
      failureCode: null,
      dispute: { status: 'needs_response', reason: 'product_not_received', amount: 2000 },
    });
    // The charge id finds its PaymentIntent's payment.
    expect((await get(`/payments/${chargeId}`)).body).toEqual(payment.body);

    const history = await get(`/users/${userId}/payments?limit=10`);
    expect(history).toEqual({ status: 200, body: { items: [payment.body], nextCursor: null } });
    expect((await get(`/users/${userId}/payments?status=succeeded`)).body.items).toEqual([]);

    const day = iso(created).slice(0, 10);
    // The refunds are stamped a second or two after the payment: past midnight UTC they
    // fall on the next day.
    const refundDay = iso(created + 2).slice(0, 10);
    const refunds = await get(`/reports/refunds?from=${day}&to=${refundDay}&limit=100`);
    expect(refunds.status).toBe(200);
    expect(refunds.body.items).toContainEqual(payment.body);

    // Reconciliation: the payments of one status by paid date. This one was paid on `day`
    // and ends disputed, so it is in that status's report and in no other.
    const paid = await get(
      `/reports/payments?status=disputed&paidFrom=${day}&paidTo=${day}&limit=100`,
    );
    expect(paid.status).toBe(200);
    expect(Object.keys(paid.body).sort()).toEqual(['items', 'nextCursor']);
    const reconciled = (paid.body.items as Record<string, unknown>[]).find(
      (item) => item.paymentId === paymentId,
    );
    // Exactly the §8.1 fields, in its order, with the values of the payment's own route.
    expect(Object.keys(reconciled ?? {})).toEqual(PAYMENT_FIELDS);
    expect(reconciled).toEqual(payment.body);
    const succeeded = await get(
      `/reports/payments?status=succeeded&paidFrom=${day}&paidTo=${day}&limit=100`,
    );
    expect(succeeded.status).toBe(200);
    expect(succeeded.body.items).not.toContainEqual(expect.objectContaining({ paymentId }));

    const summary = await get(`/reports/daily-summary?date=${day}`);
    expect(summary.status).toBe(200);
    const rows = summary.body.rows as { status: string; currency: string; count: number }[];
    const disputedUsd = rows.find((row) => row.status === 'disputed' && row.currency === 'usd');
    // Other tests in this run may add payments of the same day: at least this one, once.
    expect(disputedUsd?.count).toBeGreaterThanOrEqual(1);
    expect(rows.some((row) => row.status === 'succeeded' && row.count < 0)).toBe(false);
  });

  it('pages a history with the cursors it sealed, and refuses one it did not', async () => {
    const userId = uniqueUserId('page');
    const created = Math.floor(Date.now() / 1000);
    const samples = [created, created + 10].map((at) =>
      buildPaymentSample({ userId, created: at }),
    );
    for (const event of samples.flat()) {
      expect((await postWebhook(runtime, event)).status).toBe(200);
    }
    const ids = samples.map((events) => String(events[0]!.data.object.id));
    await eventually(
      async () => {
        const all = await get(`/users/${userId}/payments?limit=10`);
        return (all.body.items as unknown[] | undefined)?.length === 2 ? all : undefined;
      },
      20_000,
      'both payments in the history',
    );

    const first = await get(`/users/${userId}/payments?limit=1`);
    const cursor = String(first.body.nextCursor);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    const second = await get(`/users/${userId}/payments?limit=1&cursor=${cursor}`);
    expect(second.status).toBe(200);
    expect(second.body.nextCursor).toBeNull();
    const paged = [first, second].flatMap((page) =>
      (page.body.items as { paymentId: string }[]).map((item) => item.paymentId),
    );
    // Newest createdAt first.
    expect(paged).toEqual([...ids].reverse());

    // The store's own cursor without the seal: well formed, bound to this query, refused.
    const unsealed = cursor.slice(0, cursor.lastIndexOf('.'));
    const refused = await get(`/users/${userId}/payments?limit=1&cursor=${unsealed}`);
    expect(refused).toEqual({
      status: 400,
      body: {
        error: { code: 'invalid_parameter', message: 'cursor is not valid for this query.' },
      },
    });
  });

  it('answers clear 4xx for unknown ids and bad parameters', async () => {
    expect(await get('/payments/pi_doesnotexist')).toMatchObject({
      status: 404,
      body: { error: { code: 'payment_not_found' } },
    });
    const bad = await get('/reports/refunds?from=2026-02-01&to=2026-01-01');
    expect(bad.status).toBe(400);
    expect((bad.body.error as { message: string }).message).toMatch(/^to /);
    const badPaid = await get(
      '/reports/payments?status=succeeded&paidFrom=2026-02-01&paidTo=2026-01-01',
    );
    expect(badPaid.status).toBe(400);
    expect(badPaid.body.error).toMatchObject({ code: 'invalid_parameter' });
    expect((badPaid.body.error as { message: string }).message).toMatch(/^paidTo /);
    const unknown = await get('/users/someone/payments?sort=asc');
    expect(unknown.status).toBe(400);
    expect((unknown.body.error as { message: string }).message).toContain('sort');
  });
});
