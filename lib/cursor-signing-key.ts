import { RemovalPolicy } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/**
 * The key the API seals its page cursors with (HMAC-SHA256,
 * functions/adapters/paging/cursor-seal.ts), so a caller cannot forge or edit one.
 * CloudFormation generates it and nobody needs to see it. Putting a new random value
 * rotates it: the cursors in flight are then refused (400) once the functions re-read
 * the key (within 5 minutes) and callers start again from the first page. Retained on
 * stack deletion like the other secrets, so a redeploy keeps cursors valid.
 */
export class CursorSigningKey extends Construct {
  public readonly secret: Secret;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.secret = new Secret(this, 'Secret', {
      description: 'Signs the page cursors of the billing API (HMAC key; generated, never shared)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
