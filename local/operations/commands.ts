/**
 * The operator commands (DESIGN §8.4). Each is a name, a usage line, its flags, and a
 * `run` over a connected target; `cli.ts` parses and dispatches. Long runs print
 * progress; commands that change data take `--dry-run`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DynamoDbCreditStore } from '../../functions/adapters/dynamodb/dynamodb-credit-store.ts';
import { DynamoDbPaymentStore } from '../../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { SqsEventQueue } from '../../functions/adapters/sqs/sqs-event-queue.ts';
import { StripeCustomerLookup } from '../../functions/adapters/stripe/stripe-customer-source.ts';
import { StripeEventList } from '../../functions/adapters/stripe/stripe-event-source.ts';
import { StripePenaltyPaymentGateway } from '../../functions/adapters/stripe/stripe-penalty-payments.ts';
import { StripeCallPolicy } from '../../functions/adapters/stripe/stripe-resilience.ts';
import { creditStats } from '../../functions/core/credits/credit-stats.ts';
import type { CreditStats } from '../../functions/core/credits/ports.ts';
import {
  MAX_REPLAY_TYPES,
  type ReplayProgress,
  replayStripeEvents,
} from '../../functions/core/intake/replay-events.ts';
import type { Overpayment } from '../../functions/core/penalties/ports.ts';
import { refundOverpayments } from '../../functions/core/penalties/refund-overpayments.ts';
import { systemClock } from '../../functions/core/shared/clock.ts';
import { type PriceTierMap, parsePriceTierMap } from '../../functions/core/shared/tiers.ts';
import {
  type ResyncDeps,
  type ResyncOutcome,
  resyncCustomer,
  resyncMarked,
  resyncUser,
} from '../../functions/core/subscriptions/resync.ts';
import { holdMessages, peek, queueDepth, redrive } from './dead-letters.ts';
import { describeStripe, describeWebhooks, readMetricFigures } from './metric-figures.ts';
import { describeWork, rerunScheduledWork } from './schedule-reruns.ts';
import {
  checkStripeMode,
  type OpsTarget,
  type ScheduleDeadLetterQueue,
  UsageError,
} from './target.ts';

type FlagSpec = { type: 'string' | 'boolean'; description: string };

export interface OpsCommand {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  run(
    target: OpsTarget,
    flags: Record<string, string | boolean | undefined>,
    io: OpsIo,
  ): Promise<unknown>;
}

export interface OpsIo {
  /** One line of human output (progress, results). */
  print(line: string): void;
  /** `--json`: the result is printed as JSON instead of lines. */
  json: boolean;
}

/** Where replays keep their cursor between runs (per range and types). */
export const REPLAY_STATE_DIR = resolve(
  dirname(new URL(import.meta.url).pathname),
  '../../.local/ops',
);

