/**
 * Helpers for the infrastructure tests: an in-process synth with bundling and CDK's
 * WASM template validation off (both are exercised by the CLI synth test), and small
 * readers that follow the references the assertions need.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { createBillingApp } from '../../lib/billing-app.ts';

export interface Templates {
  data: Template;
  service: Template;
}

export interface CfnResourceJson {
  Type: string;
  Properties: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string[];
}

export interface Statement {
  Effect: string;
  Action: string[];
  Resource: unknown[];
  Condition?: unknown;
  Principal?: unknown;
}

/** Synthesizes both stacks without bundling; `context` is applied over cdk.json's. */
export function synthTemplates(context?: Record<string, unknown>): Templates {
  const outdir = mkdtempSync(join(tmpdir(), 'billing-infra-test-'));
  try {
    const { dataStack, serviceStack } = createBillingApp({
      bundle: false,
      validate: false,
      outdir,
      ...(context ? { context } : {}),
    });
    return { data: Template.fromStack(dataStack), service: Template.fromStack(serviceStack) };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

export function resources(template: Template, type: string): Record<string, CfnResourceJson> {
  return template.findResources(type) as Record<string, CfnResourceJson>;
}

export function onlyResource(template: Template, type: string): [string, CfnResourceJson] {
  const entries = Object.entries(resources(template, type));
  if (entries.length !== 1) throw new Error(`expected one ${type}, found ${entries.length}`);
  return entries[0]!;
}

/** The function whose `billing:entry` metadata names `entry`. */
export function functionByEntry(template: Template, entry: string): [string, CfnResourceJson] {
  const found = Object.entries(resources(template, 'AWS::Lambda::Function')).find(
    ([, fn]) => fn.Metadata?.['billing:entry'] === entry,
  );
  if (!found) throw new Error(`no function with billing:entry ${entry}`);
  return found;
}

export function envOf(fn: CfnResourceJson): Record<string, unknown> {
  const environment = fn.Properties.Environment as { Variables?: Record<string, unknown> };
  return environment?.Variables ?? {};
}

/**
 * Follows `Fn::ImportValue` back to the value the data stack exported, so an assertion
 * can say "this is the DLQ" instead of matching generated export names.
 */
export function resolveImport(data: Template, value: unknown): unknown {
  const name = (value as { 'Fn::ImportValue'?: unknown })?.['Fn::ImportValue'];
  if (typeof name !== 'string') return value;
  const outputs = data.toJSON().Outputs as Record<
    string,
    { Value: unknown; Export?: { Name: string } }
  >;
  const output = Object.values(outputs).find((o) => o.Export?.Name === name);
  if (!output) throw new Error(`no export named ${name}`);
  return output.Value;
}

/** Every statement of the inline policies attached to the function's role. */
export function roleStatements(template: Template, fn: CfnResourceJson): Statement[] {
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return Object.values(resources(template, 'AWS::IAM::Policy'))
    .filter((policy) =>
      (policy.Properties.Roles as Array<{ Ref?: string }>).some((role) => role.Ref === roleId),
    )
    .flatMap((policy) => statementsOf(policy.Properties.PolicyDocument));
}

export function statementsOf(document: unknown): Statement[] {
  const statements = (document as { Statement: Array<Record<string, unknown>> }).Statement;
  return statements.map((s) => ({
    ...(s as unknown as Statement),
    Action: ([] as string[]).concat(s.Action as string | string[]),
    Resource: ([] as unknown[]).concat(s.Resource ?? []),
  }));
}

export function actionsOf(statements: Statement[]): string[] {
  return [...new Set(statements.flatMap((s) => s.Action))].sort();
}
