// The operator page: plain JavaScript, no framework, no build step, nothing from the
// internet. It talks only to this service's /api/v1 with the key the user typed in,
// kept in sessionStorage (gone when the browser tab closes).
"use strict";

const API = "/api/v1";
const KEY_STORE = "backfill.apiKey";
const STATUS_POLL_MS = 1500;
const SVG_NS = "http://www.w3.org/2000/svg";

// Spec bands of the pour (the supervisor's alarm bands): Cw +-1 percentage point,
// Bw +-5 % of its target.
const SOLIDS_BAND_POINTS = 1.0;
const BINDER_BAND_RELATIVE = 0.05;

const WINDOWS = [
  { label: "15 min", seconds: 900, refreshMs: 5000 },
  { label: "1 h", seconds: 3600, refreshMs: 15000 },
  { label: "8 h", seconds: 8 * 3600, refreshMs: 60000 },
  { label: "24 h", seconds: 24 * 3600, refreshMs: 60000 },
];

const ROLE_NAMES = {
  hmi: "hmi (read-only)",
  scada: "scada (operator)",
  engineer: "engineer",
  admin: "admin",
};

// What each role may do on this page (the API enforces the same; the page only hides
// what would be refused).
const may = {
  acknowledge: (role) => role === "scada" || role === "admin",
  runPours: (role) => role === "scada" || role === "admin",
  release: (role) => role === "engineer" || role === "admin",
};

// Live trends of the plant view. `tag` is the history column; `live` says where the
// live value comes from in /plant/status (a measurement or a setpoint).
const PLANT_TRENDS = [
  {
    id: "density", title: "Paste density", unit: "kg/m3", digits: 0,
    series: [
      { tag: "paste_density_pv", label: "density", live: "m", color: 0 },
      { tag: "paste_density_sp", label: "target", live: "sp", color: 1, dash: true },
    ],
  },
  {
    id: "cw", title: "Cw: solids", unit: "% of paste mass", digits: 2,
    band: { tag: "solids_pct_target", abs: SOLIDS_BAND_POINTS, label: "spec ±1 point" },
    series: [
      { tag: "solids_pct", label: "Cw measured", color: 0 },
      { tag: "solids_pct_target", label: "Cw target", color: 1, dash: true },
    ],
  },
  {
    id: "bw", title: "Bw: binder", unit: "% of dry tailings", digits: 2,
    band: { tag: "binder_pct_target", rel: BINDER_BAND_RELATIVE, label: "spec ±5 %" },
    series: [
      { tag: "binder_pct", label: "Bw measured", color: 0 },
      { tag: "binder_pct_target", label: "Bw target", color: 1, dash: true },
    ],
  },
  {
    id: "binder", title: "Binder feed rates", unit: "t/h", digits: 2,
    series: [
      { tag: "cement_rate_pv", label: "cement", live: "m", color: 0 },
      { tag: "cement_rate_sp", label: "cement SP", live: "sp", color: 0, dash: true },
      { tag: "slag_rate_pv", label: "slag", live: "m", color: 2 },
      { tag: "slag_rate_sp", label: "slag SP", live: "sp", color: 2, dash: true },
      { tag: "flyash_rate_pv", label: "fly ash", live: "m", color: 3, optional: true },
      { tag: "flyash_rate_sp", label: "fly ash SP", live: "sp", color: 3, dash: true, optional: true },
    ],
  },
  {
    id: "flows", title: "Feed and water flows", unit: "m3/h", digits: 1,
    series: [
      { tag: "tailings_flow_pv", label: "tailings feed", live: "m", color: 4 },
      { tag: "tailings_flow_sp", label: "feed SP", live: "sp", color: 4, dash: true },
      { tag: "water_flow_pv", label: "water", live: "m", color: 0 },
      { tag: "water_flow_sp", label: "water SP", live: "sp", color: 0, dash: true },
      { tag: "paste_flow_pv", label: "paste", live: "m", color: 5 },
    ],
  },
  {
    id: "pressure", title: "Pump pressure", unit: "kPa", digits: 0,
    series: [{ tag: "pump_pressure_pv", label: "discharge", live: "m", color: 1 }],
  },
  {
    id: "level", title: "Mixer level", unit: "%", digits: 1,
    series: [{ tag: "mixer_level_pv", label: "level", live: "m", color: 2 }],
  },
];

const POUR_STATES = ["planned", "running", "paused", "completed", "stopped", "aborted"];

// --- session ---------------------------------------------------------------------------

const session = {
  key: sessionStorage.getItem(KEY_STORE),
  role: null,
};

const app = {
  status: null, // the last /plant/status body
  etag: null,
  statusTimer: null,
  pollGeneration: 0,
  statusListeners: new Set(),
  viewTimers: [], // cleared on every route change
  viewToken: 0, // bumped on every route change: late answers of an old view are dropped
  trendWindow: WINDOWS[0],
  trends: null, // the plant view's trend data
};

