/**
 * Pipeline, end to end: signed webhooks into the real webhook handler, through the
 * SQS emulator, polled with the stack model's event source mapping settings (the
 * local runtime's queue poller), into the real subscription consumer, committed to
 * DynamoDB Local. Deliveries are realistic customer histories in the bursty order
 * (a few customers active at once, see delivery-order.ts), with duplicates and local
 * reordering injected.
 *
 * Afterwards it checks the DESIGN §3 invariant on what DynamoDB holds: every account
 * and user view equals the pure fold of its history applied once, in order; every
 * event is in a ledger page (0 lost); none was applied twice (see ledger-check.ts).
 */
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
  encodeAccount,
} from '../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import {
  type CustomerAccount,
  foldFacts,
  projectUserView,
  type UserSubscriptionView,
} from '../functions/core/subscriptions/customer-account.ts';
import {
  deliverInBursts,
  type GeneratedHistory,
  generateHistory,
  historyFacts,
} from '../test/helpers/stripe-history.ts';
import { formatWruByItem } from './aws-meter.ts';
import type { BenchContext } from './context.ts';
import { customerOfEvent } from './delivery-order.ts';
import { itemSize } from './dynamo-capacity.ts';
import {
  baselineNote,
  baselineRate,
  type ConsumerHandler,
  type FamilyResult,
  failureNotes,
  lagFigures,
  mappingNote,
  phaseNotes,
  runFamilyPipeline,
} from './family-pipeline.ts';
import type { WebhookHandler } from './ingress.ts';
import { checkLedger, type LedgerCheck, type MeteredCommits, pool } from './ledger-check.ts';
import { subscriptionResources } from './provision.ts';
import type { RawLimits, RawRate } from './raw-limits.ts';
import { type Figure, mustBeZero, type Section } from './report.ts';

export interface PipelineOptions {
  ctx: BenchContext;
  webhook: WebhookHandler;
  consumer: ConsumerHandler;
}

export interface Correctness {
  customers: number;
  expectedEvents: number;
  /** Expected events recorded in a ledger page. */
  inLedger: number;
  lost: number;
  /** Events recorded as 'applied' in two pages, or committed as 'applied' by two successful writes. */
  appliedTwice: number;
  /** Informational: events recorded in two pages or by two writes, whatever the outcome. */
  recordedTwice: number;
  ledger: LedgerCheck;
  accountMismatches: number;
  viewMismatches: number;
  /** Mean size of the stored account items, by DynamoDB's sizing rules. */
  meanAccountItemBytes: number;
  /** A few mismatching customers, for the JSON. */
  examples: string[];
}

export type PipelineResult = FamilyResult & {
  /** Customers delivering at once in the bursty order. */
  activeCustomers: number;
  store: { busyMs: number; eventsPerBusySecond: number };
  correctness: Correctness;
  /** Some users whose profile the pipeline wrote (the read API's cold-start plan reads them). */
  sampleUserIds: string[];
};

interface Expected {
  history: GeneratedHistory;
  account: CustomerAccount;
  view: UserSubscriptionView | null;
}

