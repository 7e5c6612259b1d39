import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  StaticWebhookSecretProvider,
  type WebhookSecretProvider,
  WebhookSecretUnavailableError,
} from '../../functions/adapters/secrets/webhook-secret-provider.ts';
import { StripeSignatureVerifier } from '../../functions/adapters/stripe/stripe-signature-verifier.ts';
import {
  acceptStripeWebhook,
  EnqueueFailedError,
  type EventQueue,
  MAX_WEBHOOK_BODY_BYTES,
  type SignatureVerifier,
  type VerifiedStripeEvent,
} from '../../functions/core/intake/webhook-intake.ts';
import { type EventFamilyName, familiesFor } from '../../functions/core/shared/event-families.ts';
import { queuedEventJson } from '../../functions/core/shared/personal-data.ts';
import { readStripeEventRaw, STRIPE_EVENT_FIXTURES, stripeEventWith } from '../helpers/fixtures.ts';
import { signPayload, TEST_WEBHOOK_SECRET } from '../helpers/stripe-signing.ts';

/** What the intake queues for a verified event: its JSON without personal data. */
const minimized = (raw: string) => queuedEventJson(JSON.parse(raw), raw);

const NOW_MS = 1_750_000_000_123;
const NOW_S = Math.floor(NOW_MS / 1000);
const clock = { now: () => NOW_MS };

class RecordingQueue implements EventQueue {
  readonly sent: VerifiedStripeEvent[] = [];
  readonly families: EventFamilyName[] = [];
  /** Families whose queue refuses the event. */
  readonly failing = new Set<EventFamilyName>();
  async enqueue(event: VerifiedStripeEvent, family: EventFamilyName): Promise<void> {
    if (this.failing.has(family)) throw new Error(`${family} queue unavailable`);
    this.sent.push(event);
    this.families.push(family);
  }
}

function setup(
  secrets: WebhookSecretProvider = new StaticWebhookSecretProvider(TEST_WEBHOOK_SECRET),
) {
  const queue = new RecordingQueue();
  const verifier = new StripeSignatureVerifier(secrets);
  return { queue, verifier, deps: { queue, verifier, clock } };
}

const bytes = (text: string) => new TextEncoder().encode(text);
const signed = (text: string, timestamp = NOW_S, secret = TEST_WEBHOOK_SECRET) => ({
  rawBody: bytes(text),
  signatureHeader: signPayload(text, secret, { timestamp }),
});

/** A valid event whose JSON text is exactly `size` bytes (padding in metadata). */
function eventOfSize(size: number): string {
  const base = stripeEventWith('customer.created.WRAPPED.openapi-fixtures3', { id: 'evt_size' });
  const withPad = (pad: string) => JSON.stringify({ ...base, padding: pad });
  const text = withPad('x'.repeat(size - withPad('').length));
  expect(Buffer.byteLength(text)).toBe(size);
  return text;
}

