/**
 * `send-sample --penalties` plays Stripe only for the fake Stripe's own PaymentIntents.
 * Here the runtime talks to another Stripe (STRIPE_API_URL; a fake posing as Stripe's
 * own `pi_3…` ids): the sample settles, then leaves the PaymentIntent pending for that
 * Stripe to confirm, sending no `payment_intent.succeeded` of its own. Its own file: one
 * runtime per process, and this one points elsewhere than the process-wide fake.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type FakeStripe, startFakeStripe } from '../../local/fake-stripe.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import { runPenaltySample } from '../../local/send-sample.ts';
import { uniqueUserId } from './e2e-helpers.ts';

const DAY = 86_400_000;

describe('the penalties sample against another Stripe', () => {
  let stripe: FakeStripe;
  let runtime: LocalRuntime;

  beforeAll(async () => {
    stripe = await startFakeStripe({ paymentIntentIdPrefix: 'pi_3' });
    runtime = await startLocalRuntime({
      port: 0,
      inMemory: true,
      logLevel: 'warn',
      stripeApiUrl: stripe.url,
      stripeSecretKey: stripe.secretKey,
    });
  });
  afterAll(async () => {
    await runtime?.stop();
    await stripe?.close();
  });

  const sample = async (userId: string) => {
    const lines: string[] = [];
    await runPenaltySample({
      apiUrl: runtime.apiUrl,
      userId,
      webhookSecret: runtime.webhookSecret,
      timeoutMs: 2_000,
      print: (line) => lines.push(line),
    });
    return lines.join('\n');
  };

  it('settles, and leaves the PaymentIntent pending for that Stripe to confirm', {
    timeout: 60_000,
  }, async () => {
    const userId = uniqueUserId('sample-other-stripe');
    // Day one (the habits created a day ago), then today: yesterday's missed habit costs.
    vi.setSystemTime(Date.now() - DAY);
    try {
      await sample(userId);
    } finally {
      vi.useRealTimers();
    }
    const printed = await sample(userId);

    const [intent] = [...stripe.paymentIntents.values()].filter(
      (pi) => pi.metadata.userId === userId,
    );
    expect(intent?.id).toMatch(/^pi_3/);
    expect(printed).toContain(
      `${intent?.id} is not the fake Stripe's: it stays pending until that Stripe sends payment_intent.succeeded.`,
    );
    expect(printed).not.toContain('Playing Stripe');
    const penalties = (await (
      await fetch(`${runtime.apiUrl}/users/${userId}/penalties`)
    ).json()) as {
      items: { status: string; paymentId: string | null }[];
    };
    expect(penalties.items).toEqual([
      expect.objectContaining({ status: 'pending', paymentId: intent?.id }),
    ]);
  });
});
