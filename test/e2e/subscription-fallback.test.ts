/**
 * The read-through fallback as deployed, through the local runtime: the read function
 * gets the Stripe key and tables from the template, asks the runtime's fake Stripe on a
 * miss, stores the snapshot, and a later webhook still wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import type { StripeEventJson } from '../helpers/stripe-history.ts';
import { getSubscription, postWebhook, uniqueUserId, waitForSubscription } from './e2e-helpers.ts';

describe('the read route asks Stripe on a miss (local runtime)', () => {
  let runtime: LocalRuntime;

  beforeAll(async () => {
    runtime = await startLocalRuntime({ port: 0, inMemory: true, logLevel: 'warn' });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('answers a user only Stripe knows, once from Stripe, then from DynamoDB; a later webhook wins', async () => {
    const stripe = runtime.fakeStripe!;
    const userId = uniqueUserId('fallback');
    const customer = stripe.createCustomer({ metadata: { userId } }).data.object.id;
    const created = stripe.createSubscription({
      customer,
      priceId: 'price_e2e_silver',
      tier: 'silver',
    });
    const calls = () => stripe.requests.filter((r) => r.path.startsWith('/v1/customers')).length;
    const before = calls();

    const first = await getSubscription(runtime, userId);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      userId,
      tier: 'silver',
      status: 'active',
      stripeCustomerId: customer,
    });
    const second = await getSubscription(runtime, userId);
    expect(second.body).toEqual(first.body);
    expect(calls() - before).toBe(1);

    // Stripe cancels it a second later; the webhook beats the snapshot.
    await new Promise((r) => setTimeout(r, 1_100));
    const canceled = stripe.cancelSubscription(created.data.object.id);
    expect((await postWebhook(runtime, canceled as unknown as StripeEventJson)).status).toBe(200);
    const after = await waitForSubscription(runtime, userId, (view) => view.status === 'canceled');
    expect(after).toMatchObject({ tier: 'free', status: 'canceled' });
  });

  it('answers 404 for a user neither knows, and 503 with Retry-After when Stripe is down', async () => {
    expect((await getSubscription(runtime, uniqueUserId('nobody'))).status).toBe(404);
    runtime.fakeStripe!.injectFault({ kind: 'status', status: 503 }, 50, '/v1/customers');
    const res = await fetch(`${runtime.apiUrl}/users/${uniqueUserId('down')}/subscription`);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(JSON.stringify(await res.json())).not.toMatch(/Injected/);
    runtime.fakeStripe!.clearFaults();
  });
});
