import { describe, expect, it } from 'vitest';
import { CursorSeal, MIN_CURSOR_KEY_LENGTH } from '../../functions/adapters/paging/cursor-seal.ts';
import { StaticSecretString } from '../../functions/adapters/secrets/secret-string.ts';
import { InvalidCursorError } from '../../functions/core/shared/paging.ts';
import { testCursorSeal } from '../helpers/cursor-seal.ts';

const ROUTE = '/users/{userId}/payments';
const STORE_CURSOR = Buffer.from('{"p":"2026-03-04T12:00:00.000Z#pi_1","h":"x"}').toString(
  'base64url',
);

describe('CursorSeal', () => {
  it('opens what it sealed, for the same route, to the store cursor it sealed', async () => {
    const seal = testCursorSeal();
    const sealed = (await seal.seal(ROUTE, STORE_CURSOR)) as string;
    expect(sealed.startsWith(`${STORE_CURSOR}.`)).toBe(true);
    expect(await seal.open(ROUTE, sealed)).toBe(STORE_CURSOR);
    // Deterministic: the same cursor seals the same way (a page read twice gives one cursor).
    expect(await seal.seal(ROUTE, STORE_CURSOR)).toBe(sealed);
  });

  it('keeps "no next page" and "first page" as they are', async () => {
    const seal = testCursorSeal();
    expect(await seal.seal(ROUTE, null)).toBeNull();
    expect(await seal.open(ROUTE, undefined)).toBeUndefined();
  });

  it('refuses a cursor sealed for another route, by another key, edited, or not sealed', async () => {
    const key = 'k'.repeat(MIN_CURSOR_KEY_LENGTH);
    const seal = testCursorSeal(key);
    const sealed = (await seal.seal(ROUTE, STORE_CURSOR)) as string;
    const tag = sealed.slice(sealed.lastIndexOf('.') + 1);
    const otherRoute = (await seal.seal('/reports/refunds', STORE_CURSOR)) as string;
    const otherKey = (await testCursorSeal(`${key}x`).seal(ROUTE, STORE_CURSOR)) as string;
    const editedCursor = `${STORE_CURSOR.slice(0, -1)}${STORE_CURSOR.endsWith('A') ? 'B' : 'A'}.${tag}`;
    const editedTag = `${STORE_CURSOR}.${tag.slice(0, -1)}${tag.endsWith('A') ? 'B' : 'A'}`;
    for (const value of [
      otherRoute,
      otherKey,
      editedCursor,
      editedTag,
      STORE_CURSOR,
      `.${tag}`,
      `${STORE_CURSOR}.`,
      `${STORE_CURSOR}.${tag}x`,
      `${STORE_CURSOR}.${'é'.repeat(22)}`,
    ]) {
      await expect(seal.open(ROUTE, value), value).rejects.toBeInstanceOf(InvalidCursorError);
    }
    expect(await seal.open('/reports/refunds', otherRoute)).toBe(STORE_CURSOR);
  });

  it('refuses to work with a key too short to be one', async () => {
    const short = new CursorSeal(
      new StaticSecretString('short-key', 'the key', (message) => new Error(message)),
    );
    await expect(short.seal(ROUTE, STORE_CURSOR)).rejects.toThrow(/at least 32/);
    await expect(short.open(ROUTE, `${STORE_CURSOR}.${'A'.repeat(22)}`)).rejects.toThrow(
      /at least 32/,
    );
  });
});