const dlqList: OpsCommand = {
  name: 'dlq:list',
  summary:
    "every queue with its DLQ: depths, and with --peek the first messages of each DLQ; the schedules' DLQs, with the work a redrive reruns",
  usage: 'dlq:list [--peek N] [--json]',
  flags: {
    peek: {
      type: 'string',
      description: 'show up to N (1-10) messages of each non-empty DLQ, consuming nothing',
    },
  },
  async run(target, flags, io) {
    const peekCount = flags.peek === undefined ? 0 : positive(flags.peek, '--peek', 10);
    const rows = [];
    for (const queue of target.consumedQueues) {
      const [source, dead] = await Promise.all([
        queueDepth(target.sqs, queue),
        queueDepth(target.sqs, queue.deadLetter),
      ]);
      const messages =
        peekCount > 0 && dead.visible > 0
          ? await peek(target.sqs, queue.deadLetter, peekCount)
          : [];
      rows.push({
        queue: queue.name,
        deadLetterQueue: queue.deadLetter.name,
        source,
        dead,
        messages,
      });
      io.print(
        `${queue.deadLetter.name}: ${dead.visible} waiting, ${dead.inFlight} in flight  (source ${queue.name}: ${source.visible} waiting, ${source.inFlight} in flight)`,
      );
      for (const m of messages) {
        io.print(
          `  ${m.eventId ?? '?'} ${m.eventType ?? '?'} received ${m.receiveCount}x, ${m.bytes} bytes`,
        );
      }
    }
    for (const queue of target.scheduleDeadLetters) {
      const dead = await queueDepth(target.sqs, queue);
      rows.push({
        queue: null,
        deadLetterQueue: queue.name,
        reruns: queue.reruns?.kind ?? null,
        dead,
        messages: [],
      });
      io.print(
        `${queue.name}: ${dead.visible} waiting, ${dead.inFlight} in flight  (${
          queue.reruns
            ? `failed runs of ${describeWork(queue.reruns)}; redrive: reruns the schedule's work now`
            : `failed schedule runs; ${target.where} does not say which schedule: not redrivable`
        })`,
      );
    }
    return rows;
  },
};

const dlqRedrive: OpsCommand = {
  name: 'dlq:redrive',
  summary:
    "move DLQ messages back to the queue they failed from (after fixing the cause); send first, then delete: an interrupted run leaves a duplicate the consumers absorb, never a loss. A schedule's DLQ: rerun the schedule's work now, then delete the messages it held (only if the run succeeded)",
  usage: 'dlq:redrive [--queue <name>] [--max N] [--dry-run] [--json]',
  flags: {
    queue: {
      type: 'string',
      description:
        "only the queue (or DLQ, or schedule DLQ) of this name, or the one whose name contains it (refused when several do); default every consumed queue, then the schedules' DLQs",
    },
    max: {
      type: 'string',
      description:
        'move at most N messages per consumed queue (a schedule DLQ is cleared by one rerun)',
    },
    'dry-run': {
      type: 'boolean',
      description: 'count what would move, and say what a schedule rerun would do; change nothing',
    },
  },
  async run(target, flags, io) {
    const filter = typeof flags.queue === 'string' ? flags.queue : undefined;
    // The exact name, else a part of one name: a part several names hold (`CreditRefresh`:
    // a consumed queue and a schedule DLQ) would move more than the operator meant.
    const pick = (match: (name: string) => boolean) => ({
      queues: target.consumedQueues.filter(
        (q) => !filter || match(q.name) || match(q.deadLetter.name),
      ),
      schedules: target.scheduleDeadLetters.filter((q) => !filter || match(q.name)),
    });
    const exact = pick((name) => name === filter);
    const { queues, schedules } =
      exact.queues.length + exact.schedules.length > 0
        ? exact
        : pick((name) => filter !== undefined && name.includes(filter));
    if (filter && queues.length + schedules.length > 1) {
      throw new UsageError(
        `--queue ${filter} matches several queues: ${[...queues, ...schedules].map((q) => q.name).join(', ')}; give one name whole`,
      );
    }
    if (queues.length === 0 && schedules.length === 0) {
      throw new UsageError(
        `--queue ${filter} names no queue; one of: ${[
          ...target.consumedQueues.map((q) => q.name),
          ...target.scheduleDeadLetters.map((q) => q.name),
        ].join(', ')}`,
      );
    }
    const max = flags.max === undefined ? undefined : positive(flags.max, '--max');
    const results = [];
    for (const queue of queues) {
      const before = await queueDepth(target.sqs, queue.deadLetter);
      if (flags['dry-run'] || before.visible === 0) {
        const wouldMove = Math.min(before.visible, max ?? before.visible);
        io.print(
          `${queue.deadLetter.name}: ${before.visible} waiting; ${flags['dry-run'] ? `would move ${wouldMove} to ${queue.name}` : 'nothing to move'}`,
        );
        results.push({
          queue: queue.name,
          before: before.visible,
          moved: 0,
          after: before.visible,
        });
        continue;
      }
      io.print(`${queue.deadLetter.name}: ${before.visible} waiting; moving to ${queue.name}...`);
      // At most what waited at the start: if the cause is not fixed and messages fail
      // back into the DLQ, this run does not chase them round in a loop.
      const notDeleted: string[] = [];
      const moved = await redrive(target.sqs, queue, {
        max: Math.min(max ?? before.visible, before.visible),
        onProgress: (n) => io.print(`  ${n} moved`),
        onNotDeleted: (messages) => {
          notDeleted.push(...messages.map((m) => m.messageId));
          io.print(
            `  ${messages.length} sent but not deleted from ${queue.deadLetter.name} (${messages[0]!.code}): a later redrive sends them again (a duplicate the consumers absorb)`,
          );
        },
      });
      const after = await queueDepth(target.sqs, queue.deadLetter);
      io.print(
        `${queue.deadLetter.name}: moved ${moved}${notDeleted.length > 0 ? ` (${notDeleted.length} of them not deleted from it)` : ''}; ${after.visible} waiting now`,
      );
      results.push({
        queue: queue.name,
        before: before.visible,
        moved,
        after: after.visible,
        ...(notDeleted.length > 0 ? { notDeleted } : {}),
      });
    }
    const failed: string[] = [];
    for (const queue of schedules) {
      const result = await redriveSchedule(target, queue, flags['dry-run'] === true, io);
      if (result.error) failed.push(`${queue.name}: ${result.error}`);
      results.push(result);
    }
    if (failed.length > 0) {
      // Exit non-zero, so a script notices: those DLQs keep their messages for the next run.
      throw new Error(`not redriven, the messages stay for the next redrive: ${failed.join('; ')}`);
    }
    return results;
  },
};

/** What the redrive of a schedule's DLQ did (`--json`). */
interface ScheduleRedrive {
  queue: null;
  deadLetterQueue: string;
  reruns: string | null;
  before: number;
  deleted: number;
  after: number;
  /** The rerun's result (the use case's), or what a dry run would do. */
  run?: unknown;
  /** Why nothing was deleted after a rerun: it failed or stopped incomplete. */
  error?: string;
}

/**
 * A schedule's DLQ: hold the messages it has now, rerun the schedule's work once, and
 * delete the held messages only if that run succeeded (else release them). Messages
 * arriving during the run are not held, so they stay. Killed half-way, the held
 * messages are visible again after their timeout; the work is idempotent.
 */
async function redriveSchedule(
  target: OpsTarget,
  queue: ScheduleDeadLetterQueue,
  dryRun: boolean,
  io: OpsIo,
): Promise<ScheduleRedrive> {
  const before = await queueDepth(target.sqs, queue);
  const result: ScheduleRedrive = {
    queue: null,
    deadLetterQueue: queue.name,
    reruns: queue.reruns?.kind ?? null,
    before: before.visible,
    deleted: 0,
    after: before.visible,
  };
  if (!queue.reruns) {
    io.print(
      `${queue.name}: ${before.visible} waiting; ${target.where} does not say which schedule this DLQ belongs to, so nothing is rerun (restart \`npm start\`, or write the outputs file of the current lib/ again)`,
    );
    return result;
  }
  const work = describeWork(queue.reruns);
  if (before.visible === 0) {
    io.print(`${queue.name}: 0 waiting; nothing to redrive`);
    return result;
  }
  const progress = (line: string) => io.print(line);
  if (dryRun) {
    const plan = await rerunScheduledWork(target, queue.reruns, { dryRun: true, progress });
    io.print(
      `${queue.name}: ${before.visible} waiting; would rerun ${work} now: ${plan.summary}; then delete the ${before.visible} message(s)`,
    );
    return { ...result, run: plan.detail };
  }
  const held = await holdMessages(target.sqs, queue);
  if (held.count === 0) {
    await held.release();
    io.print(`${queue.name}: no message to take (another redrive holds them?); nothing rerun`);
    return result;
  }
  io.print(`${queue.name}: ${before.visible} waiting; holding ${held.count}, rerunning ${work}...`);
  let outcome: Awaited<ReturnType<typeof rerunScheduledWork>>;
  try {
    outcome = await rerunScheduledWork(target, queue.reruns, { dryRun: false, progress });
  } catch (error) {
    await held.release();
    const after = await queueDepth(target.sqs, queue).catch(() => before);
    const message = `the rerun failed (${(error as Error).message}); deleted nothing`;
    io.print(`${queue.name}: ${message}; ${after.visible} waiting now`);
    return { ...result, after: after.visible, error: message };
  }
  if (!outcome.done) {
    await held.release();
    const after = await queueDepth(target.sqs, queue);
    const message = `${outcome.summary}: stopped incomplete, deleted nothing (run dlq:redrive again to resume)`;
    io.print(`${queue.name}: ${message}; ${after.visible} waiting now`);
    return { ...result, after: after.visible, run: outcome.detail, error: message };
  }
  const deleted = await held.delete();
  const after = await queueDepth(target.sqs, queue);
  io.print(`${queue.name}: ${outcome.summary}; deleted ${deleted}; ${after.visible} waiting now`);
  return { ...result, deleted, after: after.visible, run: outcome.detail };
}

