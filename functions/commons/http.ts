/**
 * API Gateway HTTP API (payload v2) helpers shared by every HTTP function: JSON
 * responses, the 4xx error family, and the one mapper from errors to responses.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { InvalidCursorError } from '../core/shared/paging.ts';
import { isDependencyFailure } from './dependency-failures.ts';

export type HttpResponse = APIGatewayProxyStructuredResultV2 & {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
};

/** Body shape of every error answer: a stable machine `code` and a human `message`. */
export interface ErrorBody {
  /** Some errors carry more fields beside these (a 409 settlement_pending: the payment). */
  error: { code: string; message: string } & Record<string, unknown>;
}

/** A JSON response; `content-type` is set unless `headers` overrides it. */
export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * An error whose message is safe to show the caller. Anything else reaching the
 * mapper is treated as internal and answered with a generic 5xx.
 */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  /** Answered beside `code` and `message`; not enumerable, so never logged with the error (it may hold a client secret). */
  declare readonly details: Record<string, unknown>;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    options?: ErrorOptions & {
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
    },
  ) {
    super(message, options);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.code = code;
    this.headers = options?.headers ?? {};
    Object.defineProperty(this, 'details', { value: options?.details ?? {}, enumerable: false });
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(400, options?.code ?? 'bad_request', message, options);
    this.name = 'BadRequestError';
  }
}

export class NotFoundError extends HttpError {
  constructor(message = 'Not found.', options?: ErrorOptions & { code?: string }) {
    super(404, options?.code ?? 'not_found', message, options);
    this.name = 'NotFoundError';
  }
}

export class MethodNotAllowedError extends HttpError {
  /** `allowed` becomes the `Allow` header, as RFC 9110 requires for a 405. */
  constructor(allowed: readonly string[], options?: ErrorOptions) {
    super(405, 'method_not_allowed', `Method not allowed; use ${allowed.join(', ')}.`, {
      ...options,
      headers: { allow: allowed.join(', ') },
    });
    this.name = 'MethodNotAllowedError';
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(maxBytes: number, options?: ErrorOptions) {
    super(413, 'payload_too_large', `Request body exceeds ${maxBytes} bytes.`, options);
    this.name = 'PayloadTooLargeError';
  }
}

/**
 * A dependency is down or overloaded; the caller should retry later (Stripe does).
 * The message is generic on purpose; the cause goes to the logs.
 */
export class ServiceUnavailableError extends HttpError {
  /**
   * Why, when the cause is a known state already alarmed on (Stripe's circuit open): the
   * answer is logged as a one-line warning, not an error with its stack, so an outage
   * does not turn every request into an error log.
   */
  readonly knownCondition: string | undefined;

  constructor(options?: ErrorOptions & { retryAfterSeconds?: number; knownCondition?: string }) {
    super(503, 'service_unavailable', 'Service temporarily unavailable; retry later.', {
      ...options,
      ...(options?.retryAfterSeconds !== undefined
        ? { headers: { 'retry-after': String(options.retryAfterSeconds) } }
        : {}),
    });
    this.name = 'ServiceUnavailableError';
    this.knownCondition = options?.knownCondition;
  }
}

/** Seconds a caller should wait after a 503 caused by a dependency failure. */
const DEPENDENCY_RETRY_AFTER_SECONDS = 2;

/**
 * The one error-to-response mapper. Known `HttpError`s become their status with
 * their safe message; a cursor not issued for the query is a 400; a dependency failure becomes a 503 with `Retry-After`; anything
 * else becomes a generic 500. Details only reach the logs. 4xx are logged at info
 * (callers' mistakes), 5xx at error.
 */
export function toHttpErrorResponse(
  error: unknown,
  log: Pick<Logger, 'info' | 'warn' | 'error'>,
): HttpResponse {
  if (error instanceof InvalidCursorError) {
    return toHttpErrorResponse(
      new BadRequestError('cursor is not valid for this query.', {
        code: 'invalid_parameter',
        cause: error,
      }),
      log,
    );
  }
  if (!(error instanceof HttpError) && isDependencyFailure(error)) {
    return toHttpErrorResponse(
      new ServiceUnavailableError({
        cause: error,
        retryAfterSeconds: DEPENDENCY_RETRY_AFTER_SECONDS,
      }),
      log,
    );
  }
  if (error instanceof HttpError) {
    if (error instanceof ServiceUnavailableError && error.knownCondition) {
      log.warn('Request answered 503', {
        statusCode: error.statusCode,
        code: error.code,
        reason: error.knownCondition,
      });
    } else if (error.statusCode >= 500) {
      log.error('Request failed', { error, statusCode: error.statusCode });
    } else {
      log.info('Request rejected', {
        statusCode: error.statusCode,
        code: error.code,
        reason: error.message,
      });
    }
    return jsonResponse(
      error.statusCode,
      { error: { ...error.details, code: error.code, message: error.message } } satisfies ErrorBody,
      error.headers,
    );
  }
  log.error('Unhandled error', { error: error instanceof Error ? error : String(error) });
  return jsonResponse(500, {
    error: { code: 'internal_error', message: 'Internal server error.' },
  } satisfies ErrorBody);
}

/** Header value by name, case-insensitively (API Gateway lower-cases, but callers may not). */
export function getHeader(
  headers: Record<string, string | undefined> | undefined,
  name: string,
): string | undefined {
  if (!headers) return undefined;
  const direct = headers[name];
  if (direct !== undefined) return direct;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

/**
 * The raw request body as bytes: API Gateway base64-encodes bodies it considers
 * binary and says so in `isBase64Encoded`; signatures are over the original bytes.
 */
export function rawBodyBytes(
  event: Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded'>,
): Buffer {
  if (event.body === undefined || event.body === null) return Buffer.alloc(0);
  return event.isBase64Encoded
    ? Buffer.from(event.body, 'base64')
    : Buffer.from(event.body, 'utf8');
}
