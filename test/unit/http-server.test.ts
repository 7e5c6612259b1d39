import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrerequisiteError } from '../../local/emulators.ts';
import {
  fromLambdaResult,
  type HttpHandler,
  type HttpRouteBinding,
  type LocalHttpServer,
  startHttpServer,
  TokenBucket,
} from '../../local/http-server.ts';

const fn = (name: string, timeoutSeconds = 5) => ({ functionName: name, timeoutSeconds });

/** Records every event and answers what `respond` says (default: echo a 200). */
function recorder(
  respond: (event: APIGatewayProxyEventV2) => unknown = () => ({ statusCode: 200, body: 'ok' }),
) {
  const events: APIGatewayProxyEventV2[] = [];
  const handler: HttpHandler = async (event) => {
    events.push(event);
    return respond(event);
  };
  return { events, handler };
}

describe('local HTTP API', () => {
  const webhook = recorder();
  const read = recorder((event) => ({
    statusCode: 200,
    headers: { 'Content-Type': 'application/json', 'X-Custom': 7 },
    body: JSON.stringify({ userId: event.pathParameters?.userId }),
    cookies: ['a=1; Path=/', 'b=2'],
  }));
  const me = recorder(() => ({ statusCode: 200, body: 'me' }));
  const binary = recorder(() => ({
    statusCode: 201,
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.from([0, 1, 2, 255]).toString('base64'),
    isBase64Encoded: true,
  }));
  const plain = recorder(() => ({ hello: 'world' }));
  const failing = recorder(() => {
    throw new Error('kaboom');
  });
  const throttled = recorder();
  const slow: HttpHandler = () =>
    new Promise((resolve) => setTimeout(() => resolve({ statusCode: 200 }), 1_500));
  let server: LocalHttpServer;

  beforeAll(async () => {
    const routes: HttpRouteBinding[] = [
      { method: 'POST', path: '/webhooks/stripe', fn: fn('Webhook'), handler: webhook.handler },
      {
        method: 'GET',
        path: '/users/{userId}/subscription',
        fn: fn('Read'),
        handler: read.handler,
      },
      { method: 'GET', path: '/users/me/subscription', fn: fn('Me'), handler: me.handler },
      { method: 'GET', path: '/binary', fn: fn('Binary'), handler: binary.handler },
      { method: 'GET', path: '/plain', fn: fn('Plain'), handler: plain.handler },
      { method: 'GET', path: '/fail', fn: fn('Fail'), handler: failing.handler },
      { method: 'GET', path: '/slow', fn: fn('Slow', 1), handler: slow },
      {
        method: 'POST',
        path: '/throttled',
        fn: fn('Throttled'),
        handler: throttled.handler,
        throttle: { rateLimit: 0.001, burstLimit: 2 },
      },
    ];
    server = await startHttpServer({ routes, port: 0, maxBodyBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('delivers a payload v2.0 event with the raw body, lower-cased headers and request context', async () => {
    const body = '{"id":"evt_1","name":"Zoë ✓"}';
    const res = await fetch(`${server.url}/webhooks/stripe?x=1&x=2&y=%20z`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'Stripe-Signature': 't=1,v1=abc',
        Cookie: 'c1=v1; c2=v2',
      },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');

    const event = webhook.events.at(-1)!;
    const reference = JSON.parse(
      readFileSync(
        new URL('../fixtures/aws/apigw-http-v2.powertools.json', import.meta.url),
        'utf8',
      ),
    );
    for (const key of Object.keys(reference)) expect(event).toHaveProperty(key);
    for (const key of Object.keys(reference.requestContext)) {
      if (key !== 'authorizer') expect(event.requestContext).toHaveProperty(key);
    }
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'POST /webhooks/stripe',
      rawPath: '/webhooks/stripe',
      rawQueryString: 'x=1&x=2&y=%20z',
      queryStringParameters: { x: '1,2', y: ' z' },
      cookies: ['c1=v1', 'c2=v2'],
      body,
      isBase64Encoded: false,
      requestContext: {
        http: { method: 'POST', path: '/webhooks/stripe', sourceIp: '127.0.0.1' },
        routeKey: 'POST /webhooks/stripe',
        stage: '$default',
      },
    });
    expect(event.headers['stripe-signature']).toBe('t=1,v1=abc');
    expect(event.headers['content-type']).toBe('application/json');
    expect(event.headers.cookie).toBeUndefined();
    expect(Object.keys(event.headers).every((name) => name === name.toLowerCase())).toBe(true);
    expect(event.pathParameters).toBeUndefined();
    expect(Math.abs(event.requestContext.timeEpoch - Date.now())).toBeLessThan(5_000);
    expect(event.requestContext.time).toMatch(/^\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    expect(res.headers.get('apigw-requestid')).toBe(event.requestContext.requestId);
  });

  it('base64-encodes bodies that are not text, keeping every byte', async () => {
    const bytes = Buffer.from([0x7b, 0xff, 0x00, 0xfe, 0x22]);
    await fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    const event = webhook.events.at(-1)!;
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body!, 'base64').equals(bytes)).toBe(true);
  });

  it('base64-encodes a "text" body that is not valid UTF-8 rather than mangling it', async () => {
    const bytes = Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]);
    await fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bytes,
    });
    const event = webhook.events.at(-1)!;
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body!, 'base64').equals(bytes)).toBe(true);
  });

  it('passes path parameters decoded and prefers the most specific route', async () => {
    const res = await fetch(`${server.url}/users/user%20one/subscription`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ userId: 'user one' });
    expect(read.events.at(-1)).toMatchObject({
      routeKey: 'GET /users/{userId}/subscription',
      rawPath: '/users/user%20one/subscription',
      pathParameters: { userId: 'user one' },
    });
    expect(read.events.at(-1)!.body).toBeUndefined();

    const mine = await fetch(`${server.url}/users/me/subscription`);
    expect(await mine.text()).toBe('me');
  });

  it('maps the structured result back: status, headers, cookies', async () => {
    const res = await fetch(`${server.url}/users/u1/subscription`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-custom')).toBe('7');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2']);
  });

  it('decodes a base64 response body', async () => {
    const res = await fetch(`${server.url}/binary`);
    expect(res.status).toBe(201);
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
  });

  it('turns a result without statusCode into a 200 JSON body, as API Gateway infers', async () => {
    const res = await fetch(`${server.url}/plain`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ hello: 'world' });
  });

  it('answers 500 with a generic message when the function throws or times out', async () => {
    const res = await fetch(`${server.url}/fail`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ message: 'Internal Server Error' });
    const started = Date.now();
    const timedOut = await fetch(`${server.url}/slow`);
    expect(timedOut.status).toBe(500);
    expect(Date.now() - started).toBeLessThan(1_450);
  });

  it('answers 404 JSON for an unknown path and 405 with Allow for a wrong method', async () => {
    const notFound = await fetch(`${server.url}/nope`);
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({ message: 'Not Found' });

    const wrongMethod = await fetch(`${server.url}/webhooks/stripe`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(await wrongMethod.json()).toEqual({ message: 'Method Not Allowed' });

    const del = await fetch(`${server.url}/users/u1/subscription`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET');
  });

  it('refuses a body over the limit with 413 without invoking the function', async () => {
    const before = webhook.events.length;
    const res = await fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(64 * 1024 + 1),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ message: 'Request Entity Too Large' });

    const exact = await fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(64 * 1024),
    });
    expect(exact.status).toBe(200);
    expect(webhook.events.length).toBe(before + 1);
  });

  it('refuses a declared oversize body at once, before it is sent', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(11 * 1024 * 1024) },
      });
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
  });

  it('refuses a chunked body once it grows past the limit', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      req.on('error', reject);
      req.write('y'.repeat(40 * 1024));
      req.write('y'.repeat(40 * 1024));
    });
    expect(status).toBe(413);
  });

  it('throttles a route with a token bucket (429 like API Gateway)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      statuses.push((await fetch(`${server.url}/throttled`, { method: 'POST' })).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    const res = await fetch(`${server.url}/throttled`, { method: 'POST' });
    expect(await res.json()).toEqual({ message: 'Too Many Requests' });
    expect(throttled.events.length).toBe(2);
  });

  it('fails with a one-line PrerequisiteError when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const attempt = startHttpServer({ routes: [], port });
      await expect(attempt).rejects.toBeInstanceOf(PrerequisiteError);
      await expect(attempt).rejects.toThrow(
        `Port ${port} (HTTP API) is already in use. Stop it or set PORT to another port.`,
      );
    } finally {
      blocker.close();
    }
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then refills at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket({ rateLimit: 2, burstLimit: 3 }, () => now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    now = 499;
    expect(bucket.take()).toBe(false);
    now = 501;
    expect(bucket.take()).toBe(true);
    now = 100_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });
});

describe('fromLambdaResult', () => {
  it('treats a plain string as a JSON body and rejects an invalid status', () => {
    expect(fromLambdaResult('hi')).toMatchObject({ statusCode: 200, body: Buffer.from('hi') });
    expect(fromLambdaResult({ statusCode: 'abc' })).toBeUndefined();
    expect(fromLambdaResult({ statusCode: 204 })).toMatchObject({
      statusCode: 204,
      body: Buffer.alloc(0),
    });
  });
});
