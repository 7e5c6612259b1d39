import { RemovalPolicy } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/**
 * The Stripe webhook signing secret (`whsec_...`). CloudFormation creates it with a
 * random placeholder, so nothing secret ever sits in source or templates; operators
 * then store the real value with `aws secretsmanager put-secret-value` (docs/deploy.md).
 * Until they do, every webhook fails signature verification (400) and Stripe retries.
 * Retained on stack deletion so a redeploy does not lose the value Stripe signs with.
 */
export class WebhookSigningSecret extends Construct {
  public readonly secret: Secret;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.secret = new Secret(this, 'Secret', {
      description:
        'Stripe webhook signing secret (whsec_...). Created with a placeholder: set the real value after deploy.',
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
