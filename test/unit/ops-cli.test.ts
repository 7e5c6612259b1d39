/**
 * `npm run ops` without any emulator: the usage contract (every command has its help,
 * a usage mistake exits 2 before anything is touched) and where the commands act —
 * the local runtime's queues and tables come from the synthesized template, and the
 * deployed stack's from the CloudFormation outputs lib/ declares, which name the same
 * queues, DLQs and tables.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBillingApp } from '../../lib/billing-app.ts';
import { runOps } from '../../local/operations/cli.ts';
import { OPS_COMMANDS } from '../../local/operations/commands.ts';
import {
  describeDeployed,
  describeLocalRuntime,
  readRuntimeFile,
  removeRuntimeFile,
  type TargetDescription,
  UsageError,
  writeRuntimeFile,
} from '../../local/operations/target.ts';
import type { LocalRuntime } from '../../local/runtime.ts';
import { loadStackModel, type StackModel } from '../../local/stack-model.ts';

/** The outputs `cdk deploy --all --outputs-file` writes, per stack, as lib/ declares them. */
type OutputsFile = Record<string, Record<string, string>>;

/**
 * The CloudFormation outputs the deployed path reads (the README and the report list
 * these): queue URLs of every consumed queue and its DLQ, the four table names, and the
 * Stripe key's secret (read unless STRIPE_SECRET_KEY is set).
 */
const DEPLOYED_OUTPUTS_READ = [
  'BillingTableName',
  'CreditRefreshDeadLetterQueueUrl',
  'CreditRefreshQueueUrl',
  'PaymentEventsDeadLetterQueueUrl',
  'PaymentEventsQueueUrl',
  'PaymentsTableName',
  'PenaltiesTableName',
  'StripeApiKeySecretArn',
  'SubscriptionEventsDeadLetterQueueUrl',
  'SubscriptionEventsQueueUrl',
  'SubscriptionLedgerTableName',
];

const queueUrl = (logicalId: string) =>
  `https://sqs.eu-west-1.amazonaws.com/111111111111/${logicalId}`;

let model: StackModel;
/** Every stack's outputs, each value standing for what it references (a queue URL ends in the queue's logical id, a table name is the table's logical id). */
let outputs: OutputsFile;
const dirs: string[] = [];

