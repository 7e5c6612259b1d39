import { type CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { LOCAL_NAME_PREFIX, METADATA } from './metadata.ts';

/** TTL attribute of the events ledger (epoch seconds), written by the consumer. */
export const LEDGER_TTL_ATTRIBUTE = 'expiresAt';

/**
 * The billing data: a single table for profiles, customers and subscriptions
 * (`pk`/`sk`), and the events ledger (`customerId`/`revision`, TTL `expiresAt`): one
 * page per account commit, listing the Stripe events that commit recorded. Both on-demand, PITR on, AWS-managed encryption, deletion
 * protection on and retained when the stack goes away: they hold money state.
 */
export class BillingTables extends Construct {
  public readonly billing: Table;
  public readonly events: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);

    this.billing = new Table(this, 'Billing', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      ...STATEFUL_TABLE_DEFAULTS,
    });
    setLocalName(this.billing, 'billing');

    this.events = new Table(this, 'Events', {
      partitionKey: { name: 'customerId', type: AttributeType.STRING },
      sortKey: { name: 'revision', type: AttributeType.NUMBER },
      timeToLiveAttribute: LEDGER_TTL_ATTRIBUTE,
      ...STATEFUL_TABLE_DEFAULTS,
    });
    setLocalName(this.events, 'events');
  }
}

const STATEFUL_TABLE_DEFAULTS = {
  billingMode: BillingMode.PAY_PER_REQUEST,
  pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
  encryption: TableEncryption.AWS_MANAGED,
  deletionProtection: true,
  removalPolicy: RemovalPolicy.RETAIN,
} as const;

function setLocalName(table: Table, suffix: string): void {
  (table.node.defaultChild as CfnResource).addMetadata(
    METADATA.localName,
    `${LOCAL_NAME_PREFIX}-${suffix}`,
  );
}
