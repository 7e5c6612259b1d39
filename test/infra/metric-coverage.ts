/**
 * Which custom metrics the stack graphs and alarms on, and which ones the handlers
 * emit, so a test can say "every graphed metric has a publisher": a dashboard line on
 * a name nobody emits is flat forever, and an alarm on it never fires.
 *
 * - Graphed: read from the synthesized template: each dashboard body (metric rows and
 *   SEARCH expressions) and each alarm (single metric, or metric math).
 * - Emitted: read from the handlers' source with the TypeScript parser: the first
 *   argument of every `.addMetric(...)` call, as `METRIC.<key>` (resolved through the
 *   METRIC object), a string literal, or a const lookup table of `METRIC.<key>` values
 *   indexed at the call (`addMetric(OUTCOME_METRIC[status], …)`). Anything else is
 *   reported as unresolved rather than guessed at.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { METRIC } from '../../functions/commons/metric-names.ts';

// ---------------------------------------------------------------------------------
// Graphed

interface TemplateJson {
  Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** Stands in for a CloudFormation token inside a rendered dashboard body. */
const TOKEN = '__CFN_TOKEN__';

/**
 * The dashboard body as a string: `Fn::Join` pieces concatenated, every other intrinsic
 * (Ref, GetAtt, ImportValue...) replaced by a placeholder. CDK renders tokens inside
 * JSON strings, so the result parses as JSON.
 */
export function renderBody(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && 'Fn::Join' in value) {
    const [separator, parts] = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    return parts.map(renderBody).join(separator);
  }
  return TOKEN;
}

/**
 * Metric names in `namespace` that metric-math `expression` reads through SEARCH.
 * A SEARCH over the namespace that names no metric cannot be checked: it throws.
 */
export function searchedMetricNames(expression: string, namespace: string): string[] {
  const names: string[] = [];
  for (const [, query = ''] of expression.matchAll(/SEARCH\(\s*'((?:[^'\\]|\\.)*)'/g)) {
    const inNamespace =
      query.includes(`{${namespace},`) ||
      query.includes(`{${namespace}}`) ||
      new RegExp(`Namespace\\s*=\\s*"?${namespace}"?(\\s|$)`).test(query);
    if (!inNamespace) continue;
    const named = [...query.matchAll(/MetricName\s*=\s*(?:\\?"([^"\\]+)\\?"|([\w.-]+))/g)].map(
      (m) => m[1] ?? m[2] ?? '',
    );
    if (named.length === 0) {
      throw new Error(`SEARCH over ${namespace} names no MetricName, cannot check: ${query}`);
    }
    names.push(...named);
  }
  return names;
}

/** Metric names in `namespace` of one dashboard body (rendered to JSON). */
export function dashboardMetricNames(body: string, namespace: string): Set<string> {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'metrics' && Array.isArray(value)) {
        let previous: unknown[] = [];
        for (const row of value) {
          if (!Array.isArray(row)) continue;
          // A row is [namespace, name, dimension, value..., options?] or [{ expression }];
          // "." repeats the previous row's value at that position.
          const at = (index: number) => (row[index] === '.' ? previous[index] : row[index]);
          if (typeof row[0] === 'string' && at(0) === namespace && typeof at(1) === 'string') {
            names.add(at(1) as string);
          }
          for (const item of row) {
            const expression = (item as { expression?: unknown } | null)?.expression;
            if (typeof expression === 'string') {
              for (const name of searchedMetricNames(expression, namespace)) names.add(name);
            }
          }
          previous = row.map((_, index) => at(index));
        }
      } else {
        visit(value);
      }
    }
  };
  visit(JSON.parse(body));
  return names;
}

/** Metric names in `namespace` of one AWS::CloudWatch::Alarm's properties. */
export function alarmMetricNames(properties: Record<string, unknown>, namespace: string): string[] {
  const names: string[] = [];
  if (properties.Namespace === namespace && typeof properties.MetricName === 'string') {
    names.push(properties.MetricName);
  }
  for (const query of (properties.Metrics as Array<Record<string, unknown>> | undefined) ?? []) {
    const metric = (query.MetricStat as { Metric?: Record<string, unknown> } | undefined)?.Metric;
    if (metric?.Namespace === namespace && typeof metric.MetricName === 'string') {
      names.push(metric.MetricName);
    }
    if (typeof query.Expression === 'string') {
      names.push(...searchedMetricNames(query.Expression, namespace));
    }
  }
  return names;
}

/** Every metric name in `namespace` that the template's dashboards and alarms use. */
export function graphedMetricNames(template: TemplateJson, namespace: string): Set<string> {
  const names = new Set<string>();
  for (const resource of Object.values(template.Resources ?? {})) {
    const properties = resource.Properties ?? {};
    if (resource.Type === 'AWS::CloudWatch::Dashboard') {
      const body = renderBody(properties.DashboardBody);
      for (const name of dashboardMetricNames(body, namespace)) names.add(name);
    }
    if (resource.Type === 'AWS::CloudWatch::Alarm') {
      for (const name of alarmMetricNames(properties, namespace)) names.add(name);
    }
  }
  return names;
}

