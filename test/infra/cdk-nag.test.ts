/**
 * cdk-nag's AwsSolutions pack on both synthesized stacks (issue 15.4): no finding, error
 * or warning, that is not acknowledged in lib/nag-suppressions.ts, each acknowledgement
 * with its written reason, none of them stale, and the docs list them.
 *
 * cdk-nag 3 is a CDK policy-validation plugin: findings of both severities are
 * violations in the cloud assembly's validation report and fail synth, instead of the
 * annotations v2 added through an Aspect (so `Annotations.fromStack` sees nothing).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { createBillingApp } from '../../lib/billing-app.ts';
import { REPO_ROOT } from '../../lib/billing-function.ts';
import {
  acknowledgeNagFindings,
  NAG_SUPPRESSIONS,
  type NagSuppressionName,
} from '../../lib/nag-suppressions.ts';
import { allPolicyStatements, resources, statementsOf, synthTemplates } from './synth.ts';

interface Finding {
  rule: string;
  severity: string;
  at: string;
}

interface NagRun {
  /** Leave one acknowledgement out. */
  except?: NagSuppressionName;
  /** Extra CDK context (e.g. `operatorRoleArns`), over cdk.json's. */
  context?: Record<string, unknown>;
  mutate?: (built: ReturnType<typeof createBillingApp>) => void;
}

/** The findings cdk-nag reports (empty when synth passes), from its validation report. */
function nagFindings(run: NagRun = {}): Finding[] {
  const outdir = mkdtempSync(join(tmpdir(), 'billing-nag-'));
  try {
    const built = createBillingApp({
      bundle: false,
      validate: false,
      outdir,
      acknowledgeNagFindings: false,
      ...(run.context ? { context: run.context } : {}),
    });
    acknowledgeNagFindings(built, run.except ? { except: run.except } : {});
    run.mutate?.(built);
    const { app } = built;
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    try {
      app.synth();
      return [];
    } catch {
      const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: {
          violations: {
            ruleName: string;
            severity?: string;
            violatingConstructs?: { constructPath?: string }[];
          }[];
        }[];
      };
      return report.pluginReports.flatMap((plugin) =>
        plugin.violations.flatMap((v) =>
          (v.violatingConstructs ?? [{}]).map((c) => ({
            rule: v.ruleName,
            severity: v.severity ?? '?',
            at: c.constructPath ?? '?',
          })),
        ),
      );
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

const show = (findings: Finding[]) => findings.map((f) => `${f.severity} ${f.rule} at ${f.at}`);

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in either stack, error or warning', () => {
    expect(show(nagFindings())).toEqual([]);
  });

  it('would report a wildcard grant added to a function (the check can fail)', () => {
    const findings = nagFindings({
      mutate: ({ serviceStack }) => {
        serviceStack.readApi.handler.function.addToRolePolicy(
          new PolicyStatement({
            actions: ['dynamodb:*'],
            resources: ['arn:aws:dynamodb:*:*:table/x'],
          }),
        );
      },
    });
    expect(findings.some((f) => f.rule.startsWith('AwsSolutions-IAM5[Action::dynamodb:*]'))).toBe(
      true,
    );
  });

  it('finds nothing unacknowledged with operator roles configured (no OperatorRole then)', () => {
    const findings = nagFindings({
      context: { operatorRoleArns: JSON.stringify(['arn:aws:iam::123456789012:role/ops/oncall']) },
      mutate: ({ serviceStack }) => {
        expect(serviceStack.access.operatorRole).toBeUndefined();
      },
    });
    expect(show(findings)).toEqual([]);
  });

  it("checks the stack's OperatorRole too: a wildcard grant on it is reported", () => {
    const findings = nagFindings({
      // No operatorRoleArns (cdk.json sets none): the stack makes its OperatorRole.
      mutate: ({ serviceStack }) => {
        const role = serviceStack.access.operatorRole;
        expect(role, 'the stack made no OperatorRole').toBeDefined();
        role!.addToPrincipalPolicy(
          new PolicyStatement({ actions: ['execute-api:Invoke'], resources: ['*'] }),
        );
      },
    });
    expect(
      findings.some(
        (f) =>
          f.rule.startsWith('AwsSolutions-IAM5[Resource::*]') &&
          f.at.includes('ApiAccess/OperatorRole'),
      ),
      show(findings).join('\n'),
    ).toBe(true);
  });

  it.each(Object.keys(NAG_SUPPRESSIONS) as NagSuppressionName[])(
    'still needs the acknowledgement %s: without it, its rule is reported',
    (name) => {
      const findings = nagFindings({ except: name });
      expect(findings.length).toBeGreaterThan(0);
      expect(
        findings.every((f) => f.rule.startsWith(NAG_SUPPRESSIONS[name].rule)),
        show(findings).join('\n'),
      ).toBe(true);
    },
  );
});

describe('the acknowledgements', () => {
  it('each carries a written reason of its own', () => {
    const reasons = Object.values(NAG_SUPPRESSIONS).map((s) => s.reason);
    for (const reason of reasons) expect(reason.length).toBeGreaterThan(80);
    expect(new Set(reasons).size).toBe(reasons.length);
  });

  it('X-Ray is the only "*" resource any role or policy is allowed', () => {
    const t = synthTemplates();
    const managed = Object.values(resources(t.service, 'AWS::IAM::ManagedPolicy')).flatMap((p) =>
      statementsOf(p.Properties.PolicyDocument),
    );
    const wildcard = [...allPolicyStatements(t.data, t.service), ...managed].filter(
      (s) => s.Effect === 'Allow' && s.Resource.includes('*'),
    );
    expect(wildcard.length).toBeGreaterThan(0);
    for (const statement of wildcard) {
      expect(statement.Action.every((a) => a.startsWith('xray:'))).toBe(true);
    }
  });

  it('are listed in docs/deploy.md with what each is on', () => {
    const deploy = readFileSync(join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');
    const start = deploy.indexOf('## cdk-nag');
    expect(start).toBeGreaterThanOrEqual(0);
    const section = deploy.slice(start);
    for (const { rule, on } of Object.values(NAG_SUPPRESSIONS)) {
      expect(section).toContain(`| ${rule} | ${on} |`);
    }
  });
});
