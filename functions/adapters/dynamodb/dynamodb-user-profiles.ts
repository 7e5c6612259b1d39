/** UserProfiles over the billing table: a user is known when its profile item exists. */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { UserProfiles } from '../../core/payments/ports.ts';
import { billingKeys } from './billing-table-keys.ts';

export class DynamoDbUserProfiles implements UserProfiles {
  readonly #documents: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBClient; billingTableName: string }) {
    this.#documents = DynamoDBDocumentClient.from(options.client);
    this.#table = options.billingTableName;
  }

  async exists(userId: string): Promise<boolean> {
    const { Item } = await this.#documents.send(
      new GetCommand({
        TableName: this.#table,
        Key: billingKeys.profile(userId),
        // The key alone: the answer is whether the item is there.
        ProjectionExpression: 'pk',
      }),
    );
    return Item !== undefined;
  }
}
