/**
 * `npm run ops -- <command> [flags]`: the operator's tools (DESIGN §8.4), against the
 * local runtime (what `npm start` wrote to .local/runtime.json) or, with
 * `--outputs <file>` (from `cdk deploy --all --outputs-file <file>`) and the usual AWS
 * credentials, against the deployed stack (in its region, read from the outputs, unless
 * AWS_REGION is set). `--help` lists the commands; a usage mistake prints why and exits
 * with 2; a failure exits with 1.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { OPS_COMMANDS, type OpsCommand, type OpsIo } from './commands.ts';
import {
  connect,
  describeDeployed,
  type OpsTarget,
  readRuntimeFile,
  type TargetDescription,
  UsageError,
} from './target.ts';

const COMMON_FLAGS = {
  outputs: {
    type: 'string',
    description:
      "act on a deployed stack: the JSON of `cdk deploy --all --outputs-file <file>`; the AWS region is the stack's (from its queue URLs or ARNs) unless AWS_REGION is set",
  },
  json: { type: 'boolean', description: 'print the result as JSON' },
  help: { type: 'boolean', description: 'this help' },
} as const;

export function usage(command?: OpsCommand): string {
  if (command) {
    const flags = { ...command.flags, ...COMMON_FLAGS };
    const width = Math.max(10, ...Object.keys(flags).map((name) => name.length));
    return [
      `npm run ops -- ${command.usage}`,
      '',
      command.summary,
      '',
      ...Object.entries(flags).map(
        ([name, spec]) => `  --${name.padEnd(width)} ${spec.description}`,
      ),
    ].join('\n');
  }
  return [
    'npm run ops -- <command> [flags]',
    '',
    'Commands:',
    ...OPS_COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    '',
    'Target: the local runtime started by `npm start` (default), or a deployed stack with',
    '--outputs <cdk outputs file> and your usual AWS credentials. Deployed, the AWS region is',
    "the stack's, read from the outputs (its queue URLs or ARNs), unless AWS_REGION is set.",
    'Stripe (replay, resync, refunds --issue): locally the fake Stripe of the runtime, or',
    'with a real Stripe API STRIPE_SECRET_KEY from this shell; deployed STRIPE_SECRET_KEY',
    "when set, else the stack's StripeApiKeySecretArn (read with your credentials). replay and",
    "resync refuse a key of the other mode (live/test) than the target's.",
    '`npm run ops -- <command> --help` for its flags.',
  ].join('\n');
}

/** Runs one command line; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runOps(
  argv: readonly string[],
  options: {
    print?: (line: string) => void;
    printError?: (line: string) => void;
    /** Tests pass a target; otherwise it is resolved from the flags. */
    target?: TargetDescription;
    /** Tests: called with the connected target before the command runs (e.g. to add a fault to its clients). */
    onConnect?: (target: OpsTarget) => void;
  } = {},
): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  const printError = options.printError ?? ((line: string) => console.error(line));
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    print(usage());
    return name === undefined ? 2 : 0;
  }
  const command = OPS_COMMANDS.find((c) => c.name === name);
  if (!command) {
    printError(`Unknown command "${name}".\n\n${usage()}`);
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  const flags = { ...command.flags, ...COMMON_FLAGS };
  try {
    const config: ParseArgsConfig = {
      args: negativeValuesJoined(rest, flags),
      options: Object.fromEntries(
        Object.entries(flags).map(([flag, spec]) => [flag, { type: spec.type }]),
      ),
      strict: true,
      allowPositionals: false,
    };
    values = parseArgs(config).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    printError(`${(error as Error).message}\n\n${usage(command)}`);
    return 2;
  }
  if (values.help) {
    print(usage(command));
    return 0;
  }
  let target: OpsTarget | undefined;
  try {
    const description = options.target ?? (await resolveTarget(values.outputs));
    target = connect(description);
    options.onConnect?.(target);
    const io: OpsIo = { print: values.json ? () => {} : print, json: values.json === true };
    const result = await command.run(target, values, io);
    if (values.json) print(JSON.stringify(result, null, 2));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      printError(error.message);
      return 2;
    }
    printError(`${command.name} failed: ${(error as Error).message}`);
    return 1;
  } finally {
    target?.close();
  }
}

/**
 * `--max -1` as `--max=-1`: parseArgs takes a value that starts with a dash for a flag
 * (and says the option is ambiguous), so a negative number would never reach the
 * command's own check, which says what the flag accepts.
 */
function negativeValuesJoined(
  args: readonly string[],
  flags: Record<string, { type: 'string' | 'boolean' }>,
): string[] {
  const joined: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const next = args[index + 1];
    const flag = arg.startsWith('--') ? flags[arg.slice(2)] : undefined;
    if (flag?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      index++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

async function resolveTarget(outputs: unknown): Promise<TargetDescription> {
  if (typeof outputs !== 'string') return await readRuntimeFile();
  let parsed: Record<string, Record<string, string>>;
  try {
    parsed = JSON.parse(await readFile(outputs, 'utf8'));
  } catch (error) {
    throw new UsageError(`--outputs ${outputs}: ${(error as Error).message}`);
  }
  return describeDeployed(parsed);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  runOps(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
