/**
 * `POST /admin/credits/refresh` when SQS does not take the work: SQS down, throttling
 * or failing entries on its side answers 503 with Retry-After and no AWS detail; our
 * own fault (a malformed entry, a refused call) stays a 500. Real SqsRefreshQueue over
 * a fake SQS client.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { SqsRefreshQueue } from '../../../functions/adapters/sqs/sqs-refresh-queue.ts';
import { CREDIT_ROUTES } from '../../../functions/commons/routes.ts';
import { createCreditAdminHandler } from '../../../functions/credit-admin.ts';
import { httpApiEvent } from '../../helpers/apigw-events.ts';
import { at, fakes, usersInSlot } from './credit-fixtures.ts';

const context = { functionName: 'credit-admin-test', awsRequestId: 'req-1' } as Context;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const now = at('2026-12-03T10:02:00Z');
const slot = 120;
/** What SQS said: it must reach the logs only, never the caller. */
const awsDetail = 'We encountered an internal error at sqs-node-7f3a. Please try again.';

/** An AWS SDK service error as the client throws it (after its own retries). */
function sdkError(name: string, fault: 'client' | 'server', status: number): Error {
  return Object.assign(new Error(awsDetail), {
    name,
    $fault: fault,
    $metadata: { httpStatusCode: status, requestId: 'req-aws-1', attempts: 3 },
  });
}

/** A fake SQS client: `answer` throws or returns each SendMessageBatch's output. */
function fakeSqs(answer: (entryIds: string[]) => unknown): { client: SQSClient; calls: number[] } {
  const calls: number[] = [];
  const client = {
    send: async (command: { input: { Entries?: { Id?: string }[] } }) => {
      const ids = (command.input.Entries ?? []).map((entry) => entry.Id ?? '');
      calls.push(ids.length);
      return answer(ids);
    },
  } as unknown as SQSClient;
  return { client, calls };
}

async function refreshNow(client: SQSClient) {
  const { store } = fakes(usersInSlot(slot, 30));
  const queue = new SqsRefreshQueue({ queueUrl: 'https://sqs.test/q', client, backoffBaseMs: 0 });
  const handler = createCreditAdminHandler({
    store,
    queue,
    clock: { now: () => now },
    logger: silent as never,
  });
  return handler(
    httpApiEvent({
      method: 'POST',
      routeKey: `POST ${CREDIT_ROUTES.refresh}`,
      path: CREDIT_ROUTES.refresh,
      body: JSON.stringify({ slots: [slot] }),
      headers: { 'content-type': 'application/json' },
    }),
    context,
  );
}

function expectRetryLater(response: Awaited<ReturnType<typeof refreshNow>>): void {
  expect(response.statusCode).toBe(503);
  expect(response.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  expect(JSON.parse(response.body)).toEqual({
    error: {
      code: 'service_unavailable',
      message: 'Service temporarily unavailable; retry later.',
    },
  });
  expect(response.body).not.toContain('sqs-node');
  expect(response.body).not.toContain('InternalError');
}

describe('POST /admin/credits/refresh when SQS fails', () => {
  it('answers 503 with Retry-After when SendMessageBatch fails with an SQS InternalError', async () => {
    const { client } = fakeSqs(() => {
      throw sdkError('InternalError', 'server', 500);
    });
    expectRetryLater(await refreshNow(client));
  });

  it('answers 503 with Retry-After when SQS throttles the call', async () => {
    const { client } = fakeSqs(() => {
      throw sdkError('ThrottlingException', 'client', 400);
    });
    expectRetryLater(await refreshNow(client));
  });

  it('answers 503 with Retry-After when SQS keeps failing entries on its side', async () => {
    const { client, calls } = fakeSqs((ids) => ({
      Successful: [],
      Failed: ids.map((Id) => ({
        Id,
        Code: 'InternalError',
        Message: awsDetail,
        SenderFault: false,
      })),
      $metadata: {},
    }));
    expectRetryLater(await refreshNow(client));
    // The adapter resent the failed entries before giving up.
    expect(calls.length).toBeGreaterThan(1);
  });

  it('answers 500 for a sender fault (our malformed message): a retry would fail alike', async () => {
    const { client } = fakeSqs((ids) => ({
      Successful: [],
      Failed: ids.map((Id) => ({
        Id,
        Code: 'InvalidMessageContents',
        Message: awsDetail,
        SenderFault: true,
      })),
      $metadata: {},
    }));
    const response = await refreshNow(client);
    expect(response.statusCode).toBe(500);
    expect(response.headers['retry-after']).toBeUndefined();
    expect(JSON.parse(response.body).error.code).toBe('internal_error');
  });

  it('answers 500 when SQS refuses the call as our fault (access denied)', async () => {
    const { client } = fakeSqs(() => {
      throw sdkError('AccessDenied', 'client', 403);
    });
    const response = await refreshNow(client);
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('sqs-node');
  });

  it('still answers 200 with the planned count when SQS takes the work', async () => {
    const { client } = fakeSqs(() => ({ Successful: [], Failed: [], $metadata: {} }));
    const response = await refreshNow(client);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ planned: 30 });
  });
});
