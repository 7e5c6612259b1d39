/**
 * Payment reads on a large store (DESIGN §8.1; capacity arithmetic in
 * docs/payments-capacity.md): payments seeded through `commitAll` (planned commits, in
 * parallel) into a copy of the stack's payments table; `getPayment`, a history page of
 * 25 and `dailySummary` one at a time, each in slices alternating with the raw DynamoDB
 * call it makes; the summary's read units at 1,000 payments and at the full count. Also
 * the daily-summary recount the end-to-end check uses.
 */
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { BatchGetItemCommand, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  DynamoDbPaymentStore,
  type PaymentReadOperation,
} from '../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import {
  DEFAULT_SUMMARY_SHARDS,
  PAYMENT_INDEX,
  paymentIndexKeys,
  paymentKeys,
} from '../functions/adapters/dynamodb/payment-table-schema.ts';
import { addDays } from '../functions/adapters/paging/query-cursor.ts';
import { planPaymentCommit } from '../functions/core/payments/apply-payment-events.ts';
import type { DailySummaryRow, PaymentCommit } from '../functions/core/payments/ports.ts';
import {
  type ExpectedPayment,
  generatePaymentHistory,
  seededRandom,
} from '../test/helpers/payment-history.ts';
import { type BenchContext, localDynamo } from './context.ts';
import { pool } from './ledger-check.ts';
import { timeAlternating } from './load.ts';
import { paymentResources, provisionTableCopy } from './provision.ts';
import type { Figure } from './report.ts';
import { type LatencySummary, ratio, summarize } from './stats.ts';

export type PaymentReads = Awaited<ReturnType<typeof measurePaymentReads>>;

const errorText = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).slice(0, 300);

/** date -> `status|currency` -> row: the daily summary recounted from final views. */
export type Recount = Map<string, Map<string, DailySummaryRow>>;

export function recountView(recount: Recount, view: ExpectedPayment): void {
  const date = view.createdAt.slice(0, 10);
  const rows = recount.get(date) ?? new Map<string, DailySummaryRow>();
  recount.set(date, rows);
  const key = `${view.status}|${view.currency}`;
  const row: DailySummaryRow = rows.get(key) ?? {
    status: view.status,
    gateway: 'stripe',
    currency: view.currency,
    count: 0,
    amount: 0,
  };
  row.count += 1;
  row.amount += view.amount;
  rows.set(key, row);
}

/** Days (and the day either side, which must be empty) whose stored summary differs from the recount. */
export async function summaryMismatches(
  store: DynamoDbPaymentStore,
  recount: Recount,
  examples: string[],
) {
  const days = new Set<string>();
  for (const date of recount.keys()) for (const d of [-1, 0, 1]) days.add(addDays(date, d));
  let mismatches = 0;
  await pool([...days], 8, async (date) => {
    // Sorted as `dailySummary` sorts: by status, then currency.
    const expected = [...(recount.get(date)?.entries() ?? [])]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, row]) => row);
    if (!isDeepStrictEqual(await store.dailySummary(date), expected)) {
      mismatches += 1;
      if (examples.length < 5) examples.push(`summary ${date}`);
    }
  });
  return { days: days.size, mismatches };
}

/** Commits per `commitAll` call while seeding (8 packs of 49 payments), and calls in flight. */
const SEED_CHUNK = 392;
const SEED_WORKERS = 4;
/** Each read is timed in this many slices, alternating with its raw DynamoDB call. */
const READ_SLICES = 3;

