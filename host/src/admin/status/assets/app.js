// Weir status page: polls /v1/status and draws it. No libraries, no
// requests anywhere but this host; charts are plain SVG. Every value that
// came from a document is set as text, never as HTML.
"use strict";

const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#3b5bdb", "#f76707", "#0ca678", "#ae3ec9", "#1098ad", "#e8590c", "#5c940d", "#d6336c"];
const SENTIMENT = [
  ["positive", "#2f9e44"],
  ["neutral", "#868e96"],
  ["negative", "#e03131"],
  ["unclassified", "#ced4da"],
];
const HATE = [
  ["hate", "#c92a2a"],
  ["offensive", "#f08c00"],
  ["neither", "#2f9e44"],
  ["unclassified", "#ced4da"],
];
const EXTRA_COLORS = ["#7048e8", "#1c7ed6", "#66a80f", "#f59f00"];

const $ = (id) => document.getElementById(id);

// el("td", {class: "num", id: "x"}, "text" | Node | [children])
function el(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, String(v));
    else e[k] = v;
  }
  append(e, children);
  return e;
}

function svg(tag, attrs, children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  append(e, children);
  return e;
}

function append(e, children) {
  if (children === undefined || children === null) return;
  for (const c of Array.isArray(children) ? children : [children]) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function replace(parent, children) {
  parent.replaceChildren();
  append(parent, children);
}

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const fmtRate = (r) => (r === null || r === undefined ? "–" : r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
const pct = (x) => (x === null || x === undefined ? "–" : (x * 100).toFixed(1) + "%");

// A number element: shows the formatted value, keeps the raw one.
function num(id, value, text) {
  return el("b", { id, "data-value": value ?? "" }, text ?? fmt(value));
}

function duration(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  const h = Math.floor(s / 3600);
  return h + "h " + Math.floor((s % 3600) / 60) + "m";
}

function ago(iso, now) {
  if (!iso) return "–";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 90) return s + "s ago";
  if (s < 5400) return Math.round(s / 60) + "m ago";
  if (s < 172800) return Math.round(s / 3600) + "h ago";
  return iso.slice(0, 10);
}

function colorOf(labels, label, i) {
  const known = labels.find(([l]) => l === label);
  return known ? known[1] : EXTRA_COLORS[i % EXTRA_COLORS.length];
}

// Known labels first (always shown, 0 if absent), then any others.
function orderedLabels(known, counts) {
  const names = known.map(([l]) => l);
  for (const l of Object.keys(counts || {}).sort()) if (!names.includes(l)) names.push(l);
  return names;
}

// ---- sections -------------------------------------------------------------

function renderHeader(s) {
  const health = $("health");
  health.textContent = s.healthy ? "healthy" : "unhealthy";
  health.className = "pill " + (s.healthy ? "pill-ok" : "pill-bad");
  $("version").textContent = s.version;
  $("uptime").textContent = duration(s.uptime_seconds);
  $("updated").textContent = new Date(Date.parse(s.generated_at)).toLocaleTimeString("en-GB");
}

function renderPipelines(s) {
  const cards = s.pipelines.map((p, i) => {
    const color = PALETTE[i % PALETTE.length];
    const dead = el("div", { class: "stat" + (p.dead_letters > 0 ? " warn" : "") }, [
      num("dead-" + p.name, p.dead_letters), el("span", {}, "dead letters")]);
    const card = el("article", { class: "card", id: "pipeline-" + p.name }, [
      el("header", {}, [
        el("span", { class: "swatch" }),
        el("h3", {}, p.name),
        el("span", { class: "route" }, (p.topics.join(", ") || "–") + " → " + (p.index || "–")),
      ]),
      el("div", { class: "stats" }, [
        el("div", { class: "stat" }, [num("records-" + p.name, p.records_consumed), el("span", {}, "records consumed")]),
        el("div", { class: "stat" }, [num("indexed-" + p.name, p.documents_indexed), el("span", {}, "documents indexed")]),
        dead,
        el("div", { class: "stat" }, [
          num("rate-" + p.name, p.records_per_second, fmtRate(p.records_per_second)),
          el("span", {}, "records/s (" + s.rate_window_seconds + " s)"),
        ]),
      ]),
      el("p", { class: "chain" }, p.modules.length ? p.modules.map((m) => m.split("#")[0]).join(" → ") : "no modules"),
    ]);
    card.querySelector(".swatch").style.background = color;
    return card;
  });
  replace($("pipelines"), cards.length ? cards : el("p", { class: "empty" }, "No pipelines."));
}

// A round grid step giving about five lines up to `x`.
function niceStep(x) {
  if (!(x > 0)) return 1;
  const raw = x / 5;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const fmtAxis = (v) => (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(1));

function renderThroughput(s) {
  const W = 960, H = 200, L = 52, R = 16, T = 14, B = 28;
  const h = s.throughput;
  const names = s.pipelines.map((p) => p.name);
  const now = h.t.length ? h.t[h.t.length - 1] : Date.now();
  // Seconds on the x axis: what has been sampled, in steps of 30, 30..120.
  const sampled = h.t.length ? (now - h.t[0]) / 1000 : 0;
  const span = Math.min(120, Math.max(30, Math.ceil(sampled / 30) * 30));
  let max = 0;
  for (const n of names) for (const v of (h.pipelines[n] || { consumed: [] }).consumed) max = Math.max(max, v);
  const step = niceStep(max);
  const lines = Math.max(1, Math.ceil(max / step - 1e-9));
  const top = step * lines;
  const x = (t) => L + (W - L - R) * (1 - (now - t) / 1000 / span);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "svgchart", role: "img", "aria-label": "records per second per pipeline" });
  for (let i = 0; i <= lines; i++) {
    const v = step * i;
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    chart.append(svg("text", { x: L - 8, y: y(v) + 4, class: "axis", "text-anchor": "end" }, fmtAxis(v)));
  }
  const tick = span <= 60 ? 10 : 30;
  for (let secs = span; secs >= 0; secs -= tick) {
    chart.append(svg("text", { x: x(now - secs * 1000), y: H - 8, class: "axis", "text-anchor": "middle" }, secs ? `-${secs}s` : "now"));
  }
  names.forEach((n, i) => {
    const series = h.pipelines[n];
    if (!series || !h.t.length) return;
    const color = PALETTE[i % PALETTE.length];
    const pts = h.t.map((t, k) => [x(t), y(series.consumed[k] || 0)]).filter(([px]) => px >= L - 0.5);
    if (!pts.length) return;
    const line = pts.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ");
    const area = `${pts[0][0].toFixed(1)},${y(0)} ${line} ${pts[pts.length - 1][0].toFixed(1)},${y(0)}`;
    chart.append(svg("polygon", { points: area, fill: color, "fill-opacity": 0.08 }));
    chart.append(svg("polyline", { points: line, fill: "none", stroke: color, "stroke-width": 2.2, "stroke-linejoin": "round" }));
  });
  if (!h.t.length) chart.append(svg("text", { x: W / 2, y: H / 2, class: "axis", "text-anchor": "middle" }, "collecting samples…"));
  replace($("throughput-chart"), chart);
  replace($("throughput-legend"), s.pipelines.map((p, i) => {
    const sw = el("span", { class: "swatch" });
    sw.style.background = PALETTE[i % PALETTE.length];
    return el("span", { class: "legend-item" }, [sw, `${p.name}: ${fmtRate(p.records_per_second)} rec/s · ${fmtRate(p.indexed_per_second)} indexed/s`]);
  }));
}

