/**
 * Who may call which route (issues 14.6 and 15.4): every route but the Stripe webhook is
 * IAM-authorised; the app backend's policy allows exactly the user routes, the operators'
 * exactly the admin and report routes, each attached to the roles the config names.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, roleArnsFromContext } from '../../lib/config.ts';
import { resources, synthTemplates } from './synth.ts';

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

  it('refuses a value that is not a list of role ARNs, naming the key', () => {
    expect(roleArnsFromContext('operatorRoleArns', undefined)).toEqual([]);
    expect(roleArnsFromContext('operatorRoleArns', [APP_ROLE])).toEqual([APP_ROLE]);
    for (const bad of ['arn:aws:iam::123:user/x', '["not-an-arn"]', 42]) {
      expect(() => roleArnsFromContext('operatorRoleArns', bad)).toThrow(ConfigError);
      expect(() => roleArnsFromContext('operatorRoleArns', bad)).toThrow(/"operatorRoleArns"/);
    }
  });
});
