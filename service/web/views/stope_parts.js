// Parts of the stope view: the fill-height gauge, the barricade, the plan's stages,
// switch points and history, and the stope's trends. Stage times are plant time.

import { h, put, s, table } from "../lib/dom.js";
import { fmt, fmtDateTime } from "../lib/format.js";
import { levelBar, niceStep } from "../lib/plot.js";

export const STAGE_STATE_TEXT = {
  pending: "pending",
  waiting_release: "waiting for a release",
  ready: "ready to pour",
  filling: "filling",
  curing: "curing",
  released: "released",
  done: "done (recipe switched)",
  abandoned: "abandoned",
};

const PLAN_LOG_TEXT = {
  stage_started: "stage started",
  hold_started: "hold started",
  released: "released",
  revised: "plan revised",
  closed: "stope closed",
};

export function currentStage(stope) {
  return stope.current_stage === null || stope.current_stage === undefined
    ? null : stope.stages[stope.current_stage] || null;
}

// What the stope view shows for the stope now: its state, or its current stage's.
export function stopePhase(stope) {
  const stage = currentStage(stope);
  if (stope.state === "filled" || stope.state === "closed" || !stage) return stope.state;
  return stage.state;
}

export function barricadeName(tag) {
  const n = /^barricade_(\d+)_pressure_pv$/.exec(tag);
  return n ? `Barricade ${n[1]}` : "Barricade";
}

export function barricadeLevel(kpa, stope) {
  if (kpa === null || kpa === undefined) return "bad";
  if (kpa >= stope.barricade_rating_kpa) return "alarm";
  if (kpa >= (stope.barricade_rating_kpa * stope.barricade_high_alarm_pct) / 100) return "warn";
  return "ok";
}

export function renderBarricade(panel, st) {
  const rating = st.barricade_rating_kpa;
  const high = (rating * st.barricade_high_alarm_pct) / 100;
  const tags = Object.keys(st.barricade_pressure_kpa || {}).sort();
  const body = [h("h2", { text: "Barricade pressure" })];
  const bars = [];
  if (!tags.length) body.push(h("p", { class: "muted", text: "No barricade pressure is measured for this stope." }));
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
  put(panel, ...body);
  for (const [bar, spec] of bars) levelBar(bar, spec); // in the page: they take its width
}

export function recipeLabel(recipes, id) {
  const recipe = recipes.get(id);
  return h("a", { href: `#/recipes/${encodeURIComponent(id)}`, text: recipe ? `${recipe.name} v${recipe.version}` : id.slice(0, 8) });
}

export function renderStages(box, st, recipes, simulated) {
  if (!st.stages.length) {
    put(box, h("p", { class: "muted", text: "No fill plan." }));
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
    h("td", {}, (stage.requirements || []).map((r) => h("div", { class: "nowrap", text: `${r.name} ${fmt(r.ucs_kpa ?? r.required_ucs_kpa, 0)} kPa at ${fmt(r.curing_days, 0)} d` }))),
    h("td", {}, h("span", { class: `badge ${stage.state}`, "data-col": "state", text: STAGE_STATE_TEXT[stage.state] || stage.state })),
    h("td", { class: "time", text: fmtDateTime(stage.started_at) }),
    h("td", { class: "time", text: fmtDateTime(stage.top_reached_at) }),
    h("td", { class: "time", text: fmtDateTime(stage.hold_ends_at) }),
    h("td", { "data-col": "released" }, stage.released_by
      ? [stage.released_by, h("div", { class: "muted time", text: fmtDateTime(stage.released_at) })] : "—")));
  put(box, 
    table({ id: "stages" }, [
      ["Stage"], ["Recipe"], ["Top m", "num"], ["Top m3", "num"], ["Rise limit m/h", "num"], ["Hold h (plant time)", "num"],
      ["Requirements"], ["State"], ["Started (plant time)"], ["Top reached (plant time)"], ["Hold ends (plant time)"], ["Released (plant time), by"],
    ], rows),
    h("p", { class: "muted", id: "plan-clock", text: simulated
      ? "Stage times, holds and releases are plant time: the simulator's clock, which runs faster than this screen's wall clock."
      : "Stage times, holds and releases are plant time (on a real plant, the wall clock)." }));
}

