/** The operator commands' entry run in this process on a given target, its output captured. */
import { runOps } from '../../local/operations/cli.ts';
import type { TargetDescription } from '../../local/operations/target.ts';

export async function runOpsOn(
  target: TargetDescription,
  argv: readonly string[],
): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runOps(argv, {
    target,
    print: (line) => lines.push(line),
    printError: (line) => lines.push(line),
  });
  return { code, out: lines.join('\n') };
}
