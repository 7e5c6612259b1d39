/**
 * One contract, two implementations: the in-memory fake the unit and property
 * tests rely on must behave like the DynamoDB adapter on DynamoDB Local.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
} from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { InMemorySubscriptionStore } from '../../functions/adapters/memory/in-memory-subscription-store.ts';
import {
  type CustomerAccount,
  emptyAccount,
  type UserSubscriptionView,
} from '../../functions/core/customer-account.ts';
import type {
  AccountCommit,
  SubscriptionStore,
  UserViewReader,
} from '../../functions/core/ports.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';

type Store = SubscriptionStore & UserViewReader;

/** The event ids of `eventIds` that the ledger holds, through the port's batch read. */
const ledgerHas = async (store: Store, eventIds: string[]) =>
  (await store.loadBatchState(eventIds, [])).processedEventIds;

// DynamoDB Local runs TTL deletion: ledger entries must be stamped "now", or
// they expire (and vanish) while the test reads them.
const appliedAt = Date.now();
let counter = 0;
const fresh = (prefix: string) => `${prefix}${Date.now().toString(36)}${counter++}`;

function accountFor(customerId: string, userId: string | null): CustomerAccount {
  return {
    ...emptyAccount(customerId),
    userId,
    linkVersion: userId ? { created: 1, rank: 1, eventId: 'evt_link' } : null,
    subscriptions: {
      sub_1: {
        subscriptionId: 'sub_1',
        status: 'active',
        tier: 'gold',
        priceIds: ['price_1'],
        currentPeriodEnd: 1_900_000_000,
        cancelAtPeriodEnd: false,
        createdAt: 10,
        version: { created: 11, rank: 1, eventId: 'evt_sub' },
      },
    },
  };
}

function view(userId: string, customerId: string): UserSubscriptionView {
  return {
    userId,
    tier: 'gold',
    status: 'active',
    stripeCustomerId: customerId,
    subscriptionId: 'sub_1',
    priceId: 'price_1',
    currentPeriodEnd: 1_900_000_000,
    cancelAtPeriodEnd: false,
    latestInvoiceOutcome: null,
  };
}

function commitFor(
  customerId: string,
  expectedRevision: number,
  eventIds: string[],
  userId = fresh('user-'),
): AccountCommit {
  return {
    customerId,
    expectedRevision,
    account: accountFor(customerId, userId),
    ledger: eventIds.map((eventId) => ({
      eventId,
      type: 'customer.subscription.updated',
      customerId,
      userId,
      outcome: 'applied',
      receivedAt: appliedAt - 1_000,
      appliedAt,
    })),
    view: view(userId, customerId),
    newSubscriptionIds: ['sub_1'],
  };
}

