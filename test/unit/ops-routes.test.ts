/**
 * The `/ops` routes on the local HTTP server: the page, its assets (uPlot from
 * node_modules, no CDN), the figures JSON, 404/405 under /ops; and every other path
 * still goes to the API routes exactly as before (404, 405 with Allow, the handler).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalHttpServer, startHttpServer } from '../../local/http-server.ts';
import { createOpsRoutes, OPS_ASSETS } from '../../local/ops/ops-routes.ts';

describe('/ops routes', () => {
  let server: LocalHttpServer;
  let figuresCalls = 0;
  let apiCalls = 0;

  beforeAll(async () => {
    server = await startHttpServer({
      routes: [
        {
          method: 'POST',
          path: '/webhooks/stripe',
          fn: { functionName: 'Webhook', timeoutSeconds: 5 },
          handler: async () => {
            apiCalls += 1;
            return { statusCode: 200, body: '{"received":true}' };
          },
        },
        {
          method: 'GET',
          path: '/users/{userId}/subscription',
          fn: { functionName: 'Read', timeoutSeconds: 5 },
          handler: async (event) => ({ userId: event.pathParameters?.userId }),
        },
      ],
      localPages: createOpsRoutes({
        figures: () => {
          figuresCalls += 1;
          return { figures: [], call: figuresCalls };
        },
        metrics: () => {
          throw new Error('the tap failed');
        },
        log: { error: () => {} },
      }),
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const get = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);

  it('serves the page, which loads only its own assets', async () => {
    for (const path of ['/ops', '/ops/', '/ops?refresh=500']) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      const html = await res.text();
      expect(html).toContain('<title>Billing suite · operations (local)</title>');
      const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      for (const source of sources) {
        expect(source.startsWith('/ops') || source.startsWith('data:'), source).toBe(true);
      }
      expect(sources).toContain('/ops/assets/uPlot.iife.min.js');
    }
  });

  it('serves every asset with its type, uPlot from node_modules', async () => {
    for (const path of Object.keys(OPS_ASSETS)) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toMatch(
        path.endsWith('.js') ? /^text\/javascript/ : /^text\/css/,
      );
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    const uplot = await (await get('/ops/assets/uPlot.iife.min.js')).text();
    expect(uplot).toContain('uPlot');
  });

  it('answers the figures as JSON, built afresh on each request', async () => {
    const first = await get('/ops/figures');
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('application/json');
    expect(first.headers.get('cache-control')).toBe('no-store');
    const a = (await first.json()) as { call: number };
    const b = (await (await get('/ops/figures?x=1')).json()) as { call: number };
    expect(b.call).toBe(a.call + 1);
  });

  it('answers HEAD like GET without a body, other methods 405, unknown /ops paths 404', async () => {
    const head = await get('/ops/figures', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await head.text()).toBe('');

    const post = await get('/ops', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toEqual({
      error: { code: 'method_not_allowed', message: 'Method not allowed; use GET, HEAD.' },
    });

    for (const path of [
      '/ops/assets/..%2F..%2Fpackage.json',
      '/ops/assets/uPlot.esm.js',
      '/ops/x',
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({
        error: { code: 'not_found', message: expect.stringContaining('No such page') },
      });
    }
  });

  it('answers a page it cannot build 500 with the suite-wide error body, without the cause', async () => {
    const res = await get('/ops/metrics');
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({
      error: { code: 'internal_error', message: 'Cannot serve /ops/metrics.' },
    });
  });

  it('leaves every other path to the API routes, as before', async () => {
    const unknown = await get('/opsx');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ message: 'Not Found' });
    const wrong = await get('/webhooks/stripe');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    const posted = await get('/webhooks/stripe', { method: 'POST', body: '{}' });
    expect(posted.status).toBe(200);
    expect(apiCalls).toBe(1);
    expect(await (await get('/users/u1/subscription')).json()).toEqual({ userId: 'u1' });
  });
});
