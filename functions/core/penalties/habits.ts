/**
 * Habit rules (DESIGN §8.3): how many free habits each tier may hold (config shared by
 * synth and the handlers), and what a `PUT` of a habit's settings makes of the stored
 * habit. Streaks and the assessed date belong to the assessment; a settings change
 * never touches them.
 */
import { parseTierNumbers } from '../shared/config-values.ts';
import { minimumChargeOf } from '../shared/stripe-amounts.ts';
import type { Tier } from '../shared/tiers.ts';
import type { AssessableHabit, EarlierSettings, Habit, HabitSettings } from './ports.ts';

export type FreeHabitLimits = Readonly<Record<Tier, number>>;

export const DEFAULT_FREE_HABIT_LIMITS: FreeHabitLimits = {
  free: 1,
  bronze: 3,
  silver: 10,
  gold: 50,
};

/**
 * Most habits (free or not) one user may hold. A user's habits live on one item and are
 * assessed in one transaction (the account, a penalty per habit, the shard's progress
 * and start marker: at most 100 items), and the item stays far below DynamoDB's 400 KB.
 */
export const MAX_HABITS_PER_USER = 90;

/** Parses the free-habit limits from JSON or an object (tiers left out keep their default). */
export function parseFreeHabitLimits(value: unknown): FreeHabitLimits {
  return parseTierNumbers(value, {
    defaults: DEFAULT_FREE_HABIT_LIMITS,
    max: MAX_HABITS_PER_USER,
    noun: 'free habits',
  });
}

/**
 * Why a habit's penalty amount cannot be charged, or null. A habit that is not free
 * costs at least Stripe's smallest charge in its currency: settling pays the rest of the
 * unpaid penalties with one PaymentIntent, which Stripe refuses below that amount, and a
 * user left with only smaller penalties could never settle them.
 */
export function penaltyAmountProblem(
  settings: Pick<HabitSettings, 'penaltyAmount' | 'currency' | 'free'>,
): string | null {
  if (settings.free) return null;
  const minimum = minimumChargeOf(settings.currency);
  if (settings.penaltyAmount >= minimum) return null;
  return minimum === 1
    ? 'must be above 0 for a habit that is not free'
    : `must be at least ${minimum} (Stripe's smallest charge in ${settings.currency}, in minor units) for a habit that is not free`;
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
    earlierSettings: previous ? earlierSettingsAfter(previous, settings, nowIso) : [],
    createdAt,
    updatedAt: nowIso,
  };
}

/** Days with a settings change kept at most (the assessment looks back a week). */
export const MAX_EARLIER_SETTINGS = 8;

/** The fields of a habit's settings the assessment reads. */
function assessedSettingsOf(
  settings: Pick<HabitSettings, 'penaltyAmount' | 'currency' | 'free' | 'recipientId' | 'active'>,
) {
  const { penaltyAmount, currency, free, recipientId, active } = settings;
  return { penaltyAmount, currency, free, recipientId, active };
}

/**
 * The settings still owed after a change: a day is assessed with the settings it began
 * with, so the ones before today's first change keep applying through today (otherwise
 * a user who missed yesterday could switch the habit off, or make it free, at 00:05,
 * before yesterday's assessment; or every evening and back every morning). Entries of
 * days assessed already are dropped. A habit changed on the day it was created keeps
 * no entry: that day is assessed with its latest settings.
 */
function earlierSettingsAfter(
  previous: Habit,
  settings: HabitSettings,
  nowIso: string,
): EarlierSettings[] {
  const today = nowIso.slice(0, 10);
  const owed = previous.earlierSettings.filter(
    (entry) => previous.lastAssessedDate === null || entry.through > previous.lastAssessedDate,
  );
  const before = assessedSettingsOf(previous);
  const unchanged = JSON.stringify(before) === JSON.stringify(assessedSettingsOf(settings));
  if (unchanged || previous.createdAt.slice(0, 10) === today || owed.at(-1)?.through === today) {
    return owed;
  }
  return [...owed, { through: today, ...before }].slice(-MAX_EARLIER_SETTINGS);
}

/** The settings the assessment of `date` uses: the first entry still covering it, else the current ones. */
export function settingsOn(
  habit: Pick<
    Habit,
    'penaltyAmount' | 'currency' | 'free' | 'recipientId' | 'active' | 'earlierSettings'
  >,
  date: string,
): Omit<EarlierSettings, 'through'> {
  const entry = habit.earlierSettings.find((earlier) => earlier.through >= date);
  return assessedSettingsOf(entry ?? habit);
}

/**
 * Whether the assessment still visits the habit: active, or with a day not yet assessed
 * that it was active on.
 */
export function isAssessed(
  habit: Pick<Habit, 'active' | 'earlierSettings' | 'lastAssessedDate'>,
): boolean {
  if (habit.active) return true;
  return habit.earlierSettings.some(
    (entry) =>
      entry.active && (habit.lastAssessedDate === null || entry.through > habit.lastAssessedDate),
  );
}

/** A habit as the assessment reads it: what decides its day, and its verified dates not yet assessed. */
export function assessableHabit(habit: Habit, verifiedDates: readonly string[]): AssessableHabit {
  return {
    userId: habit.userId,
    habitId: habit.habitId,
    penaltyAmount: habit.penaltyAmount,
    currency: habit.currency,
    free: habit.free,
    recipientId: habit.recipientId,
    currentStreak: habit.currentStreak,
    longestStreak: habit.longestStreak,
    lastAssessedDate: habit.lastAssessedDate,
    active: habit.active,
    earlierSettings: structuredClone(habit.earlierSettings),
    createdAt: habit.createdAt,
    verifiedDates: [...verifiedDates].sort(),
  };
}