describe('acceptStripeWebhook', () => {
  it('enqueues a correctly signed event, minimised, with its id, type and receive time', async () => {
    const { queue, deps } = setup();
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');

    const result = await acceptStripeWebhook(signed(raw), deps);

    expect(result).toEqual({
      outcome: 'enqueued',
      eventId: 'evt_1KJrGtJDPojXS6LN15fcthM3',
      eventType: 'invoice.paid',
      receivedAt: NOW_MS,
      families: ['subscriptions'],
    });
    expect(queue.families).toEqual(['subscriptions']);
    expect(queue.sent).toEqual([
      {
        body: minimized(raw),
        eventId: 'evt_1KJrGtJDPojXS6LN15fcthM3',
        eventType: 'invoice.paid',
        receivedAt: NOW_MS,
      },
    ]);
  });

  it.each(STRIPE_EVENT_FIXTURES)('accepts the captured event %s', async (name) => {
    const { queue, deps } = setup();
    const raw = readStripeEventRaw(name);
    const result = await acceptStripeWebhook(signed(raw), deps);
    expect(result.outcome).toBe('enqueued');
    // Once per family that consumes the type: checkout reaches both families.
    const families = familiesFor(JSON.parse(raw).type);
    expect(families.length).toBeGreaterThan(0);
    expect(queue.families).toEqual(families);
    expect(queue.sent.map((m) => m.body)).toEqual(families.map(() => minimized(raw)));
    // No personal data reaches the queue: no e-mail address, no card fingerprint.
    for (const { body } of queue.sent) {
      expect(body).not.toMatch(/[\w.+-]+@[\w-]+\.[\w.]+/);
      expect(body).not.toMatch(/fingerprint/);
    }
  });

  it('sends checkout.session.completed to both families and a payment event to payments only', async () => {
    const checkout = setup();
    await acceptStripeWebhook(
      signed(readStripeEventRaw('checkout.session.completed.mode-payment.stripe-sync-engine')),
      checkout.deps,
    );
    expect(checkout.queue.families.sort()).toEqual(['payments', 'subscriptions']);

    const payment = setup();
    const result = await acceptStripeWebhook(
      signed(readStripeEventRaw('charge.succeeded.zulip')),
      payment.deps,
    );
    expect(result).toMatchObject({ outcome: 'enqueued', families: ['payments'] });
    expect(payment.queue.families).toEqual(['payments']);
  });

  it('acknowledges an event no family consumes without sending it anywhere', async () => {
    const { queue, deps } = setup();
    const text = JSON.stringify({
      ...stripeEventWith('invoice.paid.stripe-sync-engine', { id: 'evt_unrouted' }),
      type: 'product.created',
    });
    const result = await acceptStripeWebhook(signed(text), deps);
    expect(result).toMatchObject({
      outcome: 'enqueued',
      eventType: 'product.created',
      families: [],
    });
    expect(queue.sent).toHaveLength(0);
  });

  it('acknowledges an event of the other Stripe mode without queueing it; its own mode is queued', async () => {
    const { queue, deps } = setup();
    const event = stripeEventWith('invoice.paid.stripe-sync-engine', { id: 'evt_mode' });
    const live = JSON.stringify({ ...event, livemode: true });
    const test = JSON.stringify({ ...event, livemode: false });
    expect(await acceptStripeWebhook(signed(live), { ...deps, livemode: false })).toEqual({
      outcome: 'wrong_mode',
      eventId: 'evt_mode',
      eventType: 'invoice.paid',
      livemode: true,
    });
    expect(queue.sent).toHaveLength(0);
    expect(await acceptStripeWebhook(signed(test), { ...deps, livemode: false })).toMatchObject({
      outcome: 'enqueued',
    });
    // A stack serving live mode refuses the test event the same way.
    expect(await acceptStripeWebhook(signed(test), { ...deps, livemode: true })).toMatchObject({
      outcome: 'wrong_mode',
    });
    // Without a configured mode nothing is checked.
    expect(await acceptStripeWebhook(signed(live), deps)).toMatchObject({ outcome: 'enqueued' });
    expect(queue.sent).toHaveLength(2);
  });

  it('fails the whole delivery when one of the target queues refuses it, so Stripe retries', async () => {
    const { queue, deps } = setup();
    queue.failing.add('payments');
    const raw = readStripeEventRaw('checkout.session.completed.mode-payment.stripe-sync-engine');
    await expect(acceptStripeWebhook(signed(raw), deps)).rejects.toBeInstanceOf(EnqueueFailedError);
  });

  it('accepts a body of exactly MAX_WEBHOOK_BODY_BYTES and refuses one byte more with 413', async () => {
    const atCap = setup();
    const ok = await acceptStripeWebhook(signed(eventOfSize(MAX_WEBHOOK_BODY_BYTES)), atCap.deps);
    expect(ok.outcome).toBe('enqueued');
    expect(atCap.queue.sent).toHaveLength(1);

    const overCap = setup();
    const verify = vi.spyOn(overCap.verifier, 'verify');
    const tooBig = await acceptStripeWebhook(
      signed(eventOfSize(MAX_WEBHOOK_BODY_BYTES + 1)),
      overCap.deps,
    );
    expect(tooBig).toMatchObject({ outcome: 'rejected', reason: 'payload_too_large' });
    expect(verify).not.toHaveBeenCalled();
    expect(overCap.queue.sent).toHaveLength(0);
  });

  it('counts bytes, not characters, against the cap', async () => {
    const { queue, deps } = setup();
    // 3-byte characters: fewer characters than the cap, more bytes.
    const text = eventOfSize(MAX_WEBHOOK_BODY_BYTES - 10).replace('xxxxxx"', '€€€€€€"');
    expect(text.length).toBeLessThan(MAX_WEBHOOK_BODY_BYTES);
    expect(Buffer.byteLength(text)).toBeGreaterThan(MAX_WEBHOOK_BODY_BYTES);
    const result = await acceptStripeWebhook(signed(text), deps);
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'payload_too_large' });
    expect(queue.sent).toHaveLength(0);
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['blank', '   '],
  ])('rejects a %s signature header', async (_label, header) => {
    const { queue, deps } = setup();
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const result = await acceptStripeWebhook(
      { rawBody: bytes(raw), signatureHeader: header },
      deps,
    );
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'missing_signature' });
    expect(queue.sent).toHaveLength(0);
  });

  it.each([
    ['garbage', 'not-a-signature'],
    ['no v1 scheme', `t=${NOW_S},v0=abc`],
    ['no timestamp', 'v1=abc'],
  ])('rejects a header with %s as malformed', async (_label, header) => {
    const { queue, deps } = setup();
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const result = await acceptStripeWebhook(
      { rawBody: bytes(raw), signatureHeader: header },
      deps,
    );
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'malformed_signature' });
    expect(queue.sent).toHaveLength(0);
  });

  it('rejects a signature made with another secret', async () => {
    const { queue, deps } = setup();
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const result = await acceptStripeWebhook(signed(raw, NOW_S, 'whsec_someone_else'), deps);
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'invalid_signature' });
    expect(queue.sent).toHaveLength(0);
  });

  it('rejects a body changed after signing, even by whitespace', async () => {
    const { queue, deps } = setup();
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const { signatureHeader } = signed(raw);
    for (const tampered of [`${raw} `, raw.replace('"invoice.paid"', '"invoice.void"')]) {
      const result = await acceptStripeWebhook({ rawBody: bytes(tampered), signatureHeader }, deps);
      expect(result).toMatchObject({ outcome: 'rejected', reason: 'invalid_signature' });
    }
    expect(queue.sent).toHaveLength(0);
  });

  it('accepts a signature 300 s old and rejects one 301 s old (SDK tolerance)', async () => {
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const fresh = setup();
    expect((await acceptStripeWebhook(signed(raw, NOW_S - 300), fresh.deps)).outcome).toBe(
      'enqueued',
    );

    const stale = setup();
    const result = await acceptStripeWebhook(signed(raw, NOW_S - 301), stale.deps);
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'expired_signature' });
    expect(stale.queue.sent).toHaveLength(0);
  });

  it('checks the signature before parsing: an unsigned malformed body is a signature error', async () => {
    const { queue, deps } = setup();
    const result = await acceptStripeWebhook(
      { rawBody: bytes('{not json'), signatureHeader: `t=${NOW_S},v1=${'0'.repeat(64)}` },
      deps,
    );
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'invalid_signature' });
    expect(queue.sent).toHaveLength(0);
  });

  const validEvent = () => stripeEventWith('invoice.paid.stripe-sync-engine');
  it.each<[string, string]>([
    ['truncated JSON', readStripeEventRaw('invoice.paid.stripe-sync-engine').slice(0, 200)],
    ['not JSON', 'hello'],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['an id without evt_', JSON.stringify({ ...validEvent(), id: 'ch_123' })],
    ['a missing id', JSON.stringify({ ...validEvent(), id: undefined })],
    ['object other than event', JSON.stringify({ ...validEvent(), object: 'v2.core.event' })],
    ['a non-string type', JSON.stringify({ ...validEvent(), type: 42 })],
    ['an empty type', JSON.stringify({ ...validEvent(), type: '' })],
    ['a string created', JSON.stringify({ ...validEvent(), created: '1642649111' })],
    ['data.object an array', JSON.stringify({ ...validEvent(), data: { object: [] } })],
    ['data.object null', JSON.stringify({ ...validEvent(), data: { object: null } })],
    ['no data', JSON.stringify({ ...validEvent(), data: undefined })],
    ['U+FFFF, which SQS refuses', JSON.stringify({ ...validEvent(), note: '\uFFFF' })],
    ['U+FFFE, which SQS refuses', JSON.stringify({ ...validEvent(), note: 'a\uFFFEb' })],
  ])('rejects a correctly signed body with %s as malformed', async (_label, text) => {
    const { queue, deps } = setup();
    const result = await acceptStripeWebhook(signed(text), deps);
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'malformed_event' });
    expect(queue.sent).toHaveLength(0);
  });

  // The intake checks only for U+FFFE/U+FFFF, relying on strict UTF-8 decoding and
  // JSON.parse to rule out the rest of what SQS refuses; this pins that reasoning to
  // SQS's documented character set.
  it('enqueues a signed event exactly when its text parses and SQS accepts every character', async () => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: SQS's allowed set is defined by control characters.
    const SQS_REFUSES = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
    const rest = JSON.stringify(validEvent()).slice(1);
    const awkward = fc.constantFrom(
      '\uFFFE',
      '\uFFFF',
      '\uFFFD',
      '\u0000',
      '\u001F',
      '\t',
      '\u007F',
      '\uD800',
      '\uDFFF',
      '\uD83D\uDE00',
      '\uFEFF',
    );
    const raw = fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), awkward), {
      maxLength: 8,
    });
    await fc.assert(
      fc.asyncProperty(raw, async (pieces) => {
        // Raw (unescaped) characters inside a JSON string literal, as an attacker could send them.
        const text = `{"note":"${pieces.join('')}",${rest}`;
        const { queue, deps } = setup();
        const result = await acceptStripeWebhook(signed(text), deps);
        const decoded = Buffer.from(text, 'utf8').toString('utf8'); // lone surrogates become U+FFFD
        let parses = true;
        try {
          JSON.parse(decoded);
        } catch {
          parses = false;
        }
        const acceptable = parses && !SQS_REFUSES.test(decoded);
        expect(result.outcome).toBe(acceptable ? 'enqueued' : 'rejected');
        expect(queue.sent).toHaveLength(acceptable ? 1 : 0);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a correctly signed body that is not valid UTF-8 as malformed', async () => {
    const { queue, deps } = setup();
    const rawBody = Buffer.concat([
      Buffer.from('{"id":"evt_1","x":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    // Sign what Stripe's verifier will see, so only our own decoding can refuse it.
    const signatureHeader = signPayload(rawBody, TEST_WEBHOOK_SECRET, { timestamp: NOW_S });
    const result = await acceptStripeWebhook({ rawBody, signatureHeader }, deps);
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'malformed_event' });
    expect(queue.sent).toHaveLength(0);
  });

  it('never enqueues a signed body with a byte-order mark prepended', async () => {
    const { queue, deps } = setup();
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const { signatureHeader } = signed(raw);
    // Stripe's verifier decodes (and drops) a BOM, so the signature still matches;
    // the body would then not be the bytes that were signed.
    const rawBody = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(raw)]);
    const result = await acceptStripeWebhook({ rawBody, signatureHeader }, deps);
    expect(result.outcome).toBe('rejected');
    expect(queue.sent).toHaveLength(0);
  });

  it('turns any queue failure into EnqueueFailedError naming the event', async () => {
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const boom = new Error('socket hang up');
    const queue: EventQueue = { enqueue: () => Promise.reject(boom) };
    const { verifier } = setup();
    const failure = acceptStripeWebhook(signed(raw), { queue, verifier, clock });
    await expect(failure).rejects.toBeInstanceOf(EnqueueFailedError);
    await expect(failure).rejects.toMatchObject({
      eventId: 'evt_1KJrGtJDPojXS6LN15fcthM3',
      eventType: 'invoice.paid',
      cause: boom,
    });
  });

  it('lets verifier infrastructure errors through (answered 5xx, not 400)', async () => {
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const down = new WebhookSecretUnavailableError('down');
    const verifier: SignatureVerifier = { verify: () => Promise.reject(down) };
    const queue = new RecordingQueue();
    await expect(acceptStripeWebhook(signed(raw), { verifier, queue, clock })).rejects.toBe(down);
    expect(queue.sent).toHaveLength(0);
  });

  it('refuses any single-byte change to a signed body (property)', async () => {
    const raw = readStripeEventRaw('customer.created.WRAPPED.openapi-fixtures3');
    const original = bytes(raw);
    const { signatureHeader } = signed(raw);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: original.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (index, delta) => {
          const { queue, deps } = setup();
          const rawBody = Uint8Array.from(original);
          rawBody[index] = (rawBody[index]! + delta) % 256;
          const result = await acceptStripeWebhook({ rawBody, signatureHeader }, deps);
          expect(result.outcome).toBe('rejected');
          expect(queue.sent).toHaveLength(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('StripeSignatureVerifier with a rotated secret', () => {
  const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');

  function rotatingSecrets(cached: string, refreshed: string | undefined) {
    return {
      getSecret: vi.fn(async () => cached),
      refreshSecret: vi.fn(async () => refreshed),
    } satisfies WebhookSecretProvider;
  }

  it('re-reads the secret once when the cached one does not match, then accepts', async () => {
    const secrets = rotatingSecrets('whsec_old', 'whsec_new');
    const { queue, deps } = setup(secrets);
    const result = await acceptStripeWebhook(signed(raw, NOW_S, 'whsec_new'), deps);
    expect(result.outcome).toBe('enqueued');
    expect(secrets.refreshSecret).toHaveBeenCalledTimes(1);
    expect(queue.sent).toHaveLength(1);
  });

  it('answers 400 when the refreshed secret does not match either', async () => {
    const secrets = rotatingSecrets('whsec_old', 'whsec_new');
    const { queue, deps } = setup(secrets);
    const result = await acceptStripeWebhook(signed(raw, NOW_S, 'whsec_forged'), deps);
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'invalid_signature' });
    expect(queue.sent).toHaveLength(0);
  });

  it('does not refresh for a missing, malformed or expired signature', async () => {
    const secrets = rotatingSecrets(TEST_WEBHOOK_SECRET, 'whsec_new');
    const { deps } = setup(secrets);
    await acceptStripeWebhook({ rawBody: bytes(raw), signatureHeader: undefined }, deps);
    await acceptStripeWebhook({ rawBody: bytes(raw), signatureHeader: 'junk' }, deps);
    await acceptStripeWebhook(signed(raw, NOW_S - 400), deps);
    expect(secrets.refreshSecret).not.toHaveBeenCalled();
  });
});