const replay: OpsCommand = {
  name: 'replay',
  summary:
    "send a time range of Stripe's events through the normal queues (safe to repeat, resumable)",
  usage: 'replay --from <iso> [--to <iso>] [--types a,b] [--dry-run] [--restart] [--json]',
  flags: {
    from: { type: 'string', description: 'events created at or after this time (ISO 8601)' },
    to: { type: 'string', description: 'events created at or before this time (default now)' },
    types: {
      type: 'string',
      description: `comma-separated event types, at most ${MAX_REPLAY_TYPES} (default all)`,
    },
    'dry-run': { type: 'boolean', description: 'count what would be sent, send nothing' },
    restart: {
      type: 'boolean',
      description: 'ignore the saved cursor of an earlier run of the same range',
    },
  },
  async run(target, flags, io) {
    const fromSeconds = isoSeconds(flags.from, '--from');
    let toSeconds =
      flags.to === undefined ? Math.floor(Date.now() / 1000) : isoSeconds(flags.to, '--to');
    const types =
      typeof flags.types === 'string'
        ? flags.types
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean)
        : [];
    if (fromSeconds > toSeconds) throw new UsageError('--from must not be after --to');
    if (types.length > MAX_REPLAY_TYPES)
      throw new UsageError(`--types: at most ${MAX_REPLAY_TYPES}`);
    const dryRun = flags['dry-run'] === true;
    // Before Stripe is listed: a key of the other mode would queue its events here.
    const stripeMode = await checkStripeMode(target, 'replay');
    if (stripeMode.note) io.print(`Note: ${stripeMode.note}.`);
    const stateFile = resolve(
      REPLAY_STATE_DIR,
      `replay-${createHash('sha256')
        .update(JSON.stringify([target.where, fromSeconds, flags.to ?? 'now', types]))
        .digest('hex')
        .slice(0, 16)}.json`,
    );
    const saved = dryRun || flags.restart ? undefined : await readState(stateFile);
    if (saved) {
      // Without --to, "now" is the first run's: the same range, so its cursor holds.
      toSeconds = saved.toSeconds;
      io.print(
        `Resuming after ${saved.progress.cursor} (${saved.progress.listed} events already listed).`,
      );
    }
    const progress = await replayStripeEvents(
      {
        fromSeconds,
        toSeconds,
        types,
        dryRun,
        ...(saved ? { resumeFrom: saved.progress } : {}),
        ...(stripeMode.mode ? { livemode: stripeMode.mode === 'live' } : {}),
      },
      {
        source: new StripeEventList({
          clients: target.stripeClients(),
          calls: new StripeCallPolicy(),
        }),
        queue: new SqsEventQueue({ queueUrls: target.eventQueues, client: target.sqs }),
        clock: systemClock,
        onPage: async (page) => {
          io.print(
            `  page ${page.pages}: ${page.listed} listed, ${page.enqueued} ${dryRun ? 'to send' : 'sent'}`,
          );
          if (!dryRun) await writeState(stateFile, { progress: page, toSeconds });
        },
      },
    );
    if (!dryRun) await rm(stateFile, { force: true });
    io.print(
      `${dryRun ? 'Would send' : 'Sent'} ${progress.enqueued} of ${progress.listed} events (${
        Object.entries(progress.byFamily)
          .map(([f, n]) => `${f} ${n}`)
          .join(', ') || 'none'
      }); ${progress.unrouted} of types no family consumes; ${progress.malformed.length} malformed${progress.malformed.length ? `: ${progress.malformed.join(', ')}` : ''}.`,
    );
    return progress;
  },
};

