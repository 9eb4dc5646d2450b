import { createHash } from 'node:crypto';

/*
 * The status page: one HTML document with its style and script inline, and nothing else to
 * load (the gateway may run where nothing outside can be reached, and a CDN would leak who
 * operates it). It opens `status/events`, a server-sent event stream from the same port: the
 * first event carries the 15-minute series, each one after it a second's point. The charts
 * are SVG paths drawn by the script. Every value reaches the page through textContent or an
 * SVG attribute, never as markup.
 */

const STYLE = `
:root { color-scheme: light dark; --bg: #f7f7f8; --card: #fff; --fg: #1c1d21; --muted: #60646c;
  --line: #dcdde1; --accent: #2160c4; --up: #1a7f37; --down: #c62828; --warn: #b26a00; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111214; --card: #1b1c20; --fg: #e6e7ea; --muted: #9a9ea8; --line: #30323a;
    --accent: #6ea2ff; --up: #4ac26b; --down: #ff6b6b; --warn: #f0a43a; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem;
  padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
h1 { font-size: 1.15rem; margin: 0; }
h2 { font-size: .95rem; margin: 1.25rem 0 .5rem; color: var(--muted); font-weight: 600;
  text-transform: uppercase; letter-spacing: .04em; }
main { padding: 0 1rem 2rem; max-width: 1280px; margin: 0 auto; }
.muted { color: var(--muted); }
#live::before { content: "● "; }
#live.on { color: var(--up); } #live.off { color: var(--down); }
.flag { padding: 0 .4rem; border-radius: 4px; color: #fff; background: var(--warn); }
.scroll { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: .4rem .6rem; text-align: right; white-space: nowrap; border-bottom: 1px solid var(--line); }
th:first-child, td:first-child, th.l, td.l { text-align: left; }
tbody tr:last-child td { border-bottom: 0; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; }
td.bad { color: var(--down); font-weight: 600; }
.grid { display: grid; gap: .75rem; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .75rem; }
.card h3 { font-size: .95rem; margin: 0 0 .4rem; }
.chart { display: grid; grid-template-columns: 1fr auto; align-items: baseline; margin-top: .3rem; }
.chart svg { grid-column: 1 / -1; width: 100%; height: 36px; display: block;
  border-bottom: 1px solid var(--line); }
.chart path { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.chart path.err { stroke: var(--down); } .chart path.p99 { stroke: var(--warn); }
.chart .v { text-align: right; font-variant-numeric: tabular-nums; }
.chart span { font-size: .8rem; }
ul { list-style: none; margin: 0; padding: 0; }
li { padding: .3rem 0; border-top: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: .2rem .6rem; }
li:first-child { border-top: 0; }
.badge { font-weight: 600; min-width: 4.5rem; }
.badge.up { color: var(--up); } .badge.down, .badge.ejected { color: var(--down); }
.badge.unknown { color: var(--muted); }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
@media (max-width: 600px) { main { padding: 0 .5rem 1.5rem; } th, td { padding: .35rem .4rem; } }
`;