function contract(name: string, make: () => Promise<Store>) {
  describe(`SubscriptionStore contract: ${name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await make();
    });

    it('commits an account, its ledger entries and the view atomically', async () => {
      const customerId = fresh('cus_');
      const commit = commitFor(customerId, 0, [fresh('evt_a'), fresh('evt_b')]);
      expect(await store.commit(commit)).toEqual({ status: 'committed' });
      const loaded = await store.loadAccounts([customerId]);
      expect(loaded.get(customerId)).toEqual({ account: commit.account, revision: 1 });
      expect(await ledgerHas(store, [...commit.ledger.map((e) => e.eventId), 'evt_never'])).toEqual(
        new Set(commit.ledger.map((e) => e.eventId)),
      );
      expect(await store.getUserView(commit.view!.userId)).toEqual(commit.view);
    });

    it('refuses a commit on a stale revision and writes nothing of it', async () => {
      const customerId = fresh('cus_');
      expect((await store.commit(commitFor(customerId, 0, [fresh('evt_')]))).status).toBe(
        'committed',
      );
      const stale = commitFor(customerId, 0, [fresh('evt_stale')]);
      expect(await store.commit(stale)).toEqual({ status: 'revision-conflict' });
      expect(await ledgerHas(store, [stale.ledger[0]!.eventId])).toEqual(new Set());
      expect(await store.getUserView(stale.view!.userId)).toBeNull();
      expect((await store.loadAccounts([customerId])).get(customerId)?.revision).toBe(1);
    });

    it('names the events already in the ledger and writes nothing of the commit', async () => {
      const customerId = fresh('cus_');
      const seen = fresh('evt_seen');
      expect((await store.commit(commitFor(customerId, 0, [seen]))).status).toBe('committed');
      const other = fresh('cus_');
      const retry = commitFor(other, 0, [fresh('evt_new'), seen]);
      expect(await store.commit(retry)).toEqual({ status: 'duplicate-events', eventIds: [seen] });
      expect(await store.loadAccounts([other])).toEqual(new Map());
      expect(await ledgerHas(store, [retry.ledger[0]!.eventId])).toEqual(new Set());
    });

    it('lets exactly one of two racing commits on the same revision win', async () => {
      const customerId = fresh('cus_');
      const results = await Promise.all([
        store.commit(commitFor(customerId, 0, [fresh('evt_x')])),
        store.commit(commitFor(customerId, 0, [fresh('evt_y')])),
      ]);
      expect(results.filter((r) => r.status === 'committed')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'revision-conflict')).toHaveLength(1);
    });

    it('commits many customers at once; a losing commit aborts at most its companions, which resend fine', async () => {
      const seen = fresh('evt_seen');
      const first = fresh('cus_');
      await store.commit(commitFor(first, 0, [seen]));
      const others = [fresh('cus_'), fresh('cus_')];
      const commits = [
        commitFor(others[0]!, 0, [fresh('evt_')]),
        commitFor(fresh('cus_'), 0, [fresh('evt_'), seen]),
        commitFor(others[1]!, 0, [fresh('evt_')]),
      ];
      const results = await store.commitAll(commits);
      expect(results[1]).toEqual({ status: 'duplicate-events', eventIds: [seen] });
      for (const index of [0, 2]) {
        expect(['committed', 'aborted']).toContain(results[index]!.status);
        if (results[index]!.status === 'aborted') {
          expect(await store.commit(commits[index]!)).toEqual({ status: 'committed' });
        }
      }
      const loaded = await store.loadAccounts(others);
      expect([...loaded.values()].map((stored) => stored.revision)).toEqual([1, 1]);
    });

    it('loads many accounts at once and leaves missing ones out', async () => {
      const ids = Array.from({ length: 3 }, () => fresh('cus_'));
      for (const id of ids) await store.commit(commitFor(id, 0, [fresh('evt_')]));
      const loaded = await store.loadAccounts([...ids, 'cus_missing']);
      expect([...loaded.keys()].sort()).toEqual([...ids].sort());
    });

    it('checks more ledger ids than one batch read holds', async () => {
      const customerId = fresh('cus_');
      const eventIds = Array.from({ length: 60 }, () => fresh('evt_many'));
      await store.commit(commitFor(customerId, 0, eventIds));
      const asked = [...eventIds, ...Array.from({ length: 80 }, () => fresh('evt_none'))];
      expect(await ledgerHas(store, asked)).toEqual(new Set(eventIds));
    });

    it('reads a batch state (seen events and accounts) in one call', async () => {
      const customerId = fresh('cus_');
      const seen = fresh('evt_seen');
      const commit = commitFor(customerId, 0, [seen]);
      await store.commit(commit);
      const state = await store.loadBatchState(
        [seen, fresh('evt_unseen')],
        [customerId, 'cus_missing'],
      );
      expect(state.processedEventIds).toEqual(new Set([seen]));
      expect([...state.accounts.keys()]).toEqual([customerId]);
      expect(state.accounts.get(customerId)).toEqual({ account: commit.account, revision: 1 });
    });

    it('answers null for a user it has never seen', async () => {
      expect(await store.getUserView(fresh('nobody-'))).toBeNull();
    });
  });
}

contract('in-memory', async () => new InMemorySubscriptionStore());
contract('in-memory, packed', async () => new InMemorySubscriptionStore({ packed: true }));

contract('DynamoDB Local', async () => {
  const { dynamo } = emulatorClients();
  const tables = await createBillingTables(dynamo);
  const store = new DynamoDbSubscriptionStore({ client: dynamo, ...tables });
  const reader = new DynamoDbUserViewReader({
    client: dynamo,
    billingTableName: tables.billingTableName,
  });
  return Object.assign(store, { getUserView: reader.getUserView.bind(reader) });
});

describe('DynamoDbSubscriptionStore items', () => {
  it('writes the ledger with a TTL and a subscription pointer', async () => {
    const { dynamo } = emulatorClients();
    const tables = await createBillingTables(dynamo);
    const store = new DynamoDbSubscriptionStore({
      client: dynamo,
      ...tables,
      ledgerRetentionDays: 10,
    });
    const customerId = fresh('cus_');
    const commit = commitFor(customerId, 0, ['evt_ttl']);
    await store.commit(commit);
    const ledger = await dynamo.send(
      new GetItemCommand({ TableName: tables.eventsTableName, Key: { eventId: { S: 'evt_ttl' } } }),
    );
    expect(Number(ledger.Item?.expiresAt?.N)).toBe(Math.floor(appliedAt / 1000) + 10 * 86_400);
    expect(ledger.Item?.outcome?.S).toBe('applied');
    const pointer = await dynamo.send(
      new GetItemCommand({
        TableName: tables.billingTableName,
        Key: { pk: { S: 'SUBSCRIPTION#sub_1' }, sk: { S: 'SUBSCRIPTION' } },
      }),
    );
    expect(pointer.Item?.customerId?.S).toBe(customerId);
  });
});
