// The operations page: polls /ops/figures and draws one uPlot chart per figure.
// Plain browser JavaScript, no build step; uPlot is served from node_modules by the
// local runtime (/ops/assets/uPlot.iife.min.js), nothing comes from the network.
//
// For scripts and tests, `window.opsPage` holds the state: `updates` (figures
// documents drawn), `failures`, `lastUpdatedAt` (ISO), `refreshMs`, `document` (the
// last figures document) and `plots` (figure id -> the uPlot instance; `.data` is what
// is plotted).
(() => {
  const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bc4c00', '#1b7c83', '#6e7781'];
  const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6];
  const query = new URLSearchParams(window.location.search);
  const asked = Number(query.get('refresh'));

  const state = {
    updates: 0,
    failures: 0,
    lastUpdatedAt: null,
    refreshMs: Number.isFinite(asked) && asked > 0 ? clamp(asked, 250, 60_000) : null,
    document: null,
    plots: {},
  };
  window.opsPage = state;

  const cards = new Map(); // figure id -> { card, totals, plotBox, plot, signature }
  const container = document.getElementById('figures');
  const status = document.getElementById('status');

  function clamp(value, min, max) {
    return Math.min(max, Math.max(min, value));
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  /** Slot n of the UTC day as HH:MM. */
  function slotTime(slot) {
    const minutes = Math.round(slot) * 5;
    return `${pad(Math.floor(minutes / 60) % 24)}:${pad(minutes % 60)}`;
  }

  function formatNumber(value) {
    if (value === null || value === undefined) return '—';
    return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(1);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function cardFor(figure) {
    let entry = cards.get(figure.id);
    if (!entry) {
      const card = element('section', 'card');
      card.dataset.figure = figure.id;
      const heading = element('h2');
      const title = element('span', 'title');
      const unit = element('span', 'unit');
      heading.append(title, ' ', unit);
      const description = element('p', 'description');
      const totals = element('p', 'totals');
      const plotBox = element('div', 'plot');
      card.append(heading, description, totals, plotBox);
      container.append(card);
      entry = { card, title, unit, description, totals, plotBox, plot: null, signature: '' };
      cards.set(figure.id, entry);
    }
    entry.title.textContent = figure.title;
    entry.unit.textContent = `(${figure.unit})`;
    entry.description.textContent = figure.description;
    return entry;
  }

  function plotWidth(entry) {
    return Math.max(280, entry.plotBox.clientWidth || entry.card.clientWidth - 24);
  }

  function yRange(kind) {
    return (_u, _min, max) => {
      const top = max === null || !Number.isFinite(max) ? 1 : max;
      return [0, kind === 'stat' ? Math.max(1, top * 1.1) : Math.max(1, Math.ceil(top * 1.1))];
    };
  }

  function plotOptions(figure, entry) {
    const slots = figure.xAxis === 'slot';
    const showPoints = figure.kind === 'stat' || figure.kind === 'gauge';
    return {
      width: plotWidth(entry),
      height: 220,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: slots ? { time: false, range: [0, figure.x.length - 1] } : { time: true },
        y: { range: yRange(figure.kind) },
      },
      axes: [
        slots
          ? {
              values: (_u, splits) => splits.map(slotTime),
              label: 'time of day (UTC), 5-minute slots',
            }
          : {},
        // Counts are whole numbers: no 0.2-message ticks.
        { label: figure.unit, size: 60, ...(figure.kind === 'stat' ? {} : { incrs: WHOLE }) },
      ],
      series: [
        slots
          ? { label: 'slot', value: (_u, v) => (v === null ? '—' : slotTime(v)) }
          : { label: 'time' },
        ...figure.series.map((series, i) => ({
          label: series.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          spanGaps: false,
          points: { show: showPoints, size: 4 },
          value: (_u, v) => formatNumber(v),
        })),
      ],
    };
  }

  function draw(figure) {
    const entry = cardFor(figure);
    const data = [figure.x, ...figure.series.map((s) => s.values)];
    const signature = `${figure.xAxis}|${figure.kind}|${figure.series.map((s) => s.label).join('|')}`;
    if (!entry.plot || entry.signature !== signature) {
      entry.plot?.destroy();
      entry.plotBox.replaceChildren();
      entry.plot = new window.uPlot(plotOptions(figure, entry), data, entry.plotBox);
      entry.signature = signature;
      state.plots[figure.id] = entry.plot;
    } else {
      entry.plot.setData(data);
    }
    entry.totals.replaceChildren(
      ...figure.series.map((series) => {
        const span = element('span');
        const counted = series.total !== undefined;
        const what = counted ? 'total' : figure.kind === 'gauge' ? 'now' : 'latest';
        span.append(
          `${series.label} ${what}: `,
          element('b', '', formatNumber(counted ? series.total : series.latest)),
        );
        return span;
      }),
    );
    entry.card.dataset.points = String(figure.x.length);
  }

  function showStatus(text, stale) {
    status.textContent = text;
    status.classList.toggle('stale', stale);
  }

  function minutes(seconds) {
    return seconds % 60 === 0 ? `${seconds / 60} minutes` : `${seconds} s`;
  }

  async function update() {
    try {
      const response = await fetch('/ops/figures', { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const figures = await response.json();
      state.refreshMs ??= figures.refreshMs || 2000;
      for (const figure of figures.figures) draw(figure);
      state.document = figures;
      state.updates += 1;
      state.lastUpdatedAt = figures.generatedAt;
      document.getElementById('window').textContent = minutes(figures.windowSeconds);
      document.getElementById('refresh').textContent = `${state.refreshMs / 1000} s`;
      const updated = new Date(figures.generatedAt).toLocaleTimeString();
      const day = figures.dayClockAt.slice(0, 16).replace('T', ' ');
      showStatus(`Last updated ${updated} · schedules' clock ${day} UTC`, false);
    } catch (error) {
      state.failures += 1;
      const since = state.lastUpdatedAt
        ? ` since ${new Date(state.lastUpdatedAt).toLocaleTimeString()}`
        : '';
      showStatus(`Cannot read the figures${since} (${error.message}); retrying…`, true);
    } finally {
      setTimeout(update, state.refreshMs ?? 2000);
    }
  }

  let resizing;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const entry of cards.values()) {
        entry.plot?.setSize({ width: plotWidth(entry), height: 220 });
      }
    }, 100);
  });

  update();
})();
