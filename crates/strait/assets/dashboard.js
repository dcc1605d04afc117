// Strait's dashboard: polls the admin JSON every 2 s and draws, per router,
// charts of the last minutes (request rate, success rate, latency) and
// tables of services and clients. No libraries: charts are inline SVG.
"use strict";

const POLL_MS = 2000;
const KEEP_MS = 5 * 60 * 1000;
const RATE_MS = 10 * 1000; // table rates: the change over about this long
const SVG = "http://www.w3.org/2000/svg";
// Flat keys: rt/<router>/<kind>/<id, may contain "/">/<metric>.
const KEY = new RegExp("^rt/([^/]+)/(server|service|client)/(.+)/(" + [
  "requests", "success", "failures", "pending",
  "request_latency_ms\\.(?:count|sum|p50|p99)",
  "loadbalancer/size", "loadbalancer/available",
  "failure_accrual/removals", "failure_accrual/revivals",
  "retries/total", "retries/budget_exhausted", "retries/requeues",
].join("|") + ")$");

const history = {}; // router -> [{t, requests, success, failures, count, sum, p50, p99}]
const recent = []; // [{t, routers}] of the last RATE_MS, for per-row rates
let namerPaths = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const fmt = (v, digits = 1) => (v === null || v === undefined || !isFinite(v)) ? "\u2013" : v.toFixed(digits);

// Groups the flat metrics: routers[rt][kind][id][metric] = value.
function parse(metrics) {
  const routers = {};
  for (const [key, value] of Object.entries(metrics)) {
    const m = KEY.exec(key);
    if (!m) continue;
    const [, rt, kind, id, name] = m;
    const r = routers[rt] || (routers[rt] = { server: {}, service: {}, client: {} });
    (r[kind][id] || (r[kind][id] = {}))[name] = value;
  }
  return routers;
}

const sum = (rows, name) => Object.values(rows).reduce((a, r) => a + (r[name] || 0), 0);

// One sample of a router's totals: its services' counters and histograms.
function sample(r, t) {
  const services = Object.values(r.service);
  const count = sum(r.service, "request_latency_ms.count");
  const p50 = count ? services.reduce((a, s) => a + (s["request_latency_ms.p50"] || 0) * (s["request_latency_ms.count"] || 0), 0) / count : null;
  const p99 = services.length ? Math.max(...services.map((s) => s["request_latency_ms.p99"] || 0)) : null;
  const servers = Object.keys(r.server).length ? r.server : r.service;
  return {
    t, count, p50, p99,
    requests: sum(servers, "requests"), success: sum(servers, "success"), failures: sum(servers, "failures"),
    sum: sum(r.service, "request_latency_ms.sum"),
  };
}

// Per-interval series from consecutive samples.
function series(samples) {
  const out = { rate: [], success: [], mean: [], p50: [], p99: [] };
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0 || b.requests < a.requests) continue; // a reset: skip
    const done = (b.success - a.success) + (b.failures - a.failures);
    const n = b.count - a.count;
    out.rate.push([b.t, (b.requests - a.requests) / dt]);
    out.success.push([b.t, done > 0 ? 100 * (b.success - a.success) / done : null]);
    out.mean.push([b.t, n > 0 ? (b.sum - a.sum) / n : null]);
    out.p50.push([b.t, b.p50]);
    out.p99.push([b.t, b.p99]);
  }
  return out;
}

// An SVG line chart of one or more series over the kept window.
function chart(title, unit, lines, fixedMax) {
  const now = Date.now();
  // The x axis spans what is kept, up to KEEP_MS, so a young page fills it.
  const first = Math.min(now - 4000, ...lines.flatMap((l) => l.points.map((p) => p[0])));
  const span = Math.min(KEEP_MS, now - first);
  const values = lines.flatMap((l) => l.points.map((p) => p[1]).filter((v) => v !== null));
  const max = fixedMax || Math.max(1, ...values) * 1.1;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 300 100");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  for (const y of [25, 50, 75]) {
    const g = document.createElementNS(SVG, "line");
    g.setAttribute("x1", 0); g.setAttribute("x2", 300); g.setAttribute("y1", y); g.setAttribute("y2", y);
    svg.append(g);
  }
  let drawn = 0;
  for (const l of lines) {
    const pts = l.points.filter((p) => p[1] !== null).map(([t, v]) =>
      `${(300 * (1 - (now - t) / span)).toFixed(1)},${(96 - 92 * Math.min(v, max) / max).toFixed(1)}`);
    const pl = document.createElementNS(SVG, "polyline");
    pl.setAttribute("points", pts.join(" "));
    pl.setAttribute("style", `stroke:${l.color}`);
    pl.setAttribute("data-series", l.name);
    pl.setAttribute("data-peak", Math.max(0, ...l.points.map((p) => p[1] || 0)));
    svg.append(pl);
    drawn += pts.length;
  }
  svg.setAttribute("data-points", drawn);
  const last = lines.map((l) => {
    const p = l.points.filter((q) => q[1] !== null).pop();
    return `${l.name} ${p ? fmt(p[1]) : "\u2013"}${unit}`;
  });
  svg.setAttribute("aria-label", `${title}, last ${Math.round(span / 1000)} s; now ${last.join(", ")}; scale 0 to ${fmt(max)}${unit}`);
  const legend = el("span", { class: "legend" });
  for (const [i, l] of lines.entries()) {
    legend.append(el("span", {}, el("span", { class: "swatch", style: `background:${l.color}` }), last[i]));
  }
  return el("figure", { class: "card" }, el("figcaption", {}, el("strong", {}, title), legend), svg);
}

