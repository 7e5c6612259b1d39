/**
 * The compact encodings of the payment item (view tuple, dictionary-deflated state):
 * lossless on every state and view a realistic history passes through, readable for
 * items written in the earlier formats, and small enough that a payment item stays
 * within one 1 KB write unit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { itemSize } from '../../../bench/dynamo-capacity.ts';
import { encodeCompressedJson } from '../../../functions/adapters/dynamodb/compressed-json.ts';
import { paymentItem } from '../../../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import {
  decodeLedgerPages,
  encodeLedgerPages,
  type PackedLedgerPage,
} from '../../../functions/adapters/dynamodb/ledger-pack-codec.ts';
import {
  decodePaymentState,
  encodePaymentState,
} from '../../../functions/adapters/dynamodb/payment-state-codec.ts';
import {
  decodePaymentView,
  encodePaymentView,
} from '../../../functions/adapters/dynamodb/payment-view-codec.ts';
import { planPaymentCommit } from '../../../functions/core/payments/apply-payment-events.ts';
import {
  applyPaymentFact,
  type PaymentState,
  projectPayment,
} from '../../../functions/core/payments/payment-state.ts';
import type { PaymentCommit, StoredPayment } from '../../../functions/core/payments/ports.ts';
import {
  type GeneratedPayment,
  generatePaymentHistory,
  invoiceLinkFact,
} from '../../helpers/payment-history.ts';

/** Every commit a payment's facts make when applied one at a time, in Stripe's order. */
function commitsOf(payment: GeneratedPayment): PaymentCommit[] {
  const commits: PaymentCommit[] = [];
  let stored: StoredPayment | undefined;
  for (const fact of payment.facts) {
    const { commit } = planPaymentCommit(
      payment.paymentId,
      [{ recordIds: [], fact, receivedAt: fact.created * 1000 }],
      stored,
      fact.created * 1000,
    );
    if (!commit) continue;
    commits.push(commit);
    stored = {
      state: commit.state,
      revision: commit.expectedRevision + 1,
      recentEvents: commit.recentEvents,
    };
  }
  return commits;
}

/** Commits of many histories whose ids are as long as Stripe's (`pi_` + 24 characters). */
function realisticCommits(histories: number): PaymentCommit[] {
  return Array.from({ length: histories }, (_, seed) =>
    generatePaymentHistory(seed + 1, {
      prefix: `3QxY7rT2kLmN8pZa${String(seed).padStart(5, '0')}`,
    }),
  ).flatMap((history) => history.payments.flatMap(commitsOf));
}

const commits = realisticCommits(150);

describe('payment view codec', () => {
  it('reads back every view of realistic histories exactly, in about 60% of the map form', () => {
    let encoded = 0;
    let asMap = 0;
    for (const { view } of commits) {
      if (!view) continue;
      const stored = encodePaymentView(view);
      expect(decodePaymentView(stored)).toEqual(view);
      encoded += itemSize({ view: stored }, false);
      asMap += itemSize({ view }, false);
    }
    expect(encoded / asMap).toBeLessThan(0.7);
  });

  it('keeps times that are not canonical ISO strings as they are', () => {
    const view = commits.find((commit) => commit.view)!.view!;
    const odd = { ...view, createdAt: '2025-06-15T12:00:00Z', paidAt: 'not a time' };
    expect(decodePaymentView(encodePaymentView(odd))).toEqual(odd);
  });

  it('round-trips any field values', () => {
    const text = fc.string({ maxLength: 30 });
    const time = fc
      .integer({ min: 0, max: 4_102_444_800_000 })
      .map((ms) => new Date(ms).toISOString());
    fc.assert(
      fc.property(
        fc.record({
          paymentId: text,
          chargeId: fc.option(text),
          userId: fc.option(text),
          customerId: fc.option(text),
          amount: fc.nat(),
          amountRefunded: fc.nat(),
          currency: text,
          status: fc.constantFrom('processing', 'succeeded', 'refunded', 'disputed' as const),
          purpose: fc.constantFrom('penalty', 'subscription', 'other' as const),
          penaltyIds: fc.array(text, { maxLength: 3 }),
          createdAt: time,
          paidAt: fc.option(time),
          refundedAt: fc.option(time),
          failureCode: fc.option(text),
          dispute: fc.option(
            fc.record({ status: text, reason: fc.option(text), amount: fc.nat() }),
          ),
        }),
        (view) => {
          expect(decodePaymentView(encodePaymentView(view))).toEqual(view);
        },
      ),
    );
  });

  it('reads a view stored as a map (items written before this codec); refuses what it cannot read', () => {
    const view = commits.find((commit) => commit.view)!.view!;
    expect(decodePaymentView(view)).toEqual(view);
    expect(() => decodePaymentView('[2,"pi_1"]')).toThrow(/unknown layout 2/);
    expect(() => decodePaymentView(42)).toThrow(/unreadable/);
  });
});

