/**
 * Payments (DESIGN §8.1; capacity arithmetic in docs/payments-capacity.md), end to end:
 * generated payment histories (failed attempts, refunds that fail or are canceled,
 * disputes, checkout sessions, both API versions) as signed Stripe events through the
 * real webhook handler, duplicated and shuffled (`deliver`), polled from the payments
 * queue with the stack's event source mapping settings into the real payment consumer
 * (family-pipeline.ts). Then what DynamoDB holds is checked: every payment's view equals
 * the generator's expected view, every event is in a ledger page (0 lost), none is
 * recorded 'applied' twice, and each day's summary equals a recount of the final views.
 * Reads on a large store: payment-reads.ts; cost per million payment webhooks: cost-report.ts.
 */
import { isDeepStrictEqual } from 'node:util';
import { DynamoDbPaymentStore } from '../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import {
  PAYMENT_INDEXES,
  paymentIndexAttributes,
  paymentKeys,
} from '../functions/adapters/dynamodb/payment-table-schema.ts';
import { encodePaymentView } from '../functions/adapters/dynamodb/payment-view-codec.ts';
import { planPaymentCommit } from '../functions/core/payments/apply-payment-events.ts';
import type { PaymentView, StoredPayment } from '../functions/core/payments/ports.ts';
import {
  deliver,
  type GeneratedPayment,
  generatePaymentHistory,
  historyEvents,
} from '../test/helpers/payment-history.ts';
import { formatWruByItem } from './aws-meter.ts';
import type { BenchContext } from './context.ts';
import { itemSize, writeUnits } from './dynamo-capacity.ts';
import {
  baselineNote,
  baselineRate,
  type ConsumerHandler,
  failureNotes,
  lagFigures,
  mappingNote,
  phaseNotes,
  runFamilyPipeline,
} from './family-pipeline.ts';
import type { WebhookHandler } from './ingress.ts';
import { checkLedger, pool } from './ledger-check.ts';
import {
  type PaymentReads,
  type Recount,
  readFigures,
  readNotes,
  recountView,
  summaryMismatches,
} from './payment-reads.ts';
import type { PipelineResult } from './pipeline.ts';
import { paymentResources } from './provision.ts';
import type { RawLimits, RawRate } from './raw-limits.ts';
import { type Figure, mustBeZero, type Section } from './report.ts';
import { ratio } from './stats.ts';

export type PaymentsEndToEnd = Awaited<ReturnType<typeof measurePaymentsEndToEnd>>;

/**
 * Write units the indexes take when a payment's view goes from `before` to `after`: the
 * meter sizes the items a request names, but DynamoDB also bills each index entry put
 * (its keys plus the projected view) and each one deleted when its key moves or goes.
 */
function indexWriteUnits(paymentId: string, before: PaymentView | null, after: PaymentView | null) {
  const entry = (view: PaymentView | null, index: (typeof PAYMENT_INDEXES)[number]) => {
    const keys = view ? paymentIndexAttributes(view) : {};
    const [pk, sk] = [keys[index.partitionKey], keys[index.sortKey]];
    if (!view || pk === undefined || sk === undefined) return undefined;
    const item = {
      ...paymentKeys.payment(paymentId),
      [index.partitionKey]: pk,
      [index.sortKey]: sk,
    };
    return { key: `${pk}|${sk}`, item: { ...item, view: encodePaymentView(view) } };
  };
  let units = 0;
  for (const index of PAYMENT_INDEXES) {
    const [old, now] = [entry(before, index), entry(after, index)];
    if (isDeepStrictEqual(old, now)) continue;
    if (old && old.key !== now?.key) units += writeUnits(itemSize(old.item, false));
    if (now) units += writeUnits(itemSize(now.item, false));
  }
  return units;
}

/**
 * Replays each payment's commits from its ledger pages (each page's recorded events,
 * folded over the state the previous page left) to size the index writes they made;
 * the replayed final view must be the expected one.
 */
async function replayIndexWrites(store: DynamoDbPaymentStore, payments: GeneratedPayment[]) {
  let units = 0;
  let mismatches = 0;
  await pool(payments, 16, async (payment) => {
    const factOf = new Map(payment.facts.map((fact) => [fact.eventId, fact]));
    let stored: StoredPayment | undefined;
    let view: PaymentView | null = null;
    for (const page of await store.readLedger(payment.paymentId)) {
      const facts = page.events.flatMap((event) => {
        const fact = factOf.get(event.eventId);
        return fact ? [{ recordIds: [], fact, receivedAt: event.receivedAt }] : [];
      });
      const { commit } = planPaymentCommit(payment.paymentId, facts, stored, page.appliedAt);
      if (!commit) continue;
      units += indexWriteUnits(payment.paymentId, view, commit.view);
      view = commit.view;
      stored = { state: commit.state, revision: page.revision, recentEvents: commit.recentEvents };
    }
    if (!isDeepStrictEqual(view, payment.expected)) mismatches += 1;
  });
  return { units, mismatches };
}

