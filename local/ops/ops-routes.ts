/**
 * The local-only routes of the operations page, served by the local HTTP server
 * before the API routes (they are not in the CDK template):
 *
 * - `GET /ops`            the page (HTML): one live plot per figure;
 * - `GET /ops/figures`    the same figures as JSON (figures.ts documents the shape);
 * - `GET /ops/metrics`    every metric per UTC day, by dimensions (collector.ts,
 *                         `DailyMetricsDocument`): what `npm run ops -- stats` reads;
 * - `GET /ops/assets/…`   the page's script and styles, and uPlot's from node_modules:
 *                         nothing is fetched from the network at run time.
 *
 * `HEAD` is answered like `GET` without a body; another method on one of these paths
 * is a 405 with `Allow`, an unknown path under `/ops/` a 404, in the API's JSON shape.
 * Any other path is left to the API routes.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalLog } from '../lambda-context.ts';

const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'page');
const require = createRequire(import.meta.url);

const TYPES = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
} as const;

interface Asset {
  file: () => string;
  type: string;
}

/** The files the page may load, by URL path; nothing else is read from disk. */
export const OPS_ASSETS: Readonly<Record<string, Asset>> = {
  '/ops/assets/uPlot.iife.min.js': {
    file: () => require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: TYPES.js,
  },
  '/ops/assets/uPlot.min.css': {
    file: () => require.resolve('uplot/dist/uPlot.min.css'),
    type: TYPES.css,
  },
  '/ops/assets/ops.js': { file: () => join(PAGE_DIR, 'ops.js'), type: TYPES.js },
  '/ops/assets/ops.css': { file: () => join(PAGE_DIR, 'ops.css'), type: TYPES.css },
};

/**
 * The page may load only what this server serves: a CSP violation (a CDN script, an
 * inline script) would show as a console error, which the browser test fails on.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Answers the request and returns true when it is an `/ops` path; false leaves it to the API. */
export type LocalPageHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export function createOpsRoutes(options: {
  figures: () => unknown;
  /** `GET /ops/metrics`; without it that path is a 404. */
  metrics?: () => unknown;
  log?: Pick<LocalLog, 'error'>;
}): LocalPageHandler {
  const cache = new Map<string, Buffer>();
  const load = async (key: string, file: string): Promise<Buffer> => {
    let body = cache.get(key);
    if (!body) {
      body = await readFile(file);
      cache.set(key, body);
    }
    return body;
  };

  return async (req, res) => {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (path !== '/ops' && !path.startsWith('/ops/')) return false;
    req.resume();

    const page = path === '/ops' || path === '/ops/';
    const document = new Map([
      ['/ops/figures', options.figures],
      ['/ops/metrics', options.metrics],
    ]).get(path);
    const known = page || document !== undefined || Object.hasOwn(OPS_ASSETS, path);
    if (!known) {
      send(res, req, 404, TYPES.json, errorBody('not_found', `No such page: ${path}.`));
      return true;
    }
    const method = (req.method ?? 'GET').toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') {
      send(
        res,
        req,
        405,
        TYPES.json,
        errorBody('method_not_allowed', 'Method not allowed; use GET, HEAD.'),
        { allow: 'GET, HEAD' },
      );
      return true;
    }

    try {
      if (page) {
        const body = await load('page', join(PAGE_DIR, 'index.html'));
        send(res, req, 200, TYPES.html, body, {
          'content-security-policy': CONTENT_SECURITY_POLICY,
          'cache-control': 'no-cache',
        });
      } else if (document) {
        const body = Buffer.from(JSON.stringify(document()));
        send(res, req, 200, TYPES.json, body, { 'cache-control': 'no-store' });
      } else {
        const asset = OPS_ASSETS[path]!;
        const body = await load(path, asset.file());
        send(res, req, 200, asset.type, body, { 'cache-control': 'no-cache' });
      }
    } catch (error) {
      options.log?.error(`GET ${path} failed`, error);
      send(res, req, 500, TYPES.json, errorBody('internal_error', `Cannot serve ${path}.`));
    }
    return true;
  };
}

/** The suite-wide error body (toHttpErrorResponse in functions/commons/http.ts). */
function errorBody(code: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ error: { code, message } }));
}

function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  type: string,
  body: Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(body.length),
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(req.method?.toUpperCase() === 'HEAD' ? undefined : body);
}
