/**
 * Each function that touches the penalties table does its work with only the DynamoDB
 * actions its construct grants (the constants `lib/penalties.ts` binds, which the
 * template tests pin), on DynamoDB Local through a client that refuses everything else
 * as IAM would. DynamoDB Local enforces no IAM, so without this a store method that
 * needs one more action passes every other test and fails only once deployed.
 *
 * One user's life across the roles: habits, a verification and reads (the API), two
 * days assessed (the admin route, then the scheduled assessor), a penalty marked paid
 * (the admin), a settlement (the API) declined then paid on the same PaymentIntent
 * through the payments consumer, and another user's abandoned settlement released (the
 * sweeper). The per-date unpaid counts that mark-paid and the late payment bring to zero
 * are removed: that read-back is the GetItem the admin and the consumer were once not
 * granted, a failure the store swallowed.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoDbCustomerDirectory,
  DynamoDbPaymentStore,
} from '../../functions/adapters/dynamodb/dynamodb-payment-store.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  PENALTY_KEYS,
  PENALTY_STATUS_INDEX,
  PENDING_SETTLEMENT_INDEX,
  UNPAID_DATE_PREFIX,
} from '../../functions/adapters/dynamodb/penalty-table-schema.ts';
import { StaticSecretString } from '../../functions/adapters/secrets/secret-string.ts';
import {
  parseStripeApiUrl,
  StripeClientSource,
} from '../../functions/adapters/stripe/stripe-client.ts';
import { StripePenaltyPaymentGateway } from '../../functions/adapters/stripe/stripe-penalty-payments.ts';
import { StripeCallPolicy } from '../../functions/adapters/stripe/stripe-resilience.ts';
import { PENALTY_ROUTES } from '../../functions/commons/routes.ts';
import { assessDate } from '../../functions/core/penalties/assessment.ts';
import { DEFAULT_FREE_HABIT_LIMITS } from '../../functions/core/penalties/habits.ts';
import { sweepAbandonedSettlements } from '../../functions/core/penalties/settlement-sweep.ts';
import { createPaymentConsumer } from '../../functions/payment-consumer.ts';
import { createPenaltyAdminHandler } from '../../functions/penalty-admin.ts';
import { createPenaltyApiHandler } from '../../functions/penalty-api.ts';
import {
  PAYMENT_CONSUMER_PENALTY_ACTIONS,
  PENALTY_ADMIN_ACTIONS,
  PENALTY_API_ACTIONS,
  PENALTY_API_BILLING_ACTIONS,
  PENALTY_ASSESSMENT_ACTIONS,
  PENALTY_SWEEP_ACTIONS,
} from '../../lib/penalties.ts';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';
import { httpApiEvent } from '../helpers/apigw-events.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createBillingTables } from '../helpers/billing-tables.ts';
import { testCursorSeal } from '../helpers/cursor-seal.ts';
import {
  AccessDeniedError,
  iamScopedDynamoDbClient,
  type RoleGrants,
} from '../helpers/iam-scoped-dynamodb.ts';
import { createPenaltiesTable } from '../helpers/penalty-table.ts';
import { sqsBatch } from '../helpers/sqs-events.ts';
import { at, fixedClock } from '../unit/penalties/penalty-fixtures.ts';

const context = { functionName: 'test', awsRequestId: 'test' } as Context;
const quiet = () => ({
  logger: new Logger({ logLevel: 'SILENT' }),
  metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
});

let raw: DynamoDBClient;
let stripe: FakeStripe;
let billingTableName: string;
let paymentsTableName: string;

beforeAll(async () => {
  raw = emulatorClients().dynamo;
  stripe = await startFakeStripe();
  const tables = await createBillingTables(raw);
  billingTableName = tables.billingTableName;
  const payments = tables.byLocalName['billing-suite-payments'];
  if (!payments) throw new Error('the stack model has no payments table');
  paymentsTableName = payments;
});
afterAll(async () => {
  await stripe?.close();
});

type Role = 'api' | 'admin' | 'assessor' | 'sweeper' | 'paymentConsumer';

/** The roles as `lib/penalties.ts` and `lib/payment-processing.ts` bind them. */
function roles(penaltiesTableName: string): Record<Role, RoleGrants> {
  const onPenalties = (actions: readonly string[], indexes: readonly string[] = []) => ({
    [penaltiesTableName]: { actions, indexes },
  });
  return {
    api: {
      ...onPenalties(PENALTY_API_ACTIONS, [PENALTY_STATUS_INDEX.indexName]),
      [billingTableName]: { actions: PENALTY_API_BILLING_ACTIONS },
    },
    admin: onPenalties(PENALTY_ADMIN_ACTIONS, [ACCOUNT_ASSESSMENT_INDEX.indexName]),
    assessor: onPenalties(PENALTY_ASSESSMENT_ACTIONS, [ACCOUNT_ASSESSMENT_INDEX.indexName]),
    sweeper: onPenalties(PENALTY_SWEEP_ACTIONS, [PENDING_SETTLEMENT_INDEX.indexName]),
    paymentConsumer: {
      ...onPenalties(PAYMENT_CONSUMER_PENALTY_ACTIONS),
      // The customer -> user link only (lib/payment-processing.ts).
      [billingTableName]: { actions: ['BatchGetItem'] },
    },
  };
}

