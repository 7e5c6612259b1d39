/**
 * One contract, two implementations: the in-memory credit store the use-case tests
 * rely on must behave like the DynamoDB adapter on DynamoDB Local (the billing table
 * created from the stack model, slot index included). Then what only DynamoDB has:
 * the subscription store stamping a slot on every profile it writes, the backfill of
 * older profiles, and the units each call consumes.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import {
  CREDIT_ATTRIBUTE,
  CREDIT_SLOT_INDEX,
} from '../../functions/adapters/dynamodb/credit-table-schema.ts';
import {
  type CreditCapacity,
  type CreditStoreOperation,
  DynamoDbCreditStore,
} from '../../functions/adapters/dynamodb/dynamodb-credit-store.ts';
import { DynamoDbSubscriptionStore } from '../../functions/adapters/dynamodb/dynamodb-subscription-store.ts';
import { InMemoryCreditStore } from '../../functions/adapters/memory/in-memory-credit-store.ts';
import { addDays } from '../../functions/adapters/paging/query-cursor.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../functions/core/credits/allowances.ts';
import type {
  CreditRunLog,
  CreditStore,
  RefreshError,
  RefreshOutcomes,
} from '../../functions/core/credits/ports.ts';
import {
  NEVER_REFRESHED,
  periodAt,
  refreshSlotOf,
  SLOTS_PER_DAY,
} from '../../functions/core/credits/refresh-slot.ts';
import { InvalidCursorError, type Page } from '../../functions/core/shared/paging.ts';
import type { Tier } from '../../functions/core/shared/tiers.ts';
import { emptyAccount } from '../../functions/core/subscriptions/customer-account.ts';
import { backfillCreditSlots } from '../../local/backfill-credit-slots.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { activeView } from '../helpers/subscription-views.ts';

type Store = CreditStore & CreditRunLog;

interface ProfileSeed {
  userId: string;
  tier: Tier;
  balance?: number;
  period?: string;
}

interface Harness {
  store: Store;
  /** A profile as the subscription context writes it (slot = refreshSlotOf(userId)). */
  putProfile(profile: ProfileSeed): Promise<void>;
}

let counter = 0;
const fresh = (prefix: string) => `${prefix}${Date.now().toString(36)}${counter++}`;

/** A fresh user id whose slot is `slot` (about 288 hashes). */
function userInSlot(slot: number, prefix = 'user-'): string {
  const base = fresh(prefix);
  for (let attempt = 0; ; attempt++) {
    const userId = `${base}-${attempt}`;
    if (refreshSlotOf(userId) === slot) return userId;
  }
}

/** Each test takes slots and periods of its own, so tests never see each other's users. */
let slotCounter = 7;
const freshSlot = () => {
  const slot = slotCounter;
  slotCounter = (slotCounter + 37) % SLOTS_PER_DAY;
  return slot;
};
let periodCounter = 0;
const freshPeriod = () => addDays('2031-03-01', 3 * periodCounter++);

/** Follows cursors to the end; every page that has a next cursor must be full. */
async function allPages(
  limit: number,
  read: (cursor: string | undefined) => Promise<Page<{ userId: string; tier: Tier }>>,
): Promise<{ users: { userId: string; tier: Tier }[]; pages: number }> {
  const users: { userId: string; tier: Tier }[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages < 1_000; pages++) {
    const page = await read(cursor);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    users.push(...page.items);
    if (page.nextCursor === null) return { users, pages };
    expect(page.items).toHaveLength(limit);
    cursor = page.nextCursor;
  }
  throw new Error('cursors never ended');
}

/** A cursor with one character of its payload changed. */
function altered(cursor: string): string {
  const json = Buffer.from(cursor, 'base64url').toString('utf8');
  const index = json.search(/[0-9]/);
  const digit = json[index] === '1' ? '2' : '1';
  return Buffer.from(`${json.slice(0, index)}${digit}${json.slice(index + 1)}`, 'utf8').toString(
    'base64url',
  );
}

const byUser = <T extends { userId: string }>(a: T, b: T) =>
  a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0;

