import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it, vi } from 'vitest';
import {
  SecretsManagerWebhookSecretProvider,
  StaticWebhookSecretProvider,
  WebhookSecretUnavailableError,
  webhookSecretProviderFromConfig,
} from '../../functions/adapters/secrets/webhook-secret-provider.ts';
import { StripeSignatureVerifier } from '../../functions/adapters/stripe/stripe-signature-verifier.ts';
import {
  acceptStripeWebhook,
  type VerifiedStripeEvent,
} from '../../functions/core/intake/webhook-intake.ts';
import { readStripeEventRaw } from '../helpers/fixtures.ts';
import { signPayload } from '../helpers/stripe-signing.ts';

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:stripe-webhook-AbCdEf';

/**
 * A real SDK client whose `send` answers from `store` (there is no Secrets Manager
 * emulator here; this is fault and rotation injection, not the happy path of another service).
 */
function fakeSecretsManager(store: { value: string | Uint8Array | Error }) {
  const client = new SecretsManagerClient({ region: 'us-east-1' });
  const calls: string[] = [];
  vi.spyOn(client, 'send').mockImplementation(async (command: unknown) => {
    if (!(command instanceof GetSecretValueCommand)) throw new Error('unexpected command');
    calls.push(command.input.SecretId ?? '');
    if (store.value instanceof Error) throw store.value;
    return typeof store.value === 'string'
      ? { SecretString: store.value }
      : { SecretBinary: store.value };
  });
  return { client, calls };
}

function clockAt(start: number) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('SecretsManagerWebhookSecretProvider', () => {
  it('reads the secret by ARN once and serves it from cache, trimmed', async () => {
    const { client, calls } = fakeSecretsManager({ value: 'whsec_abc\n' });
    const provider = new SecretsManagerWebhookSecretProvider({ secretId: SECRET_ARN, client });
    expect(await provider.getSecret()).toBe('whsec_abc');
    expect(await provider.getSecret()).toBe('whsec_abc');
    expect(calls).toEqual([SECRET_ARN]);
  });

  it('refreshes past the cache, at most once per interval', async () => {
    const store = { value: 'whsec_old' as string | Error };
    const { client, calls } = fakeSecretsManager(store);
    const clock = clockAt(1_000_000);
    const provider = new SecretsManagerWebhookSecretProvider({
      secretId: SECRET_ARN,
      client,
      clock,
      minRefreshIntervalMs: 30_000,
    });
    await provider.getSecret();
    store.value = 'whsec_new';
    expect(await provider.refreshSecret()).toBe('whsec_new');
    expect(await provider.getSecret()).toBe('whsec_new');
    store.value = 'whsec_newer';
    clock.t += 29_999;
    expect(await provider.refreshSecret()).toBeUndefined();
    clock.t += 1;
    expect(await provider.refreshSecret()).toBe('whsec_newer');
    expect(calls).toHaveLength(3);
  });

  it.each<[string, string | Uint8Array | Error]>([
    [
      'the call fails',
      Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }),
    ],
    ['the secret is blank', '  \n'],
    ['the secret is binary', new Uint8Array([1, 2, 3])],
  ])('throws WebhookSecretUnavailableError when %s', async (_label, value) => {
    const { client } = fakeSecretsManager({ value });
    const provider = new SecretsManagerWebhookSecretProvider({ secretId: SECRET_ARN, client });
    await expect(provider.getSecret()).rejects.toBeInstanceOf(WebhookSecretUnavailableError);
  });

  it('lets a delivery signed with a just-rotated secret through, via one refresh', async () => {
    const store = { value: 'whsec_before_rotation' as string | Error };
    const { client, calls } = fakeSecretsManager(store);
    const verifier = new StripeSignatureVerifier(
      new SecretsManagerWebhookSecretProvider({ secretId: SECRET_ARN, client }),
    );
    const sent: VerifiedStripeEvent[] = [];
    const deps = {
      verifier,
      queue: { enqueue: async (e: VerifiedStripeEvent) => void sent.push(e) },
    };
    const raw = readStripeEventRaw('invoice.paid.stripe-sync-engine');
    const delivery = (secret: string) => ({
      rawBody: Buffer.from(raw),
      signatureHeader: signPayload(raw, secret),
    });

    expect((await acceptStripeWebhook(delivery('whsec_before_rotation'), deps)).outcome).toBe(
      'enqueued',
    );
    store.value = 'whsec_after_rotation';
    expect((await acceptStripeWebhook(delivery('whsec_after_rotation'), deps)).outcome).toBe(
      'enqueued',
    );
    // A forged signature right after does not trigger another read (rate-limited).
    expect(await acceptStripeWebhook(delivery('whsec_forged'), deps)).toMatchObject({
      reason: 'invalid_signature',
    });
    expect(calls).toHaveLength(2);
    expect(sent).toHaveLength(2);
  });
});

describe('webhookSecretProviderFromConfig', () => {
  it('prefers the plain local secret', async () => {
    const provider = webhookSecretProviderFromConfig({
      secret: 'whsec_local',
      secretArn: SECRET_ARN,
    });
    expect(provider).toBeInstanceOf(StaticWebhookSecretProvider);
    expect(await provider.getSecret()).toBe('whsec_local');
    expect(await provider.refreshSecret()).toBeUndefined();
  });

  it('uses Secrets Manager when only the ARN is set, without calling it yet', () => {
    const { client, calls } = fakeSecretsManager({ value: 'whsec_x' });
    const provider = webhookSecretProviderFromConfig({ secretArn: SECRET_ARN, client });
    expect(provider).toBeInstanceOf(SecretsManagerWebhookSecretProvider);
    expect(calls).toHaveLength(0);
  });

  it('refuses a configuration with neither', () => {
    expect(() => webhookSecretProviderFromConfig({})).toThrow(WebhookSecretUnavailableError);
  });
});