export async function measurePaymentsEndToEnd(options: {
  ctx: BenchContext;
  webhook: WebhookHandler;
  consumer: ConsumerHandler;
}) {
  const { ctx } = options;
  const { sizes } = ctx;
  const resources = paymentResources(ctx.model);
  const table = ctx.provisioned.tableNames[resources.paymentsTableLogicalId]!;
  const tag = Date.now().toString(36);
  const group = sizes.activeCustomers;

  // Histories delivered `group` at a time, each group's events duplicated and fully
  // shuffled (`deliver`): a few payers live at once, like the pipeline's bursty order.
  const makeSet = (prefix: string, count: number, firstSeed: number) => {
    const histories = Array.from({ length: count }, (_, i) =>
      generatePaymentHistory(firstSeed + i, { prefix }),
    );
    const deliveries: string[] = [];
    for (let start = 0; start < count; start += group) {
      const bodies = histories
        .slice(start, start + group)
        .flatMap((history) => historyEvents(history).map((event) => JSON.stringify(event)));
      deliveries.push(...deliver(bodies, firstSeed + start, sizes.duplicateRate));
    }
    const payments = histories.flatMap((history) => history.payments);
    // "Customer" = payment here: the consumer commits each payment on its own.
    const paymentOf = new Map<string, string>();
    for (const payment of payments)
      for (const fact of payment.facts) paymentOf.set(fact.eventId, payment.paymentId);
    return {
      histories: count,
      deliveries,
      payments,
      keyOf: paymentOf,
      ids: new Set(paymentOf.keys()),
    };
  };

  const { result, ran, expectedIds, commits } = await runFamilyPipeline({
    ctx,
    name: 'payments',
    webhook: { fn: resources.webhook, handler: options.webhook },
    consumer: { fn: resources.consumer, handler: options.consumer, mapping: resources.mapping },
    queueUrl: ctx.provisioned.queueUrls[resources.queueLogicalId]!,
    // Ledger pages live in the payments table, in the packs' `pages` (the meter reads both shapes).
    ledgerTable: table,
    logAs: { webhook: 'payment-webhook', consumer: 'payment-consumer' },
    saturated: makeSet(`pay${tag}s`, sizes.paymentHistories, 1),
    paced: makeSet(`pay${tag}p`, sizes.paymentPacedHistories, 1_000_001),
    // Subscription-mode checkouts of an earlier pipeline run are routed here too: not ours to time.
    purgeFirst: true,
  });

  ctx.log('payments: checking views, ledger and daily summaries in DynamoDB');
  const payments = ran.flatMap((set) => set.payments);
  const store = new DynamoDbPaymentStore({ client: ctx.harness.dynamo, paymentsTableName: table });
  const ledger = await checkLedger(
    {
      readLedger: async (paymentId) =>
        (await store.readLedger(paymentId)).map((page) => ({
          ...page,
          customerId: page.paymentId,
          userId: null,
        })),
    },
    payments.map((payment) => payment.paymentId),
    expectedIds,
    commits,
  );
  const examples = [...ledger.examples];
  let viewMismatches = 0;
  const recount: Recount = new Map();
  await pool(payments, 16, async (payment) => {
    recountView(recount, payment.expected);
    if (!isDeepStrictEqual(await store.getPayment(payment.paymentId), payment.expected)) {
      viewMismatches += 1;
      if (examples.length < 5) examples.push(`view ${payment.paymentId}`);
    }
  });
  const summary = await summaryMismatches(store, recount, examples);
  const indexWrites = await replayIndexWrites(store, payments);

  return {
    ...result,
    historiesPerGroup: group,
    /** Index write units of the run's commits (not in `usage`: see indexWriteUnits). */
    indexWru: indexWrites.units,
    /** Payments whose replayed commits do not end on the expected view (0: the replay is sound). */
    indexReplayMismatches: indexWrites.mismatches,
    correctness: {
      ledger,
      viewMismatches,
      summaryDays: summary.days,
      summaryMismatches: summary.mismatches,
      examples,
    },
  };
}

