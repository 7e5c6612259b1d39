/**
 * The operations page of the local runtime, end to end: the figures as JSON, and the
 * page itself in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): it loads with no console or page error and nothing from outside
 * the runtime, draws one plot per figure, and its plots move when signed webhooks,
 * a credit refresh and a penalty assessment go through the runtime.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billingKeys } from '../../functions/adapters/dynamodb/billing-table-keys.ts';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import { NEVER_REFRESHED, refreshSlotOf } from '../../functions/core/credits/refresh-slot.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  MAX_HABITS_PER_USER,
  withSettings,
} from '../../functions/core/penalties/habits.ts';
import { localDynamoDbClient } from '../../local/emulators.ts';
import { describeLocalRuntime } from '../../local/operations/target.ts';
import { FIGURE_IDS, type Figure, type FiguresDocument } from '../../local/ops/figures.ts';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.ts';
import { buildDefaultSample } from '../../local/send-sample.ts';
import { eventually, postWebhook, uniqueUserId, waitForSubscription } from './e2e-helpers.ts';

const DAY = 86_400_000;

/** CHROMIUM_PATH, else Debian's /usr/bin/chromium, else `chromium` on PATH. */
function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'];
  for (const path of candidates) if (path && existsSync(path)) return path;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (found) return found;
    } catch {
      // not on PATH
    }
  }
  return undefined;
}

const chromiumPath = findChromium();
if (!chromiumPath) {
  console.warn(
    'ops-page browser test SKIPPED: no Chromium (set CHROMIUM_PATH, or `apt-get install chromium`; .ci/run installs it).',
  );
}

/** Sums of each series of a figure, by label (null values count 0). */
function sums(figure: Pick<Figure, 'series'>): Record<string, number> {
  return Object.fromEntries(
    figure.series.map((s) => [s.label, s.values.reduce<number>((a, v) => a + (v ?? 0), 0)]),
  );
}