// Per-row counters' change over the last RATE_MS (or since the first poll), per second.
function perSecond(now, before, name, dt) {
  if (!before || dt <= 0) return null;
  const d = (now[name] || 0) - (before[name] || 0);
  return d >= 0 ? d / dt : null;
}

function successRate(now, before) {
  if (!before) return "\u2013";
  const ok = (now.success || 0) - (before.success || 0);
  const done = ok + (now.failures || 0) - (before.failures || 0);
  return done > 0 ? fmt(100 * ok / done, 2) + " %" : "\u2013";
}

function table(caption, heads, rows) {
  const t = el("table", {}, el("caption", { class: "sr-only" }, caption));
  const hr = el("tr");
  for (const h of heads) hr.append(el("th", { scope: "col" }, h));
  t.append(el("thead", {}, hr));
  const body = el("tbody");
  for (const r of rows) body.append(r);
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: heads.length, class: "muted" }, "none yet")));
  t.append(body);
  return el("div", { class: "table-wrap" }, t);
}

function cell(col, value, cls) {
  return el("td", { "data-col": col, class: cls }, value);
}

function endpointList(state) {
  if (!state || !state.endpoints) {
    return state ? el("span", { class: "muted" }, state.state) : el("span", { class: "muted" }, "\u2013");
  }
  const ul = el("ul", { class: "endpoints" });
  for (const e of state.endpoints) {
    const label = e.state === "dead" ? "ejected" : e.state;
    ul.append(el("li", { class: "ep-" + e.state, "data-state": label }, `${e.address} ${label}`));
  }
  return ul;
}

function renderRouter(rt, r, before, dt, clients) {
  const section = el("section", { "aria-labelledby": "rt-" + rt, "data-router": rt });
  section.append(el("h2", { id: "rt-" + rt }, "Router " + rt));
  const s = series(history[rt]);
  section.append(el("div", { class: "charts" },
    chart("Requests", "/s", [{ name: "rate", color: "var(--accent)", points: s.rate }]),
    chart("Success rate", "%", [{ name: "success", color: "var(--ok)", points: s.success }], 100),
    chart("Latency", " ms", [
      { name: "p50", color: "var(--p50)", points: s.p50 },
      { name: "p99", color: "var(--p99)", points: s.p99 },
      { name: "mean", color: "var(--mean)", points: s.mean },
    ])));

  const services = Object.keys(r.service).sort().map((id) => {
    const m = r.service[id], b = before && before.service[id];
    return el("tr", { "data-service": "/" + id },
      el("th", { scope: "row" }, "/" + id),
      cell("rate", fmt(perSecond(m, b, "requests", dt))),
      cell("success", successRate(m, b)),
      cell("requests", m.requests || 0),
      cell("p50", fmt(m["request_latency_ms.p50"])),
      cell("p99", fmt(m["request_latency_ms.p99"])),
      cell("retries", m["retries/total"] || 0),
      cell("budget", m["retries/budget_exhausted"] || 0, m["retries/budget_exhausted"] ? "bad" : undefined));
  });
  section.append(el("h3", {}, "Services"));
  section.append(table("Services of router " + rt,
    ["service", "req/s", "success", "requests", "p50 ms", "p99 ms", "retries", "budget exhausted"], services));

  const clientRows = Object.keys(r.client).sort().map((id) => {
    const m = r.client[id], b = before && before.client[id];
    const state = clients["/" + id];
    const dead = state && state.endpoints ? state.endpoints.filter((e) => e.state === "dead").length : 0;
    const endpoints = `${m["loadbalancer/available"] ?? "\u2013"}/${m["loadbalancer/size"] ?? "\u2013"}`;
    return el("tr", { "data-client": "/" + id, "data-ejected": dead },
      el("th", { scope: "row" }, "/" + id),
      cell("rate", fmt(perSecond(m, b, "requests", dt))),
      cell("success", successRate(m, b)),
      cell("endpoints", endpoints),
      el("td", { "data-col": "endpoint-states" }, endpointList(state)),
      cell("ejections", m["failure_accrual/removals"] || 0, m["failure_accrual/removals"] ? "bad" : undefined),
      cell("revivals", m["failure_accrual/revivals"] || 0),
      cell("requeues", m["retries/requeues"] || 0),
      cell("budget", m["retries/budget_exhausted"] || 0, m["retries/budget_exhausted"] ? "bad" : undefined));
  });
  section.append(el("h3", {}, "Clients"));
  section.append(table("Clients of router " + rt,
    ["client", "req/s", "success", "endpoints (available/size)", "endpoint states", "ejections", "revivals", "requeues", "requeue budget exhausted"],
    clientRows));
  return section;
}

