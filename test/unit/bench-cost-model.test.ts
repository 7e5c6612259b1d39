import { describe, expect, it } from 'vitest';
import {
  costPerMillionWebhooks,
  gbSeconds,
  meanBilledDurationMs,
  US_EAST_1_PRICES,
  US_EAST_1_PRICES_PRE_NOV_2024,
  type UsagePerWebhook,
} from '../../bench/cost-model.ts';
import {
  itemSize,
  readUnits,
  rejectedWriteUnits,
  requestUnits,
  valueSize,
  writeUnits,
  writeUnitsByItemKind,
} from '../../bench/dynamo-capacity.ts';

// Figures chosen so each line can be checked by hand.
const usage: UsagePerWebhook = {
  apiRequests: 1,
  lambdas: [
    { name: 'webhook', memoryMb: 512, invocationsPerWebhook: 1, billedDurationMs: 20 },
    { name: 'consumer', memoryMb: 512, invocationsPerWebhook: 0.04, billedDurationMs: 250 },
  ],
  sqsBilledRequests: 3,
  dynamoWru: 4,
  dynamoRru: 2,
  logBytes: 1000,
};

const line = (breakdown: ReturnType<typeof costPerMillionWebhooks>, service: string) =>
  breakdown.lines.find((l) => l.service === service)?.usdPerMillion;

describe('bench cost model', () => {
  it('prices each service per million webhooks at current list prices', () => {
    const cost = costPerMillionWebhooks(usage, US_EAST_1_PRICES);
    expect(line(cost, 'API Gateway HTTP API')).toBeCloseTo(1.0, 9);
    expect(line(cost, 'Lambda webhook requests')).toBeCloseTo(0.2, 9);
    // 0.5 GB x 0.020 s = 0.01 GB-s per webhook -> 10,000 GB-s per million.
    expect(line(cost, 'Lambda webhook compute')).toBeCloseTo(0.133334, 9);
    expect(line(cost, 'Lambda consumer requests')).toBeCloseTo(0.008, 9);
    // 0.04 x 0.5 GB x 0.25 s = 0.005 GB-s per webhook.
    expect(line(cost, 'Lambda consumer compute')).toBeCloseTo(0.066667, 9);
    expect(line(cost, 'SQS standard')).toBeCloseTo(1.2, 9);
    expect(line(cost, 'DynamoDB writes')).toBeCloseTo(2.5, 9);
    expect(line(cost, 'DynamoDB reads')).toBeCloseTo(0.25, 9);
    // 1,000 bytes x 1 M = 1 GB (10^9 bytes).
    expect(line(cost, 'CloudWatch Logs ingestion')).toBeCloseTo(0.5, 9);
    expect(cost.totalUsdPerMillion).toBeCloseTo(5.858001, 9);
  });

  it('doubles the DynamoDB lines at the pre-November-2024 on-demand prices', () => {
    const cost = costPerMillionWebhooks(usage, US_EAST_1_PRICES_PRE_NOV_2024);
    expect(line(cost, 'DynamoDB writes')).toBeCloseTo(5.0, 9);
    expect(line(cost, 'DynamoDB reads')).toBeCloseTo(0.5, 9);
    expect(cost.totalUsdPerMillion).toBeCloseTo(8.608001, 9);
  });

  it('prices writes rejected by a condition on their own line, and only when there are some', () => {
    const withRejected = costPerMillionWebhooks(
      { ...usage, dynamoRejectedWru: 0.8 },
      US_EAST_1_PRICES,
    );
    expect(line(withRejected, 'DynamoDB rejected writes (est.)')).toBeCloseTo(0.5, 9);
    expect(withRejected.totalUsdPerMillion).toBeCloseTo(6.358001, 9);
    const without = costPerMillionWebhooks(usage, US_EAST_1_PRICES);
    expect(line(without, 'DynamoDB rejected writes (est.)')).toBeUndefined();
  });

  it('sums to the total of its lines', () => {
    const cost = costPerMillionWebhooks(usage, US_EAST_1_PRICES);
    const sum = cost.lines.reduce((total, l) => total + l.usdPerMillion, 0);
    expect(cost.totalUsdPerMillion).toBe(sum);
  });

  it('bills each invocation rounded up to the next millisecond, at least 1 ms', () => {
    expect(meanBilledDurationMs([0.2, 1.0, 1.01, 7.5])).toBe(3);
    expect(meanBilledDurationMs([])).toBe(0);
  });

  it('computes GB-seconds from MB and ms', () => {
    expect(gbSeconds(1024, 1000)).toBe(1);
    expect(gbSeconds(128, 100)).toBeCloseTo(0.0125, 12);
  });
});

