/**
 * The local EventBridge Scheduler: fires each schedule of the stack model at its cron
 * times on a clock that may run faster than the wall clock (LOCAL_CLOCK_SPEED), so a
 * whole day of five-minute slots passes in minutes. The target gets the schedule's
 * input with `<aws.scheduler.scheduled-time>` set to the simulated fire time, as
 * Scheduler does, so handlers plan by the time they were scheduled for, not by now.
 */

/** The cron subset the suite's schedules use: `cron(minutes hours day-of-month month day-of-week year)`. */
export interface CronFields {
  minutes: (value: number) => boolean;
  hours: (value: number) => boolean;
}

/** A schedule expression this runtime cannot fire; the message names it. */
export class UnsupportedScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedScheduleError';
  }
}

/**
 * Parses `cron(...)` with minutes and hours as `*`, a number, a list `a,b`, or a step
 * `a/n` / `*\/n`; day, month, weekday and year must be `*` or `?` (daily schedules).
 */
export function parseCron(expression: string): CronFields {
  const match = /^cron\((.+)\)$/.exec(expression.trim());
  const fields = match?.[1]?.trim().split(/\s+/) ?? [];
  if (fields.length !== 6) {
    throw new UnsupportedScheduleError(`${expression}: expected cron(min hour dom month dow year)`);
  }
  const [minutes, hours, ...rest] = fields as [string, string, ...string[]];
  if (rest.some((field) => field !== '*' && field !== '?')) {
    throw new UnsupportedScheduleError(
      `${expression}: locally only daily schedules are fired (day, month, weekday, year * or ?)`,
    );
  }
  return { minutes: field(minutes, 60, expression), hours: field(hours, 24, expression) };
}

function field(text: string, size: number, expression: string): (value: number) => boolean {
  const parts = text.split(',').map((part) => {
    const step = /^(\*|\d+)\/(\d+)$/.exec(part);
    if (step) {
      const start = step[1] === '*' ? 0 : Number(step[1]);
      const every = Number(step[2]);
      return (value: number) => value >= start && (value - start) % every === 0;
    }
    if (part === '*') return () => true;
    if (/^\d+$/.test(part) && Number(part) < size) return (value: number) => value === Number(part);
    throw new UnsupportedScheduleError(`${expression}: field "${text}" is not supported locally`);
  });
  return (value) => parts.some((matches) => matches(value));
}

/** The first minute strictly after `afterMs` (epoch ms, UTC) that the cron matches. */
export function nextFire(cron: CronFields, afterMs: number): number {
  let minute = Math.floor(afterMs / 60_000) + 1;
  // At most two days of minutes: every supported expression fires at least daily.
  for (let i = 0; i < 2 * 24 * 60; i++, minute++) {
    const date = new Date(minute * 60_000);
    if (cron.hours(date.getUTCHours()) && cron.minutes(date.getUTCMinutes()))
      return minute * 60_000;
  }
  throw new UnsupportedScheduleError('the schedule never fires within two days');
}

/** The schedule's input with Scheduler's context attributes filled in. */
export function scheduleInput(input: string | undefined, scheduledAt: number, scheduleArn: string) {
  const text = (input ?? '{}')
    .replaceAll('<aws.scheduler.scheduled-time>', new Date(scheduledAt).toISOString())
    .replaceAll('<aws.scheduler.schedule-arn>', scheduleArn)
    .replaceAll('<aws.scheduler.execution-id>', `local-${scheduledAt}`)
    .replaceAll('<aws.scheduler.attempt-number>', '1');
  return JSON.parse(text) as unknown;
}

export interface SimulatedClock {
  /** Simulated epoch ms. */
  now(): number;
  /** Real ms until simulated time `at`. */
  delayUntil(at: number): number;
  readonly speed: number;
}

/** A clock that starts at the real time and runs `speed` times faster. */
export function simulatedClock(speed: number, realNow: () => number = Date.now): SimulatedClock {
  const realStart = realNow();
  return {
    speed,
    now: () => realStart + (realNow() - realStart) * speed,
    delayUntil(at) {
      const simulatedNow = realStart + (realNow() - realStart) * speed;
      return Math.max(0, (at - simulatedNow) / speed);
    },
  };
}

export interface LocalSchedule {
  name: string;
  expression: string;
  input: string | undefined;
  fire: (event: unknown) => Promise<void>;
}

export interface RunningScheduler {
  /** Fires seen so far, per schedule name. */
  fired(): Record<string, number>;
  stop(): Promise<void>;
}

/**
 * Fires every schedule at its cron times on `clock`. A fire that is still running
 * when the next one is due makes the next one wait (Scheduler would invoke again;
 * locally, overlapping runs would only confuse the log). Errors are logged, not thrown.
 */
export function startScheduler(
  schedules: readonly LocalSchedule[],
  clock: SimulatedClock,
  log: { error(message: string, error?: unknown): void },
): RunningScheduler {
  const counts: Record<string, number> = {};
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let stopped = false;
  for (const schedule of schedules) {
    const cron = parseCron(schedule.expression);
    counts[schedule.name] = 0;
    const arm = (after: number) => {
      if (stopped) return;
      const at = nextFire(cron, after);
      const timer = setTimeout(() => {
        timers.delete(timer);
        const run = schedule
          .fire(scheduleInput(schedule.input, at, `arn:local:scheduler:${schedule.name}`))
          .catch((error: unknown) => log.error(`Schedule ${schedule.name} failed`, error))
          .finally(() => {
            counts[schedule.name] = (counts[schedule.name] ?? 0) + 1;
            running.delete(run);
            arm(Math.max(at, clock.now()));
          });
        running.add(run);
      }, clock.delayUntil(at));
      timer.unref();
      timers.add(timer);
    };
    arm(clock.now());
  }
  return {
    fired: () => ({ ...counts }),
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...running]);
    },
  };
}
