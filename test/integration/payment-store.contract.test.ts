/**
 * One contract, two implementations: the in-memory payments fake the unit and
 * property tests rely on must behave like the DynamoDB adapter on DynamoDB Local.
 */
import { GetItemCommand, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
} from '@aws-sdk/lib-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { itemSize } from '../../bench/dynamo-capacity.ts';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import { encodeCompressedJson } from '../../functions/adapters/dynamodb/compressed-json.ts';
import {
  DynamoDbCustomerDirectory,
  DynamoDbPaymentStore,
  type PaymentLedgerPage,
  type PaymentReadOperation,
  paymentItem,
} from '../../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import { decodeLedgerPages } from '../../functions/adapters/dynamodb/ledger-pack-codec.ts';
import { decodePaymentState } from '../../functions/adapters/dynamodb/payment-state-codec.ts';
import {
  createPaymentsTableInput,
  PAYMENT_INDEX_ATTRIBUTE,
  PAYMENT_TTL_ATTRIBUTE,
  paymentIndexAttributes,
  paymentKeys,
} from '../../functions/adapters/dynamodb/payment-table-schema.ts';
import { decodePaymentView } from '../../functions/adapters/dynamodb/payment-view-codec.ts';
import { InMemoryPaymentStore } from '../../functions/adapters/memory/in-memory-payment-store.ts';
import { addDays, cursorCodec } from '../../functions/adapters/paging/query-cursor.ts';
import type { PaymentState } from '../../functions/core/payments/payment-state.ts';
import {
  type CustomerDirectory,
  InvalidCursorError,
  type Page,
  type PaymentCommit,
  type PaymentQueries,
  type PaymentStatus,
  type PaymentStore,
  type PaymentView,
  type SummaryDelta,
} from '../../functions/core/payments/ports.ts';
import { METADATA } from '../../lib/metadata.ts';
import { PaymentTables } from '../../lib/payment-tables.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createPaymentConsumerTables } from '../helpers/payment-consumer-harness.ts';
import { tempOutdir } from '../helpers/temp-outdir.ts';

type Store = PaymentStore &
  PaymentQueries & { readLedger(paymentId: string): Promise<PaymentLedgerPage[]> };

interface Harness {
  store: Store;
  directory: CustomerDirectory;
  /** Links a customer to a user (null: an account with no user), as the subscription context does. */
  link(customerId: string, userId: string | null): Promise<void>;
}

// DynamoDB Local runs TTL deletion: ledger pages must be stamped "now", or they
// expire (and vanish) while the test reads them.
const appliedAt = Date.now();
let counter = 0;
const fresh = (prefix: string) => `${prefix}${Date.now().toString(36)}${counter++}`;
/** A day no other test uses, so summaries and reports start empty in a shared store. */
let dayCounter = 0;
const freshDay = () => addDays('2032-01-01', 10 * dayCounter++);
const at = (date: string, time: string) => `${date}T${time}.000Z`;

/** A view; one with a `refundedAt` has money refunded (half) unless it says how much. */
function paymentView(
  overrides: Partial<PaymentView> & Pick<PaymentView, 'paymentId'>,
): PaymentView {
  return {
    chargeId: null,
    userId: null,
    customerId: null,
    amount: 1_000,
    amountRefunded: overrides.refundedAt ? 500 : 0,
    currency: 'usd',
    status: 'succeeded',
    purpose: 'other',
    penaltyIds: [],
    createdAt: at('2031-01-01', '10:00:00'),
    paidAt: null,
    refundedAt: null,
    failureCode: null,
    dispute: null,
    ...overrides,
  };
}

/** Any JSON object with the payment id stands for the domain's state here. */
const stateOf = (paymentId: string, revision: number) =>
  ({ paymentId, note: `revision ${revision}` }) as unknown as PaymentState;

function commitOf(
  view: PaymentView,
  expectedRevision: number,
  extras: { summary?: SummaryDelta[]; newChargeIds?: string[]; eventIds?: string[] } = {},
): PaymentCommit {
  const eventIds = extras.eventIds ?? [fresh('evt_')];
  return {
    paymentId: view.paymentId,
    expectedRevision,
    state: stateOf(view.paymentId, expectedRevision + 1),
    view,
    recentEvents: eventIds.map((id) => id.slice(-8)),
    ledger: {
      appliedAt,
      events: eventIds.map((eventId) => ({
        eventId,
        type: 'payment_intent.succeeded',
        outcome: 'applied',
        receivedAt: appliedAt - 1_000,
      })),
    },
    summary: extras.summary ?? [],
    newChargeIds: extras.newChargeIds ?? [],
  };
}

/** The summary delta of a new payment entering its bucket. */
const enters = (view: PaymentView): SummaryDelta => ({
  date: view.createdAt.slice(0, 10),
  status: view.status,
  currency: view.currency,
  count: 1,
  amount: view.amount,
});

/** The summary deltas of a payment moving between statuses. */
const moves = (view: PaymentView, to: PaymentStatus): SummaryDelta[] => [
  { ...enters(view), count: -1, amount: -view.amount },
  { ...enters(view), status: to },
];

/** Follows cursors to the end; every page that has a next cursor must be full. */
async function allPages(
  limit: number,
  read: (cursor: string | undefined) => Promise<Page<PaymentView>>,
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages < 1_000; pages++) {
    const page = await read(cursor);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    ids.push(...page.items.map((view) => view.paymentId));
    if (page.nextCursor === null) return { ids, pages };
    expect(page.items).toHaveLength(limit);
    cursor = page.nextCursor;
  }
  throw new Error('cursors never ended');
}

