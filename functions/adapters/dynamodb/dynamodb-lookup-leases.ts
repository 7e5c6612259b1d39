/**
 * The read route's leases on users' Stripe lookups (StripeLookupLeases), one small item
 * per user beside the profile: `USER#<userId>` / `STRIPE_LOOKUP` with the holder's
 * `token`, `state` and `untilMs`. Taking one is a conditional put that succeeds only
 * when there is none or it is no longer live, so of the instances that miss the same
 * user at once exactly one asks Stripe. A lease is never deleted (the read function
 * has no delete grant): the next lookup of that user overwrites it.
 */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  LeaseOutcome,
  LookupLease,
  StripeLookupLeases,
} from '../../core/subscriptions/ports.ts';
import { billingKeys as keys } from './billing-table-keys.ts';

const LEASE_STATES: ReadonlySet<string> = new Set([
  'running',
  'unknown',
  'unavailable',
  'rejected',
]);

export class DynamoDbStripeLookupLeases implements StripeLookupLeases {
  readonly #documents: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { billingTableName: string; client: DynamoDBClient }) {
    this.#documents = DynamoDBDocumentClient.from(options.client);
    this.#table = options.billingTableName;
  }

  async acquire(
    userId: string,
    token: string,
    nowMs: number,
    untilMs: number,
  ): Promise<LookupLease | null> {
    try {
      await this.#documents.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...keys.stripeLookup(userId), token, state: 'running', untilMs },
          ConditionExpression: 'attribute_not_exists(pk) OR untilMs <= :now',
          ExpressionAttributeValues: { ':now': nowMs },
        }),
      );
      return null;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // Live when the condition was checked; if it has ended since, the caller sees so.
      return (await this.read(userId)) ?? { state: 'running', untilMs: nowMs };
    }
  }

  async read(userId: string): Promise<LookupLease | null> {
    const { Item } = await this.#documents.send(
      new GetCommand({
        TableName: this.#table,
        Key: keys.stripeLookup(userId),
        ConsistentRead: true,
        ProjectionExpression: '#state, untilMs',
        ExpressionAttributeNames: { '#state': 'state' },
      }),
    );
    if (!Item || !LEASE_STATES.has(String(Item.state))) return null;
    return { state: Item.state as LookupLease['state'], untilMs: Number(Item.untilMs) };
  }

  async end(userId: string, token: string, outcome: LeaseOutcome): Promise<void> {
    // Released: expired at once, so the next request takes it without waiting.
    const [state, untilMs] =
      outcome.state === 'released' ? ['running', 0] : [outcome.state, outcome.untilMs];
    try {
      await this.#documents.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keys.stripeLookup(userId),
          UpdateExpression: 'SET #state = :state, untilMs = :until',
          ConditionExpression: '#token = :token',
          ExpressionAttributeNames: { '#state': 'state', '#token': 'token' },
          ExpressionAttributeValues: { ':state': state, ':until': untilMs, ':token': token },
        }),
      );
    } catch (error) {
      // Taken by another instance since (ours had expired): theirs now.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
}
