/**
 * The cursor of a slot page (`CreditStore.usersDue`), shared by the DynamoDB adapter and
 * its in-memory fake so both accept and refuse exactly the same cursors.
 */
import { InvalidCursorError } from '../../core/shared/paging.ts';
import { cursorCodec, ISO_DATE } from './query-cursor.ts';

export interface DueQuery {
  slot: number;
  period: string;
}

/** Where a slot page resumes: the last user returned and the period the index held for it. */
export interface DuePosition {
  u: string;
  c: string;
}

export const dueCursor = cursorCodec<DueQuery, DuePosition>({
  scope: 'credits.usersDue',
  params: (query) => ({ slot: query.slot, period: query.period }),
  // The index partition is the query's slot, and the position must sort before the
  // query's period, so a forged position can only resume inside the query's own data.
  parse: (position, query) => {
    if (typeof position !== 'object' || position === null || Array.isArray(position)) {
      return undefined;
    }
    const { u, c } = position as Partial<DuePosition>;
    if (typeof u !== 'string' || u.length === 0 || u.length > 1_024) return undefined;
    if (typeof c !== 'string' || !ISO_DATE.test(c) || c >= query.period) return undefined;
    return { u, c };
  },
  invalid: (reason) => new InvalidCursorError(reason),
});