describe('payment state codec', () => {
  it('reads back every state of realistic histories exactly, at about half the brotli size', () => {
    let deflated = 0;
    let brotli = 0;
    for (const { state } of commits) {
      const stored = encodePaymentState(state);
      expect(stored[0]).toBe(0xd1);
      expect(decodePaymentState(stored)).toEqual(state);
      deflated += stored.byteLength;
      brotli += encodeCompressedJson(state).byteLength;
    }
    expect(deflated / brotli).toBeLessThan(0.65);
  });

  it('still reads brotli (items written before the dictionary) and plain maps; refuses an unknown dictionary', () => {
    const { state } = commits.at(-1)!;
    const brotli = encodeCompressedJson(state);
    expect(brotli[0]).not.toBe(0xd1);
    expect(decodePaymentState(brotli)).toEqual(state);
    expect(decodePaymentState(state)).toEqual(state);
    const foreign = encodePaymentState(state);
    foreign[1] = 9;
    expect(() => decodePaymentState(foreign)).toThrow(/unknown dictionary 9/);
  });
});

describe('ledger pack codec', () => {
  /** The pages of consecutive commits, as a transaction of `size` payments packs them. */
  function packsOf(size: number): PackedLedgerPage[][] {
    const pages = commits.map((commit, index) => ({
      paymentId: commit.paymentId,
      revision: commit.expectedRevision + 1,
      appliedAt: commit.ledger.appliedAt,
      events: commit.ledger.events,
      prev: commit.expectedRevision === 0 ? null : `ref${String(index).padStart(5, '0')}`,
    }));
    const packs: PackedLedgerPage[][] = [];
    for (let start = 0; start + size <= pages.length; start += size) {
      packs.push(pages.slice(start, start + size));
    }
    return packs;
  }
  const packItem = (pages: unknown) => ({
    pk: 'LEDGER#Ab3dE6gH',
    sk: 'LEDGER',
    pages,
    expiresAt: 1_799_999_999,
  });

  it('reads back every pack exactly; a pack of seven pages (a typical transaction) fits one 1 KB write unit, about a third of the list of maps', () => {
    let stored = 0;
    let asMaps = 0;
    for (const pages of packsOf(7)) {
      const encoded = encodeLedgerPages(pages);
      expect(encoded[0]).toBe(0xd1);
      expect(decodeLedgerPages(encoded)).toEqual(pages);
      const size = itemSize(packItem(encoded), false);
      expect(size).toBeLessThanOrEqual(1024);
      stored += size;
      asMaps += itemSize(packItem(pages), false);
    }
    expect(stored / asMaps).toBeLessThan(0.4);
  });

  it('reads the list of maps of a pack written before compression; refuses what is not a list of pages', () => {
    const [pages] = packsOf(3);
    expect(decodeLedgerPages(pages)).toEqual(pages);
    expect(() => decodeLedgerPages({ paymentId: 'pi_1' })).toThrow(/not a list/);
    const foreign = encodeLedgerPages(pages!);
    foreign[1] = 9;
    expect(() => decodeLedgerPages(foreign)).toThrow(/unknown dictionary 9/);
  });
});