const outcomes = (overrides: Partial<RefreshOutcomes> = {}): RefreshOutcomes => ({
  refreshed: 0,
  skipped: 0,
  failed: 0,
  totalMs: 0,
  errors: [],
  ...overrides,
});

const errorAt = (n: number): RefreshError => ({
  userId: `user-err-${n}`,
  error: `ThrottlingException: attempt ${n}`,
  at: new Date(Date.UTC(2031, 0, 1, 0, 0, n)).toISOString(),
});

function contract(name: string, make: () => Promise<Harness>) {
  describe(`CreditStore + CreditRunLog contract: ${name}`, () => {
    let store: Store;
    let harness: Harness;
    beforeAll(async () => {
      harness = await make();
      store = harness.store;
    });

    it('usersDue pages through a slot: only users whose period is before P, each once', async () => {
      const slot = freshSlot();
      const period = freshPeriod();
      const due: { userId: string; tier: Tier }[] = [];
      const tiers: Tier[] = ['free', 'bronze', 'silver', 'gold'];
      for (let n = 0; n < 7; n++) {
        const user = { userId: userInSlot(slot), tier: tiers[n % 4]! };
        await harness.putProfile(user);
        due.push(user);
      }
      for (const earlier of [addDays(period, -1), addDays(period, -40)]) {
        const user = { userId: userInSlot(slot), tier: 'gold' as const };
        await harness.putProfile({ ...user, balance: 3, period: earlier });
        due.push(user);
      }
      // Refreshed for P already, or (clock skew) for a later period: not due.
      await harness.putProfile({ userId: userInSlot(slot), tier: 'gold', period });
      await harness.putProfile({
        userId: userInSlot(slot),
        tier: 'free',
        period: addDays(period, 1),
      });
      // Another slot's user is never listed.
      await harness.putProfile({ userId: userInSlot((slot + 1) % SLOTS_PER_DAY), tier: 'free' });

      const { users, pages } = await allPages(3, (cursor) =>
        store.usersDue({ slot, period, limit: 3, ...(cursor ? { cursor } : {}) }),
      );
      expect([...users].sort(byUser)).toEqual([...due].sort(byUser));
      expect(pages).toBeGreaterThanOrEqual(3);

      const whole = await store.usersDue({ slot, period, limit: 100 });
      expect(whole.nextCursor).toBeNull();
      expect([...whole.items].sort(byUser)).toEqual([...due].sort(byUser));
      // An earlier period lists only the users refreshed before it.
      const early = await store.usersDue({ slot, period: addDays(period, -1), limit: 100 });
      expect(early.items.map((u) => u.userId).sort()).toEqual(
        [...due.slice(0, 7).map((u) => u.userId), due[8]!.userId].sort(),
      );
      // A slot nobody is in: an empty page, no cursor.
      const other = freshSlot();
      expect(await store.usersDue({ slot: other, period, limit: 10 })).toEqual({
        items: [],
        nextCursor: null,
      });
    });

    it('usersDue refuses a cursor of another slot or period, or an altered one', async () => {
      const slot = freshSlot();
      const period = freshPeriod();
      for (let n = 0; n < 3; n++)
        await harness.putProfile({ userId: userInSlot(slot), tier: 'free' });
      const first = await store.usersDue({ slot, period, limit: 1 });
      expect(first.items).toHaveLength(1);
      const cursor = first.nextCursor!;
      expect(cursor).toEqual(expect.any(String));
      // The page size may change between pages.
      const rest = await store.usersDue({ slot, period, limit: 10, cursor });
      expect(rest.items).toHaveLength(2);

      const refused = [
        { slot: (slot + 1) % SLOTS_PER_DAY, period, limit: 1, cursor },
        { slot, period: addDays(period, 1), limit: 1, cursor },
        { slot, period, limit: 1, cursor: altered(cursor) },
        { slot, period, limit: 1, cursor: 'not-a-cursor' },
        {
          slot,
          period,
          limit: 1,
          cursor: Buffer.from('{"p":{"u":"x","c":"2000-01-01"},"h":"x"}').toString('base64url'),
        },
      ];
      for (const query of refused) {
        await expect(store.usersDue(query)).rejects.toBeInstanceOf(InvalidCursorError);
      }
    });

    it('refresh sets the balance to the allowance and stamps the period, once', async () => {
      const userId = fresh('user-');
      const period = freshPeriod();
      await harness.putProfile({ userId, tier: 'gold' });
      expect(await store.getAccount(userId)).toEqual({
        userId,
        tier: 'gold',
        balance: 0,
        allowance: 0,
        period: NEVER_REFRESHED,
        refreshSlot: refreshSlotOf(userId),
        refreshedAt: null,
      });

      const at = Date.UTC(2031, 0, 1, 0, 5);
      expect(await store.refresh({ userId, tier: 'gold', period, allowance: 10, at })).toBe(
        'refreshed',
      );
      const refreshed = {
        userId,
        tier: 'gold',
        balance: 10,
        allowance: 10,
        period,
        refreshSlot: refreshSlotOf(userId),
        refreshedAt: at,
      };
      expect(await store.getAccount(userId)).toEqual(refreshed);

      // The same period again (another allowance, another time) writes nothing.
      expect(
        await store.refresh({ userId, tier: 'gold', period, allowance: 99, at: at + 1_000 }),
      ).toBe('already-refreshed');
      // An earlier period neither.
      expect(
        await store.refresh({
          userId,
          tier: 'gold',
          period: addDays(period, -1),
          allowance: 7,
          at,
        }),
      ).toBe('already-refreshed');
      // Already refreshed wins over a changed tier: nothing to retry.
      expect(
        await store.refresh({ userId, tier: 'free', period, allowance: 1, at: at + 2_000 }),
      ).toBe('already-refreshed');
      expect(await store.getAccount(userId)).toEqual(refreshed);
    });

    it('refresh does not roll unused credits over', async () => {
      const userId = fresh('user-');
      const period = freshPeriod();
      await harness.putProfile({ userId, tier: 'silver', balance: 4, period: addDays(period, -1) });
      expect(await store.refresh({ userId, tier: 'silver', period, allowance: 5, at: 1_000 })).toBe(
        'refreshed',
      );
      expect(await store.getAccount(userId)).toMatchObject({ balance: 5, allowance: 5, period });
    });

    it('refresh tells a changed tier and a missing profile apart, writing nothing', async () => {
      const userId = fresh('user-');
      const period = freshPeriod();
      await harness.putProfile({ userId, tier: 'silver', balance: 2, period: addDays(period, -1) });
      const before = await store.getAccount(userId);
      expect(await store.refresh({ userId, tier: 'gold', period, allowance: 10, at: 5_000 })).toBe(
        'tier-changed',
      );
      expect(await store.getAccount(userId)).toEqual(before);
      // Retried with the tier the profile has now.
      expect(await store.refresh({ userId, tier: 'silver', period, allowance: 5, at: 6_000 })).toBe(
        'refreshed',
      );

      const nobody = fresh('user-gone-');
      expect(
        await store.refresh({ userId: nobody, tier: 'free', period, allowance: 1, at: 1 }),
      ).toBe('no-profile');
      expect(await store.getAccount(nobody)).toBeNull();
    });

    it('ten concurrent refreshes of one user: exactly one refreshes', async () => {
      const userId = fresh('user-');
      const period = freshPeriod();
      await harness.putProfile({ userId, tier: 'bronze' });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, n) =>
          store.refresh({ userId, tier: 'bronze', period, allowance: 3, at: 10_000 + n }),
        ),
      );
      expect(results.filter((r) => r === 'refreshed')).toHaveLength(1);
      expect(results.filter((r) => r === 'already-refreshed')).toHaveLength(9);
      const account = await store.getAccount(userId);
      expect(account).toMatchObject({ balance: 3, allowance: 3, period });
      expect(10_000 + results.indexOf('refreshed')).toBe(account?.refreshedAt);
    });

    it('a refreshed user leaves the slot’s due list for that period', async () => {
      const slot = freshSlot();
      const period = freshPeriod();
      const userId = userInSlot(slot);
      // Other tests' profiles (random ids, never refreshed) may share the slot: look at ours.
      const ours = async (forPeriod: string) =>
        (await store.usersDue({ slot, period: forPeriod, limit: 1_000 })).items.filter(
          (user) => user.userId === userId,
        );
      await harness.putProfile({ userId, tier: 'free' });
      expect(await ours(period)).toEqual([{ userId, tier: 'free' }]);
      await store.refresh({ userId, tier: 'free', period, allowance: 1, at: 1 });
      // The slot index is eventually consistent: give it a moment.
      await expect.poll(() => ours(period), { timeout: 5_000 }).toEqual([]);
      expect(await ours(addDays(period, 1))).toEqual([{ userId, tier: 'free' }]);
    });

    it('the run log: nothing for a period that never ran', async () => {
      const period = freshPeriod();
      expect(await store.readCounters(period)).toBeNull();
      expect(await store.plannedSlots(period)).toEqual([]);
    });

    it('the run log: outcomes with nothing in them still mark the period as run', async () => {
      const period = freshPeriod();
      await store.recordOutcomes(period, outcomes());
      expect(await store.readCounters(period)).toEqual({
        planned: 0,
        refreshed: 0,
        skipped: 0,
        failed: 0,
        totalMs: 0,
        lastRunAt: null,
        recentErrors: [],
      });
    });

    it('the run log adds up concurrent outcomes exactly', async () => {
      const period = freshPeriod();
      const batches = Array.from({ length: 25 }, (_, n) =>
        outcomes({ refreshed: n, skipped: n % 3, failed: n % 2, totalMs: 100 * n }),
      );
      await Promise.all(batches.map((batch) => store.recordOutcomes(period, batch)));
      const sum = (pick: (o: RefreshOutcomes) => number) =>
        batches.reduce((total, batch) => total + pick(batch), 0);
      expect(await store.readCounters(period)).toEqual({
        planned: 0,
        refreshed: sum((o) => o.refreshed),
        skipped: sum((o) => o.skipped),
        failed: sum((o) => o.failed),
        totalMs: sum((o) => o.totalMs),
        lastRunAt: null,
        recentErrors: [],
      });
    });

    it('the run log records planned slots (ascending, once each), planned users and the last run', async () => {
      const period = freshPeriod();
      const runs = [
        { slot: 12, planned: 30, at: 1_000 },
        { slot: 3, planned: 10, at: 2_000 },
        { slot: 287, planned: 5, at: 3_000 },
        { slot: 0, planned: 0, at: 4_000 },
      ];
      await Promise.all(runs.map((r) => store.recordPlanned(period, r.slot, r.planned, r.at)));
      // A slot planned again (a manual run) is listed once; its users count again.
      await store.recordPlanned(period, 3, 2, 5_000);
      expect(await store.plannedSlots(period)).toEqual([0, 3, 12, 287]);
      expect(await store.readCounters(period)).toMatchObject({
        planned: 47,
        lastRunAt: 5_000,
        refreshed: 0,
      });
      // Periods are apart.
      expect(await store.plannedSlots(addDays(period, 1))).toEqual([]);
    });

    it('recent errors: the newest 20, newest first', async () => {
      const period = freshPeriod();
      const errors = Array.from({ length: 27 }, (_, n) => errorAt(n));
      await store.recordOutcomes(period, outcomes({ failed: 10, errors: errors.slice(0, 10) }));
      await store.recordOutcomes(period, outcomes({ refreshed: 4 }));
      await store.recordOutcomes(period, outcomes({ failed: 12, errors: errors.slice(10, 22) }));
      let counters = await store.readCounters(period);
      expect(counters?.failed).toBe(22);
      expect(counters?.recentErrors).toEqual(errors.slice(2, 22).reverse());

      await store.recordOutcomes(period, outcomes({ failed: 5, errors: errors.slice(22) }));
      counters = await store.readCounters(period);
      expect(counters?.recentErrors).toEqual(errors.slice(7).reverse());

      // One batch with more than 20 errors keeps its newest 20.
      const other = freshPeriod();
      await store.recordOutcomes(other, outcomes({ failed: 27, errors }));
      expect((await store.readCounters(other))?.recentErrors).toEqual(errors.slice(7).reverse());
    });

    it('recent errors stay capped at 20 under concurrent workers', async () => {
      const period = freshPeriod();
      const errors = Array.from({ length: 48 }, (_, n) => errorAt(n));
      await Promise.all(
        Array.from({ length: 8 }, (_, w) =>
          store.recordOutcomes(
            period,
            outcomes({ failed: 6, errors: errors.slice(6 * w, 6 * w + 6) }),
          ),
        ),
      );
      const counters = await store.readCounters(period);
      expect(counters?.failed).toBe(48);
      const recent = counters?.recentErrors ?? [];
      expect(recent).toHaveLength(20);
      expect(new Set(recent.map((e) => e.userId)).size).toBe(20);
      for (const error of recent) expect(errors).toContainEqual(error);
    });
  });
}

