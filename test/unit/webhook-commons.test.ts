/** The shared HTTP, env and client helpers the webhook (and every other handler) is built on. */
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import {
  clientConfig,
  createSqsClient,
  defaultDynamoDbClient,
  defaultSqsClient,
} from '../../functions/commons/aws-clients.ts';
import { EnvConfigError, lazyEnv, readEnv } from '../../functions/commons/env.ts';
import {
  BadRequestError,
  getHeader,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  rawBodyBytes,
  ServiceUnavailableError,
  toHttpErrorResponse,
} from '../../functions/commons/http.ts';

function fakeLog() {
  return { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

describe('toHttpErrorResponse', () => {
  it.each([
    [new BadRequestError('Bad thing.', { code: 'bad_thing' }), 400, 'bad_thing'],
    [new NotFoundError(), 404, 'not_found'],
    [new MethodNotAllowedError(['POST']), 405, 'method_not_allowed'],
    [new PayloadTooLargeError(10), 413, 'payload_too_large'],
    [new ServiceUnavailableError(), 503, 'service_unavailable'],
  ])('answers %s with its status and code', (error, status, code) => {
    const log = fakeLog();
    const response = toHttpErrorResponse(error, log);
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toBe('application/json');
    expect(JSON.parse(response.body)).toEqual({ error: { code, message: error.message } });
    expect(status >= 500 ? log.error : log.info).toHaveBeenCalledTimes(1);
  });

  it('sets Allow on a 405', () => {
    expect(
      toHttpErrorResponse(new MethodNotAllowedError(['GET', 'HEAD']), fakeLog()).headers,
    ).toMatchObject({
      allow: 'GET, HEAD',
    });
  });

  it('answers anything else with a generic 500 and logs the details', () => {
    const log = fakeLog();
    const internal = new Error('ConditionalCheckFailed on table billing-prod at 10.0.3.4');
    const response = toHttpErrorResponse(internal, log);
    expect(response.statusCode).toBe(500);
    expect(JSON.parse(response.body)).toEqual({
      error: { code: 'internal_error', message: 'Internal server error.' },
    });
    expect(response.body).not.toContain('billing-prod');
    expect(log.error).toHaveBeenCalledWith('Unhandled error', { error: internal });
  });

  it('logs a 503 of a known, alarmed condition (Stripe paused) as a one-line warning, without the cause', () => {
    const log = fakeLog();
    const cause = new Error('BrokenCircuitError at internal.ts:12');
    const response = toHttpErrorResponse(
      new ServiceUnavailableError({
        cause,
        retryAfterSeconds: 30,
        knownCondition: 'Stripe calls are paused (circuit open).',
      }),
      log,
    );
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('30');
    expect(log.error).not.toHaveBeenCalled();
    expect(log.warn).toHaveBeenCalledWith('Request answered 503', {
      statusCode: 503,
      code: 'service_unavailable',
      reason: 'Stripe calls are paused (circuit open).',
    });
  });

  it('keeps a 503 cause out of the response', () => {
    const response = toHttpErrorResponse(
      new ServiceUnavailableError({ cause: new Error('ECONNREFUSED 10.1.2.3') }),
      fakeLog(),
    );
    expect(response.body).not.toContain('ECONNREFUSED');
  });
});

describe('dependency failures become a 503 with Retry-After', () => {
  const sdkError = (name: string, fault: 'client' | 'server') =>
    Object.assign(new Error(`${name}: internal detail arn:aws:dynamodb:...`), {
      name,
      $fault: fault,
      $metadata: { httpStatusCode: fault === 'server' ? 500 : 400 },
    });

  it.each([
    ['a throttled store', sdkError('ProvisionedThroughputExceededException', 'client')],
    ['a throttled queue', sdkError('RequestThrottled', 'client')],
    ['a throttled queue key', sdkError('KmsThrottled', 'client')],
    ['an AWS server fault', sdkError('InternalServerError', 'server')],
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
    ],
    ['a timeout', Object.assign(new Error('socket hang up'), { name: 'TimeoutError' })],
  ])('%s', (_what, error) => {
    const response = toHttpErrorResponse(error, fakeLog());
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('2');
    expect(response.body).not.toContain('internal detail');
    expect(response.body).not.toContain('ECONNREFUSED');
  });

  it('keeps our own bugs (a client fault such as a validation error) a 500', () => {
    const response = toHttpErrorResponse(sdkError('ValidationException', 'client'), fakeLog());
    expect(response.statusCode).toBe(500);
    expect(response.headers['retry-after']).toBeUndefined();
  });
});

describe('request helpers', () => {
  it('finds headers case-insensitively', () => {
    expect(getHeader({ 'Stripe-Signature': 'x' }, 'stripe-signature')).toBe('x');
    expect(getHeader({ 'stripe-signature': 'y' }, 'Stripe-Signature')).toBe('y');
    expect(getHeader(undefined, 'a')).toBeUndefined();
  });

  it('decodes base64 bodies to their bytes', () => {
    const bytes = Buffer.from([0xe2, 0x82, 0xac, 0x00, 0xff]);
    expect(rawBodyBytes({ body: bytes.toString('base64'), isBase64Encoded: true })).toEqual(bytes);
    expect(rawBodyBytes({ body: '€', isBase64Encoded: false })).toEqual(Buffer.from('€'));
    expect(rawBodyBytes({ isBase64Encoded: false })).toHaveLength(0);
  });
});

describe('readEnv', () => {
  const schema = z.object({
    QUEUE_URL: z.url(),
    RETENTION_DAYS: z.coerce.number().int().positive(),
    OPTIONAL: z.string().optional(),
  });

  it('parses and coerces', () => {
    expect(readEnv(schema, { QUEUE_URL: 'https://sqs/1/q', RETENTION_DAYS: '30' })).toEqual({
      QUEUE_URL: 'https://sqs/1/q',
      RETENTION_DAYS: 30,
    });
  });

  it('names every missing or invalid variable, without echoing values', () => {
    let error: unknown;
    try {
      readEnv(schema, { RETENTION_DAYS: 'secret-looking-value' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EnvConfigError);
    const { message, variables } = error as EnvConfigError;
    expect(message).toMatch(/QUEUE_URL is missing/);
    expect(message).toMatch(/RETENTION_DAYS/);
    expect(message).not.toContain('secret-looking-value');
    expect(variables).toEqual(['QUEUE_URL', 'RETENTION_DAYS']);
  });

  it('lazyEnv reads once, on first use', () => {
    const source = vi.fn(() => ({ QUEUE_URL: 'https://sqs/1/q', RETENTION_DAYS: '7' }));
    const env = lazyEnv(schema, source);
    expect(source).not.toHaveBeenCalled();
    expect(env()).toBe(env());
    expect(source).toHaveBeenCalledTimes(1);
  });
});

describe('AWS clients', () => {
  it('bounds attempts and timeouts with the standard retry mode', async () => {
    expect(clientConfig()).toMatchObject({
      maxAttempts: 3,
      retryMode: 'standard',
      requestHandler: {
        connectionTimeout: 1_000,
        requestTimeout: 3_000,
        throwOnRequestTimeout: true,
      },
    });
    const sqs = createSqsClient({ maxAttempts: 2 });
    expect(await sqs.config.maxAttempts()).toBe(2);
    const strategy = (await sqs.config.retryStrategy()) as { mode?: string };
    expect(strategy.mode).toBe('standard');
    expect(sqs.config.useQueueUrlAsEndpoint).toBe(false);
  });

  it('creates each default client once, on first use', () => {
    expect(defaultSqsClient()).toBe(defaultSqsClient());
    expect(defaultDynamoDbClient()).toBe(defaultDynamoDbClient());
  });
});
