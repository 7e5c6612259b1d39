/**
 * The credit refresh planner's use case (DESIGN §5 Credits, §8.2): find the due slots,
 * page through each slot's users not yet refreshed for the period, and enqueue their
 * refresh work in batches.
 *
 * Which slots are due (without explicit `slots`):
 * - of `period` (default the UTC date of `now`): every slot after the planned prefix
 *   (the slots planned from 0 without a gap) up to the slot of `now`, so a missed run
 *   is caught up by the next one (a slot planned out of order, by an operator, may be
 *   planned again: harmless);
 * - when no `period` is given, first the slots of yesterday after its planned prefix,
 *   with yesterday's period: the first run of a day finishes what the last runs of the
 *   day before missed. Later runs of the day read yesterday's slots again (one read)
 *   and find nothing left. A yesterday with nothing planned at all is caught up whole
 *   (all 288 slots) only if the planner ran the day before it (it was down all day);
 *   if neither day has a planned slot, the system has not been running (first deploy,
 *   a fresh local data folder) and yesterday is not backfilled: that would refresh every
 *   user at once for a period that ended before the suite existed. Older days are never
 *   caught up automatically; an operator can plan them (`POST /admin/credits/refresh`).
 *
 * A slot is recorded as planned only once all its users are enqueued, so a run that
 * stops half-way (an enqueue or index failure, a timeout) throws, and the next run plans
 * that slot again; the workers' conditional write makes a user enqueued twice harmless.
 * Only one page of users and one batch of work are in memory at a time.
 */
import type { CreditRunLog, CreditStore, RefreshQueue, RefreshWork } from './ports.ts';
import { periodAt, SLOTS_PER_DAY, slotAt, slotStart } from './refresh-slot.ts';

/** A planner request the caller got wrong (an operator's slots or date); `field` names it. */
export class CreditRequestError extends Error {
  /** The request field at fault, as the admin route spells it (`slots`, `date`). */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field} ${message}.`);
    this.name = 'CreditRequestError';
    this.field = field;
  }
}

export interface PlanRequest {
  /** Epoch ms the run is for (the schedule's time, or now for an operator's run). */
  now: number;
  /** Plan exactly these slots (an operator's run); default: every slot due. */
  slots?: readonly number[];
  /** The period (UTC date `YYYY-MM-DD`, the route's `date`) to plan; default the date of `now`. */
  period?: string;
}

export interface PlanDeps {
  store: Pick<CreditStore, 'usersDue'>;
  queue: RefreshQueue;
  runLog: Pick<CreditRunLog, 'recordPlanned' | 'plannedSlots'>;
  /** Users read per index query. Default 100. */
  pageSize?: number;
  /**
   * Users per `queue.enqueue` call. Default 250: the SQS adapter packs 25 users a
   * message and 10 messages a SendMessageBatch, so one call is one SQS request.
   */
  enqueueBatch?: number;
}

export interface PlannedSlot {
  period: string;
  slot: number;
  /** Users enqueued for the slot by this run. */
  planned: number;
}

export interface PlanResult {
  /** Users enqueued by this run, over every slot. */
  planned: number;
  /** The slots this run planned, in the order it planned them. */
  slots: PlannedSlot[];
}

export const DEFAULT_PAGE_SIZE = 100;
export const DEFAULT_ENQUEUE_BATCH = 250;

const DAY_MS = 86_400_000;

/** How many slots are planned from slot 0 without a gap: how far a day's planning has got. */
export function plannedPrefix(planned: readonly number[]): number {
  const done = new Set(planned);
  let count = 0;
  while (done.has(count)) count++;
  return count;
}

/**
 * The slots of `period` due at `now`: from the first slot after the planned prefix up
 * to the slot of `now` (through slot 287 for a past period; none for a future one).
 */
export function dueSlots(period: string, now: number, planned: readonly number[]): number[] {
  const today = periodAt(now);
  if (period > today) return [];
  const last = period === today ? slotAt(now) : SLOTS_PER_DAY - 1;
  const due: number[] = [];
  for (let slot = plannedPrefix(planned); slot <= last; slot++) due.push(slot);
  return due;
}

/**
 * Minutes from the start of the most overdue slot of `slots` to `now`, the run's
 * planning time: 0 when each slot is planned as it starts (or nothing was planned), 35
 * for a slot planned 35 minutes after its start. The CreditSlotLag metric, whose alarm
 * fires above 30.
 */
export function slotLagMinutes(
  now: number,
  slots: readonly Omit<PlannedSlot, 'planned'>[],
): number {
  let lagMs = 0;
  for (const { period, slot } of slots) lagMs = Math.max(lagMs, now - slotStart(period, slot));
  return Math.round(lagMs / 60_000);
}

/** The UTC date before `period`. */
export function previousPeriod(period: string): string {
  return periodAt(Date.parse(`${period}T00:00:00.000Z`) - DAY_MS);
}

/** A real UTC calendar date `YYYY-MM-DD` (not 2026-02-30). */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const at = Date.parse(`${value}T00:00:00.000Z`);
  return Number.isFinite(at) && periodAt(at) === value;
}

function checkRequest(request: PlanRequest): void {
  if (typeof request.now !== 'number' || !Number.isFinite(request.now)) {
    throw new RangeError(`now must be epoch milliseconds, got ${String(request.now)}`);
  }
  if (request.period !== undefined) {
    if (typeof request.period !== 'string' || !isCalendarDate(request.period)) {
      throw new CreditRequestError('date', 'must be a date YYYY-MM-DD');
    }
    if (request.period > periodAt(request.now)) {
      throw new CreditRequestError('date', 'must not be in the future');
    }
  }
  if (request.slots !== undefined) {
    if (!Array.isArray(request.slots) || request.slots.length === 0) {
      throw new CreditRequestError('slots', 'must list at least one slot');
    }
    for (const slot of request.slots) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS_PER_DAY) {
        throw new CreditRequestError(
          'slots',
          `must be whole numbers from 0 to ${SLOTS_PER_DAY - 1}, got ${JSON.stringify(slot)}`,
        );
      }
    }
  }
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a whole number of at least 1, got ${value}`);
  }
  return value;
}

