import { ArnFormat, CfnOutput, Duration, Stack, Token } from 'aws-cdk-lib';
import {
  AccountRootPrincipal,
  type IRole,
  ManagedPolicy,
  PolicyStatement,
  Role,
} from 'aws-cdk-lib/aws-iam';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ENV } from '../functions/commons/env-names.ts';
import { operatorRoleOf } from '../functions/commons/operator-roles.ts';
import { isOperatorRoute } from '../functions/commons/routes.ts';
import type { BillingHttpApi } from './billing-http-api.ts';
import { ConfigError } from './config.ts';

export interface ApiAccessProps {
  readonly api: BillingHttpApi;
  /** Roles of the app backend: may call the user routes (and nothing else of the API). */
  readonly appBackendRoleArns: readonly string[];
  /**
   * Operators' roles made elsewhere: the only callers of the admin and report routes when
   * given; none: the stack makes an OperatorRole of its own for them instead.
   */
  readonly operatorRoleArns: readonly string[];
}

/** A route's path in an execute-api ARN: each `{parameter}` matches any value. */
export function routeArnPath(path: string): string {
  return path.replace(/\{[^}]+\}/g, '*');
}

/**
 * Who may call which IAM-authorised route. HTTP APIs have no resource policy, so the
 * restriction is on the callers' side: two managed policies, each allowing
 * `execute-api:Invoke` on exactly its routes, attached to the configured roles (and
 * given as outputs for roles made elsewhere). No other principal should be granted
 * `execute-api:Invoke` on this API (docs/deploy.md). The functions behind operator routes
 * always get the operator roles' ARNs (OPERATOR_ROLE_ARNS, never empty) and refuse any
 * other caller (functions/commons/operator-access.ts): the configured `operatorRoleArns`
 * when there are any, else an operator role the stack makes (OperatorRole, assumable
 * within the account). Never both: OperatorRole may be assumed by any principal of the
 * account allowed sts:AssumeRole on it (or on `*`), which would let more callers through
 * than the configured roles.
 */
export class ApiAccess extends Construct {
  public readonly appBackendPolicy: ManagedPolicy;
  public readonly operatorPolicy: ManagedPolicy;
  /**
   * The stack's own operator role (principals of the account with sts:AssumeRole on it),
   * made only when no `operatorRoleArns` are configured; otherwise undefined.
   */
  public readonly operatorRole: Role | undefined;
  /**
   * `<stage>/<METHOD><path>` of each IAM route with a path parameter, as its ARN names it
   * (`$default/GET/users/<*>/subscription`, `<*>` being a `*`): what cdk-nag flags (nag-suppressions.ts).
   */
  public readonly wildcardRoutes: readonly string[];

  constructor(scope: Construct, id: string, props: ApiAccessProps) {
    super(scope, id);
    const stack = Stack.of(this);
    // HTTP APIs have no resource policy, so IAM authorises callers of this account only
    // (another account's role assumes one of these). A role name is also all the policy
    // attaches by: a role of another account would attach to a namesake here.
    if (!Token.isUnresolved(stack.account)) {
      for (const arn of [...props.appBackendRoleArns, ...props.operatorRoleArns]) {
        if (arn.split(':')[4] !== stack.account) {
          throw new ConfigError(
            `Role ${arn} is not in account ${stack.account}, where the API is deployed: an HTTP API authorises callers of its own account only (give a role there that the caller assumes).`,
          );
        }
      }
    }
    const iamRoutes = props.api.routes.filter((route) => route.iam);
    const tail = (route: (typeof iamRoutes)[number]) =>
      `${props.api.stage.stageName}/${route.method}${routeArnPath(route.path)}`;
    const arnOf = (route: (typeof iamRoutes)[number]) =>
      stack.formatArn({
        service: 'execute-api',
        resource: props.api.httpApi.apiId,
        // Stage, method, path; a path parameter matches any value.
        resourceName: tail(route),
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
    this.wildcardRoutes = iamRoutes.filter((r) => r.path.includes('{')).map(tail);
    const imported = (policyId: string, roleArns: readonly string[]): IRole[] =>
      roleArns.map((arn, index) => Role.fromRoleArn(this, `${policyId}Role${index}`, arn));
    const policy = (policyId: string, description: string, operator: boolean, roles: IRole[]) =>
      new ManagedPolicy(this, policyId, {
        description,
        statements: [
          new PolicyStatement({
            actions: ['execute-api:Invoke'],
            resources: iamRoutes.filter((r) => isOperatorRoute(r.path) === operator).map(arnOf),
          }),
        ],
        roles,
      });
    // Resolved at synth: the routes are all added by then.
    this.appBackendPolicy = policy(
      'AppBackendInvoke',
      'Billing suite: the app backend may call the user routes (SigV4)',
      false,
      imported('AppBackendInvoke', props.appBackendRoleArns),
    );
    // No resource policy either means another principal allowed execute-api:Invoke by its
    // own policies passes IAM: the functions behind operator routes also check the caller
    // is a session of an operator role (functions/commons/operator-access.ts).
    for (const arn of props.operatorRoleArns) {
      try {
        operatorRoleOf(arn);
      } catch (error) {
        throw new ConfigError(`operatorRoleArns: ${(error as Error).message}`);
      }
    }
    const configured = props.operatorRoleArns.length > 0;
    // Only without configured roles, so the function check below always has a role to
    // hold callers to and never more than the configured ones. The account root as
    // principal delegates to IAM: a user or role of the account still needs its own
    // sts:AssumeRole on this role (or on `*`) to become an operator.
    this.operatorRole = configured
      ? undefined
      : new Role(this, 'OperatorRole', {
          assumedBy: new AccountRootPrincipal(),
          description:
            'Billing suite operators: assume to call the admin and report routes (SigV4)',
          maxSessionDuration: Duration.hours(1),
        });
    this.operatorPolicy = policy(
      'OperatorInvoke',
      'Billing suite: operators may call the admin and report routes (SigV4)',
      true,
      this.operatorRole ? [this.operatorRole] : imported('OperatorInvoke', props.operatorRoleArns),
    );
    // Never empty: the configured roles (plain JSON), else the stack's role, whose name is
    // generated at deploy (a JSON array the template resolves).
    const operatorRoleArns = this.operatorRole
      ? stack.toJsonString([this.operatorRole.roleArn])
      : JSON.stringify(props.operatorRoleArns);
    const operatorFunctions = new Set(
      iamRoutes.filter((route) => isOperatorRoute(route.path)).map((route) => route.handler),
    );
    for (const fn of operatorFunctions) {
      if (!(fn instanceof LambdaFunction)) {
        throw new Error(`${fn.node.path} serves an operator route but is not a Lambda Function`);
      }
      fn.addEnvironment(ENV.operatorRoleArns, operatorRoleArns);
    }
    new CfnOutput(stack, 'AppBackendInvokePolicyArn', {
      value: this.appBackendPolicy.managedPolicyArn,
      description: 'Attach to the app backend role (if not given as appBackendRoleArns)',
    });
    new CfnOutput(stack, 'OperatorInvokePolicyArn', {
      value: this.operatorPolicy.managedPolicyArn,
      description:
        'Attached to the operator roles (operatorRoleArns, else OperatorRole); attaching it to another role is not enough: the functions refuse its sessions unless it is listed in operatorRoleArns',
    });
    if (this.operatorRole) {
      new CfnOutput(stack, 'OperatorRoleArn', {
        value: this.operatorRole.roleArn,
        description:
          'Assume to call the admin and report routes (aws sts assume-role, or a profile with role_arn); the caller needs sts:AssumeRole on it',
      });
    }
  }
}
