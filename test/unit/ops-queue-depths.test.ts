/**
 * The queue depth sampler of the operations page: one round reads every queue and
 * records the depths under one timestamp; a queue that cannot be read is skipped,
 * not recorded as 0; stop ends the sampling.
 */
import { describe, expect, it } from 'vitest';
import { OpsCollector } from '../../local/ops/collector.ts';
import { startQueueDepthSampler } from '../../local/ops/queue-depths.ts';

const T0 = Date.parse('2026-05-01T10:00:00.000Z');

describe('queue depth sampler', () => {
  it('records each queue in the same second, skips a failed read, stops', async () => {
    let now = T0;
    const collector = new OpsCollector({ now: () => now });
    const depths: Record<string, number | Error> = { a: 3, b: new Error('emulator stopping') };
    const reads: string[] = [];
    const sampler = startQueueDepthSampler({
      queues: [
        { key: 'qa', url: 'a' },
        { key: 'qb', url: 'b' },
      ],
      read: async (url) => {
        reads.push(url);
        const depth = depths[url]!;
        if (depth instanceof Error) throw depth;
        return depth;
      },
      collector,
      intervalMs: 60_000,
    });
    await sampler.sample(); // joins the round the start began
    expect(collector.gaugeAt('qa', T0 / 1000)).toBe(3);
    expect(collector.gaugeAt('qb', T0 / 1000)).toBeUndefined();

    now += 5_000;
    depths.b = 7;
    await sampler.sample();
    expect(collector.gaugeAt('qa', T0 / 1000 + 5)).toBe(3);
    expect(collector.gaugeAt('qb', T0 / 1000 + 5)).toBe(7);

    await sampler.stop();
    const count = reads.length;
    now += 5_000;
    await sampler.sample();
    expect(reads).toHaveLength(count);
    expect(collector.gaugeAt('qa', T0 / 1000 + 10)).toBeUndefined();
  });
});
