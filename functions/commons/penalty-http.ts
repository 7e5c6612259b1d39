/**
 * HTTP pieces shared by the penalty handlers: the penalties use cases' errors and the
 * payment gateway's, as the contract's statuses (DESIGN §8: 404 unknown, 409
 * conflicting state, 503 with Retry-After when Stripe is down, never Stripe's message).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import * as z from 'zod/mini';
import {
  PenaltyConflictError,
  PenaltyNotFoundError,
  PenaltyRequestError,
} from '../core/penalties/errors.ts';
import { PaymentGatewayUnavailableError, PaymentRejectedError } from '../core/penalties/ports.ts';
import {
  BadRequestError,
  HttpError,
  type HttpResponse,
  NotFoundError,
  ServiceUnavailableError,
  toHttpErrorResponse,
} from './http.ts';

export class ConflictError extends HttpError {
  constructor(
    code: string,
    message: string,
    options?: ErrorOptions & { details?: Record<string, unknown> },
  ) {
    super(409, code, message, options);
    this.name = 'ConflictError';
  }
}

export function penaltyErrorResponse(error: unknown, logger: Logger): HttpResponse {
  if (error instanceof PenaltyNotFoundError) {
    return toHttpErrorResponse(
      new NotFoundError(error.message, { code: error.code, cause: error }),
      logger,
    );
  }
  if (error instanceof PenaltyConflictError) {
    return toHttpErrorResponse(
      new ConflictError(error.code, error.message, { cause: error, details: error.details }),
      logger,
    );
  }
  if (error instanceof PenaltyRequestError) {
    return toHttpErrorResponse(
      new BadRequestError(error.message, { code: error.code, cause: error }),
      logger,
    );
  }
  if (error instanceof PaymentGatewayUnavailableError) {
    return toHttpErrorResponse(
      new ServiceUnavailableError({ cause: error, retryAfterSeconds: error.retryAfterSeconds }),
      logger,
    );
  }
  if (error instanceof PaymentRejectedError) {
    return toHttpErrorResponse(
      new ConflictError(
        'payment_rejected',
        `The payment provider refused the payment (${error.code}).`,
        {
          cause: error,
        },
      ),
      logger,
    );
  }
  return toHttpErrorResponse(error, logger);
}

export const ID_RULE = 'must be 1-128 letters, digits or . _ : @ | + -';
/** Recipient ids: opaque like user ids. */
export const recipientIdParam = () =>
  z
    .string()
    .check(
      z.minLength(1, { message: ID_RULE }),
      z.maxLength(128, { message: ID_RULE }),
      z.regex(/^[A-Za-z0-9._:@|+-]+$/, { message: ID_RULE }),
    );
