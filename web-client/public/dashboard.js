// The dashboard: GET /api/stats (the same-origin proxy adds the key server-side) drawn
// with Chart.js (vendor/chart.umd.min.js, the global `Chart`). Refreshes every 60 s and
// on the Refresh button; each chart says "No data yet" instead of drawing empty axes.

export const ENDPOINT = "/api/stats";
export const REFRESH_MS = 60_000;

const charts = new Map(); // canvas id -> Chart

function $(selector) {
  return document.querySelector(selector);
}

function fmt(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function stat(name, text) {
  $(`[data-stat="${name}"]`).textContent = text;
}

/** Draw `config` on the canvas `id`, or show the card's "No data yet" when `empty`. */
function draw(id, empty, config) {
  const canvas = document.getElementById(id);
  const card = canvas.closest(".chart-card");
  const old = charts.get(id);
  if (old) {
    old.destroy();
    charts.delete(id);
  }
  canvas.hidden = empty;
  if (card) card.querySelector(".no-data").hidden = !empty;
  if (empty) return;
  // No animation: the numbers are what matter, and a redraw every minute should not move.
  charts.set(id, new Chart(canvas, { ...config, options: { animation: false, ...config.options } }));
}

function requestsChart(stats) {
  const rows = stats.requests.by_hour;
  const hours = [...new Set(rows.map((r) => r.hour))].sort();
  const series = new Map();
  for (const r of rows) {
    const name = `${r.route} ${r.model ?? "(no model)"}`;
    if (!series.has(name)) series.set(name, new Map());
    series.get(name).set(r.hour, r.requests);
  }
  draw("requests-chart", rows.length === 0, {
    type: "bar",
    data: {
      labels: hours.map((h) => h.slice(0, 13).replace("T", " ") + ":00"),
      datasets: [...series].map(([label, byHour]) => ({
        label,
        data: hours.map((h) => byHour.get(h) ?? 0),
      })),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
}

function latencyChart(stats) {
  const routes = Object.keys(stats.latency_ms.by_route);
  draw("latency-chart", routes.length === 0, {
    type: "bar",
    data: {
      labels: routes,
      datasets: ["p50", "p95", "p99"].map((q) => ({
        label: q,
        data: routes.map((r) => stats.latency_ms.by_route[r][q]),
      })),
    },
    options: { scales: { y: { beginAtZero: true } } },
  });
}

function errorsChart(stats) {
  const codes = Object.keys(stats.errors.by_code);
  draw("errors-chart", codes.length === 0, {
    type: "bar",
    data: { labels: codes, datasets: [{ label: "errors", data: codes.map((c) => stats.errors.by_code[c]) }] },
    options: { scales: { y: { beginAtZero: true } } },
  });
}

function cacheChart(stats) {
  const c = stats.cache;
  const states = ["hit", "miss", "bypass"];
  draw("cache-chart", states.every((s) => c[s] === 0), {
    type: "doughnut",
    data: { labels: states, datasets: [{ label: "answers", data: states.map((s) => c[s]) }] },
    options: { aspectRatio: 2.5 },
  });
}

function tokensChart(stats) {
  const models = stats.gemini.by_model;
  draw("tokens-chart", models.length === 0, {
    type: "bar",
    data: {
      labels: models.map((m) => m.model),
      datasets: [
        { label: "input tokens", data: models.map((m) => m.tokens_in) },
        { label: "output tokens", data: models.map((m) => m.tokens_out) },
      ],
    },
    options: { scales: { y: { beginAtZero: true } } },
  });
}

function forecastCharts(stats) {
  const box = $("#forecast-charts");
  for (const [id, chart] of [...charts]) {
    if (id.startsWith("forecast-")) {
      chart.destroy();
      charts.delete(id);
    }
  }
  box.replaceChildren();
  const shown = stats.forecasts.filter((f) => f.recent.length > 0);
  box.closest(".chart-card").querySelector(".no-data").hidden = shown.length > 0;
  for (const f of shown) {
    // Every hour any recent forecast named: the newest forecast's value wins.
    const points = new Map();
    for (const forecast of [...f.recent].reverse()) {
      for (const p of forecast.points) points.set(p.at, p);
    }
    const hours = [...points.keys()].sort();
    const figure = document.createElement("figure");
    figure.className = "forecast";
    figure.dataset.model = f.model;
    const caption = document.createElement("figcaption");
    caption.textContent = f.model;
    const canvas = document.createElement("canvas");
    canvas.id = `forecast-${f.model}`;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${f.model}: forecast and actual`);
    figure.append(caption, canvas);
    box.append(figure);
    charts.set(
      canvas.id,
      new Chart(canvas, {
        type: "line",
        data: {
          labels: hours,
          datasets: [
            { label: "forecast", data: hours.map((h) => points.get(h).value) },
            { label: "actual", data: hours.map((h) => points.get(h).actual) },
          ],
        },
        options: { animation: false, spanGaps: false },
      }),
    );
  }
}

function summary(stats) {
  stat("requests", String(stats.requests.total));
  stat("p50", fmt(stats.latency_ms.p50));
  stat("p95", fmt(stats.latency_ms.p95));
  stat("p99", fmt(stats.latency_ms.p99));
  stat("errors", String(stats.errors.total));
  const ratio = stats.cache.hit_ratio;
  stat("hit-ratio", ratio === null ? "–" : `${(ratio * 100).toFixed(1)} %`);
  stat("tokens", `${stats.gemini.tokens_in} / ${stats.gemini.tokens_out}`);
  const cost = stats.gemini.estimated_cost_usd;
  const unpriced = stats.gemini.unpriced_models;
  stat(
    "cost",
    (cost === null ? "–" : `$${cost.toFixed(4)}`) +
      (unpriced.length ? ` (not priced: ${unpriced.join(", ")})` : ""),
  );
}

export function render(stats) {
  summary(stats);
  requestsChart(stats);
  latencyChart(stats);
  errorsChart(stats);
  cacheChart(stats);
  tokensChart(stats);
  forecastCharts(stats);
  const empty = stats.requests.total === 0;
  $("#dashboard-status").textContent = empty ? "No data yet: nothing was logged in this window." : "";
}

let inFlight = null;

export async function refresh() {
  if (inFlight) return inFlight;
  const since = $("#since").value;
  const status = $("#dashboard-status");
  inFlight = (async () => {
    try {
      const response = await fetch(`${ENDPOINT}?since=${encodeURIComponent(since)}`, {
        headers: { accept: "application/json" },
        cache: "no-store",
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) {
        status.textContent =
          body?.error?.message ?? `The statistics could not be loaded (HTTP ${response.status}).`;
        document.documentElement.dataset.state = "error";
        return;
      }
      render(body);
      const now = new Date();
      const stamp = $("#last-updated");
      stamp.dateTime = now.toISOString();
      stamp.textContent = now.toLocaleTimeString();
      document.documentElement.dataset.state = "ok";
    } catch {
      status.textContent = "The statistics could not be loaded: no network?";
      document.documentElement.dataset.state = "error";
    } finally {
      inFlight = null;
      document.documentElement.dataset.refreshes = String(
        Number(document.documentElement.dataset.refreshes ?? 0) + 1,
      );
    }
  })();
  return inFlight;
}

function start() {
  $("#refresh").addEventListener("click", () => refresh());
  $("#since").addEventListener("change", () => refresh());
  setInterval(() => refresh(), REFRESH_MS);
  document.documentElement.dataset.ready = "true";
  refresh();
}

start();
