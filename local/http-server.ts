/**
 * The local stand-in for the HTTP API: a node:http server on 127.0.0.1 that turns
 * each request into the API Gateway HTTP API payload v2.0 event the deployed route
 * would deliver, invokes the function like Lambda, and turns its result back into
 * an HTTP response the way API Gateway does.
 *
 * What it reproduces: route matching (most specific route wins, 404 for an unknown
 * path, 405 with `Allow` for a known path and wrong method), the exact body bytes
 * (text bodies as text, anything else base64 with `isBase64Encoded`), API Gateway's
 * 10 MB payload limit (413), per-route throttling (token bucket; 429), v2 response
 * inference (a result without `statusCode` is a 200 JSON body), and 500 when the
 * function fails. Not reproduced: authorizers (IAM/JWT routes are served without
 * auth; the runtime says so at start), CORS, custom domains, stages.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { PrerequisiteError } from './emulators.ts';
import {
  createLocalLog,
  invokeLocally,
  type LambdaHandler,
  LOCAL_ACCOUNT_ID,
  type LocalFunction,
  type LocalLog,
} from './lambda-context.ts';
import type { RouteModel } from './stack-model.ts';

/** API Gateway's maximum request payload. */
export const API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

export type HttpHandler = LambdaHandler<APIGatewayProxyEventV2, unknown>;

export interface HttpRouteBinding {
  method: string;
  /** API Gateway route path: `/users/{userId}/subscription`, `/files/{proxy+}`. */
  path: string;
  authorization?: RouteModel['authorization'];
  throttle?: RouteModel['throttle'];
  fn: LocalFunction;
  handler: HttpHandler;
}

