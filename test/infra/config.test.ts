import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { EnvConfigError, ledgerRetentionDaysEnv, readEnv } from '../../functions/commons/env.ts';
import { ENV } from '../../functions/commons/env-names.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../functions/core/penalties/habits.ts';
import {
  ASSESSMENT_DEADLINE_HOUR,
  LEDGER_RETENTION_DAYS,
} from '../../functions/core/shared/config-values.ts';
import { type BillingApp, createBillingApp } from '../../lib/billing-app.ts';
import {
  alarmEmailFromContext,
  assessmentDeadlineHourFromContext,
  ConfigError,
  creditAllowancesFromContext,
  DEFAULT_LEDGER_RETENTION_DAYS,
  freeHabitLimitsFromContext,
  ledgerRetentionDaysFromContext,
  priceTierMapFromContext,
  readBillingConfig,
  stripeApiUrlFromContext,
  stripeModeFromContext,
} from '../../lib/config.ts';
import { visibilityTimeoutFor } from '../../lib/event-family-queue.ts';
import { tempOutdir } from '../helpers/temp-outdir.ts';
import { CONSUMER_ENTRY, ENTRY, envOf, functionByEntry, synthTemplates } from './synth.ts';

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

  it.each([[0], [1], [2], [3], [1.5], ['ten'], [-3], [3651], [100_000]])(
    'rejects ledgerRetentionDays %j',
    (value) => {
      expect(() => ledgerRetentionDaysFromContext(value)).toThrow(
        /Invalid CDK context "ledgerRetentionDays"/,
      );
    },
  );

  it('readBillingConfig reads every key through the given lookup', () => {
    const context: Record<string, unknown> = {
      priceTierMap: { p: 'bronze' },
      alarmEmail: 'a@b.co',
      ledgerRetentionDays: 7,
      creditAllowances: '{"gold":12}',
    };
    expect(readBillingConfig((key) => context[key])).toEqual({
      priceTierMap: { p: 'bronze' },
      alarmEmail: 'a@b.co',
      ledgerRetentionDays: 7,
      creditAllowances: { free: 1, bronze: 3, silver: 5, gold: 12 },
      freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
      assessmentDeadlineHour: ASSESSMENT_DEADLINE_HOUR.default,
      appBackendRoleArns: [],
      operatorRoleArns: [],
    });
    const penalties: Record<string, unknown> = {
      freeHabitLimits: '{"gold":60}',
      assessmentDeadlineHour: '9',
      stripeApiUrl: 'https://stripe-proxy.example.com/',
    };
    expect(readBillingConfig((key) => penalties[key])).toMatchObject({
      freeHabitLimits: { ...DEFAULT_FREE_HABIT_LIMITS, gold: 60 },
      assessmentDeadlineHour: 9,
      stripeApiUrl: 'https://stripe-proxy.example.com',
    });
    expect(readBillingConfig(() => undefined)).not.toHaveProperty('stripeApiUrl');
  });

  it('reads stripeMode live or test, refuses anything else, and gives the webhook STRIPE_LIVEMODE', () => {
    expect(stripeModeFromContext('live')).toBe('live');
    expect(stripeModeFromContext('test')).toBe('test');
    expect(stripeModeFromContext(undefined)).toBeUndefined();
    expect(() => stripeModeFromContext('production')).toThrow(
      /"stripeMode": expected "live" or "test"/,
    );
    const env = (context?: Record<string, unknown>) => {
      const templates = synthTemplates(context);
      const [, webhook] = functionByEntry(templates.service, ENTRY.webhook);
      return envOf(webhook);
    };
    expect(env({ stripeMode: 'live' }).STRIPE_LIVEMODE).toBe('true');
    expect(env({ stripeMode: 'test' }).STRIPE_LIVEMODE).toBe('false');
    expect(env().STRIPE_LIVEMODE).toBeUndefined();
  });

  it.each([
    [{ platinum: 3 }, /unknown tier "platinum"/],
    [{ gold: -1 }, /gold: expected a whole number/],
    [{ gold: 2.5 }, /gold: expected a whole number/],
    ['{gold: 3', /expected a JSON object/],
  ])('rejects creditAllowances %j at synth, naming the key', (value, reason) => {
    expect(() => creditAllowancesFromContext(value)).toThrow(
      /Invalid CDK context "creditAllowances"/,
    );
    expect(() => creditAllowancesFromContext(value)).toThrow(reason);
  });
});

