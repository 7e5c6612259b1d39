/**
 * DynamoDB request units by the published sizing rules, computed from a request and
 * its response. Needed because DynamoDB Local under-reports `ConsumedCapacity`: for a
 * TransactWriteItems it reports one item's units per table instead of the sum (9
 * transactional puts of small items report 2 WCU, not 18), and a BatchGetItem key
 * that finds nothing reports 0 where DynamoDB charges the minimum read.
 *
 * Rules (DynamoDB developer guide, "Item sizes" and "Read/write capacity"): an item's
 * size is the UTF-8 length of its attribute names plus its values (numbers about one
 * byte per two significant digits plus one, booleans and nulls 1, lists and maps 3
 * plus 1 per element). Writes cost 1 unit per started KB, reads 1 per started 4 KB
 * (half for eventually consistent reads), at least one unit even for a missing item,
 * and transactions cost twice that. Known approximations: an UpdateItem is sized from
 * its key and new values (DynamoDB uses the larger of the item before and after), and
 * a projected read is sized from what came back (DynamoDB sizes the whole item). Both
 * only matter for items over 1 KB / 4 KB.
 */

const KB = 1024;

type Plain = Record<string, unknown>;

/** Size in bytes of one value; `wire` when it is an AttributeValue (`{ S: 'x' }`), else a plain JS value. */
export function valueSize(value: unknown, wire: boolean): number {
  if (wire) return wireValueSize(value as Plain);
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number' || typeof value === 'bigint') return numberSize(String(value));
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) {
    let size = 0;
    for (const element of value) size += valueSize(element, false);
    return size;
  }
  if (Array.isArray(value)) {
    let size = 3;
    for (const element of value) size += valueSize(element, false) + 1;
    return size;
  }
  if (typeof value === 'object' && value !== undefined) {
    let size = 3;
    for (const [name, element] of Object.entries(value as Plain)) {
      if (element === undefined) continue;
      size += Buffer.byteLength(name) + valueSize(element, false) + 1;
    }
    return size;
  }
  return 0;
}

function wireValueSize(value: Plain): number {
  if (!value || typeof value !== 'object') return 0;
  if (typeof value.S === 'string') return Buffer.byteLength(value.S);
  if (typeof value.N === 'string') return numberSize(value.N);
  if (value.B instanceof Uint8Array) return value.B.byteLength;
  if (typeof value.B === 'string') return Buffer.byteLength(value.B, 'base64');
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (Array.isArray(value.SS))
    return (value.SS as string[]).reduce((s, v) => s + Buffer.byteLength(v), 0);
  if (Array.isArray(value.NS)) return (value.NS as string[]).reduce((s, v) => s + numberSize(v), 0);
  if (Array.isArray(value.BS))
    return (value.BS as Uint8Array[]).reduce((s, v) => s + v.byteLength, 0);
  if (Array.isArray(value.L))
    return (value.L as Plain[]).reduce((s, v) => s + wireValueSize(v) + 1, 3);
  if (value.M && typeof value.M === 'object') {
    let size = 3;
    for (const [name, element] of Object.entries(value.M as Record<string, Plain>)) {
      size += Buffer.byteLength(name) + wireValueSize(element) + 1;
    }
    return size;
  }
  return 0;
}

