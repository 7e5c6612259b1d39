import { type CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { CREDIT_SLOT_INDEX } from '../functions/adapters/dynamodb/credit-table-schema.ts';
import { LOCAL_NAME_PREFIX, METADATA } from './metadata.ts';

/** TTL attribute of the ledger tables (epoch seconds), written by the consumers. */
export const LEDGER_TTL_ATTRIBUTE = 'expiresAt';

/**
 * The subscription data: a single table for profiles (shared with later contexts:
 * credits stamp the same profile item), customer accounts and subscription pointers
 * (`pk`/`sk`), and the subscription ledger (`customerId`/`revision`, TTL `expiresAt`):
 * one page per account commit, listing the Stripe events that commit recorded. The
 * billing table carries the credits' slot index (`refreshSlot` / `creditPeriod`,
 * layout in credit-table-schema.ts, capacity in docs/credits-capacity.md). Both
 * on-demand, PITR on, AWS-managed encryption, deletion protection on and retained
 * when the stack goes away: they hold money state.
 */
export class BillingTables extends Construct {
  public readonly billing: Table;
  public readonly subscriptionLedger: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);

    this.billing = new Table(this, 'Billing', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      ...STATEFUL_TABLE_DEFAULTS,
    });
    // The users of a slot not yet refreshed for a period: one paged query per planner run.
    const slot = CREDIT_SLOT_INDEX;
    this.billing.addGlobalSecondaryIndex({
      indexName: slot.indexName,
      partitionKey: { name: slot.partitionKey.name, type: attributeType(slot.partitionKey.type) },
      sortKey: { name: slot.sortKey.name, type: attributeType(slot.sortKey.type) },
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...slot.projected],
    });
    setLocalName(this.billing, 'billing');

    // Construct id 'Events' kept: a new logical id would replace the retained table.
    this.subscriptionLedger = new Table(this, 'Events', {
      partitionKey: { name: 'customerId', type: AttributeType.STRING },
      sortKey: { name: 'revision', type: AttributeType.NUMBER },
      timeToLiveAttribute: LEDGER_TTL_ATTRIBUTE,
      ...STATEFUL_TABLE_DEFAULTS,
    });
    setLocalName(this.subscriptionLedger, 'subscription-ledger');
  }
}

export const STATEFUL_TABLE_DEFAULTS = {
  billingMode: BillingMode.PAY_PER_REQUEST,
  pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
  encryption: TableEncryption.AWS_MANAGED,
  deletionProtection: true,
  removalPolicy: RemovalPolicy.RETAIN,
} as const;

function attributeType(type: 'S' | 'N'): AttributeType {
  return type === 'N' ? AttributeType.NUMBER : AttributeType.STRING;
}

export function setLocalName(table: Table, suffix: string): void {
  (table.node.defaultChild as CfnResource).addMetadata(
    METADATA.localName,
    `${LOCAL_NAME_PREFIX}-${suffix}`,
  );
}
