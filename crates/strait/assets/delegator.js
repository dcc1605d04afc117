// Strait's dtab playground: edit a router's dtab, explain a path through it
// with /delegator.json (whose `dtab` replaces the router's), and draw the
// delegation tree as nested lists. Initial values come from the query
// string: ?router=<label>&path=<path>&dtab=<dtab>.
"use strict";

const stored = JSON.parse(document.getElementById("dtab-data").textContent || "{}");
const base = JSON.parse(document.getElementById("dtab-base-data").textContent || "{}");
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// A dtab as text, one dentry per line.
const show = (dentries) => (dentries || []).map((d) => `${d.prefix} => ${d.dst};`).join("\n");

function selectRouter(label, dtabText) {
  $("router").value = label;
  $("dtab").value = dtabText !== null ? dtabText : show(base[label]);
  const s = stored[label] || [];
  $("stored").value = show(s);
  $("stored-wrap").hidden = s.length === 0;
}

// One address of a bound leaf: ip:port, with a weight when not 1.
function addrItem(a) {
  const w = a.meta && a.meta.endpoint_addr_weight;
  return el("li", { "data-endpoint": `${a.ip}:${a.port}` }, `${a.ip}:${a.port}` + (w !== undefined ? ` (weight ${w})` : ""));
}

const REASONS = {
  neg: "no match: nothing in the dtab or namers names this (neg)",
  fail: "fail: a dentry says stop here (!)",
  empty: "empty: exists, but has no endpoints ($)",
};

// One node of Linkerd's delegation JSON as a list item, children nested.
function node(n, weight) {
  const li = el("li", { "data-type": n.type });
  if (weight !== undefined) li.append(el("span", { class: "weight" }, `${weight} \u00d7`));
  li.append(el("span", { class: `kind kind-${n.type}` }, n.type), el("span", { class: "node-path" }, n.path));
  if (n.dentry) li.append(el("span", { class: "dentry" }, `via ${n.dentry.prefix} => ${n.dentry.dst}`));
  const kids = el("ul");
  switch (n.type) {
    case "delegate":
      kids.append(node(n.delegate));
      break;
    case "alt":
      for (const c of n.alt) kids.append(node(c));
      break;
    case "union":
      for (const b of n.union) kids.append(node(b.tree, b.weight));
      break;
    case "leaf": {
      const b = n.bound || {};
      const addr = b.addr || {};
      const info = el("li", { class: "bound" }, "bound to ", el("code", {}, b.id || "?"),
        b.path && b.path !== "/" ? el("span", { class: "muted" }, ` residual ${b.path}`) : "");
      if (addr.type === "bound") {
        info.append(` \u2014 ${addr.addrs.length} endpoint${addr.addrs.length === 1 ? "" : "s"}`);
        const ul = el("ul", { class: "addrs" });
        for (const a of addr.addrs) ul.append(addrItem(a));
        info.append(ul);
      } else {
        info.append(el("span", { class: "reason" }, addr.type === "failed" ? `address failed: ${addr.cause}` : `address ${addr.type}`));
      }
      kids.append(info);
      break;
    }
    case "exception":
      li.append(el("span", { class: "reason" }, `error: ${n.message}`));
      break;
    default:
      if (REASONS[n.type]) li.append(el("span", { class: "reason" }, REASONS[n.type]));
  }
  if (kids.childNodes.length) li.append(kids);
  return li;
}

async function delegate() {
  const out = $("result");
  const params = new URLSearchParams({ namespace: $("router").value, path: $("path").value.trim(), dtab: $("dtab").value });
  const page = new URLSearchParams({ router: $("router").value, path: $("path").value.trim(), dtab: $("dtab").value });
  history.replaceState(null, "", "?" + page);
  out.setAttribute("aria-busy", "true");
  try {
    const resp = await fetch("/delegator.json?" + params, { cache: "no-store" });
    const body = await resp.text();
    if (!resp.ok) {
      out.replaceChildren(el("p", { class: "error", role: "alert", "data-status": resp.status }, body.trim()));
      return;
    }
    out.replaceChildren(el("ul", { class: "tree", "data-rendered": "true" }, node(JSON.parse(body))));
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, `Cannot explain: ${e.message}`));
  } finally {
    out.removeAttribute("aria-busy");
  }
}

function init() {
  const q = new URLSearchParams(location.search);
  const labels = Object.keys(base);
  for (const l of labels) $("router").append(el("option", { value: l }, l));
  const label = labels.includes(q.get("router")) ? q.get("router") : labels[0];
  if (label === undefined) {
    $("result").replaceChildren(el("p", { class: "error", role: "alert" }, "No router is configured."));
    return;
  }
  selectRouter(label, q.get("dtab"));
  if (q.get("path")) $("path").value = q.get("path");
  $("router").addEventListener("change", () => selectRouter($("router").value, null));
  $("reset").addEventListener("click", () => selectRouter($("router").value, null));
  $("play").addEventListener("submit", (e) => { e.preventDefault(); delegate(); });
  delegate();
}

init();
