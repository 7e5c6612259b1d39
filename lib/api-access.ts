import { ArnFormat, type CfnElement, CfnOutput, Stack, Validations } from 'aws-cdk-lib';
import { ManagedPolicy, PolicyStatement, Role } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { BillingHttpApi } from './billing-http-api.ts';

export interface ApiAccessProps {
  readonly api: BillingHttpApi;
  /** Roles of the app backend: may call the user routes (and nothing else of the API). */
  readonly appBackendRoleArns: readonly string[];
  /** Operators' roles: may call the admin and report routes. */
  readonly operatorRoleArns: readonly string[];
}

/** A route's path in an execute-api ARN: each `{parameter}` matches any value. */
function pattern(path: string): string {
  return path.replace(/\{[^}]+\}/g, '*');
}

/** Routes for operators; every other IAM route is the app backend's. */
const OPERATOR_PREFIXES = ['/admin/', '/reports/'];

/**
 * Who may call which IAM-authorised route. HTTP APIs have no resource policy, so the
 * restriction is on the callers' side: two managed policies, each allowing
 * `execute-api:Invoke` on exactly its routes, attached to the configured roles (and
 * given as outputs for roles made elsewhere). No other principal should be granted
 * `execute-api:Invoke` on this API (docs/deploy.md).
 */
export class ApiAccess extends Construct {
  public readonly appBackendPolicy: ManagedPolicy;
  public readonly operatorPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: ApiAccessProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const iamRoutes = props.api.routes.filter((route) => route.iam);
    const arnOf = (route: (typeof iamRoutes)[number]) =>
      stack.formatArn({
        service: 'execute-api',
        resource: props.api.httpApi.apiId,
        // Stage, method, path; a path parameter matches any value.
        resourceName: `${props.api.stage.stageName}/${route.method}${pattern(route.path)}`,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
    // cdk-nag flags the `*` of a path parameter: which route, not which id, is what a role may call.
    const apiLogicalId = stack.getLogicalId(props.api.httpApi.node.defaultChild as CfnElement);
    for (const route of iamRoutes.filter((r) => r.path.includes('{'))) {
      Validations.of(this).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${props.api.stage.stageName}/${route.method}${pattern(route.path)}]`,
        reason: `A path parameter (${route.path}) matches any id: the policy grants the route, and the handler checks the ids.`,
      });
    }
    const isOperator = (path: string) => OPERATOR_PREFIXES.some((p) => path.startsWith(p));
    const policy = (
      policyId: string,
      description: string,
      operator: boolean,
      roleArns: readonly string[],
    ) =>
      new ManagedPolicy(this, policyId, {
        description,
        statements: [
          new PolicyStatement({
            actions: ['execute-api:Invoke'],
            resources: iamRoutes.filter((r) => isOperator(r.path) === operator).map(arnOf),
          }),
        ],
        roles: roleArns.map((arn, index) => Role.fromRoleArn(this, `${policyId}Role${index}`, arn)),
      });
    // Resolved at synth: the routes are all added by then.
    this.appBackendPolicy = policy(
      'AppBackendInvoke',
      'Billing suite: the app backend may call the user routes (SigV4)',
      false,
      props.appBackendRoleArns,
    );
    this.operatorPolicy = policy(
      'OperatorInvoke',
      'Billing suite: operators may call the admin and report routes (SigV4)',
      true,
      props.operatorRoleArns,
    );
    new CfnOutput(stack, 'AppBackendInvokePolicyArn', {
      value: this.appBackendPolicy.managedPolicyArn,
      description: 'Attach to the app backend role (if not given as appBackendRoleArns)',
    });
    new CfnOutput(stack, 'OperatorInvokePolicyArn', {
      value: this.operatorPolicy.managedPolicyArn,
      description: 'Attach to operator roles (if not given as operatorRoleArns)',
    });
  }
}
