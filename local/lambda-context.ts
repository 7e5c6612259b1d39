/**
 * Hosting a function in the local runtime: the `Context` object Lambda passes
 * (function name, request id, remaining time...), the function timeout, and the
 * runtime's own one-line log. Handlers only see what they would see on AWS.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { LOCAL_REGION } from './emulators.ts';
import { invocations, type RoleGrants } from './iam-scope.ts';
import type { FunctionModel } from './stack-model.ts';

/** The account id the emulators use in ARNs (fauxqs writes the same one into queue URLs). */
export const LOCAL_ACCOUNT_ID = '000000000000';

/** The handler shape every function in `functions/` exports. */
export type LambdaHandler<TEvent = unknown, TResult = unknown> = (
  event: TEvent,
  context: Context,
) => Promise<TResult>;

export interface LocalFunction {
  /** The function's name (the model's logical id), as `context.functionName`. */
  functionName: string;
  /** Lambda timeout; the invocation fails with `LambdaTimeoutError` after it. */
  timeoutSeconds: number;
  /** Reported as `context.memoryLimitInMB`; not enforced locally. Default 128. */
  memoryMb?: number;
  /**
   * Its role's DynamoDB grants by local table name: its requests through the shared
   * client are checked against them (`iam-scope.ts`). Absent: not checked.
   */
  dynamoDbGrants?: RoleGrants;
}

/** The invocation ran past the function's timeout (Lambda reports "Task timed out"). */
export class LambdaTimeoutError extends Error {
  readonly functionName: string;
  readonly timeoutSeconds: number;

  constructor(functionName: string, timeoutSeconds: number, options?: ErrorOptions) {
    super(`${functionName}: Task timed out after ${timeoutSeconds.toFixed(2)} seconds`, options);
    this.name = 'LambdaTimeoutError';
    this.functionName = functionName;
    this.timeoutSeconds = timeoutSeconds;
  }
}

/** A fresh `Context` for one invocation; the remaining time counts down from now. */
export function createLambdaContext(fn: LocalFunction, startedAt = Date.now()): Context {
  const deadline = startedAt + fn.timeoutSeconds * 1000;
  const unsupported = () => {
    throw new Error('Callback-style context methods are not supported; return a promise.');
  };
  const day = new Date(startedAt).toISOString().slice(0, 10).replaceAll('-', '/');
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:function:${fn.functionName}`,
    memoryLimitInMB: String(fn.memoryMb ?? 128),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn.functionName}`,
    logStreamName: `${day}/[$LATEST]local`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/**
 * Invokes `handler` like Lambda would: with a fresh context, failing with
 * `LambdaTimeoutError` once the function timeout elapses. Locally the timed-out
 * handler cannot be frozen, so it keeps running in the background; its result is
 * ignored, as Lambda would have discarded it.
 */
export async function invokeLocally<TEvent, TResult>(
  fn: LocalFunction,
  handler: LambdaHandler<TEvent, TResult>,
  event: TEvent,
): Promise<TResult> {
  const context = createLambdaContext(fn);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LambdaTimeoutError(fn.functionName, fn.timeoutSeconds)),
      fn.timeoutSeconds * 1000,
    );
  });
  // Promise.resolve().then(): a handler that throws synchronously still becomes a rejection.
  const run = () => Promise.race([Promise.resolve().then(() => handler(event, context)), timeout]);
  const grants = fn.dynamoDbGrants;
  try {
    return await (grants
      ? invocations.run({ functionName: fn.functionName, dynamoDbGrants: grants }, run)
      : run());
  } finally {
    clearTimeout(timer);
  }
}

export type LocalLogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** The local runtime's own log (handlers log through Powertools as on AWS). */
export interface LocalLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

const LEVEL_RANK: Record<LocalLogLevel, number> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
  silent: 4,
};

export function isLocalLogLevel(value: unknown): value is LocalLogLevel {
  return typeof value === 'string' && value in LEVEL_RANK;
}

/**
 * Plain `[local] message` lines: info and debug to stdout, warnings and errors to
 * stderr. An error's stack is shown at debug level only; its message always is.
 */
export function createLocalLog(level: LocalLogLevel = 'info', prefix = '[local]'): LocalLog {
  const on = (wanted: LocalLogLevel) => LEVEL_RANK[wanted] >= LEVEL_RANK[level];
  return {
    debug: (message) => {
      if (on('debug')) console.log(`${prefix} ${message}`);
    },
    info: (message) => {
      if (on('info')) console.log(`${prefix} ${message}`);
    },
    warn: (message) => {
      if (on('warn')) console.error(`${prefix} ${message}`);
    },
    error: (message, error) => {
      if (!on('error')) return;
      const detail =
        error instanceof Error ? (on('debug') ? `\n${error.stack}` : `: ${error.message}`) : '';
      console.error(`${prefix} ${message}${detail}`);
    },
  };
}

/**
 * A function of the stack model as the local runtime (and the benchmark) hosts it; with
 * the local tables' names, its DynamoDB requests are held to its role's grants.
 */
export function localFunction(
  fn: FunctionModel,
  tableNames?: Readonly<Record<string, string>>,
): LocalFunction {
  return {
    functionName: fn.logicalId,
    timeoutSeconds: fn.timeoutSeconds,
    memoryMb: fn.memoryMb,
    ...(tableNames
      ? {
          dynamoDbGrants: Object.fromEntries(
            fn.dynamoDbGrants.map((grant) => [
              tableNames[grant.tableLogicalId] ?? grant.tableLogicalId,
              { actions: grant.actions, indexes: grant.indexes },
            ]),
          ),
        }
      : {}),
  };
}
