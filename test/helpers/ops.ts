/** The operator commands' entry run in this process on a given target, its output captured. */
import { inject } from 'vitest';
import { runOps } from '../../local/operations/cli.ts';
import type { OpsTarget, TargetDescription } from '../../local/operations/target.ts';
import { uniqueName } from './aws-clients.ts';
import type { createBillingTables } from './billing-tables.ts';

/**
 * A target on the test run's emulators and the tables `createBillingTables` made; the
 * queues and settings are the test's own.
 */
export function emulatorTarget(
  tables: Awaited<ReturnType<typeof createBillingTables>>,
  rest: Omit<TargetDescription, 'where' | 'endpoints' | 'tables'>,
): TargetDescription {
  return {
    where: `ops test ${uniqueName('run')}`,
    endpoints: { dynamo: inject('dynamoEndpoint'), sqs: inject('sqsEndpoint') },
    tables: {
      billing: tables.billingTableName,
      ledger: tables.ledgerTableName,
      payments: tables.byLocalName['billing-suite-payments']!,
      penalties: tables.byLocalName['billing-suite-penalties']!,
    },
    ...rest,
  };
}

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
