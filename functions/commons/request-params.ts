/**
 * Validation of path and query parameters for every HTTP route (DESIGN §8): a bad
 * or unknown parameter is a 400 whose message names the field; lists take `limit`
 * 1–100 (default 25) and an opaque `cursor`; dates are `YYYY-MM-DD` in UTC.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { BadRequestError } from './http.ts';

/** App user ids: opaque, but bounded and free of characters that could alter a key. */
export const USER_ID_RULE = 'must be 1-128 letters, digits or . _ : @ | + -';
export const userIdParam = () =>
  z
    .string()
    .check(
      z.minLength(1, { message: USER_ID_RULE }),
      z.maxLength(128, { message: USER_ID_RULE }),
      z.regex(/^[A-Za-z0-9._:@|+-]+$/, { message: USER_ID_RULE }),
    );

export const DEFAULT_LIMIT = 25;
export const MAX_LIMIT = 100;

/** `limit`: an integer 1–100, default 25. */
export const limitParam = () =>
  z._default(
    z
      .pipe(
        z
          .string()
          .check(z.regex(/^\d{1,3}$/, { message: `must be an integer from 1 to ${MAX_LIMIT}` })),
        z.transform(Number),
      )
      .check(
        z.gte(1, { message: `must be an integer from 1 to ${MAX_LIMIT}` }),
        z.lte(MAX_LIMIT, { message: `must be an integer from 1 to ${MAX_LIMIT}` }),
      ),
    DEFAULT_LIMIT,
  );

/** `cursor`: opaque; bounded so a caller cannot make us decode megabytes. */
export const cursorParam = () =>
  z.optional(z.string().check(z.minLength(1), z.maxLength(2048, { message: 'is too long' })));

/** Whether `text` is a real calendar date `YYYY-MM-DD` (2026-02-30 is not). */
export function isCalendarDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const parsed = new Date(`${text}T00:00:00.000Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === text;
}

export const dateParam = () =>
  z.string().check(z.refine(isCalendarDate, { message: 'must be a date YYYY-MM-DD' }));

/** Days from `from` to `to`, both `YYYY-MM-DD` (0 for the same day). */
export function daysBetween(from: string, to: string): number {
  return (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000;
}

/**
 * Checks a date range: `to` not before `from`, at most `maxDays` days long (both ends
 * included). Throws a 400 naming `toField`.
 */
export function checkDateRange(
  from: string,
  to: string,
  fields: { from: string; to: string },
  maxDays: number,
): void {
  const days = daysBetween(from, to);
  if (days < 0) {
    throw invalidParameter(fields.to, `must not be before ${fields.from}`);
  }
  if (days + 1 > maxDays) {
    throw invalidParameter(
      fields.to,
      `must be within ${maxDays} days of ${fields.from}, both included`,
    );
  }
}

export function invalidParameter(field: string, rule: string): BadRequestError {
  return new BadRequestError(`${field} ${rule}.`, { code: 'invalid_parameter' });
}

/**
 * Parses an event's query string with a strict schema: an unknown parameter is a 400
 * naming it, and so is the first invalid one, and a repeated one (HTTP API payload v2
 * joins its values with commas; the raw query string shows it was repeated).
 */
export function parseQuery<S extends z.ZodMiniObject>(
  event: Pick<APIGatewayProxyEventV2, 'queryStringParameters'> & { rawQueryString?: string },
  shape: S,
): z.infer<S> {
  const query = event.queryStringParameters ?? {};
  const known = new Set(Object.keys(shape.def.shape));
  const unknown = Object.keys(query).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new BadRequestError(
      `Unknown query parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`,
      { code: 'unknown_parameter' },
    );
  }
  // The raw query tells a repeated parameter from one value with a comma in it.
  const names = [...new URLSearchParams(event.rawQueryString ?? '').keys()];
  const repeated = names.find((name, index) => names.indexOf(name) !== index);
  if (repeated !== undefined) throw invalidParameter(repeated, 'must be given once');
  return parseParams(shape, query);
}

/** Parses path parameters (or any string map) with a schema; a 400 names the first bad field. */
export function parseParams<S extends z.ZodMiniType>(schema: S, input: unknown): z.infer<S> {
  const result = z.safeParse(schema, input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.map(String).join('.') || 'request';
  // zod/mini's issues do not carry the input: look the field up to tell missing from bad.
  const given =
    typeof input === 'object' && input !== null && issue?.path.length === 1
      ? (input as Record<PropertyKey, unknown>)[issue.path[0]!]
      : input;
  const message =
    issue && given === undefined
      ? 'is required'
      : issue?.message && issue.message !== 'Invalid input'
        ? issue.message
        : expectedTypeOf(issue);
  throw invalidParameter(field, message);
}

/** The JSON type a field must have, for a rule that gave no message of its own. */
const EXPECTED_TYPES: Record<string, string> = {
  string: 'must be a string',
  number: 'must be a number',
  int: 'must be a whole number',
  boolean: 'must be true or false',
  array: 'must be an array',
  object: 'must be an object',
};

function expectedTypeOf(issue: { code?: string; expected?: unknown } | undefined): string {
  if (issue?.code === 'invalid_type' && typeof issue.expected === 'string') {
    return EXPECTED_TYPES[issue.expected] ?? `must be of type ${issue.expected}`;
  }
  return 'is invalid';
}

/**
 * Parses a JSON request body with a strict object schema: malformed JSON, a body that
 * is not an object, and an unknown field are each a 400 naming what is wrong. An
 * absent or empty body is `{}`.
 */
export function parseJsonBody<S extends z.ZodMiniObject>(
  event: Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded'>,
  shape: S,
): z.infer<S> {
  const text = event.body
    ? event.isBase64Encoded
      ? Buffer.from(event.body, 'base64').toString('utf8')
      : event.body
    : '';
  let body: unknown = {};
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      throw new BadRequestError('Body is not valid JSON.', { code: 'invalid_body' });
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError('Body must be a JSON object.', { code: 'invalid_body' });
  }
  const known = new Set(Object.keys(shape.def.shape));
  const unknown = Object.keys(body).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new BadRequestError(
      `Unknown body field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`,
      {
        code: 'unknown_field',
      },
    );
  }
  return parseParams(shape, body);
}
