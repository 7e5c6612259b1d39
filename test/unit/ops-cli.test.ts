/**
 * `npm run ops` without any emulator: the usage contract (every command has its help,
 * a usage mistake exits 2 before anything is touched) and where the commands act —
 * the local runtime's queues and tables come from the synthesized template, and the
 * deployed stack's from the CloudFormation outputs lib/ declares, which name the same
 * queues, DLQs and tables, the configuration the functions were deployed with (the
 * price→tier map resync resolves tiers with) and the stack's region.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PriceTierMap } from '../../functions/core/shared/tiers.ts';
import { createBillingApp } from '../../lib/billing-app.ts';
import { runOps } from '../../local/operations/cli.ts';
import { OPS_COMMANDS } from '../../local/operations/commands.ts';
import {
  CONFIG_OUTPUTS,
  connect,
  describeDeployed,
  describeLocalRuntime,
  readRuntimeFile,
  removeRuntimeFile,
  stackRegionOf,
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

/**
 * The outputs the deployed path reads when present (a stack deployed before them lacks
 * them): the schedules' DLQs, and the configuration the functions were deployed with.
 */
const DEPLOYED_OUTPUTS_READ_WHEN_PRESENT = [
  'CreditAllowances',
  'CreditRefreshScheduleDeadLetterQueueUrl',
  'LedgerRetentionDays',
  'PenaltyAssessmentScheduleDeadLetterQueueUrl',
  'PriceTierMap',
];

/** The configuration the stack of these tests is deployed with (`-c ...`), none of it the default. */
const DEPLOYED_CONTEXT = {
  priceTierMap: { price_gold: 'gold', price_silver: 'silver' } as PriceTierMap,
  creditAllowances: { gold: 12 },
  ledgerRetentionDays: 30,
};

const queueUrl = (logicalId: string) =>
  `https://sqs.eu-west-1.amazonaws.com/111111111111/${logicalId}`;

/** The template of the app deployed with DEPLOYED_CONTEXT. */
let model: StackModel;
/**
 * Every stack's outputs of that deployment, each value standing for what it references
 * (a queue URL ends in the queue's logical id, a table name is the table's logical id);
 * a plain string output (the configuration) is what CloudFormation gives back.
 */
let outputs: OutputsFile;
const dirs: string[] = [];

/** What `cdk deploy --all --outputs-file` would write for the app synthesized with `context`. */
function synthOutputs(context?: Record<string, unknown>): OutputsFile {
  const outdir = mkdtempSync(join(tmpdir(), 'ops-cli-synth-'));
  dirs.push(outdir);
  const { app } = createBillingApp({
    bundle: false,
    validate: false,
    outdir,
    ...(context ? { context } : {}),
  });
  const queues = new Set(model.queues.map((q) => q.logicalId));
  const file: OutputsFile = {};
  for (const stack of app.synth().stacks) {
    const declared = (stack.template as { Outputs?: Record<string, { Value: unknown }> }).Outputs;
    file[stack.stackName] = Object.fromEntries(
      Object.entries(declared ?? {}).map(([key, { Value }]) => {
        if (typeof Value === 'string') return [key, Value];
        const ref = (Value as { Ref?: string }).Ref;
        const value = ref === undefined ? `value-of-${key}` : queues.has(ref) ? queueUrl(ref) : ref;
        return [key, value];
      }),
    );
  }
  return file;
}

/** The outputs without some keys, as a stack deployed before them wrote them. */
function outputsWithout(file: OutputsFile, drop: (key: string) => boolean): OutputsFile {
  return Object.fromEntries(
    Object.entries(file).map(([stack, values]) => [
      stack,
      Object.fromEntries(Object.entries(values).filter(([key]) => !drop(key))),
    ]),
  );
}