async function world() {
  const penaltiesTableName = await createPenaltiesTable(raw);
  const pruneFailures: { role: string; error: unknown }[] = [];
  /** The penalty store as `role`'s function builds it, on a client limited to its grants. */
  const storeAs = (role: Role, grants = roles(penaltiesTableName)) =>
    new DynamoDbPenaltyStore({
      client: iamScopedDynamoDbClient(role, grants[role]),
      penaltiesTableName,
      billingTableName,
      onPruneFailure: (error) => pruneFailures.push({ role, error }),
    });
  const clock = fixedClock(at('2026-11-01', '09:00:00'));
  const gateway = new StripePenaltyPaymentGateway({
    clients: new StripeClientSource(
      new StaticSecretString(stripe.secretKey, 'key', (message) => new Error(message)),
      parseStripeApiUrl(stripe.url),
    ),
    calls: new StripeCallPolicy({ initialBackoffMs: 5, maxBackoffMs: 20 }),
  });
  const apiStore = storeAs('api');
  const api = createPenaltyApiHandler({
    store: apiStore,
    cursors: testCursorSeal(),
    gateway,
    clock,
    freeHabitLimits: DEFAULT_FREE_HABIT_LIMITS,
    ...quiet(),
  });
  const admin = createPenaltyAdminHandler({ store: storeAs('admin'), clock, ...quiet() });
  async function call(
    handler: typeof api,
    method: string,
    route: string,
    pathParameters: Record<string, string>,
    options: { body?: unknown; query?: Record<string, string> } = {},
  ) {
    const path = Object.entries(pathParameters).reduce(
      (p, [name, value]) => p.replace(`{${name}}`, encodeURIComponent(value)),
      route,
    );
    const response = await handler(
      httpApiEvent({
        method,
        path,
        routeKey: `${method} ${route}`,
        pathParameters,
        ...(options.query ? { queryStringParameters: options.query } : {}),
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      }),
      context,
    );
    return {
      status: response.statusCode,
      body: response.body ? JSON.parse(response.body as string) : undefined,
    };
  }
  /** The account item as stored: which per-date unpaid counts it still carries. */
  async function unpaidDateCounts(userId: string) {
    const { Item } = await DynamoDBDocumentClient.from(raw).send(
      new GetCommand({
        TableName: penaltiesTableName,
        Key: PENALTY_KEYS.account(userId),
        ConsistentRead: true,
      }),
    );
    return Object.fromEntries(
      Object.entries(Item ?? {}).filter(([name]) => name.startsWith(UNPAID_DATE_PREFIX)),
    );
  }
  return {
    penaltiesTableName,
    pruneFailures,
    storeAs,
    clock,
    gateway,
    api,
    admin,
    call,
    unpaidDateCounts,
  };
}

