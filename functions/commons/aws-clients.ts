/**
 * Default AWS SDK clients for the handlers, with bounded timeouts and retries so a
 * slow or unreachable dependency fails within the Lambda timeout instead of hanging.
 * Created lazily (first use, then reused across warm invocations) so importing a
 * handler never builds a client or touches the network. Endpoints come from the
 * standard AWS_ENDPOINT_URL_* env vars, which is how the local runtime points them
 * at the emulators.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { lazy } from './lazy.ts';
import { tracer } from './powertools.ts';

export interface ClientTuning {
  /** TCP connect timeout in ms. Default 1,000. */
  connectionTimeoutMs?: number;
  /** Whole request/response timeout in ms, per attempt. Default 3,000. */
  requestTimeoutMs?: number;
  /** Total attempts including the first, with the SDK's standard (jittered) retry mode. Default 3. */
  maxAttempts?: number;
}

export const DEFAULT_CLIENT_TUNING: Required<ClientTuning> = {
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 3_000,
  maxAttempts: 3,
};

/** The constructor options every client shares: timeouts, standard retry mode, keep-alive. */
export function clientConfig(tuning: ClientTuning = {}) {
  const t = { ...DEFAULT_CLIENT_TUNING, ...tuning };
  return {
    maxAttempts: t.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: t.connectionTimeoutMs,
      requestTimeout: t.requestTimeoutMs,
      // Without this the SDK only warns when requestTimeout is exceeded.
      throwOnRequestTimeout: true,
      httpAgent: { keepAlive: true },
      httpsAgent: { keepAlive: true },
    },
  } as const;
}

/** The client, instrumented for X-Ray where tracing is possible. */
function traced<T>(client: T): T {
  return tracer ? tracer.captureAWSv3Client(client) : client;
}

export function createDynamoDbClient(tuning?: ClientTuning): DynamoDBClient {
  return traced(new DynamoDBClient(clientConfig(tuning)));
}

/**
 * `useQueueUrlAsEndpoint: false`: by default the SDK sends each call to the host of
 * its QueueUrl unless an endpoint is set in code; with the endpoint from
 * AWS_ENDPOINT_URL_SQS (local runtime) that host is the emulator's advertised one
 * (`sqs.<region>.localhost`), which may not resolve. On AWS the regional endpoint
 * and the queue URL host are the same, so nothing changes there.
 */
export function createSqsClient(tuning?: ClientTuning): SQSClient {
  return traced(new SQSClient({ ...clientConfig(tuning), useQueueUrlAsEndpoint: false }));
}

export function createSecretsManagerClient(tuning?: ClientTuning): SecretsManagerClient {
  return traced(new SecretsManagerClient(clientConfig(tuning)));
}

/** The process-wide DynamoDB client (created on first call). */
export const defaultDynamoDbClient = lazy(() => createDynamoDbClient());
/** The process-wide SQS client (created on first call). */
export const defaultSqsClient = lazy(() => createSqsClient());
/** The process-wide Secrets Manager client (created on first call). */
export const defaultSecretsManagerClient = lazy(() => createSecretsManagerClient());
