/**
 * Operators' replay (DESIGN §8.4): pages Stripe's events list over a time range and
 * hands each event to the queues of the families that consume it, exactly as the
 * webhook does after verification. Safe to repeat: the consumers' order guard and
 * ledger make an event already applied a no-op. Resumable: after each page the
 * cursor is saved, and a run given that cursor continues after the last page it
 * finished (a page cut short is sent again, which is a duplicate, never a loss).
 */
import * as z from 'zod/mini';
import type { Clock } from '../shared/clock.ts';
import { type EventFamilyName, familiesFor } from '../shared/event-families.ts';
import { minimizeStripeEvent } from '../shared/personal-data.ts';
import { stripeEnvelopeSchema } from '../shared/stripe-envelope.ts';
import type { EventQueue } from './ports.ts';

/** One page of Stripe's events list, newest first, as the API answers it. */
export interface StripeEventPage {
  events: readonly unknown[];
  hasMore: boolean;
}

export interface StripeEventSource {
  /** Events created in [fromSeconds, toSeconds], newest first, after `startingAfter`. */
  listEvents(query: {
    fromSeconds: number;
    toSeconds: number;
    types: readonly string[];
    startingAfter: string | undefined;
  }): Promise<StripeEventPage>;
}

export interface ReplayProgress {
  /** The id of the last event of the last page finished: where a resumed run continues. */
  cursor: string | undefined;
  pages: number;
  listed: number;
  /** Events handed to at least one family queue (one per event, whatever the number of queues). */
  enqueued: number;
  byFamily: Partial<Record<EventFamilyName, number>>;
  /** Events no family consumes (acknowledged by the webhook too): not sent. */
  unrouted: number;
  /** Events that are not valid Stripe events: not sent, counted with their ids. */
  malformed: string[];
  done: boolean;
}

export interface ReplayRequest {
  fromSeconds: number;
  toSeconds: number;
  /** Event types to replay (Stripe allows up to 20, `*` wildcards); empty for all. */
  types: readonly string[];
  /** Count what would be sent, send nothing. */
  dryRun: boolean;
  /** Continue a run that stopped: its saved progress. */
  resumeFrom?: ReplayProgress;
  /**
   * The Stripe mode of the target (true: live): a page holding an event of the other
   * mode stops the replay before any of its events is sent. Undefined: not checked.
   */
  livemode?: boolean;
}

/** Stripe listed an event of the other mode than the target's: nothing of its page was sent. */
export class ReplayModeMismatchError extends Error {
  constructor(eventId: string, livemode: boolean) {
    super(
      `Stripe listed ${eventId}, a ${livemode ? 'live' : 'test'}-mode event, for a ${livemode ? 'test' : 'live'}-mode target: the key is of the wrong mode; nothing of that page was sent.`,
    );
    this.name = 'ReplayModeMismatchError';
  }
}

export interface ReplayDeps {
  source: StripeEventSource;
  queue: EventQueue;
  clock: Clock;
  /** Called after every finished page with the progress to save. */
  onPage?: (progress: ReplayProgress) => void | Promise<void>;
}

export const MAX_REPLAY_TYPES = 20;

export function freshProgress(): ReplayProgress {
  return {
    cursor: undefined,
    pages: 0,
    listed: 0,
    enqueued: 0,
    byFamily: {},
    unrouted: 0,
    malformed: [],
    done: false,
  };
}

export async function replayStripeEvents(
  request: ReplayRequest,
  deps: ReplayDeps,
): Promise<ReplayProgress> {
  if (request.fromSeconds > request.toSeconds) {
    throw new RangeError('--from must not be after --to');
  }
  if (request.types.length > MAX_REPLAY_TYPES) {
    throw new RangeError(`at most ${MAX_REPLAY_TYPES} event types per replay (Stripe's limit)`);
  }
  const progress = structuredClone(request.resumeFrom ?? freshProgress());
  if (progress.done) return progress;
  for (;;) {
    const page = await deps.source.listEvents({
      fromSeconds: request.fromSeconds,
      toSeconds: request.toSeconds,
      types: request.types,
      startingAfter: progress.cursor,
    });
    const stray = page.events.find((event) => {
      const livemode = (event as { livemode?: unknown } | null)?.livemode;
      return (
        request.livemode !== undefined &&
        typeof livemode === 'boolean' &&
        livemode !== request.livemode
      );
    });
    if (stray !== undefined) throw new ReplayModeMismatchError(idOf(stray), !request.livemode);
    // The queue stamps the time the event was handed over, as the webhook does.
    const receivedAt = deps.clock.now();
    for (const event of page.events) {
      const envelope = z.safeParse(stripeEnvelopeSchema, event);
      progress.listed += 1;
      if (!envelope.success) {
        progress.malformed.push(idOf(event));
        continue;
      }
      const families = familiesFor(envelope.data.type);
      if (families.length === 0) {
        progress.unrouted += 1;
        continue;
      }
      if (!request.dryRun) {
        const queued = {
          // As the webhook queues it: without personal data.
          body: sqsSafeJson(
            JSON.stringify(minimizeStripeEvent(event as { data: { object: unknown } })),
          ),
          eventId: envelope.data.id,
          eventType: envelope.data.type,
          receivedAt,
        };
        await Promise.all(families.map((family) => deps.queue.enqueue(queued, family)));
      }
      progress.enqueued += 1;
      for (const family of families) {
        progress.byFamily[family] = (progress.byFamily[family] ?? 0) + 1;
      }
    }
    progress.pages += 1;
    const last = page.events.at(-1);
    if (last !== undefined) progress.cursor = idOf(last);
    progress.done = !page.hasMore || page.events.length === 0;
    await deps.onPage?.(structuredClone(progress));
    if (progress.done) return progress;
  }
}

/**
 * SQS refuses characters outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
 * JSON.stringify escapes control characters and lone surrogates, so only U+FFFE and
 * U+FFFF can remain, inside strings: escaped there, the JSON means the same and one
 * such event does not stop the replay half-way.
 */
function sqsSafeJson(json: string): string {
  return json.replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function idOf(event: unknown): string {
  const id = (event as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : '(no id)';
}
