/**
 * DESIGN §8.2's promise under any schedule of events: repeated, late and concurrent
 * planner runs, workers over duplicated and reordered work, and tier changes in
 * between, refresh each user exactly once per day, with the allowance of the tier the
 * user had at that moment; the next day refreshes everyone again, once.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InMemoryCreditStore } from '../../../functions/adapters/memory/in-memory-credit-store.ts';
import { InMemoryRefreshQueue } from '../../../functions/adapters/memory/in-memory-refresh-queue.ts';
import { DEFAULT_CREDIT_ALLOWANCES } from '../../../functions/core/credits/allowances.ts';
import { planCreditRefresh } from '../../../functions/core/credits/plan-credit-refresh.ts';
import type { RefreshWork } from '../../../functions/core/credits/ports.ts';
import { refreshCredits } from '../../../functions/core/credits/refresh-credits.ts';
import { TIERS, type Tier } from '../../../functions/core/shared/tiers.ts';

const DAY = Date.parse('2026-12-03T00:00:00Z');
const tier = fc.constantFrom(...TIERS);

const step = fc.oneof(
  fc.record({
    kind: fc.constant('plan' as const),
    minute: fc.integer({ min: 0, max: 1439 }),
    twice: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('work' as const),
    take: fc.integer({ min: 1, max: 40 }),
    duplicate: fc.boolean(),
    reverse: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('tier' as const), user: fc.nat(), tier }),
);

describe('credit refresh: exactly once per user per day', () => {
  it('holds for any interleaving of planner runs, workers and tier changes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(tier, { minLength: 1, maxLength: 25 }),
        fc.array(step, { minLength: 1, maxLength: 30 }),
        async (tiers, steps) => {
          const store = new InMemoryCreditStore();
          const users = tiers.map((t, i) => {
            store.putProfile({ userId: `user-${i}`, tier: t });
            return `user-${i}`;
          });
          const queue = new InMemoryRefreshQueue();
          /** The tier each refresh was granted for, per user|period. */
          const granted = new Map<string, Tier[]>();
          const refresh = store.refresh.bind(store);
          store.refresh = async (work) => {
            const result = await refresh(work);
            if (result === 'refreshed') {
              const key = `${work.userId}|${work.period}`;
              granted.set(key, [...(granted.get(key) ?? []), work.tier]);
              expect(work.allowance).toBe(DEFAULT_CREDIT_ALLOWANCES[work.tier]);
              expect(store.profiles.get(work.userId)?.tier).toBe(work.tier);
            }
            return result;
          };
          let backlog: RefreshWork[] = [];
          const runWorkers = async (works: RefreshWork[], at: number) =>
            refreshCredits(works, {
              store,
              runLog: store,
              allowances: DEFAULT_CREDIT_ALLOWANCES,
              clock: { now: () => at },
            });
          const day = async (start: number) => {
            for (const s of steps) {
              if (s.kind === 'plan') {
                const now = start + s.minute * 60_000;
                const runs = s.twice ? 2 : 1;
                await Promise.all(
                  Array.from({ length: runs }, () =>
                    planCreditRefresh({ now }, { store, queue, runLog: store, pageSize: 7 }),
                  ),
                );
                backlog.push(...queue.drain());
              } else if (s.kind === 'work') {
                let batch = backlog.slice(0, s.take);
                backlog = backlog.slice(s.take);
                if (s.reverse) batch = batch.reverse();
                if (s.duplicate) batch = [...batch, ...batch];
                await runWorkers(batch, start + 60_000);
              } else {
                store.setTier(users[s.user % users.length]!, s.tier);
              }
            }
            // The day's last run, then the workers drain everything left (twice over).
            await planCreditRefresh({ now: start + 86_399_000 }, { store, queue, runLog: store });
            backlog.push(...queue.drain());
            await runWorkers([...backlog, ...backlog], start + 86_399_500);
            backlog = [];
          };
          for (const [index, start] of [DAY, DAY + 86_400_000].entries()) {
            await day(start);
            const period = new Date(start).toISOString().slice(0, 10);
            for (const userId of users) {
              expect(granted.get(`${userId}|${period}`), `${userId} on day ${index}`).toHaveLength(
                1,
              );
            }
          }
        },
      ),
      { numRuns: 120 },
    );
  });
});
