/**
 * Paged lists as every context answers them (DESIGN §8): `{items, nextCursor}`, with an
 * opaque cursor bound to the query that issued it.
 */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A cursor that was not issued for this query (forged, altered, or from another query). */
export class InvalidCursorError extends Error {
  constructor(message = 'cursor is not valid for this query', options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidCursorError';
  }
}