// ---- DynamoDB Local -------------------------------------------------------------

const { dynamo } = emulatorClients();
const documents = DynamoDBDocumentClient.from(dynamo);

/** The profile item the subscription store writes (subscription fields + credit fields). */
function profileItem(profile: ProfileSeed & { slot?: number | null }) {
  const customerId = `cus_${profile.userId}`;
  return {
    ...billingKeys.profile(profile.userId),
    userId: profile.userId,
    tier: profile.tier,
    stripeCustomerId: customerId,
    subscriptionView: {
      userId: profile.userId,
      tier: profile.tier,
      status: 'active',
      stripeCustomerId: customerId,
      subscriptionId: `sub_${profile.userId}`,
      priceId: 'price_1',
      currentPeriodEnd: 1_900_000_000,
      cancelAtPeriodEnd: false,
      latestInvoiceOutcome: null,
    },
    subscriptionUpdatedAt: Date.now(),
    ...(profile.slot === null
      ? {}
      : {
          [CREDIT_ATTRIBUTE.refreshSlot]: profile.slot ?? refreshSlotOf(profile.userId),
          [CREDIT_ATTRIBUTE.period]: profile.period ?? NEVER_REFRESHED,
          [CREDIT_ATTRIBUTE.balance]: profile.balance ?? 0,
        }),
  };
}

