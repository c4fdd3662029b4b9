// Pours: the list, and a pour's report (placed and dumped volume, recipe, trends,
// interruptions, cylinders against the design).

import { api, session } from "../lib/api.js";
import { $, downloadCsv, h, kv, put, showError, table } from "../lib/dom.js";
import { blendText, fmt, fmtDateTime } from "../lib/format.js";
import { bandPoints, drawPlot, redrawOnResize } from "../lib/plot.js";
import { may } from "../lib/roles.js";
import { app, current, every, onLeave, rerender } from "../lib/state.js";
import { history } from "../lib/trends.js";
import { BINDER_BAND_RELATIVE, SOLIDS_BAND_POINTS, pourButton } from "./plant.js";

const POUR_STATES = ["planned", "running", "paused", "completed", "stopped", "aborted"];

export function viewPours(main, token, params) {
  const filter = h("select", { id: "state-filter", onchange: () => { location.hash = filter.value ? `#/pours?state=${filter.value}` : "#/pours"; } },
    h("option", { value: "", text: "all states" }),
    POUR_STATES.map((st) => h("option", { value: st, text: st })));
  filter.value = params.get("state") || "";
  const box = h("div", { id: "pour-list", class: "muted", text: "loading…" });
  put(main, 
    h("h1", { text: "Pours" }),
    h("div", { class: "toolbar" }, h("label", { for: "state-filter", text: "State" }), filter),
    h("section", { class: "panel" }, box),
    h("p", { class: "muted", text: "Times are this screen's wall clock. Dumped paste (start-up, flush, out of spec) is never stope volume." }));
  const load = async () => {
    try {
      const q = filter.value ? `?state=${encodeURIComponent(filter.value)}` : "";
      const list = await api(`/pours${q}`);
      if (!current(token)) return;
      renderPourList(box, list.items);
    } catch (err) {
      if (current(token)) showError(err);
    }
  };
  load();
  every(3000, load);
}

function renderPourList(box, items) {
  box.className = "";
  if (!items.length) {
    put(box, h("p", { class: "muted", text: "No pours." }));
    return;
  }
  const rows = items.map((p) =>
    h("tr", { "data-pour": p.id, "data-state": p.state },
      h("td", {}, h("a", { href: `#/pours/${encodeURIComponent(p.id)}`, text: p.stope_id })),
      h("td", {}, h("span", { class: `badge ${p.state}`, text: p.state })),
      h("td", { class: "num", "data-col": "placed", text: `${fmt(p.poured_m3, 1)} / ${fmt(p.target_volume_m3, 1)}` }),
      h("td", { class: `num${p.dumped_m3 > 0 ? " dump" : ""}`, "data-col": "dumped", text: fmt(p.dumped_m3, 1) }),
      h("td", { class: "num", text: fmt(p.average_solids_pct, 2) }),
      h("td", { class: "num", text: fmt(p.average_binder_pct, 2) }),
      h("td", { class: "num", text: fmt(p.off_spec_m3, 2) }),
      h("td", { text: fmtDateTime(p.started_at) }),
      h("td", { text: fmtDateTime(p.ended_at) }),
      h("td", { class: "muted", text: p.id })));
  put(box, table({ id: "pours" }, [
    ["Stope"], ["State"], ["m3 placed / target", "num"], ["m3 dumped", "num"], ["Cw avg %", "num"], ["Bw avg %", "num"],
    ["Off-spec m3", "num"], ["Started"], ["Ended"], ["Pour id"],
  ], rows));
}

