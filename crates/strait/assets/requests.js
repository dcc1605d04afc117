// Strait's recent requests: polls /requests.json every 2 s and lists the
// sampled requests, newest first. Names link to the dtab playground.
"use strict";

const POLL_MS = 2000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const dash = (v) => (v === null || v === undefined || v === "") ? "\u2013" : v;

function nameLink(router, name) {
  if (!name) return dash(name);
  const href = "/delegator?router=" + encodeURIComponent(router) + "&path=" + encodeURIComponent(name);
  return el("a", { href }, name);
}

function row(r) {
  const when = new Date(r.timestamp);
  const request = r.method + " " + (r.host ? r.host : "") + r.uri;
  return el("tr", { "data-trace-id": r.traceId },
    el("td", { title: "trace " + r.traceId }, when.toISOString()),
    el("td", {}, r.source),
    el("td", {}, r.server),
    el("td", {}, r.router),
    el("td", {}, request),
    el("td", {}, nameLink(r.router, r.logicalName)),
    el("td", {}, nameLink(r.router, r.concreteName)),
    el("td", {}, dash(r.endpoint)),
    el("td", { class: r.status >= 500 ? "bad" : null }, r.status),
    el("td", {}, Number(r.durationMs).toFixed(1)));
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch("/requests.json", { cache: "no-store" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const data = await resp.json();
    const rows = document.getElementById("rows");
    rows.replaceChildren(...(data.requests.length
      ? data.requests.map(row)
      : [el("tr", {}, el("td", { colspan: "10", class: "muted" }, "no sampled request yet"))]));
    document.getElementById("caption").textContent =
      "The last " + data.capacity + " requests sampled at rate " + data.sampleRate + ", newest first";
    status.textContent = data.requests.length + " requests";
    status.classList.remove("bad");
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    status.textContent = "cannot load /requests.json: " + e.message;
    status.classList.add("bad");
  }
}

poll();
setInterval(poll, POLL_MS);