let lastReload;
function renderReload(outcome) {
  const box = document.getElementById("reload");
  const key = JSON.stringify(outcome);
  if (key === lastReload) return; // unchanged: nothing to announce
  lastReload = key;
  if (!outcome) { box.replaceChildren(el("span", { class: "muted" }, "no reload yet")); return; }
  const dl = el("dl", { class: "kv" });
  const add = (k, v, cls) => dl.append(el("dt", {}, k), el("dd", { class: cls }, v));
  const cls = outcome.result === "rejected" ? "bad" : "ok";
  add("result", outcome.result, cls);
  if (outcome.source) add("source", outcome.source);
  add("time", outcome.time || "\u2013");
  if (outcome.durationMs !== undefined) add("duration", fmt(outcome.durationMs, 2) + " ms");
  if (outcome.changes && outcome.changes.length) add("changes", [].concat(outcome.changes).join("; "));
  if (outcome.errors && outcome.errors.length) add("errors", outcome.errors.join("\n"), "bad");
  if (outcome.configHash) add("config hash", outcome.configHash);
  box.setAttribute("data-result", outcome.result);
  box.replaceChildren(dl);
}

async function getJson(path) {
  const resp = await fetch(path, { cache: "no-store" });
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

async function renderNamers() {
  const box = document.getElementById("namers");
  if (namerPaths === null) {
    try {
      const index = await (await fetch("/admin/index.txt", { cache: "no-store" })).text();
      namerPaths = index.split("\n").filter((p) => p.startsWith("/namer_state/") || p.includes("/interpreter_state/"));
    } catch (e) { namerPaths = []; }
  }
  if (!namerPaths.length) { box.replaceChildren(el("p", { class: "muted" }, "no namer or interpreter reports state")); return; }
  const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.dataset.path));
  const parts = await Promise.all(namerPaths.map(async (p) => {
    let body;
    try { body = JSON.stringify(await getJson(p), null, 2); } catch (e) { body = String(e.message); }
    const d = el("details", { "data-path": p }, el("summary", {}, p), el("pre", { class: "json" }, body));
    if (open.has(p)) d.open = true;
    return d;
  }));
  box.replaceChildren(...parts);
}

function setStatus(node, text, cls) {
  if (node.textContent !== text) node.textContent = text;
  node.className = cls;
}

let polls = 0;
async function poll() {
  const status = document.getElementById("status");
  try {
    const t = Date.now();
    const [metrics, clients, reload] = await Promise.all([
      getJson("/admin/metrics.json"),
      getJson("/client_state.json").catch(() => ({})),
      getJson("/admin/reload.json").catch(() => null),
    ]);
    const routers = parse(metrics);
    while (recent.length > 1 && recent[1].t <= t - RATE_MS) recent.shift();
    const previous = recent[0];
    const dt = previous ? (t - previous.t) / 1000 : 0;
    const root = document.getElementById("routers");
    const sections = [];
    for (const rt of Object.keys(routers).sort()) {
      const h = history[rt] || (history[rt] = []);
      h.push(sample(routers[rt], t));
      while (h.length && h[0].t < t - KEEP_MS) h.shift();
      sections.push(renderRouter(rt, routers[rt], previous && previous.routers[rt], dt, clients));
    }
    if (!sections.length) sections.push(el("p", { class: "muted" }, "No router has counted a request yet."));
    root.replaceChildren(...sections);
    renderReload(reload);
    if (polls % 5 === 0) await renderNamers();
    recent.push({ t, routers });
    polls++;
    // The live region changes only with the state, not every poll.
    setStatus(status, "Live, every 2 s.", "");
    document.getElementById("updated").textContent = "Updated " + new Date(t).toLocaleTimeString();
  } catch (e) {
    setStatus(status, "Cannot load the admin JSON: " + e.message, "bad");
  }
  setTimeout(poll, POLL_MS);
}

poll();