async function dynamoHarness(client: DynamoDBClient = dynamo) {
  const tables = await createBillingTables(client);
  const measured: { operation: CreditStoreOperation; capacity: CreditCapacity }[] = [];
  const store = new DynamoDbCreditStore({
    client,
    billingTableName: tables.billingTableName,
    onCapacity: (operation, capacity) => measured.push({ operation, capacity }),
  });
  return {
    tables,
    measured,
    store,
    async putProfile(profile: ProfileSeed & { slot?: number | null }) {
      await documents.send(
        new PutCommand({ TableName: tables.billingTableName, Item: profileItem(profile) }),
      );
    },
  };
}

contract('DynamoDB Local', dynamoHarness);

/** A subscription commit that writes the user's profile with one active subscription of `tier`. */
function profileCommit(userId: string, customerId: string, expectedRevision: number, tier: Tier) {
  return {
    customerId,
    expectedRevision,
    account: { ...emptyAccount(customerId), userId },
    recentEvents: [],
    ledger: { appliedAt: Date.now(), events: [] },
    view: activeView(userId, customerId, tier),
    newSubscriptionIds: [],
    resyncMark: null,
    unlinkedUserId: null,
  };
}

describe('DynamoDB credit store on the billing table', () => {
  let harness: Awaited<ReturnType<typeof dynamoHarness>>;
  beforeAll(async () => {
    harness = await dynamoHarness();
  });

  it('the billing table has the slot index the schema module names', async () => {
    const { DescribeTableCommand } = await import('@aws-sdk/client-dynamodb');
    const { Table } = await dynamo.send(
      new DescribeTableCommand({ TableName: harness.tables.billingTableName }),
    );
    const index = Table?.GlobalSecondaryIndexes?.find(
      (gsi) => gsi.IndexName === CREDIT_SLOT_INDEX.indexName,
    );
    expect(index?.KeySchema).toEqual([
      { AttributeName: 'refreshSlot', KeyType: 'HASH' },
      { AttributeName: 'creditPeriod', KeyType: 'RANGE' },
    ]);
    expect(index?.Projection).toEqual({
      ProjectionType: 'INCLUDE',
      NonKeyAttributes: ['userId', 'tier'],
    });
    expect(Table?.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'refreshSlot', AttributeType: 'N' },
        { AttributeName: 'creditPeriod', AttributeType: 'S' },
      ]),
    );
  });

  it('a profile written by a subscription commit carries its slot, is found by the slot index, and keeps a refresh', async () => {
    const subscriptions = new DynamoDbSubscriptionStore({
      client: dynamo,
      billingTableName: harness.tables.billingTableName,
      ledgerTableName: harness.tables.ledgerTableName,
    });
    const slot = freshSlot();
    const userId = userInSlot(slot);
    const customerId = fresh('cus_');
    const commit = (expectedRevision: number, tier: Tier) =>
      profileCommit(userId, customerId, expectedRevision, tier);
    expect(await subscriptions.commit(commit(0, 'silver'))).toEqual({ status: 'committed' });
    const { Item } = await documents.send(
      new GetCommand({
        TableName: harness.tables.billingTableName,
        Key: billingKeys.profile(userId),
      }),
    );
    expect(Item).toMatchObject({ refreshSlot: slot, creditPeriod: NEVER_REFRESHED, credits: 0 });
    const period = freshPeriod();
    expect((await harness.store.usersDue({ slot, period, limit: 10 })).items).toEqual([
      { userId, tier: 'silver' },
    ]);

    // A refresh, then another subscription change: the credits are the refresh's.
    expect(
      await harness.store.refresh({ userId, tier: 'silver', period, allowance: 5, at: 7 }),
    ).toBe('refreshed');
    expect(await subscriptions.commit(commit(1, 'gold'))).toEqual({ status: 'committed' });
    expect(await harness.store.getAccount(userId)).toEqual({
      userId,
      tier: 'gold',
      balance: 5,
      allowance: 5,
      period,
      refreshSlot: slot,
      refreshedAt: 7,
    });
  });

  it('a new profile gets its first refresh in the commit that creates it, topped up by an upgrade that day; the slot skips it that day, and an older profile is left to its slot', async () => {
    const allowances = { ...DEFAULT_CREDIT_ALLOWANCES, silver: 6 };
    const subscriptions = new DynamoDbSubscriptionStore({
      client: dynamo,
      billingTableName: harness.tables.billingTableName,
      ledgerTableName: harness.tables.ledgerTableName,
      creditAllowances: allowances,
    });
    const slot = freshSlot();
    const commitOf = (userId: string, expectedRevision: number, tier: Tier) =>
      profileCommit(userId, `cus_of_${userId}`, expectedRevision, tier);
    const newcomer = userInSlot(slot, 'user-new-');
    const first = commitOf(newcomer, 0, 'silver');
    expect(await subscriptions.commit(first)).toEqual({ status: 'committed' });
    const today = periodAt(first.ledger.appliedAt);
    expect(await harness.store.getAccount(newcomer)).toEqual({
      userId: newcomer,
      tier: 'silver',
      balance: 6,
      allowance: 6,
      period: today,
      refreshSlot: slot,
      refreshedAt: first.ledger.appliedAt,
    });
    // Today's run of its slot does not refresh it again; tomorrow's does.
    const due = async (period: string) =>
      (await harness.store.usersDue({ slot, period, limit: 100 })).items.map((u) => u.userId);
    expect(await due(today)).not.toContain(newcomer);
    expect(await due(addDays(today, 1))).toContain(newcomer);
    expect(
      await harness.store.refresh({
        userId: newcomer,
        tier: 'silver',
        period: today,
        allowance: 6,
        at: 1,
      }),
    ).toBe('already-refreshed');
    // An upgrade later that day adds the difference (gold 10 - silver 6) to what is left;
    // a downgrade then takes nothing back, and upgrading again that day adds nothing more.
    // Two credits spent (as a settlement does) before the upgrade.
    await DynamoDBDocumentClient.from(dynamo).send(
      new UpdateCommand({
        TableName: harness.tables.billingTableName,
        Key: billingKeys.profile(newcomer),
        UpdateExpression: 'SET credits = credits - :two',
        ExpressionAttributeValues: { ':two': 2 },
      }),
    );
    await subscriptions.commit(commitOf(newcomer, 1, 'gold'));
    expect(await harness.store.getAccount(newcomer)).toMatchObject({
      tier: 'gold',
      balance: 8,
      allowance: 10,
      period: today,
    });
    await subscriptions.commit(commitOf(newcomer, 2, 'bronze'));
    await subscriptions.commit(commitOf(newcomer, 3, 'gold'));
    expect(await harness.store.getAccount(newcomer)).toMatchObject({
      tier: 'gold',
      balance: 8,
      allowance: 10,
    });

    // A profile that already existed (created before first refreshes) waits for its slot.
    const older = userInSlot(slot, 'user-older-');
    await harness.putProfile({ userId: older, tier: 'bronze' });
    await subscriptions.commit(commitOf(older, 0, 'bronze'));
    expect(await harness.store.getAccount(older)).toMatchObject({
      balance: 0,
      allowance: 0,
      period: NEVER_REFRESHED,
    });
    expect(await due(today)).toContain(older);
  });

  it('a profile written before slots existed: refreshed all the same, and given its slot', async () => {
    const userId = fresh('user-legacy-');
    await harness.putProfile({ userId, tier: 'bronze', slot: null });
    expect(await harness.store.getAccount(userId)).toEqual({
      userId,
      tier: 'bronze',
      balance: 0,
      allowance: 0,
      period: NEVER_REFRESHED,
      refreshSlot: refreshSlotOf(userId),
      refreshedAt: null,
    });
    const period = freshPeriod();
    expect(
      await harness.store.refresh({ userId, tier: 'bronze', period, allowance: 3, at: 9 }),
    ).toBe('refreshed');
    const slot = refreshSlotOf(userId);
    const due = await harness.store.usersDue({ slot, period: addDays(period, 1), limit: 100 });
    expect(due.items).toContainEqual({ userId, tier: 'bronze' });
  });

  it('the backfill gives older profiles their slot, never overwriting, and a dry run writes nothing', async () => {
    const own = await dynamoHarness();
    const legacy = Array.from({ length: 7 }, () => fresh('user-legacy-'));
    for (const userId of legacy) await own.putProfile({ userId, tier: 'free', slot: null });
    // One with a refresh stamped but no slot (a refresh wrote it): its credits are kept.
    const stamped = fresh('user-stamped-');
    await documents.send(
      new PutCommand({
        TableName: own.tables.billingTableName,
        Item: {
          ...profileItem({ userId: stamped, tier: 'gold', slot: null }),
          creditPeriod: '2031-01-01',
          credits: 6,
        },
      }),
    );
    // Already slotted (even to another slot), and items that are not profiles: untouched.
    const slotted = fresh('user-slotted-');
    await own.putProfile({ userId: slotted, tier: 'free', slot: 5 });
    await documents.send(
      new PutCommand({
        TableName: own.tables.billingTableName,
        Item: { ...billingKeys.account('cus_x'), customerId: 'cus_x' },
      }),
    );

    const lines: string[] = [];
    const dry = await backfillCreditSlots({
      client: dynamo,
      tableName: own.tables.billingTableName,
      dryRun: true,
      pageSize: 3,
      log: (line) => lines.push(line),
    });
    expect(dry).toEqual({ scanned: 10, found: 8, updated: 0, raced: 0 });
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.at(-1)).toMatch(/dry run/);
    expect((await own.store.getAccount(legacy[0]!))?.refreshSlot).toBe(refreshSlotOf(legacy[0]!));

    const done = await backfillCreditSlots({
      client: dynamo,
      tableName: own.tables.billingTableName,
      pageSize: 3,
    });
    expect(done).toEqual({ scanned: 10, found: 8, updated: 8, raced: 0 });
    for (const userId of [...legacy, stamped]) {
      const { Item } = await documents.send(
        new GetCommand({
          TableName: own.tables.billingTableName,
          Key: billingKeys.profile(userId),
        }),
      );
      expect(Item?.refreshSlot).toBe(refreshSlotOf(userId));
    }
    expect(await own.store.getAccount(stamped)).toMatchObject({
      balance: 6,
      period: '2031-01-01',
    });
    expect((await own.store.getAccount(slotted))?.refreshSlot).toBe(5);
    const slot = refreshSlotOf(legacy[0]!);
    expect(
      (await own.store.usersDue({ slot, period: '2031-06-01', limit: 100 })).items,
    ).toContainEqual({ userId: legacy[0]!, tier: 'free' });
    expect(
      await backfillCreditSlots({ client: dynamo, tableName: own.tables.billingTableName }),
    ).toEqual({ scanned: 10, found: 0, updated: 0, raced: 0 });
  });

  it('measured units: a page of 100 due users, a refresh, an account read, the run log', async () => {
    const slot = freshSlot();
    const period = freshPeriod();
    const users = Array.from({ length: 101 }, () => userInSlot(slot));
    for (const userId of users) await harness.putProfile({ userId, tier: 'gold' });
    const units = (operation: CreditStoreOperation) => {
      const found = harness.measured.filter((m) => m.operation === operation);
      harness.measured.length = 0;
      return found.map((m) => m.capacity);
    };
    harness.measured.length = 0;
    const page = await harness.store.usersDue({ slot, period, limit: 100 });
    expect(page.items).toHaveLength(100);
    const [query] = units('usersDue');
    await harness.store.refresh({ userId: users[0]!, tier: 'gold', period, allowance: 10, at: 1 });
    const [write] = units('refresh');
    await harness.store.getAccount(users[0]!);
    const [account] = units('getAccount');
    const errors = Array.from({ length: 20 }, (_, n) => errorAt(n));
    await harness.store.recordOutcomes(period, outcomes({ failed: 20, errors }));
    for (let s = 0; s < SLOTS_PER_DAY; s++) await harness.store.recordPlanned(period, s, 3_500, s);
    const planned = units('recordPlanned').at(-1);
    await harness.store.recordOutcomes(period, outcomes({ refreshed: 25, totalMs: 2_500 }));
    const [outcomeWrite] = units('recordOutcomes');
    await harness.store.readCounters(period);
    const [stats] = units('readCounters');
    console.info('credit store units', { query, write, account, planned, outcomeWrite, stats });
    // 101 index entries of about 105 bytes (20-character user ids): 10.6 KB, 3 x 4 KB,
    // eventually consistent: 1.5 units a page, 0.015 a planned user.
    expect(query?.readUnits).toBeLessThanOrEqual(1.5);
    expect(query?.indexUnits).toBe(query?.readUnits);
    expect(account?.readUnits).toBe(0.5);
    // The profile (about 0.5 KB) is one unit; its index entry moves (delete + put): two.
    expect(write).toEqual({ readUnits: 0, writeUnits: 3, indexUnits: 2 });
    // The run item with all 288 slots planned stays under 1 KB: one unit per batch's outcomes.
    expect(planned?.writeUnits).toBe(1);
    expect(outcomeWrite?.writeUnits).toBe(1);
    expect(stats?.readUnits).toBeLessThanOrEqual(1);
  });
});

// ---- In-memory fake ---------------------------------------------------------------

contract('in-memory', async () => {
  const store = new InMemoryCreditStore();
  return { store, putProfile: async (profile: ProfileSeed) => store.putProfile(profile) };
});
