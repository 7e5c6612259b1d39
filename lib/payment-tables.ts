import { type CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import {
  PAYMENT_INDEXES,
  PAYMENT_TABLE_KEY,
  PAYMENT_TTL_ATTRIBUTE,
} from '../functions/adapters/dynamodb/payment-table-schema.ts';
import { LOCAL_NAME_PREFIX, METADATA } from './metadata.ts';

/**
 * The payments data: one table (`pk`/`sk`) for payments, their charge pointers, their
 * ledger pages (TTL `expiresAt`) and the sharded daily summaries, with four sparse
 * indexes (user history, user + status, paid by status and day, refunds by day) that
 * project the payment's `view` only. Layout: payment-table-schema.ts; capacity:
 * docs/payments-capacity.md. On-demand, PITR on, AWS-managed encryption, deletion
 * protection on and retained when the stack goes away: it holds money state.
 */
export class PaymentTables extends Construct {
  public readonly payments: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);

    this.payments = new Table(this, 'Payments', {
      partitionKey: { name: PAYMENT_TABLE_KEY.partition, type: AttributeType.STRING },
      sortKey: { name: PAYMENT_TABLE_KEY.sort, type: AttributeType.STRING },
      timeToLiveAttribute: PAYMENT_TTL_ATTRIBUTE,
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of PAYMENT_INDEXES) {
      this.payments.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.INCLUDE,
        nonKeyAttributes: [...index.projected],
      });
    }
    setLocalName(this.payments, 'payments');
  }
}

function setLocalName(table: Table, suffix: string): void {
  (table.node.defaultChild as CfnResource).addMetadata(
    METADATA.localName,
    `${LOCAL_NAME_PREFIX}-${suffix}`,
  );
}