const resync: OpsCommand = {
  name: 'resync',
  summary:
    "rebuild a customer's subscriptions from Stripe's current objects (a user's every customer, or every customer a same-second tie marked), resolving tiers with the target's price→tier map",
  usage:
    "resync (--user <id> | --customer <cus_...> | --marked) [--price-tier-map '<json>'|<file>] [--allow-empty-price-map] [--dry-run] [--json]",
  flags: {
    user: { type: 'string', description: 'every Stripe customer of this user' },
    customer: { type: 'string', description: 'this Stripe customer' },
    marked: {
      type: 'boolean',
      description: 'every customer marked by an unresolved same-second tie',
    },
    'price-tier-map': {
      type: 'string',
      description:
        "the price→tier map to use instead of the target's (the stack's PriceTierMap output, or the local runtime's): a JSON object of price id to tier, or a file holding one; validated like the priceTierMap CDK context",
    },
    'allow-empty-price-map': {
      type: 'boolean',
      description:
        'run although the price→tier map is empty, i.e. every price without metadata.tier is meant to be free (refused otherwise: it would downgrade paying users)',
    },
    'dry-run': {
      type: 'boolean',
      description: 'show the view the resync would give, write nothing',
    },
  },
  async run(target, flags, io) {
    const chosen = [flags.user, flags.customer, flags.marked].filter(
      (v) => v !== undefined && v !== false,
    );
    if (chosen.length !== 1)
      throw new UsageError('resync takes exactly one of --user, --customer, --marked');
    if (typeof flags.customer === 'string' && !flags.customer.startsWith('cus_'))
      throw new UsageError('--customer must be a cus_... id');
    // Before anything is read or written: a resync is newer than every event, so a tier
    // it resolves wrongly (an unmapped price is free) overwrites the right one.
    const priceTierMap = await resyncPriceTierMap(target, flags, io);
    // A key of the other mode would store its customers' state over this target's.
    const stripeMode = await checkStripeMode(target, 'resync');
    if (stripeMode.note) io.print(`Note: ${stripeMode.note}.`);
    const unknown = [
      ...(target.creditAllowances ? [] : ['CreditAllowances']),
      ...(target.ledgerRetentionDays === undefined ? ['LedgerRetentionDays'] : []),
    ];
    if (unknown.length > 0) {
      io.print(
        `Note: the outputs file has no ${unknown.join(' or ')} (a stack deployed before them): a profile this resync creates gets no first credit refresh (it waits for its slot), and its ledger pages the default retention. Redeploy to add them.`,
      );
    }
    const store = new DynamoDbSubscriptionStore({
      client: target.dynamo,
      billingTableName: target.tables.billing,
      ledgerTableName: target.tables.ledger,
      // What the subscription consumer is given (lib/subscription-processing.ts).
      ...(target.creditAllowances ? { creditAllowances: target.creditAllowances } : {}),
      ...(target.ledgerRetentionDays !== undefined
        ? { ledgerRetentionDays: target.ledgerRetentionDays }
        : {}),
    });
    const deps: ResyncDeps = {
      source: new StripeCustomerLookup({
        clients: target.stripeClients(),
        calls: new StripeCallPolicy(),
      }),
      reader: new DynamoDbUserViewReader({
        client: target.dynamo,
        billingTableName: target.tables.billing,
      }),
      store,
      clock: systemClock,
      priceTierMap,
      dryRun: flags['dry-run'] === true,
      ...(stripeMode.mode ? { livemode: stripeMode.mode === 'live' } : {}),
    };
    const report = (outcome: ResyncOutcome) =>
      io.print(
        outcome.outcome === 'resynced'
          ? `${outcome.customerId}: ${flags['dry-run'] ? 'would give' : 'resynced,'} ${outcome.subscriptions} subscription(s) → ${outcome.view ? `${outcome.view.userId} ${outcome.view.tier} ${outcome.view.status}` : 'no user linked'}`
          : `${outcome.customerId}: Stripe does not know this customer; nothing changed`,
      );
    let outcomes: ResyncOutcome[];
    if (typeof flags.customer === 'string') {
      outcomes = [await resyncCustomer(flags.customer, deps)];
      outcomes.forEach(report);
    } else if (typeof flags.user === 'string') {
      outcomes = await resyncUser(flags.user, deps);
      if (outcomes.length === 0)
        io.print(`Neither the store nor Stripe knows a customer of ${flags.user}.`);
      outcomes.forEach(report);
    } else {
      outcomes = await resyncMarked({ ...deps, marks: store }, report);
      if (outcomes.length === 0) io.print('No customer is marked for a resync.');
    }
    return outcomes;
  },
};

