import { RemovalPolicy } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/**
 * The Stripe secret API key the penalties API settles with (creates PaymentIntents) and
 * the read route's fallback reads customers and subscriptions with.
 * CloudFormation creates it with a random placeholder, so no key ever sits in source or
 * templates; operators then store the real key, a secret `sk_...` or better a restricted
 * `rk_...` key limited to PaymentIntents write and Customers and Subscriptions read, with
 * `aws secretsmanager put-secret-value` (docs/deploy.md). Until they do, Stripe refuses
 * the placeholder and settlement answers 503. Retained on stack deletion so a redeploy
 * does not lose the key.
 */
export class StripeApiKey extends Construct {
  public readonly secret: Secret;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.secret = new Secret(this, 'Secret', {
      description:
        'Stripe secret API key (sk_..., or a restricted rk_... key) for penalty settlement and the read fallback. Created with a placeholder: set the real key after deploy.',
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
