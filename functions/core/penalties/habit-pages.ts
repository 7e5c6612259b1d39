/**
 * A page of a user's habits for `GET /users/{userId}/habits` (DESIGN §8: lists are
 * newest first, `limit` 1–100, an opaque cursor). A user holds at most
 * MAX_HABITS_PER_USER habits, read in one query; the page is cut from them here.
 */
import type { Habit } from './ports.ts';

/** Where a page ends: the last habit's creation time and id (ids break equal times). */
export interface HabitPosition {
  createdAt: string;
  habitId: string;
}

/** Newest `createdAt` first, then by id, so every habit has one place. */
function newerFirst(a: HabitPosition, b: HabitPosition): number {
  return b.createdAt.localeCompare(a.createdAt) || a.habitId.localeCompare(b.habitId);
}

/** The `limit` habits after `after` (from the newest when absent), and where the next page starts. */
export function pageOfHabits(
  habits: readonly Habit[],
  limit: number,
  after?: HabitPosition,
): { items: Habit[]; next: HabitPosition | null } {
  const sorted = [...habits].sort(newerFirst);
  const start = after ? sorted.findIndex((habit) => newerFirst(habit, after) > 0) : 0;
  const rest = start < 0 ? [] : sorted.slice(start);
  const items = rest.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    next: rest.length > limit && last ? { createdAt: last.createdAt, habitId: last.habitId } : null,
  };
}
