/**
 * The CDK app imports constants and parsers from `functions/` (env names, index names,
 * config parsers), never a module that builds runtime state at import. The shared
 * Powertools logger reads its level when it is built: imported by the app (the local
 * runtime and the tests synthesize it first), it was built before the runtime set the
 * level, and every handler logged nothing (the personal-data log test caught it).
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

/** Modules that build state when imported: the shared logger and metrics, the SDK clients. */
const STATEFUL = ['functions/commons/powertools.ts', 'functions/commons/aws-clients.ts'];

/** Relative value imports and re-exports (type-only ones are erased, so they do not count). */
function valueImportsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  const pattern = /^(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gms;
  for (const match of source.matchAll(pattern)) {
    specifiers.push(resolve(dirname(file), match[1]!));
  }
  return specifiers;
}

/** Every project module `entry` loads, as paths relative to the repository. */
function importGraphOf(entry: string): Set<string> {
  const seen = new Set<string>();
  const pending = [resolve(ROOT, entry)];
  while (pending.length > 0) {
    const file = pending.pop()!;
    const name = relative(ROOT, file);
    if (seen.has(name)) continue;
    seen.add(name);
    pending.push(...valueImportsOf(file));
  }
  return seen;
}

describe('the CDK app import graph', () => {
  it('reaches no module that builds a logger or an SDK client at import', () => {
    const graph = importGraphOf('bin/app.ts');
    expect(graph.has('lib/credit-refresh.ts')).toBe(true);
    expect(graph.has('functions/commons/env-names.ts')).toBe(true);
    expect(STATEFUL.filter((name) => graph.has(name))).toEqual([]);
  });

  it('is walked the way the handlers load: a handler does reach both', () => {
    const graph = importGraphOf('functions/credit-worker.ts');
    expect(STATEFUL.filter((name) => graph.has(name))).toEqual(STATEFUL);
  });
});

describe('the local runtime entry (npm start)', () => {
  it('sets the handlers log level before its imports build the shared logger', () => {
    // ES modules are evaluated in the order of their imports: the environment module
    // first, importing nothing itself, runs before anything that builds a logger.
    const [first] = valueImportsOf(resolve(ROOT, 'local/start.ts'));
    expect(relative(ROOT, first!)).toBe('local/start-environment.ts');
    expect(valueImportsOf(first!)).toEqual([]);
    expect(readFileSync(first!, 'utf8')).toContain('POWERTOOLS_LOG_LEVEL ??=');
    // Why it must come first: the rest of start.ts's imports do reach the logger.
    expect(importGraphOf('local/start.ts').has(STATEFUL[0]!)).toBe(true);
  });
});
