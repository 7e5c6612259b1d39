/**
 * The daily credit allowance of each tier (DESIGN §8.2). One parser for the CDK
 * context (synth) and the CREDIT_ALLOWANCES env (handlers), so a value that deploys
 * is a value the functions accept.
 */
import { parseTierNumbers } from '../shared/config-values.ts';
import type { Tier } from '../shared/tiers.ts';
import { periodAt } from './refresh-slot.ts';

export type CreditAllowances = Readonly<Record<Tier, number>>;

export const DEFAULT_CREDIT_ALLOWANCES: CreditAllowances = {
  free: 1,
  bronze: 3,
  silver: 5,
  gold: 10,
};

/** Most credits a day a tier may grant: bounds a typo (10000 for 10) from reaching users. */
export const MAX_DAILY_CREDITS = 1_000;

/** The credit fields of a user's refresh: the balance is the tier's allowance, for the period of `at`. */
export interface CreditGrant {
  period: string;
  balance: number;
  allowance: number;
  at: number;
}

/**
 * A new user's first refresh, granted when the profile is created (DESIGN §8.2: every
 * user with a profile is refreshed each day): without it, a user whose slot has passed
 * for today would wait until tomorrow's slot with no credits. It counts as the day's
 * refresh (the slot's planner skips the user), and only a new profile gets it.
 */
export function firstRefresh(tier: Tier, at: number, allowances: CreditAllowances): CreditGrant {
  return { period: periodAt(at), balance: allowances[tier], allowance: allowances[tier], at };
}

/**
 * The credits an upgrade adds on the day it was already refreshed: the new tier's
 * allowance less the one granted, never negative (a downgrade waits for the next
 * refresh). So a new subscriber gets the paid allowance on day one whether the profile
 * was first written at the free tier (customer and checkout events first) or at the paid
 * one (the events in one batch, or reordered), and an upgrade counts at once.
 */
export function upgradeTopUp(
  tier: Tier,
  at: number,
  refreshed: { period: string; allowance: number },
  allowances: CreditAllowances,
): number {
  if (refreshed.period !== periodAt(at)) return 0;
  return Math.max(0, allowances[tier] - refreshed.allowance);
}

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
