/**
 * The DLQ redrive against a scripted SQS: a message sent back to its queue whose
 * delete from the DLQ SQS refused is reported, not passed over in silence.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { redrive } from '../../local/operations/dead-letters.ts';

const queue = {
  name: 'Events',
  url: 'http://sqs/Events',
  deadLetter: { name: 'EventsDlq', url: 'http://sqs/EventsDlq' },
};

/** An SQS whose DLQ holds two messages once, and which refuses to delete the second. */
function scriptedSqs() {
  let received = false;
  const send = async (command: unknown) => {
    if (command instanceof ReceiveMessageCommand) {
      if (received) return { Messages: [] };
      received = true;
      return {
        Messages: ['m-1', 'm-2'].map((id) => ({
          MessageId: id,
          ReceiptHandle: `rh-${id}`,
          Body: '{}',
        })),
      };
    }
    if (command instanceof SendMessageBatchCommand) {
      return {
        Successful: (command.input.Entries ?? []).map((entry) => ({ Id: entry.Id })),
        Failed: [],
      };
    }
    if (command instanceof DeleteMessageBatchCommand) {
      return {
        Successful: [{ Id: '0' }],
        Failed: [{ Id: '1', Code: 'ReceiptHandleIsInvalid', SenderFault: true }],
      };
    }
    throw new Error(`unexpected ${String(command)}`);
  };
  return { send } as unknown as SQSClient;
}

describe('redrive', () => {
  it('reports the messages it sent back but could not delete from the DLQ', async () => {
    const notDeleted: { messageId: string; code: string }[] = [];
    const moved = await redrive(scriptedSqs(), queue, {
      onNotDeleted: (messages) => notDeleted.push(...messages),
    });
    expect(moved).toBe(2);
    expect(notDeleted).toEqual([{ messageId: 'm-2', code: 'ReceiptHandleIsInvalid' }]);
  });
});
