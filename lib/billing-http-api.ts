import { Lazy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnStage,
  HttpApi,
  type HttpMethod,
  HttpNoneAuthorizer,
  type HttpRoute,
  HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
  type ThrottleSettings,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** Per-route throttle; both limits are required so no route is accidentally unlimited. */
export interface RouteThrottle {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

export interface BillingRouteOptions {
  readonly method: HttpMethod;
  /** e.g. `/users/{userId}/subscription` */
  readonly path: string;
  readonly handler: IFunction;
  /** @default none (the route is public) */
  readonly authorizer?: IHttpRouteAuthorizer;
  readonly throttle: RouteThrottle;
}

export interface BillingHttpApiProps {
  /**
   * Stage-wide throttle for anything without a route setting.
   * @default 50 requests/s, burst 100
   */
  readonly defaultThrottle?: RouteThrottle;
}

/**
 * The HTTP API of the suite with its `$default` stage (auto-deploy, JSON access logs
 * kept one month). Routes are added through `addRoute`, which also records their
 * throttle in the stage's route settings: the L2 only offers a stage-wide throttle.
 */
export class BillingHttpApi extends Construct {
  public readonly httpApi: HttpApi;
  public readonly stage: HttpStage;
  public readonly accessLogs: LogGroup;
  private readonly routeSettings: Record<string, Record<string, number>> = {};
  /** Every route added, with whether it is IAM-authorised (for the invoke policies). */
  public readonly routes: { method: HttpMethod; path: string; iam: boolean; handler: IFunction }[] =
    [];

  constructor(scope: Construct, id: string, props: BillingHttpApiProps = {}) {
    super(scope, id);
    const defaultThrottle = props.defaultThrottle ?? { rateLimit: 50, burstLimit: 100 };

    this.httpApi = new HttpApi(this, 'Api', {
      description: 'Billing suite: Stripe webhooks, subscription and payment read APIs',
      createDefaultStage: false,
    });

    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: defaultThrottle satisfies ThrottleSettings,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTimeEpoch',
            ip: '$context.identity.sourceIp',
            routeKey: '$context.routeKey',
            status: '$context.status',
            protocol: '$context.protocol',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
            error: '$context.error.message',
          }),
        ),
      },
    });

    const cfnStage = this.stage.node.defaultChild as CfnStage;
    cfnStage.routeSettings = Lazy.any({
      produce: () => (Object.keys(this.routeSettings).length > 0 ? this.routeSettings : undefined),
    });
  }

  /** Base URL of the stage, ending in `/`. */
  get url(): string {
    return this.stage.url;
  }

  /** Adds one method on one path, integrated with a Lambda function (payload v2), throttled. */
  addRoute(id: string, options: BillingRouteOptions): HttpRoute {
    const [route] = this.httpApi.addRoutes({
      path: options.path,
      methods: [options.method],
      integration: new HttpLambdaIntegration(`${id}Integration`, options.handler),
      authorizer: options.authorizer ?? new HttpNoneAuthorizer(),
    });
    if (!route) throw new Error(`addRoute(${id}): HttpApi.addRoutes returned no route`);
    this.routes.push({
      method: options.method,
      path: options.path,
      iam: options.authorizer instanceof HttpIamAuthorizer,
      handler: options.handler,
    });
    this.routeSettings[`${options.method} ${options.path}`] = {
      ThrottlingRateLimit: options.throttle.rateLimit,
      ThrottlingBurstLimit: options.throttle.burstLimit,
    };
    // A route setting naming a route that does not exist yet fails the stage update.
    this.stage.node.addDependency(route);
    return route;
  }
}
