// Plots drawn by hand in SVG (the plant network has no internet: no chart library).

import { s } from "./dom.js";
import { fmt, fmtTime } from "./format.js";

export function niceStep(span, targetTicks) {
  const raw = span / targetTicks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10 * magnitude;
}

const TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200];

// Draw a plot into `container`. spec:
//   x: {min, max, time, log, ticks}  (log: a logarithmic axis; ticks: where to label it)
//   y: {min, max}                   (optional: a fixed range)
//   xLabel, yLabel, height, yFromZero, gapMs, emptyText
//   series:   [{points: [[x, y|null]], color, dash, extrapolated, dots}]  (dots: no line)
//   bands:    [{points: [[x, lo, hi]]}]
//   hlines:   [{y, label, cls}]     vlines: [{x, label, cls}]
//   segments: [{x1, y1, x2, y2, cls}]  (error bars, a 1:1 line)
//   rects:    [{x0, x1, y0, y1, cls, label}]  (a region)
//   markers:  [{x, y, cls, r, title, data: {name: value}}]
// The SVG says how many series points and markers it drew (data-points, data-markers).
export function drawPlot(container, spec) {
  const width = Math.max(320, Math.round(container.clientWidth || 600));
  const height = spec.height || 220;
  const m = { left: 58, right: 12, top: 10, bottom: spec.xLabel ? 40 : 24 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const { min: x0, max: x1 } = spec.x;
  const logX = Boolean(spec.x.log);
  const inX = (x) => x >= x0 && x <= x1;

  let yMin = Infinity;
  let yMax = -Infinity;
  const seen = (y) => {
    if (y === null || y === undefined || !Number.isFinite(y)) return;
    yMin = Math.min(yMin, y);
    yMax = Math.max(yMax, y);
  };
  let count = 0;
  for (const series of spec.series || []) {
    for (const [x, y] of series.points) {
      if (inX(x) && y !== null) {
        seen(y);
        count += 1;
      }
    }
  }
  for (const band of spec.bands || []) {
    for (const [x, lo, hi] of band.points) {
      if (inX(x)) {
        seen(lo);
        seen(hi);
      }
    }
  }
  for (const line of spec.hlines || []) seen(line.y);
  for (const mk of spec.markers || []) if (inX(mk.x)) seen(mk.y);
  for (const seg of spec.segments || []) {
    if (inX(seg.x1) || inX(seg.x2)) {
      seen(seg.y1);
      seen(seg.y2);
    }
  }
  for (const r of spec.rects || []) {
    seen(r.y0);
    seen(r.y1);
  }
  const markerCount = (spec.markers || []).filter((mk) => inX(mk.x) && Number.isFinite(mk.y)).length;

  const svg = s("svg", {
    class: "plot",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "data-points": count,
    "data-markers": markerCount,
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
  if (spec.y && Number.isFinite(spec.y.min)) yMin = spec.y.min;
  if (spec.y && Number.isFinite(spec.y.max)) yMax = spec.y.max;
  const tx = logX ? (x) => Math.log10(x) : (x) => x;
  const sx = (x) => m.left + ((tx(x) - tx(x0)) / (tx(x1) - tx(x0))) * plotW;
  const sy = (y) => m.top + (1 - (y - yMin) / (yMax - yMin)) * plotH;

  // Grid and axes.
  const yStep = niceStep(yMax - yMin, 4);
  const digits = Math.max(0, -Math.floor(Math.log10(yStep) + 1e-9));
  for (let y = Math.ceil(yMin / yStep) * yStep; y <= yMax; y += yStep) {
    svg.append(s("line", { class: "grid", x1: m.left, x2: width - m.right, y1: sy(y), y2: sy(y) }));
    svg.append(s("text", { class: "axis-label", x: m.left - 6, y: sy(y) + 4, "text-anchor": "end", text: fmt(y, Math.min(digits, 3)) }));
  }
  const xTick = (x, label) => {
    svg.append(s("line", { class: "grid", x1: sx(x), x2: sx(x), y1: m.top, y2: m.top + plotH }));
    svg.append(s("text", { class: "axis-label", x: sx(x), y: m.top + plotH + 16, "text-anchor": "middle", text: label }));
  };
  if (spec.x.time) {
    const spanS = (x1 - x0) / 1000;
    const stepS = TIME_STEPS_S.find((t) => spanS / t <= 7) || 86400;
    const offsetMs = new Date(x0).getTimezoneOffset() * 60000;
    const first = Math.ceil((x0 - offsetMs) / (stepS * 1000)) * stepS * 1000 + offsetMs;
    for (let x = first; x <= x1; x += stepS * 1000) xTick(x, fmtTime(x, stepS < 60));
  } else if (spec.x.ticks || logX) {
    const ticks = spec.x.ticks || logTicks(x0, x1);
    for (const x of ticks) if (inX(x)) xTick(x, fmt(x, x < 1 ? 1 : 0));
  } else {
    const xStep = niceStep(x1 - x0, 6);
    const xDigits = Math.max(0, -Math.floor(Math.log10(xStep) + 1e-9));
    for (let x = Math.ceil(x0 / xStep) * xStep; x <= x1 + 1e-9; x += xStep) xTick(x, fmt(x, xDigits));
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

  for (const r of spec.rects || []) {
    const xa = sx(Math.max(r.x0, x0));
    const xb = sx(Math.min(r.x1, x1));
    layer.append(s("rect", { class: `region ${r.cls || ""}`, x: Math.min(xa, xb), y: sy(r.y1), width: Math.abs(xb - xa), height: Math.max(0, sy(r.y0) - sy(r.y1)) }));
    if (r.label) layer.append(s("text", { class: "region-label", x: Math.min(xa, xb) + 4, y: sy(r.y1) + 14, text: r.label }));
  }
  const gap = spec.gapMs || Infinity;
  for (const band of spec.bands || []) {
    for (const run of runs(band.points.map(([x, lo, hi]) => [x, lo, hi]), gap)) {
      const upper = run.map(([x, , hi]) => `${sx(x).toFixed(1)},${sy(hi).toFixed(1)}`);
      const lower = run.map(([x, lo]) => `${sx(x).toFixed(1)},${sy(lo).toFixed(1)}`).reverse();
      layer.append(s("polygon", { class: `band ${band.cls || ""}`, points: [...upper, ...lower].join(" ") }));
    }
  }
  for (const line of spec.hlines || []) {
    const cls = line.cls ? ` ${line.cls}` : "";
    layer.append(s("line", { class: `hline${cls}`, x1: m.left, x2: width - m.right, y1: sy(line.y), y2: sy(line.y) }));
    if (line.label) {
      layer.append(s("text", { class: `hline-label${cls}`, x: width - m.right - 4, y: sy(line.y) - 5, "text-anchor": "end", text: line.label }));
    }
  }
  for (const line of spec.vlines || []) {
    if (!inX(line.x)) continue;
    const cls = line.cls ? ` ${line.cls}` : "";
    layer.append(s("line", { class: `vline${cls}`, x1: sx(line.x), x2: sx(line.x), y1: m.top, y2: m.top + plotH }));
    if (line.label) layer.append(s("text", { class: `vline-label${cls}`, x: sx(line.x) + 4, y: m.top + 12, text: line.label }));
  }
  for (const seg of spec.segments || []) {
    layer.append(s("line", { class: `segment ${seg.cls || ""}`, x1: sx(seg.x1), x2: sx(seg.x2), y1: sy(seg.y1), y2: sy(seg.y2) }));
  }
  for (const series of spec.series || []) {
    const cls = `line c${series.color || 0}${series.dash ? " dash" : ""}${series.extrapolated ? " extrapolated" : ""}`;
    if (series.dots) {
      for (const [x, y] of series.points) {
        if (!inX(x) || y === null || !Number.isFinite(y)) continue;
        layer.append(s("circle", { class: `dot c${series.color || 0}`, cx: sx(x), cy: sy(y), r: 3.5 }));
      }
      continue;
    }
    for (const run of runs(series.points, gap)) {
      const pts = run.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
      layer.append(s("polyline", { class: cls, points: run.length === 1 ? `${pts} ${pts}` : pts }));
    }
  }
  for (const mk of spec.markers || []) {
    if (!inX(mk.x) || !Number.isFinite(mk.y)) continue;
    const attrs = { class: `marker ${mk.cls || ""}`, cx: sx(mk.x), cy: sy(mk.y), r: mk.r || 5 };
    for (const [k, v] of Object.entries(mk.data || {})) attrs[`data-${k}`] = v;
    layer.append(s("circle", attrs, mk.title ? s("title", { text: mk.title }) : null));
  }
  container.replaceChildren(svg);
  return svg;
}

function logTicks(x0, x1) {
  const out = [];
  for (let e = Math.floor(Math.log10(x0)); e <= Math.ceil(Math.log10(x1)); e += 1) {
    for (const m of [1, 2, 5]) out.push(m * 10 ** e);
  }
  return out;
}

// Split points into runs without null values or gaps wider than `gap`.
export function runs(points, gap) {
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

export function bandPoints(points, band) {
  return points.map(([x, target]) => {
    if (target === null) return [x, null, null];
    const half = band.abs !== undefined ? band.abs : Math.abs(target) * band.rel;
    return [x, target - half, target + half];
  });
}

// A horizontal bar: `value` of `max`, with marks (a limit, an alarm level).
export function levelBar(box, { value, max, level, marks = [] }) {
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

// Redraw with the page's width (on resize and before printing) while the view lasts.
export function redrawOnResize(draw, timers) {
  window.addEventListener("resize", draw);
  window.addEventListener("beforeprint", draw);
  timers.push(() => {
    window.removeEventListener("resize", draw);
    window.removeEventListener("beforeprint", draw);
  });
}
