/**
 * The credit refresh planner's use case (DESIGN §8.2): find the due slots, page
 * through each slot's users not yet refreshed for the period, and enqueue their
 * refresh work in batches. A slot is recorded as planned only once all its users are
 * enqueued, so a run that stops half-way re-plans that slot next time; the workers'
 * conditional write makes a user enqueued twice harmless.
 */
import type { CreditRunLog, CreditStore, RefreshQueue, RefreshWork } from './ports.ts';
import { periodAt, SLOTS_PER_DAY, slotAt } from './refresh-slot.ts';

/** A planner request the caller got wrong (an operator's slot or date). */
export class CreditRequestError extends Error {
  /** The request field at fault. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field} ${message}.`);
    this.name = 'CreditRequestError';
    this.field = field;
  }
}

export interface PlanRequest {
  /** Epoch ms the run is for (the schedule's time). */
  now: number;
  /** Plan exactly these slots (operators); default: every slot due. */
  slots?: readonly number[];
  /** The period (UTC date) to plan; default the date of `now`. */
  period?: string;
}

export interface PlanDeps {
  store: Pick<CreditStore, 'usersDue'>;
  queue: RefreshQueue;
  runLog: Pick<CreditRunLog, 'recordPlanned' | 'plannedSlots'>;
  /** Users read per index query. Default 100. */
  pageSize?: number;
  /** Users per enqueue call. Default 250 (the SQS adapter sends 10 messages of 25). */
  enqueueBatch?: number;
}

export interface PlanResult {
  planned: number;
  slots: { period: string; slot: number; planned: number }[];
}

/** The slots of `period` due at `now` and not planned yet: a missed run is caught up. */
export function dueSlots(period: string, now: number, planned: readonly number[]): number[] {
  const today = periodAt(now);
  if (period > today) return [];
  const last = period === today ? slotAt(now) : SLOTS_PER_DAY - 1;
  const done = new Set(planned);
  const due: number[] = [];
  for (let slot = 0; slot <= last; slot++) if (!done.has(slot)) due.push(slot);
  return due;
}

function previousPeriod(period: string): string {
  return new Date(Date.parse(`${period}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

function checkRequest(request: PlanRequest): void {
  const today = periodAt(request.now);
  if (request.period !== undefined) {
    const valid =
      /^\d{4}-\d{2}-\d{2}$/.test(request.period) &&
      new Date(`${request.period}T00:00:00Z`).toISOString().startsWith(request.period);
    if (!valid) throw new CreditRequestError('date', 'must be a date YYYY-MM-DD');
    if (request.period > today) throw new CreditRequestError('date', 'must not be in the future');
  }
  for (const slot of request.slots ?? []) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS_PER_DAY) {
      throw new CreditRequestError('slots', `must be whole numbers from 0 to ${SLOTS_PER_DAY - 1}`);
    }
  }
}

/** Plans one run. Throws CreditRequestError for a bad operator request. */
export async function planCreditRefresh(request: PlanRequest, deps: PlanDeps): Promise<PlanResult> {
  checkRequest(request);
  const period = request.period ?? periodAt(request.now);
  const targets: { period: string; slot: number }[] = [];
  if (request.slots) {
    for (const slot of new Set(request.slots)) targets.push({ period, slot });
  } else {
    // The first runs of a day also finish yesterday, if its last slots were missed while
    // the planner was running (a day with nothing planned, e.g. before the first deploy,
    // is not backfilled: its period is over, and its users are refreshed today).
    if (request.period === undefined) {
      const yesterday = previousPeriod(period);
      const plannedYesterday = await deps.runLog.plannedSlots(yesterday);
      if (plannedYesterday.length > 0) {
        for (const slot of dueSlots(yesterday, request.now, plannedYesterday)) {
          targets.push({ period: yesterday, slot });
        }
      }
    }
    for (const slot of dueSlots(period, request.now, await deps.runLog.plannedSlots(period))) {
      targets.push({ period, slot });
    }
  }

  const result: PlanResult = { planned: 0, slots: [] };
  for (const target of targets) {
    const planned = await planSlot(target.period, target.slot, request.now, deps);
    result.planned += planned;
    result.slots.push({ ...target, planned });
  }
  return result;
}

/** Pages through one slot's due users, enqueuing as it goes; records the slot when done. */
async function planSlot(
  period: string,
  slot: number,
  now: number,
  deps: PlanDeps,
): Promise<number> {
  const pageSize = deps.pageSize ?? 100;
  const batchSize = deps.enqueueBatch ?? 250;
  let pending: RefreshWork[] = [];
  let planned = 0;
  let cursor: string | undefined;
  do {
    const page = await deps.store.usersDue({
      slot,
      period,
      limit: pageSize,
      ...(cursor ? { cursor } : {}),
    });
    for (const user of page.items) {
      pending.push({ userId: user.userId, tier: user.tier, period, slot, plannedAt: now });
    }
    if (pending.length >= batchSize) {
      await deps.queue.enqueue(pending);
      planned += pending.length;
      pending = [];
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  if (pending.length > 0) {
    await deps.queue.enqueue(pending);
    planned += pending.length;
  }
  await deps.runLog.recordPlanned(period, slot, planned, now);
  return planned;
}
