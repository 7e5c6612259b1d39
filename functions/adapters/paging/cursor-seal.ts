/**
 * The cursors the HTTP API hands out, sealed with an HMAC-SHA256 under a secret key of
 * the deployment. A store's own cursor (query-cursor.ts) binds its position to the
 * query with a digest anyone can recompute, so by itself a caller could build a valid
 * one; the seal is what makes a cursor unforgeable: one a caller built or edited is a
 * 400 before the store sees it. The seal names the route too, so a cursor of one list
 * is refused by another.
 *
 * A sealed cursor is `<store cursor>.<tag>`: the store's cursors are base64url, so the
 * last `.` splits them. A new key value (rotation) refuses the cursors in flight once
 * the functions re-read it; callers then start again from the first page.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidCursorError } from '../../core/shared/paging.ts';
import type { SecretString } from '../secrets/secret-string.ts';

/** Bumped if the tagged input changes, refusing every cursor in flight. */
const SEAL_VERSION = 'cursor-seal-v1';
/** Base64url characters of the tag kept: 132 of the HMAC's 256 bits. */
const TAG_LENGTH = 22;
const TAG = /^[A-Za-z0-9_-]{22}$/;
/** A shorter key is a misconfiguration, not a key: the deployed one has 64 characters. */
export const MIN_CURSOR_KEY_LENGTH = 32;

export class CursorSeal {
  readonly #key: SecretString;

  constructor(key: SecretString) {
    this.#key = key;
  }

  /** `cursor` sealed for `route` (a store's next-page cursor; null stays null: no next page). */
  async seal(route: string, cursor: string | null): Promise<string | null> {
    if (cursor === null) return null;
    return `${cursor}.${await this.#tag(route, cursor)}`;
  }

  /**
   * The store's cursor inside `sealed` when this deployment sealed it for `route`, else
   * InvalidCursorError (a 400). No cursor (the first page) stays undefined.
   */
  async open(route: string, sealed: string | undefined): Promise<string | undefined> {
    if (sealed === undefined) return undefined;
    const dot = sealed.lastIndexOf('.');
    const cursor = sealed.slice(0, dot);
    const tag = sealed.slice(dot + 1);
    if (dot <= 0 || !TAG.test(tag)) throw new InvalidCursorError();
    const expected = await this.#tag(route, cursor);
    // Constant time: a caller must not learn the tag a byte at a time.
    if (!timingSafeEqual(Buffer.from(tag), Buffer.from(expected))) {
      throw new InvalidCursorError();
    }
    return cursor;
  }

  async #tag(route: string, cursor: string): Promise<string> {
    const key = await this.#key.get();
    if (key.length < MIN_CURSOR_KEY_LENGTH) {
      throw new Error(
        `The cursor signing key has ${key.length} characters; it needs at least ${MIN_CURSOR_KEY_LENGTH}.`,
      );
    }
    return createHmac('sha256', key)
      .update(`${SEAL_VERSION}\n${route}\n${cursor}`)
      .digest('base64url')
      .slice(0, TAG_LENGTH);
  }
}
