/** The local EventBridge Scheduler: which cron expressions fire when, on a fast clock. */
import { describe, expect, it } from 'vitest';
import {
  nextFire,
  parseCron,
  scheduleInput,
  simulatedClock,
  startScheduler,
  UnsupportedScheduleError,
} from '../../local/scheduler.ts';

const at = (iso: string) => Date.parse(iso);

describe('cron subset', () => {
  it('fires every five minutes, aligned to the clock', () => {
    const cron = parseCron('cron(0/5 * * * ? *)');
    expect(new Date(nextFire(cron, at('2026-12-03T08:02:10Z'))).toISOString()).toBe(
      '2026-12-03T08:05:00.000Z',
    );
    expect(new Date(nextFire(cron, at('2026-12-03T08:05:00Z'))).toISOString()).toBe(
      '2026-12-03T08:10:00.000Z',
    );
    expect(new Date(nextFire(cron, at('2026-12-03T23:57:00Z'))).toISOString()).toBe(
      '2026-12-04T00:00:00.000Z',
    );
  });

  it('fires daily at a set hour and minute', () => {
    const cron = parseCron('cron(15 1 * * ? *)');
    expect(new Date(nextFire(cron, at('2026-12-03T08:00:00Z'))).toISOString()).toBe(
      '2026-12-04T01:15:00.000Z',
    );
  });

  it.each([
    'rate(5 minutes)',
    'cron(0 12 1 * ? *)',
    'cron(0 12 * * MON *)',
    'cron(61 * * * ? *)',
    'cron(0 * * *)',
  ])('refuses %s clearly', (expression) => {
    expect(() => parseCron(expression)).toThrow(UnsupportedScheduleError);
  });
});

describe('schedule input', () => {
  it("fills Scheduler's context attributes", () => {
    const input = '{"scheduledTime":"<aws.scheduler.scheduled-time>","n":1}';
    expect(scheduleInput(input, at('2026-12-03T08:05:00Z'), 'arn:x')).toEqual({
      scheduledTime: '2026-12-03T08:05:00.000Z',
      n: 1,
    });
    expect(scheduleInput(undefined, 0, 'arn:x')).toEqual({});
  });
});

describe('simulated clock and scheduler', () => {
  it('runs the clock faster than the wall clock', () => {
    let real = 1_000_000;
    const clock = simulatedClock(60, () => real);
    real += 1_000;
    expect(clock.now()).toBe(1_000_000 + 60_000);
    expect(clock.delayUntil(clock.now() + 60_000)).toBe(1_000);
  });

  it('fires a five-minute schedule with the simulated times, in order', async () => {
    // 1 simulated minute per 2 real ms: each 5-minute slot comes every 10 ms.
    const clock = simulatedClock(30_000);
    const seen: string[] = [];
    const scheduler = startScheduler(
      [
        {
          name: 'planner',
          expression: 'cron(0/5 * * * ? *)',
          input: '{"scheduledTime":"<aws.scheduler.scheduled-time>"}',
          fire: async (event) => {
            seen.push((event as { scheduledTime: string }).scheduledTime);
          },
        },
      ],
      clock,
      { error: () => undefined },
    );
    await new Promise((resolve) => setTimeout(resolve, 120));
    await scheduler.stop();
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(scheduler.fired().planner).toBe(seen.length);
    const minutes = seen.map((iso) => Date.parse(iso) / 60_000);
    for (const minute of minutes) expect(minute % 5).toBe(0);
    for (let i = 1; i < minutes.length; i++) expect(minutes[i]).toBeGreaterThan(minutes[i - 1]!);
  });
});