function scope(label, idx, key) {
  const with_ = (idx ? idx.per_index : []).filter((i) => Object.keys(i[key]).length).map((i) => i.index);
  $(label).textContent = with_.length ? "in " + with_.join(", ") : "";
}

function renderSentiment(idx) {
  const sent = idx ? idx.sentiment : { total: 0, labels: {} };
  scope("sentiment-scope", idx, "sentiment");
  const labels = orderedLabels(SENTIMENT, sent.labels);
  const max = Math.max(1, ...labels.map((l) => sent.labels[l] || 0));
  const rows = labels.map((l, i) => {
    const n = sent.labels[l] || 0;
    const bar = el("span", { class: "bar-fill" });
    bar.style.width = ((100 * n) / max).toFixed(2) + "%";
    bar.style.background = colorOf(SENTIMENT, l, i);
    return el("div", { class: "bar-row" }, [
      el("span", { class: "bar-label" }, l),
      el("span", { class: "bar-track" }, bar),
      el("span", { class: "bar-value" }, [num("sentiment-" + l, n), el("small", {}, sent.total ? pct(n / sent.total) : "")]),
    ]);
  });
  replace($("sentiment-chart"), rows);
  const total = $("sentiment-total");
  total.textContent = fmt(sent.total);
  total.dataset.value = sent.total;
}

