/** Product tiers, lowest first. */
export const TIERS = ['free', 'bronze', 'silver', 'gold'] as const;
export type Tier = (typeof TIERS)[number];

export function isTier(value: unknown): value is Tier {
  return typeof value === 'string' && (TIERS as readonly string[]).includes(value);
}

export function tierRank(tier: Tier): number {
  return TIERS.indexOf(tier);
}

/** Price id -> tier, from config (PRICE_TIER_MAP). */
export type PriceTierMap = Readonly<Record<string, Tier>>;

/** A price as the domain sees it: Stripe's `metadata.tier` wins over the configured map. */
export interface PriceRef {
  id: string;
  metadataTier?: string | undefined;
}

/**
 * Resolves a subscription's tier from its prices: the best tier among its items,
 * each taken from the price's `metadata.tier` when valid, else from the map.
 * Returns `unmappedPriceIds` so the caller can warn about configuration gaps; an
 * unmapped price grants nothing (free) rather than guessing.
 */
export function resolveTier(
  prices: readonly PriceRef[],
  priceTierMap: PriceTierMap,
): { tier: Tier; unmappedPriceIds: string[] } {
  let best: Tier = 'free';
  const unmappedPriceIds: string[] = [];
  for (const price of prices) {
    const fromMetadata = price.metadataTier?.trim().toLowerCase();
    const tier = isTier(fromMetadata) ? fromMetadata : priceTierMap[price.id];
    if (!tier) {
      if (!unmappedPriceIds.includes(price.id)) unmappedPriceIds.push(price.id);
      continue;
    }
    if (tierRank(tier) > tierRank(best)) best = tier;
  }
  return { tier: best, unmappedPriceIds };
}

/** Parses and validates a PRICE_TIER_MAP JSON string; throws with a clear message. */
export function parsePriceTierMap(json: string | undefined): PriceTierMap {
  if (json === undefined || json.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error('PRICE_TIER_MAP must be a JSON object of price id to tier', { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('PRICE_TIER_MAP must be a JSON object of price id to tier');
  }
  const map: Record<string, Tier> = {};
  for (const [priceId, tier] of Object.entries(parsed)) {
    if (!isTier(tier)) {
      throw new Error(
        `PRICE_TIER_MAP: price ${priceId} maps to ${JSON.stringify(tier)}, expected one of ${TIERS.join(', ')}`,
      );
    }
    map[priceId] = tier;
  }
  return map;
}