export async function measurePaymentReads(ctx: BenchContext) {
  const { sizes, harness } = ctx;
  const { paymentsTableLogicalId } = paymentResources(ctx.model);
  const tag = Date.now().toString(36);
  const table = await provisionTableCopy(
    ctx.model,
    harness.dynamo,
    paymentsTableLogicalId,
    `-reads${tag}`,
  );
  const users = Array.from({ length: sizes.paymentReadUsers }, (_, i) => `user-rd${tag}-${i}`);
  const firstDay = Date.UTC(2025, 5, 1) / 1000;
  const dates = Array.from({ length: sizes.paymentReadDays }, (_, d) =>
    new Date((firstDay + d * 86_400) * 1000).toISOString().slice(0, 10),
  );

  // Seeding through the harness's (unmetered) client: planned commits straight into commitAll.
  const seedStore = new DynamoDbPaymentStore({ client: harness.dynamo, paymentsTableName: table });
  const intentIds: string[] = [];
  const chargeIds: string[] = [];
  const recount: Recount = new Map();
  const seed = { payments: 0, histories: 0, chunks: 0, elapsedMs: 0, resent: 0, failed: 0 };
  /** One chunk of planned commits, all created on one day, users in turn. */
  const plan = (day: number, size: number): PaymentCommit[] => {
    const commits: PaymentCommit[] = [];
    while (commits.length < size) {
      const n = ++seed.histories;
      const start = firstDay + day * 86_400 + ((n * 7_919) % 80_000);
      for (const payment of generatePaymentHistory(n, { prefix: `rd${tag}`, payments: 4, start })
        .payments) {
        if (commits.length === size) break;
        const userId = users[seed.payments % users.length]!;
        const facts = payment.facts.map((fact) => ({
          recordIds: [],
          fact: fact.userId === null ? fact : { ...fact, userId },
          receivedAt: null,
        }));
        const { commit } = planPaymentCommit(payment.paymentId, facts, undefined, Date.now());
        if (!commit?.view) continue;
        commits.push(commit);
        seed.payments += 1;
        recountView(recount, commit.view);
        if (commit.paymentId.startsWith('pi_')) intentIds.push(commit.paymentId);
        // A charge id finds its payment: by a pointer (charge of a PaymentIntent) or its own key.
        const chargeId = commit.view.chargeId;
        if (chargeId) chargeIds.push(chargeId);
      }
    }
    return commits;
  };
  const commitAll = async (commits: PaymentCommit[]) => {
    let pending = commits;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const results = await seedStore.commitAll(pending);
      const again: PaymentCommit[] = [];
      results.forEach((result, i) => {
        if (result.status === 'committed') return;
        // After a resend, a revision conflict is the earlier attempt having landed.
        if (result.status === 'revision-conflict' && attempt > 0) return;
        if (result.status === 'revision-conflict' || attempt >= 5) seed.failed += 1;
        else again.push(pending[i]!);
      });
      seed.resent += again.length;
      pending = again;
    }
  };
  const seedTo = async (target: number) => {
    ctx.log(`payments reads: seeding up to ${target.toLocaleString('en-US')} payments`);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SEED_WORKERS }, async () => {
        while (seed.payments < target) {
          const size = Math.min(SEED_CHUNK, target - seed.payments);
          await commitAll(plan(seed.chunks++ % dates.length, size));
        }
      }),
    );
    seed.elapsedMs += performance.now() - t0;
  };

  // Reads through a client of their own, metered: each read also gets RRU by DynamoDB's rules.
  const readClient = localDynamo(ctx.endpoints.dynamo);
  let onUnits: ((operation: PaymentReadOperation, units: number) => void) | undefined;
  const store = new DynamoDbPaymentStore({
    client: readClient,
    paymentsTableName: table,
    onReadUnits: (operation, units) => onUnits?.(operation, units),
  });
  /** Read units of one `dailySummary` of the first day: the larger of DynamoDB Local's and the sizing rules'. */
  const summaryUnits = async () => {
    let reported = 0;
    onUnits = (_operation, units) => {
      reported = Math.max(reported, units);
    };
    ctx.meter.reset();
    for (let i = 0; i < 5; i++) await store.dailySummary(dates[0]!);
    onUnits = undefined;
    const computed = ctx.meter.snapshot().dynamo.rru / 5;
    const thatDay = [...(recount.get(dates[0]!)?.values() ?? [])].reduce((n, r) => n + r.count, 0);
    return {
      payments: seed.payments,
      thatDay,
      reported,
      computed,
      units: Math.max(reported, computed),
    };
  };
  await seedTo(1_000);
  const small = await summaryUnits();
  await seedTo(sizes.paymentReadPayments);
  const full = await summaryUnits();
  ctx.log(`payments reads: seeded in ${(seed.elapsedMs / 1000).toFixed(1)} s; timing reads`);

  const random = seededRandom(7);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const wireKey = (key: { pk: string; sk: string }) => ({ pk: { S: key.pk }, sk: { S: key.sk } });
  let historyItems = 0;
  let historyPages = 0;
  /** `op` one at a time, in slices alternating with `baseline` (the raw call it makes), if any. */
  const timed = async (op: () => Promise<unknown>, baseline?: () => Promise<unknown>) => {
    let units = 0;
    onUnits = (_operation, value) => {
      units += value;
    };
    ctx.meter.reset();
    const { own, base, calls, failed, firstError } = await timeAlternating(op, baseline, {
      slices: READ_SLICES,
      durationMs: sizes.paymentReadDurationMs,
      warmupMs: sizes.warmupMs,
    });
    onUnits = undefined;
    return {
      latency: summarize(own),
      raw: baseline ? summarize(base) : undefined,
      failed,
      firstError: firstError === undefined ? undefined : errorText(firstError),
      /** Read units the store reported through `onReadUnits` (DynamoDB Local's figure), per call. */
      reportedUnits: units / Math.max(1, calls),
      /** By DynamoDB's sizing rules (the meter), per call. */
      computedUnits: ctx.meter.snapshot().dynamo.rru / Math.max(1, calls),
    };
  };
  const found = async (view: Promise<unknown>) => {
    if (!(await view)) throw new Error('seeded payment not found');
  };
  try {
    const getPayment = await timed(
      () => found(store.getPayment(pick(intentIds))),
      () =>
        harness.dynamo.send(
          new GetItemCommand({
            TableName: table,
            Key: wireKey(paymentKeys.payment(pick(intentIds))),
            ProjectionExpression: '#view',
            ExpressionAttributeNames: { '#view': 'view' },
          }),
        ),
    );
    const getByCharge = await timed(() => found(store.getPayment(pick(chargeIds))));
    const history = await timed(
      async () => {
        historyItems += (await store.listUserPayments({ userId: pick(users), limit: 25 })).items
          .length;
        historyPages += 1;
      },
      () =>
        harness.dynamo.send(
          new QueryCommand({
            TableName: table,
            IndexName: PAYMENT_INDEX.userHistory,
            KeyConditionExpression: 'userPk = :pk',
            ExpressionAttributeValues: { ':pk': { S: paymentIndexKeys.user(pick(users)) } },
            ProjectionExpression: 'createdSk, #view',
            ExpressionAttributeNames: { '#view': 'view' },
            ScanIndexForward: false,
            Limit: 26,
          }),
        ),
    );
    const summary = await timed(
      () => store.dailySummary(pick(dates)),
      () => {
        const date = pick(dates);
        return harness.dynamo.send(
          new BatchGetItemCommand({
            RequestItems: {
              [table]: {
                Keys: Array.from({ length: DEFAULT_SUMMARY_SHARDS }, (_, shard) =>
                  wireKey(paymentKeys.summary(date, shard)),
                ),
              },
            },
          }),
        );
      },
    );
    return {
      payments: seed.payments,
      users: users.length,
      days: dates.length,
      seed: {
        elapsedMs: seed.elapsedMs,
        paymentsPerSecond: seed.payments / (seed.elapsedMs / 1000),
        resent: seed.resent,
        failed: seed.failed,
      },
      getPayment,
      getByCharge,
      history,
      summary,
      meanHistoryPageItems: historyItems / Math.max(1, historyPages),
      summaryUnits: { small, full },
      /** Seeded days whose summary differs from the recount of the seeded views. */
      summaryMismatches: (await summaryMismatches(seedStore, recount, [])).mismatches,
    };
  } finally {
    readClient.destroy();
  }
}