/**
 * The map a resync resolves tiers with: `--price-tier-map` (JSON or a file, validated
 * with the rule the priceTierMap CDK context and the functions use), else the target's.
 * Refused when the target does not say (a stack deployed before its PriceTierMap
 * output), and when the map is empty without `--allow-empty-price-map`.
 */
async function resyncPriceTierMap(
  target: OpsTarget,
  flags: Record<string, string | boolean | undefined>,
  io: OpsIo,
): Promise<PriceTierMap> {
  const given = flags['price-tier-map'];
  let map: PriceTierMap;
  let from: string;
  if (typeof given === 'string') {
    map = await priceTierMapArgument(given);
    from = '--price-tier-map';
    if (target.priceTierMap && !samePriceTierMap(map, target.priceTierMap)) {
      io.print(
        `Note: --price-tier-map differs from the map of ${target.where} (${Object.keys(target.priceTierMap).length} price(s)); this run uses --price-tier-map.`,
      );
    }
  } else if (target.priceTierMap) {
    map = target.priceTierMap;
    from = target.endpoints ? 'the local runtime' : "the stack's PriceTierMap output";
  } else {
    throw new UsageError(
      `${target.where} does not say which price→tier map its functions use: the outputs file has no PriceTierMap (a stack deployed before that output). Redeploy with the current lib/ and write the outputs file again (npx cdk deploy --all --outputs-file <file>), or pass the map the stack was deployed with: --price-tier-map '{"price_...":"gold"}' or --price-tier-map <file>.`,
    );
  }
  const prices = Object.keys(map).length;
  if (prices === 0 && flags['allow-empty-price-map'] !== true) {
    throw new UsageError(
      `The price→tier map (from ${from}) is empty: every price without metadata.tier would resolve to free, and a resync, newer than every event, would overwrite paying users' tiers with free. Pass the map the functions should use (--price-tier-map '<json>' or <file>), or --allow-empty-price-map if free for every unmapped price is intended. Nothing was changed.`,
    );
  }
  io.print(`Price→tier map: ${prices} price(s), from ${from}.`);
  return map;
}

