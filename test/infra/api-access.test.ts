/**
 * Who may call which route (issues 14.6 and 15.4): every route but the Stripe webhook is
 * IAM-authorised; the app backend's policy allows exactly the user routes, the operators'
 * exactly the admin and report routes, each attached to the roles the config names.
 */
import { App, Stack } from 'aws-cdk-lib';
import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/commons/env-names.ts';
import { ApiAccess } from '../../lib/api-access.ts';
import { BillingHttpApi } from '../../lib/billing-http-api.ts';
import { ConfigError, readBillingConfig, roleArnsFromContext } from '../../lib/config.ts';
import { tempOutdir } from '../helpers/temp-outdir.ts';
import { ENTRY, envOf, functionByEntry, logicalIdOf, resources, synthTemplates } from './synth.ts';

const APP_ROLE = 'arn:aws:iam::123456789012:role/app-backend';
const OPERATOR_ROLE = 'arn:aws:iam::123456789012:role/ops/oncall';

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

  it('attaches the policies to the configured roles only', () => {
    expect(policies().app.roles).toBeUndefined();
    const { app, operators } = policies({
      appBackendRoleArns: JSON.stringify([APP_ROLE]),
      operatorRoleArns: OPERATOR_ROLE,
    });
    expect(app.roles).toEqual(['app-backend']);
    expect(operators.roles).toEqual(['oncall']);
  });

  it('names the operator roles to exactly the functions behind operator routes, which check the caller too', () => {
    const withRoles = synthTemplates({ operatorRoleArns: OPERATOR_ROLE });
    const named = Object.values(ENTRY).filter(
      (entry) => envOf(functionByEntry(withRoles.service, entry)[1])[ENV.operatorRoleArns],
    );
    // The admin functions and the payment reads (the /reports/ routes), no other.
    expect(named.sort()).toEqual([ENTRY.creditAdmin, ENTRY.paymentRead, ENTRY.penaltyAdmin].sort());
    for (const entry of named) {
      const value = envOf(functionByEntry(withRoles.service, entry)[1])[ENV.operatorRoleArns];
      expect(JSON.parse(String(value)), entry).toEqual([OPERATOR_ROLE]);
    }
    // No roles named: IAM alone decides, and no function carries the variable.
    const without = synthTemplates();
    for (const entry of Object.values(ENTRY)) {
      expect(envOf(functionByEntry(without.service, entry)[1])[ENV.operatorRoleArns], entry).toBe(
        undefined,
      );
    }
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