/** JSON with sorted keys: DynamoDB does not keep map key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}

export async function measurePipeline(options: PipelineOptions): Promise<PipelineResult> {
  const { ctx } = options;
  const { sizes } = ctx;
  const resources = subscriptionResources(ctx.model);
  const billingTable = ctx.provisioned.tableNames[resources.billingTableLogicalId]!;
  const eventsTable = ctx.provisioned.tableNames[resources.eventsTableLogicalId]!;

  const tag = Date.now().toString(36);
  const makeSet = (prefix: string, count: number, seed: number) => {
    const histories = Array.from({ length: count }, (_, i) => generateHistory(i + 1, { prefix }));
    const expected = histories.map((history): Expected & { eventIds: string[] } => {
      const facts = historyFacts(history);
      const account = foldFacts(history.customerId, facts);
      const eventIds = facts.map((f) => f.eventId);
      return { history, account, view: projectUserView(account), eventIds };
    });
    return {
      histories: count,
      deliveries: deliverInBursts(histories, seed, {
        activeCustomers: sizes.activeCustomers,
        duplicateRate: sizes.duplicateRate,
        reorderWindow: sizes.reorderWindow,
      }),
      expected,
      ids: new Set(expected.flatMap((e) => e.eventIds)),
      keyOf: customerOfEvent(histories),
    };
  };

  const { result, ran, expectedIds, committed, commits } = await runFamilyPipeline({
    ctx,
    name: 'pipeline',
    webhook: { fn: resources.webhook, handler: options.webhook },
    consumer: { fn: resources.consumer, handler: options.consumer, mapping: resources.mapping },
    queueUrl: ctx.provisioned.queueUrls[resources.queueLogicalId]!,
    ledgerTable: eventsTable,
    logAs: { webhook: 'webhook', consumer: 'consumer' },
    saturated: makeSet(`ps${tag}`, sizes.pipelineHistories, 42),
    paced: makeSet(`pp${tag}`, sizes.pacedHistories, 43),
  });

  ctx.log('pipeline: checking DynamoDB against the in-order fold of each history');
  const expected = ran.flatMap((set) => set.expected);
  const tables = { billingTable, eventsTable };
  const correctness = await verify(ctx, tables, expected, expectedIds, commits);
  return {
    ...result,
    activeCustomers: sizes.activeCustomers,
    store: {
      busyMs: result.usage.dynamo.busyMs,
      eventsPerBusySecond: committed / (result.usage.dynamo.busyMs / 1000),
    },
    correctness,
    sampleUserIds: expected.flatMap((e) => (e.view ? [e.view.userId] : [])).slice(0, 100),
  };
}

async function verify(
  ctx: BenchContext,
  tables: { billingTable: string; eventsTable: string },
  expected: Expected[],
  expectedIds: Set<string>,
  commits: MeteredCommits,
): Promise<Correctness> {
  const store = new DynamoDbSubscriptionStore({
    client: ctx.harness.dynamo,
    billingTableName: tables.billingTable,
    ledgerTableName: tables.eventsTable,
  });
  const reader = new DynamoDbUserViewReader({
    client: ctx.harness.dynamo,
    billingTableName: tables.billingTable,
  });
  const customerIds = expected.map((e) => e.history.customerId);
  const ledger = await checkLedger(store, customerIds, expectedIds, commits);
  const accounts = await store.loadAccounts(customerIds);
  let accountMismatches = 0;
  let viewMismatches = 0;
  let accountBytes = 0;
  for (const [customerId, stored] of accounts) {
    accountBytes += itemSize(
      {
        pk: `CUSTOMER#${customerId}`,
        sk: 'ACCOUNT',
        customerId,
        ...(stored.account.userId ? { userId: stored.account.userId } : {}),
        revision: stored.revision,
        account: encodeAccount(stored.account),
        recentEvents: stored.recentEvents,
      },
      false,
    );
  }
  const examples: string[] = [...ledger.examples];
  await pool(expected, 16, async ({ history, account, view }) => {
    const stored = accounts.get(history.customerId)?.account ?? null;
    if (canonical(stored) !== canonical(account)) {
      accountMismatches++;
      if (examples.length < 5) examples.push(`account ${history.customerId}`);
    }
    const storedView = await reader.getUserView(history.userId);
    if (canonical(storedView) !== canonical(view)) {
      viewMismatches++;
      if (examples.length < 5) examples.push(`view ${history.userId}`);
    }
  });
  return {
    customers: expected.length,
    expectedEvents: expectedIds.size,
    inLedger: ledger.inLedger,
    lost: ledger.lost,
    appliedTwice: ledger.appliedTwice,
    recordedTwice: ledger.recordedTwice,
    ledger,
    accountMismatches,
    viewMismatches,
    meanAccountItemBytes: accountBytes / Math.max(1, accounts.size),
    examples,
  };
}

export function pipelineSection(
  result: PipelineResult,
  raw: RawLimits | undefined,
  rawAfter?: RawRate,
): Section {
  const rawTx = baselineRate(raw, rawAfter);
  const c = result.correctness;
  const sat = result.saturated;
  const paced = result.paced;
  const perEvent = (n: number) => n / Math.max(1, result.uniqueEvents);
  const d = result.usage.dynamo;
  const wruPerEvent = perEvent(d.wru + d.rejectedWru);
  const load = `${result.pacedLoad * 100}% load`;
  const figures: Figure[] = [
    {
      id: 'pipeline.eventsAppliedPerSecond',
      label: 'events applied end to end (saturated)',
      value: sat.eventsAppliedPerSecond,
      unit: 'events/s',
      ratio: { value: sat.eventsAppliedPerSecond / rawTx, to: 'raw 1-tx-per-event events/s' },
    },
    ...lagFigures(result, 'pipeline', sat, 'saturated', 'saturated'),
    ...(paced
      ? [
          {
            id: 'pipeline.paced.eventsAppliedPerSecond',
            label: `events applied at ${load}`,
            value: paced.eventsAppliedPerSecond,
            unit: 'events/s',
            ratio: {
              value: paced.eventsAppliedPerSecond / sat.eventsAppliedPerSecond,
              to: 'saturated',
            },
          },
          ...lagFigures(result, 'pipeline', paced, 'paced', load),
        ]
      : []),
    {
      id: 'pipeline.store.eventsPerBusySecond',
      label: 'consumer store stage, sharing the cores with the feed (target: isolated store stage)',
      value: result.store.eventsPerBusySecond,
      unit: 'events/s',
      ratio: {
        value: result.store.eventsPerBusySecond / rawTx,
        to: 'raw 1-tx-per-event events/s',
      },
    },
    mustBeZero('pipeline.lost', 'events lost', c.lost, 'events'),
    mustBeZero('pipeline.appliedTwice', 'events applied twice', c.appliedTwice, 'events'),
    {
      id: 'pipeline.recordedTwice',
      label: 'events recorded twice, any outcome (informational)',
      value: c.recordedTwice,
      unit: 'events',
    },
    mustBeZero(
      'pipeline.stateMismatches',
      'accounts/views differing from in-order fold',
      c.accountMismatches + c.viewMismatches,
      'items',
    ),
    {
      id: 'pipeline.wruPerEvent',
      label: 'DynamoDB write request units per event',
      value: wruPerEvent,
      unit: 'WRU/event',
      ratio: { value: wruPerEvent / 6, to: '1 tx per event (3 items <= 1 KB x 2)' },
    },
    {
      id: 'pipeline.rruPerEvent',
      label: 'DynamoDB read request units per event',
      value: perEvent(d.rru),
      unit: 'RRU/event',
    },
    {
      id: 'pipeline.reportedWcuPerEvent',
      label: 'write capacity DynamoDB Local reported',
      value: perEvent(d.reportedWcu),
      unit: 'WCU/event',
      ratio: { value: d.reportedWcu / d.wru, to: 'computed WRU' },
    },
    {
      id: 'pipeline.reportedRcuPerEvent',
      label: 'read capacity DynamoDB Local reported',
      value: perEvent(d.reportedRcu),
      unit: 'RCU/event',
      ratio: { value: d.reportedRcu / d.rru, to: 'computed RRU' },
    },
    {
      id: 'pipeline.sqsRequestsPerEvent',
      label: 'SQS requests per event (send+receive+delete)',
      value: perEvent(Object.values(result.usage.sqs.requests).reduce((a, b) => a + b, 0)),
      unit: 'req/event',
    },
    {
      id: 'pipeline.recordsPerInvocation',
      label: 'records per consumer invocation',
      value: result.consumer.meanRecordsPerInvocation,
      unit: 'records',
      ratio: {
        value: result.consumer.meanRecordsPerInvocation / result.consumer.batchSize,
        to: 'batch size',
      },
    },
    {
      id: 'pipeline.consumerBilledDurationMs',
      label: 'consumer mean duration in-process',
      value: result.consumer.billedDurationMs,
      unit: 'ms/invocation',
    },
  ];
  const u = result.usage;
  const l = c.ledger;
  const notes = [
    `Delivery order: bursty (${result.activeCustomers} customers active at once, each sending its events while active, the next starting when one finishes; ` +
      'then duplicates and local reordering), as real Stripe traffic comes in per-customer bursts. The isolated store stage also runs the uniform (worst-case) order.',
    ...phaseNotes(
      result,
      (name, p, fed) =>
        `${name}: ${p.histories} customers, ${fed}; its ${p.batchSpread.batches} consumer batches held ` +
        `${p.batchSpread.meanEventsPerCustomer.toFixed(2)} events per customer (${p.batchSpread.meanCustomers.toFixed(1)} customers per batch) on average.`,
    ),
    mappingNote(result),
    baselineNote(raw, rawAfter, ' the pipeline'),
    `DynamoDB requests: ${JSON.stringify(u.dynamo.requests)}; ${u.dynamo.rejectedWrites} writes rejected (${JSON.stringify(u.dynamo.rejectedReasons)}; est. ${u.dynamo.rejectedWru} WRU, included in WRU/event).`,
    `Committed WRU by item: ${formatWruByItem(u.dynamo.wruByItem)}.`,
    "Request units are computed from each request and response by DynamoDB's sizing rules; DynamoDB Local's own ConsumedCapacity is shown for comparison (it counts one item per table in a transaction).",
    `SQS requests: ${JSON.stringify(u.sqs.requests)}; ${u.sqs.emptyReceives} empty receives.`,
    'Store stage = events committed / wall time with a consumer DynamoDB request in flight (reads + transactions).',
    `Stored account items average ${c.meanAccountItemBytes.toFixed(0)} bytes (compressed account and recent-events window included).`,
    `Ledger: ${l.pages} pages for ${l.customers} customers, ${l.meanEventsPerPage.toFixed(2)} events per page, ` +
      `${l.meanPageBytes.toFixed(0)} bytes per page on average (max ${l.maxPageBytes}); ${l.inLedger}/${l.expectedEvents} expected events recorded, ` +
      `${l.recordedTwice} recorded twice (any outcome), ${l.unexpected} recorded events not among the expected.`,
    ...failureNotes(result, c.examples),
  ];
  return {
    id: 'pipeline',
    title: 'Pipeline (webhook -> SQS -> consumer -> DynamoDB)',
    figures,
    notes,
    detail: result,
  };
}