describe('penalties context: freeHabitLimits, assessmentDeadlineHour, stripeApiUrl', () => {
  it('default to the handlers’ defaults, and stripeApiUrl to none (Stripe’s own)', () => {
    expect(freeHabitLimitsFromContext(undefined)).toEqual(DEFAULT_FREE_HABIT_LIMITS);
    expect(assessmentDeadlineHourFromContext(undefined)).toBe(ASSESSMENT_DEADLINE_HOUR.default);
    expect(stripeApiUrlFromContext(undefined)).toBeUndefined();
    expect(stripeApiUrlFromContext('')).toBeUndefined();
  });

  it('accept objects or JSON (cdk.json or -c), numbers or numeric strings, https base URLs', () => {
    expect(freeHabitLimitsFromContext({ gold: 60 })).toEqual({
      ...DEFAULT_FREE_HABIT_LIMITS,
      gold: 60,
    });
    expect(freeHabitLimitsFromContext('{"free":0}')).toEqual({
      ...DEFAULT_FREE_HABIT_LIMITS,
      free: 0,
    });
    expect(assessmentDeadlineHourFromContext(1)).toBe(1);
    expect(assessmentDeadlineHourFromContext('23')).toBe(23);
    expect(stripeApiUrlFromContext('https://stripe-proxy.example.com')).toBe(
      'https://stripe-proxy.example.com',
    );
    expect(stripeApiUrlFromContext(' https://stripe-proxy.example.com:8443/ ')).toBe(
      'https://stripe-proxy.example.com:8443',
    );
  });

  it.each([
    [{ platinum: 3 }, /unknown tier "platinum"/],
    [{ gold: -1 }, /gold: expected a whole number/],
    [{ gold: 91 }, /gold: expected a whole number of free habits from 0 to 90/],
    [{ silver: 1.5 }, /silver: expected a whole number/],
    ['{gold: 3', /expected a JSON object/],
    [['gold'], /expected a JSON object/],
  ])('rejects freeHabitLimits %j at synth, naming the key and an example', (value, reason) => {
    const error = captureError(() => freeHabitLimitsFromContext(value));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^Invalid CDK context "freeHabitLimits": /);
    expect(error.message).toMatch(reason);
    expect(error.message).toContain(`-c freeHabitLimits='{"gold":60}'`);
  });

  it.each([[0], [24], [-1], [6.5], ['six'], ['25'], [true]])(
    'rejects assessmentDeadlineHour %j at synth, naming the key',
    (value) => {
      const error = captureError(() => assessmentDeadlineHourFromContext(value));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toMatch(/^Invalid CDK context "assessmentDeadlineHour": /);
      expect(error.message).toContain('1 to 23');
    },
  );

  it.each([
    ['http://stripe-proxy.example.com', /https/],
    // The handlers accept plain http on loopback for the local fake Stripe; a deployed stack does not.
    ['http://localhost:12111', /must be https/],
    ['https://stripe-proxy.example.com/v1', /no path, query or credentials/],
    ['https://user:pw@stripe-proxy.example.com', /no path, query or credentials/],
    ['https://stripe-proxy.example.com/?a=1', /no path, query or credentials/],
    ['not a url', /must be a URL/],
    [42, /expected an https base URL/],
  ])('rejects stripeApiUrl %j at synth, naming the key', (value, reason) => {
    const error = captureError(() => stripeApiUrlFromContext(value));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^Invalid CDK context "stripeApiUrl": /);
    expect(error.message).toMatch(reason);
  });

  it.each([
    [{ freeHabitLimits: { vip: 1 } }, /Invalid CDK context "freeHabitLimits"/],
    [{ assessmentDeadlineHour: 0 }, /Invalid CDK context "assessmentDeadlineHour"/],
    [{ stripeApiUrl: 'http://stripe.example.com' }, /Invalid CDK context "stripeApiUrl"/],
  ])('synth with %j fails with the clear message', (context, message) => {
    expect(() => withApp(context, () => undefined)).toThrow(message);
  });
});

