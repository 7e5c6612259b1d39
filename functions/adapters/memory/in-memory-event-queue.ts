/**
 * In-memory EventQueue with the SQS adapter's contract (a contract suite runs against
 * both): one list of messages per family, and a switch to make a family's queue
 * refuse sends, for tests of the intake's all-or-retry rule.
 */
import {
  EnqueueFailedError,
  type EventQueue,
  type VerifiedStripeEvent,
} from '../../core/intake/ports.ts';
import type { EventFamilyName } from '../../core/shared/event-families.ts';

export class InMemoryEventQueue implements EventQueue {
  readonly #messages = new Map<EventFamilyName, VerifiedStripeEvent[]>();
  /** Families whose queue refuses every send (as an unreachable SQS would). */
  readonly unavailable = new Set<EventFamilyName>();

  async enqueue(event: VerifiedStripeEvent, family: EventFamilyName): Promise<void> {
    if (this.unavailable.has(family)) {
      throw new EnqueueFailedError(
        `SendMessage to the ${family} event queue failed (unavailable).`,
      );
    }
    const list = this.#messages.get(family) ?? [];
    list.push({ ...event });
    this.#messages.set(family, list);
  }

  /** The messages of a family's queue, oldest first, removed from it. */
  drain(family: EventFamilyName): VerifiedStripeEvent[] {
    const list = this.#messages.get(family) ?? [];
    this.#messages.delete(family);
    return list;
  }

  /** Every message of every family, in send order per family. */
  peek(family: EventFamilyName): readonly VerifiedStripeEvent[] {
    return this.#messages.get(family) ?? [];
  }
}