export interface LocalHttpServerOptions {
  routes: readonly HttpRouteBinding[];
  /** Default 0 (a free port). */
  port?: number;
  /** Default 127.0.0.1: the local API is for this machine only. */
  host?: string;
  /** Default 10 MB, API Gateway's limit. */
  maxBodyBytes?: number;
  log?: LocalLog;
  /**
   * Local-only pages (the operations page) tried before the API routes: answers and
   * returns true for its own paths, false for any other, which the routes then serve.
   */
  localPages?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

export interface LocalHttpServer {
  readonly url: string;
  readonly port: number;
  /**
   * Stops accepting connections and waits for requests in progress, at most
   * `graceMs` (default 5 s), then drops what is left.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

const API_ID = 'local';

/** Starts the server; a port already in use is a `PrerequisiteError`. */
export async function startHttpServer(options: LocalHttpServerOptions): Promise<LocalHttpServer> {
  const log = options.log ?? createLocalLog('silent');
  const maxBodyBytes = options.maxBodyBytes ?? API_GATEWAY_MAX_BODY_BYTES;
  const host = options.host ?? '127.0.0.1';
  const routes = options.routes.map(compileRoute);
  const localPages = options.localPages;
  let active = 0;
  let idle: (() => void) | undefined;

  const server = createServer((req, res) => {
    active += 1;
    res.once('close', () => {
      active -= 1;
      if (active === 0) idle?.();
    });
    handleRequest(req, res, routes, maxBodyBytes, log, localPages).catch((error: unknown) => {
      log.error('HTTP request handling failed', error);
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal Server Error' });
      else res.destroy();
    });
  });
  // API Gateway gives up on an integration after 30 s; a slow client should not hold
  // a socket longer than that either.
  server.requestTimeout = 30_000;

  const port = options.port ?? 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new PrerequisiteError(
              `Port ${port} (HTTP API) is already in use. Stop it or set PORT to another port.`,
              { cause: error },
            )
          : new PrerequisiteError(
              `Cannot listen on ${host}:${port} (HTTP API): ${error.code ?? error.message}.`,
              { cause: error },
            ),
      );
    });
    server.listen({ port, host, exclusive: true }, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;

  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`,
    port: bound,
    async close({ graceMs = 5_000 } = {}) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (active > 0) {
        await Promise.race([
          new Promise<void>((resolve) => {
            idle = resolve;
          }),
          new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
        ]);
      }
      server.closeAllConnections();
      await closed;
    },
  };
}

interface CompiledRoute extends HttpRouteBinding {
  routeKey: string;
  pattern: RegExp;
  paramNames: string[];
  /** Higher is more specific: literal segments beat `{param}`, which beats `{proxy+}`. */
  specificity: number[];
  bucket?: TokenBucket;
}

function compileRoute(route: HttpRouteBinding): CompiledRoute {
  const method = route.method.toUpperCase();
  const paramNames: string[] = [];
  const specificity: number[] = [];
  const segments = route.path.split('/').filter(Boolean);
  const parts = segments.map((segment) => {
    const greedy = /^\{(\w+)\+\}$/.exec(segment);
    if (greedy) {
      paramNames.push(greedy[1]!);
      specificity.push(0);
      return '(.+)';
    }
    const param = /^\{(\w+)\}$/.exec(segment);
    if (param) {
      paramNames.push(param[1]!);
      specificity.push(1);
      return '([^/]+)';
    }
    specificity.push(2);
    return escapeRegExp(segment);
  });
  return {
    ...route,
    method,
    routeKey: `${method} ${route.path}`,
    pattern: new RegExp(`^/${parts.join('/')}/?$`),
    paramNames,
    specificity,
    ...(route.throttle ? { bucket: new TokenBucket(route.throttle) } : {}),
  };
}

function compareSpecificity(a: CompiledRoute, b: CompiledRoute): number {
  for (let i = 0; i < Math.max(a.specificity.length, b.specificity.length); i += 1) {
    const diff = (b.specificity[i] ?? -1) - (a.specificity[i] ?? -1);
    if (diff !== 0) return diff;
  }
  return 0;
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  routes: CompiledRoute[],
  maxBodyBytes: number,
  log: LocalLog,
  localPages?: LocalHttpServerOptions['localPages'],
): Promise<void> {
  if (localPages && (await localPages(req, res))) {
    log.debug(`${req.method} ${req.url} -> ${res.statusCode} (local page)`);
    return;
  }
  const started = Date.now();
  const requestId = newRequestId();
  res.setHeader('apigw-requestid', requestId);
  const method = (req.method ?? 'GET').toUpperCase();
  const rawUrl = req.url ?? '/';
  const queryAt = rawUrl.indexOf('?');
  const rawPath = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
  const rawQueryString = queryAt === -1 ? '' : rawUrl.slice(queryAt + 1);

  const pathMatches = routes
    .map((route) => ({ route, match: route.pattern.exec(rawPath) }))
    .filter((m): m is { route: CompiledRoute; match: RegExpExecArray } => m.match !== null);
  const candidates = pathMatches
    .filter(({ route }) => route.method === method || route.method === 'ANY')
    .sort((a, b) => compareSpecificity(a.route, b.route));
  const chosen = candidates[0];
  if (!chosen) {
    req.resume();
    if (pathMatches.length === 0) {
      sendJson(res, 404, { message: 'Not Found' });
    } else {
      const allow = [...new Set(pathMatches.map(({ route }) => route.method))].sort().join(', ');
      sendJson(res, 405, { message: 'Method Not Allowed' }, { allow });
    }
    log.info(`${method} ${rawPath} -> ${res.statusCode} (no route)`);
    return;
  }
  const { route, match } = chosen;

  if (route.bucket && !route.bucket.take()) {
    req.resume();
    sendJson(res, 429, { message: 'Too Many Requests' });
    log.info(`${route.routeKey} -> 429 (route throttle)`);
    return;
  }

  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBodyBytes) {
    refuseTooLarge(req, res);
    log.info(`${route.routeKey} -> 413 (${declared} bytes declared)`);
    return;
  }
  const body = await readBody(req, maxBodyBytes);
  if (body === undefined) {
    refuseTooLarge(req, res);
    log.info(`${route.routeKey} -> 413 (body over ${maxBodyBytes} bytes)`);
    return;
  }

  const event = toApiGatewayEvent(req, route, match, { rawPath, rawQueryString, body, requestId });
  let result: unknown;
  try {
    result = await invokeLocally(route.fn, route.handler, event);
  } catch (error) {
    log.error(`${route.routeKey}: ${route.fn.functionName} failed`, error);
    sendJson(res, 500, { message: 'Internal Server Error' });
    return;
  }
  const response = fromLambdaResult(result);
  if (!response) {
    log.error(`${route.routeKey}: ${route.fn.functionName} returned an invalid response`);
    sendJson(res, 500, { message: 'Internal Server Error' });
    return;
  }
  res.writeHead(response.statusCode, response.headers);
  res.end(response.body);
  log.info(`${route.routeKey} -> ${response.statusCode} in ${Date.now() - started} ms`);
}

/** Reads the raw body bytes exactly; `undefined` once it grows past `maxBytes`. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        done = true;
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (!done) resolve(Buffer.concat(chunks, size));
    });
    req.once('error', (error) => {
      if (!done) reject(error);
    });
  });
}

/** Answers 413 without reading the rest of the body, then drops the connection. */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 413, { message: 'Request Entity Too Large' }, { connection: 'close' });
  res.once('finish', () => {
    // Give the client a moment to read the answer before the socket goes away.
    setTimeout(() => req.socket.destroy(), 100).unref();
  });
}

function sendJson(
  res: ServerResponse,
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(statusCode, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

const TEXT_TYPES = [
  /^text\//,
  /^application\/json\b/,
  /^application\/[\w.+-]+\+json\b/,
  /^application\/xml\b/,
  /^application\/[\w.+-]+\+xml\b/,
  /^application\/x-www-form-urlencoded\b/,
  /^application\/(javascript|ecmascript)\b/,
];
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Text bodies as text; anything else, or text that is not valid UTF-8, as base64. */
function encodeBody(
  body: Buffer,
  contentType: string | undefined,
): { body?: string; isBase64Encoded: boolean } {
  if (body.length === 0) return { isBase64Encoded: false };
  const type = (contentType ?? '').toLowerCase().trim();
  if (TEXT_TYPES.some((pattern) => pattern.test(type))) {
    try {
      return { body: utf8.decode(body), isBase64Encoded: false };
    } catch {
      // Invalid UTF-8 would not survive as a string: pass the bytes instead.
    }
  }
  return { body: body.toString('base64'), isBase64Encoded: true };
}

export function toApiGatewayEvent(
  req: IncomingMessage,
  route: Pick<CompiledRoute, 'routeKey' | 'paramNames'>,
  match: RegExpExecArray,
  request: { rawPath: string; rawQueryString: string; body: Buffer; requestId: string },
): APIGatewayProxyEventV2 {
  const { rawPath, rawQueryString, body, requestId } = request;
  const now = Date.now();
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'cookie') {
      cookies = [
        ...(cookies ?? []),
        ...value
          .split(';')
          .map((c) => c.trim())
          .filter(Boolean),
      ];
      continue;
    }
    // API Gateway joins repeated headers with commas.
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  headers['x-forwarded-for'] ??= sourceIp;
  headers['x-forwarded-port'] ??= String(req.socket.localPort ?? '');
  headers['x-forwarded-proto'] ??= 'http';
  headers['x-amzn-trace-id'] ??=
    `Root=1-${Math.floor(now / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;

  const pathParameters: Record<string, string> = {};
  route.paramNames.forEach((name, index) => {
    pathParameters[name] = safeDecode(match[index + 1] ?? '');
  });
  const queryStringParameters: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    const previous = queryStringParameters[key];
    queryStringParameters[key] = previous === undefined ? value : `${previous},${value}`;
  }
  const domainName = headers.host ?? `127.0.0.1:${req.socket.localPort}`;
  const encoded = encodeBody(body, headers['content-type']);

  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies ? { cookies } : {}),
    headers,
    ...(Object.keys(queryStringParameters).length > 0 ? { queryStringParameters } : {}),
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: API_ID,
      domainName,
      domainPrefix: domainName.split('.')[0]!.split(':')[0]!,
      http: {
        method: (req.method ?? 'GET').toUpperCase(),
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: route.routeKey,
      stage: '$default',
      time: formatClf(new Date(now)),
      timeEpoch: now,
    },
    ...(route.paramNames.length > 0 ? { pathParameters } : {}),
    ...(encoded.body !== undefined ? { body: encoded.body } : {}),
    isBase64Encoded: encoded.isBase64Encoded,
  };
}

