/**
 * Who may call which route (issues 14.6, 15 and 15.4): every route but the Stripe webhook
 * is IAM-authorised; the app backend's policy allows exactly the user routes, the
 * operators' exactly the admin and report routes, each attached to the roles the config
 * names. The operators' roles are the configured ones when there are any, else an
 * OperatorRole the stack makes (never both: that role would widen who gets through),
 * and the functions behind operator routes always hold their callers to them.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/commons/env-names.ts';
import { callerRoleOf } from '../../functions/commons/operator-access.ts';
import { operatorRoleOf } from '../../functions/commons/operator-roles.ts';
import { PENALTY_ROUTES } from '../../functions/commons/routes.ts';
import { ApiAccess } from '../../lib/api-access.ts';
import { BillingHttpApi } from '../../lib/billing-http-api.ts';
import { ConfigError, readBillingConfig, roleArnsFromContext } from '../../lib/config.ts';
import { httpApiEvent } from '../helpers/apigw-events.ts';
import { tempOutdir } from '../helpers/temp-outdir.ts';
import {
  ENTRY,
  envOf,
  functionByEntry,
  getAtt,
  logicalIdOf,
  resources,
  synthTemplates,
  type Templates,
} from './synth.ts';

const APP_ROLE = 'arn:aws:iam::123456789012:role/app-backend';
const OPERATOR_ROLE = 'arn:aws:iam::123456789012:role/ops/oncall';
/** What CloudFormation names the stack's OperatorRole: no path, a generated name. */
const DEPLOYED_ROLE_NAME = 'BillingService-ApiAccessOperatorRole3A625BA5-Q1w2E3r4T5y6';
const DEPLOYED_ROLE_ARN = `arn:aws:iam::123456789012:role/${DEPLOYED_ROLE_NAME}`;

const operatorRoleId = (t: Templates) => {
  const role = t.stacks.service.access.operatorRole;
  if (!role) throw new Error('the stack made no OperatorRole');
  return logicalIdOf(role);
};
const CONFIGURED = { operatorRoleArns: JSON.stringify([OPERATOR_ROLE, APP_ROLE]) };
/** The admin functions and the payment reads (the /reports/ routes), no other. */
const OPERATOR_ENTRIES = [ENTRY.creditAdmin, ENTRY.paymentRead, ENTRY.penaltyAdmin].sort();

/**
 * A function's OPERATOR_ROLE_ARNS as CloudFormation would resolve it, the OperatorRole's
 * ARN being `DEPLOYED_ROLE_ARN`; fails on any other reference.
 */
function deployedValue(t: Templates, value: unknown): string {
  if (typeof value === 'string') return value;
  const [separator, parts] = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return parts
    .map((part) => {
      if (typeof part === 'string') return part;
      expect(part).toEqual(getAtt(operatorRoleId(t)));
      return DEPLOYED_ROLE_ARN;
    })
    .join(separator);
}

/** Entry → its OPERATOR_ROLE_ARNS as deployed, for every function that has one. */
function operatorRoleArnsByEntry(t: Templates): Record<string, string[]> {
  return Object.fromEntries(
    Object.values(ENTRY).flatMap((entry) => {
      const value = envOf(functionByEntry(t.service, entry)[1])[ENV.operatorRoleArns];
      return value === undefined ? [] : [[entry, JSON.parse(deployedValue(t, value))]];
    }),
  );
}

