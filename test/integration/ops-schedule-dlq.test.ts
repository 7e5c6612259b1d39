/**
 * `npm run ops -- dlq:redrive` on the schedules' DLQs, against the emulators, in-process
 * through the CLI's own entry. A message there is a scheduled run EventBridge Scheduler
 * gave up on (the target's input as body, Scheduler's error attributes); the redrive
 * reruns the schedule's work once, now, and deletes the messages the DLQ held before
 * that run only once it succeeded:
 *
 * - the penalty assessment of yesterday catches up the day before (a stopped schedule
 *   left both behind): a penalty for each missed day; again, nothing new; a dry run and
 *   a run cut half-way change nothing in the DLQ (the cut run's work is resumed, not
 *   repeated); a message arriving during the run stays;
 * - the credit refresh planner plans the due slot (the user's refresh work is on the
 *   refresh queue); again, nothing new; a failing run leaves the message;
 * - without --queue, the consumed queues first, then the schedule DLQs; --json;
 * - the held messages stay hidden while the run lasts, and come back if it is killed;
 * - a schedule DLQ the target cannot place is listed and left alone.
 */

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import { CREDIT_ATTRIBUTE } from '../../functions/adapters/dynamodb/credit-table-schema.ts';
import { DynamoDbCreditStore } from '../../functions/adapters/dynamodb/dynamodb-credit-store.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import { decodeRefreshMessage } from '../../functions/adapters/sqs/sqs-refresh-queue.ts';
import {
  NEVER_REFRESHED,
  periodAt,
  refreshSlotOf,
  slotAt,
} from '../../functions/core/credits/refresh-slot.ts';
import { assessDate } from '../../functions/core/penalties/assessment.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  MAX_HABITS_PER_USER,
  withSettings,
} from '../../functions/core/penalties/habits.ts';
import { penaltyIdOf } from '../../functions/core/penalties/penalty-ids.ts';
import { systemClock } from '../../functions/core/shared/clock.ts';
import { holdMessages } from '../../local/operations/dead-letters.ts';
import type {
  ConsumedQueue,
  NamedQueue,
  OpsTarget,
  ScheduleDeadLetterQueue,
  TargetDescription,
} from '../../local/operations/target.ts';
import { emulatorClients, uniqueName } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { emulatorTarget, runOpsOn } from '../helpers/ops.ts';
import { settings } from '../unit/penalties/penalty-fixtures.ts';

const DAY = 86_400_000;
const dateBefore = (days: number) => new Date(Date.now() - days * DAY).toISOString().slice(0, 10);

let dynamo: DynamoDBClient;
let sqs: SQSClient;
let target: TargetDescription;
let refreshQueue: NamedQueue;
let consumed: ConsumedQueue;
let creditDlq: ScheduleDeadLetterQueue;
let penaltyDlq: ScheduleDeadLetterQueue;
let credits: DynamoDbCreditStore;
let penalties: DynamoDbPenaltyStore;
let billingTable: string;

async function queue(name: string): Promise<NamedQueue> {
  const QueueName = uniqueName(name);
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName }));
  return { name: QueueName, url: QueueUrl! };
}

beforeAll(async () => {
  ({ dynamo, sqs } = emulatorClients());
  const tables = await createBillingTables(dynamo);
  billingTable = tables.billingTableName;
  refreshQueue = await queue('ops-sched-refresh');
  const source = await queue('ops-sched-subscriptions');
  consumed = { ...source, deadLetter: await queue('ops-sched-subscriptions-dlq') };
  creditDlq = {
    ...(await queue('ops-sched-credit-schedule-dlq')),
    reruns: { kind: 'credit-refresh', refreshQueueUrl: refreshQueue.url },
  };
  penaltyDlq = {
    ...(await queue('ops-sched-penalty-schedule-dlq')),
    reruns: { kind: 'penalty-assessment' },
  };
  target = emulatorTarget(tables, {
    eventQueues: { subscriptions: source.url, payments: source.url },
    consumedQueues: [consumed],
    scheduleDeadLetters: [creditDlq, penaltyDlq],
  });
  credits = new DynamoDbCreditStore({ client: dynamo, billingTableName: target.tables.billing });
  penalties = new DynamoDbPenaltyStore({
    client: dynamo,
    penaltiesTableName: target.tables.penalties,
  });
});