/** `--price-tier-map`: a JSON object (starts with `{`), else the path of a file holding one. */
async function priceTierMapArgument(value: string): Promise<PriceTierMap> {
  let json = value;
  if (!value.trim().startsWith('{')) {
    try {
      json = await readFile(value, 'utf8');
    } catch (error) {
      throw new UsageError(
        `--price-tier-map ${value}: neither a JSON object nor a readable file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`,
      );
    }
  }
  try {
    return parsePriceTierMap(json);
  } catch (error) {
    throw new UsageError(
      `--price-tier-map: ${(error as Error).message.replace(/^PRICE_TIER_MAP:?\s*/, '')}`,
    );
  }
}

function samePriceTierMap(a: PriceTierMap, b: PriceTierMap): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

const refunds: OpsCommand = {
  name: 'refunds',
  summary:
    'list the penalties a settlement PaymentIntent paid when they were already waived or paid, and (--issue) refund them at Stripe',
  usage: 'refunds [--issue [--dry-run]] [--all] [--json]',
  flags: {
    issue: {
      type: 'boolean',
      description: 'refund each open one (one partial refund per penalty, idempotent)',
    },
    'dry-run': {
      type: 'boolean',
      description: 'with --issue: say what would be refunded, refund nothing (no Stripe call)',
    },
    all: { type: 'boolean', description: 'list refunded ones too' },
  },
  async run(target, flags, io) {
    if (flags.issue && flags.all) throw new UsageError('--all lists; it does not go with --issue');
    const dryRun = flags['dry-run'] === true;
    if (dryRun && !flags.issue)
      throw new UsageError(
        '--dry-run goes with --issue (listing, without --issue, changes nothing anyway)',
      );
    const store = new DynamoDbPenaltyStore({
      client: target.dynamo,
      penaltiesTableName: target.tables.penalties,
    });
    const describe = (o: Overpayment) =>
      `${o.paymentIntentId} paid ${o.penaltyId} (${o.amount} ${o.currency}, user ${o.userId}) already ${o.settledAs}${o.settledBy ? ` by ${o.settledBy}` : ''}`;
    if (!flags.issue) {
      const listed = await store.listOverpayments({ all: flags.all === true });
      if (listed.length === 0) io.print(`No refund is due in ${target.where}.`);
      for (const o of listed)
        io.print(`${describe(o)}${o.refundId ? `: refunded ${o.refundId}` : ': refund due'}`);
      if (listed.some((o) => !o.refundId))
        io.print('Issue them with: npm run ops -- refunds --issue');
      return listed;
    }
    const outcomes = await refundOverpayments(
      {
        store,
        // A dry run calls no gateway, so it needs no Stripe key either.
        gateway: dryRun
          ? {
              refundPenaltyPayment: () => Promise.reject(new Error('a dry run refunds nothing')),
            }
          : new StripePenaltyPaymentGateway({
              clients: target.stripeClients(),
              calls: new StripeCallPolicy(),
            }),
        clock: systemClock,
      },
      {
        dryRun,
        onEach: (outcome) =>
          io.print(
            `${describe(outcome.overpayment)}: ${
              outcome.outcome === 'refunded'
                ? `refunded ${outcome.refundId}`
                : outcome.outcome === 'would-refund'
                  ? 'would refund'
                  : `${outcome.outcome} (${outcome.error})`
            }`,
          ),
      },
    );
    if (outcomes.length === 0) io.print(`No refund is due in ${target.where}.`);
    if (dryRun) {
      if (outcomes.length > 0)
        io.print(`Would refund ${outcomes.length}; nothing was refunded (dry run).`);
      return outcomes;
    }
    const left = outcomes.filter((o) => o.outcome !== 'refunded').length;
    if (left > 0) {
      // Exit non-zero, so a script notices: these stay open for the next run.
      throw new Error(`${left} refund(s) not issued; they stay open for the next run.`);
    }
    return outcomes;
  },
};

