/** The CDK app entry point (`cdk.json` runs it): builds the stacks and writes the cloud assembly. */
import { createBillingApp } from '../lib/billing-app.ts';
import { ConfigError } from '../lib/config.ts';

try {
  createBillingApp().app.synth();
} catch (error) {
  // A bad context value is an operator mistake: one clear line, no stack trace.
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
