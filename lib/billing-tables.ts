import { type CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { LOCAL_NAME_PREFIX, METADATA } from './metadata.ts';

/** TTL attribute of the ledger tables (epoch seconds), written by the consumers. */
export const LEDGER_TTL_ATTRIBUTE = 'expiresAt';

/**
 * The subscription data: a single table for profiles (shared with later contexts:
 * credits stamp the same profile item), customer accounts and subscription pointers
 * (`pk`/`sk`), and the subscription ledger (`customerId`/`revision`, TTL `expiresAt`):
 * one page per account commit, listing the Stripe events that commit recorded. Both
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

export function setLocalName(table: Table, suffix: string): void {
  (table.node.defaultChild as CfnResource).addMetadata(
    METADATA.localName,
    `${LOCAL_NAME_PREFIX}-${suffix}`,
  );
}
