import { randomBytes } from 'node:crypto';
import { CursorSeal } from '../../functions/adapters/paging/cursor-seal.ts';
import { StaticSecretString } from '../../functions/adapters/secrets/secret-string.ts';

/** A cursor seal under a fresh random key, as a deployment has its own. */
export function testCursorSeal(key = randomBytes(32).toString('base64url')): CursorSeal {
  return new CursorSeal(
    new StaticSecretString(key, 'the test cursor key', (message) => new Error(message)),
  );
}
