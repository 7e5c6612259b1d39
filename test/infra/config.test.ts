import { Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { createBillingApp } from '../../lib/billing-app.ts';
import {
  alarmEmailFromContext,
  ConfigError,
  DEFAULT_LEDGER_RETENTION_DAYS,
  ledgerRetentionDaysFromContext,
  priceTierMapFromContext,
  readBillingConfig,
} from '../../lib/config.ts';
import { visibilityTimeoutFor } from '../../lib/stripe-event-queue.ts';

describe('priceTierMapFromContext', () => {
  it('accepts an object (cdk.json) or a JSON string (-c on the CLI)', () => {
    expect(priceTierMapFromContext({ price_a: 'gold', price_b: 'free' })).toEqual({
      price_a: 'gold',
      price_b: 'free',
    });
    expect(priceTierMapFromContext('{"price_a":"silver"}')).toEqual({ price_a: 'silver' });
  });

  it('defaults to an empty map', () => {
    expect(priceTierMapFromContext(undefined)).toEqual({});
    expect(priceTierMapFromContext(null)).toEqual({});
  });

  it.each([
    [{ price_a: 'platinum' }, /price_a.*"platinum".*free, bronze, silver, gold/],
    [{ price_a: 3 }, /price_a/],
    ['{not json', /JSON object/],
    [['gold'], /JSON object/],
    ['"gold"', /JSON object/],
  ])('rejects %j naming the context key and the fix', (value, detail) => {
    const error = captureError(() => priceTierMapFromContext(value));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^Invalid CDK context "priceTierMap": /);
    expect(error.message).toMatch(detail);
    expect(error.message).toContain(`-c priceTierMap='{"price_123":"gold"}'`);
  });
});

describe('alarmEmailFromContext and ledgerRetentionDaysFromContext', () => {
  it('accept valid values and defaults', () => {
    expect(alarmEmailFromContext(undefined)).toBeUndefined();
    expect(alarmEmailFromContext(' oncall@example.com ')).toBe('oncall@example.com');
    expect(ledgerRetentionDaysFromContext(undefined)).toBe(DEFAULT_LEDGER_RETENTION_DAYS);
    expect(ledgerRetentionDaysFromContext('30')).toBe(30);
    expect(ledgerRetentionDaysFromContext(365)).toBe(365);
  });

  it.each([['not-an-email'], [42]])('rejects alarmEmail %j', (value) => {
    expect(() => alarmEmailFromContext(value)).toThrow(/Invalid CDK context "alarmEmail"/);
  });

  it.each([[0], [1.5], ['ten'], [-3], [100_000]])('rejects ledgerRetentionDays %j', (value) => {
    expect(() => ledgerRetentionDaysFromContext(value)).toThrow(
      /Invalid CDK context "ledgerRetentionDays"/,
    );
  });

  it('readBillingConfig reads every key through the given lookup', () => {
    const context: Record<string, unknown> = {
      priceTierMap: { p: 'bronze' },
      alarmEmail: 'a@b.co',
      ledgerRetentionDays: 7,
    };
    expect(readBillingConfig((key) => context[key])).toEqual({
      priceTierMap: { p: 'bronze' },
      alarmEmail: 'a@b.co',
      ledgerRetentionDays: 7,
    });
  });
});

describe('synth with invalid context', () => {
  it('fails with the clear priceTierMap message', () => {
    expect(() =>
      createBillingApp({ bundle: false, validate: false, context: { priceTierMap: { p: 'vip' } } }),
    ).toThrow(
      /Invalid CDK context "priceTierMap": .*p maps to "vip", expected one of free, bronze, silver, gold/,
    );
  });
});

describe('visibilityTimeoutFor', () => {
  it('is six times the consumer timeout plus the batching window', () => {
    expect(visibilityTimeoutFor(Duration.seconds(30), Duration.seconds(2)).toSeconds()).toBe(182);
    expect(visibilityTimeoutFor(Duration.minutes(1), Duration.seconds(0)).toSeconds()).toBe(360);
  });
});

function captureError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`threw a non-Error: ${String(error)}`);
  }
  throw new Error('expected an error');
}
