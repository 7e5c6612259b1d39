/**
 * How every Stripe call is made (DESIGN §3.5, §8.4), with cockatiel's policies: at
 * most 3 attempts, with jittered exponential backoff, on rate limits (429), 5xx and
 * connection errors only, never on another 4xx; a circuit breaker shared by all calls
 * of the process that opens after consecutive such failures, so a Stripe outage costs
 * callers nothing but a fast 503; and an overall deadline over the attempts and their
 * backoff, so a Stripe that hangs costs one deadline, not three timeouts. Other errors
 * (a bad request, a conflict, a declined card, a bad key) are the caller's to handle
 * and are neither retried nor counted by the breaker.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import Stripe from 'stripe';
import { STRIPE_REQUEST_TIMEOUT_MS } from './stripe-client.ts';

/** Stripe could not answer in time: unreachable, failing, rate-limiting, or the breaker is open. */
export class StripeUnavailableError extends Error {
  readonly reason: 'breaker-open' | 'deadline' | 'retries-exhausted';
  /** When a caller may usefully try again. */
  readonly retryAfterSeconds: number;

  constructor(
    reason: StripeUnavailableError['reason'],
    retryAfterSeconds: number,
    options?: ErrorOptions,
  ) {
    super(
      {
        'breaker-open': 'Stripe calls are paused after repeated failures (circuit open).',
        deadline: 'Stripe did not answer before the deadline.',
        'retries-exhausted': 'Stripe kept failing or rate-limiting after the retries.',
      }[reason],
      options,
    );
    this.name = 'StripeUnavailableError';
    this.reason = reason;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Worth another attempt, and a failure the breaker counts: a 429, a 5xx or no response
 * at all. Any other 4xx (a 409 `lock_timeout` included) is never retried nor counted,
 * whatever `Stripe-Should-Retry` says: the contract retries on those three only. (One
 * consequence of "no response" is retried too, uncounted: `isIdempotencyKeyInUse`.)
 */
export function isTransientStripeError(error: unknown): boolean {
  if (!(error instanceof Stripe.errors.StripeError)) return false;
  const status = error.statusCode;
  const transient =
    error instanceof Stripe.errors.StripeConnectionError ||
    status === 429 ||
    (status !== undefined && status >= 500);
  if (!transient) return false;
  // Stripe-Should-Retry may only narrow that set: `false` (Stripe knows another attempt
  // cannot succeed) stops a 429/5xx from being retried; `true` never widens it to a 4xx.
  return error.headers?.['stripe-should-retry'] !== 'false';
}

/**
 * Stripe's 409 `idempotency_key_in_use`: a request with this key is still running at
 * Stripe. For a call of ours that is our own earlier attempt, cut off by our timeout (a
 * failure with no response) and still being served: worth another attempt after the
 * backoff, which gets that attempt's answer replayed once it is done. Not a failure of
 * Stripe, so the breaker does not count it.
 */
export function isIdempotencyKeyInUse(error: unknown): boolean {
  return (
    error instanceof Stripe.errors.StripeError &&
    error.statusCode === 409 &&
    error.code === 'idempotency_key_in_use'
  );
}

/** Worth another attempt: a transient failure, or our own earlier attempt still running at Stripe. */
function isRetriedStripeError(error: unknown): boolean {
  return isTransientStripeError(error) || isIdempotencyKeyInUse(error);
}

export interface StripeCallPolicyOptions {
  /** Attempts per call, the first included. Default 3. */
  maxAttempts?: number;
  /** First backoff; later ones grow exponentially with decorrelated jitter. Default 200 ms. */
  initialBackoffMs?: number;
  /** Default 2 s. */
  maxBackoffMs?: number;
  /** One request's timeout. Default 10 s. */
  attemptTimeoutMs?: number;
  /** The whole call, attempts and backoff included. Default 10 s. */
  deadlineMs?: number;
  /** Consecutive transient failures that open the breaker. Default 5. */
  breakerThreshold?: number;
  /** How long the breaker stays open before letting one trial call through. Default 30 s. */
  breakerOpenMs?: number;
  /** Retry-After given to callers when Stripe did not say. Default 5 s. */
  defaultRetryAfterSeconds?: number;
}

/** The time (epoch ms) by which the Stripe calls of the current request must be done. */
const requestDeadline = new AsyncLocalStorage<number>();

/**
 * Runs `work` with all the Stripe calls it makes sharing one deadline `ms` from now
 * (within any deadline already running): a request that makes several calls (a
 * settlement: cancel, retrieve, create) answers within it, with its own 503, before the
 * function's timeout cuts it off; a call started past it fails at once.
 */
export function withStripeDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  const at = Date.now() + ms;
  const outer = requestDeadline.getStore();
  return requestDeadline.run(outer === undefined ? at : Math.min(at, outer), work);
}

/** 'closed' (calls flow), 'open' (calls refused), 'half-open' (one trial call in flight). */
export type StripeCircuitState = 'closed' | 'half-open' | 'open';

/** What the policy reports, for metrics: one `call` per run, retries included. */
export interface StripeCallObserver {
  /** `unavailable`: down, deadline or breaker open; `error`: Stripe answered with a refusal. */
  call(durationMs: number, outcome: 'ok' | 'unavailable' | 'error'): void;
  /** A call refused at once because the breaker is open. */
  circuitRejected(): void;
  /** The breaker just opened. */
  circuitOpened(): void;
  /**
   * The breaker just changed state, on every transition: closed → open, open →
   * half-open (the trial call starts), half-open → closed or back to open.
   */
  circuitStateChanged?(state: StripeCircuitState): void;
}

export interface StripeAttempt {
  /** Pass as the request's `timeout`: the attempt timeout, cut to what is left of the deadline. */
  timeoutMs: number;
  /** 1 for the first attempt. */
  attempt: number;
}

export class StripeCallPolicy {
  readonly #options: Required<StripeCallPolicyOptions>;
  readonly #breaker: CircuitBreakerPolicy;
  #openedAt = 0;

