/**
 * One contract, two implementations: the in-memory fake the unit and property
 * tests rely on must behave like the DynamoDB adapter on DynamoDB Local.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { itemSize } from '../../bench/dynamo-capacity.ts';
import { billingKeys as keys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import {
  DynamoDbSubscriptionStore,
  DynamoDbUserViewReader,
  decodeAccount,
} from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { InMemorySubscriptionStore } from '../../functions/adapters/memory/in-memory-subscription-store.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../functions/core/credits/allowances.ts';
import {
  type CustomerAccount,
  emptyAccount,
  type UserSubscriptionView,
} from '../../functions/core/subscriptions/customer-account.ts';
import type {
  AccountCommit,
  LedgerReader,
  ResyncMarkReader,
  SubscriptionStore,
  UserViewReader,
} from '../../functions/core/subscriptions/ports.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { activeView } from '../helpers/subscription-views.ts';

type Store = SubscriptionStore & LedgerReader & UserViewReader & ResyncMarkReader;

/** Every event id the customer's ledger pages record, in page order. */
const ledgerIds = async (store: Store, customerId: string) =>
  (await store.readLedger(customerId)).flatMap((page) => page.events.map((e) => e.eventId));

// DynamoDB Local runs TTL deletion: ledger pages must be stamped "now", or
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

const view = (userId: string, customerId: string) => activeView(userId, customerId, 'gold');

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
    recentEvents: eventIds.map((eventId) => eventId.slice(-8)),
    ledger: {
      appliedAt,
      events: eventIds.map((eventId) => ({
        eventId,
        type: 'customer.subscription.updated',
        outcome: 'applied',
        receivedAt: appliedAt - 1_000,
      })),
    },
    view: view(userId, customerId),
    newSubscriptionIds: ['sub_1'],
    resyncMark: null,
    unlinkedUserId: null,
  };
}