describe('appBackendRoleArns and operatorRoleArns', () => {
  const app = 'arn:aws:iam::123456789012:role/app-backend';
  const ops = 'arn:aws:iam::123456789012:role/ops/oncall';
  const read = (context: Record<string, unknown>) => readBillingConfig((key) => context[key]);

  it('take a JSON array (-c), an array (cdk.json) or a comma list; absent is none', () => {
    expect(read({})).toMatchObject({ appBackendRoleArns: [], operatorRoleArns: [] });
    expect(
      read({ appBackendRoleArns: JSON.stringify([app]), operatorRoleArns: [ops] }),
    ).toMatchObject({ appBackendRoleArns: [app], operatorRoleArns: [ops] });
    expect(read({ operatorRoleArns: `${ops}, ${ops.replace('oncall', 'lead')}` })).toMatchObject({
      operatorRoleArns: [ops, ops.replace('oncall', 'lead')],
    });
  });

  it('refuse anything but role ARNs, and roles of two accounts, naming the key', () => {
    expect(() => read({ appBackendRoleArns: 'arn:aws:iam::123456789012:user/x' })).toThrow(
      /Invalid CDK context "appBackendRoleArns"/,
    );
    expect(() => read({ operatorRoleArns: '{"role":"x"}' })).toThrow(
      /Invalid CDK context "operatorRoleArns"/,
    );
    expect(() =>
      read({
        appBackendRoleArns: [app],
        operatorRoleArns: [ops.replace('123456789012', '1'.repeat(12))],
      }),
    ).toThrow(/"appBackendRoleArns" .* and "operatorRoleArns" .* are in different accounts/);
  });

  it('fail synth with the same one-line message', () => {
    expect(() =>
      createBillingApp({
        bundle: false,
        validate: false,
        outdir: tempOutdir(),
        context: { appBackendRoleArns: '["app-backend"]' },
      }),
    ).toThrow(ConfigError);
  });
});

describe('synth with invalid context', () => {
  it('fails with the clear priceTierMap message', () => {
    expect(() =>
      createBillingApp({
        bundle: false,
        validate: false,
        outdir: tempOutdir(),
        context: { priceTierMap: { p: 'vip' } },
      }),
    ).toThrow(
      /Invalid CDK context "priceTierMap": .*p maps to "vip", expected one of free, bronze, silver, gold/,
    );
  });
});