beforeAll(() => {
  model = loadStackModel();
  const outdir = mkdtempSync(join(tmpdir(), 'ops-cli-synth-'));
  dirs.push(outdir);
  const { app } = createBillingApp({ bundle: false, validate: false, outdir });
  const queues = new Set(model.queues.map((q) => q.logicalId));
  outputs = {};
  for (const stack of app.synth().stacks) {
    const declared = (stack.template as { Outputs?: Record<string, { Value: unknown }> }).Outputs;
    outputs[stack.stackName] = Object.fromEntries(
      Object.entries(declared ?? {}).map(([key, { Value }]) => {
        const ref = (Value as { Ref?: string }).Ref;
        const value = ref === undefined ? `value-of-${key}` : queues.has(ref) ? queueUrl(ref) : ref;
        return [key, value];
      }),
    );
  }
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The local description of a runtime whose queues and tables are named by their logical ids. */
function localByLogicalId(): TargetDescription {
  const byId = (ids: string[], value: (id: string) => string) =>
    Object.fromEntries(ids.map((id) => [id, value(id)]));
  const queueIds = model.queues.map((q) => q.logicalId);
  return describeLocalRuntime({
    model,
    apiUrl: 'http://127.0.0.1:3000',
    dynamoEndpoint: 'http://127.0.0.1:8000',
    sqsEndpoint: 'http://127.0.0.1:9324',
    queueNames: byId(queueIds, (id) => id),
    queueUrls: byId(queueIds, queueUrl),
    tableNames: byId(
      model.tables.map((t) => t.logicalId),
      (id) => id,
    ),
    stripeApiUrl: 'http://127.0.0.1:12111',
    fakeStripe: undefined,
  } as unknown as LocalRuntime);
}

async function ops(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runOps(argv, {
    print: (line) => out.push(line),
    printError: (line) => err.push(line),
    // Never used by a usage mistake or a help: proves nothing is resolved or connected first.
    target: new Proxy({} as TargetDescription, {
      get() {
        throw new Error('the target was touched');
      },
    }),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('npm run ops: usage', () => {
  it('lists every command in the entry help, including replay and resync', async () => {
    const help = await ops('--help');
    expect(help.code).toBe(0);
    for (const command of OPS_COMMANDS) expect(help.out).toContain(command.name);
    expect(OPS_COMMANDS.map((c) => c.name)).toEqual(
      expect.arrayContaining(['dlq:list', 'dlq:redrive', 'replay', 'resync', 'stats']),
    );
    expect(help.out).toContain('--outputs');
  });

  it.each(OPS_COMMANDS.map((c) => c.name))(
    'has a help of its own for %s naming its flags and the common ones',
    async (name) => {
      const command = OPS_COMMANDS.find((c) => c.name === name)!;
      const help = await ops(name, '--help');
      expect(help.code).toBe(0);
      expect(help.out).toContain(`npm run ops -- ${command.usage}`);
      for (const flag of [...Object.keys(command.flags), 'outputs', 'json', 'help']) {
        expect(help.out).toContain(`--${flag}`);
      }
    },
  );

  it('offers a dry run on every command that changes data', () => {
    for (const name of ['dlq:redrive', 'replay', 'resync']) {
      expect(Object.keys(OPS_COMMANDS.find((c) => c.name === name)!.flags)).toContain('dry-run');
    }
  });

  it('answers a usage mistake with exit code 2 and why, before touching any target', async () => {
    const none = await ops();
    expect(none.code).toBe(2);
    expect(none.out).toContain('Commands:');

    const unknown = await ops('dlq:purge');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('Unknown command "dlq:purge"');

    for (const name of OPS_COMMANDS.map((c) => c.name)) {
      const flag = await ops(name, '--no-such-flag');
      expect(flag.code, name).toBe(2);
      expect(flag.err, name).toMatch(/no-such-flag/);
    }
    const positional = await ops('dlq:list', 'extra');
    expect(positional.code).toBe(2);
    const missingValue = await ops('dlq:redrive', '--queue');
    expect(missingValue.code).toBe(2);
    expect(missingValue.err).toContain('--queue');
  });

  it('answers an unreadable --outputs file with exit code 2', async () => {
    const lines: string[] = [];
    const code = await runOps(['stats', '--outputs', join(tmpdir(), 'no-such-outputs.json')], {
      print: (line) => lines.push(line),
      printError: (line) => lines.push(line),
    });
    expect(code).toBe(2);
    expect(lines.join('\n')).toContain('--outputs');
  });
});

describe('npm run ops: the local runtime file', () => {
  it('takes a file whose runtime is running, and refuses one a killed runtime left behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-cli-runtime-'));
    dirs.push(dir);
    const file = join(dir, 'runtime.json');
    const description = { ...localByLogicalId(), pid: process.pid };
    await writeRuntimeFile(description, file);
    expect(await readRuntimeFile(file)).toEqual(description);

    // A process that has exited: its pid is free (the OS does not reuse it this soon).
    const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    await writeRuntimeFile({ ...description, pid: gone }, file);
    await expect(readRuntimeFile(file)).rejects.toThrow(
      new RegExp(`process ${gone}\\) is no longer running.*npm start`),
    );
    await removeRuntimeFile(file);
    await expect(readRuntimeFile(file)).rejects.toThrow(/No local runtime found.*ENOENT/);
  });
});

describe('npm run ops: targets', () => {
  it('locally, takes every queue and DLQ from the template: the consumed queues with their DLQs, and the schedule DLQs', () => {
    const local = localByLogicalId();
    const redriven = model.queues.filter((q) => q.deadLetter);
    expect(local.consumedQueues.map((q) => [q.name, q.deadLetter.name]).sort()).toEqual(
      redriven.map((q) => [q.logicalId, q.deadLetter!.targetLogicalId]).sort(),
    );
    // Every queue of the template is listed exactly once, so a new queue in lib/ shows up.
    const listed = [
      ...local.consumedQueues.flatMap((q) => [q.name, q.deadLetter.name]),
      ...local.scheduleDeadLetters.map((q) => q.name),
    ];
    expect(listed.sort()).toEqual(model.queues.map((q) => q.logicalId).sort());
    // What the stack defines today: three consumed queues, and the planner's and the assessor's schedule DLQs.
    expect(local.consumedQueues.map((q) => q.name).sort()).toEqual([
      expect.stringMatching(/^CreditRefreshWorkQueue/),
      expect.stringMatching(/^PaymentEventsQueue/),
      expect.stringMatching(/^SubscriptionEventsQueue/),
    ]);
    expect(local.scheduleDeadLetters.map((q) => q.name).sort()).toEqual([
      expect.stringMatching(/^CreditRefreshScheduleDeadLetterQueue/),
      expect.stringMatching(/^PenaltiesScheduleDeadLetterQueue/),
    ]);
    // Each consumed queue is read by a function of the stack.
    for (const queue of local.consumedQueues) {
      expect(model.queueConsumers.map((c) => c.queueLogicalId)).toContain(queue.name);
    }
  });

  it('deployed, finds the same consumed queues, DLQs, family queues and tables in the outputs lib/ declares', () => {
    const deployed = describeDeployed(outputs, model);
    const local = localByLogicalId();
    const pairs = (t: TargetDescription) =>
      t.consumedQueues
        .map((q) => ({ name: q.name, url: q.url, deadLetter: q.deadLetter }))
        .sort((a, b) => a.name.localeCompare(b.name));
    expect(pairs(deployed)).toEqual(pairs(local));
    expect(deployed.eventQueues).toEqual(local.eventQueues);
    expect(deployed.tables).toEqual(local.tables);
    expect(deployed.priceTierMap).toEqual(local.priceTierMap);
    expect(deployed.endpoints).toBeUndefined(); // the SDK's usual endpoints and credentials
  });

  it("deployed, lists the schedule DLQs too, from the service stack's outputs (omitted by a stack deployed before them)", () => {
    const deployed = describeDeployed(outputs, model);
    const local = localByLogicalId();
    const byName = (queues: TargetDescription['scheduleDeadLetters']) =>
      [...queues].sort((a, b) => a.name.localeCompare(b.name));
    expect(deployed.scheduleDeadLetters).toHaveLength(2);
    expect(byName(deployed.scheduleDeadLetters)).toEqual(byName(local.scheduleDeadLetters));
    const older = Object.fromEntries(
      Object.entries(outputs).map(([stack, values]) => [
        stack,
        Object.fromEntries(
          Object.entries(values).filter(([key]) => !key.includes('ScheduleDeadLetter')),
        ),
      ]),
    );
    expect(describeDeployed(older, model).scheduleDeadLetters).toEqual([]);
  });

  it('deployed, needs exactly these outputs, and names a missing one', () => {
    const all: Record<string, string> = Object.assign({}, ...Object.values(outputs));
    const saved = process.env.STRIPE_SECRET_KEY;
    delete process.env.STRIPE_SECRET_KEY;
    try {
      const needed = Object.keys(all).filter((key) => {
        const { [key]: _dropped, ...rest } = all;
        try {
          describeDeployed({ OneStack: rest }, model);
          return false;
        } catch (error) {
          expect(error).toBeInstanceOf(UsageError);
          expect((error as Error).message).toContain(key);
          return true;
        }
      });
      expect(needed.sort()).toEqual(DEPLOYED_OUTPUTS_READ);
    } finally {
      if (saved !== undefined) process.env.STRIPE_SECRET_KEY = saved;
    }
  });

  it('deployed, a missing output is a usage mistake (exit 2) naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-cli-outputs-'));
    dirs.push(dir);
    const file = join(dir, 'outputs.json');
    const { BillingData, ...others } = outputs;
    const { PaymentEventsDeadLetterQueueUrl: _gone, ...data } = BillingData ?? {};
    writeFileSync(file, JSON.stringify({ ...others, BillingData: data }));
    const lines: string[] = [];
    const code = await runOps(['dlq:list', '--outputs', file], {
      print: (line) => lines.push(line),
      printError: (line) => lines.push(line),
    });
    expect(code).toBe(2);
    expect(lines.join('\n')).toContain('PaymentEventsDeadLetterQueueUrl');
  });
});