interface HttpResult {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * API Gateway's v2 response rules: a result with `statusCode` is used as given
 * (`cookies` become `set-cookie`, a base64 body is decoded); any other JSON value
 * becomes a 200 `application/json` body. `undefined` means the result is invalid.
 */
export function fromLambdaResult(result: unknown): HttpResult | undefined {
  if (
    result === null ||
    typeof result !== 'object' ||
    !('statusCode' in result) ||
    (result as { statusCode?: unknown }).statusCode === undefined
  ) {
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(body),
    };
  }
  const structured = result as APIGatewayProxyStructuredResultV2;
  const statusCode = Number(structured.statusCode);
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) return undefined;
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(structured.headers ?? {})) {
    headers[name.toLowerCase()] = String(value);
  }
  if (structured.cookies?.length) headers['set-cookie'] = structured.cookies;
  const body =
    structured.body === undefined || structured.body === null
      ? Buffer.alloc(0)
      : Buffer.from(structured.body, structured.isBase64Encoded ? 'base64' : 'utf8');
  headers['content-length'] = String(body.length);
  return { statusCode, headers, body };
}

/**
 * API Gateway's route throttle: a bucket of `burstLimit` tokens refilled at
 * `rateLimit` per second; a request without a token is answered 429.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(
    limits: { rateLimit: number; burstLimit: number },
    now: () => number = () => performance.now(),
  ) {
    this.rate = Math.max(0, limits.rateLimit);
    this.burst = Math.max(0, limits.burstLimit);
    this.tokens = this.burst;
    this.now = now;
    this.last = now();
  }

  take(): boolean {
    const at = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((at - this.last) / 1000) * this.rate);
    this.last = at;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

function newRequestId(): string {
  // The shape API Gateway uses, e.g. "ZhNHJhhLjoEEPiw=".
  return randomBytes(10).toString('base64');
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `17/Jun/2024:15:52:39 +0000`, the format of `requestContext.time`. */
function formatClf(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}