/** Builds the app (no bundling) with `context` in a throw-away cloud assembly directory. */
function withApp<T>(context: Record<string, unknown>, use: (app: BillingApp) => T): T {
  const outdir = mkdtempSync(join(tmpdir(), 'billing-config-test-'));
  try {
    return use(createBillingApp({ bundle: false, validate: false, outdir, context }));
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** LEDGER_RETENTION_DAYS of every consumer, as synth writes it into the template. */
function consumersRetentionEnv(app: BillingApp): string[] {
  const service = Template.fromStack(app.serviceStack);
  return Object.values(CONSUMER_ENTRY).map((entry) =>
    String(envOf(functionByEntry(service, entry)[1])[ENV.ledgerRetentionDays]),
  );
}

/** The consumers' own parse of LEDGER_RETENTION_DAYS (functions/commons/env.ts). */
const consumerEnvSchema = z.object({ [ENV.ledgerRetentionDays]: ledgerRetentionDaysEnv() });

type Verdict = { accepted: true; days: number } | { accepted: false };

function synthVerdict(value: unknown): Verdict {
  try {
    return withApp({ ledgerRetentionDays: value }, (app) => {
      const written = consumersRetentionEnv(app);
      // Both consumers get the same value, whatever it is.
      expect(new Set(written).size).toBe(1);
      return { accepted: true, days: Number(written[0]) };
    });
  } catch (error) {
    if (error instanceof ConfigError) return { accepted: false };
    throw error;
  }
}

function handlerVerdict(value: string | undefined): Verdict {
  try {
    const env = readEnv(consumerEnvSchema, { [ENV.ledgerRetentionDays]: value });
    return { accepted: true, days: env[ENV.ledgerRetentionDays] };
  } catch (error) {
    if (error instanceof EnvConfigError) return { accepted: false };
    throw error;
  }
}

describe('ledger retention: one rule, 4 to 3650 days, for synth and handlers', () => {
  it('the rule is the one the handlers share', () => {
    expect(LEDGER_RETENTION_DAYS).toMatchObject({ min: 4, max: 3650 });
  });

  it.each([1, 2, 3, '3'])('synth rejects %j days (shorter than Stripe retries)', (value) => {
    // createBillingApp({ bundle: false, context: { ledgerRetentionDays: value } }), in a temp outdir.
    const error = captureError(() => withApp({ ledgerRetentionDays: value }, () => undefined));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^Invalid CDK context "ledgerRetentionDays": /);
    expect(error.message).toContain('4 to 3650');
  });

  it.each([4, 3650, '4', '3650'])(
    'synth accepts %j days and hands it to both consumers',
    (value) => {
      const written = withApp({ ledgerRetentionDays: value }, consumersRetentionEnv);
      expect(written).toEqual(Object.values(CONSUMER_ENTRY).map(() => String(Number(value))));
    },
  );

  it('defaults to 90 days at synth when the key is absent', () => {
    expect(withApp({}, consumersRetentionEnv)).toEqual(
      Object.values(CONSUMER_ENTRY).map(() => String(DEFAULT_LEDGER_RETENTION_DAYS)),
    );
  });

  it('the consumers accept exactly the values synth accepts, and read the days synth wrote', () => {
    const values = [
      '0',
      '1',
      '3',
      '4',
      '5',
      '90',
      '3650',
      '3651',
      '1.5',
      '4.5',
      '-4',
      'x',
      '',
      ' ',
      ' 30 ',
      '1e3',
    ];
    const verdicts = values.map((value) => ({
      value,
      synth: synthVerdict(value),
      handler: handlerVerdict(value),
    }));
    for (const { value, synth, handler } of verdicts) {
      expect(handler.accepted, `verdicts on ${JSON.stringify(value)}`).toBe(synth.accepted);
      if (synth.accepted && handler.accepted) {
        expect(handler.days, `days of ${JSON.stringify(value)}`).toBe(synth.days);
        // What synth wrote into the template is itself a value the consumer accepts.
        expect(handlerVerdict(String(synth.days))).toEqual(synth);
      }
    }
    // The set exercises both verdicts, on both sides of each bound.
    const accepted = verdicts.filter((v) => v.synth.accepted).map((v) => v.value);
    expect(accepted).toEqual(expect.arrayContaining(['4', '3650', '90', '']));
    expect(accepted).not.toContain('3');
    expect(accepted).not.toContain('3651');
    expect(accepted).not.toContain('0');
  });

  it('a missing variable is the default for the consumers as it is for synth', () => {
    expect(handlerVerdict(undefined)).toEqual({
      accepted: true,
      days: DEFAULT_LEDGER_RETENTION_DAYS,
    });
  });
});

describe('visibilityTimeoutFor', () => {
  it('is six times the consumer timeout plus the batching window', () => {
    expect(
      visibilityTimeoutFor({
        timeout: Duration.seconds(30),
        maxBatchingWindow: Duration.seconds(2),
      }).toSeconds(),
    ).toBe(182);
    expect(
      visibilityTimeoutFor({
        timeout: Duration.minutes(1),
        maxBatchingWindow: Duration.seconds(0),
      }).toSeconds(),
    ).toBe(360);
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
