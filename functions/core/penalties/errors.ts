/** Errors of the penalties use cases; the HTTP handlers turn them into 404 and 409 answers. */

/** An unknown user, habit or penalty (404). */
export class PenaltyNotFoundError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'PenaltyNotFoundError';
    this.code = code;
  }
}

/** The request conflicts with the current state (409): a limit reached, a settlement pending. */
export class PenaltyConflictError extends Error {
  readonly code: string;
  /**
   * Fields the answer carries beside the code and message (e.g. the pending payment);
   * not enumerable, so a logged error never shows them (a client secret).
   */
  declare readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'PenaltyConflictError';
    this.code = code;
    Object.defineProperty(this, 'details', { value: details, enumerable: false });
  }
}

/** A bad request the parameter checks cannot see (400): a date already assessed. */
export class PenaltyRequestError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'PenaltyRequestError';
    this.code = code;
  }
}