function renderHate(idx) {
  const hate = idx ? idx.hate : { total: 0, labels: {}, classified: 0, flagged: 0, rate: null };
  scope("hate-scope", idx, "hate");
  const rate = $("hate-rate");
  rate.textContent = pct(hate.rate);
  rate.dataset.value = hate.rate === null || hate.rate === undefined ? "" : hate.rate;
  rate.className = "big " + (hate.rate === null || hate.rate === undefined ? "" : hate.rate >= 0.2 ? "bad" : hate.rate >= 0.05 ? "warn" : "good");
  for (const [id, v] of [["hate-flagged", hate.flagged], ["hate-classified", hate.classified]]) {
    $(id).textContent = fmt(v);
    $(id).dataset.value = v;
  }
  const labels = orderedLabels(HATE, hate.labels);
  const stack = labels.map((l, i) => {
    const seg = el("span", { class: "seg", title: `${l}: ${hate.labels[l] || 0}` });
    seg.style.flexGrow = hate.labels[l] || 0;
    seg.style.background = colorOf(HATE, l, i);
    return seg;
  });
  replace($("hate-chart"), hate.total ? stack : el("span", { class: "seg empty-seg" }));
  replace($("hate-legend"), labels.map((l, i) => {
    const sw = el("span", { class: "swatch" });
    sw.style.background = colorOf(HATE, l, i);
    return el("span", { class: "legend-item" }, [sw, l + " ", num("hate-" + l, hate.labels[l] || 0)]);
  }));
}

function labelChip(kind, label) {
  const palette = kind === "hate" ? HATE : SENTIMENT;
  const chip = el("span", { class: "chip" }, label);
  const c = colorOf(palette, label, 0);
  chip.style.background = c + "22";
  chip.style.color = label === "unclassified" ? "#495057" : c;
  chip.style.borderColor = c + "66";
  return chip;
}

function renderLatest(s, idx) {
  const now = Date.parse(s.generated_at);
  const items = idx ? idx.latest : [];
  const rows = items.map((it) =>
    el("tr", { "data-id": it.id }, [
      el("td", { class: "when", title: it.at || "" }, ago(it.at, now)),
      el("td", {}, it.index),
      el("td", { class: "label" }, [labelChip(it.kind, it.label), it.score !== null && it.score !== undefined && it.label !== "unclassified" ? el("small", { class: "score" }, it.score.toFixed(2)) : null]),
      el("td", { class: "text" }, it.text),
      el("td", { class: "by" }, it.by || ""),
    ]));
  replace($("latest").tBodies[0], rows.length ? rows : el("tr", {}, el("td", { colSpan: 5, class: "empty" }, "Nothing classified yet.")));
}

function renderModules(s) {
  const rows = s.modules.map((m) =>
    el("tr", { id: `module-${m.pipeline}-${m.module}` }, [
      el("td", {}, m.pipeline),
      el("td", { class: "nowrap" }, m.module),
      el("td", { class: "nowrap" }, m.declared.startsWith(m.module + "@") ? m.declared.slice(m.module.length + 1) : m.declared),
      el("td", { class: "mono", title: m.path }, m.digest),
      el("td", { title: m.loaded_at }, ago(m.loaded_at, Date.parse(s.generated_at))),
    ]));
  replace($("modules").tBodies[0], rows.length ? rows : el("tr", {}, el("td", { colSpan: 5, class: "empty" }, "No modules.")));
}

function renderErrors(s) {
  const items = s.errors.map((e) =>
    el("li", { class: e.severity }, [
      el("span", { class: "sev" }, e.severity),
      el("b", {}, e.source),
      el("span", { class: "msg" }, e.message),
      e.at ? el("small", {}, e.at) : null,
    ]));
  replace($("errors"), items.length ? items : el("li", { class: "ok" }, "No errors."));
  $("error-count").textContent = items.length ? `(${items.length})` : "";
}

function renderIndices(idx) {
  const fmtLabels = (name, o) => {
    const parts = Object.entries(o).map(([k, v]) => `${k} ${fmt(v)}`);
    return parts.length ? name + ": " + parts.join(" · ") : null;
  };
  const rows = (idx ? idx.per_index : []).map((i) =>
    el("tr", {}, [
      el("td", { class: "mono" }, i.index),
      el("td", {}, i.pipelines.join(", ")),
      el("td", { class: "num" }, num("docs-" + i.index, i.documents)),
      el("td", { class: "labels" }, [fmtLabels("sentiment", i.sentiment), fmtLabels("hate", i.hate)]
        .filter(Boolean).join("; ") || (i.error ? "query failed" : "–")),
    ]));
  replace($("indices").tBodies[0], rows.length ? rows : el("tr", {}, el("td", { colSpan: 4, class: "empty" }, "No index data.")));
}

function render(s) {
  const idx = s.indices;
  renderHeader(s);
  renderPipelines(s);
  renderThroughput(s);
  renderSentiment(idx);
  renderHate(idx);
  renderLatest(s, idx);
  renderModules(s);
  renderErrors(s);
  renderIndices(idx);
  document.body.dataset.loaded = s.generated_at;
}

async function poll() {
  try {
    const resp = await fetch("/v1/status", { cache: "no-store" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    render(await resp.json());
  } catch (e) {
    const health = $("health");
    health.textContent = "disconnected";
    health.className = "pill pill-bad";
    health.title = String(e);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
