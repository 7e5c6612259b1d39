import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/**
 * A cloud assembly folder for one test, removed when the test ends. A CDK `App` given
 * no `outdir` makes its own temporary `cdk.out…` folder at construction and never
 * removes it, so every `new App()` of a test names one of these.
 */
export function tempOutdir(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'billing-test-assembly-'));
  onTestFinished(() => rmSync(outdir, { recursive: true, force: true }));
  return outdir;
}
