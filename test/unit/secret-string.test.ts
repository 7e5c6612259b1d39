import { describe, expect, it } from 'vitest';
import {
  configuredSecret,
  SecretsManagerSecretString,
  StaticSecretString,
} from '../../functions/adapters/secrets/secret-string.ts';

class Unavailable extends Error {}
const base = {
  label: 'the test key',
  unavailable: (message: string) => new Unavailable(message),
  variables: { value: 'TEST_KEY', secretArn: 'TEST_KEY_SECRET_ARN' },
};
const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:test-AbCdEf';

describe('configuredSecret', () => {
  it('takes the plain value when set (local runtime, tests), trimmed', async () => {
    const secret = configuredSecret({ ...base, value: ' plain-value\n', secretArn: ARN });
    expect(secret).toBeInstanceOf(StaticSecretString);
    expect(await secret.get()).toBe('plain-value');
  });

  it('else the Secrets Manager secret, read on first use only', () => {
    // Building it calls nothing: no client, no request, until get().
    expect(configuredSecret({ ...base, secretArn: ARN })).toBeInstanceOf(
      SecretsManagerSecretString,
    );
  });

  it('neither: unavailable, naming both variables', () => {
    expect(() => configuredSecret({ ...base, value: '', secretArn: undefined })).toThrow(
      new Unavailable('Neither TEST_KEY nor TEST_KEY_SECRET_ARN is set.'),
    );
  });
});
