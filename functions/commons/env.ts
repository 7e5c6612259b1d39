/**
 * Environment parsing: each handler declares a zod schema for the variables it needs
 * and reads them once, failing fast at the first invocation with one message that
 * names every missing or invalid variable (never their values, which may be secret).
 */
// zod/mini: ~15 KB bundled instead of ~450 KB for the classic API, on every cold start.
// It parses classic schemas too, so callers may pass either.
import * as z from 'zod/mini';
import type { $ZodType, output } from 'zod/v4/core';
import { parseCreditAllowances } from '../core/credits/allowances.ts';
import { parseFreeHabitLimits } from '../core/penalties/habits.ts';
import {
  parseAssessmentDeadlineHour,
  parseLedgerRetentionDays,
} from '../core/shared/config-values.ts';
import { lazy } from './lazy.ts';

/** The environment does not satisfy a handler's schema. */
export class EnvConfigError extends Error {
  readonly variables: readonly string[];

  constructor(message: string, variables: readonly string[], options?: ErrorOptions) {
    super(message, options);
    this.name = 'EnvConfigError';
    this.variables = variables;
  }
}

/**
 * Parses `source` (default `process.env`) with `schema`. Throws `EnvConfigError`
 * naming each offending variable and why, e.g.
 * `Invalid environment: EVENT_QUEUE_URL is missing; LEDGER_RETENTION_DAYS: expected number`.
 */
export function readEnv<S extends $ZodType>(
  schema: S,
  source: Record<string, string | undefined> = process.env,
): output<S> {
  const result = z.safeParse(schema, source);
  if (result.success) return result.data;
  const variables: string[] = [];
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.map(String).join('.') || '(root)';
    variables.push(name);
    const missing = issue.code === 'invalid_type' && source[name] === undefined;
    return missing ? `${name} is missing` : `${name}: ${describeIssue(issue)}`;
  });
  throw new EnvConfigError(`Invalid environment: ${problems.join('; ')}`, variables, {
    cause: result.error,
  });
}

/**
 * `readEnv` memoized: the returned getter parses on first call and then returns the
 * same object, so handlers can declare their env at module scope without reading it
 * at import time (tests and the local runtime set env before the first invocation).
 */
export function lazyEnv<S extends $ZodType>(
  schema: S,
  source: () => Record<string, string | undefined> = () => process.env,
): () => output<S> {
  return lazy(() => readEnv(schema, source()));
}

// zod/mini ships no locale, so its default message is a bare "Invalid input": add the issue code.
function describeIssue(issue: z.core.$ZodIssue): string {
  return issue.message && issue.message !== 'Invalid input'
    ? issue.message
    : `invalid (${issue.code}${'format' in issue ? `: ${issue.format}` : ''})`;
}

/** A required, non-blank (after trimming) string variable; usable in classic and mini schemas. */
export const requiredString = () =>
  z.string().check(z.trim(), z.minLength(1, { message: 'must not be empty' }));

/** An optional string variable; when set, non-blank after trimming. */
export const optionalNonBlank = () => z.optional(z.string().check(z.trim(), z.minLength(1)));

/**
 * An optional variable read with one of the shared configuration rules (core/), the
 * same rule synth applies to the CDK context, so a deployed value is always accepted.
 */
export const configEnv = <T>(parse: (value: string | undefined) => T) =>
  z.pipe(
    z.optional(z.string()),
    z.transform((value, ctx) => {
      try {
        return parse(value);
      } catch (error) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: error instanceof Error ? error.message : String(error),
        });
        return z.NEVER;
      }
    }),
  );

/** LEDGER_RETENTION_DAYS (core/shared/config-values.ts); absent gives the default. */
export const ledgerRetentionDaysEnv = () => configEnv(parseLedgerRetentionDays);

/** CREDIT_ALLOWANCES (core/credits/allowances.ts); absent gives the defaults. */
export const creditAllowancesEnv = () => configEnv(parseCreditAllowances);

/** FREE_HABIT_LIMITS (core/penalties/habits.ts); absent gives the defaults. */
export const freeHabitLimitsEnv = () => configEnv(parseFreeHabitLimits);

/** PENALTY_ASSESSMENT_DEADLINE_HOUR (core/shared/config-values.ts); absent gives 6. */
export const assessmentDeadlineHourEnv = () => configEnv(parseAssessmentDeadlineHour);
