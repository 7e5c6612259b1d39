/**
 * Opaque page cursors bound to the query that issued them, for every paged read
 * (payments now, penalties later).
 *
 * A cursor is base64url JSON `{p, h}`: `p` is the position the next page resumes
 * after, in whatever shape the reader needs, and `h` a SHA-256 digest of the query's
 * scope, its normalised parameters (everything but cursor and limit, so a caller may
 * change the page size between pages) and `p`. Decoding recomputes the digest for the
 * query at hand, so a cursor from another query (another user, status or range) or an
 * altered one is refused, and then hands `p` to the reader's own shape check, which
 * must also check that the position belongs to the query (a key of this date range,
 * of this user). The digest is not a secret MAC: it binds, and the shape check keeps a
 * forged cursor inside the query's own data. What makes a forged cursor a 400 is the
 * HMAC the routes seal every cursor with (cursor-seal.ts).
 */
import { createHash } from 'node:crypto';

export type CursorParams = Record<string, string | number | boolean | null | undefined>;

export interface CursorCodec<Q, P> {
  encode(query: Q, position: P): string;
  /** The position the cursor carries; throws `spec.invalid(...)` unless it was issued for `query`. */
  decode(query: Q, cursor: string): P;
}

export interface CursorCodecSpec<Q, P> {
  /** Names the kind of query (e.g. `payments.userHistory`): cursors never cross scopes. */
  scope: string;
  /** The parameters that define the result set: not the cursor, not the limit. */
  params(query: Q): CursorParams;
  /** The position if it has the expected shape and belongs to `query`, else undefined. */
  parse(position: unknown, query: Q): P | undefined;
  /** The error a bad cursor throws (e.g. the port's InvalidCursorError). */
  invalid(reason: string): Error;
}

/** Longer cursors are refused before any decoding work. */
export const MAX_CURSOR_LENGTH = 4096;

/** Bumped when the digest input changes, which invalidates every cursor in flight. */
const CURSOR_VERSION = 1;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function cursorCodec<Q, P>(spec: CursorCodecSpec<Q, P>): CursorCodec<Q, P> {
  const digest = (query: Q, position: unknown) =>
    createHash('sha256')
      .update(JSON.stringify([CURSOR_VERSION, spec.scope, normalise(spec.params(query)), position]))
      .digest('base64url')
      .slice(0, 22);
  return {
    encode(query, position) {
      const h = digest(query, position);
      return Buffer.from(JSON.stringify({ p: position, h }), 'utf8').toString('base64url');
    },
    decode(query, cursor) {
      if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) {
        throw spec.invalid('cursor is not valid for this query');
      }
      let decoded: unknown;
      try {
        decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
      } catch {
        throw spec.invalid('cursor is not valid for this query');
      }
      if (!isRecord(decoded) || typeof decoded.h !== 'string' || !('p' in decoded)) {
        throw spec.invalid('cursor is not valid for this query');
      }
      if (decoded.h !== digest(query, decoded.p)) {
        throw spec.invalid('cursor was issued for another query');
      }
      const position = spec.parse(decoded.p, query);
      if (position === undefined) throw spec.invalid('cursor is not valid for this query');
      return position;
    },
  };
}

/** Sorted keys, undefined dropped: the same query always gives the same digest. */
function normalise(params: CursorParams): [string, string | number | boolean | null][] {
  return Object.entries(params)
    .filter((entry): entry is [string, string | number | boolean | null] => entry[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Shape checks shared by time-ordered readers.

/** `YYYY-MM-DD`. */
export const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A `<ISO 8601 UTC timestamp>#<id>` key, the sort key of every time-ordered index here. */
const TIME_KEY =
  /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z#([A-Za-z0-9][A-Za-z0-9_-]{0,254})$/;

/** The parts of a `<timestamp>#<id>` key, or undefined when it is not one. */
export function parseTimeKey(value: unknown): { date: string; id: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const match = TIME_KEY.exec(value);
  if (!match) return undefined;
  return { date: match[1]!, id: match[2]! };
}

/** `date` plus `days` (UTC), as `YYYY-MM-DD`. */
export function addDays(date: string, days: number): string {
  const at = new Date(`${date}T00:00:00.000Z`);
  at.setUTCDate(at.getUTCDate() + days);
  return at.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (negative when `to` is earlier); NaN for a malformed date. */
export function daysBetween(from: string, to: string): number {
  if (!ISO_DATE.test(from) || !ISO_DATE.test(to)) return Number.NaN;
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}
