import { describe, expect, it } from 'vitest';
import { penaltyAmountProblem } from '../../../functions/core/penalties/habits.ts';
import {
  minimumChargeOf,
  STRIPE_MINIMUM_CHARGE,
} from '../../../functions/core/shared/stripe-amounts.ts';

describe('penaltyAmountProblem', () => {
  it.each([
    ['usd', 50],
    ['eur', 50],
    ['gbp', 30],
    ['jpy', 50],
    ['huf', 17_500],
    ['mxn', 1_000],
  ])('takes %s from %i minor units and refuses one less, naming the minimum', (currency, min) => {
    expect(penaltyAmountProblem({ penaltyAmount: min, currency, free: false })).toBeNull();
    expect(penaltyAmountProblem({ penaltyAmount: min - 1, currency, free: false })).toBe(
      `must be at least ${min} (Stripe's smallest charge in ${currency}, in minor units) for a habit that is not free`,
    );
  });

  it('asks only for an amount above 0 in a currency whose minimum Stripe does not publish', () => {
    expect(minimumChargeOf('isk')).toBe(1);
    expect(penaltyAmountProblem({ penaltyAmount: 1, currency: 'isk', free: false })).toBeNull();
    expect(penaltyAmountProblem({ penaltyAmount: 0, currency: 'isk', free: false })).toBe(
      'must be above 0 for a habit that is not free',
    );
  });

  it('takes any amount for a free habit, which never costs a penalty', () => {
    expect(penaltyAmountProblem({ penaltyAmount: 0, currency: 'usd', free: true })).toBeNull();
    expect(penaltyAmountProblem({ penaltyAmount: 10, currency: 'usd', free: true })).toBeNull();
  });

  it('knows no minimum under an inherited property name', () => {
    expect(minimumChargeOf('constructor')).toBe(1);
    expect(Object.keys(STRIPE_MINIMUM_CHARGE).every((code) => /^[a-z]{3}$/.test(code))).toBe(true);
  });
});
