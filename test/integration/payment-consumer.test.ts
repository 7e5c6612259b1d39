/**
 * The payment consumer (`createPaymentConsumer`) against DynamoDB Local with the real
 * `DynamoDbPaymentStore` and `DynamoDbCustomerDirectory`, fed SQS batches of real
 * Stripe payloads (re-stamped): one history delivered in order, reversed, and
 * shuffled with duplicates ends in the same readable state; poison records are the
 * only failures; unhandled types are acknowledged; the customer link supplies a
 * missing user; basil subscription payments are linked by `invoice_payment.paid`; and
 * a store outage fails the records without writing half a payment.
 */

import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import {
  DynamoDbCustomerDirectory,
  DynamoDbPaymentStore,
} from '../../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import type { PaymentPurpose } from '../../functions/core/payments/ports.ts';
import { createPaymentConsumer } from '../../functions/payment-consumer.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';
import {
  createPaymentConsumerTables,
  type PaymentConsumerTables,
  paymentReadRoutes,
} from '../helpers/payment-consumer-harness.ts';
import {
  asBasil,
  chargeRefundedEvent,
  chargeSucceededEvent,
  customerCreatedEvent,
  disputeCreatedEvent,
  expectedPaymentView,
  type FixturePayment,
  fixturePayment,
  intentCreatedEvent,
  intentFailedEvent,
  intentSucceededEvent,
  invoicePaymentPaidEvent,
  isoOf,
  type PaymentEventBody,
  secondsOf,
  subscriptionCheckoutEvent,
  uniquePaymentTag,
} from '../helpers/payment-fixture-events.ts';
import { sqsBatch } from '../helpers/sqs-events.ts';

const context = { functionName: 'payment-consumer', awsRequestId: 'test' } as Context;
const DAY = '2026-05-10';
const at = (time: string) => secondsOf(`${DAY}T${time}Z`);

let dynamo: DynamoDBClient;

beforeAll(() => {
  dynamo = emulatorClients().dynamo;
});

/** The customer -> user link, as the subscription context keeps it on the account item. */
async function linkCustomer(
  tables: PaymentConsumerTables,
  customerId: string,
  userId: string,
): Promise<void> {
  await DynamoDBDocumentClient.from(dynamo).send(
    new PutCommand({
      TableName: tables.billingTableName,
      Item: { pk: `CUSTOMER#${customerId}`, sk: 'ACCOUNT', customerId, userId },
    }),
  );
}

/** The consumer and the read API over one pair of tables (and, for faults, one client). */
function wire(tables: PaymentConsumerTables, client: DynamoDBClient = dynamo) {
  const store = new DynamoDbPaymentStore({ client, paymentsTableName: tables.paymentsTableName });
  const directory = new DynamoDbCustomerDirectory({
    client,
    billingTableName: tables.billingTableName,
  });
  const consumer = createPaymentConsumer({ store, directory });
  return {
    // Reads always go to the healthy emulator.
    ...paymentReadRoutes(dynamo, tables, DAY),
    consume: (batch: SQSEvent) => consumer(batch, context),
  };
}

const bodies = (events: readonly PaymentEventBody[]) => events.map((e) => JSON.stringify(e));
const failedIds = (response: SQSBatchResponse) =>
  response.batchItemFailures.map((failure) => failure.itemIdentifier).sort();

/** Every item's key in a table (the test's own small table). */
async function scanKeys(tableName: string): Promise<string[]> {
  const { Items } = await dynamo.send(new ScanCommand({ TableName: tableName }));
  return (Items ?? []).map((item) => `${item.pk?.S}|${item.sk?.S}`).sort();
}

/** mulberry32: a deterministic order for a given seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Each body once to three times, then shuffled: at-least-once, in no guaranteed order. */
function shuffledWithDuplicates(items: readonly string[], seed: number): string[] {
  const random = seeded(seed);
  const out: string[] = [];
  for (const item of items) {
    out.push(item);
    if (random() < 0.6) out.push(item);
    if (random() < 0.3) out.push(item);
  }
  for (let index = out.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [out[index], out[other]] = [out[other]!, out[index]!];
  }
  return out;
}

