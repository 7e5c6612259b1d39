/**
 * The habit use cases: create or update a habit under the tier's free-habit limit, and
 * record a verification (idempotent; refused for a future date or one already assessed).
 */
import type { Clock } from '../shared/clock.ts';
import { PenaltyConflictError, PenaltyNotFoundError, PenaltyRequestError } from './errors.ts';
import { type FreeHabitLimits, MAX_HABITS_PER_USER, withSettings } from './habits.ts';
import type { Habit, HabitKey, HabitSettings, PenaltyStore } from './ports.ts';

export interface HabitDeps {
  store: PenaltyStore;
  clock: Clock;
  freeHabitLimits: FreeHabitLimits;
}

/**
 * A habit's settings as a request gives them: the optional ones left out keep what the
 * habit has (a rename must not switch a paused habit back on or drop its recipient),
 * or on creation take their defaults (active, no recipient). `recipientId: null` clears it.
 */
export type HabitChange = Omit<HabitSettings, 'recipientId' | 'active'> &
  Partial<Pick<HabitSettings, 'recipientId' | 'active'>>;

/** The settings a change leaves a habit with. */
export function settingsAfter(change: HabitChange, previous: Habit | null): HabitSettings {
  return {
    ...change,
    recipientId:
      change.recipientId !== undefined ? change.recipientId : (previous?.recipientId ?? null),
    active: change.active ?? previous?.active ?? true,
  };
}

/** Creates or updates the habit; answers it and whether it was created. Retries a lost race twice. */
export async function saveHabit(
  key: HabitKey,
  change: HabitChange,
  deps: HabitDeps,
): Promise<{ habit: Habit; created: boolean }> {
  const { store, clock } = deps;
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const previous = await store.getHabit(key);
    const settings = settingsAfter(change, previous);
    const habit = withSettings(key, settings, previous, new Date(clock.now()).toISOString());
    const { tier } = await store.getUserBilling(key.userId);
    const freeHabitLimit = deps.freeHabitLimits[tier];
    const result = await store.putHabit({
      habit,
      previous,
      freeHabitLimit,
      maxHabits: MAX_HABITS_PER_USER,
    });
    if (result === 'written') return { habit, created: previous === null };
    if (result === 'free-habit-limit') {
      throw new PenaltyConflictError(
        'free_habit_limit',
        `The ${tier} tier allows ${freeHabitLimit} active free habit${freeHabitLimit === 1 ? '' : 's'}; this one would be over the limit.`,
      );
    }
    if (result === 'habit-limit') {
      throw new PenaltyConflictError(
        'habit_limit',
        `A user may hold at most ${MAX_HABITS_PER_USER} habits.`,
      );
    }
  }
  throw new PenaltyConflictError('habit_conflict', 'The habit changed concurrently; try again.');
}

/** Records that the habit was done on `date` (UTC). Idempotent. */
export async function verifyHabit(
  key: HabitKey,
  date: string,
  deps: Pick<HabitDeps, 'store' | 'clock'>,
): Promise<void> {
  const today = new Date(deps.clock.now()).toISOString().slice(0, 10);
  if (date > today) {
    throw new PenaltyRequestError('invalid_parameter', 'date must not be in the future.');
  }
  // A day before the habit existed is never assessed: refused rather than kept unused.
  const habit = await deps.store.getHabit(key);
  if (habit && date < habit.createdAt.slice(0, 10)) {
    throw new PenaltyRequestError(
      'invalid_parameter',
      `date ${date} is before the habit was created (${habit.createdAt.slice(0, 10)}).`,
    );
  }
  const result = await deps.store.addVerification(key, date);
  if (result === 'no-habit') {
    throw new PenaltyNotFoundError(
      'habit_not_found',
      `User ${key.userId} has no habit ${key.habitId}.`,
    );
  }
  if (result === 'already-assessed') {
    throw new PenaltyRequestError(
      'invalid_parameter',
      `date ${date} is already assessed for this habit.`,
    );
  }
}
