/**
 * Validators of the configuration values that both synth (lib/config.ts, from CDK
 * context) and the handlers (from env) read. One rule each, so a value synth accepts
 * is a value the functions accept: a mismatch would deploy and then fail every batch.
 */
import { isTier, TIERS, type Tier } from './tiers.ts';

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

/**
 * Parses a whole number per tier (e.g. daily credits, free habits) from a JSON string or
 * an object: every key a tier, every value a whole number from 0 to `max`; tiers left
 * out keep their default. Absent or '' gives the defaults. `noun` names the value in
 * messages ("daily credits").
 */
export function parseTierNumbers(
  value: unknown,
  spec: { defaults: Readonly<Record<Tier, number>>; max: number; noun: string },
): Readonly<Record<Tier, number>> {
  if (value === undefined || value === null || value === '') return spec.defaults;
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw new ConfigValueError(`expected a JSON object of tier to ${spec.noun}`, {
        cause: error,
      });
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigValueError(`expected a JSON object of tier to ${spec.noun}`);
  }
  const numbers: Record<Tier, number> = { ...spec.defaults };
  for (const [tier, count] of Object.entries(parsed)) {
    if (!isTier(tier)) {
      throw new ConfigValueError(
        `unknown tier ${JSON.stringify(tier)} (expected ${TIERS.join(', ')})`,
      );
    }
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > spec.max) {
      throw new ConfigValueError(
        `${tier}: expected a whole number of ${spec.noun} from 0 to ${spec.max}, got ${JSON.stringify(count)}`,
      );
    }
    numbers[tier] = count;
  }
  return numbers;
}

/**
 * The UTC hour (1-23) by which yesterday's penalty assessment must be complete; past
 * it, an incomplete assessment is reported overdue. Absent or '' gives the default, 6.
 */
export const ASSESSMENT_DEADLINE_HOUR = { min: 1, max: 23, default: 6 } as const;

export function parseAssessmentDeadlineHour(value: unknown): number {
  if (value === undefined || value === null || value === '')
    return ASSESSMENT_DEADLINE_HOUR.default;
  const hour = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  const { min, max } = ASSESSMENT_DEADLINE_HOUR;
  if (typeof hour !== 'number' || !Number.isInteger(hour) || hour < min || hour > max) {
    throw new ConfigValueError(
      `expected a whole UTC hour from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return hour;
}
