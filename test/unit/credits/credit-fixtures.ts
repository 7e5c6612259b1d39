/** Shared set-up of the credits unit tests: moments, users in a chosen slot, the fakes. */
import { InMemoryCreditStore } from '../../../functions/adapters/memory/in-memory-credit-store.ts';
import { InMemoryRefreshQueue } from '../../../functions/adapters/memory/in-memory-refresh-queue.ts';
import type { RefreshWork } from '../../../functions/core/credits/ports.ts';
import { refreshSlotOf } from '../../../functions/core/credits/refresh-slot.ts';
import type { Tier } from '../../../functions/core/shared/tiers.ts';

/** Epoch ms of an ISO timestamp. */
export const at = (iso: string): number => Date.parse(iso);

/** The first user id `<prefix><n>` whose slot is `slot` (about 288 hashes). */
export function userInSlot(slot: number, prefix: string): string {
  for (let n = 0; ; n++) if (refreshSlotOf(`${prefix}${n}`) === slot) return `${prefix}${n}`;
}

/** `count` distinct users of `slot`. */
export function usersInSlot(slot: number, count: number, prefix = `s${slot}-`): string[] {
  return Array.from({ length: count }, (_, i) => userInSlot(slot, `${prefix}${i}-`));
}

/** A store with these users (tier silver unless said), an empty queue. */
export function fakes(users: readonly (string | { userId: string; tier: Tier })[] = []) {
  const store = new InMemoryCreditStore();
  for (const user of users) {
    store.putProfile(typeof user === 'string' ? { userId: user, tier: 'silver' } : user);
  }
  return { store, queue: new InMemoryRefreshQueue() };
}

/** Refresh work as the planner would enqueue it. */
export function workFor(
  userId: string,
  tier: Tier,
  period: string,
  plannedAt = Date.parse(`${period}T10:00:00Z`),
): RefreshWork {
  return { userId, tier, period, slot: refreshSlotOf(userId), plannedAt };
}