// --- the API ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, detail) {
    super(`${code}: ${detail}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, cache: "no-store" };
  if (session.key) init.headers.Authorization = `Bearer ${session.key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (err) {
    throw new ApiError(0, "service_unreachable", `the service did not answer (${err.message})`);
  }
  if (raw) {
    if (!response.ok && response.status !== 304) await raiseFor(response);
    return response;
  }
  if (!response.ok) await raiseFor(response);
  return response.json();
}

async function raiseFor(response) {
  let code = `http_${response.status}`;
  let detail = response.statusText || "request failed";
  try {
    const data = await response.json();
    if (data && typeof data === "object") {
      code = data.code || code;
      detail = data.detail || detail;
    }
  } catch (_err) {
    // Not JSON (a proxy's error page): keep the HTTP status.
  }
  if (response.status === 401) {
    logout(`${code}: ${detail}`);
  }
  throw new ApiError(response.status, code, detail);
}

// --- DOM helpers -----------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") el.textContent = String(value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const $ = (selector, root = document) => root.querySelector(selector);

function showError(err) {
  const banner = $("#error");
  const text = $("#error-text");
  text.replaceChildren();
  if (err instanceof ApiError) {
    text.append(h("code", { text: err.code }), ` (${err.status || "no answer"}): ${err.detail}`);
  } else {
    text.append(String(err && err.message ? err.message : err));
  }
  banner.hidden = false;
}

function clearError() {
  $("#error").hidden = true;
}

// --- formatting ------------------------------------------------------------------------

function fmt(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  let v = Number(value);
  if (Math.abs(v) < 0.5 * 10 ** -digits) v = 0; // never "-0"
  return v.toLocaleString("en-GB", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

const pad = (n) => String(n).padStart(2, "0");

function fmtTime(ms, seconds = false) {
  const d = new Date(ms);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

function fmtDateTime(value) {
  if (!value) return "—";
  const d = new Date(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtDuration(hours) {
  if (hours === null || !Number.isFinite(hours)) return "—";
  const minutes = Math.round(hours * 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
}

// --- plots (SVG) -----------------------------------------------------------------------

function niceStep(span, targetTicks) {
  const raw = span / targetTicks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10 * magnitude;
}

const TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200];

// Draw a plot into `container`. spec: {x: {min, max, time}, xLabel, yLabel, series:
// [{points: [[x, y|null]], color, dash, extrapolated}], bands: [{points: [[x, lo, hi]]}],
// hlines: [{y, label, cls}], markers: [{x, y}], gapS, height}.
function drawPlot(container, spec) {
  const width = Math.max(320, Math.round(container.clientWidth || 600));
  const height = spec.height || 220;
  const m = { left: 58, right: 12, top: 10, bottom: spec.xLabel ? 40 : 24 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const { min: x0, max: x1 } = spec.x;

  let yMin = Infinity;
  let yMax = -Infinity;
  const seen = (y) => {
    if (y === null || !Number.isFinite(y)) return;
    yMin = Math.min(yMin, y);
    yMax = Math.max(yMax, y);
  };
  let count = 0;
  for (const series of spec.series) {
    for (const [x, y] of series.points) {
      if (x >= x0 && x <= x1 && y !== null) {
        seen(y);
        count += 1;
      }
    }
  }
  for (const band of spec.bands || []) {
    for (const [x, lo, hi] of band.points) {
      if (x >= x0 && x <= x1) {
        seen(lo);
        seen(hi);
      }
    }
  }
  for (const line of spec.hlines || []) seen(line.y);
  for (const mk of spec.markers || []) seen(mk.y);

  const svg = s("svg", {
    class: "plot",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "data-points": count,
  });
  if (!Number.isFinite(yMin)) {
    svg.append(s("text", { class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle", text: spec.emptyText || "no data in this window" }));
    container.replaceChildren(svg);
    return svg;
  }
  if (yMax - yMin < 1e-9) {
    const pad = Math.max(Math.abs(yMax) * 0.01, 0.5);
    yMin -= pad;
    yMax += pad;
  } else {
    const pad = (yMax - yMin) * 0.08;
    yMin -= pad;
    yMax += pad;
  }
  if (spec.yFromZero && yMin > 0) yMin = 0;
  const sx = (x) => m.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y) => m.top + (1 - (y - yMin) / (yMax - yMin)) * plotH;

  // Grid and axes.
  const yStep = niceStep(yMax - yMin, 4);
  const digits = Math.max(0, -Math.floor(Math.log10(yStep) + 1e-9));
  for (let y = Math.ceil(yMin / yStep) * yStep; y <= yMax; y += yStep) {
    svg.append(s("line", { class: "grid", x1: m.left, x2: width - m.right, y1: sy(y), y2: sy(y) }));
    svg.append(s("text", { class: "axis-label", x: m.left - 6, y: sy(y) + 4, "text-anchor": "end", text: fmt(y, Math.min(digits, 3)) }));
  }
  if (spec.x.time) {
    const spanS = (x1 - x0) / 1000;
    const stepS = TIME_STEPS_S.find((t) => spanS / t <= 7) || 86400;
    const offsetMs = new Date(x0).getTimezoneOffset() * 60000;
    const first = Math.ceil((x0 - offsetMs) / (stepS * 1000)) * stepS * 1000 + offsetMs;
    for (let x = first; x <= x1; x += stepS * 1000) {
      svg.append(s("line", { class: "grid", x1: sx(x), x2: sx(x), y1: m.top, y2: m.top + plotH }));
      svg.append(s("text", { class: "axis-label", x: sx(x), y: m.top + plotH + 16, "text-anchor": "middle", text: fmtTime(x, stepS < 60) }));
    }
  } else {
    const xStep = niceStep(x1 - x0, 6);
    const xDigits = Math.max(0, -Math.floor(Math.log10(xStep) + 1e-9));
    for (let x = Math.ceil(x0 / xStep) * xStep; x <= x1 + 1e-9; x += xStep) {
      svg.append(s("line", { class: "grid", x1: sx(x), x2: sx(x), y1: m.top, y2: m.top + plotH }));
      svg.append(s("text", { class: "axis-label", x: sx(x), y: m.top + plotH + 16, "text-anchor": "middle", text: fmt(x, xDigits) }));
    }
  }
  if (spec.xLabel) {
    svg.append(s("text", { class: "axis-label", x: m.left + plotW / 2, y: height - 6, "text-anchor": "middle", text: spec.xLabel }));
  }
  if (spec.yLabel) {
    svg.append(s("text", { class: "axis-label", x: 12, y: m.top + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${m.top + plotH / 2})`, text: spec.yLabel }));
  }

  const clipId = `clip-${Math.random().toString(36).slice(2)}`;
  svg.append(s("defs", {}, s("clipPath", { id: clipId }, s("rect", { x: m.left, y: m.top, width: plotW, height: plotH }))));
  const layer = s("g", { "clip-path": `url(#${clipId})` });
  svg.append(layer);

  const gap = spec.gapMs || Infinity;
  for (const band of spec.bands || []) {
    for (const run of runs(band.points.map(([x, lo, hi]) => [x, lo, hi]), gap)) {
      const upper = run.map(([x, , hi]) => `${sx(x).toFixed(1)},${sy(hi).toFixed(1)}`);
      const lower = run.map(([x, lo]) => `${sx(x).toFixed(1)},${sy(lo).toFixed(1)}`).reverse();
      layer.append(s("polygon", { class: "band", points: [...upper, ...lower].join(" ") }));
    }
  }
  for (const line of spec.hlines || []) {
    const cls = line.cls ? ` ${line.cls}` : "";
    layer.append(s("line", { class: `hline${cls}`, x1: m.left, x2: width - m.right, y1: sy(line.y), y2: sy(line.y) }));
    if (line.label) {
      layer.append(s("text", { class: `hline-label${cls}`, x: width - m.right - 4, y: sy(line.y) - 5, "text-anchor": "end", text: line.label }));
    }
  }
  for (const series of spec.series) {
    const cls = `line c${series.color || 0}${series.dash ? " dash" : ""}${series.extrapolated ? " extrapolated" : ""}`;
    for (const run of runs(series.points, gap)) {
      const pts = run.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
      layer.append(s("polyline", { class: cls, points: run.length === 1 ? `${pts} ${pts}` : pts }));
    }
  }
  for (const mk of spec.markers || []) {
    layer.append(s("circle", { class: "marker", cx: sx(mk.x), cy: sy(mk.y), r: 5 }));
  }
  container.replaceChildren(svg);
  return svg;
}

// Split points into runs without null values or gaps wider than `gap`.
function runs(points, gap) {
  const out = [];
  let current = [];
  let lastX = null;
  for (const p of points) {
    const missing = p.slice(1).some((v) => v === null || !Number.isFinite(v));
    if (missing || (lastX !== null && p[0] - lastX > gap)) {
      if (current.length) out.push(current);
      current = [];
    }
    if (!missing) {
      current.push(p);
      lastX = p[0];
    }
  }
  if (current.length) out.push(current);
  return out;
}

// --- history ---------------------------------------------------------------------------

async function history(tags, fromMs, toMs, step) {
  const q = new URLSearchParams({
    tags: tags.join(","),
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
  });
  if (step) q.set("step", String(step));
  const trend = await api(`/plant/history?${q}`);
  const t = trend.t.map((v) => Date.parse(v));
  const series = {};
  for (const tag of tags) {
    const avg = trend.series[tag] ? trend.series[tag].avg : [];
    series[tag] = t.map((x, i) => [x, avg[i] ?? null]);
  }
  return { stepS: trend.step_s, series };
}

function bandPoints(points, band) {
  return points.map(([x, target]) => {
    if (target === null) return [x, null, null];
    const half = band.abs !== undefined ? band.abs : Math.abs(target) * band.rel;
    return [x, target - half, target + half];
  });
}

// --- the live status ------------------------------------------------------------------

function startStatusPolling() {
  stopStatusPolling();
  const generation = app.pollGeneration;
  const tick = async () => {
    if (generation !== app.pollGeneration) return;
    try {
      const response = await api("/plant/status", {
        raw: true,
        headers: app.etag ? { "If-None-Match": app.etag } : {},
      });
      if (generation !== app.pollGeneration) return;
      if (response.status === 200) {
        app.etag = response.headers.get("ETag");
        app.status = await response.json();
        app.statusAt = Date.now();
        renderHeaderState();
        for (const listener of app.statusListeners) listener(app.status);
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      const link = $("#link-state");
      link.textContent = "service unreachable";
      link.className = "alarm";
      link.title = err.message;
    }
    if (session.key && generation === app.pollGeneration) {
      app.statusTimer = setTimeout(tick, STATUS_POLL_MS);
    }
  };
  tick();
}

function stopStatusPolling() {
  app.pollGeneration += 1; // an answer still in flight is dropped
  if (app.statusTimer) clearTimeout(app.statusTimer);
  app.statusTimer = null;
  app.etag = null;
}

function refreshStatusNow() {
  app.etag = null;
  startStatusPolling();
}

function renderHeaderState() {
  const st = app.status;
  if (!st) return;
  // No PLC: the operator must never take the simulator for the plant.
  const simulated = $("#simulated");
  simulated.hidden = !st.simulator;
  simulated.title = st.notice || "";
  const link = $("#link-state");
  link.textContent = st.connected ? "connected" : "down";
  link.className = st.connected ? "ok" : "alarm";
  link.title = st.last_error || "";
  const mode = $("#plc-mode");
  mode.textContent = st.plc_mode || "unknown";
  mode.className = st.plc_mode === "fault" ? "alarm" : st.plc_mode === "running" ? "ok" : "";
  const remote = $("#remote-state");
  remote.textContent = st.remote_enabled === null ? "unknown" : st.remote_enabled ? "remote" : "local";
  remote.className = st.remote_enabled ? "ok" : "warn";
  const active = st.alarms.filter((a) => a.state.startsWith("active"));
  const unacked = st.alarms.filter((a) => !a.acknowledged);
  const count = $("#alarm-count");
  count.textContent = String(active.length);
  count.className = unacked.length ? "alarm" : active.length ? "warn" : "ok";
}

function liveValue(st, series) {
  if (!st) return null;
  // A view's own figure: {value, quality, at, plot}; plot false: the legend only.
  if (typeof series.live === "function") return series.live(st);
  if (series.live === "m") {
    const m = st.measurements[series.tag];
    if (!m) return null;
    // Plotted at the time it arrived: the history is stamped with the service's clock.
    return { value: m.value, quality: m.quality, at: Date.now() };
  }
  if (series.live === "sp") {
    const sp = st.setpoints[series.tag];
    if (!sp) return null;
    return { value: sp.value, quality: "good", at: Date.now() };
  }
  return null;
}

// --- the plant view --------------------------------------------------------------------

function viewPlant(main, token) {
  const role = session.role;
  const pourPanel = h("section", { class: "panel", id: "active-pour" }, h("h2", { text: "Running pour" }), h("div", { id: "pour-body", class: "muted", text: "…" }));
  const alarmPanel = h("section", { class: "panel", id: "alarms" }, h("h2", { text: "Alarms" }), h("div", { id: "alarm-body", class: "muted", text: "…" }));
  main.replaceChildren(
    h("div", { class: "row" }, pourPanel, alarmPanel),
    h("div", { class: "toolbar" }, h("h2", { text: "Trends" }), windowSelect(token)),
    trendGrid(PLANT_TRENDS),
  );
  onStatus(token, (st) => {
    renderPour(st, role);
    renderAlarms(st, role);
  });
  startTrends(token, PLANT_TRENDS);
}

// Call `listener` with every new plant status while the view lasts (and now, with the
// last one).
function onStatus(token, listener) {
  const call = (st) => {
    if (token === app.viewToken) listener(st);
  };
  app.statusListeners.add(call);
  app.viewTimers.push(() => app.statusListeners.delete(call));
  if (app.status) call(app.status);
}

// --- live trends: the plant view's and the stope view's ---------------------------------

// The window buttons (15 min … 24 h) of the view's live trends.
function windowSelect(token) {
  const buttons = WINDOWS.map((w) =>
    h("button", {
      type: "button",
      "aria-pressed": w === app.trendWindow ? "true" : "false",
      "data-window": w.seconds,
      text: w.label,
      onclick: (ev) => {
        app.trendWindow = w;
        for (const b of buttons) b.setAttribute("aria-pressed", b === ev.currentTarget ? "true" : "false");
        loadTrendHistory(token);
      },
    }));
  return h("span", { class: "window-select no-print" }, buttons);
}

function trendGrid(specs) {
  return h("div", { class: "trends" }, specs.map((spec) => trendPanel(spec)));
}

// The trends of `specs` (as PLANT_TRENDS; a spec may add `hlines: () => [...]`,
// `yFromZero` and `height`): the history of the chosen window, extended by the live
// status, redrawn with every status and on resize and print.
function startTrends(token, specs) {
  app.trends = { specs, history: {}, live: {}, historyTo: 0, timer: null };
  onStatus(token, (st) => {
    updateLegends(st);
    appendLive(st);
    drawTrends();
  });
  loadTrendHistory(token);
  const redraw = () => drawTrends();
  window.addEventListener("resize", redraw);
  window.addEventListener("beforeprint", redraw);
  app.viewTimers.push(() => {
    window.removeEventListener("resize", redraw);
    window.removeEventListener("beforeprint", redraw);
    if (app.trends && app.trends.timer) clearTimeout(app.trends.timer);
  });
}

function trendPanel(spec) {
  const legend = h("div", { class: "legend" });
  for (const series of spec.series) {
    legend.append(h("span", { class: "item", "data-series": series.tag },
      h("span", { class: `swatch c${series.color}${series.dash ? " dash" : ""}` }),
      h("span", { text: series.label }),
      h("span", { class: "live-value", "data-tag": series.tag, text: "—" }),
      h("span", { class: "muted", text: spec.unit }),
      h("span", { class: "qflag" })));
  }
  if (spec.band) {
    legend.append(h("span", { class: "item" }, h("span", { class: "swatch band" }), h("span", { class: "muted", text: spec.band.label })));
  }
  return h("figure", { class: "panel trend", "data-trend": spec.id },
    h("h3", { text: `${spec.title} (${spec.unit})` }),
    legend,
    h("div", { class: "plot-box" }));
}

async function loadTrendHistory(token) {
  const trends = app.trends;
  if (!trends || token !== app.viewToken) return;
  // One chain of reloads: a new window replaces the pending reload of the old one.
  if (trends.timer) clearTimeout(trends.timer);
  trends.timer = null;
  const win = app.trendWindow;
  const tags = [...new Set(trends.specs.flatMap((t) => t.series.map((x) => x.tag)))];
  const to = Date.now();
  try {
    const data = await history(tags, to - win.seconds * 1000, to);
    if (token !== app.viewToken || win !== app.trendWindow) return;
    app.trends.history = data.series;
    app.trends.stepS = data.stepS;
    const last = Math.max(0, ...Object.values(data.series).flatMap((pts) => pts.filter((p) => p[1] !== null).map((p) => p[0])));
    app.trends.historyTo = last;
    // Live points the history now covers are dropped; newer ones stay.
    for (const tag of Object.keys(app.trends.live)) {
      app.trends.live[tag] = app.trends.live[tag].filter((p) => p[0] > last);
    }
    if (app.status) updateLegends(app.status);
    drawTrends();
  } catch (err) {
    if (token === app.viewToken) showError(err);
  }
  if (token !== app.viewToken || win !== app.trendWindow) return;
  trends.timer = setTimeout(() => loadTrendHistory(token), win.refreshMs);
}

// The legend of each trend: the live value, greyed and flagged when not good.
function updateLegends(st) {
  const trends = app.trends;
  if (!trends) return;
  for (const spec of trends.specs) {
    const panel = $(`[data-trend="${spec.id}"]`);
    if (!panel) continue;
    for (const series of spec.series) {
      const item = $(`[data-series="${series.tag}"]`, panel);
      const live = liveValue(st, series);
      const hasHistory = (trends.history[series.tag] || []).some((p) => p[1] !== null);
      item.hidden = Boolean(series.optional && !live && !hasHistory);
      if (item.hidden) continue;
      if (!live) {
        // Derived values (Cw, Bw) come from the history only: its latest value.
        const pts = (trends.history[series.tag] || []).filter((p) => p[1] !== null);
        const lastPt = pts[pts.length - 1];
        // Only while it is recent: without a running pour there is no Cw/Bw.
        const recent = lastPt && Date.now() - lastPt[0] < 30000 + 3000 * (trends.stepS || 1);
        $(".live-value", item).textContent = recent ? fmt(lastPt[1], spec.digits) : "—";
        continue;
      }
      const quality = st.connected ? live.quality : "bad";
      item.className = `item quality-${quality}`;
      item.setAttribute("data-quality", quality);
      $(".live-value", item).textContent = typeof live.value === "number" ? fmt(live.value, spec.digits) : "—";
      $(".qflag", item).textContent = quality === "good" ? "" : quality.toUpperCase();
    }
  }
}

// Live values of good quality extend the trends until the history covers them.
function appendLive(st) {
  const trends = app.trends;
  if (!trends) return;
  for (const spec of trends.specs) {
    for (const series of spec.series) {
      const live = liveValue(st, series);
      if (!live) continue;
      const quality = st.connected ? live.quality : "bad";
      if (quality === "good" && typeof live.value === "number" && live.plot !== false) {
        const buf = trends.live[series.tag] || (trends.live[series.tag] = []);
        const at = live.at;
        if (!buf.length || at > buf[buf.length - 1][0]) buf.push([at, live.value]);
        if (buf.length > 2000) buf.splice(0, buf.length - 2000);
      }
    }
  }
}

function drawTrends() {
  const trends = app.trends;
  if (!trends) return;
  const now = Date.now();
  const win = app.trendWindow;
  const x = { min: now - win.seconds * 1000, max: now, time: true };
  const gapMs = Math.max(5, 3 * (trends.stepS || 1)) * 1000;
  for (const spec of trends.specs) {
    const panel = $(`[data-trend="${spec.id}"]`);
    if (!panel) continue;
    const series = [];
    for (const sr of spec.series) {
      const pts = [...(trends.history[sr.tag] || []), ...(trends.live[sr.tag] || [])];
      if (sr.optional && !pts.some((p) => p[1] !== null)) continue;
      series.push({ points: pts, color: sr.color, dash: sr.dash });
    }
    const bands = spec.band ? [{ points: bandPoints(trends.history[spec.band.tag] || [], spec.band) }] : [];
    const hlines = spec.hlines ? spec.hlines() : [];
    const svg = drawPlot($(".plot-box", panel), {
      x, series, bands, gapMs, hlines, yFromZero: spec.yFromZero, height: spec.height || 200,
    });
    panel.setAttribute("data-points", svg.getAttribute("data-points"));
  }
}

function renderPour(st, role) {
  const body = $("#pour-body");
  if (!body) return;
  const pour = st.active_pour;
  if (!pour) {
    body.replaceChildren(h("p", { class: "muted", text: "No pour is running." }),
      h("a", { href: "#/pours", text: "All pours" }));
    return;
  }
  const flow = st.measurements.paste_flow_pv;
  const flowValue = flow && flow.quality === "good" && typeof flow.value === "number" ? flow.value : null;
  const left = Math.max(0, pour.target_volume_m3 - pour.poured_m3);
  const hoursLeft = flowValue !== null && flowValue > 0.5 ? left / flowValue : null;
  const pct = Math.min(100, (100 * pour.poured_m3) / pour.target_volume_m3);
  const actions = h("div", { class: "toolbar no-print" });
  if (may.runPours(role)) {
    if (pour.state === "running") actions.append(pourButton(pour.id, "pause", "Pause"));
    if (pour.state === "paused") actions.append(pourButton(pour.id, "resume", "Resume"));
    actions.append(pourButton(pour.id, "stop", "Stop", "danger"));
  }
  body.className = "";
  body.replaceChildren(
    h("p", {},
      "Stope ", h("b", { text: pour.stope_id }), " · ",
      h("span", { class: `badge ${pour.state}`, id: "pour-state", text: pour.state }),
      pour.stop_pending ? " · stopping" : "", " · ",
      h("a", { href: `#/pours/${encodeURIComponent(pour.id)}`, text: "report" })),
    h("progress", { id: "pour-progress", max: pour.target_volume_m3, value: pour.poured_m3, "aria-label": "m3 placed of target" }),
    h("p", {},
      h("span", { class: "big", id: "pour-placed", text: fmt(pour.poured_m3, 1) }),
      ` of ${fmt(pour.target_volume_m3, 1)} m3 placed (${fmt(pct, 0)} %) · `,
      h("span", { id: "pour-left", text: `time left ${fmtDuration(hoursLeft)}` }),
      flowValue !== null ? ` at ${fmt(flowValue, 1)} m3/h` : " (no paste flow)"),
    h("p", { class: "muted" },
      `Cw ${fmt(pour.average_solids_pct, 2)} % · Bw ${fmt(pour.average_binder_pct, 2)} % · ` +
      `binder ${fmt(pour.binder_t, 2)} t · off-spec ${fmt(pour.off_spec_m3, 2)} m3`),
    instrumentsLine(st.instruments),
    actions);
}

const BINDER_SOURCE_TEXT = {
  normal: "binder on the feed",
  holding: "feed gauge bad: last correction held",
  paste_flow_ratio: "binder on the paste flow meter",
  pause: "no gauge can carry the binder",
};

// Where the binder comes from, and whether the flows in and out of the mixer agree.
function instrumentsLine(ins) {
  const parts = [];
  const source = ins && ins.binder_source;
  if (source) {
    const text = BINDER_SOURCE_TEXT[source.mode] || source.mode;
    const left = source.hold_left_s !== null && source.hold_left_s !== undefined
      ? ` (${fmt(source.hold_left_s, 0)} s left)` : "";
    parts.push(h("span", { id: "binder-source", class: source.mode === "normal" ? "" : "warn", "data-mode": source.mode, text: text + left }));
  }
  const balance = ins && ins.balance;
  if (balance) {
    if (parts.length) parts.push(" · ");
    let text = "flow balance: not judged (not at steady production)";
    if (balance.alarm) {
      const others = balance.indistinguishable.filter((g) => g !== balance.most_likely);
      text = `flow balance: instruments disagree, most likely ${balance.most_likely}` +
        (others.length ? ` (or ${others.join(", ")})` : "");
    } else if (balance.judged) {
      text = `flow balance agrees (${fmt(balance.disagreement, 2)} of the alarm threshold)`;
    }
    parts.push(h("span", { id: "flow-balance", class: balance.alarm ? "warn" : "", "data-alarm": String(balance.alarm), text }));
  }
  return h("p", { class: "muted", id: "instruments" }, parts);
}

function pourButton(pourId, verb, label, cls) {
  return h("button", {
    type: "button",
    class: cls,
    "data-action": verb,
    text: label,
    onclick: async (ev) => {
      ev.currentTarget.disabled = true;
      try {
        await api(`/pours/${encodeURIComponent(pourId)}/${verb}`, { method: "POST" });
        clearError();
      } catch (err) {
        showError(err);
      }
      refreshStatusNow();
      route();
    },
  });
}

function renderAlarms(st, role) {
  const body = $("#alarm-body");
  if (!body) return;
  if (!st.alarms.length) {
    body.className = "muted";
    body.replaceChildren(h("p", { text: "No active alarms." }));
    return;
  }
  body.className = "";
  const rows = st.alarms.map((a) =>
    h("tr", { class: `sev-${a.severity}${a.acknowledged ? " acked" : ""}`, "data-alarm": a.code },
      h("td", { text: a.severity }),
      h("td", {}, h("b", { text: a.code }), a.detail ? h("div", { class: "muted", text: a.detail }) : null),
      h("td", { text: fmtDateTime(a.since) }),
      h("td", { class: "alarm-state", text: a.state.replaceAll("_", " ") }),
      h("td", {}, !a.acknowledged && may.acknowledge(role)
        ? h("button", { type: "button", class: "ack", text: "Acknowledge", onclick: (ev) => acknowledge(ev, a.code) })
        : a.acknowledged ? h("span", { class: "muted", text: `by ${a.acknowledged_by || "?"}` }) : null)));
  body.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, ["Priority", "Alarm", "Since", "State", ""].map((t) => h("th", { text: t })))),
    h("tbody", {}, rows)));
}

async function acknowledge(ev, code) {
  ev.currentTarget.disabled = true;
  try {
    await api(`/alarms/${encodeURIComponent(code)}/acknowledge`, { method: "POST" });
    clearError();
  } catch (err) {
    showError(err);
  }
  refreshStatusNow();
}

// --- pours -----------------------------------------------------------------------------

function viewPours(main, token, params) {
  const filter = h("select", { id: "state-filter", onchange: () => { location.hash = filter.value ? `#/pours?state=${filter.value}` : "#/pours"; } },
    h("option", { value: "", text: "all states" }),
    POUR_STATES.map((st) => h("option", { value: st, text: st })));
  filter.value = params.get("state") || "";
  const table = h("div", { id: "pour-list", class: "muted", text: "loading…" });
  main.replaceChildren(
    h("h1", { text: "Pours" }),
    h("div", { class: "toolbar" }, h("label", { for: "state-filter", text: "State" }), filter),
    h("section", { class: "panel" }, table));
  const load = async () => {
    try {
      const q = filter.value ? `?state=${encodeURIComponent(filter.value)}` : "";
      const list = await api(`/pours${q}`);
      if (token !== app.viewToken) return;
      renderPourList(table, list.items);
    } catch (err) {
      if (token === app.viewToken) showError(err);
    }
  };
  load();
  const timer = setInterval(load, 5000);
  app.viewTimers.push(() => clearInterval(timer));
}

function renderPourList(box, items) {
  box.className = "";
  if (!items.length) {
    box.replaceChildren(h("p", { class: "muted", text: "No pours." }));
    return;
  }
  const rows = items.map((p) =>
    h("tr", { "data-pour": p.id },
      h("td", {}, h("a", { href: `#/pours/${encodeURIComponent(p.id)}`, text: p.stope_id })),
      h("td", {}, h("span", { class: `badge ${p.state}`, text: p.state })),
      h("td", { class: "num", text: `${fmt(p.poured_m3, 1)} / ${fmt(p.target_volume_m3, 1)}` }),
      h("td", { class: "num", text: fmt(p.average_solids_pct, 2) }),
      h("td", { class: "num", text: fmt(p.average_binder_pct, 2) }),
      h("td", { class: "num", text: fmt(p.off_spec_m3, 2) }),
      h("td", { text: fmtDateTime(p.started_at) }),
      h("td", { text: fmtDateTime(p.ended_at) }),
      h("td", { class: "muted", text: p.id })));
  box.replaceChildren(h("table", { id: "pours" },
    h("thead", {}, h("tr", {}, [
      ["Stope"], ["State"], ["m3 placed / target", "num"], ["Cw avg %", "num"], ["Bw avg %", "num"],
      ["Off-spec m3", "num"], ["Started"], ["Ended"], ["Pour id"],
    ].map(([t, c]) => h("th", { class: c, text: t })))),
    h("tbody", {}, rows)));
}

async function viewPourReport(main, token, pourId) {
  main.replaceChildren(h("p", { class: "muted", text: "loading…" }));
  let pour;
  let recipe;
  try {
    pour = await api(`/pours/${encodeURIComponent(pourId)}`);
    recipe = await api(`/recipes/${encodeURIComponent(pour.recipe_id)}`);
  } catch (err) {
    if (token !== app.viewToken) return;
    showError(err);
    main.replaceChildren(h("p", {}, h("a", { href: "#/pours", text: "Back to pours" })));
    return;
  }
  if (token !== app.viewToken) return;
  const role = session.role;
  const actions = h("div", { class: "toolbar" },
    h("a", { href: "#/pours", text: "← Pours" }),
    h("button", { type: "button", id: "download-csv", onclick: () => downloadCsv(`/pours/${encodeURIComponent(pour.id)}/report.csv`, `pour-${pour.id}.csv`) }, "Download CSV"),
    h("button", { type: "button", id: "print", class: "quiet", onclick: () => window.print() }, "Print"));
  if (may.runPours(role)) {
    if (pour.state === "planned") actions.append(pourButton(pour.id, "start", "Start"));
    if (pour.state === "running") actions.append(pourButton(pour.id, "pause", "Pause"));
    if (pour.state === "paused") actions.append(pourButton(pour.id, "resume", "Resume"));
    if (pour.state === "running" || pour.state === "paused") actions.append(pourButton(pour.id, "stop", "Stop", "danger"));
  }

  const mix = recipe.mix;
  const totals = h("table", { class: "kv" }, h("tbody", {},
    kv("State", h("span", { class: `badge ${pour.state}`, text: pour.state })),
    kv("Placed", `${fmt(pour.poured_m3, 2)} of ${fmt(pour.target_volume_m3, 2)} m3 (${fmt(pour.progress_pct, 0)} %)`),
    kv("Paste flow planned", `${fmt(pour.paste_flow_m3_h, 1)} m3/h`),
    kv("Dry tailings", `${fmt(pour.dry_tailings_t, 2)} t`),
    kv("Binder", `${fmt(pour.binder_t, 3)} t`),
    kv("Water", `${fmt(pour.water_m3, 2)} m3`),
    kv("Cw average (min–max)", `${fmt(pour.average_solids_pct, 2)} % (${fmt(pour.min_solids_pct, 2)}–${fmt(pour.max_solids_pct, 2)})`),
    kv("Bw average (min–max)", `${fmt(pour.average_binder_pct, 2)} % (${fmt(pour.min_binder_pct, 2)}–${fmt(pour.max_binder_pct, 2)})`),
    kv("Off-spec volume", h("b", { id: "off-spec", text: `${fmt(pour.off_spec_m3, 2)} m3` })),
    ...reconciledRows(pour.reconciliation),
    kv("of which at start-up", `${fmt(pour.startup_off_spec_m3, 2)} m3`),
    kv("Flush water", `${fmt(pour.flush_water_m3, 2)} m3`),
    kv("Volume without a good measurement", `${fmt(pour.unmeasured_m3, 2)} m3`),
    kv("Started", fmtDateTime(pour.started_at)),
    kv("Ended", fmtDateTime(pour.ended_at)),
    kv("Created by", pour.created_by)));
  const binderRows = Object.entries(pour.binder_t_by_component)
    .filter(([name, t]) => t > 0 || mix.binder.some((c) => c.name === name))
    .map(([name, t]) => {
    const design = mix.binder.find((c) => c.name === name);
    const share = pour.binder_t > 0 ? (100 * t) / pour.binder_t : null;
    return h("tr", {}, h("td", { text: name }), h("td", { class: "num", text: fmt(t, 3) }),
      h("td", { class: "num", text: fmt(share, 1) }), h("td", { class: "num", text: design ? fmt(design.fraction_pct, 1) : "—" }));
  });
  const binderTable = h("table", {},
    h("thead", {}, h("tr", {}, h("th", { text: "Component" }), h("th", { class: "num", text: "t placed" }),
      h("th", { class: "num", text: "% of binder" }), h("th", { class: "num", text: "recipe %" }))),
    h("tbody", {}, binderRows));
  const recipeTable = h("table", { class: "kv", id: "report-recipe" }, h("tbody", {},
    kv("Recipe", h("a", { href: `#/recipes/${encodeURIComponent(recipe.id)}`, text: `${recipe.name} v${recipe.version}` })),
    kv("Recipe id", recipe.id),
    kv("Approved by", recipe.approved_by || "— (not approved)"),
    kv("Bw target", `${fmt(mix.binder_pct, 2)} % of dry tailings`),
    kv("Cw target", `${fmt(mix.solids_pct, 2)} % of paste mass`),
    kv("Blend", mix.binder.map((c) => `${c.name} ${fmt(c.fraction_pct, 0)} %`).join(", ")),
    kv("Tailings SG / moisture", `${fmt(mix.tailings.specific_gravity, 2)} / ${fmt(mix.tailings.moisture_pct, 1)} %`),
    kv("Predicted UCS 28 d", recipe.predicted_ucs_28d ? `${fmt(recipe.predicted_ucs_28d.ucs_kpa, 0)} kPa` : "—")));
  const interruptions = pour.interruptions.length
    ? h("table", {}, h("thead", {}, h("tr", {}, ["Reason", "From", "To"].map((t) => h("th", { text: t })))),
      h("tbody", {}, pour.interruptions.map((i) => h("tr", {}, h("td", { text: i.reason }),
        h("td", { text: fmtDateTime(i.started_at) }), h("td", { text: fmtDateTime(i.ended_at) })))))
    : h("p", { class: "muted", text: "None." });
  const samples = pour.sample_ids.length
    ? h("ul", { id: "samples" }, pour.sample_ids.map((id) => h("li", { text: id })))
    : h("p", { class: "muted", text: "No cylinders recorded." });
  const cwChart = h("figure", { class: "panel trend", "data-trend": "report-cw" },
    h("h3", { text: "Cw over the pour (% of paste mass)" }), reportLegend("spec ±1 point"), h("div", { class: "plot-box" }));
  const bwChart = h("figure", { class: "panel trend", "data-trend": "report-bw" },
    h("h3", { text: "Bw over the pour (% of dry tailings)" }), reportLegend("spec ±5 % of target"), h("div", { class: "plot-box" }));

  main.replaceChildren(
    h("div", { id: "report" },
      actions,
      h("h1", {}, `Pour report: stope ${pour.stope_id}`),
      h("p", { class: "muted" }, `Pour ${pour.id} · report generated ${fmtDateTime(new Date().toISOString())}`),
      h("div", { class: "row" },
        h("section", { class: "panel" }, h("h2", { text: "Totals" }), totals),
        h("section", { class: "panel" }, h("h2", { text: "Recipe version" }), recipeTable,
          h("h3", { text: "Binder per component" }), binderTable)),
      h("div", { class: "row" }, cwChart, bwChart),
      h("div", { class: "row" },
        h("section", { class: "panel" }, h("h2", { text: "Interruptions" }), interruptions),
        h("section", { class: "panel" }, h("h2", { text: "Cylinder samples" }), samples)),
      h("section", { class: "panel", id: "compliance" }, h("h2", { text: "Cylinders against the design" }),
        h("p", { class: "muted", text: "loading…" }))));
  loadCompliance(pour.id, token);

  if (pour.started_at) {
    const from = Date.parse(pour.started_at);
    const to = pour.ended_at ? Date.parse(pour.ended_at) : Date.now();
    try {
      const data = await history(["solids_pct", "solids_pct_target", "binder_pct", "binder_pct_target"], from, Math.max(to, from + 1000));
      if (token !== app.viewToken) return;
      const x = { min: from, max: Math.max(to, from + 1000), time: true };
      const gapMs = Math.max(5, 3 * data.stepS) * 1000;
      const draw = () => {
        drawPlot($(".plot-box", cwChart), {
          x, gapMs, height: 230,
          series: [{ points: data.series.solids_pct, color: 0 }, { points: data.series.solids_pct_target, color: 1, dash: true }],
          bands: [{ points: bandPoints(data.series.solids_pct_target, { abs: SOLIDS_BAND_POINTS }) }],
        });
        drawPlot($(".plot-box", bwChart), {
          x, gapMs, height: 230,
          series: [{ points: data.series.binder_pct, color: 0 }, { points: data.series.binder_pct_target, color: 1, dash: true }],
          bands: [{ points: bandPoints(data.series.binder_pct_target, { rel: BINDER_BAND_RELATIVE }) }],
        });
      };
      draw();
      const resize = () => draw();
      window.addEventListener("resize", resize);
      window.addEventListener("beforeprint", resize);
      app.viewTimers.push(() => {
        window.removeEventListener("resize", resize);
        window.removeEventListener("beforeprint", resize);
      });
    } catch (err) {
      if (token === app.viewToken) showError(err);
    }
  } else {
    for (const chart of [cwChart, bwChart]) $(".plot-box", chart).replaceChildren(h("p", { class: "muted", text: "Not started." }));
  }
  if (pour.state === "running" || pour.state === "paused") {
    const timer = setTimeout(() => { if (token === app.viewToken) route(); }, 5000);
    app.viewTimers.push(() => clearTimeout(timer));
  }
}

function reportLegend(bandLabel) {
  return h("div", { class: "legend" },
    h("span", { class: "item" }, h("span", { class: "swatch c0" }), "measured"),
    h("span", { class: "item" }, h("span", { class: "swatch c1 dash" }), "target"),
    h("span", { class: "item" }, h("span", { class: "swatch band" }), bandLabel));
}

// The pour's Cw reconciled with an approved correction, beside the one it ran on (the
// record itself is never rewritten), and the off-spec volume on the best estimate.
function reconciledRows(rec) {
  if (!rec || rec.basis !== "reconciled" || !rec.reconciled) return [];
  const off = rec.off_spec;
  return [
    kv("Cw reconciled (min–max)", h("span", { id: "cw-reconciled", text:
      `${fmt(rec.reconciled.average_solids_pct, 2)} % (${fmt(rec.reconciled.min_solids_pct, 2)}–${fmt(rec.reconciled.max_solids_pct, 2)})` })),
    kv("Off-spec, best estimate", h("b", { id: "off-spec-best", text: `${fmt(off.volume_m3, 2)} m3 (${off.basis})` })),
    kv("Reconciled with", rec.detail),
  ];
}

const VERDICT_TEXT = {
  no_results: "no result yet",
  no_design: "no design pass fraction",
  below_design: "below the design",
  consistent: "consistent with the design",
  above_design: "above the design",
};

// Tested strength of the pour's cylinders against each requirement at its age, the pass
// fraction (with its interval) against the design's, and the failed or overdue cylinders.
async function loadCompliance(pourId, token) {
  let c;
  try {
    c = await api(`/pours/${encodeURIComponent(pourId)}/compliance`);
  } catch (err) {
    if (token === app.viewToken) showError(err);
    return;
  }
  if (token !== app.viewToken) return;
  const box = $("#compliance");
  if (!box) return;
  const rows = c.pass_fractions.filter((f) => f.group === "pour");
  const table = rows.length
    ? h("table", { id: "pass-fractions" },
      h("thead", {}, h("tr", {}, [
        ["Requirement"], ["Required kPa", "num"], ["Age d", "num"], ["Tested", "num"], ["Passed", "num"],
        ["Pass %", "num"], ["Interval %", "num"], ["Design %", "num"], ["Verdict"],
      ].map(([t, cls]) => h("th", { class: cls, text: t })))),
      h("tbody", {}, rows.map((f) => h("tr", { "data-requirement": f.requirement, "data-verdict": f.verdict },
        h("td", { text: f.requirement }),
        h("td", { class: "num", text: fmt(f.required_ucs_kpa, 0) }),
        h("td", { class: "num", text: fmt(f.curing_days, 0) }),
        h("td", { class: "num", text: String(f.n) }),
        h("td", { class: "num", text: String(f.passed) }),
        h("td", { class: "num", text: f.pass_pct === null ? "—" : fmt(f.pass_pct, 0) }),
        h("td", { class: "num", text: f.pass_pct_low === null ? "—" : `${fmt(f.pass_pct_low, 0)}–${fmt(f.pass_pct_high, 0)}` }),
        h("td", { class: "num", text: f.design_pass_pct === null ? "—" : fmt(f.design_pass_pct, 0) }),
        h("td", { class: f.verdict === "below_design" ? "warn" : "", text: VERDICT_TEXT[f.verdict] || f.verdict })))))
    : h("p", { class: "muted", text: "No requirement to judge the cylinders against (the recipe has no design and the pour no stope plan)." });
  const notices = c.notices.length
    ? h("ul", { id: "lab-notices" }, c.notices.map((n) => h("li", { class: n.severity === "high" ? "warn" : "", "data-kind": n.kind, text: `${n.kind}: ${n.detail}` })))
    : h("p", { class: "muted", id: "lab-notices-none", text: "No failed or overdue cylinder." });
  box.replaceChildren(h("h2", { text: "Cylinders against the design" }),
    h("p", { class: "muted", text: `${c.samples} cylinder(s) cast · judged ${fmtDateTime(c.evaluated_at)}` }),
    table, notices);
}

function kv(label, value) {
  return h("tr", {}, h("th", { text: label }), h("td", {}, value));
}

// A report's CSV, fetched with the key (a plain link would carry none) and saved.
async function downloadCsv(path, filename) {
  try {
    const response = await api(path, { raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    showError(err);
  }
}

// --- recipes ---------------------------------------------------------------------------

async function viewRecipes(main, token) {
  main.replaceChildren(h("h1", { text: "Recipes" }), h("p", { class: "muted", text: "loading…" }));
  let recipes;
  try {
    recipes = await api("/recipes");
  } catch (err) {
    if (token === app.viewToken) showError(err);
    return;
  }
  if (token !== app.viewToken) return;
  if (!recipes.length) {
    main.replaceChildren(h("h1", { text: "Recipes" }), h("p", { class: "muted", text: "No stored recipes." }));
    return;
  }
  const rows = recipes.map((r) => h("tr", { "data-recipe": r.id },
    h("td", {}, h("a", { href: `#/recipes/${encodeURIComponent(r.id)}`, text: r.name })),
    h("td", { class: "num", text: r.version }),
    h("td", { class: "num", text: fmt(r.mix.binder_pct, 2) }),
    h("td", { class: "num", text: fmt(r.mix.solids_pct, 2) }),
    h("td", { text: r.mix.binder.map((c) => `${c.name} ${fmt(c.fraction_pct, 0)} %`).join(", ") }),
    h("td", { class: "num", text: r.predicted_ucs_28d ? fmt(r.predicted_ucs_28d.ucs_kpa, 0) : "—" }),
    h("td", { text: r.approved_by || "—" }),
    h("td", { text: fmtDateTime(r.created_at) })));
  main.replaceChildren(h("h1", { text: "Recipes" }), h("section", { class: "panel" }, h("table", { id: "recipes" },
    h("thead", {}, h("tr", {}, [["Name"], ["Version", "num"], ["Bw %", "num"], ["Cw %", "num"], ["Blend"],
      ["UCS 28 d kPa", "num"], ["Approved by"], ["Stored"]].map(([t, c]) => h("th", { class: c, text: t })))),
    h("tbody", {}, rows))));
}

function designFigures(recipe) {
  const d = recipe.design || {};
  const costed = d.recipe && typeof d.recipe === "object" ? d.recipe : d;
  const cementOnly = d.cement_only && typeof d.cement_only === "object" ? d.cement_only : {};
  const num = (...values) => values.find((v) => typeof v === "number" && Number.isFinite(v)) ?? null;
  const pred = recipe.predicted_ucs_28d || {};
  return {
    required: num(d.required_ucs_kpa),
    predicted: num(pred.ucs_kpa, costed.predicted_ucs_kpa),
    lower: num(pred.lower_ucs_kpa),
    passPct: num(pred.pass_fraction_pct, d.pass_fraction_pct),
    requirements: Array.isArray(costed.requirements) ? costed.requirements : [],
    cost: num(costed.binder_cost_per_m3, d.cost_per_m3, d.binder_cost_per_m3),
    cementOnlyCost: num(cementOnly.binder_cost_per_m3, d.cement_only_cost_per_m3),
    saving: num(d.saving_per_m3),
    savingPct: num(d.saving_pct),
    curingDays: num(d.curing_days) ?? 28,
  };
}

async function viewRecipe(main, token, recipeId) {
  main.replaceChildren(h("p", { class: "muted", text: "loading…" }));
  let recipe;
  try {
    recipe = await api(`/recipes/${encodeURIComponent(recipeId)}`);
  } catch (err) {
    if (token === app.viewToken) showError(err);
    return;
  }
  if (token !== app.viewToken) return;
  const f = designFigures(recipe);
  const mix = recipe.mix;
  const pred = recipe.predicted_ucs_28d;
  const design = h("table", { class: "kv", id: "design" }, h("tbody", {},
    kv("Required UCS", f.required !== null ? `${fmt(f.required, 0)} kPa` : "— (not in the stored design)"),
    kv("Predicted UCS at 28 d", f.predicted !== null
      ? `${fmt(f.predicted, 0)} kPa median${f.lower !== null ? `; ${fmt(f.lower, 0)} kPa for ${fmt(f.passPct, 0)} % of cylinders` : ""}${pred && pred.extrapolated ? " (extrapolated)" : ""}${pred && pred.example ? " (EXAMPLE calibration, not for design)" : ""}`
      : "—"),
    ...f.requirements.map((r) => kv(`Requirement ${r.name}`,
      `${fmt(r.required_ucs_kpa, 0)} kPa at ${fmt(r.curing_days, 0)} d: ${fmt(r.pass_probability_pct, 1)} % of cylinders pass${r.binding ? " (binding)" : ""}`)),
    kv("Binder cost per m3", f.cost !== null ? fmt(f.cost, 2) : "—"),
    kv("Cement-only cost per m3", f.cementOnlyCost !== null ? fmt(f.cementOnlyCost, 2) : "—"),
    kv("Saving against cement-only", f.saving !== null
      ? `${fmt(f.saving, 2)} per m3${f.savingPct !== null ? ` (${fmt(f.savingPct, 1)} %)` : ""}`
      : "—"),
    kv("Calibration", recipe.calibration_id || "— (none)"),
    kv("Approved by", recipe.approved_by || "— (not approved)"),
    recipe.prediction_note ? kv("Note", recipe.prediction_note) : null));
  const mixTable = h("table", { class: "kv" }, h("tbody", {},
    kv("Bw", `${fmt(mix.binder_pct, 2)} % of dry tailings`),
    kv("Cw", `${fmt(mix.solids_pct, 2)} % of paste mass`),
    kv("Blend", mix.binder.map((c) => `${c.name} ${fmt(c.fraction_pct, 0)} %`).join(", ")),
    kv("Wet density", `${fmt(recipe.per_m3.wet_density_kg_m3, 0)} kg/m3`),
    kv("Binder per m3", `${fmt(recipe.per_m3.binder_kg, 1)} kg`),
    kv("Water / binder", fmt(recipe.water_binder_ratio, 2))));
  const curve = h("figure", { class: "panel trend", "data-trend": "ucs-curve" },
    h("h3", { text: `UCS at ${fmt(f.curingDays, 0)} d against Bw, at this blend and Cw` }),
    h("div", { class: "legend" },
      h("span", { class: "item" }, h("span", { class: "swatch c0" }), "median"),
      h("span", { class: "item" }, h("span", { class: "swatch c2" }),
        `lower bound: ${fmt(f.passPct ?? 90, 0)} % of cylinders pass`),
      h("span", { class: "item" }, h("span", { class: "swatch c0 dash" }), "outside the tested combinations"),
      f.required !== null ? h("span", { class: "item" }, h("span", { class: "swatch c1 dash" }), "required UCS") : null),
    h("div", { class: "plot-box", text: recipe.calibration_id ? "computing…" : "No calibration: no curve." }));
  main.replaceChildren(
    h("div", { class: "toolbar" }, h("a", { href: "#/recipes", text: "← Recipes" })),
    h("h1", {}, `Recipe ${recipe.name} v${recipe.version}`),
    h("div", { class: "row" },
      h("section", { class: "panel" }, h("h2", { text: "Design" }), design),
      h("section", { class: "panel" }, h("h2", { text: "Mix" }), mixTable)),
    curve,
    recipe.design ? h("details", { class: "panel" }, h("summary", { text: "Stored design record" }),
      h("pre", { class: "design", text: JSON.stringify(recipe.design, null, 2) })) : null);
  if (recipe.calibration_id) await drawUcsCurve(curve, recipe, f, token);
}

async function drawUcsCurve(figure, recipe, f, token) {
  const box = $(".plot-box", figure);
  const mix = recipe.mix;
  const blend = Object.fromEntries(mix.binder.map((c) => [c.name, c.fraction_pct]));
  try {
    const calibration = await api(`/calibrations/${encodeURIComponent(recipe.calibration_id)}`);
    const range = calibration.range.binder_pct;
    const lo = Math.max(0.5, Math.min(range.min, mix.binder_pct * 0.8));
    const hi = Math.min(50, Math.max(range.max, mix.binder_pct * 1.2));
    const n = 25;
    const bws = Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
    // The curve, and the recipe itself at the plotted age (the marker).
    const all = await Promise.all([...bws, mix.binder_pct].map((bw) => api(`/calibrations/${encodeURIComponent(recipe.calibration_id)}/predict`, {
      method: "POST",
      body: { blend, binder_pct: bw, solids_pct: mix.solids_pct, curing_days: f.curingDays, allow_extrapolation: true },
    })));
    if (token !== app.viewToken) return;
    const answers = all.slice(0, n);
    const own = all[n];
    // Solid where the model is inside its tested combinations, dashed where it extrapolates;
    // the lower line is the UCS the site's pass fraction of cylinders exceeds.
    const inside = answers.map((a, i) => [bws[i], a.extrapolated ? null : a.ucs_kpa]);
    const outside = answers.map((a, i) => [bws[i], a.ucs_kpa]);
    const lowerInside = answers.map((a, i) => [bws[i], a.extrapolated ? null : a.lower_ucs_kpa]);
    const lowerOutside = answers.map((a, i) => [bws[i], a.lower_ucs_kpa]);
    const markerY = own.ucs_kpa;
    drawPlot(box, {
      x: { min: lo, max: hi, time: false },
      xLabel: "Bw, % of dry tailings",
      yLabel: "UCS kPa",
      yFromZero: true,
      height: 300,
      bands: [{ points: answers.map((a, i) => [bws[i], a.lower_ucs_kpa, a.ucs_kpa]) }],
      series: [
        { points: outside, color: 0, dash: true }, { points: inside, color: 0 },
        { points: lowerOutside, color: 2, dash: true }, { points: lowerInside, color: 2 },
      ],
      hlines: f.required !== null ? [{ y: f.required, label: `required ${fmt(f.required, 0)} kPa` }] : [],
      markers: markerY !== null ? [{ x: mix.binder_pct, y: markerY }] : [],
    });
    figure.setAttribute("data-points", String(answers.length));
  } catch (err) {
    if (token !== app.viewToken) return;
    box.replaceChildren(h("p", { class: "muted", text: `No curve: ${err.message}` }));
  }
}

// --- stopes ----------------------------------------------------------------------------

const STOPE_POLL_MS = 2000;
const STOPE_LIST_POLL_MS = 5000;
// Plant time may run faster than this screen's clock (the built-in simulator); the hold
// timer counts at the pace the service's answers show, never faster than this.
const MAX_PLANT_PACE = 1000;

const STAGE_STATE_TEXT = {
  pending: "pending",
  waiting_release: "waiting for a release",
  ready: "ready to pour",
  filling: "filling",
  curing: "curing",
  released: "released",
  done: "done (recipe switched)",
};

const PLAN_LOG_TEXT = {
  stage_started: "stage started",
  hold_started: "hold started",
  released: "released",
  revised: "plan revised",
  closed: "stope closed",
};

// A hold's time left: hours, minutes and seconds (holds are quoted in hours).
function fmtHold(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const total = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(total / 3600);
  const rest = `${pad(Math.floor((total % 3600) / 60))} min ${pad(total % 60)} s`;
  return hours ? `${hours} h ${rest}` : rest;
}

function currentStage(stope) {
  return stope.current_stage === null || stope.current_stage === undefined
    ? null : stope.stages[stope.current_stage] || null;
}

// What the stope view shows for the stope now: its state, or its current stage's.
function stopePhase(stope) {
  const stage = currentStage(stope);
  if (stope.state === "filled" || stope.state === "closed" || !stage) return stope.state;
  return stage.state;
}

function barricadeName(tag) {
  const n = /^barricade_(\d+)_pressure_pv$/.exec(tag);
  return n ? `Barricade ${n[1]}` : "Barricade";
}

function barricadeLevel(kpa, stope) {
  if (kpa === null || kpa === undefined) return "bad";
  if (kpa >= stope.barricade_rating_kpa) return "alarm";
  if (kpa >= (stope.barricade_rating_kpa * stope.barricade_high_alarm_pct) / 100) return "warn";
  return "ok";
}

function viewStopes(main, token) {
  const box = h("div", { id: "stope-list", class: "muted", text: "loading…" });
  main.replaceChildren(h("h1", { text: "Stopes" }), h("section", { class: "panel" }, box));
  const load = async () => {
    try {
      const stopes = await api("/stopes");
      if (token !== app.viewToken) return;
      renderStopeList(box, stopes);
    } catch (err) {
      if (token === app.viewToken) showError(err);
    }
  };
  load();
  const timer = setInterval(load, STOPE_LIST_POLL_MS);
  app.viewTimers.push(() => clearInterval(timer));
}

function renderStopeList(box, stopes) {
  box.className = "";
  if (!stopes.length) {
    box.replaceChildren(h("p", { class: "muted", text: "No stopes." }));
    return;
  }
  const rows = stopes.map((st) => {
    const stage = currentStage(st);
    const pressures = Object.values(st.barricade_pressure_kpa).filter((v) => v !== null);
    const pressure = pressures.length ? Math.max(...pressures) : null;
    return h("tr", { "data-stope": st.id },
      h("td", {}, h("a", { href: `#/stopes/${encodeURIComponent(st.id)}`, text: st.name })),
      h("td", {}, h("span", { class: `badge ${st.state}`, text: st.state })),
      h("td", { class: "num", "data-col": "fill" }, `${fmt(st.fill_height_m, 2)} / ${fmt(st.height_m, 2)}`),
      h("td", { "data-col": "stage" }, stage
        ? [h("b", { text: stage.name }), ` ${STAGE_STATE_TEXT[stage.state] || stage.state}`]
        : h("span", { class: "muted", text: "no plan" })),
      h("td", { class: "num", "data-col": "hold" }, st.hold_remaining_s === null
        ? "" : st.hold_remaining_s > 0 ? fmtHold(st.hold_remaining_s) : h("b", { text: "elapsed" })),
      h("td", { class: "num" }, pressure === null ? "—"
        : h("span", { class: `level ${barricadeLevel(pressure, st)}`, text: `${fmt(pressure, 0)} / ${fmt(st.barricade_rating_kpa, 0)}` })),
      h("td", { class: "num", text: `${fmt(st.placed_m3, 1)} / ${fmt(st.volume_m3, 1)}` }),
      h("td", { text: st.plan_version === null ? "—" : `v${st.plan_version} ${st.continuous ? "continuous" : "staged"}` }),
      h("td", { text: fmtDateTime(st.created_at) }));
  });
  box.replaceChildren(h("table", { id: "stopes" },
    h("thead", {}, h("tr", {}, [
      ["Stope"], ["State"], ["Fill height / stope m", "num"], ["Current stage"], ["Hold left", "num"],
      ["Barricade / rating kPa", "num"], ["Placed / stope m3", "num"], ["Plan"], ["Created"],
    ].map(([t, c]) => h("th", { class: c, text: t })))),
    h("tbody", {}, rows)));
}

async function viewStope(main, token, stopeId) {
  main.replaceChildren(h("p", { class: "muted", text: "loading…" }));
  const path = `/stopes/${encodeURIComponent(stopeId)}`;
  let stope;
  try {
    stope = await api(path);
  } catch (err) {
    if (token !== app.viewToken) return;
    showError(err);
    main.replaceChildren(h("p", {}, h("a", { href: "#/stopes", text: "Back to stopes" })));
    return;
  }
  if (token !== app.viewToken) return;
  // The recipe versions of the stages, by id (a missing one shows its id).
  const recipes = new Map();
  await Promise.all([...new Set(stope.stages.map((st) => st.recipe_id))].map(async (id) => {
    try {
      recipes.set(id, await api(`/recipes/${encodeURIComponent(id)}`));
    } catch (_err) {
      recipes.set(id, null);
    }
  }));
  if (token !== app.viewToken) return;

  const view = {
    stope,
    recipes,
    role: session.role,
    stageKey: null,
    hold: { key: null, remaining: null, at: 0, pace: 1, paced: false },
  };
  const gaugeBox = h("div", { id: "gauge-box" });
  const gaugeNote = h("p", { id: "gauge-note" });
  const stagePanel = h("section", { class: "panel", id: "stage-panel" });
  const barricadePanel = h("section", { class: "panel", id: "barricade" });
  const stagesBox = h("div", { id: "stages-box" });
  const switchBox = h("div", { id: "switch-points" });
  const historyBox = h("div", { id: "plan-history" });
  const specs = stopeTrendSpecs(() => view.stope);
  main.replaceChildren(
    h("div", { id: "stope-view" },
      h("div", { class: "toolbar" },
        h("a", { href: "#/stopes", text: "← Stopes" }),
        h("button", {
          type: "button",
          id: "download-stope-csv",
          onclick: () => downloadCsv(`${path}/report.csv`, `stope-${stope.id}.csv`),
        }, "Stope report CSV"),
        h("button", { type: "button", id: "print", class: "quiet", onclick: () => window.print() }, "Print")),
      h("h1", {}, `Stope ${stope.name} `, h("span", { id: "stope-state", class: `badge ${stope.state}`, text: stope.state })),
      h("p", { class: "muted", id: "stope-summary" }),
      h("div", { class: "row" },
        h("section", { class: "panel gauge-panel" }, h("h2", { text: "Fill height" }), gaugeBox, gaugeNote),
        h("div", { class: "stack" }, stagePanel, barricadePanel)),
      h("section", { class: "panel" }, h("h2", { text: "Fill plan" }), stagesBox),
      h("div", { class: "section-head" }, h("h2", { text: "Barricade and fill height" }), windowSelect(token)),
      h("p", { class: "muted trend-note", text: "From the plant history: the instrumented barricade and the fill height of the stope its running pour fills." }),
      trendGrid(specs),
      h("div", { class: "row" },
        h("section", { class: "panel" }, h("h2", { text: "Recipe switch points" }), switchBox),
        h("section", { class: "panel" }, h("h2", { text: "Holds and releases" }), historyBox))));

  const render = () => {
    const st = view.stope;
    const badge = $("#stope-state");
    badge.className = `badge ${st.state}`;
    badge.textContent = st.state;
    $("#stope-summary").textContent = stopeSummary(st);
    drawGauge(gaugeBox, st);
    gaugeNote.replaceChildren(
      h("span", { class: "big", id: "fill-height", text: `${fmt(st.fill_height_m, 2)} m` }),
      ` of ${fmt(st.height_m, 2)} m · `,
      `${fmt(st.placed_m3, 1)} of ${fmt(st.volume_m3, 1)} m3 placed`);
    renderStagePanel(stagePanel, view, show);
    renderBarricade(barricadePanel, st);
    renderStages(stagesBox, st, view.recipes);
    renderSwitchPoints(switchBox, st, view.recipes);
    renderPlanHistory(historyBox, st);
    drawTrends();
  };
  // A stope as the service answered at `at` (this screen's clock).
  const show = (next, at) => {
    if (token !== app.viewToken) return;
    noteHold(view, next, at);
    view.stope = next;
    render();
  };
  let inFlight = false;
  const refresh = async () => {
    if (inFlight) return;
    inFlight = true;
    try {
      const sent = Date.now();
      const next = await api(path);
      show(next, (sent + Date.now()) / 2);
    } catch (err) {
      if (token === app.viewToken) showError(err);
    } finally {
      inFlight = false;
    }
  };
  show(stope, Date.now());
  startTrends(token, specs);
  // The stage panel follows the status too (paste to the dump), between stope reads.
  onStatus(token, () => updateStageLive(view));
  const poll = setInterval(refresh, STOPE_POLL_MS);
  const tick = setInterval(() => tickHold(view), 250);
  app.viewTimers.push(() => {
    clearInterval(poll);
    clearInterval(tick);
  });
}

function stopeSummary(st) {
  const plan = st.plan_version === null ? "no fill plan"
    : `plan v${st.plan_version}, ${st.continuous ? "continuous (the recipe switches at each stage top)" : "staged (each stage stops at its top and cures)"}`;
  return `${plan} · plan area ${fmt(st.plan_area_m2, 1)} m2 × ${fmt(st.height_m, 1)} m = ${fmt(st.volume_m3, 1)} m3 · ` +
    `barricade rated ${fmt(st.barricade_rating_kpa, 0)} kPa, high alarm at ${fmt(st.barricade_high_alarm_pct, 0)} % · ` +
    `created ${fmtDateTime(st.created_at)} by ${st.created_by} · report generated ${fmtDateTime(new Date().toISOString())}`;
}

// The hold's time left comes with every answer; between answers the timer counts on at
// the pace of plant time the answers show (faster than the wall clock on the simulator).
function noteHold(view, stope, at) {
  const hold = view.hold;
  const stage = currentStage(stope);
  const remaining = stope.hold_remaining_s;
  const key = stage && remaining !== null ? `${stage.index}:${stage.hold_ends_at}` : null;
  if (key !== null && key === hold.key && hold.remaining !== null && remaining > 0) {
    const dt = (at - hold.at) / 1000;
    const pace = (hold.remaining - remaining) / dt;
    // A jump (the plant's clock moved) is no pace; it resets the count below.
    if (dt > 0.5 && pace >= 0 && pace <= MAX_PLANT_PACE) {
      hold.pace = hold.paced ? (hold.pace + pace) / 2 : pace;
      hold.paced = true;
    }
  }
  if (key !== hold.key) {
    hold.pace = 1;
    hold.paced = false;
  }
  hold.key = key;
  hold.remaining = remaining;
  hold.at = at;
}

function holdLeft(view) {
  const hold = view.hold;
  if (hold.remaining === null) return null;
  return Math.max(0, hold.remaining - (hold.pace * (Date.now() - hold.at)) / 1000);
}

function tickHold(view) {
  const el = $("#hold-remaining");
  if (!el) return;
  const left = holdLeft(view);
  el.textContent = fmtHold(left);
  el.setAttribute("data-remaining-s", left === null ? "" : left.toFixed(1));
}

// The current stage: filling (its rise rate against its limit), curing (the hold timer
// and, for engineers, the release), ready, or the stope filled. Built anew when the
// stage or its state changes, updated in place otherwise (a button under the pointer
// stays the same button).
function renderStagePanel(panel, view, show) {
  const st = view.stope;
  const stage = currentStage(st);
  const phase = stopePhase(st);
  const key = `${st.current_stage}:${phase}:${st.plan_version}`;
  panel.setAttribute("data-state", phase);
  panel.setAttribute("data-stage", stage ? stage.name : "");
  if (view.stageKey !== key) {
    view.stageKey = key;
    panel.replaceChildren(...stagePanelBody(view, stage, phase, show));
  }
  updateStagePanel(view, stage, phase);
}

function stagePanelBody(view, stage, phase, show) {
  const st = view.stope;
  if (!stage) {
    return [h("h2", { text: "Current stage" }), h("p", { class: "muted", text: "No fill plan: an engineer adds one." })];
  }
  const title = h("h2", {}, `Stage ${stage.index + 1} of ${st.stages.length}: `, h("span", { class: "stage-name", text: stage.name }), " ",
    h("span", { class: `badge ${phase}`, id: "stage-state", text: STAGE_STATE_TEXT[phase] || phase }));
  const next = st.stages[stage.index + 1];
  if (phase === "filling") {
    return [title,
      h("div", { class: "figure-row" },
        h("span", { class: "label", text: "Rise rate" }),
        h("span", { class: "big", id: "rise-rate", text: "—" }),
        h("span", { id: "rise-limit", class: "muted" })),
      h("div", { class: "bar-box", id: "rise-bar" }),
      h("progress", { id: "stage-progress", max: 1, value: 0, "aria-label": "fill height within the stage" }),
      h("p", { id: "stage-placed" }),
      h("p", { id: "stage-dump", class: "notice", hidden: true, text: "Paste goes to the dump (start-up or flush): it does not count as stope volume." }),
      h("p", { id: "stage-pour" })];
  }
  if (phase === "curing") {
    const body = [title,
      h("div", { class: "figure-row" },
        h("span", { class: "label", text: "Hold left" }),
        h("span", { class: "big", id: "hold-remaining", "data-remaining-s": "", text: "—" })),
      h("p", { id: "hold-ends" },
        `${fmt(stage.cure_hold_h, 1)} h hold from the stage top, ending ${fmtDateTime(stage.hold_ends_at)} (plant time). `,
        next ? `Then stage ${next.name} may be poured once an engineer releases it.` : "The stope is filled once it is released.")];
    if (may.release(view.role)) {
      body.push(h("div", { class: "toolbar no-print" },
        h("button", {
          type: "button",
          id: "release",
          disabled: true,
          onclick: (ev) => releaseHold(ev, view, show),
        }, next ? `Release: ${next.name} may be poured` : "Release: the stope is filled"),
        h("span", { id: "release-note", class: "muted" })));
    } else {
      body.push(h("p", { class: "muted", text: "An engineer releases the stage once its hold has elapsed." }));
    }
    return body;
  }
  if (phase === "ready" || phase === "waiting_release" || phase === "pending") {
    const recipe = view.recipes.get(stage.recipe_id);
    return [title, h("p", {},
      `Recipe ${recipe ? `${recipe.name} v${recipe.version}` : stage.recipe_id}, to ${fmt(stage.top_height_m, 1)} m ` +
      `at up to ${fmt(stage.max_rise_rate_m_h, 1)} m/h. An operator makes and starts the stage's pour.`)];
  }
  if (phase === "filled") return [h("h2", { text: "Filled" }), h("p", { text: "Every stage is placed and released: the stope may be closed." })];
  if (phase === "closed") return [h("h2", { text: "Closed" }), h("p", { text: "The stope's record is complete." })];
  return [title];
}

function updateStagePanel(view, stage, phase) {
  const st = view.stope;
  if (!stage) return;
  if (phase === "filling") {
    const limit = stage.max_rise_rate_m_h;
    const rise = st.rise_rate_m_h;
    const level = rise === null ? "bad" : rise > limit * 1.05 ? "alarm" : rise > limit ? "warn" : "ok";
    const riseEl = $("#rise-rate");
    riseEl.textContent = rise === null ? "—" : `${fmt(rise, 1)} m/h`;
    riseEl.className = `big level ${level}`;
    $("#rise-limit").textContent = rise === null
      ? `no paste flow measured · limit ${fmt(limit, 1)} m/h`
      : `against the limit of ${fmt(limit, 1)} m/h (${fmt((100 * rise) / limit, 0)} %)`;
    levelBar($("#rise-bar"), {
      value: rise, max: limit * 1.25, level, marks: [{ at: limit, label: `limit ${fmt(limit, 0)} m/h`, cls: "alarm" }],
    });
    const bottom = stage.index > 0 ? st.stages[stage.index - 1].top_height_m : 0;
    const progress = $("#stage-progress");
    progress.max = Math.max(1e-6, stage.top_height_m - bottom);
    progress.value = Math.min(progress.max, Math.max(0, st.fill_height_m - bottom));
    $("#stage-placed").textContent = `${fmt(st.fill_height_m, 2)} m of the stage's top at ${fmt(stage.top_height_m, 2)} m · ` +
      `${fmt(Math.max(0, stage.top_volume_m3 - st.placed_m3), 1)} m3 to go`;
    $("#stage-pour").replaceChildren(st.active_pour_id
      ? h("a", { href: `#/pours/${encodeURIComponent(st.active_pour_id)}`, text: "The running pour's report" })
      : h("span", { class: "muted", text: "No pour of this stope is running." }));
    updateStageLive(view);
  } else if (phase === "curing") {
    const releasable = st.hold_remaining_s !== null && st.hold_remaining_s <= 0;
    const button = $("#release");
    if (button && !button.classList.contains("busy")) button.disabled = !releasable;
    const note = $("#release-note");
    if (note) note.textContent = releasable ? "The hold has elapsed." : "Enabled once the hold has elapsed.";
    tickHold(view);
  }
}

// Between stope reads: whether the paste goes to the dump now (the diverter's tag).
function updateStageLive(view) {
  const note = $("#stage-dump");
  if (!note) return;
  const m = app.status && app.status.measurements.diverted_to_dump_pv;
  note.hidden = !(view.stope.active_pour_id && m && m.quality === "good" && m.value);
}

// Release the curing stage; the service's refusal (hold_not_elapsed: how long is left)
// goes to the error banner and the button follows the service's figures again.
async function releaseHold(ev, view, show) {
  const button = ev.currentTarget;
  button.disabled = true;
  button.classList.add("busy");
  const sent = Date.now();
  try {
    const released = await api(`/stopes/${encodeURIComponent(view.stope.id)}/release`, { method: "POST" });
    clearError();
    button.classList.remove("busy");
    show(released, (sent + Date.now()) / 2);
  } catch (err) {
    showError(err);
    button.classList.remove("busy");
    show(view.stope, view.hold.at);
  }
}

// A horizontal bar: `value` of `max`, with marks (a limit, an alarm level).
function levelBar(box, { value, max, level, marks = [] }) {
  const width = Math.max(240, Math.round(box.clientWidth || 400));
  const height = 44;
  const x0 = 6;
  const x1 = width - 6;
  const sx = (v) => x0 + (Math.min(Math.max(v, 0), max) / max) * (x1 - x0);
  const svg = s("svg", { class: "bar", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" },
    s("rect", { class: "track", x: x0, y: 6, width: x1 - x0, height: 16 }));
  if (value !== null && value !== undefined && Number.isFinite(value)) {
    svg.append(s("rect", { class: `value ${level || ""}`, x: x0, y: 6, width: sx(value) - x0, height: 16 }));
  }
  for (const mk of marks) {
    const x = sx(mk.at);
    const anchor = x > x1 - 60 ? "end" : x < x0 + 60 ? "start" : "middle";
    svg.append(s("line", { class: `mark ${mk.cls || ""}`, x1: x, x2: x, y1: 2, y2: 26 }),
      s("text", { class: `mark-label ${mk.cls || ""}`, x, y: 39, "text-anchor": anchor, text: mk.label }));
  }
  box.replaceChildren(svg);
}

function renderBarricade(panel, st) {
  const rating = st.barricade_rating_kpa;
  const high = (rating * st.barricade_high_alarm_pct) / 100;
  const tags = Object.keys(st.barricade_pressure_kpa).sort();
  const body = [h("h2", { text: "Barricade pressure" })];
  const bars = [];
  if (!tags.length) body.push(h("p", { class: "muted", text: "No barricade pressure is measured." }));
  for (const tag of tags) {
    const kpa = st.barricade_pressure_kpa[tag];
    const level = barricadeLevel(kpa, st);
    const bar = h("div", { class: "bar-box" });
    body.push(h("div", { class: "barricade", "data-tag": tag, "data-level": level },
      h("div", { class: "figure-row" },
        h("span", { class: "label", text: barricadeName(tag) }),
        h("span", { class: `big level ${level}`, "data-value": kpa === null ? "" : kpa.toFixed(1), text: kpa === null ? "—" : `${fmt(kpa, 0)} kPa` }),
        h("span", { class: "muted", text: kpa === null
          ? "no good reading"
          : `${fmt((100 * kpa) / rating, 0)} % of the ${fmt(rating, 0)} kPa rating · high alarm at ${fmt(high, 0)} kPa` })),
      bar));
    bars.push([bar, {
      value: kpa, max: rating * 1.15, level,
      marks: [
        { at: high, label: `high alarm ${fmt(high, 0)}`, cls: "warn" },
        { at: rating, label: `rating ${fmt(rating, 0)} kPa`, cls: "alarm" },
      ],
    }]);
  }
  panel.replaceChildren(...body);
  for (const [bar, spec] of bars) levelBar(bar, spec); // in the page: they take its width
}

function recipeLabel(recipes, id) {
  const recipe = recipes.get(id);
  return h("a", { href: `#/recipes/${encodeURIComponent(id)}`, text: recipe ? `${recipe.name} v${recipe.version}` : id.slice(0, 8) });
}

function renderStages(box, st, recipes) {
  if (!st.stages.length) {
    box.replaceChildren(h("p", { class: "muted", text: "No fill plan." }));
    return;
  }
  const rows = st.stages.map((stage) => h("tr", {
    "data-stage": stage.name,
    class: stage.index === st.current_stage && stopePhase(st) !== "filled" && st.state !== "closed" ? "current" : "",
  },
    h("td", { class: "nowrap" }, h("span", { class: `swatch-box s${stage.index % 6}` }), h("b", { text: stage.name })),
    h("td", {}, recipeLabel(recipes, stage.recipe_id)),
    h("td", { class: "num", text: fmt(stage.top_height_m, 2) }),
    h("td", { class: "num", text: fmt(stage.top_volume_m3, 1) }),
    h("td", { class: "num", text: fmt(stage.max_rise_rate_m_h, 1) }),
    h("td", { class: "num", text: stage.switch_at_top || (st.continuous && stage.index < st.stages.length - 1) ? "switch" : fmt(stage.cure_hold_h, 1) }),
    h("td", {}, h("span", { class: `badge ${stage.state}`, "data-col": "state", text: STAGE_STATE_TEXT[stage.state] || stage.state })),
    h("td", { class: "time", text: fmtDateTime(stage.started_at) }),
    h("td", { class: "time", text: fmtDateTime(stage.top_reached_at) }),
    h("td", { class: "time", text: fmtDateTime(stage.hold_ends_at) }),
    h("td", { "data-col": "released" }, stage.released_by
      ? [stage.released_by, h("div", { class: "muted time", text: fmtDateTime(stage.released_at) })] : "—")));
  const simulated = app.status && app.status.simulator;
  box.replaceChildren(
    h("table", { id: "stages" },
      h("thead", {}, h("tr", {}, [
        ["Stage"], ["Recipe"], ["Top m", "num"], ["Top m3", "num"], ["Rise limit m/h", "num"], ["Hold h", "num"],
        ["State"], ["Started"], ["Top reached"], ["Hold ends"], ["Released by"],
      ].map(([t, c]) => h("th", { class: c, text: t })))),
      h("tbody", {}, rows)),
    h("p", { class: "muted", text: `Times of the plan are plant time${simulated ? " (the simulator's clock runs faster than this screen's)" : ""}.` }));
}

function renderSwitchPoints(box, st, recipes) {
  if (!st.switch_points.length) {
    box.replaceChildren(h("p", { class: "muted", text: st.continuous ? "No switch yet." : "None: a staged plan stops at each stage top." }));
    return;
  }
  const name = (i) => (st.stages[i] ? st.stages[i].name : `stage ${i + 1}`);
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, [["At"], ["From"], ["To"], ["Height m", "num"], ["Planned m", "num"]].map(([t, c]) => h("th", { class: c, text: t })))),
    h("tbody", {}, st.switch_points.map((p) => h("tr", {},
      h("td", { class: "time", text: fmtDateTime(p.at) }),
      h("td", {}, `${name(p.from_stage)} `, recipeLabel(recipes, p.from_recipe_id)),
      h("td", {}, `${name(p.to_stage)} `, recipeLabel(recipes, p.to_recipe_id)),
      h("td", { class: "num", text: fmt(p.height_m, 2) }),
      h("td", { class: "num", text: fmt(p.planned_height_m, 2) }))))));
}

function renderPlanHistory(box, st) {
  if (!st.history.length) {
    box.replaceChildren(h("p", { class: "muted", text: "Nothing yet." }));
    return;
  }
  box.replaceChildren(h("table", { id: "plan-log" },
    h("thead", {}, h("tr", {}, ["At", "Event", "Stage", "By", "Detail"].map((t) => h("th", { text: t })))),
    h("tbody", {}, st.history.map((e) => h("tr", { "data-kind": e.kind },
      h("td", { class: "time", text: fmtDateTime(e.at) }),
      h("td", { class: "nowrap", text: PLAN_LOG_TEXT[e.kind] || e.kind }),
      h("td", { text: st.stages[e.stage] ? st.stages[e.stage].name : e.stage }),
      h("td", { text: e.by }),
      h("td", { class: "muted", text: e.detail }))))));
}

// The fill-height gauge: the stope as a column, filled to the fill height, each stage's
// band and top (its line and label), the current stage outlined.
function drawGauge(box, st) {
  const W = 420;
  const H = 460;
  const m = { top: 22, bottom: 26 };
  const col = { x: 112, w: 92 };
  const plotH = H - m.top - m.bottom;
  const total = Math.max(st.height_m, ...st.stages.map((g) => g.top_height_m), 1e-6);
  const y = (hm) => m.top + (1 - Math.min(Math.max(hm, 0), total) / total) * plotH;
  const fill = st.fill_height_m;
  const current = stopePhase(st) === "filled" || st.state === "closed" ? null : currentStage(st);
  const svg = s("svg", {
    id: "stope-gauge",
    class: "gauge",
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `fill height ${fmt(fill, 2)} m of ${fmt(st.height_m, 2)} m`,
    "data-fill-height": fill.toFixed(3),
  });
  // The stope, empty.
  svg.append(s("rect", { class: "stope", x: col.x, y: y(total), width: col.w, height: y(0) - y(total) }));
  // The fill, in the colour of the stage it belongs to (above the last top: the last's).
  let bottom = 0;
  st.stages.forEach((stage, i) => {
    const top = i === st.stages.length - 1 ? Math.max(stage.top_height_m, fill) : stage.top_height_m;
    const upTo = Math.min(fill, top);
    if (upTo > bottom) {
      svg.append(s("rect", { class: `fill s${i % 6}`, x: col.x, y: y(upTo), width: col.w, height: y(bottom) - y(upTo) }));
    }
    bottom = Math.max(bottom, stage.top_height_m);
  });
  if (!st.stages.length && fill > 0) {
    svg.append(s("rect", { class: "fill s0", x: col.x, y: y(fill), width: col.w, height: y(0) - y(fill) }));
  }
  // The current stage's band, outlined.
  if (current) {
    const lo = current.index > 0 ? st.stages[current.index - 1].top_height_m : 0;
    svg.append(s("rect", {
      class: `stage-band current ${current.state}`,
      "data-stage": current.name,
      x: col.x - 5, y: y(current.top_height_m), width: col.w + 10, height: y(lo) - y(current.top_height_m),
    }));
  }
  // Stage tops: a line across the column and a label to its right (kept apart).
  let lastLabelY = Infinity;
  for (const stage of st.stages) {
    const ly = y(stage.top_height_m);
    const isCurrent = current && current.index === stage.index;
    svg.append(s("line", { class: `stage-top${isCurrent ? " current" : ""}`, "data-stage": stage.name, x1: col.x - 8, x2: col.x + col.w + 12, y1: ly, y2: ly }));
    const labelY = Math.min(ly + 4, lastLabelY - 15);
    lastLabelY = labelY;
    svg.append(s("text", {
      class: `stage-label${isCurrent ? " current" : ""}`,
      "data-stage": stage.name,
      x: col.x + col.w + 16,
      y: labelY,
      text: `${stage.name} ${fmt(stage.top_height_m, 1)} m${isCurrent ? ` · ${current.state.replaceAll("_", " ")}` : ""}`,
    }));
  }
  // The fill surface and its height, to the left; the scale's ticks give way to it.
  const fy = y(fill);
  svg.append(s("line", { class: "surface", x1: col.x, x2: col.x + col.w, y1: fy, y2: fy }));
  svg.append(s("path", { class: "pointer", d: `M ${col.x - 2} ${fy} l -10 -6 v 12 z` }));
  svg.append(s("text", { class: "fill-label", id: "gauge-fill", x: col.x - 16, y: fy + 5, "text-anchor": "end", text: `${fmt(fill, 2)} m` }));
  const step = niceStep(total, 6);
  for (let v = 0; v <= total + 1e-9; v += step) {
    const ty = y(v);
    svg.append(s("line", { class: "tick", x1: col.x - 6, x2: col.x, y1: ty, y2: ty }));
    if (Math.abs(ty - fy) < 16) continue;
    svg.append(s("text", { class: "axis-label", x: col.x - 16, y: ty + 4, "text-anchor": "end", text: fmt(v, step < 1 ? 1 : 0) }));
  }
  svg.append(s("text", { class: "axis-label", x: col.x - 16, y: m.top - 8, "text-anchor": "end", text: "m" }));
  box.replaceChildren(svg);
}

// The stope view's trends: barricade pressure against its rating and high alarm, fill
// height against the stage tops.
function stopeTrendSpecs(stope) {
  return [
    {
      id: "stope-barricade", title: "Barricade pressure", unit: "kPa", digits: 0, height: 240, yFromZero: true,
      series: [{ tag: "barricade_pressure_pv", label: "pressure", live: "m", color: 1 }],
      hlines: () => {
        const st = stope();
        const high = (st.barricade_rating_kpa * st.barricade_high_alarm_pct) / 100;
        return [
          { y: st.barricade_rating_kpa, label: `rating ${fmt(st.barricade_rating_kpa, 0)} kPa` },
          { y: high, label: `high alarm ${fmt(high, 0)} kPa`, cls: "warn" },
        ];
      },
    },
    {
      id: "stope-height", title: "Fill height", unit: "m", digits: 2, height: 240, yFromZero: true,
      series: [{
        tag: "fill_height_m", label: "fill height", color: 0,
        // This stope's fill height; the trend follows it while its pour runs.
        live: () => ({ value: stope().fill_height_m, quality: "good", at: Date.now(), plot: Boolean(stope().active_pour_id) }),
      }],
      hlines: () => stope().stages.map((g) => ({ y: g.top_height_m, label: `${g.name} top ${fmt(g.top_height_m, 1)} m`, cls: "ref" })),
    },
  ];
}

// --- login, routing --------------------------------------------------------------------

function viewLogin(main, message) {
  const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { id: "login-error", class: "error-text", text: message || "", hidden: !message });
  const form = h("form", { id: "login-form", class: "panel login" },
    h("h1", { text: "Sign in" }),
    h("label", { for: "key", text: "API key" }),
    input,
    h("button", { type: "submit", text: "Sign in" }),
    h("p", { class: "muted", text: "The key is kept only in this browser tab's session and sent to this service alone." }),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    session.key = input.value.trim();
    try {
      const me = await api("/whoami");
      sessionStorage.setItem(KEY_STORE, session.key);
      session.role = me.role;
      startSession();
    } catch (err) {
      session.key = null;
      sessionStorage.removeItem(KEY_STORE);
      error.textContent = err instanceof ApiError ? `${err.code}: ${err.detail}` : String(err);
      error.hidden = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

function logout(message) {
  session.key = null;
  session.role = null;
  sessionStorage.removeItem(KEY_STORE);
  stopStatusPolling();
  app.status = null;
  leaveView();
  for (const id of ["nav", "plant-state", "session"]) $(`#${id}`).hidden = true;
  clearError();
  viewLogin($("#main"), message);
}

function startSession() {
  $("#role").textContent = ROLE_NAMES[session.role] || session.role;
  $("#role").setAttribute("data-role", session.role);
  for (const id of ["nav", "plant-state", "session"]) $(`#${id}`).hidden = false;
  startStatusPolling();
  if (!location.hash || location.hash === "#" || location.hash === "#/login") location.hash = "#/plant";
  else route();
}

function leaveView() {
  app.viewToken += 1;
  for (const stop of app.viewTimers) stop();
  app.viewTimers = [];
  app.trends = null;
}

function route() {
  if (!session.key || !session.role) return;
  leaveView();
  const token = app.viewToken;
  const main = $("#main");
  const [path, query] = (location.hash.replace(/^#/, "") || "/plant").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || "plant";
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.getAttribute("data-nav") === section);
  }
  if (section === "pours" && parts[1]) viewPourReport(main, token, parts[1]);
  else if (section === "pours") viewPours(main, token, params);
  else if (section === "recipes" && parts[1]) viewRecipe(main, token, parts[1]);
  else if (section === "recipes") viewRecipes(main, token);
  else if (section === "stopes" && parts[1]) viewStope(main, token, parts[1]);
  else if (section === "stopes") viewStopes(main, token);
  else viewPlant(main, token);
}

function tickClock() {
  const d = new Date();
  $("#clock").textContent = `${fmtDateTime(d.toISOString())} (UTC${d.getTimezoneOffset() <= 0 ? "+" : "-"}${pad(Math.floor(Math.abs(d.getTimezoneOffset()) / 60))}:${pad(Math.abs(d.getTimezoneOffset()) % 60)})`;
}

async function boot() {
  $("#logout").addEventListener("click", () => logout());
  $("#error-close").addEventListener("click", clearError);
  window.addEventListener("hashchange", route);
  tickClock();
  setInterval(tickClock, 1000);
  if (!session.key) {
    viewLogin($("#main"));
    return;
  }
  try {
    const me = await api("/whoami");
    session.role = me.role;
    startSession();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      viewLogin($("#main"), `${err.code}: ${err.detail}`);
    }
  }
}

document.addEventListener("DOMContentLoaded", boot);