const SCRIPT = `
"use strict";
const WINDOW_MS = 15 * 60 * 1000;
const $ = (id) => document.getElementById(id);
let state;
let series = {};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function svg(tag) { return document.createElementNS("http://www.w3.org/2000/svg", tag); }
const count = (n) => Math.round(n).toLocaleString("en");
const perSecond = (n) => (n === null ? "–" : n < 10 ? n.toFixed(2) : n.toFixed(1));
const percent = (n) => (n === null ? "–" : (n * 100).toFixed(n > 0 && n < 0.01 ? 2 : 1) + " %");
const millis = (n) => (n === null ? "–" : n < 10 ? n.toFixed(2) + " ms" : n.toFixed(0) + " ms");
function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + (s % 60) + "s" : s + "s";
}

function renderGateway(g) {
  const line = $("gateway");
  line.replaceChildren(
    "version " + g.version + " · up " + duration(g.uptimeS) + " · " + g.workers +
      (g.workers === 1 ? " worker" : " workers") + " · " + count(g.inFlight) + " in flight ",
  );
  if (g.draining) line.append(el("span", "flag", "draining"), " ");
  if (g.overloaded) line.append(el("span", "flag", "overloaded"));
}

function renderRoutes(routes) {
  const body = $("routes");
  const rows = new Map([...body.children].map((tr) => [tr.dataset.route, tr]));
  routes.forEach((r, index) => {
    let tr = rows.get(r.prefix);
    if (!tr) {
      tr = el("tr");
      tr.dataset.route = r.prefix;
      for (let i = 0; i < 8; i++) tr.append(el("td", i < 2 ? "l" : ""));
    }
    rows.delete(r.prefix);
    if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
    const cells = tr.children;
    cells[0].replaceChildren(el("code", "", r.prefix));
    cells[1].textContent = r.service;
    cells[2].textContent = count(r.requests);
    cells[3].textContent = perSecond(r.reqRate);
    cells[4].textContent = count(r.errors);
    cells[5].textContent = percent(r.errorRate);
    cells[5].className = r.errorRate > 0 ? "bad" : "";
    cells[6].textContent = millis(r.p50Ms);
    cells[7].textContent = millis(r.p99Ms);
  });
  for (const tr of rows.values()) tr.remove();
}

// The x axis runs from the oldest point (at least a minute back) to now, up to 15 minutes:
// a gateway that just started fills its charts instead of drawing a sliver at the right.
function pathOf(t, values, now) {
  const start = Math.max(now - WINDOW_MS, Math.min(now - 60000, t.length ? t[0] : now));
  let max = 0;
  for (const v of values) if (v !== null && v > max) max = v;
  const scale = max > 0 ? 30 / max : 0;
  let d = "";
  let pen = false;
  for (let i = 0; i < t.length; i++) {
    const v = values[i];
    if (v === null) { pen = false; continue; }
    const x = ((t[i] - start) / (now - start)) * 300;
    d += (pen ? "L" : "M") + x.toFixed(1) + " " + (32 - v * scale).toFixed(1);
    pen = true;
  }
  return d;
}

const CHARTS = [
  ["rps", "req/s", "", perSecond],
  ["errorRate", "errors", "err", percent],
  ["p99Ms", "p99", "p99", millis],
];

function renderCharts(routes, now) {
  const box = $("charts");
  const cards = new Map([...box.children].map((c) => [c.dataset.chartRoute, c]));
  for (const r of routes) {
    let card = cards.get(r.prefix);
    if (!card) {
      card = el("div", "card");
      card.dataset.chartRoute = r.prefix;
      card.append(el("h3", "", r.prefix + " · " + r.service));
      for (const [name, label, kind] of CHARTS) {
        const row = el("div", "chart");
        const chart = svg("svg");
        chart.setAttribute("viewBox", "0 0 300 34");
        chart.setAttribute("preserveAspectRatio", "none");
        chart.setAttribute("role", "img");
        chart.setAttribute("aria-label", label + " over the last 15 minutes");
        chart.dataset.chart = name;
        const path = svg("path");
        if (kind) path.setAttribute("class", kind);
        chart.append(path);
        row.append(el("span", "muted", label), el("span", "v"), chart);
        card.append(row);
      }
      box.append(card);
    }
    cards.delete(r.prefix);
    const s = series[r.prefix] || { t: [], rps: [], errorRate: [], p99Ms: [] };
    CHARTS.forEach(([name, , , format], i) => {
      const row = card.children[i + 1];
      row.querySelector("path").setAttribute("d", pathOf(s.t, s[name], now));
      const last = s[name].length ? s[name][s[name].length - 1] : null;
      row.children[1].textContent = format(last);
    });
  }
  for (const card of cards.values()) card.remove();
}

function renderServices(services) {
  const box = $("services");
  box.replaceChildren(
    ...services.map((s) => {
      const card = el("div", "card");
      card.dataset.service = s.name;
      card.append(
        el("h3", "", s.name),
        el("div", "muted", count(s.inFlight) + " in flight · " + count(s.failures) + " upstream failures since start"),
      );
      const list = el("ul");
      for (const i of s.instances) {
        const health = i.ejected ? "ejected" : i.health;
        const item = el("li");
        item.dataset.instance = String(i.instance);
        item.append(
          el("span", "badge " + health, health),
          el("code", "", i.address),
          el("span", "muted", i.inFlight + " in flight · " + i.failuresInARow + " failures in a row"),
        );
        list.append(item);
      }
      card.append(list);
      return card;
    }),
  );
}

function renderFailures(failures) {
  const body = $("failures");
  body.replaceChildren(
    ...failures.map((f) => {
      const tr = el("tr");
      tr.append(
        el("td", "l", new Date(f.time).toLocaleTimeString("en-GB")),
        el("td", "l", f.route),
        el("td", "l", f.service + (f.instance === undefined || f.instance === null ? "" : " #" + f.instance)),
        el("td", "l", f.code),
        el("td", "l", f.requestId),
      );
      return tr;
    }),
  );
  $("no-failures").hidden = failures.length > 0;
}

function render() {
  renderGateway(state.gateway);
  renderRoutes(state.routes);
  renderCharts(state.routes, state.sampledAt);
  renderServices(state.services);
  renderFailures(state.failures);
  $("sampled").textContent = "sampled " + new Date(state.sampledAt).toLocaleTimeString("en-GB");
}

function addPoint(at, point) {
  for (const [prefix, values] of Object.entries(point)) {
    const s = series[prefix] || (series[prefix] = { t: [], rps: [], errorRate: [], p99Ms: [] });
    s.t.push(at);
    s.rps.push(values[0]);
    s.errorRate.push(values[1]);
    s.p99Ms.push(values[2]);
    while (s.t.length && s.t[0] < at - WINDOW_MS) {
      s.t.shift(); s.rps.shift(); s.errorRate.shift(); s.p99Ms.shift();
    }
  }
}

const events = new EventSource("status/events");
events.addEventListener("snapshot", (e) => {
  state = JSON.parse(e.data);
  series = state.series;
  render();
});
events.addEventListener("tick", (e) => {
  state = JSON.parse(e.data);
  addPoint(state.sampledAt, state.point);
  render();
});
events.addEventListener("open", () => { $("live").textContent = "live"; $("live").className = "on"; });
events.addEventListener("error", () => { $("live").textContent = "reconnecting"; $("live").className = "off"; });
`;