const ops = (...argv: string[]) => runOpsOn(target, argv);

/** What Scheduler puts in a schedule's DLQ: the target's input, and why it gave up. */
async function failedScheduledRun(dlq: NamedQueue, scheduledTime = new Date().toISOString()) {
  const attribute = (StringValue: string) => ({ DataType: 'String', StringValue });
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: dlq.url,
      MessageBody: JSON.stringify({ scheduledTime }),
      MessageAttributes: {
        ERROR_CODE: attribute('Lambda.ServiceException'),
        ERROR_MESSAGE: attribute('Task timed out after 300.00 seconds'),
        EXHAUSTED_RETRY_CONDITION: attribute('MaximumRetryAttempts'),
        RETRY_ATTEMPTS: attribute('2'),
        SCHEDULE_ARN: attribute('arn:aws:scheduler:eu-west-1:111111111111:schedule/default/s'),
        TARGET_ARN: attribute('arn:aws:lambda:eu-west-1:111111111111:function:f'),
      },
    }),
  );
  return scheduledTime;
}

async function waiting(dlq: NamedQueue): Promise<{ visible: number; inFlight: number }> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: dlq.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
  };
}

/** Every message of a queue, received and deleted. */
async function drain(url: string): Promise<string[]> {
  const bodies: string[] = [];
  for (let empty = 0; empty < 2; ) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    empty = Messages.length === 0 ? empty + 1 : 0;
    for (const message of Messages) {
      bodies.push(message.Body!);
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle! }),
      );
    }
  }
  return bodies;
}

/** A fault in the target's client: `fault` runs before each call of the named command. */
function faultIn(
  client: 'dynamo' | 'sqs',
  command: RegExp,
  fault: (call: number, input: Record<string, unknown>) => Promise<void> | void,
) {
  return (connected: OpsTarget) => {
    let calls = 0;
    const stack = connected[client].middlewareStack as unknown as {
      add(middleware: unknown, options: { step: string; name: string }): void;
    };
    stack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: { input: Record<string, unknown> }) => {
          if (command.test(context.commandName ?? '')) await fault(++calls, args.input);
          return next(args);
        },
      { step: 'initialize', name: 'opsTestFault' },
    );
  };
}

/** A fresh user id whose refresh slot is `slot`. */
function userInSlot(slot: number): string {
  const base = uniqueName('ops-sched-credit');
  for (let attempt = 0; ; attempt++) {
    const userId = `${base}-${attempt}`;
    if (refreshSlotOf(userId) === slot) return userId;
  }
}