function policies(context?: Record<string, unknown>) {
  const t = synthTemplates(context);
  const routes = Object.values(resources(t.service, 'AWS::ApiGatewayV2::Route')).map((r) => ({
    key: String(r.Properties.RouteKey),
    auth: String(r.Properties.AuthorizationType),
  }));
  const managed = Object.values(resources(t.service, 'AWS::IAM::ManagedPolicy'));
  const named = (text: string) => {
    const policy = managed.find((p) => String(p.Properties.Description).includes(text))!;
    const statement = (
      policy.Properties.PolicyDocument as { Statement: { Action: string; Resource: unknown[] }[] }
    ).Statement[0]!;
    // `${method} ${path}` back from each resource ARN (the API id and stage are tokens).
    const keys = statement.Resource.map((resource) => {
      const parts = (resource as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
      const tail = String(parts.at(-1));
      const [, stage, method, ...path] = tail.split('/');
      expect(stage).toBe('$default');
      return `${method} /${path.join('/')}`;
    });
    return { action: statement.Action, keys, roles: policy.Properties.Roles };
  };
  return {
    t,
    routes,
    app: named('the app backend'),
    operators: named('operators'),
  };
}

const asPattern = (key: string) => key.replace(/\{[^}]+\}/g, '*');

describe('API access by role', () => {
  it('authorises every route but the webhook with IAM, and gives each to exactly one role', () => {
    const { routes, app, operators } = policies();
    const webhook = routes.filter((r) => r.key === 'POST /webhooks/stripe');
    expect(webhook).toEqual([{ key: 'POST /webhooks/stripe', auth: 'NONE' }]);
    const iam = routes.filter((r) => r.key !== 'POST /webhooks/stripe');
    expect(iam.length).toBeGreaterThan(15);
    expect(iam.every((r) => r.auth === 'AWS_IAM')).toBe(true);
    expect(app.action).toBe('execute-api:Invoke');
    expect(operators.action).toBe('execute-api:Invoke');
    expect([...app.keys, ...operators.keys].sort()).toEqual(
      iam.map((r) => asPattern(r.key)).sort(),
    );
    expect(operators.keys.every((k) => /^\w+ \/(admin|reports)\//.test(k))).toBe(true);
    expect(app.keys.some((k) => /^\w+ \/(admin|reports)\//.test(k))).toBe(false);
    expect(app.keys).toContain('GET /users/*/subscription');
    expect(operators.keys).toContain('POST /admin/penalties/assess');
    // Every user route is the app backend's, every admin route the operators'.
    const user = iam.filter((r) => r.key.split(' ')[1]!.startsWith('/users/'));
    const admin = iam.filter((r) => r.key.split(' ')[1]!.startsWith('/admin/'));
    expect(user.length).toBeGreaterThan(8);
    expect(admin.length).toBeGreaterThanOrEqual(4);
    for (const r of user) {
      expect(app.keys).toContain(asPattern(r.key));
      expect(operators.keys).not.toContain(asPattern(r.key));
    }
    for (const r of admin) {
      expect(operators.keys).toContain(asPattern(r.key));
      expect(app.keys).not.toContain(asPattern(r.key));
    }
    // The webhook is in neither: Stripe calls it unsigned (by AWS), with its own signature.
    expect([...app.keys, ...operators.keys]).not.toContain('POST /webhooks/stripe');
  });

  it('grants nothing but execute-api:Invoke on this API, in one statement per policy', () => {
    const t = synthTemplates();
    const managed = Object.values(resources(t.service, 'AWS::IAM::ManagedPolicy'));
    expect(managed).toHaveLength(2);
    for (const policy of managed) {
      const { Statement } = policy.Properties.PolicyDocument as {
        Statement: { Effect: string; Action: unknown; Resource: unknown[]; Condition?: unknown }[];
      };
      expect(Statement).toHaveLength(1);
      expect(Statement[0]).toMatchObject({ Effect: 'Allow', Action: 'execute-api:Invoke' });
      const apiId = logicalIdOf(t.stacks.service.api.httpApi);
      for (const resource of Statement[0]!.Resource) {
        // arn:<partition>:execute-api:<region>:<account>:<this API's id>/$default/...
        const parts = (resource as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
        expect(parts).toContainEqual({ Ref: apiId });
        expect(String(parts.at(-1))).toMatch(/^\/\$default\/(GET|PUT|POST)\//);
      }
    }
  });

  it("attaches the policies to the configured roles, the operators' to the OperatorRole when none is configured", () => {
    const plain = policies();
    expect(plain.app.roles).toBeUndefined();
    expect(plain.operators.roles).toEqual([{ Ref: operatorRoleId(plain.t) }]);
    const { t, app, operators } = policies({
      appBackendRoleArns: JSON.stringify([APP_ROLE]),
      operatorRoleArns: OPERATOR_ROLE,
    });
    expect(app.roles).toEqual(['app-backend']);
    expect(operators.roles).toEqual(['oncall']);
    expect(t.stacks.service.access.operatorRole).toBeUndefined();
  });

  it('makes no OperatorRole and no OperatorRoleArn output when operator roles are configured', () => {
    const t = synthTemplates(CONFIGURED);
    expect(t.stacks.service.access.operatorRole).toBeUndefined();
    const roles = Object.entries(resources(t.service, 'AWS::IAM::Role'));
    expect(roles.filter(([id]) => id.includes('OperatorRole'))).toEqual([]);
    // No role of the stack is assumable by the account root (as OperatorRole was).
    for (const [id, role] of roles) {
      expect(JSON.stringify(role.Properties.AssumeRolePolicyDocument), id).not.toContain(':root');
    }
    expect(Object.keys(t.service.findOutputs('OperatorRoleArn'))).toEqual([]);
    t.service.hasOutput('OperatorInvokePolicyArn', {
      Description: Match.stringLikeRegexp('listed in operatorRoleArns'),
    });
  });

  it('makes an operator role any principal of the account may assume, given sts:AssumeRole by its own policies', () => {
    const t = synthTemplates();
    const roleId = operatorRoleId(t);
    const role = resources(t.service, 'AWS::IAM::Role')[roleId]!;
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'sts:AssumeRole',
          Principal: {
            AWS: {
              'Fn::Join': [
                '',
                ['arn:', { Ref: 'AWS::Partition' }, ':iam::', { Ref: 'AWS::AccountId' }, ':root'],
              ],
            },
          },
        },
      ],
    });
    expect(role.Properties.MaxSessionDuration).toBe(3600);
    // No path and no fixed name: its ARN is `role/<generated name>`, which the functions parse.
    expect(role.Properties.Path).toBeUndefined();
    expect(role.Properties.RoleName).toBeUndefined();
    // Nothing but the OperatorInvoke policy: no inline policy, no other managed policy.
    expect(role.Properties.Policies).toBeUndefined();
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const attached = Object.entries(resources(t.service, 'AWS::IAM::Policy')).filter(([, p]) =>
      JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`),
    );
    expect(attached).toEqual([]);
    const holding = Object.entries(resources(t.service, 'AWS::IAM::ManagedPolicy'))
      .filter(([, p]) => JSON.stringify(p.Properties.Roles ?? []).includes(`"${roleId}"`))
      .map(([id]) => id);
    expect(holding).toEqual([logicalIdOf(t.stacks.service.access.operatorPolicy)]);
    t.service.hasOutput('OperatorRoleArn', {
      Value: getAtt(roleId),
      Description: Match.stringLikeRegexp('sts:AssumeRole'),
    });
  });

  it("names the stack's OperatorRole alone to exactly the functions behind operator routes when none is configured", () => {
    const own = operatorRoleArnsByEntry(synthTemplates());
    expect(Object.keys(own).sort()).toEqual(OPERATOR_ENTRIES);
    for (const [entry, arns] of Object.entries(own))
      expect(arns, entry).toEqual([DEPLOYED_ROLE_ARN]);
  });

  it('names exactly the configured roles, as plain JSON, to exactly the functions behind operator routes', () => {
    const t = synthTemplates(CONFIGURED);
    const values = Object.fromEntries(
      Object.values(ENTRY).flatMap((entry) => {
        const value = envOf(functionByEntry(t.service, entry)[1])[ENV.operatorRoleArns];
        return value === undefined ? [] : [[entry, value]];
      }),
    );
    expect(Object.keys(values).sort()).toEqual(OPERATOR_ENTRIES);
    for (const [entry, value] of Object.entries(values)) {
      // No token to resolve: the configured list as it is, without the stack's role.
      expect(value, entry).toBe(JSON.stringify([OPERATOR_ROLE, APP_ROLE]));
    }
  });

  it('resolves to a list the functions read, letting a session of the OperatorRole through', () => {
    const t = synthTemplates();
    const value = envOf(functionByEntry(t.service, ENTRY.penaltyAdmin)[1])[ENV.operatorRoleArns];
    // A JSON array joined around the role's ARN, resolved by CloudFormation.
    expect(value).toEqual({ 'Fn::Join': ['', ['["', getAtt(operatorRoleId(t)), '"]']] });
    const allowed = (JSON.parse(deployedValue(t, value)) as string[]).map(operatorRoleOf);
    expect(allowed).toEqual([{ account: '123456789012', name: DEPLOYED_ROLE_NAME }]);
    const event = httpApiEvent({ method: 'POST', path: PENALTY_ROUTES.assess });
    const signedBy = (userArn: string) =>
      callerRoleOf({
        ...event,
        requestContext: { ...event.requestContext, authorizer: { iam: { userArn } } },
      } as typeof event);
    expect(signedBy(`arn:aws:sts::123456789012:assumed-role/${DEPLOYED_ROLE_NAME}/alice`)).toEqual(
      allowed[0],
    );
  });

  it('refuses roles of two accounts (an HTTP API authorises its own account only)', () => {
    const context: Record<string, unknown> = {
      appBackendRoleArns: APP_ROLE,
      operatorRoleArns: 'arn:aws:iam::210987654321:role/ops',
    };
    expect(() => readBillingConfig((key) => context[key])).toThrow(ConfigError);
    expect(() => readBillingConfig((key) => context[key])).toThrow(/different accounts/);
    context.operatorRoleArns = OPERATOR_ROLE;
    expect(readBillingConfig((key) => context[key])).toMatchObject({
      appBackendRoleArns: [APP_ROLE],
      operatorRoleArns: [OPERATOR_ROLE],
    });
  });

  it("refuses, when the stack's account is known, a role of another account", () => {
    const build = (roleArn: string) => {
      const stack = new Stack(new App({ outdir: tempOutdir() }), 'S', {
        env: { account: '123456789012', region: 'eu-west-1' },
      });
      const api = new BillingHttpApi(stack, 'Api');
      api.addRoute('Read', {
        method: HttpMethod.GET,
        path: '/users/{userId}/subscription',
        handler: new LambdaFunction(stack, 'Fn', {
          runtime: Runtime.NODEJS_22_X,
          handler: 'index.handler',
          code: Code.fromInline('exports.handler = async () => undefined;'),
        }),
        authorizer: new HttpIamAuthorizer(),
        throttle: { rateLimit: 1, burstLimit: 1 },
      });
      return new ApiAccess(stack, 'Access', {
        api,
        appBackendRoleArns: [roleArn],
        operatorRoleArns: [],
      });
    };
    expect(() => build(APP_ROLE)).not.toThrow();
    expect(() => build('arn:aws:iam::210987654321:role/app-backend')).toThrow(
      /not in account 123456789012/,
    );
  });

  it('refuses a value that is not a list of role ARNs, naming the key', () => {
    expect(roleArnsFromContext('operatorRoleArns', undefined)).toEqual([]);
    expect(roleArnsFromContext('operatorRoleArns', [APP_ROLE])).toEqual([APP_ROLE]);
    for (const bad of ['arn:aws:iam::123:user/x', '["not-an-arn"]', 42]) {
      expect(() => roleArnsFromContext('operatorRoleArns', bad)).toThrow(ConfigError);
      expect(() => roleArnsFromContext('operatorRoleArns', bad)).toThrow(/"operatorRoleArns"/);
    }
  });
});
