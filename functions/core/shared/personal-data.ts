/**
 * What of a Stripe event may be kept in our queues, DLQs and logs. Events carry
 * personal data (names, e-mails, phones, addresses, card fingerprints) that no consumer
 * reads; a queue or DLQ holds a message for up to 14 days. So the verified event is
 * minimised before it is queued: these keys are dropped wherever they appear in
 * `data.object` and `data.previous_attributes`. The signature was checked over the
 * exact bytes first; what is queued is the minimised JSON, and the ledger never holds
 * bodies. A test runs every family's parsing over every real fixture, raw and
 * minimised, and requires the same facts.
 */

/** Keys whose values are personal data (or lead to it), at any depth. */
export const PERSONAL_DATA_KEYS: ReadonlySet<string> = new Set([
  'address',
  'billing_address',
  'billing_details',
  'card',
  'customer_address',
  'customer_details',
  'customer_email',
  'customer_email_address',
  'customer_name',
  'customer_phone',
  'customer_shipping',
  'customer_tax_ids',
  'email',
  // A dispute's evidence: the customer's name, e-mail, IP, addresses and documents.
  'evidence',
  'fingerprint',
  'invoice_pdf',
  'ip_address',
  'hosted_invoice_url',
  'name',
  'payment_method_details',
  'phone',
  'receipt_email',
  'receipt_url',
  'shipping',
  'shipping_details',
  'source',
  'tax_ids',
]);

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (typeof value !== 'object' || value === null) return value;
  const kept: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    // metadata is ours (user ids, purposes): kept whole, its keys are not Stripe's.
    if (key === 'metadata') kept[key] = inner;
    else if (!PERSONAL_DATA_KEYS.has(key)) kept[key] = strip(inner);
  }
  return kept;
}

/** The event with personal data removed from its object and previous attributes. */
export function minimizeStripeEvent<
  E extends { data: { object: unknown; previous_attributes?: unknown } },
>(event: E): E {
  const data: Record<string, unknown> = { ...event.data, object: strip(event.data.object) };
  if (event.data.previous_attributes !== undefined) {
    data.previous_attributes = strip(event.data.previous_attributes);
  }
  return { ...event, data } as E;
}

/** Sets every personal-data value under `value` to undefined; true when one was not null. */
function blank(value: unknown): boolean {
  if (Array.isArray(value)) {
    let found = false;
    for (const item of value) found = blank(item) || found;
    return found;
  }
  if (typeof value !== 'object' || value === null) return false;
  const object = value as Record<string, unknown>;
  let found = false;
  for (const key in object) {
    if (key === 'metadata') continue;
    const inner = object[key];
    if (PERSONAL_DATA_KEYS.has(key)) {
      if (inner !== null && inner !== undefined) found = true;
      // Undefined, not deleted: JSON.stringify omits it and the object keeps its shape (fast).
      object[key] = undefined;
    } else if (typeof inner === 'object' && inner !== null) {
      found = blank(inner) || found;
    }
  }
  return found;
}

/**
 * What the webhook queues for a verified event, cheaply (it is on the ack path):
 * `parsed` (the body's own parse, changed in place) re-serialised without its personal
 * data, or `rawBody` unchanged when every personal-data key in it is null, since
 * then there is nothing to remove and nothing to re-serialise.
 */
export function queuedEventJson(
  parsed: { data: { object: unknown; previous_attributes?: unknown } },
  rawBody: string,
): string {
  const inObject = blank(parsed.data.object);
  const inPrevious = blank(parsed.data.previous_attributes);
  return inObject || inPrevious ? JSON.stringify(parsed) : rawBody;
}
