/**
 * API Gateway HTTP API (payload v2) events for handler tests, built from the real
 * captured event in test/fixtures/aws/apigw-http-v2.powertools.json with the request
 * line, headers and body replaced.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { PENALTY_ROUTES } from '../../functions/commons/routes.ts';
import { loadAwsEvent } from './fixtures.ts';

export interface HttpEventOverrides {
  /** Default 'GET'. */
  method?: string;
  /** Raw path, e.g. '/webhooks/stripe'. Default '/'. */
  path?: string;
  /** Route key as API Gateway matched it. Default `${method} ${path}`; pass '$default' for the catch-all. */
  routeKey?: string;
  /** Path parameters API Gateway extracted for the matched route. */
  pathParameters?: Record<string, string>;
  /** Query string parameters (rawQueryString is derived). */
  queryStringParameters?: Record<string, string>;
  /** Request headers; merged over the fixture's headers (minus its authorization). */
  headers?: Record<string, string>;
  /** Body as given; with `isBase64Encoded` it must already be base64. */
  body?: string;
  isBase64Encoded?: boolean;
}

/** An HTTP API v2 event for `overrides`; content-length is set from the body. */
export function httpApiEvent(overrides: HttpEventOverrides = {}): APIGatewayProxyEventV2 {
  const base = loadAwsEvent('apigw-http-v2.powertools');
  const method = (overrides.method ?? 'GET').toUpperCase();
  const path = overrides.path ?? '/';
  const routeKey = overrides.routeKey ?? `${method} ${path}`;
  const { authorization: _dropped, ...baseHeaders } = base.headers;
  const bodyBytes =
    overrides.body === undefined
      ? 0
      : Buffer.byteLength(overrides.body, overrides.isBase64Encoded ? 'base64' : 'utf8');
  const query = overrides.queryStringParameters;
  const event: APIGatewayProxyEventV2 = {
    ...base,
    routeKey,
    rawPath: path,
    rawQueryString: query ? new URLSearchParams(query).toString() : '',
    headers: { ...baseHeaders, 'content-length': String(bodyBytes), ...overrides.headers },
    requestContext: {
      ...base.requestContext,
      routeKey,
      http: { ...base.requestContext.http, method, path },
      timeEpoch: Date.now(),
    },
    isBase64Encoded: overrides.isBase64Encoded ?? false,
  };
  if (overrides.body !== undefined) event.body = overrides.body;
  if (overrides.pathParameters) event.pathParameters = overrides.pathParameters;
  if (query) event.queryStringParameters = query;
  return event;
}

/**
 * A Stripe webhook POST to /webhooks/stripe carrying `rawBody` and, when given, the
 * `stripe-signature` header. `base64: true` sends it the way API Gateway forwards
 * bodies it treats as binary.
 */
export function stripeWebhookEvent(
  rawBody: string | Uint8Array,
  signature: string | undefined,
  options: { base64?: boolean; headers?: Record<string, string> } = {},
): APIGatewayProxyEventV2 {
  const bytes = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : Buffer.from(rawBody);
  return httpApiEvent({
    method: 'POST',
    path: '/webhooks/stripe',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
      ...(signature !== undefined ? { 'stripe-signature': signature } : {}),
      ...options.headers,
    },
    body: options.base64 ? bytes.toString('base64') : bytes.toString('utf8'),
    isBase64Encoded: options.base64 ?? false,
  });
}

/** `POST /users/{userId}/penalties/settle` as API Gateway hands it to the penalties API. */
export function penaltySettleEvent(userId: string): APIGatewayProxyEventV2 {
  return httpApiEvent({
    method: 'POST',
    path: `/users/${userId}/penalties/settle`,
    routeKey: `POST ${PENALTY_ROUTES.settle}`,
    pathParameters: { userId },
  });
}
