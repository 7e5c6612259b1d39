/**
 * Habit rules (DESIGN §8.3): how many free habits each tier may hold (config shared by
 * synth and the handlers), and what a `PUT` of a habit's settings makes of the stored
 * habit. Streaks and the assessed date belong to the assessment; a settings change
 * never touches them.
 */
import { parseTierNumbers } from '../shared/config-values.ts';
import type { Tier } from '../shared/tiers.ts';
import type { Habit, HabitSettings } from './ports.ts';

export type FreeHabitLimits = Readonly<Record<Tier, number>>;

export const DEFAULT_FREE_HABIT_LIMITS: FreeHabitLimits = {
  free: 1,
  bronze: 3,
  silver: 10,
  gold: 50,
};

/** Most habits (free or not) one user may hold: bounds the habits list and the assessment's work per user. */
export const MAX_HABITS_PER_USER = 100;

/** Parses the free-habit limits from JSON or an object (tiers left out keep their default). */
export function parseFreeHabitLimits(value: unknown): FreeHabitLimits {
  return parseTierNumbers(value, {
    defaults: DEFAULT_FREE_HABIT_LIMITS,
    max: MAX_HABITS_PER_USER,
    noun: 'free habits',
  });
}

/** Whether a habit counts against the tier's free-habit limit: active and free. */
export function countsAsFree(habit: Pick<HabitSettings, 'free' | 'active'> | null): boolean {
  return habit?.free === true && habit.active;
}

/** The habit after a settings `PUT`: a new habit starts with no streak; an existing one keeps its own. */
export function withSettings(
  key: { userId: string; habitId: string },
  settings: HabitSettings,
  previous: Habit | null,
  nowIso: string,
): Habit {
  const createdAt = previous?.createdAt ?? nowIso;
  return {
    userId: key.userId,
    habitId: key.habitId,
    ...settings,
    currentStreak: previous?.currentStreak ?? 0,
    longestStreak: previous?.longestStreak ?? 0,
    lastAssessedDate: previous?.lastAssessedDate ?? null,
    activeThrough: activeThroughAfter(settings.active, previous, createdAt, nowIso),
    createdAt,
    updatedAt: nowIso,
  };
}

/**
 * The last day an inactive habit is still assessed for. Deactivating keeps today (and any
 * earlier day not yet assessed): otherwise a user could miss a day and switch the habit
 * off before that day's assessment, or every evening and back on every morning. A habit
 * switched off on the day it was created was never active a whole day: nothing owed.
 */
function activeThroughAfter(
  active: boolean,
  previous: Habit | null,
  createdAt: string,
  nowIso: string,
): string | null {
  if (active || previous === null) return null;
  if (!previous.active) return previous.activeThrough;
  const today = nowIso.slice(0, 10);
  return createdAt.slice(0, 10) === today ? null : today;
}

/**
 * Whether the assessment still visits the habit: active, or inactive with a day up to
 * its deactivation not yet assessed.
 */
export function isAssessed(
  habit: Pick<Habit, 'active' | 'activeThrough' | 'lastAssessedDate'>,
): boolean {
  if (habit.active) return true;
  if (habit.activeThrough === null) return false;
  return habit.lastAssessedDate === null || habit.lastAssessedDate < habit.activeThrough;
}
