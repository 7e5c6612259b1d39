/**
 * The Stripe event envelope and the parsing helpers every event family shares. The
 * envelope is validated once, at intake (webhook-intake.ts); consumers read the
 * same schema back from the queued body, so what ingress accepted a consumer can read.
 */
// zod/mini: the consumers' cold start pays ~15 KB instead of ~450 KB for classic zod.
import * as z from 'zod/mini';

/** A payload of a handled event type that lacks what we need: retrying will not help. */
export class MalformedEventError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MalformedEventError';
  }
}

/** Any JSON object, checked in place: `z.looseObject` would copy every field of a large object. */
function jsonObject() {
  return z.custom<Record<string, unknown>>(
    (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
  );
}

/** What every Stripe event must carry, whatever its type. Anything else is the families' business. */
export const stripeEnvelopeSchema = z.object({
  id: z.string().check(z.startsWith('evt_'), z.maxLength(255)),
  object: z.literal('event'),
  type: z.string().check(z.minLength(1), z.maxLength(255)),
  created: z.int().check(z.nonnegative()),
  /** Whether the event is from live or test mode (absent in some old fixtures). */
  livemode: z.optional(z.boolean()),
  // previous_attributes: an update's old values, which order same-second updates.
  // Not checked here: the families that read it parse it (a bad one is just unusable).
  data: z.object({ object: jsonObject(), previous_attributes: z.optional(z.unknown()) }),
});

export type StripeEventEnvelope = z.infer<typeof stripeEnvelopeSchema>;

// Loose objects below: Stripe adds fields in every API version; we read only what we need.
/** A reference Stripe may send as an id or as the expanded object. */
export const idOrObject = z.union([z.string(), z.looseObject({ id: z.string() })]);
export const metadataSchema = z.nullish(z.record(z.string(), z.nullable(z.string())));
export type StripeMetadata = z.infer<typeof metadataSchema>;

/** The id of a reference given as an id or an expanded object. */
export function idOf(value: z.infer<typeof idOrObject> | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : value.id;
}

/** The app's user id, as our checkout, customer and payment code stamps it in metadata. */
export function userIdFrom(
  metadata: StripeMetadata,
  ...fallbacks: Array<string | null | undefined>
) {
  const fromMetadata = metadata?.userId ?? metadata?.user_id;
  const candidate = fromMetadata ?? fallbacks.find((value) => typeof value === 'string' && value);
  return candidate ? candidate.trim() || null : null;
}

/** Parses `value` or throws MalformedEventError naming the first bad field. */
export function parseOrThrow<T>(schema: z.ZodMiniType<T>, value: unknown, what: string): T {
  const result = z.safeParse(schema, value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join('.') || '(root)';
    // zod/mini ships no locale: name the issue code and what was expected.
    const expected =
      issue && 'expected' in issue
        ? ` (expected ${String(issue.expected)})`
        : issue && 'values' in issue
          ? ` (expected one of ${issue.values.join(', ')})`
          : '';
    throw new MalformedEventError(`${what}: ${where}: ${issue?.code ?? 'invalid'}${expected}`);
  }
  return result.data;
}

/** Validates the envelope every Stripe event has. */
export function parseEnvelope(value: unknown): StripeEventEnvelope {
  return parseOrThrow(stripeEnvelopeSchema, value, 'event envelope');
}

/** Parses a queued body (JSON text of an event) into its envelope. */
export function parseQueuedEvent(body: string): StripeEventEnvelope {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (error) {
    throw new MalformedEventError('body is not JSON', { cause: error });
  }
  return parseEnvelope(raw);
}
