/**
 * Production wiring of the cursor seal: the signing key from Secrets Manager when
 * deployed (CURSOR_KEY_SECRET_ARN, cached while warm), or CURSOR_SIGNING_KEY in the
 * local runtime and tests. Built on first use and reused while warm.
 */
import * as z from 'zod/mini';
import { CursorSeal } from '../adapters/paging/cursor-seal.ts';
import { configuredSecret } from '../adapters/secrets/secret-string.ts';
import { lazyEnv, optionalNonBlank } from './env.ts';
import { ENV } from './env-names.ts';
import { ServiceUnavailableError } from './http.ts';
import { lazy } from './lazy.ts';

const cursorEnv = lazyEnv(
  z
    .object({
      [ENV.cursorKeySecretArn]: optionalNonBlank(),
      [ENV.cursorSigningKey]: optionalNonBlank(),
    })
    .check(
      z.refine((env) => Boolean(env[ENV.cursorKeySecretArn] || env[ENV.cursorSigningKey]), {
        message: `set ${ENV.cursorKeySecretArn} (deployed) or ${ENV.cursorSigningKey} (local only)`,
        path: [ENV.cursorKeySecretArn],
        when: () => true,
      }),
    ),
);

// The key unreadable is an outage of a dependency (503 with Retry-After), never a 500 with details.
const unavailable = (message: string, options?: ErrorOptions) =>
  new ServiceUnavailableError({ cause: new Error(message, options), retryAfterSeconds: 2 });

/** Sealing with the plain key when CURSOR_SIGNING_KEY is set (local only; the stack never sets it), else the secret's. */
export const cursorSealFromEnv = lazy(() => {
  const env = cursorEnv();
  return new CursorSeal(
    configuredSecret({
      value: env[ENV.cursorSigningKey],
      secretArn: env[ENV.cursorKeySecretArn],
      label: 'the cursor signing key',
      unavailable,
      variables: { value: ENV.cursorSigningKey, secretArn: ENV.cursorKeySecretArn },
    }),
  );
});