/**
 * Plans one run. Throws CreditRequestError for a bad request; any store or queue error
 * propagates (the slots recorded before it stay planned, the rest are due next run).
 */
export async function planCreditRefresh(request: PlanRequest, deps: PlanDeps): Promise<PlanResult> {
  checkRequest(request);
  const pageSize = positiveInteger(deps.pageSize, DEFAULT_PAGE_SIZE, 'pageSize');
  const enqueueBatch = positiveInteger(deps.enqueueBatch, DEFAULT_ENQUEUE_BATCH, 'enqueueBatch');
  const { now } = request;
  const period = request.period ?? periodAt(now);

  const targets: { period: string; slot: number }[] = [];
  if (request.slots) {
    const slots = [...new Set(request.slots)].sort((a, b) => a - b);
    for (const slot of slots) targets.push({ period, slot });
  } else {
    if (request.period === undefined) {
      const yesterday = previousPeriod(period);
      const plannedYesterday = await deps.runLog.plannedSlots(yesterday);
      const wasRunning =
        plannedYesterday.length > 0 ||
        (await deps.runLog.plannedSlots(previousPeriod(yesterday))).length > 0;
      if (wasRunning) {
        for (const slot of dueSlots(yesterday, now, plannedYesterday)) {
          targets.push({ period: yesterday, slot });
        }
      }
    }
    for (const slot of dueSlots(period, now, await deps.runLog.plannedSlots(period))) {
      targets.push({ period, slot });
    }
  }

  const result: PlanResult = { planned: 0, slots: [] };
  for (const target of targets) {
    const planned = await planSlot(target.period, target.slot, now, {
      ...deps,
      pageSize,
      enqueueBatch,
    });
    result.planned += planned;
    result.slots.push({ ...target, planned });
  }
  return result;
}

/**
 * Pages through one slot's due users, enqueuing full batches as they fill (at most one
 * page plus one batch in memory), then the rest; records the slot once all are queued.
 */
async function planSlot(
  period: string,
  slot: number,
  now: number,
  deps: PlanDeps & { pageSize: number; enqueueBatch: number },
): Promise<number> {
  let pending: RefreshWork[] = [];
  let planned = 0;
  const send = async (all: boolean) => {
    while (pending.length >= deps.enqueueBatch || (all && pending.length > 0)) {
      const batch = pending.slice(0, deps.enqueueBatch);
      await deps.queue.enqueue(batch);
      pending = pending.slice(batch.length);
      planned += batch.length;
    }
  };
  let cursor: string | undefined;
  do {
    const page = await deps.store.usersDue({
      slot,
      period,
      limit: deps.pageSize,
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const user of page.items) {
      pending.push({ userId: user.userId, tier: user.tier, period, slot, plannedAt: now });
    }
    await send(false);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  await send(true);
  await deps.runLog.recordPlanned(period, slot, planned, now);
  return planned;
}