const byKey = (time: (view: PaymentView) => string | null) => (a: PaymentView, b: PaymentView) => {
  const ka = `${time(a)}#${a.paymentId}`;
  const kb = `${time(b)}#${b.paymentId}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** A cursor with one character of its payload changed. */
function altered(cursor: string): string {
  const json = Buffer.from(cursor, 'base64url').toString('utf8');
  const index = json.search(/[0-9]/);
  const digit = json[index] === '1' ? '2' : '1';
  const changed = `${json.slice(0, index)}${digit}${json.slice(index + 1)}`;
  return Buffer.from(changed, 'utf8').toString('base64url');
}

function contract(name: string, make: () => Promise<Harness>) {
  describe(`PaymentStore contract: ${name}`, () => {
    let store: Store;
    let harness: Harness;
    beforeAll(async () => {
      harness = await make();
      store = harness.store;
    });

    it('commits a payment with its ledger page, and loads it back', async () => {
      const view = paymentView({ paymentId: fresh('pi_'), userId: fresh('user-') });
      const commit = commitOf(view, 0, { eventIds: [fresh('evt_a'), fresh('evt_b')] });
      expect(await store.commit(commit)).toEqual({ status: 'committed' });
      const loaded = await store.loadPayments([view.paymentId, view.paymentId, 'pi_missing']);
      expect([...loaded.keys()]).toEqual([view.paymentId]);
      expect(loaded.get(view.paymentId)).toEqual({
        state: commit.state,
        revision: 1,
        recentEvents: commit.recentEvents,
      });
      expect(await store.readLedger(view.paymentId)).toEqual([
        { paymentId: view.paymentId, revision: 1, appliedAt, events: commit.ledger.events },
      ]);
      expect(await store.getPayment(view.paymentId)).toEqual(view);

      const next = {
        ...view,
        status: 'refunded' as const,
        refundedAt: at('2031-01-02', '00:00:00'),
      };
      expect(await store.commit(commitOf(next, 1))).toEqual({ status: 'committed' });
      expect((await store.readLedger(view.paymentId)).map((page) => page.revision)).toEqual([1, 2]);
      expect(await store.getPayment(view.paymentId)).toEqual(next);
      expect(await store.readLedger(fresh('pi_none'))).toEqual([]);
    });

    it('finds a PaymentIntent payment by its charge even when a viewless record has the charge id', async () => {
      const chargeId = fresh('ch_');
      const view = paymentView({ paymentId: fresh('pi_'), chargeId });
      await store.commit(commitOf(view, 0, { newChargeIds: [chargeId] }));
      // A refund that named only the charge made a record of its own, with no view.
      const orphan = { ...commitOf(paymentView({ paymentId: chargeId }), 0), view: null };
      expect(await store.commit(orphan)).toEqual({ status: 'committed' });
      expect(await store.getPayment(chargeId)).toEqual(view);
    });

    it('stores a payment without a view, but neither finds, lists nor counts it until it has one', async () => {
      const day = freshDay();
      const userId = fresh('user-');
      const chargeId = fresh('ch_');
      const view = paymentView({
        paymentId: fresh('pi_'),
        userId,
        chargeId,
        status: 'refunded',
        createdAt: at(day, '08:00:00'),
        paidAt: at(day, '08:00:01'),
        refundedAt: at(day, '09:00:00'),
      });
      // A refund arrived before the payment's own events: no amount yet, so no view.
      const early = { ...commitOf(view, 0, { newChargeIds: [chargeId] }), view: null };
      expect(await store.commit(early)).toEqual({ status: 'committed' });
      expect((await store.loadPayments([view.paymentId])).get(view.paymentId)?.revision).toBe(1);
      expect(await store.readLedger(view.paymentId)).toHaveLength(1);
      expect(await store.getPayment(view.paymentId)).toBeNull();
      expect(await store.getPayment(chargeId)).toBeNull();
      expect((await store.listUserPayments({ userId, limit: 10 })).items).toEqual([]);
      expect((await store.listRefunds({ from: day, to: day, limit: 10 })).items).toEqual([]);
      expect(
        (await store.listPaid({ status: 'refunded', paidFrom: day, paidTo: day, limit: 10 })).items,
      ).toEqual([]);
      expect(await store.dailySummary(day)).toEqual([]);

      expect(await store.commit(commitOf(view, 1, { summary: [enters(view)] }))).toEqual({
        status: 'committed',
      });
      expect(await store.getPayment(chargeId)).toEqual(view);
      expect((await store.listUserPayments({ userId, limit: 10 })).items).toEqual([view]);
      expect((await store.listRefunds({ from: day, to: day, limit: 10 })).items).toEqual([view]);
      expect(await store.dailySummary(day)).toHaveLength(1);
    });

    it('refuses a commit on a stale revision and writes nothing of it', async () => {
      const day = freshDay();
      const view = paymentView({ paymentId: fresh('pi_'), createdAt: at(day, '09:00:00') });
      const first = commitOf(view, 0, { summary: [enters(view)] });
      expect(await store.commit(first)).toEqual({ status: 'committed' });
      const stale = commitOf({ ...view, status: 'failed', failureCode: 'card_declined' }, 0, {
        summary: moves(view, 'failed'),
        newChargeIds: [fresh('ch_')],
      });
      expect(await store.commit(stale)).toEqual({ status: 'revision-conflict' });
      expect(await store.readLedger(view.paymentId)).toHaveLength(1);
      expect(await store.getPayment(view.paymentId)).toEqual(view);
      expect((await store.loadPayments([view.paymentId])).get(view.paymentId)?.revision).toBe(1);
      expect(await store.dailySummary(day)).toEqual([
        { status: 'succeeded', gateway: 'stripe', currency: 'usd', count: 1, amount: 1_000 },
      ]);
      const ahead = commitOf(view, 5);
      expect(await store.commit(ahead)).toEqual({ status: 'revision-conflict' });
    });

    it('lets exactly one of two racing commits on the same revision win', async () => {
      const paymentId = fresh('pi_');
      const results = await Promise.all([
        store.commit(commitOf(paymentView({ paymentId }), 0)),
        store.commit(commitOf(paymentView({ paymentId, status: 'failed' }), 0)),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['committed', 'revision-conflict']);
      expect(await store.readLedger(paymentId)).toHaveLength(1);
    });

    it('commits many payments at once; a losing commit aborts at most its companions, which resend fine', async () => {
      const day = freshDay();
      const taken = paymentView({ paymentId: fresh('pi_'), createdAt: at(day, '01:00:00') });
      await store.commit(commitOf(taken, 0, { summary: [enters(taken)] }));
      const others = [0, 1].map((n) =>
        paymentView({ paymentId: fresh('pi_'), createdAt: at(day, `0${n + 2}:00:00`) }),
      );
      const commits = [
        commitOf(others[0]!, 0, { summary: [enters(others[0]!)] }),
        commitOf(taken, 0, { summary: [enters(taken)] }),
        commitOf(others[1]!, 0, { summary: [enters(others[1]!)] }),
      ];
      const results = await store.commitAll(commits);
      expect(results[1]).toEqual({ status: 'revision-conflict' });
      for (const index of [0, 2]) {
        expect(['committed', 'aborted']).toContain(results[index]!.status);
        if (results[index]!.status === 'aborted') {
          expect(await store.commit(commits[index]!)).toEqual({ status: 'committed' });
        }
      }
      const loaded = await store.loadPayments(others.map((view) => view.paymentId));
      expect([...loaded.values()].map((stored) => stored.revision)).toEqual([1, 1]);
      expect(await store.readLedger(taken.paymentId)).toHaveLength(1);
      // The loser's delta never reached the summary; the others' did, once.
      expect(await store.dailySummary(day)).toEqual([
        { status: 'succeeded', gateway: 'stripe', currency: 'usd', count: 3, amount: 3_000 },
      ]);
    });

    it('commits a payment twice in one call as two calls in order would, its ledger chained', async () => {
      const day = freshDay();
      const pending = paymentView({
        paymentId: fresh('pi_twice'),
        createdAt: at(day, '01:00:00'),
        status: 'processing',
      });
      const paid = { ...pending, status: 'succeeded' as const };
      const other = paymentView({ paymentId: fresh('pi_'), createdAt: at(day, '02:00:00') });
      const [firstEvent, secondEvent] = [fresh('evt_first'), fresh('evt_second')];
      const results = await store.commitAll([
        commitOf(pending, 0, { summary: [enters(pending)], eventIds: [firstEvent] }),
        commitOf(other, 0, { summary: [enters(other)] }),
        commitOf(paid, 1, { summary: moves(pending, 'succeeded'), eventIds: [secondEvent] }),
      ]);
      expect(results.map((result) => result.status)).toEqual([
        'committed',
        'committed',
        'committed',
      ]);
      expect((await store.loadPayments([paid.paymentId])).get(paid.paymentId)?.revision).toBe(2);
      const pages = await store.readLedger(paid.paymentId);
      expect(pages.map((page) => [page.revision, page.events[0]?.eventId])).toEqual([
        [1, firstEvent],
        [2, secondEvent],
      ]);
      expect(await store.getPayment(paid.paymentId)).toEqual(paid);
      expect(await store.dailySummary(day)).toEqual([
        { status: 'succeeded', gateway: 'stripe', currency: 'usd', count: 2, amount: 2_000 },
      ]);
    });

    it('lets only the first of two commits of a payment on one revision in one call win', async () => {
      const day = freshDay();
      const view = paymentView({ paymentId: fresh('pi_twice'), createdAt: at(day, '01:00:00') });
      const rival = { ...view, status: 'failed' as const };
      const results = await store.commitAll([
        commitOf(view, 0, { summary: [enters(view)] }),
        commitOf(rival, 0, { summary: [enters(rival)] }),
      ]);
      expect(results).toEqual([{ status: 'committed' }, { status: 'revision-conflict' }]);
      expect(await store.readLedger(view.paymentId)).toHaveLength(1);
      expect(await store.getPayment(view.paymentId)).toEqual(view);
      expect(await store.dailySummary(day)).toEqual([
        { status: 'succeeded', gateway: 'stripe', currency: 'usd', count: 1, amount: 1_000 },
      ]);
    });

    it('commits and loads more payments than one transaction or batch read holds', async () => {
      const day = freshDay();
      const views = Array.from({ length: 120 }, (_, n) =>
        paymentView({
          paymentId: fresh('pi_many'),
          createdAt: at(n % 2 === 0 ? day : addDays(day, 1), '12:00:00'),
          amount: 100 + n,
        }),
      );
      const results = await store.commitAll(
        views.map((view) => commitOf(view, 0, { summary: [enters(view)] })),
      );
      expect(results.every((result) => result.status === 'committed')).toBe(true);
      const loaded = await store.loadPayments([...views.map((view) => view.paymentId), 'pi_x']);
      expect([...loaded.keys()].sort()).toEqual(views.map((view) => view.paymentId).sort());
      const evenTotal = views.filter((_, n) => n % 2 === 0).reduce((sum, v) => sum + v.amount, 0);
      expect(await store.dailySummary(day)).toEqual([
        { status: 'succeeded', gateway: 'stripe', currency: 'usd', count: 60, amount: evenTotal },
      ]);
    });

    it('finds a payment by its PaymentIntent id, by any of its charge ids, or by its own charge id', async () => {
      const paymentId = fresh('pi_');
      const [first, second] = [fresh('ch_'), fresh('ch_')];
      const view = paymentView({ paymentId, chargeId: first });
      await store.commit(commitOf(view, 0, { newChargeIds: [first] }));
      const retried = { ...view, chargeId: second };
      await store.commit(commitOf(retried, 1, { newChargeIds: [second] }));
      expect(await store.getPayment(paymentId)).toEqual(retried);
      expect(await store.getPayment(first)).toEqual(retried);
      expect(await store.getPayment(second)).toEqual(retried);

      const bare = fresh('ch_');
      const bareView = paymentView({ paymentId: bare, chargeId: bare });
      await store.commit(commitOf(bareView, 0, { newChargeIds: [bare] }));
      expect(await store.getPayment(bare)).toEqual(bareView);

      expect(await store.getPayment(fresh('pi_unknown'))).toBeNull();
      expect(await store.getPayment(fresh('ch_unknown'))).toBeNull();
    });

    it("lists a user's payments newest first, paged to the end, and by status", async () => {
      const userId = fresh('user-');
      const day = freshDay();
      const statuses: PaymentStatus[] = ['succeeded', 'failed', 'refunded', 'succeeded'];
      const views = Array.from({ length: 11 }, (_, n) =>
        paymentView({
          paymentId: fresh('pi_hist'),
          userId,
          status: statuses[n % statuses.length]!,
          // The 8th and 11th payments share a createdAt: ties resolve by payment id.
          createdAt: at(addDays(day, n % 3), `1${n === 10 ? 7 : n}:00:00`),
        }),
      );
      const stranger = paymentView({ paymentId: fresh('pi_'), userId: fresh('user-') });
      await store.commitAll([...views, stranger].map((view) => commitOf(view, 0)));
      const newestFirst = [...views].sort(byKey((v) => v.createdAt)).reverse();

      const all = await allPages(4, (cursor) =>
        store.listUserPayments({ userId, limit: 4, ...(cursor ? { cursor } : {}) }),
      );
      expect(all.ids).toEqual(newestFirst.map((view) => view.paymentId));
      expect(all.pages).toBe(3);

      const one = await store.listUserPayments({ userId, limit: 100 });
      expect(one.items).toEqual(newestFirst);
      expect(one.nextCursor).toBeNull();

      const succeeded = await allPages(2, (cursor) =>
        store.listUserPayments({
          userId,
          status: 'succeeded',
          limit: 2,
          ...(cursor ? { cursor } : {}),
        }),
      );
      expect(succeeded.ids).toEqual(
        newestFirst.filter((view) => view.status === 'succeeded').map((view) => view.paymentId),
      );
      expect(
        (await store.listUserPayments({ userId, status: 'disputed', limit: 10 })).items,
      ).toEqual([]);
      expect((await store.listUserPayments({ userId: fresh('nobody-'), limit: 10 })).items).toEqual(
        [],
      );
    });

    it('reports refunds by refund date, oldest first across days and shards, never-refunded payments excluded', async () => {
      const from = freshDay();
      const to = addDays(from, 2);
      const refunded = Array.from({ length: 21 }, (_, n) =>
        paymentView({
          paymentId: fresh('pi_ref'),
          status: n % 3 === 0 ? 'partially_refunded' : n % 3 === 1 ? 'refunded' : 'disputed',
          paidAt: at(addDays(from, -1), '08:00:00'),
          refundedAt: at(
            addDays(from, n % 3),
            `${String(10 + (n % 7)).padStart(2, '0')}:0${n % 10}:00`,
          ),
        }),
      );
      const outside = [addDays(from, -1), addDays(to, 1)].map((day) =>
        paymentView({
          paymentId: fresh('pi_out'),
          status: 'refunded',
          refundedAt: at(day, '12:00:00'),
        }),
      );
      const never = [
        ...Array.from({ length: 4 }, () =>
          paymentView({ paymentId: fresh('pi_never'), createdAt: at(from, '12:00:00') }),
        ),
        // Its only refund failed: `refundedAt` stays, nothing is refunded, so not listed.
        paymentView({
          paymentId: fresh('pi_failedrefund'),
          refundedAt: at(from, '13:00:00'),
          amountRefunded: 0,
        }),
      ];
      await store.commitAll([...refunded, ...outside, ...never].map((view) => commitOf(view, 0)));
      const expected = [...refunded].sort(byKey((v) => v.refundedAt)).map((v) => v.paymentId);

      const paged = await allPages(4, (cursor) =>
        store.listRefunds({ from, to, limit: 4, ...(cursor ? { cursor } : {}) }),
      );
      expect(paged.ids).toEqual(expected);
      const whole = await store.listRefunds({ from, to, limit: 100 });
      expect(whole.items.map((v) => v.paymentId)).toEqual(expected);
      expect(whole.nextCursor).toBeNull();
      const oneDay = await store.listRefunds({ from: to, to, limit: 100 });
      expect(oneDay.items.map((v) => v.paymentId)).toEqual(
        expected.filter((id) =>
          refunded.find((v) => v.paymentId === id)!.refundedAt!.startsWith(to),
        ),
      );
      expect((await store.listRefunds({ from: to, to: from, limit: 10 })).items).toEqual([]);
    });

    it('ends a report whose last page is full with no cursor, however many empty days follow', async () => {
      const from = freshDay();
      // Eight refunds on the first day of a three-day range, read four at a time.
      const refunded = Array.from({ length: 8 }, (_, n) =>
        paymentView({
          paymentId: fresh('pi_full'),
          status: 'refunded',
          refundedAt: at(from, `1${n}:00:00`),
        }),
      );
      await store.commitAll(refunded.map((view) => commitOf(view, 0)));
      const read = (to: string) =>
        allPages(4, (cursor) =>
          store.listRefunds({ from, to, limit: 4, ...(cursor ? { cursor } : {}) }),
        );
      for (const to of [from, addDays(from, 2), addDays(from, 91)]) {
        const paged = await read(to);
        expect(paged.ids).toEqual(refunded.map((view) => view.paymentId));
        expect(paged.pages).toBe(2);
      }
      // A later refund two days on: the full first-day page now hands out a cursor.
      const later = paymentView({
        paymentId: fresh('pi_later'),
        status: 'refunded',
        refundedAt: at(addDays(from, 2), '09:00:00'),
      });
      await store.commit(commitOf(later, 0));
      const paged = await read(addDays(from, 2));
      expect(paged.ids).toEqual([...refunded, later].map((view) => view.paymentId));
      expect(paged.pages).toBe(3);
    });

    it('reports payments of one status by paid date, oldest first; a status move leaves the report', async () => {
      const from = freshDay();
      const to = addDays(from, 1);
      const paid = Array.from({ length: 9 }, (_, n) =>
        paymentView({
          paymentId: fresh('pi_paid'),
          status: n % 4 === 3 ? 'refunded' : 'succeeded',
          paidAt: at(addDays(from, n % 2), `0${n}:30:00`),
        }),
      );
      const unpaid = paymentView({ paymentId: fresh('pi_'), status: 'failed' });
      const late = paymentView({ paymentId: fresh('pi_'), paidAt: at(addDays(to, 1), '00:00:00') });
      await store.commitAll([...paid, unpaid, late].map((view) => commitOf(view, 0)));
      const of = (status: PaymentStatus) =>
        [...paid]
          .filter((v) => v.status === status)
          .sort(byKey((v) => v.paidAt))
          .map((v) => v.paymentId);

      const succeeded = await allPages(2, (cursor) =>
        store.listPaid({
          status: 'succeeded',
          paidFrom: from,
          paidTo: to,
          limit: 2,
          ...(cursor ? { cursor } : {}),
        }),
      );
      expect(succeeded.ids).toEqual(of('succeeded'));
      const refunded = await store.listPaid({
        status: 'refunded',
        paidFrom: from,
        paidTo: to,
        limit: 10,
      });
      expect(refunded.items.map((v) => v.paymentId)).toEqual(of('refunded'));
      expect(refunded.nextCursor).toBeNull();

      const moving = paid[0]!;
      await store.commit(commitOf({ ...moving, status: 'disputed' }, 1));
      const after = await store.listPaid({
        status: 'succeeded',
        paidFrom: from,
        paidTo: to,
        limit: 100,
      });
      expect(after.items.map((v) => v.paymentId)).toEqual(
        of('succeeded').filter((id) => id !== moving.paymentId),
      );
      const disputed = await store.listPaid({
        status: 'disputed',
        paidFrom: from,
        paidTo: to,
        limit: 100,
      });
      expect(disputed.items).toEqual([{ ...moving, status: 'disputed' }]);
    });

    it('keeps the daily summary exact as payments move between statuses', async () => {
      const day = freshDay();
      const made = (status: PaymentStatus, currency: string, amount: number) =>
        paymentView({
          paymentId: fresh('pi_sum'),
          status,
          currency,
          amount,
          createdAt: at(day, '15:00:00'),
        });
      const views = [
        made('succeeded', 'usd', 1_000),
        made('succeeded', 'usd', 2_000),
        made('succeeded', 'usd', 3_000),
        made('succeeded', 'eur', 500),
        made('failed', 'usd', 700),
      ];
      await store.commitAll(views.map((view) => commitOf(view, 0, { summary: [enters(view)] })));
      // Refunds move payments between buckets; the amount stays gross.
      const [first, , , euro] = views;
      await store.commitAll([
        commitOf({ ...first!, status: 'refunded' }, 1, { summary: moves(first!, 'refunded') }),
        commitOf({ ...euro!, status: 'refunded' }, 1, { summary: moves(euro!, 'refunded') }),
      ]);
      const row = (status: PaymentStatus, currency: string, count: number, amount: number) => ({
        status,
        gateway: 'stripe',
        currency,
        count,
        amount,
      });
      expect(await store.dailySummary(day)).toEqual([
        row('failed', 'usd', 1, 700),
        row('refunded', 'eur', 1, 500),
        row('refunded', 'usd', 1, 1_000),
        row('succeeded', 'usd', 2, 5_000),
      ]);
      expect(await store.dailySummary(addDays(day, 1))).toEqual([]);
    });

    it('refuses cursors from other queries and altered cursors', async () => {
      const [alice, bob] = [fresh('user-'), fresh('user-')];
      const day = freshDay();
      const views = [alice, alice, alice, bob, bob].map((userId, n) =>
        paymentView({
          paymentId: fresh('pi_cur'),
          userId,
          createdAt: at(day, `0${n}:00:00`),
          paidAt: at(day, `0${n}:10:00`),
          refundedAt: at(day, `0${n}:20:00`),
          status: 'refunded',
        }),
      );
      await store.commitAll(views.map((view) => commitOf(view, 0)));
      const page = await store.listUserPayments({ userId: alice, limit: 1 });
      const cursor = page.nextCursor!;
      expect(cursor).toEqual(expect.any(String));
      // The same query with another limit accepts it.
      expect(
        (await store.listUserPayments({ userId: alice, limit: 5, cursor })).items,
      ).toHaveLength(2);

      const refused: (() => Promise<unknown>)[] = [
        () => store.listUserPayments({ userId: bob, limit: 1, cursor }),
        () => store.listUserPayments({ userId: alice, status: 'refunded', limit: 1, cursor }),
        () => store.listUserPayments({ userId: alice, limit: 1, cursor: altered(cursor) }),
        () => store.listUserPayments({ userId: alice, limit: 1, cursor: `${cursor.slice(0, -2)}` }),
        () => store.listUserPayments({ userId: alice, limit: 1, cursor: 'not a cursor' }),
        () => store.listUserPayments({ userId: alice, limit: 1, cursor: 'x'.repeat(5_000) }),
        () =>
          store.listUserPayments({
            userId: alice,
            limit: 1,
            cursor: Buffer.from('{"p":"x","h":"y"}').toString('base64url'),
          }),
      ];
      const refunds = await store.listRefunds({ from: day, to: day, limit: 1 });
      const refundCursor = refunds.nextCursor!;
      expect(refundCursor).toEqual(expect.any(String));
      refused.push(
        () => store.listRefunds({ from: day, to: addDays(day, 1), limit: 1, cursor: refundCursor }),
        () => store.listRefunds({ from: day, to: day, limit: 1, cursor: altered(refundCursor) }),
        () =>
          store.listPaid({
            status: 'refunded',
            paidFrom: day,
            paidTo: day,
            limit: 1,
            cursor: refundCursor,
          }),
        () => store.listUserPayments({ userId: alice, limit: 1, cursor: refundCursor }),
      );
      for (const attempt of refused) {
        await expect(attempt()).rejects.toBeInstanceOf(InvalidCursorError);
      }
      const paid = await store.listPaid({
        status: 'refunded',
        paidFrom: day,
        paidTo: day,
        limit: 2,
      });
      await expect(
        store.listPaid({
          status: 'succeeded',
          paidFrom: day,
          paidTo: day,
          limit: 2,
          cursor: paid.nextCursor!,
        }),
      ).rejects.toBeInstanceOf(InvalidCursorError);
    });

    it('finds the linked user of each known customer, and no one else', async () => {
      const [linked, another, unlinked, unknown] = [
        fresh('cus_'),
        fresh('cus_'),
        fresh('cus_'),
        fresh('cus_'),
      ];
      await harness.link(linked, 'user-1');
      await harness.link(another, 'user-2');
      await harness.link(unlinked, null);
      const users = await harness.directory.userIdsOf([linked, another, unlinked, unknown, linked]);
      expect(users).toEqual(
        new Map([
          [linked, 'user-1'],
          [another, 'user-2'],
        ]),
      );
      expect(await harness.directory.userIdsOf([])).toEqual(new Map());
    });
  });
}

function memoryHarness(options: { packed?: boolean } = {}): Harness {
  const store = new InMemoryPaymentStore(options);
  return {
    store,
    directory: store,
    link: async (customerId, userId) => store.linkCustomer(customerId, userId),
  };
}

async function dynamoHarness(
  options: { onReadUnits?: (operation: PaymentReadOperation, units: number) => void } = {},
) {
  const { dynamo } = emulatorClients();
  const { paymentsTableName, billingTableName } = await createPaymentConsumerTables(
    dynamo,
    'billing-suite',
  );
  const store = new DynamoDbPaymentStore({ client: dynamo, paymentsTableName, ...options });
  const directory = new DynamoDbCustomerDirectory({ client: dynamo, billingTableName });
  const documents = DynamoDBDocumentClient.from(dynamo);
  const harness: Harness = {
    store,
    directory,
    link: async (customerId, userId) => {
      await documents.send(
        new PutCommand({
          TableName: billingTableName,
          Item: {
            ...billingKeys.account(customerId),
            customerId,
            revision: 1,
            ...(userId ? { userId } : {}),
          },
        }),
      );
    },
  };
  return { harness, store, dynamo, documents, paymentsTableName };
}

contract('in-memory', async () => memoryHarness());
contract('in-memory, packed', async () => memoryHarness({ packed: true }));
contract('DynamoDB Local', async () => (await dynamoHarness()).harness);

describe('DynamoDbPaymentStore items and capacity', () => {
  it('answers the daily summary in one BatchGetItem of at most 5 read units, and a history page cheaply, at 1,000 payments', async () => {
    const units: { operation: PaymentReadOperation; units: number }[] = [];
    const { store } = await dynamoHarness({
      onReadUnits: (operation, value) => units.push({ operation, units: value }),
    });
    const day = freshDay();
    const userId = fresh('user-');
    const statuses: PaymentStatus[] = ['succeeded', 'failed', 'refunded', 'partially_refunded'];
    const currencies = ['usd', 'eur', 'gbp'];
    const views = Array.from({ length: 1_000 }, (_, n) =>
      paymentView({
        paymentId: fresh('pi_load'),
        userId: n % 25 === 0 || n < 30 ? userId : `user-${n % 97}`,
        customerId: `cus_${n % 97}`,
        status: statuses[n % statuses.length]!,
        currency: currencies[n % currencies.length]!,
        amount: 100 + n,
        penaltyIds: n % 5 === 0 ? ['pen_1', 'pen_2'] : [],
        createdAt: at(
          day,
          `${String(n % 24).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}:00`,
        ),
        paidAt: n % 4 === 1 ? null : at(day, '23:00:00'),
      }),
    );
    const results = await store.commitAll(
      views.map((view) => commitOf(view, 0, { summary: [enters(view)] })),
    );
    expect(results.filter((result) => result.status !== 'committed')).toEqual([]);

    units.length = 0;
    const rows = await store.dailySummary(day);
    expect(rows.reduce((sum, row) => sum + row.count, 0)).toBe(1_000);
    expect(rows.reduce((sum, row) => sum + row.amount, 0)).toBe(
      views.reduce((sum, view) => sum + view.amount, 0),
    );
    expect(rows).toHaveLength(statuses.length * currencies.length);
    const summaryUnits = units.filter((u) => u.operation === 'dailySummary');
    expect(summaryUnits).toHaveLength(1);
    expect(summaryUnits[0]!.units).toBeGreaterThan(0);
    expect(summaryUnits[0]!.units).toBeLessThanOrEqual(5);

    units.length = 0;
    const page = await store.listUserPayments({ userId, limit: 25 });
    expect(page.items).toHaveLength(25);
    const historyUnits = units.find((u) => u.operation === 'listUserPayments')!.units;
    // 26 projected views of ~0.5 KB, eventually consistent: a few 4 KB blocks at half a unit.
    expect(historyUnits).toBeGreaterThan(0);
    expect(historyUnits).toBeLessThanOrEqual(4);
    console.info(
      `payments read units at 1,000 payments: dailySummary ${summaryUnits[0]!.units}, history page of 25 ${historyUnits}`,
    );
  });

  it('packs commits into transactions of at most 100 items, no item twice, one summary write per day touched', async () => {
    const { store, dynamo } = await dynamoHarness();
    const transactions: Record<string, unknown>[][] = [];
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (/TransactWrite/.test(String(context.commandName))) {
          const input = args.input as { TransactItems: Record<string, unknown>[] };
          transactions.push(input.TransactItems);
        }
        return next(args);
      },
      { step: 'initialize', name: 'recordTransactions' },
    );
    const day = freshDay();
    const views = Array.from({ length: 150 }, (_, n) =>
      paymentView({
        paymentId: fresh('pi_pack'),
        createdAt: at(n % 3 === 0 ? addDays(day, 1) : day, '06:00:00'),
      }),
    );
    const results = await store.commitAll(
      views.map((view) => commitOf(view, 0, { summary: [enters(view)] })),
    );
    expect(results.every((result) => result.status === 'committed')).toBe(true);
    // 97 payments, their ledger pack and the two days' summary updates fill a transaction.
    expect(transactions).toHaveLength(2);
    let payments = 0;
    for (const items of transactions) {
      expect(items.length).toBeLessThanOrEqual(100);
      const keys = items.map((item) => JSON.stringify(itemKeyOf(item)));
      expect(new Set(keys).size).toBe(keys.length);
      // Both days appear in every pack of this mix: two summary writes, however many payments.
      expect(keys.filter((key) => key.includes('SUMMARY#'))).toHaveLength(2);
      const paymentIds = items.flatMap((item) => {
        const key = itemKeyOf(item) as { pk: string; sk: string };
        return key.sk === 'PAYMENT' ? [key.pk.slice('PAYMENT#'.length)] : [];
      });
      payments += paymentIds.length;
      // One ledger item per transaction, holding a page of each of its payments.
      const packs = items.filter((item) => JSON.stringify(itemKeyOf(item)).includes('LEDGER#'));
      expect(packs).toHaveLength(1);
      const pages = decodeLedgerPages((packs[0]!.Put as { Item: { pages: unknown } }).Item.pages);
      expect(pages.map((page) => page.paymentId)).toEqual(paymentIds);
    }
    expect(payments).toBe(150);
    // Each payment's ledger reads back through the pack its item names.
    expect(await store.readLedger(views[120]!.paymentId)).toEqual([
      expect.objectContaining({ paymentId: views[120]!.paymentId, revision: 1 }),
    ]);
    const rows = [await store.dailySummary(day), await store.dailySummary(addDays(day, 1))];
    expect(rows.map((r) => r[0]?.count)).toEqual([100, 50]);
  });

  it('stores state compressed, the view compact, the ledger pack with a TTL, sparse index keys and charge pointers', async () => {
    const { store, dynamo, paymentsTableName } = await dynamoHarness();
    const get = async (key: { pk: string; sk: string }) =>
      (
        await dynamo.send(
          new GetItemCommand({
            TableName: paymentsTableName,
            Key: { pk: { S: key.pk }, sk: { S: key.sk } },
          }),
        )
      ).Item;
    const paymentId = fresh('pi_');
    const chargeId = fresh('ch_');
    const view = paymentView({
      paymentId,
      userId: 'user-a',
      chargeId,
      createdAt: at('2031-06-01', '10:00:00'),
      paidAt: at('2031-06-01', '10:00:05'),
    });
    await store.commit(commitOf(view, 0, { newChargeIds: [chargeId], eventIds: ['evt_ttl'] }));

    const item = await get(paymentKeys.payment(paymentId));
    expect(item?.state?.B).toBeInstanceOf(Uint8Array);
    expect(decodePaymentState(item?.state?.B)).toEqual(stateOf(paymentId, 1));
    expect(item?.paymentId).toBeUndefined();
    expect(decodePaymentView(item?.view?.S)).toEqual(view);
    expect(itemSize(item, true)).toBeLessThan(1024);
    expect(item?.[PAYMENT_INDEX_ATTRIBUTE.userPk]?.S).toBe('USER#user-a');
    expect(item?.[PAYMENT_INDEX_ATTRIBUTE.userStatusPk]?.S).toBe('USER#user-a#succeeded');
    expect(item?.[PAYMENT_INDEX_ATTRIBUTE.paidPk]?.S).toMatch(/^PAID#succeeded#2031-06-01#[0-7]$/);
    expect(item?.[PAYMENT_INDEX_ATTRIBUTE.refundPk]).toBeUndefined();

    // The item names its ledger pack; the pack holds the page, with a TTL.
    const head = item?.ledger?.S ?? '';
    expect(head).toMatch(/^[\w-]{8}$/);
    const pack = await get(paymentKeys.ledgerPack(head));
    expect(Number(pack?.expiresAt?.N)).toBe(Math.floor(appliedAt / 1000) + 90 * 86_400);
    // The pages are stored deflated (ledger-pack-codec.ts): one binary attribute.
    expect(pack?.pages?.B).toBeInstanceOf(Uint8Array);
    const [page] = decodeLedgerPages(pack?.pages?.B);
    expect(page).toEqual({
      paymentId,
      revision: 1,
      appliedAt,
      events: [expect.objectContaining({ eventId: 'evt_ttl', outcome: 'applied' })],
      prev: null,
    });
    expect(await get(paymentKeys.ledger(paymentId, 1))).toBeUndefined();
    expect((await get(paymentKeys.charge(chargeId)))?.paymentId?.S).toBe(paymentId);

    // Refunded: into the refund index, and the paid partition moves with the status.
    const refunded = {
      ...view,
      status: 'refunded' as const,
      amountRefunded: view.amount,
      refundedAt: at('2031-06-03', '00:00:00'),
    };
    await store.commit(commitOf(refunded, 1));
    const after = await get(paymentKeys.payment(paymentId));
    // The next commit's pack becomes the head; its page names the pack before.
    const nextHead = after?.ledger?.S ?? '';
    expect(nextHead).not.toBe(head);
    const [nextPage] = decodeLedgerPages((await get(paymentKeys.ledgerPack(nextHead)))?.pages?.B);
    expect(nextPage?.prev).toBe(head);
    expect(after?.[PAYMENT_INDEX_ATTRIBUTE.refundPk]?.S).toMatch(/^REFUND#2031-06-03#[0-7]$/);
    expect(after?.[PAYMENT_INDEX_ATTRIBUTE.paidPk]?.S).toBe(
      item?.[PAYMENT_INDEX_ATTRIBUTE.paidPk]?.S?.replace('#succeeded#', '#refunded#'),
    );
    // A charge without a PaymentIntent gets no pointer to itself.
    const bare = fresh('ch_');
    await store.commit(
      commitOf(paymentView({ paymentId: bare, chargeId: bare }), 0, { newChargeIds: [bare] }),
    );
    expect(await get(paymentKeys.charge(bare))).toBeUndefined();
  });

  it('reads a payment written before the compact layout (brotli state, map view), and rewrites it compact on its next commit', async () => {
    const { store, documents, paymentsTableName } = await dynamoHarness();
    const userId = fresh('user-');
    const view = paymentView({
      paymentId: fresh('pi_'),
      userId,
      createdAt: at('2031-07-01', '09:00:00'),
    });
    await documents.send(
      new PutCommand({
        TableName: paymentsTableName,
        Item: {
          ...paymentKeys.payment(view.paymentId),
          paymentId: view.paymentId,
          revision: 4,
          state: encodeCompressedJson(stateOf(view.paymentId, 4)),
          recentEvents: ['abcdefgh'],
          view,
          ...paymentIndexAttributes(view),
        },
      }),
    );
    expect((await store.loadPayments([view.paymentId, fresh('pi_')])).get(view.paymentId)).toEqual({
      state: stateOf(view.paymentId, 4),
      revision: 4,
      recentEvents: ['abcdefgh'],
    });
    expect(await store.getPayment(view.paymentId)).toEqual(view);
    expect((await store.listUserPayments({ userId, limit: 5 })).items).toEqual([view]);

    const refunded = {
      ...view,
      status: 'refunded' as const,
      amountRefunded: view.amount,
      refundedAt: at('2031-07-02', '00:00:00'),
    };
    expect(await store.commit(commitOf(refunded, 4))).toEqual({ status: 'committed' });
    const { Item } = await documents.send(
      new GetCommand({ TableName: paymentsTableName, Key: paymentKeys.payment(view.paymentId) }),
    );
    expect(typeof Item?.view).toBe('string');
    expect(Item?.state?.[0]).toBe(0xd1);
    expect(Item).not.toHaveProperty('paymentId');
    expect(await store.getPayment(view.paymentId)).toEqual(refunded);
    expect((await store.listUserPayments({ userId, limit: 5 })).items).toEqual([refunded]);
  });

  it('splits a transaction whose ledger pages would not fit one pack item', async () => {
    const { store, dynamo } = await dynamoHarness();
    let transactions = 0;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (/TransactWrite/.test(String(context.commandName))) transactions += 1;
        return next(args);
      },
      { step: 'initialize', name: 'countTransactions' },
    );
    // Three commits of 1,000 events each: about 100 KB of ledger page apiece.
    const views = Array.from({ length: 3 }, () => paymentView({ paymentId: fresh('pi_big') }));
    const commits = views.map((view) =>
      commitOf(view, 0, {
        eventIds: Array.from({ length: 1_000 }, (_, n) => `evt_${String(n).padStart(24, '0')}`),
      }),
    );
    const results = await store.commitAll(commits);
    expect(results).toEqual(views.map(() => ({ status: 'committed' })));
    expect(transactions).toBe(2);
    for (const view of views) {
      const [page] = await store.readLedger(view.paymentId);
      expect(page?.events).toHaveLength(1_000);
    }
  });

  it('chains the ledger pages of a payment across packs and store instances; an expired pack ends the walk', async () => {
    const { store, dynamo, documents, paymentsTableName } = await dynamoHarness();
    const view = paymentView({
      paymentId: fresh('pi_chain'),
      createdAt: at('2031-07-06', '09:00:00'),
    });
    await store.commit(commitOf(view, 0, { eventIds: ['evt_c1'] }));
    // Another instance (another Lambda) commits without having read the payment first.
    const other = new DynamoDbPaymentStore({ client: dynamo, paymentsTableName });
    expect(await other.commit(commitOf(view, 1, { eventIds: ['evt_c2'] }))).toEqual({
      status: 'committed',
    });
    await store.loadPayments([view.paymentId]);
    await store.commit(commitOf(view, 2, { eventIds: ['evt_c3'] }));
    const pages = await other.readLedger(view.paymentId);
    expect(pages.map((page) => [page.revision, page.events[0]?.eventId])).toEqual([
      [1, 'evt_c1'],
      [2, 'evt_c2'],
      [3, 'evt_c3'],
    ]);
    // Packs expire oldest first (TTL): the walk stops where the chain is gone.
    const { Item } = await documents.send(
      new GetCommand({ TableName: paymentsTableName, Key: paymentKeys.payment(view.paymentId) }),
    );
    const head = String(Item?.ledger);
    const { Item: newest } = await documents.send(
      new GetCommand({ TableName: paymentsTableName, Key: paymentKeys.ledgerPack(head) }),
    );
    const middle = String(decodeLedgerPages(newest?.pages)[0]?.prev);
    const { Item: middlePack } = await documents.send(
      new GetCommand({ TableName: paymentsTableName, Key: paymentKeys.ledgerPack(middle) }),
    );
    await documents.send(
      new DeleteCommand({
        TableName: paymentsTableName,
        Key: paymentKeys.ledgerPack(String(decodeLedgerPages(middlePack?.pages)[0]?.prev)),
      }),
    );
    expect((await store.readLedger(view.paymentId)).map((page) => page.revision)).toEqual([2, 3]);
  });

  it('removes the index keys the view of a commit no longer has (a refund that failed leaves the refunds report)', async () => {
    const { store, documents, paymentsTableName } = await dynamoHarness();
    const refunded = paymentView({
      paymentId: fresh('pi_unref'),
      status: 'partially_refunded',
      amountRefunded: 100,
      refundedAt: at('2031-07-07', '10:00:00'),
    });
    await store.commit(commitOf(refunded, 0));
    const read = async () =>
      (
        await documents.send(
          new GetCommand({
            TableName: paymentsTableName,
            Key: paymentKeys.payment(refunded.paymentId),
          }),
        )
      ).Item;
    expect((await read())?.[PAYMENT_INDEX_ATTRIBUTE.refundPk]).toBeDefined();
    const failedRefund = { ...refunded, status: 'succeeded' as const, amountRefunded: 0 };
    await store.commit(commitOf(failedRefund, 1));
    const after = await read();
    expect(after?.[PAYMENT_INDEX_ATTRIBUTE.refundPk]).toBeUndefined();
    expect(after?.[PAYMENT_INDEX_ATTRIBUTE.refundSk]).toBeUndefined();
    expect(
      (await store.listRefunds({ from: '2031-07-07', to: '2031-07-07', limit: 10 })).items,
    ).not.toContainEqual(expect.objectContaining({ paymentId: refunded.paymentId }));
  });

  it('reads the ledger pages of the earlier layout (an item per commit) beside the packed ones, in revision order', async () => {
    const { store, documents, paymentsTableName } = await dynamoHarness();
    const view = paymentView({ paymentId: fresh('pi_'), createdAt: at('2031-07-05', '09:00:00') });
    const oldEvents = [
      { eventId: 'evt_old', type: 'payment_intent.created', outcome: 'applied', receivedAt: null },
    ];
    // Revisions 1 and 2 committed by the earlier layout: pages of their own, no refs.
    for (const revision of [1, 2]) {
      await documents.send(
        new PutCommand({
          TableName: paymentsTableName,
          Item: {
            ...paymentKeys.ledger(view.paymentId, revision),
            paymentId: view.paymentId,
            revision,
            appliedAt: appliedAt + revision,
            events: oldEvents,
          },
        }),
      );
    }
    await documents.send(
      new PutCommand({
        TableName: paymentsTableName,
        // Written at revision 2 (commitOf(…, 1)) by the earlier layout: no ledger head.
        Item: withoutLedgerHead(paymentItem(commitOf(view, 1), 'unused')),
      }),
    );
    expect(await store.commit(commitOf(view, 2, { eventIds: ['evt_new'] }))).toEqual({
      status: 'committed',
    });
    const pages = await store.readLedger(view.paymentId);
    expect(pages.map((page) => page.revision)).toEqual([1, 2, 3]);
    expect(pages.map((page) => page.events[0]?.eventId)).toEqual(['evt_old', 'evt_old', 'evt_new']);
  });

  it('reads a ledger pack written before compression (its pages a list of maps) on the chain of a later one', async () => {
    const { store, documents, paymentsTableName } = await dynamoHarness();
    const view = paymentView({ paymentId: fresh('pi_'), createdAt: at('2031-07-06', '09:00:00') });
    const oldRef = 'oldpack1';
    await documents.send(
      new PutCommand({
        TableName: paymentsTableName,
        Item: {
          ...paymentKeys.ledgerPack(oldRef),
          pages: [
            {
              paymentId: view.paymentId,
              revision: 1,
              appliedAt,
              events: [
                {
                  eventId: 'evt_plain',
                  type: 'payment_intent.created',
                  outcome: 'applied',
                  receivedAt: null,
                },
              ],
              prev: null,
            },
          ],
        },
      }),
    );
    await documents.send(
      new PutCommand({
        TableName: paymentsTableName,
        Item: paymentItem(commitOf(view, 0), oldRef),
      }),
    );
    expect(await store.commit(commitOf(view, 1, { eventIds: ['evt_packed'] }))).toEqual({
      status: 'committed',
    });
    const pages = await store.readLedger(view.paymentId);
    expect(pages.map((page) => [page.revision, page.events[0]?.eventId])).toEqual([
      [1, 'evt_plain'],
      [2, 'evt_packed'],
    ]);
  });

  it('puts charge pointers before the transaction; when that fails, only the commits with new charges fail', async () => {
    const { store, dynamo } = await dynamoHarness();
    let failPointers = true;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (failPointers && /^PutItem/.test(String(context.commandName))) {
          throw Object.assign(new Error('injected: DynamoDB unavailable'), {
            name: 'InternalServerError',
            $fault: 'server',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'injectPointerFault' },
    );
    const withCharge = paymentView({ paymentId: fresh('pi_'), chargeId: fresh('ch_') });
    const without = paymentView({ paymentId: fresh('pi_') });
    const results = await store.commitAll([
      commitOf(withCharge, 0, { newChargeIds: [withCharge.chargeId!] }),
      commitOf(without, 0),
    ]);
    expect(results[0]).toMatchObject({ status: 'failed' });
    expect(results[1]).toEqual({ status: 'committed' });
    expect((await store.loadPayments([withCharge.paymentId])).size).toBe(0);

    failPointers = false;
    expect(
      await store.commit(commitOf(withCharge, 0, { newChargeIds: [withCharge.chargeId!] })),
    ).toEqual({ status: 'committed' });
    expect(await store.getPayment(withCharge.chargeId!)).toEqual(withCharge);
  });

  it('resends a pack on another shard when only its summary shard was busy', async () => {
    const { store, dynamo } = await dynamoHarness();
    const shards: string[] = [];
    let conflicts = 2;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (/TransactWrite/.test(String(context.commandName))) {
          const items = (args.input as { TransactItems: Record<string, unknown>[] }).TransactItems;
          const summary = items
            .map((item) => JSON.stringify(item))
            .find((s) => s.includes('SUMMARY#'));
          if (summary) shards.push(/SUMMARY#[^"]+/.exec(summary)![0]);
          if (conflicts-- > 0) {
            throw new TransactionCanceledException({
              message: 'injected: summary shard busy',
              $metadata: {},
              CancellationReasons: items.map((item) => ({
                Code: JSON.stringify(item).includes('SUMMARY#') ? 'TransactionConflict' : 'None',
              })),
            });
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'injectSummaryConflict' },
    );
    const day = freshDay();
    const view = paymentView({ paymentId: fresh('pi_'), createdAt: at(day, '07:00:00') });
    expect(await store.commit(commitOf(view, 0, { summary: [enters(view)] }))).toEqual({
      status: 'committed',
    });
    expect(shards).toHaveLength(3);
    expect((await store.dailySummary(day))[0]?.count).toBe(1);
  });

  it('refuses a well-formed cursor whose keys are not of the query (forged with the right digest)', async () => {
    const { store } = await dynamoHarness();
    const query = { from: '2031-02-01', to: '2031-02-02', limit: 5 };
    // The adapter's own binding, rebuilt: only the position check can refuse these.
    const forge = (position: unknown) =>
      cursorCodec<typeof query, unknown>({
        scope: 'payments.refunds',
        params: (q) => ({ from: q.from, to: q.to }),
        parse: (p) => p,
        invalid: (reason) => new Error(reason),
      }).encode(query, position);
    const shards = (key: string | null) => Array.from({ length: 8 }, () => key);
    const goodKey = '2031-02-01T10:00:00.000Z#pi_1';
    expect(
      (
        await store.listRefunds({
          ...query,
          cursor: forge({ d: '2031-02-01', k: shards(goodKey) }),
        })
      ).items,
    ).toEqual([]);
    for (const position of [
      { d: '2031-02-03', k: shards(null) },
      { d: '2031-02-01', k: shards('2031-02-02T10:00:00.000Z#pi_1') },
      { d: '2031-02-01', k: shards('PAYMENT#pi_1') },
      { d: '2031-02-01', k: shards(null).slice(1) },
      { d: '2031-02-01', k: 'all' },
      'text',
    ]) {
      await expect(store.listRefunds({ ...query, cursor: forge(position) })).rejects.toBeInstanceOf(
        InvalidCursorError,
      );
    }
  });
});

describe('InMemoryPaymentStore fault injection', () => {
  it('forces a commit result, fails reads, and in packed mode aborts the companions', async () => {
    const store = new InMemoryPaymentStore({ packed: true });
    const doomed = paymentView({ paymentId: fresh('pi_') });
    const other = paymentView({ paymentId: fresh('pi_') });
    store.fault = (point) =>
      point.operation === 'commit' && point.commit.paymentId === doomed.paymentId
        ? { status: 'revision-conflict' }
        : undefined;
    expect(
      (await store.commitAll([commitOf(doomed, 0), commitOf(other, 0)])).map((r) => r.status),
    ).toEqual(['revision-conflict', 'aborted']);
    store.fault = (point) => {
      if (point.operation !== 'commit') throw new Error('injected: store down');
      return undefined;
    };
    await expect(store.getPayment(other.paymentId)).rejects.toThrow('store down');
    store.fault = undefined;
    expect(await store.commit(commitOf(other, 0))).toEqual({ status: 'committed' });
    expect(store.commits).toBe(1);
  });
});

describe('PaymentTables', () => {
  it('defines the table the tests create: keys, indexes, TTL, and safe stateful defaults', () => {
    const stack = new Stack(new App({ outdir: tempOutdir() }), 'Payments');
    new PaymentTables(stack, 'PaymentTables');
    const template = Template.fromStack(stack);
    const tables = template.findResources('AWS::DynamoDB::Table');
    const [table] = Object.values(tables) as {
      Properties: Record<string, unknown>;
      DeletionPolicy?: string;
      Metadata?: Record<string, unknown>;
    }[];
    const expected = createPaymentsTableInput('unused');
    expect(table?.Properties.KeySchema).toEqual(expected.KeySchema);
    expect(new Set(table?.Properties.AttributeDefinitions as unknown[])).toEqual(
      new Set(expected.AttributeDefinitions),
    );
    expect(table?.Properties.GlobalSecondaryIndexes).toEqual(expected.GlobalSecondaryIndexes);
    expect(table?.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: true,
      TimeToLiveSpecification: { AttributeName: PAYMENT_TTL_ATTRIBUTE, Enabled: true },
    });
    expect(table?.DeletionPolicy).toBe('Retain');
    expect(table?.Metadata?.[METADATA.localName]).toBe('billing-suite-payments');
  });
});

/** The item a transaction item touches (pk/sk), for the packing assertions. */
/** A payment item as the layout before ledger packs wrote it. */
function withoutLedgerHead(item: Record<string, unknown>): Record<string, unknown> {
  const { ledger: _head, ...rest } = item;
  return rest;
}

function itemKeyOf(item: Record<string, unknown>): unknown {
  const entry = (item.Put ?? item.Update) as { Item?: Record<string, unknown>; Key?: unknown };
  if (entry.Key) return entry.Key;
  return { pk: entry.Item?.pk, sk: entry.Item?.sk };
}
