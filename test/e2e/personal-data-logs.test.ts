/**
 * Personal data stays out of the logs (issue 14.5): an end-to-end run through the
 * local runtime, every log at DEBUG, with every real captured Stripe event (which carry
 * e-mail addresses and card fingerprints), a bad signature and a malformed event. The
 * captured output must hold no e-mail address, no fingerprint and neither secret.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import { readStripeEventRaw, STRIPE_EVENT_FIXTURES } from '../helpers/fixtures.ts';
import type { StripeEventJson } from '../helpers/stripe-history.ts';
import { consumed, eventually, postWebhook, recordsFor } from './e2e-helpers.ts';

const EMAIL = /[\w.+-]+@[\w-]+\.[a-z]{2,}/i;

describe('logs of an end-to-end run', () => {
  let runtime: LocalRuntime;
  const output: string[] = [];
  const before = process.env.POWERTOOLS_LOG_LEVEL;

  beforeAll(async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    runtime = await startLocalRuntime({ port: 0, inMemory: true, logLevel: 'debug' });
    const capture = (chunk: unknown) => {
      output.push(String(chunk));
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    if (before === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
    else process.env.POWERTOOLS_LOG_LEVEL = before;
    await runtime?.stop();
  });

  it('hold no e-mail address, card fingerprint or secret', async () => {
    const events = STRIPE_EVENT_FIXTURES.map(
      (name) => JSON.parse(readStripeEventRaw(name)) as StripeEventJson,
    );
    const fingerprints = STRIPE_EVENT_FIXTURES.flatMap((name) =>
      [...readStripeEventRaw(name).matchAll(/"fingerprint":\s*"([^"]+)"/g)].map((m) => m[1]!),
    );
    expect(fingerprints.length).toBeGreaterThan(0);
    expect(events.map((e) => JSON.stringify(e)).join('')).toMatch(EMAIL);

    const start = consumed(runtime);
    for (const event of events) expect((await postWebhook(runtime, event)).status).toBe(200);
    // A forged delivery and a signed body that is not an event: both logged as rejections.
    expect((await postWebhook(runtime, events[0]!, { secret: 'whsec_wrong' })).status).toBe(400);
    expect((await postWebhook(runtime, events[0]!, { rawBody: '{"email":"x@y.zz"}' })).status).toBe(
      400,
    );
    await eventually(
      async () => (consumed(runtime) - start >= recordsFor(events) ? true : undefined),
      30_000,
      'every event consumed',
    );

    const logs = output.join('');
    expect(logs.length).toBeGreaterThan(1_000); // the run did log, at DEBUG
    expect(logs).not.toMatch(EMAIL);
    for (const fingerprint of fingerprints) expect(logs).not.toContain(fingerprint);
    expect(logs).not.toContain(runtime.webhookSecret);
    expect(logs).not.toContain(runtime.fakeStripe?.secretKey ?? 'sk_test_local_fake_stripe');
  });
});