export function renderSwitchPoints(box, st, recipes) {
  if (!st.switch_points.length) {
    put(box, h("p", { class: "muted", text: st.continuous ? "No switch yet." : "None: a staged plan stops at each stage top." }));
    return;
  }
  const name = (i) => (st.stages[i] ? st.stages[i].name : `stage ${i + 1}`);
  put(box, table({}, [["At (plant time)"], ["From"], ["To"], ["Height m", "num"], ["Planned m", "num"]],
    st.switch_points.map((p) => h("tr", {},
      h("td", { class: "time", text: fmtDateTime(p.at) }),
      h("td", {}, `${name(p.from_stage)} `, recipeLabel(recipes, p.from_recipe_id)),
      h("td", {}, `${name(p.to_stage)} `, recipeLabel(recipes, p.to_recipe_id)),
      h("td", { class: "num", text: fmt(p.height_m, 2) }),
      h("td", { class: "num", text: fmt(p.planned_height_m, 2) })))));
}

export function renderPlanHistory(box, st) {
  if (!st.history.length) {
    put(box, h("p", { class: "muted", text: "Nothing yet." }));
    return;
  }
  put(box, table({ id: "plan-log" }, [["At (plant time)"], ["Event"], ["Stage"], ["By"], ["Detail"]],
    st.history.map((e) => h("tr", { "data-kind": e.kind },
      h("td", { class: "time", text: fmtDateTime(e.at) }),
      h("td", { class: "nowrap", text: PLAN_LOG_TEXT[e.kind] || e.kind }),
      h("td", { text: st.stages[e.stage] ? st.stages[e.stage].name : e.stage }),
      h("td", { text: e.by }),
      h("td", { class: "muted", text: e.detail })))));
}

// The fill-height gauge: the stope as a column, filled to the fill height, each stage's
// band and top (its line and label), the current stage outlined.
export function drawGauge(box, st) {
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
  put(box, svg);
}

// The stope view's trends: barricade pressure against its rating and high alarm, fill
// height against the stage tops.
export function stopeTrendSpecs(stope) {
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

// What GET /stopes/{id} says beyond what this view draws (a surveyed stope's geometry,
// the barricades chosen for it ...): shown as the service gives it.
const DRAWN = new Set([
  "id", "name", "created_at", "created_by", "plan_area_m2", "height_m", "volume_m3",
  "barricade_rating_kpa", "barricade_high_alarm_pct", "state", "plan_version", "continuous",
  "current_stage", "stages", "placed_m3", "fill_height_m", "hold_remaining_s", "active_pour_id",
  "rise_rate_m_h", "barricade_pressure_kpa", "switch_points", "history",
]);

export function otherFields(st) {
  const rest = Object.entries(st).filter(([k]) => !DRAWN.has(k));
  if (!rest.length) return null;
  return h("details", { class: "panel", id: "stope-more", open: true },
    h("summary", { text: "More of the stope's record" }),
    h("table", { class: "kv" }, h("tbody", {}, rest.map(([k, v]) => h("tr", { "data-field": k },
      h("th", { text: k.replaceAll("_", " ") }),
      h("td", {}, valueView(v)))))));
}

function valueView(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return fmt(v, Math.abs(v) >= 100 ? 1 : 3);
  if (typeof v === "string" || typeof v === "boolean") return typeof v === "boolean" ? (v ? "yes" : "no") : v;
  if (Array.isArray(v) && v.every((x) => typeof x !== "object" || x === null)) return v.map(String).join(", ");
  return h("pre", { class: "design", text: JSON.stringify(v, null, 2) });
}
