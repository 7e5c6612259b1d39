/**
 * In-memory RefreshQueue: records each enqueued batch as it was sent, for tests of the
 * planner and of the worker over the queued work (`drain`).
 */
import type { RefreshQueue, RefreshWork } from '../../core/credits/ports.ts';

export interface InMemoryRefreshQueueOptions {
  /** Throw to make an enqueue fail, queuing nothing of that batch (fault injection). */
  fault?: (work: readonly RefreshWork[]) => void;
}

export class InMemoryRefreshQueue implements RefreshQueue {
  /** The batches queued and not drained yet, oldest first, each as it was sent. */
  readonly batches: RefreshWork[][] = [];
  /** Users queued since the queue was made (drained ones included). */
  enqueued = 0;
  /** Replaceable at any time, to start or stop injecting faults. */
  fault: ((work: readonly RefreshWork[]) => void) | undefined;

  constructor(options: InMemoryRefreshQueueOptions = {}) {
    this.fault = options.fault;
  }

  async enqueue(work: readonly RefreshWork[]): Promise<void> {
    this.fault?.(work);
    this.batches.push(work.map((item) => ({ ...item })));
    this.enqueued += work.length;
  }

  /** Every queued work item, oldest first, removed from the queue. */
  drain(): RefreshWork[] {
    return this.batches.splice(0).flat();
  }
}
