import { inject } from 'vitest';
import { emulatorClients as clientsAt } from '../../local/emulators.ts';

/** Real SDK clients pointed at the emulators the global setup started. */
export function emulatorClients() {
  return clientsAt({ dynamo: inject('dynamoEndpoint'), sqs: inject('sqsEndpoint') });
}

/** A name no other test file uses, for tables and queues. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
