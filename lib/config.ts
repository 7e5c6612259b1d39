/**
 * Deploy-time configuration read from CDK context (`cdk.json` or `-c key=value`),
 * validated at synth so a bad value fails `cdk synth` with one clear line instead of
 * reaching a Lambda that would fail at its first event.
 */

import { parseStripeApiUrl } from '../functions/adapters/stripe/stripe-client.ts';
import {
  type CreditAllowances,
  parseCreditAllowances,
} from '../functions/core/credits/allowances.ts';
import { type FreeHabitLimits, parseFreeHabitLimits } from '../functions/core/penalties/habits.ts';
import {
  ConfigValueError,
  LEDGER_RETENTION_DAYS,
  parseAssessmentDeadlineHour,
  parseLedgerRetentionDays,
} from '../functions/core/shared/config-values.ts';
import { type PriceTierMap, parsePriceTierMap, TIERS } from '../functions/core/shared/tiers.ts';

/** CDK context keys this app reads. */
export const CONTEXT_KEYS = {
  /** JSON object Stripe price id -> tier (free, bronze, silver, gold). Default `{}`. */
  priceTierMap: 'priceTierMap',
  /** Optional e-mail address subscribed to the alarm topic. */
  alarmEmail: 'alarmEmail',
  /** JSON object tier -> daily credits, e.g. {"gold":12}; tiers left out keep their default. */
  creditAllowances: 'creditAllowances',
  /** Days a ledger page is kept before TTL removes it. Default 90, 4 to 3650. */
  ledgerRetentionDays: 'ledgerRetentionDays',
  /** JSON object tier -> active free habits allowed, e.g. {"gold":60}; tiers left out keep their default. */
  freeHabitLimits: 'freeHabitLimits',
  /** UTC hour (1-23) by which yesterday's penalty assessment must be complete. Default 6. */
  assessmentDeadlineHour: 'assessmentDeadlineHour',
  /** Optional https base URL of the Stripe API (a proxy); default Stripe's own. */
  stripeApiUrl: 'stripeApiUrl',
  /** `live` or `test`: the Stripe mode the webhook applies events of. Unset: no check (warned at synth). */
  stripeMode: 'stripeMode',
  /** JSON array of IAM role ARNs of the app backend: given invoke rights on the user routes. */
  appBackendRoleArns: 'appBackendRoleArns',
  /** JSON array of IAM role ARNs of operators: given invoke rights on the admin and report routes. */
  operatorRoleArns: 'operatorRoleArns',
} as const;

export const DEFAULT_LEDGER_RETENTION_DAYS = LEDGER_RETENTION_DAYS.default;

/** A CDK context value is missing or invalid; the message names the key and the fix. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

export interface BillingConfig {
  priceTierMap: PriceTierMap;
  creditAllowances: CreditAllowances;
  alarmEmail?: string;
  ledgerRetentionDays: number;
  freeHabitLimits: FreeHabitLimits;
  assessmentDeadlineHour: number;
  /** A base URL (origin) such as `https://stripe-proxy.example.com`; absent: Stripe's own. */
  stripeApiUrl?: string;
  /** The Stripe mode this stack serves; absent: events of both modes are applied. */
  stripeMode?: 'live' | 'test';
  appBackendRoleArns: string[];
  operatorRoleArns: string[];
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;

/** Validates a list of IAM role ARNs (JSON array, or an array from cdk.json); absent: none. */
export function roleArnsFromContext(key: string, value: unknown): string[] {
  if (value === undefined || value === null || value === '') return [];
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      list = value.split(',').map((part) => part.trim());
    }
  }
  if (!Array.isArray(list) || list.some((arn) => typeof arn !== 'string' || !ROLE_ARN.test(arn))) {
    throw new ConfigError(
      `Invalid CDK context "${key}": expected IAM role ARNs such as ["arn:aws:iam::123456789012:role/app-backend"], got ${JSON.stringify(value)}.`,
    );
  }
  return list as string[];
}

/**
 * The app backend's and the operators' roles must all be of one account, the one the
 * stack is deployed to: an HTTP API has no resource policy, so IAM authorises callers of
 * its own account only. The account is known at deploy time only, so synth checks that
 * the roles agree with each other (and ApiAccess with the stack's account when it is set).
 */
export function checkRoleAccounts(roles: Record<string, readonly string[]>): void {
  const accounts = new Map<string, string>();
  for (const [key, arns] of Object.entries(roles)) {
    for (const arn of arns) accounts.set(arn.split(':')[4] ?? '', `"${key}" ${arn}`);
  }
  if (accounts.size > 1) {
    throw new ConfigError(
      `Invalid CDK context: the roles of ${[...accounts.values()].join(' and ')} are in different accounts; every role that calls the API must be in the account it is deployed to.`,
    );
  }
}

/** Validates the optional `stripeMode` context value. */
export function stripeModeFromContext(value: unknown): 'live' | 'test' | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (value === 'live' || value === 'test') return value;
  throw new ConfigError(
    `Invalid CDK context "${CONTEXT_KEYS.stripeMode}": expected "live" or "test", got ${JSON.stringify(value)}.`,
  );
}

/**
 * Validates the `priceTierMap` context value. The CLI hands `-c priceTierMap='{...}'`
 * over as a string while `cdk.json` gives an object, so both are accepted. Validation
 * is the handlers' own `parsePriceTierMap`, so synth and runtime cannot disagree.
 */
export function priceTierMapFromContext(value: unknown): PriceTierMap {
  if (value === undefined || value === null) return {};
  const json = typeof value === 'string' ? value : JSON.stringify(value);
  try {
    return parsePriceTierMap(json);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(
      `Invalid CDK context "${CONTEXT_KEYS.priceTierMap}": ${reason}. Expected a JSON object of ` +
        `Stripe price id to tier (${TIERS.join(', ')}), e.g. -c ${CONTEXT_KEYS.priceTierMap}='{"price_123":"gold"}'.`,
      { cause: error },
    );
  }
}