describe('dlq:redrive of the penalty assessment schedule DLQ', () => {
  const userId = uniqueName('ops-sched-pen');
  const habitId = 'run';
  const yesterday = dateBefore(1);
  const dayBefore = dateBefore(2);
  const complete = dateBefore(3);
  const penaltyOn = (date: string) => penaltyIdOf(userId, habitId, date);

  beforeAll(async () => {
    // A habit since four days ago; the assessment of three days ago ran, then the
    // schedule stopped: the day before yesterday and yesterday are left behind.
    const habit = withSettings(
      { userId, habitId },
      settings(),
      null,
      `${dateBefore(4)}T12:00:00.000Z`,
    );
    const written = await penalties.putHabit({
      habit,
      previous: null,
      freeHabitLimit: DEFAULT_FREE_HABIT_LIMITS.gold,
      maxHabits: MAX_HABITS_PER_USER,
    });
    expect(written).toBe('written');
    expect((await assessDate(complete, { store: penalties, clock: systemClock })).complete).toBe(
      true,
    );
  });

  it('lists the DLQ as redrivable; a dry run says what would run and changes nothing', async () => {
    await failedScheduledRun(penaltyDlq);
    const listed = await ops('dlq:list');
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(
      `${penaltyDlq.name}: 1 waiting, 0 in flight  (failed runs of the penalty assessment of yesterday (and of earlier dates it left behind); redrive: reruns the schedule's work now)`,
    );

    const dry = await ops('dlq:redrive', '--queue', penaltyDlq.name, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(
      `${penaltyDlq.name}: 1 waiting; would rerun the penalty assessment of yesterday (and of earlier dates it left behind) now: would assess ${dayBefore} (0/16 shards done), ${yesterday} (0/16 shards done), oldest first; then delete the 1 message(s)`,
    );
    expect(await waiting(penaltyDlq)).toEqual({ visible: 1, inFlight: 0 });
    expect(await penalties.readAssessment(dayBefore)).toEqual([]);
    expect([...(await penalties.getPenalties([penaltyOn(dayBefore)])).keys()]).toEqual([]);
  });

  it('a run cut half-way fails (exit 1), deletes nothing, and the next one resumes it', async () => {
    const cut = await runOpsOn(
      target,
      ['dlq:redrive', '--queue', penaltyDlq.name],
      faultIn('dynamo', /TransactWrite/, (call) => {
        // The 4th commit and every later one: the run stops with the date half done.
        if (call >= 4) throw new Error('connection reset (injected)');
      }),
    );
    expect(cut.code).toBe(1);
    expect(cut.out).toContain(`${penaltyDlq.name}: 1 waiting; holding 1, rerunning`);
    expect(cut.out).toContain(
      `${penaltyDlq.name}: the rerun failed (connection reset (injected)); deleted nothing; 1 waiting now`,
    );
    expect(cut.out).toContain(
      `dlq:redrive failed: not redriven, the messages stay for the next redrive: ${penaltyDlq.name}: the rerun failed`,
    );
    expect(await waiting(penaltyDlq)).toEqual({ visible: 1, inFlight: 0 });
    const started = await penalties.readAssessment(dayBefore);
    // Some shards committed, not all: the next run resumes the rest.
    expect(started.filter((shard) => shard.done).length).toBeGreaterThan(0);
    expect(started.filter((shard) => shard.done).length).toBeLessThan(16);
    expect(await penalties.readAssessment(yesterday)).toEqual([]);
  });

  it('reruns the assessment: yesterday and the day before it caught up, the DLQ emptied, a message arriving meanwhile kept', async () => {
    let arrived = '';
    const run = await runOpsOn(
      target,
      ['dlq:redrive', '--queue', penaltyDlq.name],
      faultIn('dynamo', /TransactWrite/, async (call) => {
        if (call === 1) arrived = await failedScheduledRun(penaltyDlq, 'arrived during the run');
      }),
    );
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain(`${penaltyDlq.name}: 1 waiting; holding 1, rerunning`);
    expect(run.out).toMatch(
      new RegExp(
        `assessed ${dayBefore} complete: \\d+ habit\\(s\\), \\d+ penalt(y|ies) created by this run \\(1 that date\\); ${yesterday} complete: 1 habit\\(s\\), 1 penalty created by this run \\(1 that date\\); deleted 1; 1 waiting now`,
      ),
    );
    const created = await penalties.getPenalties([
      penaltyOn(complete),
      penaltyOn(dayBefore),
      penaltyOn(yesterday),
    ]);
    expect([...created.keys()].sort()).toEqual(
      [penaltyOn(complete), penaltyOn(dayBefore), penaltyOn(yesterday)].sort(),
    );
    expect((await penalties.getAccount(userId))?.unpaidCount).toBe(3);
    // The message sent during the run was not held: it is the one left.
    expect(arrived).toBe('arrived during the run');
    expect(await drain(penaltyDlq.url)).toEqual([JSON.stringify({ scheduledTime: arrived })]);
  });

  it('again: assesses nothing twice, and still clears the DLQ', async () => {
    await failedScheduledRun(penaltyDlq);
    const again = await ops('dlq:redrive', '--queue', penaltyDlq.name);
    expect(again.code).toBe(0);
    expect(again.out).toContain(
      `assessed ${yesterday} complete: 0 habit(s), 0 penalties created by this run (1 that date); deleted 1; 0 waiting now`,
    );
    expect((await penalties.getAccount(userId))?.unpaidCount).toBe(3);
    expect(await waiting(penaltyDlq)).toEqual({ visible: 0, inFlight: 0 });
    expect((await ops('dlq:redrive', '--queue', penaltyDlq.name)).out).toContain(
      `${penaltyDlq.name}: 0 waiting; nothing to redrive`,
    );
  });
});

describe('dlq:redrive of the credit refresh schedule DLQ', () => {
  const today = periodAt(Date.now());
  const slot = slotAt(Date.now());
  const userId = userInSlot(slot);

  beforeAll(async () => {
    // A gold user never refreshed, in the slot of now: due.
    await DynamoDBDocumentClient.from(dynamo).send(
      new PutCommand({
        TableName: billingTable,
        Item: {
          ...billingKeys.profile(userId),
          [CREDIT_ATTRIBUTE.userId]: userId,
          [CREDIT_ATTRIBUTE.tier]: 'gold',
          [CREDIT_ATTRIBUTE.refreshSlot]: slot,
          [CREDIT_ATTRIBUTE.period]: NEVER_REFRESHED,
          [CREDIT_ATTRIBUTE.balance]: 0,
        },
      }),
    );
  });

  /** The users of the refresh work on the refresh queue (drained). */
  const queuedUsers = async () =>
    (await drain(refreshQueue.url)).flatMap((body) => decodeRefreshMessage(body));

  it('a dry run says which slots it would plan, and sends and records nothing', async () => {
    await failedScheduledRun(creditDlq);
    const dry = await ops('dlq:redrive', '--queue', creditDlq.name, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(
      `${creditDlq.name}: 1 waiting; would rerun the credit refresh planner (every due slot not yet planned) now: would enqueue 1 user(s) for refresh in`,
    );
    // Every due slot: from the day's first to the one of the run's now, which may be past
    // `slot` when a five-minute boundary passes while the test runs.
    const range = new RegExp(`\\(${today} #0(?:-#(\\d+))?\\)`).exec(dry.out);
    expect(range, dry.out).not.toBeNull();
    const last = Number(range?.[1] ?? 0);
    expect(last).toBeGreaterThanOrEqual(slot);
    expect(last).toBeLessThanOrEqual(slotAt(Date.now()));
    expect(await queuedUsers()).toEqual([]);
    expect(await credits.plannedSlots(today)).toEqual([]);
    expect(await waiting(creditDlq)).toEqual({ visible: 1, inFlight: 0 });
  });

  it('a failing run exits 1 and leaves the message; the user is not planned', async () => {
    const failed = await runOpsOn(
      target,
      ['dlq:redrive', '--queue', creditDlq.name],
      faultIn('sqs', /SendMessageBatch/, () => {
        throw new Error('SQS unavailable (injected)');
      }),
    );
    expect(failed.code).toBe(1);
    expect(failed.out).toContain(`${creditDlq.name}: the rerun failed (`);
    expect(failed.out).toContain('deleted nothing; 1 waiting now');
    expect(await waiting(creditDlq)).toEqual({ visible: 1, inFlight: 0 });
    expect(await credits.plannedSlots(today)).not.toContain(slot);
    expect(await queuedUsers()).toEqual([]);
  });

  it('reruns the planner: the due slot planned, its user on the refresh queue, the DLQ emptied; again, nothing new', async () => {
    const run = await ops('dlq:redrive', '--queue', creditDlq.name);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(
      new RegExp(
        `${creditDlq.name}: enqueued 1 user\\(s\\) for refresh in \\d+ slot\\(s\\) \\(${today} #\\d+(-#\\d+)?\\); deleted 1; 0 waiting now`,
      ),
    );
    expect(await queuedUsers()).toEqual([
      expect.objectContaining({ userId, tier: 'gold', period: today, slot }),
    ]);
    expect(await credits.plannedSlots(today)).toContain(slot);
    expect(await waiting(creditDlq)).toEqual({ visible: 0, inFlight: 0 });

    await failedScheduledRun(creditDlq);
    const again = await ops('dlq:redrive', '--queue', creditDlq.name);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/(no slot was due|enqueued 0 user\(s\))/);
    expect(again.out).toContain('deleted 1; 0 waiting now');
    expect(await queuedUsers()).toEqual([]);
  });
});

describe('dlq:redrive without --queue, and targets that cannot place a schedule DLQ', () => {
  it('redrives the consumed queues first, then reruns each schedule DLQ; --json gives the counts', async () => {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: consumed.deadLetter.url,
        MessageBody: JSON.stringify({ id: 'evt_sched_all', type: 'customer.created' }),
      }),
    );
    await failedScheduledRun(creditDlq);
    await failedScheduledRun(penaltyDlq);
    const all = await ops('dlq:redrive');
    expect(all.code, all.out).toBe(0);
    const lines = all.out.split('\n');
    const at = (text: string) => lines.findIndex((line) => line.includes(text));
    expect(at(`${consumed.deadLetter.name}: moved 1; 0 waiting now`)).toBeGreaterThanOrEqual(0);
    expect(at(`${creditDlq.name}: 1 waiting; holding 1`)).toBeGreaterThan(
      at(`${consumed.deadLetter.name}: moved 1`),
    );
    expect(at(`${penaltyDlq.name}: 1 waiting; holding 1`)).toBeGreaterThan(
      at(`${creditDlq.name}: 1 waiting`),
    );
    expect(await drain(consumed.url)).toHaveLength(1);
    expect(await waiting(creditDlq)).toEqual({ visible: 0, inFlight: 0 });
    expect(await waiting(penaltyDlq)).toEqual({ visible: 0, inFlight: 0 });

    await failedScheduledRun(penaltyDlq);
    const json = await ops('dlq:redrive', '--json');
    expect(json.code).toBe(0);
    const results = JSON.parse(json.out) as Record<string, unknown>[];
    expect(results.map(({ run: _run, ...counts }) => counts)).toEqual([
      { queue: consumed.name, before: 0, moved: 0, after: 0 },
      {
        queue: null,
        deadLetterQueue: creditDlq.name,
        reruns: 'credit-refresh',
        before: 0,
        deleted: 0,
        after: 0,
      },
      {
        queue: null,
        deadLetterQueue: penaltyDlq.name,
        reruns: 'penalty-assessment',
        before: 1,
        deleted: 1,
        after: 0,
      },
    ]);
    expect(results[2]!.run).toMatchObject({ result: { date: dateBefore(1), complete: true } });
  });

  it('holds the messages while the run lasts, and a redrive killed mid-run loses none: its hold lapses', async () => {
    // The emulator counts a lapsed hold as in flight until a receive: ask by receiving
    // (hidden for no time, so this consumes nothing).
    const receivable = async () =>
      (
        await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: penaltyDlq.url,
            MaxNumberOfMessages: 10,
            VisibilityTimeout: 0,
          }),
        )
      ).Messages?.length ?? 0;
    await failedScheduledRun(penaltyDlq);
    // Renewed while the run lasts: still hidden after several timeouts, back once released.
    const renewed = await holdMessages(sqs, penaltyDlq, {
      visibilitySeconds: 1,
      renewEveryMs: 300,
    });
    expect(renewed.count).toBe(1);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await receivable()).toBe(0);
    await renewed.release();
    expect(await receivable()).toBe(1);
    // A process killed during the run renews nothing: the message is back after the timeout.
    const killed = await holdMessages(sqs, penaltyDlq, {
      visibilitySeconds: 1,
      renewEveryMs: 3_600_000,
    });
    expect(killed.count).toBe(1);
    expect(await receivable()).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await receivable()).toBe(1);
    await killed.release();
    expect(await drain(penaltyDlq.url)).toHaveLength(1);
  });

  it('a --queue naming nothing lists the schedule DLQs too (exit 2)', async () => {
    const none = await ops('dlq:redrive', '--queue', 'no-such-queue');
    expect(none.code).toBe(2);
    expect(none.out).toContain(creditDlq.name);
    expect(none.out).toContain(penaltyDlq.name);
  });

  it('lists, and leaves alone, a schedule DLQ the target does not place (a runtime file written before)', async () => {
    const { reruns: _unknown, ...unplaced } = penaltyDlq;
    const older: TargetDescription = { ...target, scheduleDeadLetters: [unplaced] };
    await failedScheduledRun(penaltyDlq);
    const listed = await runOpsOn(older, ['dlq:list']);
    expect(listed.out).toContain(
      `${penaltyDlq.name}: 1 waiting, 0 in flight  (failed schedule runs;`,
    );
    expect(listed.out).toContain('not redrivable');
    const left = await runOpsOn(older, ['dlq:redrive', '--queue', penaltyDlq.name]);
    expect(left.code).toBe(0);
    expect(left.out).toContain('nothing is rerun');
    expect(await waiting(penaltyDlq)).toEqual({ visible: 1, inFlight: 0 });
    await drain(penaltyDlq.url);
  });
});