const stats: OpsCommand = {
  name: 'stats',
  summary:
    "every capability's figures of a day: queues, webhooks, credits, penalties, payments, subscriptions, Stripe calls (webhooks and Stripe: the handlers' metrics, from CloudWatch, or locally from the running runtime)",
  usage: 'stats [--date YYYY-MM-DD] [--json]',
  flags: {
    date: { type: 'string', description: 'the UTC day (default today; penalties: the day before)' },
  },
  async run(target, flags, io) {
    const now = Date.now();
    const date =
      typeof flags.date === 'string'
        ? calendarDate(flags.date)
        : new Date(now).toISOString().slice(0, 10);
    const assessed = new Date(Date.parse(`${date}T00:00:00Z`) - 86_400_000)
      .toISOString()
      .slice(0, 10);
    const credits = new DynamoDbCreditStore({
      client: target.dynamo,
      billingTableName: target.tables.billing,
    });
    const penalties = new DynamoDbPenaltyStore({
      client: target.dynamo,
      penaltiesTableName: target.tables.penalties,
    });
    const payments = new DynamoDbPaymentStore({
      client: target.dynamo,
      paymentsTableName: target.tables.payments,
    });
    const subscriptions = new DynamoDbSubscriptionStore({
      client: target.dynamo,
      billingTableName: target.tables.billing,
      ledgerTableName: target.tables.ledger,
    });
    const [queues, counters, planned, shards, summary, marks, owed, metrics] = await Promise.all([
      Promise.all(
        target.consumedQueues.map(async (q) => ({
          queue: q.name,
          ...(await queueDepth(target.sqs, q)),
          deadLetters: (await queueDepth(target.sqs, q.deadLetter)).visible,
        })),
      ),
      credits.readCounters(date),
      credits.plannedSlots(date),
      penalties.readAssessment(assessed),
      payments.dailySummary(date),
      subscriptions.listResyncMarks(),
      penalties.listOverpayments(),
      readMetricFigures(target, date, now),
    ]);
    const creditFigures = creditStats(date, counters, now, planned);
    const penaltyFigures = {
      date: assessed,
      shardsDone: shards.filter((s) => s.done).length,
      habits: shards.reduce((n, s) => n + s.habits, 0),
      missed: shards.reduce((n, s) => n + s.missed, 0),
      penaltiesCreated: shards.reduce((n, s) => n + s.penaltiesCreated, 0),
      refundsDue: owed.length,
    };
    const result = {
      target: target.where,
      date,
      queues,
      webhooks: metrics.webhooks,
      credits: creditFigures,
      penalties: penaltyFigures,
      payments: summary,
      subscriptions: { markedForResync: marks.length },
      stripe: metrics.stripe,
    };
    io.print(`Stats of ${target.where}, ${date}`);
    for (const q of queues)
      io.print(
        `  queue ${q.queue}: ${q.visible} waiting, ${q.inFlight} in flight, ${q.deadLetters} in its DLQ`,
      );
    io.print(`  ${describeWebhooks(metrics.webhooks)}`);
    io.print(`  ${describeCredits(creditFigures)}`);
    io.print(
      `  penalties (${assessed}): ${penaltyFigures.shardsDone}/16 shards done, ${penaltyFigures.habits} habits, ${penaltyFigures.missed} missed, ${penaltyFigures.penaltiesCreated} penalties created; ${owed.length} refund(s) due`,
    );
    io.print(
      `  payments: ${summary.length === 0 ? 'none that day' : summary.map((r) => `${r.status}/${r.gateway} ${r.count} × ${r.amount} ${r.currency}`).join('; ')}`,
    );
    io.print(`  subscriptions: ${marks.length} customer(s) marked for resync`);
    for (const line of describeStripe(metrics.stripe)) io.print(`  ${line}`);
    return result;
  },
};

