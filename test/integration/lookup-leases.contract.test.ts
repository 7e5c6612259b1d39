/**
 * The read route's leases on users' Stripe lookups, one contract for the in-memory fake
 * and the DynamoDB adapter on DynamoDB Local: one holder at a time, a live lease
 * answered to the others, ends that only the holder can write, expiry.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStripeLookupLeases } from '../../functions/adapters/dynamodb/dynamodb-lookup-leases.ts';
import { InMemoryStripeLookupLeases } from '../../functions/adapters/memory/in-memory-lookup-leases.ts';
import type { StripeLookupLeases } from '../../functions/core/subscriptions/ports.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';

let counter = 0;
const freshUser = () => `lease-user-${Date.now().toString(36)}-${counter++}`;
const now = 1_800_000_000_000;

function contract(name: string, make: () => Promise<StripeLookupLeases>) {
  describe(`StripeLookupLeases contract: ${name}`, () => {
    let leases: StripeLookupLeases;
    beforeAll(async () => {
      leases = await make();
    });

    it('gives a user lease to one of many at once and answers the others with it', async () => {
      const userId = freshUser();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          leases.acquire(userId, `token-${i}`, now, now + 12_000),
        ),
      );
      expect(results.filter((result) => result === null)).toHaveLength(1);
      for (const result of results.filter((each) => each !== null)) {
        expect(result).toEqual({ state: 'running', untilMs: now + 12_000 });
      }
      expect(await leases.read(userId)).toEqual({ state: 'running', untilMs: now + 12_000 });
      expect(await leases.read(freshUser())).toBeNull();
    });

    it('keeps the outcome its holder leaves, and ignores an end by anyone else', async () => {
      const userId = freshUser();
      expect(await leases.acquire(userId, 'holder', now, now + 12_000)).toBeNull();
      await leases.end(userId, 'someone-else', { state: 'unavailable', untilMs: now + 1 });
      expect(await leases.read(userId)).toEqual({ state: 'running', untilMs: now + 12_000 });
      await leases.end(userId, 'holder', { state: 'unknown', untilMs: now + 60_000 });
      expect(await leases.acquire(userId, 'next', now + 1_000, now + 13_000)).toEqual({
        state: 'unknown',
        untilMs: now + 60_000,
      });
    });

    it.each(['unknown', 'unavailable', 'rejected'] as const)(
      'reads back a lookup that ended %s until its time is up',
      async (state) => {
        const userId = freshUser();
        expect(await leases.acquire(userId, 'holder', now, now + 12_000)).toBeNull();
        await leases.end(userId, 'holder', { state, untilMs: now + 5_000 });
        expect(await leases.read(userId)).toEqual({ state, untilMs: now + 5_000 });
        expect(await leases.acquire(userId, 'next', now + 4_999, now + 17_000)).toEqual({
          state,
          untilMs: now + 5_000,
        });
        expect(await leases.acquire(userId, 'next', now + 5_000, now + 17_000)).toBeNull();
      },
    );

    it('lets the next request take a lease once it has expired or been released', async () => {
      const userId = freshUser();
      expect(await leases.acquire(userId, 'first', now, now + 12_000)).toBeNull();
      // Expired: the first holder's instance stopped.
      expect(await leases.acquire(userId, 'second', now + 12_000, now + 24_000)).toBeNull();
      // The first holder's late end changes nothing now.
      await leases.end(userId, 'first', { state: 'released' });
      expect(await leases.read(userId)).toEqual({ state: 'running', untilMs: now + 24_000 });
      await leases.end(userId, 'second', { state: 'released' });
      expect(await leases.acquire(userId, 'third', now + 13_000, now + 25_000)).toBeNull();
    });
  });
}

contract('in-memory', async () => new InMemoryStripeLookupLeases());
contract('DynamoDB Local', async () => {
  const { dynamo } = emulatorClients();
  const tables = await createBillingTables(dynamo);
  return new DynamoDbStripeLookupLeases({
    client: dynamo,
    billingTableName: tables.billingTableName,
  });
});