  #observer: StripeCallObserver | undefined;

  constructor(options: StripeCallPolicyOptions = {}, observer?: StripeCallObserver) {
    this.#observer = observer;
    this.#options = {
      maxAttempts: options.maxAttempts ?? 3,
      initialBackoffMs: options.initialBackoffMs ?? 200,
      maxBackoffMs: options.maxBackoffMs ?? 2_000,
      attemptTimeoutMs: options.attemptTimeoutMs ?? STRIPE_REQUEST_TIMEOUT_MS,
      deadlineMs: options.deadlineMs ?? 10_000,
      breakerThreshold: options.breakerThreshold ?? 5,
      breakerOpenMs: options.breakerOpenMs ?? 30_000,
      defaultRetryAfterSeconds: options.defaultRetryAfterSeconds ?? 5,
    };
    this.#breaker = circuitBreaker(handleWhen(isTransientStripeError), {
      halfOpenAfter: this.#options.breakerOpenMs,
      breaker: new ConsecutiveBreaker(this.#options.breakerThreshold),
    });
    this.#breaker.onBreak(() => {
      this.#openedAt = Date.now();
      this.#observer?.circuitOpened();
    });
    // After onBreak's listener (cockatiel emits onBreak, then onStateChange), so an
    // opening is reported as `circuitOpened` first, then as the new state.
    this.#breaker.onStateChange((state) => {
      this.#observer?.circuitStateChanged?.(circuitState(state));
    });
  }

  /** Reports to `observer` from now on (the process-wide policy gets its metrics sink late). */
  observe(observer: StripeCallObserver): void {
    this.#observer = observer;
  }

  /** 'closed' (calls flow), 'open' (calls refused), 'half-open' (one trial call in flight). */
  get state(): StripeCircuitState {
    return circuitState(this.#breaker.state);
  }

  /** Runs `call` under the policy; transient failures surface as StripeUnavailableError. */
  async run<T>(call: (attempt: StripeAttempt) => Promise<T>): Promise<T> {
    const startedAt = Date.now();
    let attempts = 0;
    try {
      const result = await this.#run((attempt) => {
        attempts += 1;
        return call(attempt);
      });
      this.#observer?.call(Date.now() - startedAt, 'ok');
      return result;
    } catch (error) {
      // Refused by an open breaker before any request: a rejection. The call whose own
      // failures opened it (its retry then refused) was a call, and failed.
      if (
        error instanceof StripeUnavailableError &&
        error.reason === 'breaker-open' &&
        attempts === 0
      ) {
        this.#observer?.circuitRejected();
      } else {
        const outcome = error instanceof StripeUnavailableError ? 'unavailable' : 'error';
        this.#observer?.call(Date.now() - startedAt, outcome);
      }
      throw error;
    }
  }

  async #run<T>(call: (attempt: StripeAttempt) => Promise<T>): Promise<T> {
    const options = this.#options;
    const now = Date.now();
    const deadlineAt = Math.min(now + options.deadlineMs, requestDeadline.getStore() ?? Infinity);
    if (deadlineAt <= now) {
      // The request's time is spent: not a call Stripe failed, so not one the breaker counts.
      throw new StripeUnavailableError('deadline', options.defaultRetryAfterSeconds);
    }
    const retries = retry(handleWhen(isRetriedStripeError), {
      maxAttempts: options.maxAttempts - 1, // cockatiel counts retries, not attempts
      backoff: new ExponentialBackoff({
        initialDelay: options.initialBackoffMs,
        maxDelay: options.maxBackoffMs,
      }),
    });
    // Aggressive: the caller is answered at the deadline even if a request still hangs
    // (that request ends by its own timeout, cut to the same deadline).
    const deadline = timeout(deadlineAt - now, TimeoutStrategy.Aggressive);
    try {
      return await wrap(deadline, retries, this.#breaker).execute(({ attempt }) =>
        call({
          attempt: attempt + 1,
          timeoutMs: Math.max(1, Math.min(options.attemptTimeoutMs, deadlineAt - Date.now())),
        }),
      );
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        const reopensIn = this.#openedAt + options.breakerOpenMs - Date.now();
        throw new StripeUnavailableError('breaker-open', Math.max(1, Math.ceil(reopensIn / 1000)), {
          cause: error,
        });
      }
      if (error instanceof TaskCancelledError) {
        throw new StripeUnavailableError('deadline', options.defaultRetryAfterSeconds, {
          cause: error,
        });
      }
      if (isRetriedStripeError(error)) {
        throw new StripeUnavailableError('retries-exhausted', this.#retryAfter(error), {
          cause: error,
        });
      }
      throw error;
    }
  }

  // Stripe's own Retry-After (on a 429) when it gives one, within reason.
  #retryAfter(error: unknown): number {
    const header = (error as InstanceType<typeof Stripe.errors.StripeError>).headers?.[
      'retry-after'
    ];
    const seconds = Number(header);
    return Number.isFinite(seconds) && seconds > 0 && seconds <= 600
      ? Math.ceil(seconds)
      : this.#options.defaultRetryAfterSeconds;
  }
}

/** cockatiel's state as the policy names it (an isolated breaker refuses calls: open). */
function circuitState(state: CircuitState): StripeCircuitState {
  switch (state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.HalfOpen:
      return 'half-open';
    default:
      return 'open';
  }
}
