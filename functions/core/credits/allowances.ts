/**
 * The daily credit allowance of each tier (DESIGN §8.2). One parser for the CDK
 * context (synth) and the CREDIT_ALLOWANCES env (handlers), so a value that deploys
 * is a value the functions accept.
 */
import { ConfigValueError } from '../shared/config-values.ts';
import { isTier, TIERS, type Tier } from '../shared/tiers.ts';

export type CreditAllowances = Readonly<Record<Tier, number>>;

export const DEFAULT_CREDIT_ALLOWANCES: CreditAllowances = {
  free: 1,
  bronze: 3,
  silver: 5,
  gold: 10,
};

/** Most credits a day a tier may grant: bounds a typo (10000 for 10) from reaching users. */
export const MAX_DAILY_CREDITS = 1_000;

/**
 * Parses allowances from a JSON string or an object: every key a tier, every value a
 * whole number 0–1000; tiers left out keep their default. Absent or '' gives the defaults.
 */
export function parseCreditAllowances(value: unknown): CreditAllowances {
  if (value === undefined || value === null || value === '') return DEFAULT_CREDIT_ALLOWANCES;
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw new ConfigValueError('expected a JSON object of tier to daily credits', {
        cause: error,
      });
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigValueError('expected a JSON object of tier to daily credits');
  }
  const allowances: Record<Tier, number> = { ...DEFAULT_CREDIT_ALLOWANCES };
  for (const [tier, credits] of Object.entries(parsed)) {
    if (!isTier(tier)) {
      throw new ConfigValueError(
        `unknown tier ${JSON.stringify(tier)} (expected ${TIERS.join(', ')})`,
      );
    }
    if (
      typeof credits !== 'number' ||
      !Number.isInteger(credits) ||
      credits < 0 ||
      credits > MAX_DAILY_CREDITS
    ) {
      throw new ConfigValueError(
        `${tier}: expected a whole number of credits from 0 to ${MAX_DAILY_CREDITS}, got ${JSON.stringify(credits)}`,
      );
    }
    allowances[tier] = credits;
  }
  return allowances;
}