describe('operations page', () => {
  let runtime: LocalRuntime;
  let dynamo: DynamoDBClient;

  beforeAll(async () => {
    runtime = await startLocalRuntime({ port: 0, inMemory: true, logLevel: 'warn' });
    dynamo = localDynamoDbClient(runtime.dynamoEndpoint);
  });
  afterAll(async () => {
    dynamo?.destroy();
    await runtime?.stop();
  });

  const figures = async (): Promise<FiguresDocument> => {
    const res = await fetch(`${runtime.apiUrl}/ops/figures`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    return (await res.json()) as FiguresDocument;
  };
  const figure = (doc: FiguresDocument, id: string) => doc.figures.find((f) => f.id === id)!;
  const totals = (doc: FiguresDocument, id: string) =>
    Object.fromEntries(figure(doc, id).series.map((s) => [s.label, s.total ?? s.latest]));

  /** Two signed events for a new user (checkout + subscription created) and one unsigned POST. */
  async function sendWebhooks(tier = 'silver'): Promise<string> {
    const userId = uniqueUserId('ops');
    for (const event of buildDefaultSample({ userId, tier })) {
      expect((await postWebhook(runtime, event)).status).toBe(200);
    }
    const unsigned = await fetch(`${runtime.apiUrl}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"id":"evt_unsigned"}',
    });
    expect(unsigned.status).toBe(400);
    await waitForSubscription(runtime, userId, (a) => a.tier === tier);
    return userId;
  }

  it('serves the figures as JSON in the documented shape, and they count what was sent', async () => {
    expect(runtime.opsUrl).toBe(`${runtime.apiUrl}/ops`);
    const before = await figures();
    expect(Date.parse(before.generatedAt)).toBeGreaterThan(0);
    expect(Date.parse(before.startedAt)).toBeLessThanOrEqual(Date.parse(before.generatedAt));
    expect(before.windowSeconds).toBe(900);
    expect(before.refreshMs).toBe(2000);
    expect(before.figures.map((f) => f.id)).toEqual([...FIGURE_IDS]);
    for (const f of before.figures) {
      expect(f).toMatchObject({
        title: expect.any(String),
        unit: expect.any(String),
        description: expect.any(String),
      });
      expect(['rate', 'stat', 'cumulative', 'gauge', 'slots']).toContain(f.kind);
      for (const s of f.series) expect(s.values).toHaveLength(f.x.length);
      if (f.xAxis === 'time' && f.kind !== 'gauge') {
        // One x per second, since the runtime started (the window is 15 minutes at most).
        expect(f.x.at(-1)).toBe(Math.floor(Date.parse(before.generatedAt) / 1000));
        expect(f.x[0]).toBe(Math.floor(Date.parse(before.startedAt) / 1000));
        expect(f.x.at(-1)! - f.x[0]!).toBe(f.x.length - 1);
      }
    }
    expect(figure(before, 'creditSlots').x).toEqual(Array.from({ length: 288 }, (_, i) => i));
    // Depths: the three consumed queues, and every DLQ (three consumers', two schedules').
    expect(figure(before, 'queues').series.map((s) => s.label)).toEqual([
      'subscriptions-events',
      'payments-events',
      'credit-refresh',
    ]);
    expect(figure(before, 'dlqs').series).toHaveLength(5);

    await sendWebhooks();
    const after = await eventually(
      async () => {
        const doc = await figures();
        return Number(totals(doc, 'events').applied) >= Number(totals(before, 'events').applied) + 2
          ? doc
          : undefined;
      },
      20_000,
      'the applied events to be counted',
    );
    expect(totals(after, 'webhooks')).toMatchObject({
      received: Number(totals(before, 'webhooks').received) + 3,
      rejected: Number(totals(before, 'webhooks').rejected) + 1,
      queued: Number(totals(before, 'webhooks').queued) + 2,
    });
    // Per-second values add up to the totals (everything happened inside the window).
    expect(sums(figure(after, 'webhooks')).received).toBe(totals(after, 'webhooks').received);
    expect(figure(after, 'lag').series[1]!.values.some((v) => v !== null && v >= 0)).toBe(true);
    expect(figure(after, 'queues').x.length).toBeGreaterThan(0);
  });

  it('keeps the API paths as they were: 404 and 405 outside /ops, 404/405 inside it', async () => {
    const unknown = await fetch(`${runtime.apiUrl}/opsx`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ message: 'Not Found' });
    const wrongMethod = await fetch(`${runtime.apiUrl}/webhooks/stripe`);
    expect(wrongMethod.status).toBe(405);
    expect((await fetch(`${runtime.apiUrl}/ops/nothing-here`)).status).toBe(404);
    const post = await fetch(`${runtime.apiUrl}/ops/figures`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${runtime.apiUrl}/ops`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(head.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  describe(`in headless Chromium (${chromiumPath ?? 'not found: skipped'})`, () => {
    let browser: Browser;
    let page: Page;
    const problems: string[] = [];
    const foreignRequests: string[] = [];

    beforeAll(async () => {
      if (!chromiumPath) return;
      browser = await chromium.launch({ executablePath: chromiumPath!, headless: true });
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') {
          problems.push(`console.${message.type()}: ${message.text()}`);
        }
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('requestfailed', (request) =>
        problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
      );
      page.on('request', (request) => {
        const url = request.url();
        if (!url.startsWith(runtime.apiUrl) && !url.startsWith('data:')) foreignRequests.push(url);
      });
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
    });

    /** What the page plots now: per figure, the sum of each series over the plotted data. */
    const plotted = () =>
      page.evaluate(() => {
        const state = (globalThis as unknown as { opsPage: OpsPageState }).opsPage;
        return {
          updates: state.updates,
          plots: Object.fromEntries(
            Object.entries(state.plots).map(([id, plot]) => [
              id,
              {
                labels: plot.series.slice(1).map((s) => s.label),
                sums: plot.data
                  .slice(1)
                  .map((values) => values.reduce<number>((a, v) => a + (v ?? 0), 0)),
                points: plot.data[0]?.length ?? 0,
              },
            ]),
          ),
        };
      });
    const waitForUpdate = async () => {
      const seen = await page.evaluate(
        () => (globalThis as unknown as { opsPage: OpsPageState }).opsPage.updates,
      );
      await page.waitForFunction(
        (n) => (globalThis as unknown as { opsPage: OpsPageState }).opsPage.updates > n,
        seen,
        { timeout: 10_000 },
      );
    };

    it.skipIf(!chromiumPath)(
      'loads with one plot per figure, titles and units, and no console errors',
      async () => {
        const response = await page.goto(`${runtime.opsUrl}?refresh=500`);
        expect(response?.status()).toBe(200);
        await page.waitForFunction(
          () => ((globalThis as unknown as { opsPage?: OpsPageState }).opsPage?.updates ?? 0) >= 2,
          undefined,
          { timeout: 15_000 },
        );
        expect(await page.locator('section.card').count()).toBe(FIGURE_IDS.length);
        expect(await page.locator('.uplot canvas').count()).toBe(FIGURE_IDS.length);
        const headings = await page.locator('section.card h2').allTextContents();
        expect(headings[0]).toBe('Webhooks (per second)');
        expect(headings).toContain('Processing lag (ms)');
        expect(await page.locator('#status').textContent()).toMatch(/^Last updated /);
        const now = await plotted();
        expect(Object.keys(now.plots).sort()).toEqual([...FIGURE_IDS].sort());
        expect(now.plots.webhooks!.labels).toEqual(['received', 'rejected', 'queued']);
        expect(now.plots.webhooks!.points).toBeGreaterThan(1);
        expect(now.plots.creditSlots!.points).toBe(288);
        expect(problems).toEqual([]);
        expect(foreignRequests).toEqual([]);
      },
    );

    it.skipIf(!chromiumPath)(
      'plots change after webhooks, a credit refresh and a penalty assessment',
      async () => {
        await waitForUpdate();
        const before = await plotted();

        const userId = await sendWebhooks('gold');

        // A user whose profile predates first refreshes (the webhooks' user got its first
        // refresh with its profile), refreshed now: the refresh lands in the current slot.
        const today = new Date().toISOString().slice(0, 10);
        const waiting = `${userId}-waiting`;
        await DynamoDBDocumentClient.from(dynamo).send(
          new PutCommand({
            TableName: describeLocalRuntime(runtime).tables.billing,
            Item: {
              ...billingKeys.profile(waiting),
              userId: waiting,
              tier: 'gold',
              refreshSlot: refreshSlotOf(waiting),
              creditPeriod: NEVER_REFRESHED,
              credits: 0,
            },
          }),
        );
        const refresh = await fetch(`${runtime.apiUrl}/admin/credits/refresh`, {
          method: 'POST',
          body: JSON.stringify({ slots: [refreshSlotOf(waiting)], date: today }),
        });
        expect(refresh.status).toBe(200);

        // A habit created days ago, missed yesterday: one penalty.
        const penaltiesTable = Object.values(runtime.tableNames).find((n) =>
          n.endsWith('-penalties'),
        );
        const store = new DynamoDbPenaltyStore({
          client: dynamo,
          penaltiesTableName: penaltiesTable!,
        });
        const habit = withSettings(
          { userId, habitId: 'ops-run' },
          {
            name: 'Run',
            penaltyAmount: 500,
            currency: 'usd',
            free: false,
            recipientId: 'charity-ops',
            active: true,
          },
          null,
          new Date(Date.now() - 3 * DAY).toISOString(),
        );
        expect(
          await store.putHabit({
            habit,
            previous: null,
            freeHabitLimit: DEFAULT_FREE_HABIT_LIMITS.gold,
            maxHabits: MAX_HABITS_PER_USER,
          }),
        ).toBe('written');
        const assess = await fetch(`${runtime.apiUrl}/admin/penalties/assess`, {
          method: 'POST',
          body: JSON.stringify({ date: new Date(Date.now() - DAY).toISOString().slice(0, 10) }),
        });
        expect(assess.status).toBe(200);

        const sumOf = (view: Awaited<ReturnType<typeof plotted>>, id: string, label: string) => {
          const plot = view.plots[id]!;
          return plot.sums[plot.labels.indexOf(label)] ?? 0;
        };
        const lastOf = async (id: string, label: string) =>
          page.evaluate(
            ([figureId, seriesLabel]) => {
              const plot = (globalThis as unknown as { opsPage: OpsPageState }).opsPage.plots[
                figureId
              ]!;
              const index = plot.series.findIndex((s) => s.label === seriesLabel);
              return plot.data[index]?.at(-1) ?? null;
            },
            [id, label] as const,
          );
        await eventually(
          async () => {
            const now = await plotted();
            const moved =
              sumOf(now, 'webhooks', 'received') >= sumOf(before, 'webhooks', 'received') + 3 &&
              sumOf(now, 'webhooks', 'rejected') >= sumOf(before, 'webhooks', 'rejected') + 1 &&
              sumOf(now, 'events', 'applied') >= sumOf(before, 'events', 'applied') + 2 &&
              sumOf(now, 'lag', 'maximum') > sumOf(before, 'lag', 'maximum') &&
              sumOf(now, 'creditSlots', 'refreshed') >=
                sumOf(before, 'creditSlots', 'refreshed') + 1;
            if (!moved) return undefined;
            return Number(await lastOf('penalties', 'created')) >= 1 ? true : undefined;
          },
          20_000,
          'the plots to show the webhooks, events, lag, credit refresh and penalty',
        );
        const totalsText = await page
          .locator('section[data-figure="webhooks"] .totals')
          .textContent();
        expect(totalsText).toMatch(/received total: \d+/);
        expect(problems).toEqual([]);
        expect(foreignRequests).toEqual([]);
      },
    );
  });
});

/** The part of the page's `window.opsPage` the test reads (see local/ops/page/ops.js). */
interface OpsPageState {
  updates: number;
  plots: Record<string, { series: Array<{ label: string }>; data: Array<Array<number | null>> }>;
}
