/** The daily allowance per tier, from config: defaults, overrides and what is refused. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CREDIT_ALLOWANCES,
  MAX_DAILY_CREDITS,
  parseCreditAllowances,
} from '../../../functions/core/credits/allowances.ts';
import { ConfigValueError } from '../../../functions/core/shared/config-values.ts';

describe('parseCreditAllowances', () => {
  it('defaults to free 1, bronze 3, silver 5, gold 10', () => {
    expect(DEFAULT_CREDIT_ALLOWANCES).toEqual({ free: 1, bronze: 3, silver: 5, gold: 10 });
    for (const absent of [undefined, null, '']) {
      expect(parseCreditAllowances(absent)).toEqual(DEFAULT_CREDIT_ALLOWANCES);
    }
    expect(parseCreditAllowances('{}')).toEqual(DEFAULT_CREDIT_ALLOWANCES);
  });

  it('takes a partial override; the tiers left out keep their default', () => {
    expect(parseCreditAllowances('{"gold":12}')).toEqual({
      free: 1,
      bronze: 3,
      silver: 5,
      gold: 12,
    });
    expect(parseCreditAllowances({ free: 0, silver: 7 })).toEqual({
      free: 0,
      bronze: 3,
      silver: 7,
      gold: 10,
    });
    expect(parseCreditAllowances({ gold: MAX_DAILY_CREDITS }).gold).toBe(1_000);
  });

  it.each([
    ['an unknown tier', '{"platinum":1}', /unknown tier "platinum"/],
    ['a tier in the wrong case', '{"Gold":1}', /unknown tier "Gold"/],
    ['a negative allowance', '{"gold":-1}', /gold: expected a whole number/],
    ['a fraction', '{"gold":1.5}', /gold: expected a whole number/],
    ['over 1000', '{"gold":1001}', /from 0 to 1000, got 1001/],
    ['a number as a string', '{"gold":"10"}', /gold: expected a whole number/],
    ['null', '{"gold":null}', /gold: expected a whole number/],
    ['bad JSON', '{gold', /expected a JSON object/],
    ['an array', '[1]', /expected a JSON object/],
    ['a bare number', '5', /expected a JSON object/],
  ])('refuses %s', (_name, value, message) => {
    expect(() => parseCreditAllowances(value)).toThrow(ConfigValueError);
    expect(() => parseCreditAllowances(value)).toThrow(message);
  });
});