function numberSize(text: string): number {
  const digits = text
    .replace(/^[-+]/, '')
    .replace(/[eE].*$/, '')
    .replace('.', '')
    .replace(/^0+/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** Size of an item (or key): attribute names plus values. */
export function itemSize(item: unknown, wire: boolean): number {
  if (!item || typeof item !== 'object') return 0;
  let size = 0;
  for (const [name, value] of Object.entries(item as Plain)) {
    if (value === undefined) continue;
    size += Buffer.byteLength(name) + valueSize(value, wire);
  }
  return size;
}

export function writeUnits(sizeBytes: number): number {
  return Math.max(1, Math.ceil(sizeBytes / KB));
}

export function readUnits(sizeBytes: number, consistent: boolean): number {
  const units = Math.max(1, Math.ceil(sizeBytes / (4 * KB)));
  return consistent ? units : units / 2;
}

export interface RequestUnits {
  wru: number;
  rru: number;
}

function updateSize(update: Plain, wire: boolean): number {
  return itemSize(update.Key, wire) + itemSize(update.ExpressionAttributeValues, wire);
}

/** Write units of one transactional or batched write action. */
function actionWriteUnits(action: Plain, wire: boolean): number {
  if (action.Put) return writeUnits(itemSize((action.Put as Plain).Item, wire));
  if (action.Update) return writeUnits(updateSize(action.Update as Plain, wire));
  if (action.Delete) return writeUnits(itemSize((action.Delete as Plain).Key, wire));
  if (action.ConditionCheck)
    return writeUnits(itemSize((action.ConditionCheck as Plain).Key, wire));
  if (action.PutRequest) return writeUnits(itemSize((action.PutRequest as Plain).Item, wire));
  if (action.DeleteRequest) return writeUnits(itemSize((action.DeleteRequest as Plain).Key, wire));
  return 0;
}

/**
 * Request units one successful call consumed. `operation` is the wire name
 * (`PutItem`...), `wire` says whether values are AttributeValues (the low-level
 * client) or plain JS (the document client).
 */
export function requestUnits(
  operation: string,
  input: Plain,
  output: Plain,
  wire: boolean,
): RequestUnits {
  if (
    WRITE_ACTION[operation] !== undefined ||
    operation === 'BatchWriteItem' ||
    operation === 'TransactWriteItems'
  ) {
    return { wru: sumUnits(writeUnitsByItemKind(operation, input, output, wire)), rru: 0 };
  }
  switch (operation) {
    case 'GetItem':
      return { wru: 0, rru: readUnits(itemSize(output.Item, wire), input.ConsistentRead === true) };
    case 'BatchGetItem': {
      let rru = 0;
      const requested = (input.RequestItems ?? {}) as Record<string, Plain>;
      const responses = (output.Responses ?? {}) as Record<string, Plain[]>;
      const unprocessed = (output.UnprocessedKeys ?? {}) as Record<string, Plain>;
      for (const [table, request] of Object.entries(requested)) {
        const consistent = request.ConsistentRead === true;
        const found = responses[table] ?? [];
        for (const item of found) rru += readUnits(itemSize(item, wire), consistent);
        const asked = ((request.Keys ?? []) as unknown[]).length;
        const left = ((unprocessed[table]?.Keys ?? []) as unknown[]).length;
        // Keys that found nothing still cost the minimum read.
        rru += Math.max(0, asked - left - found.length) * readUnits(0, consistent);
      }
      return { wru: 0, rru };
    }
    case 'TransactGetItems': {
      const items = ((output.Responses ?? []) as Plain[]).map((r) => r.Item);
      return {
        wru: 0,
        rru: 2 * items.reduce<number>((s, item) => s + readUnits(itemSize(item, wire), true), 0),
      };
    }
    case 'Query':
    case 'Scan': {
      // Query and Scan round the total of the items read, not each item.
      const total = ((output.Items ?? []) as Plain[]).reduce<number>(
        (s, item) => s + itemSize(item, wire),
        0,
      );
      return { wru: 0, rru: readUnits(total, input.ConsistentRead === true) };
    }
    default:
      return { wru: 0, rru: 0 };
  }
}

/** The single-item write operations, and the transaction action each one is sized like. */
const WRITE_ACTION: Record<string, string> = {
  PutItem: 'Put',
  UpdateItem: 'Update',
  DeleteItem: 'Delete',
};

/**
 * The write units of a successful write call, split by item kind: the table name, plus
 * the prefix of a string `pk` before its first '#' (`billing/CUSTOMER`), so a report
 * can say which items a commit's units go to. A BatchWriteItem's unprocessed items
 * (in `output`) count negatively: they were not written. The one place writes are sized.
 */
export function writeUnitsByItemKind(
  operation: string,
  input: Plain,
  output: Plain,
  wire: boolean,
): Record<string, number> {
  const byKind: Record<string, number> = {};
  const add = (table: unknown, action: Plain, factor: number) => {
    const body = Object.values(action)[0] as Plain | undefined;
    const pk = ((body?.Item ?? body?.Key) as Plain | undefined)?.pk;
    const text = wire ? (pk as Plain | undefined)?.S : pk;
    const kind = `${String(table ?? body?.TableName)}${typeof text === 'string' ? `/${text.split('#')[0]}` : ''}`;
    byKind[kind] = (byKind[kind] ?? 0) + factor * actionWriteUnits(action, wire);
  };
  if (operation === 'TransactWriteItems') {
    for (const action of (input.TransactItems ?? []) as Plain[]) add(undefined, action, 2);
  } else if (operation === 'BatchWriteItem') {
    const each = (requests: unknown, factor: number) => {
      for (const [table, actions] of Object.entries((requests ?? {}) as Record<string, Plain[]>)) {
        for (const action of actions) add(table, action, factor);
      }
    };
    each(input.RequestItems, 1);
    each(output.UnprocessedItems, -1);
  } else if (WRITE_ACTION[operation]) {
    add(input.TableName, { [WRITE_ACTION[operation]]: input }, 1);
  }
  return byKind;
}

function sumUnits(byKind: Record<string, number>): number {
  return Object.values(byKind).reduce((sum, units) => sum + units, 0);
}

/** Estimated units a write rejected by its condition still consumed (DynamoDB bills it). */
export function rejectedWriteUnits(operation: string, input: Plain, wire: boolean): number {
  // A batch write has no condition to reject it.
  if (operation === 'BatchWriteItem') return 0;
  return sumUnits(writeUnitsByItemKind(operation, input, {}, wire));
}