function contract(name: string, make: () => Promise<Store>) {
  describe(`SubscriptionStore contract: ${name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await make();
    });

    it('commits an account, its ledger page and the view atomically', async () => {
      const customerId = fresh('cus_');
      const commit = commitFor(customerId, 0, [fresh('evt_a'), fresh('evt_b')]);
      expect(await store.commit(commit)).toEqual({ status: 'committed' });
      const loaded = await store.loadAccounts([customerId]);
      expect(loaded.get(customerId)).toEqual({
        account: commit.account,
        revision: 1,
        recentEvents: commit.recentEvents,
      });
      expect(await store.readLedger(customerId)).toEqual([
        {
          customerId,
          revision: 1,
          userId: commit.account.userId,
          appliedAt,
          events: commit.ledger.events,
        },
      ]);
      expect(await store.getUserView(commit.view!.userId)).toEqual(commit.view);
      expect(await store.lookupUser(commit.view!.userId)).toEqual({
        view: commit.view,
        stripeCustomerId: customerId,
        profile: { exists: true, views: { [customerId]: commit.view }, revision: 1 },
      });
    });

    it('appends one ledger page per revision, oldest first', async () => {
      const customerId = fresh('cus_');
      const first = [fresh('evt_1')];
      const second = [fresh('evt_2'), fresh('evt_3')];
      expect((await store.commit(commitFor(customerId, 0, first))).status).toBe('committed');
      expect((await store.commit(commitFor(customerId, 1, second))).status).toBe('committed');
      const pages = await store.readLedger(customerId);
      expect(pages.map((page) => page.revision)).toEqual([1, 2]);
      expect(await ledgerIds(store, customerId)).toEqual([...first, ...second]);
      expect(await store.readLedger(fresh('cus_none'))).toEqual([]);
    });

    it('refuses a commit on a stale revision and writes nothing of it', async () => {
      const customerId = fresh('cus_');
      const first = commitFor(customerId, 0, [fresh('evt_')]);
      expect((await store.commit(first)).status).toBe('committed');
      const stale = commitFor(customerId, 0, [fresh('evt_stale')]);
      expect(await store.commit(stale)).toEqual({ status: 'revision-conflict' });
      expect(await ledgerIds(store, customerId)).toEqual([first.ledger.events[0]!.eventId]);
      expect(await store.getUserView(stale.view!.userId)).toBeNull();
      expect((await store.loadAccounts([customerId])).get(customerId)?.revision).toBe(1);
    });

    it('lets exactly one of two racing commits on the same revision win', async () => {
      const customerId = fresh('cus_');
      const results = await Promise.all([
        store.commit(commitFor(customerId, 0, [fresh('evt_x')])),
        store.commit(commitFor(customerId, 0, [fresh('evt_y')])),
      ]);
      expect(results.filter((r) => r.status === 'committed')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'revision-conflict')).toHaveLength(1);
      expect(await ledgerIds(store, customerId)).toHaveLength(1);
    });

    it('commits many customers at once; a losing commit aborts at most its companions, which resend fine', async () => {
      const taken = fresh('cus_');
      await store.commit(commitFor(taken, 0, [fresh('evt_')]));
      const others = [fresh('cus_'), fresh('cus_')];
      const commits = [
        commitFor(others[0]!, 0, [fresh('evt_')]),
        commitFor(taken, 0, [fresh('evt_late')]),
        commitFor(others[1]!, 0, [fresh('evt_')]),
      ];
      const results = await store.commitAll(commits);
      expect(results[1]).toEqual({ status: 'revision-conflict' });
      for (const index of [0, 2]) {
        expect(['committed', 'aborted']).toContain(results[index]!.status);
        if (results[index]!.status === 'aborted') {
          expect(await store.commit(commits[index]!)).toEqual({ status: 'committed' });
        }
      }
      const loaded = await store.loadAccounts(others);
      expect([...loaded.values()].map((stored) => stored.revision)).toEqual([1, 1]);
      expect(await ledgerIds(store, taken)).toHaveLength(1);
    });

    it('commits and loads more accounts than one transaction or batch read holds', async () => {
      const ids = Array.from({ length: 120 }, () => fresh('cus_many'));
      const results = await store.commitAll(ids.map((id) => commitFor(id, 0, [fresh('evt_')])));
      expect(results.every((result) => result.status === 'committed')).toBe(true);
      const loaded = await store.loadAccounts([...ids, 'cus_missing']);
      expect([...loaded.keys()].sort()).toEqual([...ids].sort());
    });

    it('lists a customer marked for resync until a commit clears the mark', async () => {
      const customerId = fresh('cus_tie');
      const marked = commitFor(customerId, 0, [fresh('evt_')]);
      marked.account = { ...marked.account, unresolvedTies: { sub_1: 1_700_000_000 } };
      marked.resyncMark = 'set';
      expect(await store.commit(marked)).toEqual({ status: 'committed' });
      const open = (await store.listResyncMarks()).filter((m) => m.customerId === customerId);
      expect(open).toEqual([
        { customerId, subscriptions: { sub_1: 1_700_000_000 }, markedAt: appliedAt },
      ]);
      const cleared = commitFor(customerId, 1, [fresh('evt_')]);
      cleared.resyncMark = 'clear';
      expect(await store.commit(cleared)).toEqual({ status: 'committed' });
      expect((await store.listResyncMarks()).some((m) => m.customerId === customerId)).toBe(false);
    });

    describe('one user, several customers', () => {
      /** A commit of `customerId` whose view for `userId` has the given standing. */
      const standing = (
        customerId: string,
        expectedRevision: number,
        userId: string,
        change: Partial<UserSubscriptionView>,
      ): AccountCommit => {
        const commit = commitFor(customerId, expectedRevision, [fresh('evt_')], userId);
        return { ...commit, view: { ...commit.view!, ...change }, newSubscriptionIds: [] };
      };
      const canceled = {
        tier: 'free',
        status: 'canceled',
        currentPeriodEnd: 1_800_000_000,
      } as const;
      const silver = { tier: 'silver', status: 'active' } as const;

      it('shows the best of the customers, and a late change of a lesser one does not take over', async () => {
        const userId = fresh('user-');
        const [oldCustomer, newCustomer] = [fresh('cus_old'), fresh('cus_new')];
        await store.commit(standing(oldCustomer, 0, userId, canceled));
        await store.commit(standing(newCustomer, 0, userId, {}));
        expect(await store.getUserView(userId)).toMatchObject({
          tier: 'gold',
          stripeCustomerId: newCustomer,
        });
        // A late change on the old (canceled) customer: the new customer's gold stays.
        const late = standing(oldCustomer, 1, userId, { ...canceled, cancelAtPeriodEnd: true });
        expect(await store.commit(late)).toEqual({ status: 'committed' });
        expect(await store.getUserView(userId)).toMatchObject({
          tier: 'gold',
          stripeCustomerId: newCustomer,
        });
        expect((await store.lookupUser(userId)).stripeCustomerId).toBe(newCustomer);
        // The new customer's subscription ends: the latest ended one is shown.
        await store.commit(
          standing(newCustomer, 1, userId, { ...canceled, currentPeriodEnd: 1_850_000_000 }),
        );
        expect(await store.getUserView(userId)).toMatchObject({
          tier: 'free',
          status: 'canceled',
          stripeCustomerId: newCustomer,
        });
      });

      it('removes a customer moved to another user from the old user, in the same commit', async () => {
        const [from, to] = [fresh('user-from'), fresh('user-to')];
        const moved = fresh('cus_moved');
        const kept = fresh('cus_kept');
        await store.commit(standing(moved, 0, from, {}));
        await store.commit(standing(kept, 0, from, silver));
        expect(await store.getUserView(from)).toMatchObject({
          tier: 'gold',
          stripeCustomerId: moved,
        });
        const move = { ...standing(moved, 1, to, {}), unlinkedUserId: from };
        expect(await store.commit(move)).toEqual({ status: 'committed' });
        expect(await store.getUserView(from)).toMatchObject({
          tier: 'silver',
          stripeCustomerId: kept,
        });
        expect(await store.getUserView(to)).toMatchObject({
          tier: 'gold',
          stripeCustomerId: moved,
        });
        // The old user's last customer moves too: the old user has no subscription view left.
        await store.commit({ ...standing(kept, 1, to, silver), unlinkedUserId: from });
        expect(await store.lookupUser(from)).toEqual({
          view: null,
          stripeCustomerId: null,
          profile: { exists: true, views: {}, revision: 4 },
        });
        expect(await store.getUserView(to)).toMatchObject({
          tier: 'gold',
          stripeCustomerId: moved,
        });
      });

      it('keeps both views when two customers of one user commit at once', async () => {
        const userId = fresh('user-');
        const [gold, silverCustomer] = [fresh('cus_gold'), fresh('cus_silver')];
        const commits = [
          standing(gold, 0, userId, {}),
          standing(silverCustomer, 0, userId, silver),
        ];
        const results = await Promise.all(commits.map((commit) => store.commit(commit)));
        // The loser of the profile race writes nothing and is resent, as the consumer does.
        for (const [index, result] of results.entries()) {
          if (result.status !== 'committed') {
            expect(result).toEqual({ status: 'revision-conflict' });
            expect(await store.commit(commits[index]!)).toEqual({ status: 'committed' });
          }
        }
        expect(await store.getUserView(userId)).toMatchObject({ tier: 'gold' });
        await store.commit(standing(gold, 1, userId, canceled));
        expect(await store.getUserView(userId)).toMatchObject({
          tier: 'silver',
          stripeCustomerId: silverCustomer,
        });
      });
    });

    describe('a commit on the profile its caller read just before (the read route miss)', () => {
      it('commits on a fresh read, keeping the views the read found', async () => {
        const userId = fresh('user-');
        const [first, second] = [fresh('cus_first'), fresh('cus_second')];
        expect(await store.commit(commitFor(first, 0, [fresh('evt_')], userId))).toEqual({
          status: 'committed',
        });
        const { profile } = await store.lookupUser(userId);
        const commit = commitFor(second, 0, [fresh('evt_')], userId);
        const planned = { ...commit, view: { ...commit.view!, tier: 'silver' as const } };
        expect(
          await store.commit({ ...planned, profilesRead: new Map([[userId, profile!]]) }),
        ).toEqual({ status: 'committed' });
        expect((await store.lookupUser(userId)).profile).toEqual({
          exists: true,
          views: { [first]: view(userId, first), [second]: planned.view },
          revision: 2,
        });
        expect(await store.getUserView(userId)).toMatchObject({ stripeCustomerId: first });
      });

      it('loses its race, writing nothing, when another customer changed the profile since', async () => {
        const userId = fresh('user-');
        const [late, meanwhile] = [fresh('cus_late'), fresh('cus_meanwhile')];
        const stale = (await store.lookupUser(userId)).profile!;
        expect(stale).toEqual({ exists: false, views: {}, revision: 0 });
        expect(await store.commit(commitFor(meanwhile, 0, [fresh('evt_')], userId))).toEqual({
          status: 'committed',
        });
        const commit = commitFor(late, 0, [fresh('evt_')], userId);
        expect(await store.commit({ ...commit, profilesRead: new Map([[userId, stale]]) })).toEqual(
          { status: 'revision-conflict' },
        );
        expect(await store.loadAccounts([late])).toEqual(new Map());
        expect(await store.readLedger(late)).toEqual([]);
        expect(Object.keys((await store.lookupUser(userId)).profile!.views)).toEqual([meanwhile]);
        // Planned again without the stale read, it commits and both views are kept.
        expect(await store.commit(commit)).toEqual({ status: 'committed' });
        expect(Object.keys((await store.lookupUser(userId)).profile!.views).sort()).toEqual(
          [late, meanwhile].sort(),
        );
      });
    });

    it('answers null for a user it has never seen', async () => {
      expect(await store.getUserView(fresh('nobody-'))).toBeNull();
      expect(await store.lookupUser(fresh('nobody-'))).toEqual({
        view: null,
        stripeCustomerId: null,
        profile: { exists: false, views: {}, revision: 0 },
      });
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
  return Object.assign(store, {
    getUserView: reader.getUserView.bind(reader),
    lookupUser: reader.lookupUser.bind(reader),
  });
});

describe('DynamoDbSubscriptionStore items', () => {
  it('writes the ledger page with a TTL, and a subscription pointer', async () => {
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
    const page = await dynamo.send(
      new GetItemCommand({
        TableName: tables.ledgerTableName,
        Key: { customerId: { S: customerId }, revision: { N: '1' } },
      }),
    );
    expect(Number(page.Item?.expiresAt?.N)).toBe(Math.floor(appliedAt / 1000) + 10 * 86_400);
    expect(page.Item?.events?.L?.[0]?.M?.eventId?.S).toBe('evt_ttl');
    expect(page.Item?.events?.L?.[0]?.M?.outcome?.S).toBe('applied');
    const pointer = await dynamo.send(
      new GetItemCommand({
        TableName: tables.billingTableName,
        Key: { pk: { S: 'SUBSCRIPTION#sub_1' }, sk: { S: 'SUBSCRIPTION' } },
      }),
    );
    expect(pointer.Item?.customerId?.S).toBe(customerId);
  });

  it('stores the account compressed, within one 1 KB write unit, and still reads plain-map items', async () => {
    const { dynamo } = emulatorClients();
    const tables = await createBillingTables(dynamo);
    const store = new DynamoDbSubscriptionStore({ client: dynamo, ...tables });
    const customerId = fresh('cus_');
    const commit = commitFor(customerId, 0, ['evt_small']);
    await store.commit(commit);
    const { Item } = await dynamo.send(
      new GetItemCommand({
        TableName: tables.billingTableName,
        Key: { pk: { S: `CUSTOMER#${customerId}` }, sk: { S: 'ACCOUNT' } },
      }),
    );
    const stored = Item?.account?.B;
    expect(stored).toBeInstanceOf(Uint8Array);
    expect(stored!.byteLength).toBeLessThan(JSON.stringify(commit.account).length);
    expect(decodeAccount(stored)).toEqual(commit.account);

    const legacy = fresh('cus_');
    await DynamoDBDocumentClient.from(dynamo).send(
      new PutCommand({
        TableName: tables.billingTableName,
        Item: {
          ...keys.account(legacy),
          customerId: legacy,
          revision: 3,
          account: accountFor(legacy, null),
        },
      }),
    );
    expect((await store.loadAccounts([legacy])).get(legacy)).toEqual({
      account: accountFor(legacy, null),
      revision: 3,
      recentEvents: [],
    });
  });

  it('keeps a one-customer profile, credit fields and first refresh included, within one 1 KB write unit', async () => {
    const { dynamo } = emulatorClients();
    const tables = await createBillingTables(dynamo);
    const store = new DynamoDbSubscriptionStore({
      client: dynamo,
      ...tables,
      creditAllowances: DEFAULT_CREDIT_ALLOWANCES,
    });
    // A UUID user id and Stripe-length ids, as in production.
    const userId = '6f1c2a9e-3b7d-4e0a-9c55-2d8f7a1b3e64';
    const customerId = 'cus_QxY7rT2kLmN8pZ';
    const commit = commitFor(customerId, 0, [fresh('evt_')], userId);
    commit.view = {
      ...commit.view!,
      subscriptionId: 'sub_1QxY7rT2kLmN8pZaBcDeFgHi',
      priceId: 'price_1QxY7rT2kLmN8pZaBcDeFgHi',
      latestInvoiceOutcome: 'payment_failed',
    };
    expect(await store.commit(commit)).toEqual({ status: 'committed' });
    const { Item } = await DynamoDBDocumentClient.from(dynamo).send(
      new GetCommand({ TableName: tables.billingTableName, Key: keys.profile(userId) }),
    );
    expect(Item?.customerViews).toEqual({ [customerId]: commit.view });
    expect(Item?.subscriptionView).toBeUndefined();
    expect(Item).toMatchObject({ credits: 10, creditAllowance: 10 });
    expect(itemSize(Item, false)).toBeLessThan(1024);
  });

  it("reads a profile written before profiles kept customer views as that one customer's view", async () => {
    const { dynamo } = emulatorClients();
    const tables = await createBillingTables(dynamo);
    const store = new DynamoDbSubscriptionStore({ client: dynamo, ...tables });
    const reader = new DynamoDbUserViewReader({ client: dynamo, ...tables });
    const userId = fresh('user-legacy');
    const legacyCustomer = fresh('cus_');
    await DynamoDBDocumentClient.from(dynamo).send(
      new PutCommand({
        TableName: tables.billingTableName,
        Item: {
          ...keys.profile(userId),
          userId,
          tier: 'gold',
          stripeCustomerId: legacyCustomer,
          subscriptionView: view(userId, legacyCustomer),
        },
      }),
    );
    const other = fresh('cus_');
    const lesser = commitFor(other, 0, [fresh('evt_')], userId);
    lesser.view = { ...lesser.view!, tier: 'bronze' };
    expect(await store.commit(lesser)).toEqual({ status: 'committed' });
    expect(await reader.getUserView(userId)).toEqual(view(userId, legacyCustomer));
  });

  it('sends a lone commit on a profile read just before as one transaction, its new pointers in it; a lost race writes no pointer', async () => {
    const { dynamo } = emulatorClients();
    const tables = await createBillingTables(dynamo);
    const sent: string[] = [];
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
    const store = new DynamoDbSubscriptionStore({ client: dynamo, ...tables });
    const reader = new DynamoDbUserViewReader({
      client: dynamo,
      billingTableName: tables.billingTableName,
    });
    const userId = fresh('user-');
    const customerId = fresh('cus_');
    const subscriptionId = fresh('sub_');
    const pointer = async () =>
      (
        await dynamo.send(
          new GetItemCommand({
            TableName: tables.billingTableName,
            Key: { pk: { S: `SUBSCRIPTION#${subscriptionId}` }, sk: { S: 'SUBSCRIPTION' } },
          }),
        )
      ).Item?.customerId?.S;
    const commit = {
      ...commitFor(customerId, 0, [fresh('evt_')], userId),
      newSubscriptionIds: [subscriptionId],
    };

    const stale = (await reader.lookupUser(userId)).profile!;
    await store.commit({
      ...commitFor(fresh('cus_'), 0, [fresh('evt_')], userId),
      newSubscriptionIds: [],
    });
    sent.length = 0;
    expect(await store.commit({ ...commit, profilesRead: new Map([[userId, stale]]) })).toEqual({
      status: 'revision-conflict',
    });
    expect(sent).toEqual(['TransactWriteItemsCommand']);
    expect(await pointer()).toBeUndefined();

    const read = (await reader.lookupUser(userId)).profile!;
    sent.length = 0;
    expect(await store.commit({ ...commit, profilesRead: new Map([[userId, read]]) })).toEqual({
      status: 'committed',
    });
    expect(sent).toEqual(['TransactWriteItemsCommand']);
    expect(await pointer()).toBe(customerId);
    expect(Object.keys((await reader.lookupUser(userId)).profile!.views)).toHaveLength(2);
  });

  it('puts subscription pointers before the transaction; when that fails, only the commits with new subscriptions fail, and nothing of them is written', async () => {
    const { dynamo } = emulatorClients();
    const tables = await createBillingTables(dynamo);
    let failPointers = true;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (failPointers && /^PutItem/.test(String(context.commandName))) {
          throw Object.assign(new Error('injected: DynamoDB unavailable'), {
            name: 'InternalServerError',
            $fault: 'server',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'injectPointerFault' },
    );
    const store = new DynamoDbSubscriptionStore({ client: dynamo, ...tables });
    const withSubscription = fresh('cus_');
    const without = fresh('cus_');
    const results = await store.commitAll([
      commitFor(withSubscription, 0, [fresh('evt_')]),
      { ...commitFor(without, 0, [fresh('evt_')]), newSubscriptionIds: [] },
    ]);
    expect(results[0]).toMatchObject({ status: 'failed' });
    expect(results[1]).toEqual({ status: 'committed' });
    expect((await store.loadAccounts([withSubscription])).size).toBe(0);
    expect(await store.readLedger(withSubscription)).toEqual([]);

    failPointers = false;
    expect(await store.commit(commitFor(withSubscription, 0, [fresh('evt_')]))).toEqual({
      status: 'committed',
    });
    const pointer = await dynamo.send(
      new GetItemCommand({
        TableName: tables.billingTableName,
        Key: { pk: { S: 'SUBSCRIPTION#sub_1' }, sk: { S: 'SUBSCRIPTION' } },
      }),
    );
    expect(pointer.Item?.customerId?.S).toBe(withSubscription);
  });
});