/** The reads' figures in the payments section. */
export function readFigures(reads: PaymentReads): Figure[] {
  type Read = PaymentReads['getPayment'];
  const read = (
    key: string,
    label: string,
    r: Read,
    rawLabel?: string,
    target?: number,
  ): Figure[] =>
    (['p50', 'p99'] as const).map((p) => ({
      id: `payments.reads.${key}.${p}`,
      label: `${label} ${p}`,
      value: r.latency[`${p}Ms`],
      unit: 'ms',
      ...(r.raw && rawLabel
        ? {
            ratio: {
              value: ratio(r.latency[`${p}Ms`], r.raw[`${p}Ms`]),
              to: `raw ${rawLabel} ${p}`,
            },
          }
        : {}),
      ...(p === 'p99' && target ? { target: { op: '<' as const, value: target } } : {}),
    }));
  const units = (key: 'small' | 'full'): Figure => {
    const s = reads.summaryUnits[key];
    return {
      id: `payments.reads.summaryUnits.${key}`,
      label: `dailySummary read units, ${s.payments.toLocaleString('en-US')} payments stored`,
      value: s.units,
      unit: 'RCU',
      ...(key === 'full'
        ? {
            ratio: {
              value: ratio(s.units, reads.summaryUnits.small.units),
              to: 'at 1,000 payments',
            },
          }
        : {}),
      target: { op: '<=', value: 5 },
    };
  };
  return [
    ...read(
      'getPayment',
      `getPayment(pi_), ${reads.payments.toLocaleString('en-US')} stored,`,
      reads.getPayment,
      'GetItem',
      5,
    ),
    ...read('history', 'history page of 25', reads.history, 'Query', 5),
    ...read('summary', 'dailySummary', reads.summary, 'BatchGetItem'),
    units('small'),
    units('full'),
  ];
}

