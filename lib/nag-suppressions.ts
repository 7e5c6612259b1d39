/**
 * Every cdk-nag (AwsSolutions pack) finding the suite keeps, with the reason it stays,
 * in one place so the list can be reviewed: everything else the pack reports is fixed in
 * the constructs (functions' own roles writing to their own log groups instead of
 * AWSLambdaBasicExecutionRole, indexes named in Query grants, batch writes bounded to
 * pointer items, TLS-only encrypted queues with DLQs, API access logs, log retention).
 * `createBillingApp` applies them; test/infra/cdk-nag.test.ts runs the pack on both
 * stacks and fails on any finding not listed here, and on any entry no longer needed.
 *
 * cdk-nag 3 runs as a CDK policy-validation plugin (`Validations.of(app).addPlugins`)
 * and suppressions are CDK acknowledgements (`Validations.of(construct).acknowledge`);
 * v2's `NagSuppressions` and its `Aspects` registration no longer exist.
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { BillingDataStack } from './billing-data-stack.ts';
import { BillingFunction } from './billing-function.ts';
import type { BillingServiceStack } from './billing-service-stack.ts';

export interface NagSuppression {
  /** The rule of the AwsSolutions pack. */
  readonly rule: string;
  /** What it is acknowledged on, and which finding of the rule when it has several. */
  readonly on: string;
  readonly reason: string;
}

export const NAG_SUPPRESSIONS = {
  xrayWildcard: {
    rule: 'AwsSolutions-IAM5',
    on: 'each function role, finding `Resource::*`',
    reason:
      'X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) supports no resource-level permissions: AWS requires "*". No other action of a function role has a "*" resource (test/infra/cdk-nag.test.ts checks).',
  },
  pinnedRuntime: {
    rule: 'AwsSolutions-L1',
    on: 'each function',
    reason:
      'Pinned to nodejs22.x, the runtime the bundle is built and tested for (esbuild target node22, bundled AWS SDK); the two move together, deliberately, not whenever a newer runtime appears.',
  },
  webhookRoute: {
    rule: 'AwsSolutions-APIG4',
    on: 'the route POST /webhooks/stripe',
    reason:
      'Stripe cannot sign with SigV4 or a JWT: the webhook function verifies the Stripe-Signature over the raw body (HMAC with the endpoint secret, 300 s tolerance) before anything else, and the route is throttled.',
  },
  webhookSecretRotation: {
    rule: 'AwsSolutions-SMG4',
    on: 'the webhook signing secret',
    reason:
      'The signing secret is issued by Stripe per endpoint: it is rolled in the Stripe dashboard (both secrets stay valid for a while) and then put here; a rotation Lambda cannot create one.',
  },
  stripeApiKeyRotation: {
    rule: 'AwsSolutions-SMG4',
    on: 'the Stripe API key secret',
    reason:
      'The API key is issued by Stripe: it is rolled in the Stripe dashboard and then put here (the functions re-read it after a 401); a rotation Lambda cannot create one.',
  },
  cursorKeyRotation: {
    rule: 'AwsSolutions-SMG4',
    on: 'the cursor signing key secret',
    reason:
      'Rotating it refuses every page cursor in flight (callers restart from page one) and protects nothing a leak of the key would not: it only makes cursors unforgeable, it guards no data (each store also checks a cursor belongs to the query). Rotate by putting a new random value when needed (docs/deploy.md).',
  },
  scheduleDeadLetterQueues: {
    rule: 'AwsSolutions-SQS3',
    on: "the schedules' dead-letter queues (credit planner, penalty assessor)",
    reason:
      'This queue is the dead-letter queue of an EventBridge Scheduler target: failed invocations land here and are alarmed (…ScheduleDeadLetterQueueNotEmpty); a DLQ has no DLQ.',
  },
  schedulerTargetVersions: {
    rule: 'AwsSolutions-IAM5',
    on: 'the Scheduler target role, finding `Resource::<function>.Arn:*` of the planner and the assessor',
    reason:
      "The role aws-scheduler-targets' LambdaInvoke makes may invoke its one function, versions and aliases included (`<arn>:*`); no other resource.",
  },
  routePathParameters: {
    rule: 'AwsSolutions-IAM5',
    on: 'the AppBackendInvoke and OperatorInvoke policies, finding `Resource::…/<METHOD>/…/*/…` of each route with a path parameter',
    reason:
      'A path parameter ({userId}, {id}, {habitId}...) matches any value: the policy grants the route, not an id, and the handler validates the ids.',
  },
} as const satisfies Record<string, NagSuppression>;

export type NagSuppressionName = keyof typeof NAG_SUPPRESSIONS;

export interface AcknowledgeNagOptions {
  /** Leave this one out (the test proving each entry is still needed). */
  readonly except?: NagSuppressionName;
}

/** Applies every entry of NAG_SUPPRESSIONS to the constructs it concerns. */
export function acknowledgeNagFindings(
  stacks: { dataStack: BillingDataStack; serviceStack: BillingServiceStack },
  options: AcknowledgeNagOptions = {},
): void {
  const { dataStack, serviceStack } = stacks;
  const acknowledge = (name: NagSuppressionName, scope: IConstruct, finding?: string) => {
    if (name === options.except) return;
    const { rule, reason } = NAG_SUPPRESSIONS[name];
    Validations.of(scope).acknowledge({ id: finding ? `${rule}[${finding}]` : rule, reason });
  };

  for (const fn of serviceStack.node.findAll()) {
    if (!(fn instanceof BillingFunction)) continue;
    acknowledge('xrayWildcard', fn, 'Resource::*');
    acknowledge('pinnedRuntime', fn);
  }
  acknowledge('webhookRoute', serviceStack.webhook.route);
  acknowledge('webhookSecretRotation', dataStack.signingSecret.secret);
  acknowledge('stripeApiKeyRotation', dataStack.stripeApiKey.secret);
  acknowledge('cursorKeyRotation', dataStack.cursorSigningKey.secret);

  const { credits, penalties } = serviceStack;
  for (const [target, deadLetterQueue] of [
    [credits.planner, credits.scheduleDeadLetterQueue],
    [penalties.assessor, penalties.scheduleDeadLetterQueue],
    [penalties.settlementSweeper, penalties.scheduleDeadLetterQueue],
  ] as const) {
    acknowledge('scheduleDeadLetterQueues', deadLetterQueue);
    // The target role is the stack's (one per Scheduler target set), so the stack is the scope.
    acknowledge(
      'schedulerTargetVersions',
      serviceStack,
      `Resource::<${logicalIdOf(target.function)}.Arn>:*`,
    );
  }

  const apiId = logicalIdOf(serviceStack.api.httpApi);
  for (const route of serviceStack.access.wildcardRoutes) {
    acknowledge(
      'routePathParameters',
      serviceStack.access,
      `Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiId}>/${route}`,
    );
  }
}

function logicalIdOf(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(element).getLogicalId(element);
}
