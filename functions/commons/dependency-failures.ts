/**
 * Which errors mean a dependency (DynamoDB, SQS...) failed rather than our request: the
 * one classification the HTTP layer (503 with Retry-After) and the adapters share.
 */

/** Set by an adapter error whose dependency failed without an SDK error to show it. */
export interface DependencyFailureFlag {
  readonly dependencyFailed: boolean;
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EPIPE',
  'EAI_AGAIN',
]);
/** Throttles by name: the SDK marks them client faults, yet a retry later succeeds. */
const THROTTLING_ERRORS = new Set([
  // DynamoDB
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  // SQS (its queue, and the KMS key of an encrypted queue)
  'RequestThrottled',
  'KmsThrottled',
]);

/**
 * Whether an error means a dependency (DynamoDB, SQS...) is down, unreachable or
 * throttling us: an AWS SDK server fault or throttle, a network failure, or a timeout.
 * A client fault (validation, access denied) is our own bug, not a reason to retry.
 */
export function isDependencyFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // An adapter's own error that knows its dependency failed (e.g. SQS failing entries).
  if ((error as Partial<DependencyFailureFlag>).dependencyFailed === true) return true;
  const sdk = error as Error & { $fault?: string; $metadata?: unknown; code?: string };
  if (sdk.$metadata !== undefined)
    return sdk.$fault === 'server' || THROTTLING_ERRORS.has(sdk.name);
  const code = sdk.code ?? (error.cause as { code?: string } | undefined)?.code;
  if (code && NETWORK_ERROR_CODES.has(code)) return true;
  return error.name === 'TimeoutError' || error.name === 'BatchRetriesExhaustedError';
}