/** Validates the optional `alarmEmail` context value (a single address). */
export function alarmEmailFromContext(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value.trim())) {
    throw new ConfigError(
      `Invalid CDK context "${CONTEXT_KEYS.alarmEmail}": expected one e-mail address, got ${JSON.stringify(value)}.`,
    );
  }
  return value.trim();
}

/**
 * Reads a context value with the handlers' own rule (core/), turning its error into a
 * ConfigError that names the key, so synth and the functions can never disagree.
 */
function fromContext<T>(
  key: string,
  parse: (value: unknown) => T,
  value: unknown,
  example = '',
): T {
  try {
    return parse(value);
  } catch (error) {
    if (!(error instanceof ConfigValueError)) throw error;
    throw new ConfigError(`Invalid CDK context "${key}": ${error.message}${example}.`, {
      cause: error,
    });
  }
}

/** Validates `ledgerRetentionDays` with the handlers' own rule (core/shared/config-values.ts). */
export function ledgerRetentionDaysFromContext(value: unknown): number {
  return fromContext(CONTEXT_KEYS.ledgerRetentionDays, parseLedgerRetentionDays, value);
}

/** Validates `creditAllowances` with the handlers' own rule (core/credits/allowances.ts). */
export function creditAllowancesFromContext(value: unknown): CreditAllowances {
  return fromContext(
    CONTEXT_KEYS.creditAllowances,
    parseCreditAllowances,
    value,
    `, e.g. -c ${CONTEXT_KEYS.creditAllowances}='{"gold":12}'`,
  );
}

/** Validates `freeHabitLimits` with the handlers' own rule (core/penalties/habits.ts). */
export function freeHabitLimitsFromContext(value: unknown): FreeHabitLimits {
  return fromContext(
    CONTEXT_KEYS.freeHabitLimits,
    parseFreeHabitLimits,
    value,
    `, e.g. -c ${CONTEXT_KEYS.freeHabitLimits}='{"gold":60}'`,
  );
}

/** Validates `assessmentDeadlineHour` with the handlers' own rule (core/shared/config-values.ts). */
export function assessmentDeadlineHourFromContext(value: unknown): number {
  return fromContext(CONTEXT_KEYS.assessmentDeadlineHour, parseAssessmentDeadlineHour, value);
}

/**
 * Validates the optional `stripeApiUrl`: the handlers' own rule (adapters/stripe/
 * stripe-client.ts: a base URL, no path, query or credentials), and https only, since
 * the plain-http loopback the handlers also accept exists for local runs, never for a
 * deployed function. Returns the URL's origin; absent or '' gives undefined (Stripe's own).
 */
export function stripeApiUrlFromContext(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const invalid = (reason: string, cause?: unknown) =>
    new ConfigError(
      `Invalid CDK context "${CONTEXT_KEYS.stripeApiUrl}": ${reason}, e.g. -c ${CONTEXT_KEYS.stripeApiUrl}=https://stripe-proxy.example.com.`,
      cause === undefined ? undefined : { cause },
    );
  if (typeof value !== 'string') {
    throw invalid(`expected an https base URL, got ${JSON.stringify(value)}`);
  }
  let url: URL | undefined;
  try {
    url = parseStripeApiUrl(value);
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : String(error), error);
  }
  if (!url) return undefined;
  if (url.protocol !== 'https:') throw invalid('must be https');
  return url.origin;
}

/** Reads and validates every context key this app uses. */
export function readBillingConfig(tryGetContext: (key: string) => unknown): BillingConfig {
  const alarmEmail = alarmEmailFromContext(tryGetContext(CONTEXT_KEYS.alarmEmail));
  const stripeApiUrl = stripeApiUrlFromContext(tryGetContext(CONTEXT_KEYS.stripeApiUrl));
  const stripeMode = stripeModeFromContext(tryGetContext(CONTEXT_KEYS.stripeMode));
  const appBackendRoleArns = roleArnsFromContext(
    CONTEXT_KEYS.appBackendRoleArns,
    tryGetContext(CONTEXT_KEYS.appBackendRoleArns),
  );
  const operatorRoleArns = roleArnsFromContext(
    CONTEXT_KEYS.operatorRoleArns,
    tryGetContext(CONTEXT_KEYS.operatorRoleArns),
  );
  checkRoleAccounts({
    [CONTEXT_KEYS.appBackendRoleArns]: appBackendRoleArns,
    [CONTEXT_KEYS.operatorRoleArns]: operatorRoleArns,
  });
  return {
    priceTierMap: priceTierMapFromContext(tryGetContext(CONTEXT_KEYS.priceTierMap)),
    creditAllowances: creditAllowancesFromContext(tryGetContext(CONTEXT_KEYS.creditAllowances)),
    ledgerRetentionDays: ledgerRetentionDaysFromContext(
      tryGetContext(CONTEXT_KEYS.ledgerRetentionDays),
    ),
    freeHabitLimits: freeHabitLimitsFromContext(tryGetContext(CONTEXT_KEYS.freeHabitLimits)),
    assessmentDeadlineHour: assessmentDeadlineHourFromContext(
      tryGetContext(CONTEXT_KEYS.assessmentDeadlineHour),
    ),
    ...(alarmEmail ? { alarmEmail } : {}),
    ...(stripeApiUrl ? { stripeApiUrl } : {}),
    ...(stripeMode ? { stripeMode } : {}),
    appBackendRoleArns,
    operatorRoleArns,
  };
}