/** Sends bodies in SQS batches of `size`; every record must be acknowledged. */
async function deliverAll(
  wired: ReturnType<typeof wire>,
  all: readonly string[],
  size: number,
): Promise<void> {
  for (let index = 0; index < all.length; index += size) {
    const response = await wired.consume(sqsBatch(all.slice(index, index + size)));
    expect(response.batchItemFailures).toEqual([]);
  }
}

describe('payment consumer on DynamoDB Local', () => {
  /** One user's payments: the full lifecycle of the brief, a partial refund, a failure. */
  function scenario() {
    const tag = uniquePaymentTag();
    const userId = `user-pc-${tag}`;
    const customerId = `cus_pc${tag}`;
    const a = fixturePayment({
      userId,
      customerId,
      amount: 4000,
      purpose: 'penalty',
      penaltyIds: ['pen_1', 'pen_2'],
      created: at('10:00:00'),
      chargeCreated: at('10:01:00'),
    });
    const b = fixturePayment({
      userId,
      customerId,
      amount: 1500,
      currency: 'eur',
      created: at('11:00:00'),
      chargeCreated: at('11:00:30'),
    });
    const c = fixturePayment({ userId, customerId, amount: 900, created: at('11:30:00') });
    const r1 = { refundId: `re_1${tag}`, amount: 1000, created: at('12:00:00') };
    const r2 = { refundId: `re_2${tag}`, amount: 3000, created: at('13:00:00') };
    const rb = { refundId: `re_b${tag}`, amount: 500, created: at('14:00:00') };
    const aEvents = [
      intentCreatedEvent(a),
      intentSucceededEvent(a, at('10:01:01')),
      chargeRefundedEvent(a, at('12:00:00'), [r1]),
      chargeRefundedEvent(a, at('13:00:00'), [r1, r2]),
      disputeCreatedEvent(a, at('15:00:00'), { reason: 'fraudulent', amount: 4000 }),
    ];
    const events = [
      ...aEvents,
      intentCreatedEvent(b),
      intentSucceededEvent(b, at('11:00:31')),
      chargeRefundedEvent(b, at('14:00:00'), [rb]),
      intentCreatedEvent(c),
      intentFailedEvent(c, at('11:32:00'), 'insufficient_funds'),
    ].sort((x, y) => x.created - y.created);
    const views = {
      // Paid when the event showing the charge succeeded was created, not at the charge's creation.
      a: expectedPaymentView(a, {
        status: 'disputed',
        paidAt: isoOf(at('10:01:01')),
        amountRefunded: 4000,
        refundedAt: isoOf(r1.created),
        dispute: { status: 'needs_response', reason: 'fraudulent', amount: 4000 },
      }),
      b: expectedPaymentView(b, {
        status: 'partially_refunded',
        paidAt: isoOf(at('11:00:31')),
        amountRefunded: 500,
        refundedAt: isoOf(rb.created),
      }),
      c: expectedPaymentView(c, {
        status: 'failed',
        paidAt: null,
        failureCode: 'insufficient_funds',
      }),
    };
    const summary = {
      date: DAY,
      rows: [
        { status: 'disputed', gateway: 'stripe', currency: 'usd', count: 1, amount: 4000 },
        { status: 'failed', gateway: 'stripe', currency: 'usd', count: 1, amount: 900 },
        {
          status: 'partially_refunded',
          gateway: 'stripe',
          currency: 'eur',
          count: 1,
          amount: 1500,
        },
      ],
    };
    return { userId, a, b, c, aEvents, events, views, summary };
  }

  /** Everything the read API shows of a scenario's payments. */
  async function readAll(wired: ReturnType<typeof wire>, s: ReturnType<typeof scenario>) {
    return {
      a: await wired.payment(s.a.paymentId),
      aByCharge: await wired.payment(s.a.chargeId),
      b: await wired.payment(s.b.paymentId),
      c: await wired.payment(s.c.paymentId),
      history: await wired.userPayments(s.userId),
      summary: await wired.summary(),
      refunds: await wired.refunds(),
      paidDisputed: await wired.paid('disputed'),
    };
  }

  it('applies a history in order, reversed, and shuffled with duplicates to the same views and daily summary', async () => {
    const s = scenario();
    const ordered = bodies(s.events);

    // 1. In order, one event per batch: each step visible, refunds never go back to succeeded.
    const inOrder = wire(await createPaymentConsumerTables(dynamo, 'payment-consumer'));
    const statusOfA: unknown[] = [];
    for (const body of ordered) {
      const response = await inOrder.consume(sqsBatch([body]));
      expect(response.batchItemFailures).toEqual([]);
      if (s.aEvents.some((event) => JSON.stringify(event) === body)) {
        statusOfA.push(((await inOrder.payment(s.a.paymentId)).body as { status: string }).status);
      }
    }
    expect(statusOfA).toEqual([
      'processing',
      'succeeded',
      'partially_refunded',
      'refunded',
      'disputed',
    ]);
    const expected = await readAll(inOrder, s);
    expect(expected.a).toEqual({ status: 200, body: s.views.a });
    expect(expected.aByCharge).toEqual({ status: 200, body: s.views.a });
    expect(expected.b).toEqual({ status: 200, body: s.views.b });
    expect(expected.c).toEqual({ status: 200, body: s.views.c });
    expect(expected.history).toEqual({
      status: 200,
      body: { items: [s.views.c, s.views.b, s.views.a], nextCursor: null },
    });
    expect(expected.summary).toEqual({ status: 200, body: s.summary });
    expect(expected.refunds).toEqual({
      status: 200,
      body: { items: [s.views.a, s.views.b], nextCursor: null },
    });
    expect(expected.paidDisputed).toEqual({
      status: 200,
      body: { items: [s.views.a], nextCursor: null },
    });

    // 2. Reversed (the dispute and the full refund before the payment itself), in one batch.
    const reversed = wire(await createPaymentConsumerTables(dynamo, 'payment-consumer'));
    await deliverAll(reversed, [...ordered].reverse(), 10);
    expect(await readAll(reversed, s)).toEqual(expected);

    // 3. Shuffled with duplicates in batches of 4, then the whole lot redelivered.
    const shuffled = wire(await createPaymentConsumerTables(dynamo, 'payment-consumer'));
    const delivery = shuffledWithDuplicates(ordered, 20260510);
    expect(delivery.length).toBeGreaterThan(ordered.length);
    await deliverAll(shuffled, delivery, 4);
    expect(await readAll(shuffled, s)).toEqual(expected);
    await deliverAll(shuffled, shuffledWithDuplicates(ordered, 7), 10);
    expect(await readAll(shuffled, s)).toEqual(expected);

    // 4. Shuffled with duplicates, batches of 3 consumed concurrently (Lambda's concurrent
    // pollers); records that lose a write race past the retries are redelivered, as SQS would.
    const concurrent = wire(await createPaymentConsumerTables(dynamo, 'payment-consumer'));
    let pending = shuffledWithDuplicates(ordered, 99);
    for (let round = 0; pending.length > 0; round++) {
      expect(round).toBeLessThan(5);
      const batches: SQSEvent[] = [];
      for (let index = 0; index < pending.length; index += 3) {
        batches.push(sqsBatch(pending.slice(index, index + 3)));
      }
      const responses = await Promise.all(batches.map((batch) => concurrent.consume(batch)));
      pending = responses.flatMap((response, index) => {
        const failed = new Set(failedIds(response));
        return batches[index]!.Records.filter((r) => failed.has(r.messageId)).map((r) => r.body);
      });
    }
    expect(await readAll(concurrent, s)).toEqual(expected);

    // Every event recorded exactly once in each table's ledger: redeliveries are not recorded again.
    const uniqueIds = s.events.map((event) => event.id).sort();
    for (const wired of [inOrder, reversed, shuffled, concurrent]) {
      const recorded: string[] = [];
      for (const payment of [s.a, s.b, s.c]) {
        for (const page of await wired.store.readLedger(payment.paymentId)) {
          recorded.push(...page.events.map((event) => event.eventId));
        }
      }
      expect(recorded.sort()).toEqual(uniqueIds);
    }
  });

  it('reports only the poison records as batch item failures, and the rest of the batch lands', async () => {
    const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
    const wired = wire(tables);
    const s = scenario();
    const malformed = intentSucceededEvent(s.a, at('10:01:01'));
    malformed.data.object.amount = 'forty dollars';
    const badEnvelope = { ...intentCreatedEvent(s.b), id: 'not-an-event-id' };
    const noKey = disputeCreatedEvent(s.b, at('16:00:00'));
    noKey.data.object.payment_intent = null;
    noKey.data.object.charge = null;
    const good = bodies(s.events);
    const batch = sqsBatch([
      ...good.slice(0, 4),
      'not json at all',
      JSON.stringify(malformed),
      ...good.slice(4, 7),
      JSON.stringify(badEnvelope),
      JSON.stringify(noKey),
      ...good.slice(7),
    ]);
    expect(batch.Records.length).toBeLessThanOrEqual(15);
    const poison = [4, 5, 9, 10].map((index) => batch.Records[index]!.messageId);

    const response = await wired.consume(batch);
    expect(failedIds(response)).toEqual([...poison].sort());
    expect(await wired.payment(s.a.paymentId)).toEqual({ status: 200, body: s.views.a });
    expect(await wired.payment(s.b.paymentId)).toEqual({ status: 200, body: s.views.b });
    expect(await wired.payment(s.c.paymentId)).toEqual({ status: 200, body: s.views.c });
    expect(await wired.summary()).toEqual({ status: 200, body: s.summary });

    // Redelivered alone, a poison record fails again and changes nothing.
    const again = await wired.consume(sqsBatch([JSON.stringify(malformed)]));
    expect(again.batchItemFailures).toHaveLength(1);
    expect(await wired.payment(s.a.paymentId)).toEqual({ status: 200, body: s.views.a });
  });

  it('acknowledges event types it does not handle, and a checkout session in subscription mode, writing nothing', async () => {
    const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
    const wired = wire(tables);
    const ignored = [
      customerCreatedEvent(at('09:00:00')),
      subscriptionCheckoutEvent(at('09:00:01')),
      { ...customerCreatedEvent(at('09:00:02')), type: 'invoice.paid' },
    ];
    const response = await wired.consume(sqsBatch(bodies(ignored)));
    expect(response.batchItemFailures).toEqual([]);
    expect(await scanKeys(tables.paymentsTableName)).toEqual([]);

    // Mixed into a batch of real payment events, they still only get acknowledged.
    const s = scenario();
    const mixed = await wired.consume(sqsBatch([...bodies(ignored), ...bodies(s.events)]));
    expect(mixed.batchItemFailures).toEqual([]);
    expect(await wired.payment(s.a.paymentId)).toEqual({ status: 200, body: s.views.a });
    expect(await wired.summary()).toEqual({ status: 200, body: s.summary });
  });

  it('gives a payment whose metadata names no user the user linked to its customer', async () => {
    const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
    const wired = wire(tables);
    const tag = uniquePaymentTag();
    const linkedCustomer = `cus_link${tag}`;
    const linkedUser = `user-linked-${tag}`;
    await linkCustomer(tables, linkedCustomer, linkedUser);

    const viaLink = fixturePayment({ customerId: linkedCustomer, created: at('08:00:00') });
    const unlinked = fixturePayment({ customerId: `cus_none${tag}`, created: at('08:10:00') });
    const ownUser = `user-own-${tag}`;
    const viaMetadata = fixturePayment({
      customerId: linkedCustomer,
      userId: ownUser,
      created: at('08:20:00'),
    });
    const response = await wired.consume(
      sqsBatch(
        bodies(
          [viaLink, unlinked, viaMetadata].flatMap((p) => [
            intentCreatedEvent(p),
            intentSucceededEvent(p),
          ]),
        ),
      ),
    );
    expect(response.batchItemFailures).toEqual([]);

    expect(await wired.payment(viaLink.paymentId)).toEqual({
      status: 200,
      body: expectedPaymentView(viaLink, { userId: linkedUser }),
    });
    expect(await wired.userPayments(linkedUser)).toEqual({
      status: 200,
      body: { items: [expectedPaymentView(viaLink, { userId: linkedUser })], nextCursor: null },
    });
    // No link known: the payment is recorded without a user.
    expect(await wired.payment(unlinked.paymentId)).toEqual({
      status: 200,
      body: expectedPaymentView(unlinked, { userId: null }),
    });
    // Metadata wins over the link.
    expect(await wired.payment(viaMetadata.paymentId)).toEqual({
      status: 200,
      body: expectedPaymentView(viaMetadata),
    });
    expect(await wired.userPayments(ownUser)).toEqual({
      status: 200,
      body: { items: [expectedPaymentView(viaMetadata)], nextCursor: null },
    });
  });

  it('links basil subscription payments by invoice_payment.paid before, between or after their events, showing nothing for a link alone', async () => {
    const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
    const wired = wire(tables);
    const tag = uniquePaymentTag();
    const userId = `user-basil-${tag}`;
    const payment = (created: string, charged: string) =>
      fixturePayment({
        userId,
        customerId: `cus_basil${tag}`,
        created: at(created),
        chargeCreated: at(charged),
      });
    // Their own payloads carry no invoice (FixturePayment purpose `other`, basil shape).
    const linkFirst = payment('06:00:00', '06:00:40');
    const linkBetween = payment('06:10:00', '06:10:40');
    const linkLast = payment('06:20:00', '06:20:40');
    const eventsOf = (p: FixturePayment) => ({
      created: asBasil(intentCreatedEvent(p)),
      charge: asBasil(chargeSucceededEvent(p)),
      succeeded: asBasil(intentSucceededEvent(p)),
      link: invoicePaymentPaidEvent(p, p.chargeCreated + 1),
    });
    const send = async (...events: PaymentEventBody[]) => {
      expect((await wired.consume(sqsBatch(bodies(events)))).batchItemFailures).toEqual([]);
    };
    const paid = (p: FixturePayment) => expectedPaymentView(p, { purpose: 'subscription' });
    const pending = (p: FixturePayment, purpose: PaymentPurpose) =>
      expectedPaymentView(p, { purpose, status: 'processing', chargeId: null, paidAt: null });
    const nothing = { status: 200, body: { items: [], nextCursor: null } };

    // 1. The link before the PaymentIntent: stored, but not shown, listed or counted.
    const first = eventsOf(linkFirst);
    await send(first.link);
    expect((await wired.payment(linkFirst.paymentId)).status).toBe(404);
    // No payment shown and no profile: the user is unknown to the history.
    expect(await wired.userPayments(userId)).toMatchObject({
      status: 404,
      body: { error: { code: 'user_not_found' } },
    });
    expect(await wired.paid('succeeded')).toEqual(nothing);
    expect(await wired.summary()).toEqual({ status: 200, body: { date: DAY, rows: [] } });
    await send(first.created);
    expect(await wired.payment(linkFirst.paymentId)).toEqual({
      status: 200,
      body: pending(linkFirst, 'subscription'),
    });
    await send(first.charge, first.succeeded);
    expect(await wired.payment(linkFirst.paymentId)).toEqual({
      status: 200,
      body: paid(linkFirst),
    });

    // 2. Between created and succeeded.
    const between = eventsOf(linkBetween);
    await send(between.created);
    expect(await wired.payment(linkBetween.paymentId)).toEqual({
      status: 200,
      body: pending(linkBetween, 'other'),
    });
    await send(between.link);
    expect(await wired.payment(linkBetween.paymentId)).toEqual({
      status: 200,
      body: pending(linkBetween, 'subscription'),
    });
    await send(between.succeeded, between.charge);
    expect(await wired.payment(linkBetween.paymentId)).toEqual({
      status: 200,
      body: paid(linkBetween),
    });

    // 3. After succeeded: `other` until the link says otherwise.
    const last = eventsOf(linkLast);
    await send(last.created, last.charge, last.succeeded);
    expect(await wired.payment(linkLast.paymentId)).toEqual({
      status: 200,
      body: expectedPaymentView(linkLast),
    });
    await send(last.link);
    expect(await wired.payment(linkLast.paymentId)).toEqual({ status: 200, body: paid(linkLast) });
    expect(await wired.payment(linkLast.chargeId)).toEqual({ status: 200, body: paid(linkLast) });

    // Everything again, shuffled with duplicates, with an InvoicePayment of a payment
    // record (not a Stripe payment: acknowledged, nothing written): no change.
    const recordOnly = fixturePayment({ created: at('06:30:00') });
    const record = invoicePaymentPaidEvent(recordOnly, at('06:30:01'), {
      type: 'payment_record',
      payment_record: `prec_${tag}`,
    });
    const all = [first, between, last].flatMap((e) => [e.created, e.charge, e.succeeded, e.link]);
    await deliverAll(wired, shuffledWithDuplicates(bodies([...all, record]), 20250331), 5);
    for (const p of [linkFirst, linkBetween, linkLast]) {
      expect(await wired.payment(p.paymentId)).toEqual({ status: 200, body: paid(p) });
    }
    expect(await wired.userPayments(userId)).toEqual({
      status: 200,
      body: { items: [paid(linkLast), paid(linkBetween), paid(linkFirst)], nextCursor: null },
    });
    expect(await wired.summary()).toEqual({
      status: 200,
      body: {
        date: DAY,
        rows: [{ status: 'succeeded', gateway: 'stripe', currency: 'usd', count: 3, amount: 6000 }],
      },
    });
    const recorded: string[] = [];
    for (const p of [linkFirst, linkBetween, linkLast]) {
      for (const page of await wired.store.readLedger(p.paymentId)) {
        recorded.push(...page.events.map((event) => event.eventId));
      }
    }
    expect(recorded.sort()).toEqual(all.map((event) => event.id).sort());
    expect((await wired.payment(recordOnly.paymentId)).status).toBe(404);
    expect(await wired.store.readLedger(recordOnly.paymentId)).toEqual([]);
  });

  describe('store outages', () => {
    const clientTo = (endpoint: string) =>
      new DynamoDBClient({
        endpoint,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        maxAttempts: 1,
      });

    it('fails every record while DynamoDB is unreachable, and applies them once it is back', async () => {
      const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
      const s = scenario();
      const batch = sqsBatch(bodies(s.events));
      const down = await wire(tables, clientTo('http://127.0.0.1:9')).consume(batch);
      expect(failedIds(down)).toEqual(batch.Records.map((r) => r.messageId).sort());
      expect(await scanKeys(tables.paymentsTableName)).toEqual([]);

      // SQS redelivers the same messages once the table answers again.
      const healthy = wire(tables);
      const up = await healthy.consume(batch);
      expect(up.batchItemFailures).toEqual([]);
      expect(await healthy.payment(s.a.paymentId)).toEqual({ status: 200, body: s.views.a });
      expect(await healthy.summary()).toEqual({ status: 200, body: s.summary });
    });

    it('fails every record when the payments table is missing', async () => {
      const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
      const s = scenario();
      const batch = sqsBatch(bodies(s.events));
      const missing = wire({ ...tables, paymentsTableName: uniqueName('no-such-payments') });
      const response = await missing.consume(batch);
      expect(failedIds(response)).toEqual(batch.Records.map((r) => r.messageId).sort());
      expect(await scanKeys(tables.paymentsTableName)).toEqual([]);
    });

    it('fails every record when the customer directory is down, rather than record a payment without its user', async () => {
      const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
      const tag = uniquePaymentTag();
      const payment = fixturePayment({ customerId: `cus_dir${tag}`, created: at('07:00:00') });
      const batch = sqsBatch(bodies([intentCreatedEvent(payment), intentSucceededEvent(payment)]));
      const noDirectory = wire({ ...tables, billingTableName: uniqueName('no-such-billing') });
      const response = await noDirectory.consume(batch);
      expect(failedIds(response)).toEqual(batch.Records.map((r) => r.messageId).sort());
      expect(await scanKeys(tables.paymentsTableName)).toEqual([]);

      await linkCustomer(tables, payment.customerId!, `user-dir-${tag}`);
      const healthy = wire(tables);
      expect((await healthy.consume(batch)).batchItemFailures).toEqual([]);
      expect(await healthy.payment(payment.paymentId)).toEqual({
        status: 200,
        body: expectedPaymentView(payment, { userId: `user-dir-${tag}` }),
      });
    });

    it('writes nothing of a payment when its transaction fails: no payment, ledger page or summary', async () => {
      const tables = await createPaymentConsumerTables(dynamo, 'payment-consumer');
      const s = scenario();
      const failing = clientTo(inject('dynamoEndpoint'));
      let refused = 0;
      // Fault injection: reads and charge pointers go through, every transaction fails.
      failing.middlewareStack.add(
        (next, ctx) => async (args) => {
          if (ctx.commandName === 'TransactWriteItemsCommand') {
            refused += 1;
            throw Object.assign(new Error('Internal server error'), {
              name: 'InternalServerError',
              $fault: 'server',
              $metadata: { httpStatusCode: 500 },
            });
          }
          return next(args);
        },
        { step: 'initialize', name: 'failTransactions' },
      );
      const batch = sqsBatch(bodies(s.events));
      const response = await wire(tables, failing).consume(batch);
      expect(refused).toBeGreaterThan(0);
      expect(failedIds(response)).toEqual(batch.Records.map((r) => r.messageId).sort());

      const healthy = wire(tables);
      // Only charge pointers (written first by design) may exist: no payment, ledger or summary item.
      const keys = await scanKeys(tables.paymentsTableName);
      expect(keys.filter((key) => !/^CHARGE#ch_[A-Za-z0-9]+\|CHARGE$/.test(key))).toEqual([]);
      for (const payment of [s.a, s.b, s.c]) {
        expect((await healthy.payment(payment.paymentId)).status).toBe(404);
        expect((await healthy.payment(payment.chargeId)).status).toBe(404);
        expect(await healthy.store.readLedger(payment.paymentId)).toEqual([]);
      }
      expect(await healthy.summary()).toEqual({ status: 200, body: { date: DAY, rows: [] } });
      // No payment of the user was stored, and it has no profile: unknown to the history.
      expect((await healthy.userPayments(s.userId)).status).toBe(404);

      // Redelivered to a healthy store: applied once, counted once.
      expect((await healthy.consume(batch)).batchItemFailures).toEqual([]);
      expect(await healthy.payment(s.a.paymentId)).toEqual({ status: 200, body: s.views.a });
      expect(await healthy.payment(s.a.chargeId)).toEqual({ status: 200, body: s.views.a });
      expect(await healthy.summary()).toEqual({ status: 200, body: s.summary });
    });
  });
});