/** The credits line of `stats`: the refresh's counts and timing in words (the JSON has every field). */
function describeCredits(figures: CreditStats): string {
  const errors = figures.recentErrors.length;
  return [
    `credits: ${figures.planned} planned, ${figures.refreshed} refreshed, ${figures.skipped} skipped, ${figures.failed} failed`,
    `${(figures.successRate * 100).toFixed(1)}% success, ${figures.averageMs} ms average`,
    `${figures.slotsBehind} slot(s) behind`,
    `last run ${figures.lastRunAt ?? 'none'}${figures.nextRunAt ? `, next ${figures.nextRunAt}` : ''}`,
    ...(errors > 0
      ? [`${errors} recent error(s), the latest: ${figures.recentErrors.at(-1)?.error}`]
      : []),
  ].join('; ');
}

export const OPS_COMMANDS: readonly OpsCommand[] = [
  dlqList,
  dlqRedrive,
  replay,
  resync,
  refunds,
  stats,
];

function positive(value: unknown, flag: string, most = Number.POSITIVE_INFINITY): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > most) {
    throw new UsageError(
      `${flag} must be a whole number from 1${Number.isFinite(most) ? ` to ${most}` : ''}, got ${String(value)}`,
    );
  }
  return n;
}

function isoSeconds(value: unknown, flag: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms))
    throw new UsageError(`${flag} must be an ISO 8601 time such as 2026-12-01T00:00:00Z`);
  return Math.floor(ms / 1000);
}

function calendarDate(value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw new UsageError(`--date must be YYYY-MM-DD, got ${value}`);
  }
  return value;
}

/** A replay's saved cursor, with the end of its range. */
interface ReplayState {
  progress: ReplayProgress;
  toSeconds: number;
}

async function readState(file: string): Promise<ReplayState | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as ReplayState;
  } catch {
    return undefined;
  }
}

async function writeState(file: string, state: ReplayState): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(state));
}