beforeAll(() => {
  model = loadStackModel({ context: DEPLOYED_CONTEXT });
  outputs = synthOutputs(DEPLOYED_CONTEXT);
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The local description of a runtime whose queues and tables are named by their logical ids. */
function localByLogicalId(env: NodeJS.ProcessEnv = {}): TargetDescription {
  const byId = (ids: string[], value: (id: string) => string) =>
    Object.fromEntries(ids.map((id) => [id, value(id)]));
  const queueIds = model.queues.map((q) => q.logicalId);
  return describeLocalRuntime(
    {
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
    } as unknown as LocalRuntime,
    env,
  );
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

/** The entry on a real description (connected, never called: every case ends before any I/O). */
async function opsOn(target: TargetDescription, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runOps(argv, {
    target,
    print: (line) => out.push(line),
    printError: (line) => err.push(line),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** AWS and Stripe endpoints that refuse connections, and no Stripe key. */
const REFUSING_ENDPOINTS = {
  endpoints: { dynamo: 'http://127.0.0.1:9', sqs: 'http://127.0.0.1:9' },
  stripe: { apiUrl: 'http://127.0.0.1:9' },
} satisfies Partial<TargetDescription>;

/** A local description with REFUSING_ENDPOINTS. */
function unreachable(overrides: Partial<TargetDescription> = {}): TargetDescription {
  return { ...localByLogicalId(), ...REFUSING_ENDPOINTS, ...overrides };
}

/** Runs `body` with STRIPE_SECRET_KEY unset (a test never depends on the caller's shell). */
async function withoutStripeKey<T>(body: () => Promise<T> | T): Promise<T> {
  const saved = process.env.STRIPE_SECRET_KEY;
  delete process.env.STRIPE_SECRET_KEY;
  try {
    return await body();
  } finally {
    if (saved !== undefined) process.env.STRIPE_SECRET_KEY = saved;
  }
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
    for (const name of ['dlq:redrive', 'replay', 'resync', 'refunds']) {
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

  it('answers a negative number with what the flag accepts, not the argument parser wording (exit 2, nothing touched)', async () => {
    for (const value of ['-1', '-5']) {
      const redrive = await opsOn(unreachable(), 'dlq:redrive', '--max', value);
      expect(redrive.code, value).toBe(2);
      expect(redrive.err).toBe(`--max must be a whole number from 1, got ${value}`);
    }
    const peek = await opsOn(unreachable(), 'dlq:list', '--peek', '-3');
    expect(peek.code).toBe(2);
    expect(peek.err).toBe('--peek must be a whole number from 1 to 10, got -3');
    // A flag after a string flag is still a flag: a missing value stays a usage mistake.
    const missing = await ops('dlq:redrive', '--queue', '--dry-run');
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('--queue');
  });

  it("says in dlq:redrive's help that a schedule DLQ is redriven by rerunning the schedule's work, and in dlq:list's that those DLQs are listed", async () => {
    const redrive = await ops('dlq:redrive', '--help');
    expect(redrive.code).toBe(0);
    expect(redrive.out).toContain(
      "A schedule's DLQ: rerun the schedule's work now, then delete the messages it held (only if the run succeeded)",
    );
    expect(redrive.out).toMatch(/--queue\s+only the queue \(or DLQ, or schedule DLQ\)/);
    expect(redrive.out).toContain('a schedule DLQ is cleared by one rerun');
    const list = await ops('dlq:list', '--help');
    expect(list.out).toContain("the schedules' DLQs, with the work a redrive reruns");
  });

  it('answers a dlq:redrive --queue that names no queue with every name, schedule DLQs included (exit 2, nothing touched)', async () => {
    const target = unreachable();
    const none = await opsOn(target, 'dlq:redrive', '--queue', 'no-such-queue');
    expect(none.code).toBe(2);
    for (const queue of [...target.consumedQueues, ...target.scheduleDeadLetters]) {
      expect(none.err).toContain(queue.name);
    }
  });

  it('refuses a dlq:redrive --queue that matches several queues, and takes a whole name over a part of another (exit 2, nothing touched)', async () => {
    const target = unreachable();
    const refreshQueue = target.consumedQueues.find((q) => q.name.startsWith('CreditRefreshWork'));
    const refreshSchedule = target.scheduleDeadLetters.find((q) =>
      q.name.startsWith('CreditRefreshSchedule'),
    );
    const several = await opsOn(target, 'dlq:redrive', '--queue', 'CreditRefresh');
    expect(several.code).toBe(2);
    expect(several.err).toContain('--queue CreditRefresh matches several queues');
    expect(several.err).toContain(refreshQueue!.name);
    expect(several.err).toContain(refreshSchedule!.name);
    // One whole name: only that queue, so the refusing SQS is the answer (exit 1).
    const one = await opsOn(target, 'dlq:redrive', '--queue', refreshQueue!.name, '--dry-run');
    expect(one.code).toBe(1);
    expect(one.err).not.toContain('matches several');
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
    const deployed = describeDeployed(outputs, {});
    const local = localByLogicalId();
    const pairs = (t: TargetDescription) =>
      t.consumedQueues
        .map((q) => ({ name: q.name, url: q.url, deadLetter: q.deadLetter }))
        .sort((a, b) => a.name.localeCompare(b.name));
    expect(pairs(deployed)).toEqual(pairs(local));
    expect(deployed.eventQueues).toEqual(local.eventQueues);
    expect(deployed.tables).toEqual(local.tables);
    expect(deployed.endpoints).toBeUndefined(); // the SDK's usual endpoints and credentials
  });

  it('deployed, takes the price→tier map, credit allowances and ledger retention the stack was deployed with from its outputs, as the local runtime takes them from its template', () => {
    const deployed = describeDeployed(outputs, {});
    const local = localByLogicalId();
    const config = (t: TargetDescription) => ({
      priceTierMap: t.priceTierMap,
      creditAllowances: t.creditAllowances,
      ledgerRetentionDays: t.ledgerRetentionDays,
    });
    // What the subscription consumer of that deployment is given, none of it a default.
    const given = {
      priceTierMap: { price_gold: 'gold', price_silver: 'silver' },
      creditAllowances: { free: 1, bronze: 3, silver: 5, gold: 12 },
      ledgerRetentionDays: 30,
    };
    expect(config(deployed)).toEqual(given);
    expect(config(local)).toEqual(given);
    // Not the app's own cdk.json: a stack deployed without a map says so ({}), and the
    // model ops used to read (no context) is not where the map comes from.
    const plain = describeDeployed(synthOutputs(), {});
    expect(plain.priceTierMap).toEqual({});
    expect(plain.ledgerRetentionDays).toBe(90);
    expect(describeDeployed(outputs, {}).priceTierMap).not.toEqual(plain.priceTierMap);
  });

  it('deployed, says it does not know the configuration of a stack deployed before those outputs, and rejects an invalid one', () => {
    const older = describeDeployed(
      outputsWithout(outputs, (key) => Object.values<string>(CONFIG_OUTPUTS).includes(key)),
      {},
    );
    expect(older.priceTierMap).toBeUndefined();
    expect(older.creditAllowances).toBeUndefined();
    expect(older.ledgerRetentionDays).toBeUndefined();
    const bad = { ...outputs, Edited: { PriceTierMap: '{"price_gold":"platinum"}' } };
    expect(() => describeDeployed(bad, {})).toThrow(/PriceTierMap is invalid.*platinum/);
  });

  it("deployed, uses the stack's region from its outputs unless AWS_REGION is set", async () => {
    const deployed = describeDeployed(outputs, {});
    expect(deployed.region).toBe('eu-west-1');
    const fromOutputs = connect(deployed, {});
    const fromEnv = connect(deployed, { AWS_REGION: 'us-west-2' });
    try {
      expect(fromOutputs.region).toBe('eu-west-1');
      expect(await fromOutputs.sqs.config.region()).toBe('eu-west-1');
      expect(await fromOutputs.dynamo.config.region()).toBe('eu-west-1');
      expect(fromEnv.region).toBe('us-west-2');
      expect(await fromEnv.sqs.config.region()).toBe('us-west-2');
    } finally {
      fromOutputs.close();
      fromEnv.close();
    }
    // Where the region is read from: queue URLs (either host form), else an ARN.
    expect(stackRegionOf({ A: 'https://ap-southeast-2.queue.amazonaws.com/1/q' })).toBe(
      'ap-southeast-2',
    );
    expect(
      stackRegionOf({
        SubscriptionEventsQueueUrl: 'http://sqs.us-east-1.localhost:9324/000000000000/q',
        StripeApiKeySecretArn: 'arn:aws:secretsmanager:us-gov-west-1:111111111111:secret:k',
      }),
    ).toBe('us-gov-west-1');
    expect(stackRegionOf({ BillingTableName: 'billing' })).toBeUndefined();
  });

  it("deployed, lists the schedule DLQs too, from the service stack's outputs (omitted by a stack deployed before them)", () => {
    const deployed = describeDeployed(outputs, {});
    const local = localByLogicalId();
    const byName = (queues: TargetDescription['scheduleDeadLetters']) =>
      [...queues].sort((a, b) => a.name.localeCompare(b.name));
    expect(deployed.scheduleDeadLetters).toHaveLength(2);
    expect(byName(deployed.scheduleDeadLetters)).toEqual(byName(local.scheduleDeadLetters));
    const older = outputsWithout(outputs, (key) => key.includes('ScheduleDeadLetter'));
    expect(describeDeployed(older, {}).scheduleDeadLetters).toEqual([]);
  });

  it('knows what the redrive of each schedule DLQ reruns: locally from the template, deployed from the outputs', () => {
    const local = localByLogicalId();
    const deployed = describeDeployed(outputs, {});
    const planner = model.functions.find((f) => f.entry === 'functions/credit-planner.ts')!;
    const plannerQueue = planner.environment.CREDIT_REFRESH_QUEUE_URL;
    expect(plannerQueue?.kind).toBe('queueUrl');
    // The planner's queue: the consumed credit refresh work queue.
    const refreshQueueUrl = queueUrl((plannerQueue as { queueLogicalId: string }).queueLogicalId);
    expect(local.consumedQueues.map((q) => q.url)).toContain(refreshQueueUrl);
    for (const target of [local, deployed]) {
      const reruns = Object.fromEntries(
        target.scheduleDeadLetters.map((q) => [q.name.replace(/[0-9A-F]{8}$/, ''), q.reruns]),
      );
      expect(reruns).toEqual({
        CreditRefreshScheduleDeadLetterQueue: { kind: 'credit-refresh', refreshQueueUrl },
        PenaltiesScheduleDeadLetterQueue: { kind: 'penalty-assessment' },
      });
    }
  });

  it('deployed, needs exactly these outputs, names a missing one, and reads the optional ones when present', () => {
    const all: Record<string, string> = Object.assign({}, ...Object.values(outputs));
    const whole = describeDeployed({ OneStack: all }, {});
    const needed: string[] = [];
    const readWhenPresent: string[] = [];
    for (const key of Object.keys(all)) {
      const { [key]: _dropped, ...rest } = all;
      try {
        const without = describeDeployed({ OneStack: rest }, {});
        if (JSON.stringify(without) !== JSON.stringify(whole)) readWhenPresent.push(key);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        expect((error as Error).message).toContain(key);
        needed.push(key);
      }
    }
    expect(needed.sort()).toEqual(DEPLOYED_OUTPUTS_READ);
    expect(readWhenPresent.sort()).toEqual(DEPLOYED_OUTPUTS_READ_WHEN_PRESENT);
    // With STRIPE_SECRET_KEY the key's secret is not needed.
    const { StripeApiKeySecretArn: _arn, ...noSecret } = all;
    expect(
      describeDeployed({ OneStack: noSecret }, { STRIPE_SECRET_KEY: 'sk_test_x' }).stripe,
    ).toEqual({ secretKey: 'sk_test_x' });
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

describe('npm run ops: resync resolves tiers with the map the functions use', () => {
  it('refuses a stack deployed before the PriceTierMap output, saying how to go on (exit 2, nothing touched)', async () => {
    const older = describeDeployed(
      outputsWithout(outputs, (key) => Object.values<string>(CONFIG_OUTPUTS).includes(key)),
      {},
    );
    const result = await withoutStripeKey(() =>
      opsOn({ ...older, ...REFUSING_ENDPOINTS }, 'resync', '--user', 'u1'),
    );
    expect(result.code).toBe(2);
    expect(result.err).toContain('no PriceTierMap');
    expect(result.err).toContain('Redeploy');
    expect(result.err).toContain('--price-tier-map');
  });

  it('refuses an empty map, since every unmapped price would become free (exit 2, before Stripe or the store)', async () => {
    for (const argv of [
      ['resync', '--user', 'u1'],
      ['resync', '--marked', '--dry-run'],
      ['resync', '--customer', 'cus_1', '--price-tier-map', '{}'],
    ]) {
      const result = await opsOn(unreachable({ priceTierMap: {} }), ...argv);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.err, argv.join(' ')).toMatch(
        /price→tier map .* is empty.*--allow-empty-price-map/,
      );
      expect(result.err).toContain('Nothing was changed');
    }
  });

  it('runs with an empty map when told free is intended, and with --price-tier-map (JSON or a file) over the target’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-cli-map-'));
    dirs.push(dir);
    const file = join(dir, 'map.json');
    writeFileSync(file, '{"price_a":"gold","price_b":"bronze"}');
    await withoutStripeKey(async () => {
      // Past the map, the next thing resync needs is Stripe: its missing key is the answer.
      const cases: Array<[string[], string]> = [
        [['--allow-empty-price-map'], 'Price→tier map: 0 price(s), from the local runtime.'],
        [
          ['--price-tier-map', '{"price_a":"gold"}'],
          'Price→tier map: 1 price(s), from --price-tier-map.',
        ],
        [['--price-tier-map', file], 'Price→tier map: 2 price(s), from --price-tier-map.'],
      ];
      for (const [flags, said] of cases) {
        const result = await opsOn(
          unreachable({ priceTierMap: {} }),
          'resync',
          '--user',
          'u1',
          ...flags,
        );
        expect(result.out, flags.join(' ')).toContain(said);
        expect(result.err, flags.join(' ')).toContain('No Stripe API key');
      }
      // The target's own map, from the deployed stack's output.
      const deployed = await opsOn(
        { ...describeDeployed(outputs, {}), stripe: REFUSING_ENDPOINTS.stripe },
        'resync',
        '--user',
        'u1',
      );
      expect(deployed.out).toContain(
        "Price→tier map: 2 price(s), from the stack's PriceTierMap output.",
      );
      const replaced = await opsOn(
        unreachable({ priceTierMap: DEPLOYED_CONTEXT.priceTierMap }),
        'resync',
        '--user',
        'u1',
        '--price-tier-map',
        '{"price_a":"gold"}',
      );
      expect(replaced.out).toContain('--price-tier-map differs from the map of');
    });
  });

  it('validates --price-tier-map as the priceTierMap context is validated (exit 2)', async () => {
    const target = unreachable({ priceTierMap: { price_gold: 'gold' } });
    const wrongTier = await opsOn(
      target,
      'resync',
      '--user',
      'u1',
      '--price-tier-map',
      '{"price_a":"platinum"}',
    );
    expect(wrongTier.code).toBe(2);
    expect(wrongTier.err).toMatch(
      /--price-tier-map: price price_a maps to "platinum", expected one of free, bronze, silver, gold/,
    );
    const notObject = await opsOn(
      target,
      'resync',
      '--user',
      'u1',
      '--price-tier-map',
      '{"price_a":',
    );
    expect(notObject.code).toBe(2);
    expect(notObject.err).toContain('--price-tier-map: must be a JSON object of price id to tier');
    const noFile = await opsOn(
      target,
      'resync',
      '--user',
      'u1',
      '--price-tier-map',
      join(tmpdir(), 'no-such-map.json'),
    );
    expect(noFile.code).toBe(2);
    expect(noFile.err).toMatch(/neither a JSON object nor a readable file \(ENOENT\)/);
  });
});

describe('npm run ops: the Stripe key', () => {
  it("locally with a real Stripe API, takes STRIPE_SECRET_KEY from the operator's shell, and says so when it is missing", () => {
    const local = unreachable({ stripe: { apiUrl: 'https://api.stripe.com' } });
    const withKey = connect(local, { STRIPE_SECRET_KEY: 'sk_test_from_shell' });
    const withoutKey = connect(local, {});
    try {
      expect(() => withKey.stripeClients()).not.toThrow();
      expect(() => withoutKey.stripeClients()).toThrow(
        /No Stripe API key for the local runtime .*which calls Stripe at https:\/\/api\.stripe\.com: set STRIPE_SECRET_KEY/,
      );
    } finally {
      withKey.close();
      withoutKey.close();
    }
  });
});

describe('npm run ops: the Stripe mode of replay and resync', () => {
  /** Runs `body` with STRIPE_SECRET_KEY set to `key` in this shell. */
  async function withStripeKey<T>(key: string, body: () => Promise<T>): Promise<T> {
    const saved = process.env.STRIPE_SECRET_KEY;
    process.env.STRIPE_SECRET_KEY = key;
    try {
      return await body();
    } finally {
      if (saved === undefined) delete process.env.STRIPE_SECRET_KEY;
      else process.env.STRIPE_SECRET_KEY = saved;
    }
  }
  const commands = [
    ['replay', '--from', '2026-01-01T00:00:00Z'],
    // By customer: Stripe is asked first, so the refusing endpoint ends the run.
    ['resync', '--customer', 'cus_1'],
  ];
  /** Runs ops on a deployed target whose own Stripe key reads as `stackKeyMode` gives. */
  async function runDeployed(
    target: TargetDescription,
    argv: string[],
    stackKeyMode: () => Promise<'live' | 'test'>,
  ) {
    const err: string[] = [];
    const code = await runOps(argv, {
      target,
      print: () => {},
      printError: (line) => err.push(line),
      onConnect: (connected) => {
        connected.stackStripeKeyMode = stackKeyMode;
      },
    });
    return { code, err: err.join('\n') };
  }

  it('writes the mode of a local runtime calling a real Stripe API: that of its key', () => {
    expect(localByLogicalId({ STRIPE_SECRET_KEY: 'sk_live_abc' }).stripe?.mode).toBe('live');
    expect(localByLogicalId({ STRIPE_SECRET_KEY: 'rk_test_abc' }).stripe?.mode).toBe('test');
    expect(localByLogicalId({}).stripe?.mode).toBeUndefined();
  });

  it('refuses a STRIPE_SECRET_KEY of the other mode than the local runtime (exit 2, before Stripe or the store)', async () => {
    const target = unreachable({
      priceTierMap: DEPLOYED_CONTEXT.priceTierMap,
      stripe: { apiUrl: 'http://127.0.0.1:9', mode: 'test' },
    });
    await withStripeKey('sk_live_operator', async () => {
      for (const argv of commands) {
        const result = await opsOn(target, ...argv);
        expect(result.code, argv[0]).toBe(2);
        expect(result.err, argv[0]).toContain(
          `${argv[0]} refused: STRIPE_SECRET_KEY is a live-mode key, but the local runtime`,
        );
        expect(result.err, argv[0]).toContain("serves Stripe's test mode");
      }
    });
  });

  it('deployed, refuses a STRIPE_SECRET_KEY of the other mode than the own key of the stack, and goes on with one of its mode', async () => {
    const described = describeDeployed(outputs, { STRIPE_SECRET_KEY: 'sk_test_operator' });
    expect(described.stripe).toMatchObject({
      secretKey: 'sk_test_operator',
      secretArn: expect.any(String),
    });
    const target = { ...described, stripe: { ...described.stripe, apiUrl: 'http://127.0.0.1:9' } };
    const run = (stackMode: 'live' | 'test', argv: string[]) =>
      runDeployed(target, argv, async () => stackMode);
    for (const argv of commands) {
      const refused = await run('live', argv);
      expect(refused.code, argv[0]).toBe(2);
      expect(refused.err, argv[0]).toContain(
        'STRIPE_SECRET_KEY is a test-mode key, but the deployed stack',
      );
      expect(refused.err, argv[0]).toContain("from the stack's own Stripe key");
      // Of the stack's mode: past the check, to the refusing Stripe endpoint.
      const allowed = await run('test', argv);
      expect(allowed.code, argv[0]).toBe(1);
      expect(allowed.err, argv[0]).not.toContain('refused:');
    }
  });

  it('deployed with -c stripeMode, takes the mode from the StripeMode output without reading the stack key', async () => {
    const live = synthOutputs({ ...DEPLOYED_CONTEXT, stripeMode: 'live' });
    const all: Record<string, string> = Object.assign({}, ...Object.values(live));
    expect(all.StripeMode).toBe('live');
    expect(describeDeployed(live, {}).stripe?.mode).toBe('live');
    expect(() => describeDeployed({ OneStack: { ...all, StripeMode: 'prod' } }, {})).toThrow(
      /StripeMode is invalid/,
    );
    const described = describeDeployed(live, { STRIPE_SECRET_KEY: 'sk_test_operator' });
    const target = { ...described, stripe: { ...described.stripe, apiUrl: 'http://127.0.0.1:9' } };
    for (const argv of commands) {
      const { code, err } = await runDeployed(target, argv, async () => {
        throw new Error('the stack key must not be read when the outputs say the mode');
      });
      expect(code, argv[0]).toBe(2);
      expect(err, argv[0]).toContain(
        'STRIPE_SECRET_KEY is a test-mode key, but the deployed stack',
      );
    }
  });
});

describe('npm run ops: refunds', () => {
  it('takes --dry-run with --issue only', async () => {
    const alone = await opsOn(unreachable(), 'refunds', '--dry-run');
    expect(alone.code).toBe(2);
    expect(alone.err).toContain('--dry-run goes with --issue');
  });
});