describe('penalty functions on DynamoDB Local with only their granted actions', () => {
  it('a user’s habits, assessments, mark-paid, settlement, payment and an abandoned settlement’s release all run, and the zero per-date counts are removed', async () => {
    const w = await world();
    const user = `u-grants-${Date.now().toString(36)}`;
    const other = `${user}-b`;
    const recipientId = `charity-${user}`;
    const habit = (penaltyAmount: number) => ({
      name: 'Habit',
      penaltyAmount,
      currency: 'usd',
      free: false,
      recipientId,
    });

    // The API: habits, and a verification of `read` on the first day.
    for (const [userId, habitId, amount] of [
      [user, 'run', 500],
      [user, 'read', 300],
      [other, 'walk', 200],
    ] as const) {
      const put = await w.call(
        w.api,
        'PUT',
        PENALTY_ROUTES.habit,
        { userId, habitId },
        {
          body: habit(amount),
        },
      );
      expect(put.status, `${userId}/${habitId}`).toBe(201);
    }
    w.clock.time = at('2026-11-02', '20:00:00');
    const verified = await w.call(w.api, 'PUT', PENALTY_ROUTES.verification, {
      userId: user,
      habitId: 'read',
      date: '2026-11-02',
    });
    expect(verified.status).toBeLessThan(300);

    // The admin route assesses the first day, the scheduled assessor the second.
    w.clock.time = at('2026-11-03', '00:30:00');
    const assessed = await w.call(
      w.admin,
      'POST',
      PENALTY_ROUTES.assess,
      {},
      {
        body: { date: '2026-11-02' },
      },
    );
    expect(assessed.status).toBe(200);
    w.clock.time = at('2026-11-04', '00:30:00');
    const second = await assessDate('2026-11-03', { store: w.storeAs('assessor'), clock: w.clock });
    expect(second.thisRun.penaltiesCreated).toBe(3);
    const ids = {
      run2: `pen_${user}_run_2026-11-02`,
      run3: `pen_${user}_run_2026-11-03`,
      read3: `pen_${user}_read_2026-11-03`,
    };

    // The API's reads.
    const unpaid = await w.call(
      w.api,
      'GET',
      PENALTY_ROUTES.penalties,
      { userId: user },
      {
        query: { status: 'unpaid', fields: 'penaltyId,amount' },
      },
    );
    expect(unpaid.status).toBe(200);
    expect(unpaid.body.items.map((p: { penaltyId: string }) => p.penaltyId).sort()).toEqual(
      Object.values(ids).sort(),
    );
    const summary = await w.call(w.api, 'GET', PENALTY_ROUTES.summary, { userId: user });
    expect(summary.body).toMatchObject({ unpaidCount: 3, oldestUnpaidDate: '2026-11-02' });
    expect((await w.call(w.api, 'GET', PENALTY_ROUTES.habits, { userId: user })).status).toBe(200);
    expect(
      (await w.call(w.api, 'GET', PENALTY_ROUTES.recipientTotals, { recipientId })).status,
    ).toBe(200);
    expect(await w.unpaidDateCounts(user)).toEqual({
      [`${UNPAID_DATE_PREFIX}2026-11-02`]: 1,
      [`${UNPAID_DATE_PREFIX}2026-11-03`]: 2,
    });

    // The admin marks the first day's penalty paid: that date's count reaches zero and goes.
    const marked = await w.call(
      w.admin,
      'POST',
      PENALTY_ROUTES.markPaid,
      {},
      {
        body: { penaltyIds: [ids.run2] },
      },
    );
    expect(marked.status).toBe(200);
    expect(marked.body).toMatchObject({ changed: [ids.run2] });
    expect(await w.unpaidDateCounts(user)).toEqual({ [`${UNPAID_DATE_PREFIX}2026-11-03`]: 2 });

    // The API settles the rest; the payments consumer records how the payment went.
    const settled = await w.call(w.api, 'POST', PENALTY_ROUTES.settle, { userId: user });
    expect(settled.status).toBe(200);
    const paymentIntentId: string = settled.body.payment.paymentIntentId;
    const consumer = createPaymentConsumer({
      store: new DynamoDbPaymentStore({ client: raw, paymentsTableName }),
      directory: new DynamoDbCustomerDirectory({ client: raw, billingTableName }),
      penalties: w.storeAs('paymentConsumer'),
      ...quiet(),
    });
    const deliver = async (event: unknown) => {
      const response = await consumer(sqsBatch([JSON.stringify(event)]), context);
      expect(response.batchItemFailures).toEqual([]);
    };
    // The card is declined first (the penalties go back to unpaid), then the user pays
    // with another card on the same PaymentIntent: unpaid -> paid, the count reaches zero.
    await deliver(stripe.failPaymentIntent(paymentIntentId));
    expect(await w.unpaidDateCounts(user)).toEqual({ [`${UNPAID_DATE_PREFIX}2026-11-03`]: 2 });
    await deliver(stripe.succeedPaymentIntent(paymentIntentId));
    const paid = await w.storeAs('api').getPenalties([ids.run3, ids.read3]);
    expect([...paid.values()].map((p) => [p.status, p.paymentId])).toEqual([
      ['paid', paymentIntentId],
      ['paid', paymentIntentId],
    ]);
    expect(await w.unpaidDateCounts(user)).toEqual({});

    // The other user's settlement is abandoned: the sweeper cancels it and releases it.
    const abandoned = await w.call(w.api, 'POST', PENALTY_ROUTES.settle, { userId: other });
    expect(abandoned.status).toBe(200);
    w.clock.time += 3 * 3_600_000;
    const swept = await sweepAbandonedSettlements({
      store: w.storeAs('sweeper'),
      gateway: w.gateway,
      clock: w.clock,
    });
    expect(swept).toMatchObject({ released: 1, failed: 0 });
    expect(await w.storeAs('api').getAccount(other)).toMatchObject({
      unpaidCount: 2,
      pending: null,
    });

    expect(w.pruneFailures).toEqual([]);
  });

  it('the scoped client refuses what a role lacks, and a denied read-back is reported, not thrown: mark-paid with the assessment’s actions alone (the grant before) commits but keeps the zero count', async () => {
    const w = await world();
    const user = `u-grants-old-${Date.now().toString(36)}`;
    await expect(w.storeAs('assessor').getAccount(user)).rejects.toBeInstanceOf(AccessDeniedError);

    const put = await w.call(
      w.api,
      'PUT',
      PENALTY_ROUTES.habit,
      { userId: user, habitId: 'run' },
      {
        body: { name: 'Run', penaltyAmount: 500, currency: 'usd', free: false, recipientId: null },
      },
    );
    expect(put.status).toBe(201);
    w.clock.time = at('2026-11-03', '00:30:00');
    await assessDate('2026-11-02', { store: w.storeAs('assessor'), clock: w.clock });

    const grants = roles(w.penaltiesTableName);
    const before = {
      ...grants,
      admin: {
        [w.penaltiesTableName]: {
          actions: PENALTY_ASSESSMENT_ACTIONS,
          indexes: [ACCOUNT_ASSESSMENT_INDEX.indexName],
        },
      },
    };
    const oldAdmin = w.storeAs('admin', before);
    const id = `pen_${user}_run_2026-11-02`;
    const marked = await createPenaltyAdminHandler({
      store: oldAdmin,
      clock: w.clock,
      ...quiet(),
    })(
      httpApiEvent({
        method: 'POST',
        path: PENALTY_ROUTES.markPaid,
        routeKey: `POST ${PENALTY_ROUTES.markPaid}`,
        body: JSON.stringify({ penaltyIds: [id] }),
      }),
      context,
    );
    expect(marked.statusCode).toBe(200);
    expect(JSON.parse(marked.body as string)).toMatchObject({ changed: [id] });
    expect(await w.unpaidDateCounts(user)).toEqual({ [`${UNPAID_DATE_PREFIX}2026-11-02`]: 0 });
    expect(w.pruneFailures).toHaveLength(1);
    expect(w.pruneFailures[0]?.role).toBe('admin');
    expect(w.pruneFailures[0]?.error).toBeInstanceOf(AccessDeniedError);
  });
});