export function paymentsSection(
  result: { e2e: PaymentsEndToEnd; reads: PaymentReads },
  raw: RawLimits | undefined,
  rawAfter: RawRate | undefined,
  pipeline: PipelineResult | undefined,
): Section {
  const { e2e, reads } = result;
  const rawTx = baselineRate(raw, rawAfter);
  const { saturated: sat, paced, correctness: c, usage: u } = e2e;
  const d = u.dynamo;
  const perEvent = (n: number) => n / Math.max(1, e2e.uniqueEvents);
  const figures: Figure[] = [
    {
      id: 'payments.eventsAppliedPerSecond',
      label: 'payment events applied end to end (saturated)',
      value: sat.eventsAppliedPerSecond,
      unit: 'events/s',
      ratio: { value: ratio(sat.eventsAppliedPerSecond, rawTx), to: 'raw 1-tx-per-event events/s' },
    },
    ...(pipeline
      ? [
          {
            id: 'payments.vsSubscriptionPipeline',
            label: 'payment events applied, against the subscription pipeline',
            value: sat.eventsAppliedPerSecond,
            unit: 'events/s',
            ratio: {
              value: ratio(sat.eventsAppliedPerSecond, pipeline.saturated.eventsAppliedPerSecond),
              to: 'subscription pipeline events/s',
              target: { op: '>=' as const, value: 1 },
            },
          },
        ]
      : []),
    ...lagFigures(e2e, 'payments', sat, 'saturated', 'saturated'),
    ...(paced ? lagFigures(e2e, 'payments', paced, 'paced', `${e2e.pacedLoad * 100}% load`) : []),
    mustBeZero('payments.lost', 'payment events lost', c.ledger.lost, 'events'),
    mustBeZero(
      'payments.appliedTwice',
      'payment events applied twice',
      c.ledger.appliedTwice,
      'events',
    ),
    mustBeZero(
      'payments.viewMismatches',
      'payment views differing from expected',
      c.viewMismatches,
      'payments',
    ),
    mustBeZero(
      'payments.summaryMismatches',
      'daily summaries differing from a recount',
      c.summaryMismatches,
      'days',
    ),
    {
      id: 'payments.wruPerEvent',
      label: 'DynamoDB write request units per payment event, indexes included',
      value: perEvent(d.wru + d.rejectedWru + e2e.indexWru),
      unit: 'WRU/event',
      ratio: {
        value: ratio(e2e.indexWru, d.wru + d.rejectedWru + e2e.indexWru),
        to: 'share of the indexes',
      },
    },
    ...readFigures(reads),
  ];
  const l = c.ledger;
  // The meter counts a request before it is sent: cancelled ones included.
  const sent = d.requests.TransactWriteItems ?? 0;
  const readsNoted = readNotes(reads);
  const notes = [
    `Delivery: histories (1-4 payments each) in groups of ${e2e.historiesPerGroup}, each group's events sent again at ` +
      'the configured duplicate rate and fully shuffled (`deliver`): refunds and disputes often arrive before their payment.',
    ...phaseNotes(
      e2e,
      (name, p, fed) =>
        `${name}: ${p.histories} histories, ${p.aggregates} payments, ${fed}; ${p.batchSpread.batches} consumer batches held ` +
        `${p.batchSpread.meanEventsPerCustomer.toFixed(2)} events per payment (${p.batchSpread.meanCustomers.toFixed(1)} payments) on average.`,
    ),
    mappingNote(e2e, true),
    baselineNote(raw, rawAfter, '') +
      (pipeline
        ? ` Subscription pipeline in this run: ${pipeline.saturated.eventsAppliedPerSecond.toFixed(1)} events/s.`
        : ''),
    `Ledger: ${l.pages} pages for ${l.customers} payments, ${l.meanEventsPerPage.toFixed(2)} events per page; ${l.inLedger}/${l.expectedEvents} expected events recorded, ` +
      `${l.recordedTwice} recorded twice (any outcome), ${l.unexpected} unexpected. Summaries checked on ${c.summaryDays} days (the payments' days and the day either side).`,
    `DynamoDB requests: ${JSON.stringify(d.requests)}; ${d.rejectedWrites} of ${sent} transactions cancelled (${JSON.stringify(d.rejectedReasons)}; est. ${d.rejectedWru} WRU, in WRU/event); ` +
      `${perEvent(d.rru).toFixed(2)} RRU/event. Committed WRU by item: ${formatWruByItem(d.wruByItem)}; ` +
      `indexes ${e2e.indexWru.toLocaleString('en-US')} WRU more, sized by replaying each payment's ledger pages (${e2e.indexReplayMismatches} replays off the expected view).`,
    `SQS requests: ${JSON.stringify(u.sqs.requests)}; ${u.sqs.emptyReceives} empty receives. Checkout sessions also go to the subscriptions queue (not consumed here).`,
    ...readsNoted.notes,
    ...failureNotes(e2e, c.examples, readsNoted.failures),
  ];
  return {
    id: 'payments',
    title: 'Payments (webhook -> SQS -> payment consumer -> DynamoDB; reads on a large store)',
    figures,
    notes,
    detail: result,
  };
}