// ---------------------------------------------------------------------------------
// Emitted

export interface EmittedMetrics {
  names: Set<string>;
  /** `file:line: call` of each addMetric call whose name the scan could not resolve. */
  unresolved: string[];
}

/** Scans one source file for the metric names its `.addMetric(...)` calls emit. */
export function scanEmittedMetrics(
  source: string,
  fileName: string,
  metrics: Readonly<Record<string, string>> = METRIC,
): EmittedMetrics {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const names = new Set<string>();
  const unresolved: string[] = [];

  const constInitializers = new Map<string, ts.Expression[]>();
  const collectConsts = (node: ts.Node): void => {
    if (
      ts.isVariableDeclarationList(node) &&
      (node.flags & ts.NodeFlags.Const) !== 0 &&
      node.declarations.length > 0
    ) {
      for (const declaration of node.declarations) {
        if (ts.isIdentifier(declaration.name) && declaration.initializer) {
          const list = constInitializers.get(declaration.name.text) ?? [];
          list.push(declaration.initializer);
          constInitializers.set(declaration.name.text, list);
        }
      }
    }
    ts.forEachChild(node, collectConsts);
  };
  collectConsts(file);

  /** `METRIC.key` / `METRIC['key']` → the metric name; undefined when not that shape. */
  const metricReference = (node: ts.Node): string | undefined => {
    let key: string | undefined;
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
      if (node.expression.text === 'METRIC') key = node.name.text;
    } else if (
      ts.isElementAccessExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'METRIC' &&
      ts.isStringLiteralLike(node.argumentExpression)
    ) {
      key = node.argumentExpression.text;
    }
    if (key === undefined) return undefined;
    const name = metrics[key];
    if (name === undefined) throw new Error(`${fileName}: METRIC.${key} is not in METRIC`);
    return name;
  };

  /** Every `METRIC.<key>` inside a node (a lookup table's values). */
  const referencesWithin = (node: ts.Node): string[] => {
    const found: string[] = [];
    const visit = (child: ts.Node): void => {
      const name = metricReference(child);
      if (name !== undefined) found.push(name);
      else ts.forEachChild(child, visit);
    };
    visit(node);
    return found;
  };

  /** The names an addMetric name argument can take; undefined when not resolvable. */
  const resolve = (node: ts.Expression, depth = 0): string[] | undefined => {
    if (depth > 5) return undefined;
    const direct = metricReference(node);
    if (direct !== undefined) return [direct];
    if (ts.isStringLiteralLike(node)) return [node.text];
    if (
      ts.isParenthesizedExpression(node) ||
      ts.isAsExpression(node) ||
      ts.isSatisfiesExpression(node) ||
      ts.isNonNullExpression(node)
    ) {
      return resolve(node.expression, depth + 1);
    }
    if (ts.isConditionalExpression(node)) {
      const whenTrue = resolve(node.whenTrue, depth + 1);
      const whenFalse = resolve(node.whenFalse, depth + 1);
      return whenTrue && whenFalse ? [...whenTrue, ...whenFalse] : undefined;
    }
    if (ts.isIdentifier(node)) {
      // A const holding one name, e.g. `const name = METRIC.eventsFailed`.
      const initializers = constInitializers.get(node.text);
      if (!initializers) return undefined;
      const resolved = initializers.map((init) => resolve(init, depth + 1));
      return resolved.every((r) => r !== undefined) ? resolved.flat() : undefined;
    }
    if (
      (ts.isElementAccessExpression(node) || ts.isPropertyAccessExpression(node)) &&
      ts.isIdentifier(node.expression)
    ) {
      // A const lookup table indexed at the call: any of its METRIC values may be emitted.
      const tables = constInitializers.get(node.expression.text) ?? [];
      const found = tables.flatMap(referencesWithin);
      return found.length > 0 ? found : undefined;
    }
    return undefined;
  };

  const visit = (node: ts.Node): void => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.name.text === 'addMetric'
    ) {
      const [nameArgument] = node.arguments;
      const resolved = nameArgument ? resolve(nameArgument) : undefined;
      if (resolved) {
        for (const name of resolved) names.add(name);
      } else {
        const { line } = file.getLineAndCharacterOfPosition(node.getStart(file));
        unresolved.push(`${fileName}:${line + 1}: ${node.getText(file).split('\n')[0]}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { names, unresolved };
}

/** Scans every `.ts` file under `dir` (recursively). */
export function emittedMetricNames(dir: string, root = dir): EmittedMetrics {
  const names = new Set<string>();
  const unresolved: string[] = [];
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .sort();
  for (const file of files) {
    const path = join(dir, file);
    const scanned = scanEmittedMetrics(readFileSync(path, 'utf8'), relative(root, path));
    for (const name of scanned.names) names.add(name);
    unresolved.push(...scanned.unresolved);
  }
  return { names, unresolved };
}

/** Graphed names nobody emits, sorted: what the coverage test expects to be empty. */
export function unemitted(graphed: Iterable<string>, emitted: ReadonlySet<string>): string[] {
  return [...new Set(graphed)].filter((name) => !emitted.has(name)).sort();
}
