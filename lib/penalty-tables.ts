import { AttributeType, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import {
  ACCOUNT_ASSESSMENT_INDEX,
  PENALTY_KEYS,
  PENALTY_STATUS_INDEX,
  PENDING_SETTLEMENT_INDEX,
} from '../functions/adapters/dynamodb/penalty-table-schema.ts';
import { STATEFUL_TABLE_DEFAULTS, setLocalName } from './billing-tables.ts';

/** Every index of the penalties table, from the schema module the store queries them by. */
export const PENALTY_INDEXES = [
  PENALTY_STATUS_INDEX,
  ACCOUNT_ASSESSMENT_INDEX,
  PENDING_SETTLEMENT_INDEX,
] as const;

/**
 * The table's key attribute names, read off the schema module's own key builders (every
 * item is keyed by the same two attributes: partition first, then sort), so the key the
 * store writes and the key the table declares cannot differ.
 */
export function penaltyTableKey(): { partition: string; sort: string } {
  const layouts = Object.values(PENALTY_KEYS).map((build) =>
    Object.keys((build as (...ids: string[]) => Record<string, string>)('x', 'x', 'x')),
  );
  const [first] = layouts;
  if (first?.length !== 2 || layouts.some((names) => names.join() !== first.join())) {
    throw new Error(
      `penalty-table-schema.ts: every PENALTY_KEYS item must have the same two key attributes, got ${JSON.stringify(layouts)}`,
    );
  }
  return { partition: first[0] as string, sort: first[1] as string };
}

/**
 * The penalties data (DESIGN §8.3): one table (`pk`/`sk`) for each user's habit counts
 * and unpaid summary, habits, penalties, recipients' totals and the assessment's shard
 * progress, with two indexes projecting ALL: `byStatus` (a user's penalties of one
 * status by date, any `fields` in one query) and the sparse `byAssessment` (only
 * active habits carry its keys; the assessment pages through each shard), and the
 * sparse `byPendingSettlement` projecting the user only (accounts holding a settlement
 * lock, by when it was taken: the hourly sweep of abandoned settlements). Layout:
 * penalty-table-schema.ts. On-demand, PITR on, AWS-managed encryption, deletion
 * protection on and retained when the stack goes away: it holds money owed and paid.
 */
export class PenaltyTables extends Construct {
  public readonly penalties: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const key = penaltyTableKey();

    this.penalties = new Table(this, 'Penalties', {
      partitionKey: { name: key.partition, type: AttributeType.STRING },
      sortKey: { name: key.sort, type: AttributeType.STRING },
      ...STATEFUL_TABLE_DEFAULTS,
    });
    for (const index of PENALTY_INDEXES) {
      this.penalties.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: {
          name: index.partitionKey.name,
          type: attributeType(index.partitionKey.type),
        },
        sortKey: { name: index.sortKey.name, type: attributeType(index.sortKey.type) },
        // Whole items where the reader needs them (any `fields` of a penalty, every habit
        // field the assessment needs); only the named attributes where it re-reads by key.
        ...('nonKeyAttributes' in index
          ? {
              projectionType: ProjectionType.INCLUDE,
              nonKeyAttributes: [...index.nonKeyAttributes],
            }
          : { projectionType: ProjectionType.ALL }),
      });
    }
    setLocalName(this.penalties, 'penalties');
  }
}

function attributeType(type: 'S' | 'N'): AttributeType {
  return type === 'N' ? AttributeType.NUMBER : AttributeType.STRING;
}