describe('bench DynamoDB request units (DynamoDB Local under-reports them)', () => {
  it('sizes items from attribute names and values, plain or wire format alike', () => {
    expect(itemSize({ pk: 'USER#1' }, false)).toBe(8);
    expect(itemSize({ pk: { S: 'USER#1' } }, true)).toBe(8);
    // Numbers: about one byte per two significant digits, plus one.
    expect(valueSize(123456, false)).toBe(4);
    expect(valueSize({ N: '123456' }, true)).toBe(4);
    // Maps and lists: 3 bytes plus 1 per element.
    expect(valueSize({ a: 'x' }, false)).toBe(6);
    expect(valueSize(['x', 'y'], false)).toBe(7);
    expect(valueSize(null, false)).toBe(1);
  });

  it('charges 1 WRU per started KB and twice that in a transaction, summed over items', () => {
    const small = (id: string) => ({ Put: { TableName: 't', Item: { pk: id } } });
    const nine = Array.from({ length: 9 }, (_, i) => small(`e${i}`));
    expect(requestUnits('TransactWriteItems', { TransactItems: nine }, {}, false)).toEqual({
      wru: 18,
      rru: 0,
    });
    expect(requestUnits('PutItem', { Item: { pk: 'a', d: 'x'.repeat(1500) } }, {}, false).wru).toBe(
      2,
    );
    expect(writeUnits(0)).toBe(1);
  });

  it('splits write units by table and pk prefix, and the split sums to the request units', () => {
    const transaction = {
      TransactItems: [
        { Put: { TableName: 'billing', Item: { pk: 'CUSTOMER#c1', d: 'x'.repeat(1500) } } },
        { Put: { TableName: 'events', Item: { customerId: 'c1', revision: 1 } } },
        { Update: { TableName: 'billing', Key: { pk: 'USER#u1' } } },
      ],
    };
    expect(writeUnitsByItemKind('TransactWriteItems', transaction, {}, false)).toEqual({
      'billing/CUSTOMER': 4,
      events: 2,
      'billing/USER': 2,
    });
    expect(requestUnits('TransactWriteItems', transaction, {}, false).wru).toBe(8);
    expect(rejectedWriteUnits('TransactWriteItems', transaction, false)).toBe(8);

    // Wire values, and unprocessed batch items that were never written.
    const pointer = (id: string) => ({
      PutRequest: { Item: { pk: { S: `SUBSCRIPTION#${id}` }, sk: { S: 'SUBSCRIPTION' } } },
    });
    const batch = { RequestItems: { billing: [pointer('a'), pointer('b'), pointer('c')] } };
    const output = { UnprocessedItems: { billing: [pointer('c')] } };
    expect(writeUnitsByItemKind('BatchWriteItem', batch, output, true)).toEqual({
      'billing/SUBSCRIPTION': 2,
    });
    expect(requestUnits('BatchWriteItem', batch, output, true).wru).toBe(2);
    expect(rejectedWriteUnits('BatchWriteItem', batch, true)).toBe(0);
    expect(
      writeUnitsByItemKind('PutItem', { TableName: 't', Item: { id: 'x' } }, {}, false),
    ).toEqual({ t: 1 });
  });

  it('charges the minimum read for batch keys that found nothing', () => {
    const input = {
      RequestItems: { t: { Keys: [{ pk: 'a' }, { pk: 'b' }, { pk: 'c' }], ConsistentRead: true } },
    };
    const output = { Responses: { t: [{ pk: 'a' }, { pk: 'b' }] } };
    expect(requestUnits('BatchGetItem', input, output, false).rru).toBe(3);
    const eventual = { RequestItems: { t: { ...input.RequestItems.t, ConsistentRead: false } } };
    expect(requestUnits('BatchGetItem', eventual, output, false).rru).toBe(1.5);
    expect(readUnits(5000, true)).toBe(2);
  });
});
