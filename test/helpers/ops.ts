/** The operator commands' entry run in this process on a given target, its output captured. */
import { runOps } from '../../local/operations/cli.ts';
import type { OpsTarget, TargetDescription } from '../../local/operations/target.ts';

/** `onConnect` gets the connected target before the command runs (to add a fault to its clients). */
export async function runOpsOn(
  target: TargetDescription,
  argv: readonly string[],
  onConnect?: (connected: OpsTarget) => void,
): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runOps(argv, {
    target,
    ...(onConnect ? { onConnect } : {}),
    print: (line) => lines.push(line),
    printError: (line) => lines.push(line),
  });
  return { code, out: lines.join('\n') };
}
