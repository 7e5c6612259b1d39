/**
 * The Tracer is loaded only where it could trace: importing it turns on the X-Ray
 * SDK's async hooks for the whole process, traced or not. Each case imports a real
 * handler in a fresh Node process, since what is checked is process-wide state.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleLikeCdk } from '../../bench/cold-start.ts';
import { tracingPossible } from '../../functions/commons/powertools.ts';
import { loadStackModel } from '../../local/stack-model.ts';

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

const LAMBDA = { AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' };
const TRACING_OFF = { ...LAMBDA, POWERTOOLS_TRACE_ENABLED: 'false' };

/**
 * Imports a webhook module (the TypeScript source through tsx, or a bundle) in a fresh
 * process and says what it loaded.
 */
async function importWebhookIn(env: Record<string, string>, bundle?: string) {
  const entry = bundle ? pathToFileURL(bundle).href : './functions/webhook-ingress.ts';
  // From source, also report the shared tracer itself (a bundle does not export it).
  const tracerOf = bundle
    ? 'undefined'
    : "(await import('./functions/commons/powertools.ts')).tracer?.constructor?.name ?? null";
  const script = `
    const module = await import(${JSON.stringify(entry)});
    console.log(JSON.stringify({
      handler: typeof module.handler,
      tracer: ${tracerOf},
      xrayContext: Boolean(process.namespaces?.AWSXRay),
    }));`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...(bundle ? [] : ['--import', 'tsx']), '--input-type=module', '-e', script],
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
    expect(await importWebhookIn(TRACING_OFF)).toEqual({
      handler: 'function',
      tracer: null,
      xrayContext: false,
    });
    const { tracer } = await import('../../functions/commons/powertools.ts');
    expect(tracer).toBeUndefined(); // the test runner sets POWERTOOLS_TRACE_ENABLED=false
  });

  it('is a Powertools Tracer, with the X-Ray context, in Lambda with tracing on', async () => {
    expect(await importWebhookIn(LAMBDA)).toEqual({
      handler: 'function',
      tracer: 'Tracer',
      xrayContext: true,
    });
  });

  describe('in the deployed bundle (esbuild ESM, top-level await)', () => {
    let bundle: Awaited<ReturnType<typeof bundleLikeCdk>>;
    beforeAll(async () => {
      const model = loadStackModel();
      const fn = model.functions.find((f) => f.entry === 'functions/webhook-ingress.ts');
      if (!fn) throw new Error('the stack model has no webhook function');
      bundle = await bundleLikeCdk(repoRoot, fn);
    });
    afterAll(async () => {
      await rm(dirname(bundle.file), { recursive: true, force: true });
    });

    it('loads the X-Ray SDK only when tracing is on', async () => {
      expect(await importWebhookIn(TRACING_OFF, bundle.file)).toEqual({
        handler: 'function',
        xrayContext: false,
      });
      expect(await importWebhookIn(LAMBDA, bundle.file)).toEqual({
        handler: 'function',
        xrayContext: true,
      });
    });
  });
});
