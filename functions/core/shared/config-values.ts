/**
 * Validators of the configuration values that both synth (lib/config.ts, from CDK
 * context) and the handlers (from env) read. One rule each, so a value synth accepts
 * is a value the functions accept: a mismatch would deploy and then fail every batch.
 */

/** A configuration value is invalid; the message names the rule (callers add the key). */
export class ConfigValueError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigValueError';
  }
}

/**
 * Ledger retention: Stripe retries a delivery for 3 days, so a ledger page must
 * outlive that (at least 4 days) or a late retry could look new to an operator's
 * replay; at most ten years.
 */
export const LEDGER_RETENTION_DAYS = { min: 4, max: 3650, default: 90 } as const;

/** Parses a retention in days from a number or a numeric string; absent or '' gives the default. */
export function parseLedgerRetentionDays(value: unknown): number {
  if (value === undefined || value === null || value === '') return LEDGER_RETENTION_DAYS.default;
  const days = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  const { min, max } = LEDGER_RETENTION_DAYS;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < min || days > max) {
    throw new ConfigValueError(
      `expected a whole number of days from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return days;
}
