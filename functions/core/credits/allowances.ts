/**
 * The daily credit allowance of each tier (DESIGN §8.2). One parser for the CDK
 * context (synth) and the CREDIT_ALLOWANCES env (handlers), so a value that deploys
 * is a value the functions accept.
 */
import { parseTierNumbers } from '../shared/config-values.ts';
import type { Tier } from '../shared/tiers.ts';

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
  return parseTierNumbers(value, {
    defaults: DEFAULT_CREDIT_ALLOWANCES,
    max: MAX_DAILY_CREDITS,
    noun: 'daily credits',
  });
}