export async function viewPourReport(main, token, pourId) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  let pour;
  let recipe;
  try {
    pour = await api(`/pours/${encodeURIComponent(pourId)}`);
    recipe = await api(`/recipes/${encodeURIComponent(pour.recipe_id)}`);
  } catch (err) {
    if (!current(token)) return;
    showError(err);
    put(main, h("p", {}, h("a", { href: "#/pours", text: "Back to pours" })));
    return;
  }
  if (!current(token)) return;
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
    kv("Sent to the dump", h("b", { id: "report-dumped", class: pour.dumped_m3 > 0 ? "dump" : "", text: `${fmt(pour.dumped_m3, 2)} m3` })),
    kv("Dumped binder / dry tailings / water", `${fmt(pour.dumped_binder_t, 3)} t / ${fmt(pour.dumped_dry_tailings_t, 2)} t / ${fmt(pour.dumped_water_m3, 2)} m3`),
    pour.recovered_m3 > 0 ? kv("Recovered after a restart", `${fmt(pour.recovered_m3, 2)} m3 (in the placed or dumped volume)`) : null,
    kv("Paste flow planned", `${fmt(pour.paste_flow_m3_h, 1)} m3/h`),
    kv("Dry tailings", `${fmt(pour.dry_tailings_t, 2)} t`),
    kv("Binder", `${fmt(pour.binder_t, 3)} t`),
    kv("Water", `${fmt(pour.water_m3, 2)} m3`),
    kv("Cw average (min–max) of the placed paste", rangeText(pour.average_solids_pct, pour.min_solids_pct, pour.max_solids_pct)),
    kv("Bw average (min–max) of the placed paste", rangeText(pour.average_binder_pct, pour.min_binder_pct, pour.max_binder_pct)),
    kv("Off-spec volume", h("b", { id: "off-spec", text: `${fmt(pour.off_spec_m3, 2)} m3` })),
    ...reconciledRows(pour.reconciliation),
    kv("of which at start-up", `${fmt(pour.startup_off_spec_m3, 2)} m3`),
    kv("Flush water", `${fmt(pour.flush_water_m3, 2)} m3`),
    kv("Volume without a good measurement", `${fmt(pour.unmeasured_m3, 2)} m3`),
    kv("Started (wall time)", fmtDateTime(pour.started_at)),
    kv("Ended (wall time)", fmtDateTime(pour.ended_at)),
    kv("Created by", pour.created_by)));
  const binderRows = Object.entries(pour.binder_t_by_component)
    .filter(([name, t]) => t > 0 || mix.binder.some((c) => c.name === name))
    .map(([name, t]) => {
      const design = mix.binder.find((c) => c.name === name);
      const share = pour.binder_t > 0 ? (100 * t) / pour.binder_t : null;
      return h("tr", {}, h("td", { text: name }), h("td", { class: "num", text: fmt(t, 3) }),
        h("td", { class: "num", text: fmt(share, 1) }), h("td", { class: "num", text: design ? fmt(design.fraction_pct, 1) : "—" }));
    });
  const binderTable = table({}, [["Component"], ["t placed", "num"], ["% of binder", "num"], ["recipe %", "num"]], binderRows);
  const recipeTable = h("table", { class: "kv", id: "report-recipe" }, h("tbody", {},
    kv("Recipe", h("a", { href: `#/recipes/${encodeURIComponent(recipe.id)}`, text: `${recipe.name} v${recipe.version}` })),
    kv("Recipe id", recipe.id),
    kv("Approved by", recipe.approved_by || "— (not approved)"),
    kv("Bw target", `${fmt(mix.binder_pct, 2)} % of dry tailings`),
    kv("Cw target", `${fmt(mix.solids_pct, 2)} % of paste mass`),
    kv("Blend", blendText(mix.binder)),
    kv("Tailings SG / moisture", `${fmt(mix.tailings.specific_gravity, 2)} / ${fmt(mix.tailings.moisture_pct, 1)} %`),
    kv("Predicted UCS 28 d", recipe.predicted_ucs_28d ? `${fmt(recipe.predicted_ucs_28d.ucs_kpa, 0)} kPa` : "—")));
  const interruptions = pour.interruptions.length
    ? table({ id: "interruptions" }, [["Reason"], ["Detail"], ["From (wall time)"], ["To"]],
      pour.interruptions.map((i) => h("tr", { "data-reason": i.reason },
        h("td", { text: i.reason }), h("td", { class: "muted", text: i.detail || "" }),
        h("td", { class: "time", text: fmtDateTime(i.started_at) }), h("td", { class: "time", text: fmtDateTime(i.ended_at) }))))
    : h("p", { class: "muted", text: "None." });
  const samples = pour.sample_ids.length
    ? h("ul", { id: "samples" }, pour.sample_ids.map((id) => h("li", {}, h("a", { href: `#/samples/${encodeURIComponent(id)}`, text: id }))))
    : h("p", { class: "muted", text: "No cylinders recorded." });
  const cwChart = h("figure", { class: "panel trend", "data-trend": "report-cw" },
    h("h3", { text: "Cw over the pour (% of paste mass)" }), reportLegend("spec ±1 point"), h("div", { class: "plot-box" }));
  const bwChart = h("figure", { class: "panel trend", "data-trend": "report-bw" },
    h("h3", { text: "Bw over the pour (% of dry tailings)" }), reportLegend("spec ±5 % of target"), h("div", { class: "plot-box" }));

  put(main, 
    h("div", { id: "report" },
      actions,
      h("h1", {}, `Pour report: stope ${pour.stope_id}`),
      h("p", { class: "muted" }, `Pour ${pour.id} · report generated ${fmtDateTime(new Date().toISOString())} · times are this screen's wall clock`),
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

  if (pour.state === "running" || pour.state === "paused") {
    const timer = setTimeout(() => { if (current(token)) rerender(); }, 4000);
    onLeave(() => clearTimeout(timer));
  }
  if (pour.started_at) {
    const from = Date.parse(pour.started_at);
    const to = pour.ended_at ? Date.parse(pour.ended_at) : Date.now();
    try {
      const data = await history(["solids_pct", "solids_pct_target", "binder_pct", "binder_pct_target"], from, Math.max(to, from + 1000));
      if (!current(token)) return;
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
      redrawOnResize(draw, app.viewTimers);
    } catch (err) {
      if (current(token)) showError(err);
    }
  } else {
    for (const chart of [cwChart, bwChart]) $(".plot-box", chart).replaceChildren(h("p", { class: "muted", text: "Not started." }));
  }
}

function rangeText(avg, lo, hi) {
  if (avg === null || avg === undefined) return "— (nothing placed with a good measurement)";
  return `${fmt(avg, 2)} % (${fmt(lo, 2)}–${fmt(hi, 2)})`;
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

export const VERDICT_TEXT = {
  no_results: "no result yet",
  no_design: "no design pass fraction",
  below_design: "below the design",
  consistent: "consistent with the design",
  above_design: "above the design",
};

// Pass fractions of one group kind (pour, stage, stope) against the design's.
export function passFractionTable(rows, id) {
  return table({ id }, [
    ["Group"], ["Requirement"], ["Required kPa", "num"], ["Age d", "num"], ["Tested", "num"], ["Passed", "num"],
    ["Pass %", "num"], ["Interval %", "num"], ["Design %", "num"], ["Verdict"],
  ], rows.map((f) => h("tr", { "data-group": f.group, "data-requirement": f.requirement, "data-verdict": f.verdict },
    h("td", { text: groupLabel(f) }),
    h("td", { text: f.requirement }),
    h("td", { class: "num", text: fmt(f.required_ucs_kpa, 0) }),
    h("td", { class: "num", text: fmt(f.curing_days, 0) }),
    h("td", { class: "num", text: String(f.n) }),
    h("td", { class: "num", text: String(f.passed) }),
    h("td", { class: "num", text: f.pass_pct === null ? "—" : fmt(f.pass_pct, 0) }),
    h("td", { class: "num", text: f.pass_pct_low === null ? "—" : `${fmt(f.pass_pct_low, 0)}–${fmt(f.pass_pct_high, 0)}` }),
    h("td", { class: "num", text: f.design_pass_pct === null ? "—" : fmt(f.design_pass_pct, 0) }),
    h("td", { class: f.verdict === "below_design" ? "warn" : "", text: VERDICT_TEXT[f.verdict] || f.verdict }))));
}

function groupLabel(f) {
  if (f.group === "stope") return "stope";
  if (f.group === "pour") return `pour ${f.group_id.slice(0, 8)}`;
  return `${f.group} ${f.group_id}`;
}

export function noticeList(notices, id = "lab-notices") {
  return notices.length
    ? h("ul", { id }, notices.map((n) => h("li", { class: n.severity === "high" ? "warn" : "", "data-kind": n.kind, "data-sample": n.sample_id || "" }, `${n.kind}: ${n.detail}`)))
    : h("p", { class: "muted", id: `${id}-none`, text: "No failed or overdue cylinder." });
}

// Tested strength of the pour's cylinders against each requirement at its age, the pass
// fraction (with its interval) against the design's, and the failed or overdue cylinders.
async function loadCompliance(pourId, token) {
  let c;
  try {
    c = await api(`/pours/${encodeURIComponent(pourId)}/compliance`);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const box = $("#compliance");
  if (!box) return;
  const rows = c.pass_fractions.filter((f) => f.group === "pour");
  put(box, h("h2", { text: "Cylinders against the design" }),
    h("p", { class: "muted", text: `${c.samples} cylinder(s) cast · judged ${fmtDateTime(c.evaluated_at)}` }),
    rows.length ? passFractionTable(rows, "pass-fractions")
      : h("p", { class: "muted", text: "No requirement to judge the cylinders against (neither the pour's stage nor its recipe's design states one)." }),
    noticeList(c.notices));
}
