/**
 * The Tracer is loaded only where it could trace: importing it turns on the X-Ray
 * SDK's async hooks for the whole process, traced or not. Each case imports a real
 * handler in a fresh Node process, since what is checked is process-wide state.
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tracingPossible } from '../../functions/commons/powertools.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

describe('tracingPossible', () => {
  it.each<[string, Record<string, string>, boolean]>([
    ['in Lambda with tracing not configured', { AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' }, true],
    [
      'in Lambda with POWERTOOLS_TRACE_ENABLED=true',
      { AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: 'true' },
      true,
    ],
    [
      'in Lambda with POWERTOOLS_TRACE_ENABLED=False',
      { AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: ' False ' },
      false,
    ],
    ['outside Lambda', { POWERTOOLS_TRACE_ENABLED: 'true' }, false],
    ['outside Lambda, AWS_EXECUTION_ENV empty', { AWS_EXECUTION_ENV: '' }, false],
  ])('%s: %s', (_label, env, expected) => {
    expect(tracingPossible(env)).toBe(expected);
  });
});

/** Imports the webhook handler in a fresh process and says what it loaded. */
async function importWebhookIn(env: Record<string, string>) {
  const script = `
    const module = await import('./functions/webhook-ingress.ts');
    const { tracer } = await import('./functions/commons/powertools.ts');
    console.log(JSON.stringify({
      handler: typeof module.handler,
      tracer: tracer?.constructor?.name ?? null,
      xrayContext: Boolean(process.namespaces?.AWSXRay),
    }));`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        ...env,
      },
      timeout: 20_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
}

describe('the shared tracer', () => {
  it('is neither built nor imported where tracing is off, so no async hooks are on', async () => {
    const loaded = await importWebhookIn({
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      POWERTOOLS_TRACE_ENABLED: 'false',
    });
    expect(loaded).toEqual({ handler: 'function', tracer: null, xrayContext: false });
  });

  it('is a Powertools Tracer, with the X-Ray context, in Lambda with tracing on', async () => {
    const loaded = await importWebhookIn({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' });
    expect(loaded).toEqual({ handler: 'function', tracer: 'Tracer', xrayContext: true });
  });
});
