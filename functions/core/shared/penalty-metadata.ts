/**
 * How a penalty PaymentIntent names the penalties it pays, in Stripe metadata: the
 * penalties context writes it when it settles, the payments context reads it back
 * from every PaymentIntent event. Stripe caps a metadata value at 500 characters and
 * a PaymentIntent at 50 keys, so the comma-separated ids are split across
 * `penaltyIds`, `penaltyIds_1`, `penaltyIds_2`, … (at most PENALTY_ID_KEYS keys,
 * leaving room for `purpose`, `userId` and an integrator's own keys).
 */

export const PENALTY_PURPOSE = 'penalty';
export const PENALTY_IDS_KEY = 'penaltyIds';
/** Stripe's cap on one metadata value. */
export const METADATA_VALUE_MAX = 500;
/** Keys the ids may use (of Stripe's 50): about 500 ids of 40 characters. */
export const PENALTY_ID_KEYS = 40;

const chunkKey = (index: number) => (index === 0 ? PENALTY_IDS_KEY : `${PENALTY_IDS_KEY}_${index}`);

/** The chunks of at most METADATA_VALUE_MAX characters the comma-separated ids fill, in order. */
function metadataChunks(ids: readonly string[]): string[] {
  const chunks: string[] = [];
  let current = '';
  for (const id of ids) {
    if (id.length > METADATA_VALUE_MAX || id.includes(',')) {
      throw new RangeError(`penalty id cannot be carried in metadata: ${id}`);
    }
    const next = current === '' ? id : `${current},${id}`;
    if (next.length > METADATA_VALUE_MAX) {
      chunks.push(current);
      current = id;
    } else current = next;
  }
  if (current !== '') chunks.push(current);
  return chunks;
}

/**
 * How many of `ids`, from the first, one PaymentIntent's metadata can carry: ids of
 * long user and habit ids (up to 208 characters) fit two to a value, so 80 of them.
 */
export function penaltyIdsThatFit(ids: readonly string[]): number {
  let chunks = 0;
  /** Characters of the chunk being filled; 0: none open. */
  let open = 0;
  for (const [index, id] of ids.entries()) {
    if (id.length > METADATA_VALUE_MAX || id.includes(',')) return index;
    if (open > 0 && open + 1 + id.length <= METADATA_VALUE_MAX) {
      open += 1 + id.length;
      continue;
    }
    if (chunks === PENALTY_ID_KEYS) return index;
    chunks += 1;
    open = id.length;
  }
  return ids.length;
}

/**
 * The metadata entries that carry `ids`, in order. Throws a RangeError when an id is
 * longer than a value may be or the ids need more than PENALTY_ID_KEYS keys (the
 * settlement caps how many penalties one PaymentIntent pays, so this is a bug guard).
 */
export function penaltyIdsMetadata(ids: readonly string[]): Record<string, string> {
  const chunks = metadataChunks(ids);
  if (chunks.length > PENALTY_ID_KEYS) {
    throw new RangeError(
      `${ids.length} penalty ids need more than ${PENALTY_ID_KEYS} metadata keys`,
    );
  }
  return Object.fromEntries(chunks.map((chunk, index) => [chunkKey(index), chunk]));
}

/** The penalty ids a PaymentIntent's metadata names, in order, without repeats; [] when none. */
export function penaltyIdsFromMetadata(
  metadata: Readonly<Record<string, string | null | undefined>> | null | undefined,
): string[] {
  if (!metadata) return [];
  const ids: string[] = [];
  for (let index = 0; index < PENALTY_ID_KEYS; index += 1) {
    const raw = metadata[chunkKey(index)];
    if (!raw) break;
    for (const id of raw.split(',')) {
      const trimmed = id.trim();
      if (trimmed !== '') ids.push(trimmed);
    }
  }
  return [...new Set(ids)];
}
