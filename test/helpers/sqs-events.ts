import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { loadAwsEvent } from './fixtures.ts';

let sequence = 0;

/**
 * An SQS batch in Lambda's shape, built on the captured real record
 * (test/fixtures/aws/sqs.powertools.json), carrying the webhook's message attributes.
 */
export function sqsBatch(
  bodies: readonly string[],
  options: { receivedAt?: number } = {},
): SQSEvent {
  const template = loadAwsEvent('sqs.powertools').Records[0]!;
  const now = Date.now();
  return {
    Records: bodies.map((body): SQSRecord => {
      sequence += 1;
      let eventId = '';
      let eventType = '';
      try {
        const parsed = JSON.parse(body) as { id?: string; type?: string };
        eventId = parsed.id ?? '';
        eventType = parsed.type ?? '';
      } catch {
        // Malformed on purpose in some tests.
      }
      return {
        ...template,
        messageId: `msg-${process.pid}-${sequence}`,
        receiptHandle: `handle-${sequence}`,
        body,
        attributes: {
          ...template.attributes,
          SentTimestamp: String(now),
          ApproximateFirstReceiveTimestamp: String(now),
          ApproximateReceiveCount: '1',
        },
        messageAttributes: {
          eventId: {
            stringValue: eventId,
            dataType: 'String',
            stringListValues: [],
            binaryListValues: [],
          },
          eventType: {
            stringValue: eventType,
            dataType: 'String',
            stringListValues: [],
            binaryListValues: [],
          },
          receivedAt: {
            stringValue: String(options.receivedAt ?? now),
            dataType: 'Number',
            stringListValues: [],
            binaryListValues: [],
          },
        },
      };
    }),
  };
}