describe('a state stored before invoice links', () => {
  // Written by the codec before `invoice_payment.paid` was read: a basil subscription
  // payment (created, charge succeeded, succeeded), its purpose still `other`.
  const stored = Buffer.from(
    '0QHDyPwlqcWg/IGlBDCxtLSwsAAHIbElgZEBSDkFxQHUTiOceS0/JwVf0QD3DcXGYxYWhiSVFiRYRXHRgbCL7CIEEdkQ5xpgc64hankCcQZqmQCNAKyGGyIXEAg3k1VQEBW8RmD35iXmpqb4JIJc5lhCyBi0QgZ/lgZnfgA=',
    'base64',
  );
  const version = (created: number, rank: number, eventId: string) => ({ created, rank, eventId });
  const before: PaymentState = {
    paymentId: 'pi_test_1',
    intentCreated: 1749988800,
    sessionCreated: null,
    details: {
      amount: 2000,
      currency: 'usd',
      fromSession: false,
      version: version(1749988802, 4, 'evt_old_3'),
    },
    customer: { id: 'cus_test_1', version: version(1749988802, 4, 'evt_old_3') },
    user: { id: 'user-1', fromMetadata: true, version: version(1749988802, 4, 'evt_old_3') },
    linkedUserId: null,
    purpose: 'other',
    penalties: null,
    paidAt: 1749988802,
    lifecycle: { status: 'processing', version: version(1749988800, 0, 'evt_old_1') },
    failure: null,
    charges: {
      ch_test_1: {
        created: 1749988801,
        seenAt: 1749988802,
        snapshot: { amountRefunded: 0, version: version(1749988802, 4, 'evt_old_2') },
        namedLatestAt: { created: 1749988802, rank: 4 },
      },
    },
    refunds: {},
    refundedAt: null,
    dispute: null,
  };

  it('decodes unchanged, and its link then makes it a subscription payment that round-trips', () => {
    expect(decodePaymentState(stored)).toEqual(before);
    const linked = applyPaymentFact(decodePaymentState(stored), invoiceLinkFact(1749988803));
    expect(linked.outcome).toBe('applied');
    expect(linked.state).toEqual({ ...before, purpose: 'subscription' });
    expect(projectPayment(linked.state)).toMatchObject({
      purpose: 'subscription',
      status: 'succeeded',
    });
    expect(decodePaymentState(encodePaymentState(linked.state))).toEqual(linked.state);
  });
});

describe('payment item size', () => {
  it('keeps every item of a payment with one charge, one refund and no penalty ids, and 90% of all, within one 1 KB write unit', () => {
    const sizes = commits.map((commit) => ({
      // As written: with its ledger head (8 characters, as newLedgerRef makes them).
      size: itemSize(paymentItem(commit, 'AbCd-fGh'), false),
      simple:
        Object.keys(commit.state.charges).length <= 1 &&
        Object.keys(commit.state.refunds).length <= 1 &&
        commit.state.penalties === null,
    }));
    const withinOneUnit = sizes.filter(({ size }) => size <= 1024).length / sizes.length;
    console.info(
      `payment items: ${sizes.length}, mean ${Math.round(sizes.reduce((sum, { size }) => sum + size, 0) / sizes.length)} bytes, max ${Math.max(...sizes.map(({ size }) => size))}, within 1 KB ${(withinOneUnit * 100).toFixed(1)}%`,
    );
    expect(sizes.filter(({ simple }) => simple).length).toBeGreaterThan(sizes.length / 3);
    expect(sizes.filter(({ simple, size }) => simple && size > 1024)).toEqual([]);
    // The rest: several charges (failed attempts) or refunds, each kept in the state, or
    // penalty ids (in the metadata, the state and the view).
    expect(withinOneUnit).toBeGreaterThanOrEqual(0.9);
  });
});