const BODY = `<header>
<h1>Helix gateway</h1>
<span id="gateway" class="muted">waiting for the first sample…</span>
<span id="live" class="off">connecting</span>
<span id="sampled" class="muted"></span>
</header>
<main>
<h2>Routes</h2>
<div class="scroll"><table>
<thead><tr><th>route</th><th class="l">service</th><th>requests</th><th>req/s (10 s)</th><th>5xx</th><th>error rate (1 min)</th><th>p50 (1 min)</th><th>p99 (1 min)</th></tr></thead>
<tbody id="routes"></tbody>
</table></div>
<h2>Last 15 minutes</h2>
<div id="charts" class="grid"></div>
<h2>Services</h2>
<div id="services" class="grid"></div>
<h2>Recent upstream failures</h2>
<div class="scroll"><table>
<thead><tr><th>time</th><th class="l">route</th><th class="l">service</th><th class="l">failure</th><th class="l">request id</th></tr></thead>
<tbody id="failures"></tbody>
</table><p id="no-failures" class="muted">&nbsp;None since start.</p></div>
</main>`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/** The page and the Content-Security-Policy that lets only its own inline style and script run. */
export interface StatusPage {
  readonly html: string;
  readonly csp: string;
}

/** Built once at start-up. */
export function buildStatusPage(): StatusPage {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Helix gateway status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`;
  // SECURITY: nothing but this page's own style and script runs, and it may only talk back to
  // the port it came from.
  const csp = [
    "default-src 'none'",
    `style-src ${sha256(STYLE)}`,
    `script-src ${sha256(SCRIPT)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}
