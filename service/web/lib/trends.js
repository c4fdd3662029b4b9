// Live trends (the plant view's, the stope view's): the history of the chosen window from
// /plant/history, extended by the live status, redrawn with every status. The history is
// stamped with the service's wall clock.

import { api } from "./api.js";
import { $, h, showError } from "./dom.js";
import { fmt } from "./format.js";
import { bandPoints, drawPlot } from "./plot.js";
import { app, onLeave, onStatus } from "./state.js";

export const WINDOWS = [
  { label: "15 min", seconds: 900, refreshMs: 5000 },
  { label: "1 h", seconds: 3600, refreshMs: 15000 },
  { label: "8 h", seconds: 8 * 3600, refreshMs: 60000 },
  { label: "24 h", seconds: 24 * 3600, refreshMs: 60000 },
];

const trendState = {
  window: WINDOWS[0],
  active: null, // {specs, history, live, historyTo, stepS, timer}
};

// A history query: each tag's average per step, as [[ms, value|null]].
export async function history(tags, fromMs, toMs, step) {
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

// The window buttons (15 min … 24 h) of the view's live trends.
export function windowSelect(token) {
  const buttons = WINDOWS.map((w) =>
    h("button", {
      type: "button",
      "aria-pressed": w === trendState.window ? "true" : "false",
      "data-window": w.seconds,
      text: w.label,
      onclick: (ev) => {
        trendState.window = w;
        for (const b of buttons) b.setAttribute("aria-pressed", b === ev.currentTarget ? "true" : "false");
        loadTrendHistory(token);
      },
    }));
  return h("span", { class: "window-select no-print" }, buttons);
}

export function trendGrid(specs) {
  return h("div", { class: "trends" }, specs.map((spec) => trendPanel(spec)));
}

// The trends of `specs` (`{id, title, unit, digits, series: [{tag, label, live, color,
// dash, optional}], band, hlines: () => [...], yFromZero, height}`).
export function startTrends(token, specs) {
  trendState.active = { specs, history: {}, live: {}, historyTo: 0, timer: null };
  onStatus(token, (st) => {
    updateLegends(st);
    appendLive(st);
    drawTrends();
  });
  loadTrendHistory(token);
  const redraw = () => drawTrends();
  window.addEventListener("resize", redraw);
  window.addEventListener("beforeprint", redraw);
  onLeave(() => {
    window.removeEventListener("resize", redraw);
    window.removeEventListener("beforeprint", redraw);
    if (trendState.active && trendState.active.timer) clearTimeout(trendState.active.timer);
    trendState.active = null;
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
  const trends = trendState.active;
  if (!trends || token !== app.viewToken) return;
  // One chain of reloads: a new window replaces the pending reload of the old one.
  if (trends.timer) clearTimeout(trends.timer);
  trends.timer = null;
  const win = trendState.window;
  const tags = [...new Set(trends.specs.flatMap((t) => t.series.map((x) => x.tag)))];
  const to = Date.now();
  try {
    const data = await history(tags, to - win.seconds * 1000, to);
    if (token !== app.viewToken || win !== trendState.window) return;
    trends.history = data.series;
    trends.stepS = data.stepS;
    const last = Math.max(0, ...Object.values(data.series).flatMap((pts) => pts.filter((p) => p[1] !== null).map((p) => p[0])));
    trends.historyTo = last;
    // Live points the history now covers are dropped; newer ones stay.
    for (const tag of Object.keys(trends.live)) {
      trends.live[tag] = trends.live[tag].filter((p) => p[0] > last);
    }
    if (app.status) updateLegends(app.status);
    drawTrends();
  } catch (err) {
    if (token === app.viewToken) showError(err);
  }
  if (token !== app.viewToken || win !== trendState.window) return;
  trends.timer = setTimeout(() => loadTrendHistory(token), win.refreshMs);
}

// The legend of each trend: the live value, greyed and flagged when not good.
function updateLegends(st) {
  const trends = trendState.active;
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
  const trends = trendState.active;
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

export function drawTrends() {
  const trends = trendState.active;
  if (!trends) return;
  const now = Date.now();
  const win = trendState.window;
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
