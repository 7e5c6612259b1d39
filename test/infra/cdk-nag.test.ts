/**
 * cdk-nag's AwsSolutions pack on the synthesized stacks: zero findings left unacknowledged,
 * each acknowledgement with its reason next to the construct it concerns
 * (BillingFunction: X-Ray's required "*", the pinned runtime; the webhook route: the
 * Stripe signature is its authentication; the Stripe secrets: rotated in Stripe;
 * schedule targets: a DLQ has no DLQ, Scheduler's own invoke role).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { createBillingApp } from '../../lib/billing-app.ts';

/** The rule ids cdk-nag reports (empty when synth passes), from its validation report. */
function nagFindings(mutate?: (built: ReturnType<typeof createBillingApp>) => void): string[] {
  const outdir = mkdtempSync(join(tmpdir(), 'billing-nag-'));
  try {
    const built = createBillingApp({ bundle: false, validate: false, outdir });
    mutate?.(built);
    const app = built.serviceStack.node.root;
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    try {
      (app as unknown as { synth(): unknown }).synth();
      return [];
    } catch {
      const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: {
          violations: { ruleName: string; violatingConstructs?: { constructPath?: string }[] }[];
        }[];
      };
      return report.pluginReports.flatMap((plugin) =>
        plugin.violations.flatMap((v) =>
          (v.violatingConstructs ?? [{}]).map((c) => `${v.ruleName} at ${c.constructPath ?? '?'}`),
        ),
      );
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in either stack', () => {
    expect(nagFindings()).toEqual([]);
  });

  it('would report a wildcard grant added to a function (the check can fail)', () => {
    const findings = nagFindings(({ serviceStack }) => {
      serviceStack.readApi.handler.function.addToRolePolicy(
        new PolicyStatement({
          actions: ['dynamodb:*'],
          resources: ['arn:aws:dynamodb:*:*:table/x'],
        }),
      );
    });
    expect(findings.some((f) => f.startsWith('AwsSolutions-IAM5[Action::dynamodb:*]'))).toBe(true);
  });
});
