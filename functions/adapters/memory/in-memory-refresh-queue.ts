/** In-memory RefreshQueue: records each enqueued batch, for tests of the planner. */
import type { RefreshQueue, RefreshWork } from '../../core/credits/ports.ts';

export class InMemoryRefreshQueue implements RefreshQueue {
  readonly batches: RefreshWork[][] = [];
  /** Throw to make an enqueue fail (fault injection). */
  fault: ((work: readonly RefreshWork[]) => void) | undefined;

  async enqueue(work: readonly RefreshWork[]): Promise<void> {
    this.fault?.(work);
    this.batches.push([...work]);
  }

  /** Every queued work item, oldest first, removed from the queue. */
  drain(): RefreshWork[] {
    return this.batches.splice(0).flat();
  }
}