/** The reads' notes, then their failures (`failures`), in the payments section. */
export function readNotes(r: PaymentReads) {
  const ms = (x: LatencySummary) => `${x.p50Ms.toFixed(1)} / ${x.p99Ms.toFixed(1)} ms`;
  const notes = [
    `Reads: ${r.payments.toLocaleString('en-US')} payments over ${r.days} days and ${r.users} users, seeded through commitAll in ${(r.seed.elapsedMs / 1000).toFixed(1)} s ` +
      `(${r.seed.paymentsPerSecond.toFixed(0)} payments/s, ${r.seed.resent} commits resent, ${r.seed.failed} failed); ${r.summaryMismatches} of their days' summaries differ from a recount. ` +
      `Ids, users and days at random; one read at a time, in ${READ_SLICES} slices alternating with the raw call (p50 / p99): GetItem ${r.getPayment.raw ? ms(r.getPayment.raw) : ''}, ` +
      `Query of 26 ${r.history.raw ? ms(r.history.raw) : ''}, BatchGetItem of 8 ${r.summary.raw ? ms(r.summary.raw) : ''}. getPayment by charge id (pointer, then the payment): ${ms(r.getByCharge.latency)}. ` +
      `History pages held ${r.meanHistoryPageItems.toFixed(1)} items on average.`,
    `Read units per call, DynamoDB Local via onReadUnits / DynamoDB's sizing rules: getPayment ${r.getPayment.reportedUnits.toFixed(2)} / ${r.getPayment.computedUnits.toFixed(2)}, ` +
      `history page ${r.history.reportedUnits.toFixed(2)} (the meter sizes document-client queries as wire items: its figure is not shown), ` +
      `dailySummary ${r.summary.reportedUnits.toFixed(2)} / ${r.summary.computedUnits.toFixed(2)}. ` +
      `Summary units (the larger of the two): at ${r.summaryUnits.small.payments} payments (${r.summaryUnits.small.thatDay} that day) ${r.summaryUnits.small.reported} / ${r.summaryUnits.small.computed}, ` +
      `at ${r.summaryUnits.full.payments} (${r.summaryUnits.full.thatDay} that day) ${r.summaryUnits.full.reported} / ${r.summaryUnits.full.computed}; DynamoDB Local charges only the shards that exist.`,
  ];
  const failures = [r.getPayment, r.getByCharge, r.history, r.summary].flatMap((x) =>
    x.firstError ? [`read failure (${x.failed}): ${x.firstError}`] : [],
  );
  return { notes, failures };
}
