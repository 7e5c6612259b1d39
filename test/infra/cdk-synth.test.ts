/**
 * The real `cdk synth` (CLI, bundling on, CDK's CloudFormation validation on) with no
 * AWS credentials anywhere in reach: what the infra team runs, end to end. Slow
 * (esbuild runs once per function), so it is the only test that bundles.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/billing-function.ts';
import { CREDIT_PLANNER_SCHEDULE } from '../../lib/credit-refresh.ts';
import {
  PENALTY_ASSESSOR_SCHEDULE,
  PENALTY_SETTLEMENT_SWEEP_SCHEDULE,
} from '../../lib/penalties.ts';
import { ENTRY } from './synth.ts';

const CDK_CLI = resolve(REPO_ROOT, 'node_modules/aws-cdk/bin/cdk');

/** The current env minus anything that could supply AWS credentials or a region. */
function credentialFreeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_') && !key.startsWith('CDK_')) env[key] = value;
  }
  return {
    ...env,
    AWS_CONFIG_FILE: join(tmpdir(), 'billing-no-such-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(tmpdir(), 'billing-no-such-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
}

async function cdk(args: string[]) {
  return promisify(execFile)(process.execPath, [CDK_CLI, ...args, '--no-notices'], {
    cwd: REPO_ROOT,
    env: credentialFreeEnv(),
    maxBuffer: 64 * 1024 * 1024,
  });
}

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

describe('cdk synth (CLI) without AWS credentials', () => {
  it('synthesizes both stacks with every function bundled as minified ESM with source maps', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'billing-cdk-synth-'));
    outdirs.push(outdir);
    await cdk(['synth', '--quiet', '--output', outdir]);

    const template = JSON.parse(
      readFileSync(join(outdir, 'BillingService.template.json'), 'utf8'),
    ) as {
      Resources: Record<
        string,
        { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, unknown> }
      >;
    };
    const assets = JSON.parse(readFileSync(join(outdir, 'BillingService.assets.json'), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging?: string } }>;
    };
    expect(existsSync(join(outdir, 'BillingData.template.json'))).toBe(true);

    const functions = Object.values(template.Resources).filter(
      (r) => r.Type === 'AWS::Lambda::Function',
    );
    // The credit planner's, penalty assessor's and settlement sweeper's schedules survive CDK's CloudFormation validation too.
    const schedules = Object.values(template.Resources).filter(
      (r) => r.Type === 'AWS::Scheduler::Schedule',
    );
    expect(schedules.map((s) => s.Properties.ScheduleExpression).sort()).toEqual(
      [
        CREDIT_PLANNER_SCHEDULE,
        PENALTY_ASSESSOR_SCHEDULE,
        PENALTY_SETTLEMENT_SWEEP_SCHEDULE,
      ].sort(),
    );
    // Every handler is bundled, the payments, credit and penalty functions included.
    expect(functions.map((fn) => fn.Metadata?.['billing:entry']).sort()).toEqual(
      Object.values(ENTRY).sort(),
    );
    for (const fn of functions) {
      expect(fn.Properties.Handler).toBe('index.handler');
      const key = (fn.Properties.Code as { S3Key: string }).S3Key;
      const asset = assets.files[key.replace(/\.zip$/, '')];
      expect(asset?.source.packaging).toBe('zip');
      const dir = join(outdir, asset?.source.path ?? 'missing');
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      // ESM with the createRequire shim first, an ESM export of `handler`, minified.
      expect(code.startsWith("import { createRequire } from 'node:module';")).toBe(true);
      expect(code).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
      expect(code.split('\n').length).toBeLessThan(200);
      // The AWS SDK is bundled, not left for the runtime to provide.
      expect(code).not.toMatch(/from\s*["']@aws-sdk\//);
      expect(code).toContain('//# sourceMappingURL=index.mjs.map');
      expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
    }
  }, 300_000);

  it('fails with the clear message when priceTierMap context is invalid', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'billing-cdk-synth-bad-'));
    outdirs.push(outdir);
    const failure = await cdk([
      'synth',
      '--quiet',
      '--output',
      outdir,
      '-c',
      'priceTierMap={"price_1":"platinum"}',
    ]).then(
      () => undefined,
      (error: unknown) => error as { stderr: string; code: number },
    );
    expect(failure?.code).not.toBe(0);
    expect(failure?.stderr).toContain(
      'Invalid CDK context "priceTierMap": PRICE_TIER_MAP: price price_1 maps to "platinum"',
    );
  }, 120_000);
});
