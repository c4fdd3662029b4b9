// Gs and Cw reconciliation: the lab's Cw against the Cw the plant recorded at each cast
// names the tailings Gs (or a density gauge bias) with its interval; an engineer approves
// the correction, which control runs on from the next pour start.

import { api } from "../lib/api.js";
import { $, h, kv, put, showError, table } from "../lib/dom.js";
import { approverField, field, formError, named, num, onSubmit, select, text } from "../lib/forms.js";
import { fmt, fmtDateTime } from "../lib/format.js";
import { drawPlot, redrawOnResize } from "../lib/plot.js";
import { may } from "../lib/roles.js";
import { app, current, rerender } from "../lib/state.js";

export async function viewReconciliations(main, token) {
  put(main, h("h1", { text: "Gs and Cw" }), h("p", { class: "muted", text: "loading…" }));
  let list;
  let active;
  try {
    [list, active] = await Promise.all([api("/lab/reconciliations"), api("/lab/correction")]);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const c = active.correction;
  put(main, 
    h("h1", { text: "Gs and Cw: the lab against the plant" }),
    h("p", { class: "muted", text: "The plant's Cw rests on its density gauge and the recipe's tailings Gs: a wrong Gs leaves every gauge agreeing with the recipe while the paste is a point off. The lab's Cw of cast samples shows it." }),
    h("section", { class: "panel", id: "active-correction" }, h("h2", { text: "The correction control runs on" }),
      c ? h("p", { id: "correction-in-force" }, correctionText(c), ` · approved by ${c.approved_by || "?"}`)
        : h("p", { class: "muted", text: "None: the recipes' Gs and the gauge as read." })),
    may.engineer() ? proposeForm() : null,
    h("section", { class: "panel" }, h("h2", { text: "Reconciliations" }), list.items.length
      ? table({ id: "reconciliations" }, [["Computed"], ["Verdict"], ["Tailings Gs (interval)"], ["Gauge bias kg/m3"], ["Samples", "num"], ["Status"], ["By"]],
        list.items.map((r) => h("tr", { "data-reconciliation": r.id, "data-status": r.status },
          h("td", {}, h("a", { href: `#/reconciliations/${encodeURIComponent(r.id)}`, text: fmtDateTime(r.created_at) })),
          h("td", { text: r.verdict.replaceAll("_", " ") }),
          h("td", { text: estimateText(r.tailings_sg, 3) }),
          h("td", { text: estimateText(r.density_bias_kg_m3, 1) }),
          h("td", { class: "num", text: String(r.samples.length) }),
          h("td", {}, h("span", { class: `badge ${r.status === "approved" ? "completed" : r.status === "proposed" ? "planned" : ""}`, text: r.active ? `${r.status}, in force` : r.status })),
          h("td", { text: r.approved_by || r.created_by }))))
      : h("p", { class: "muted", text: "None yet." })));
}

function correctionText(c) {
  return c.kind === "tailings_gs"
    ? `tailings Gs ${fmt(c.tailings_sg, 3)} (the recipes assume ${fmt(c.assumed_tailings_sg, 3)})`
    : `the density gauge reads ${fmt(c.density_bias_kg_m3, 1)} kg/m3 high`;
}

export function estimateText(e, digits) {
  if (!e) return "—";
  return e.low === null ? `${fmt(e.value, digits)} (one sample: no interval)` : `${fmt(e.value, digits)} (${intervalText(e.low, e.high, digits)})`;
}

function intervalText(lo, hi, digits) {
  if (lo === null || hi === null || lo === undefined || hi === undefined) return "—";
  return lo < 0 || hi < 0 ? `${fmt(lo, digits)} to ${fmt(hi, digits)}` : `${fmt(lo, digits)}–${fmt(hi, digits)}`;
}

function proposeForm() {
  const form = h("form", { class: "form", id: "reconcile-form" },
    h("div", { class: "fields" },
      field("Sample ids", text("sample_ids", "", { class: "wide", placeholder: "comma-separated; or leave empty and give the cast window" })),
      field("Cast from", h("input", { type: "datetime-local", name: "cast_from", step: 1 })),
      field("Cast to", h("input", { type: "datetime-local", name: "cast_to", step: 1 })),
      field("Masses of", select("masses_of", [["fresh_paste", "fresh paste (weighed and dried at once)"], ["cured_cylinder", "cured cylinders (bound water taken off)"]], "fresh_paste")),
      field("Degree of hydration", num("degree_of_hydration", "", { min: 0, max: 1, placeholder: "cured cylinders" })),
      field("Tailings Gs of the recipes", num("tailings_sg", "", { placeholder: "when the recipes differ" })),
      field("Density at a cast: the history's mean over ± s", num("cast_window_s", 60, { min: 1, max: 600 }), "wall seconds")),
    h("button", { type: "submit", id: "reconcile", text: "Reconcile" }),
    formError());
  onSubmit(form, async () => {
    const body = { masses_of: named(form, "masses_of").value };
    const ids = named(form, "sample_ids").value.split(/[\s,;]+/).filter(Boolean);
    if (ids.length) body.sample_ids = ids;
    for (const name of ["cast_from", "cast_to"]) {
      const v = named(form, name).value;
      if (v) body[name] = new Date(v).toISOString();
    }
    for (const name of ["degree_of_hydration", "tailings_sg", "cast_window_s"]) {
      const v = named(form, name).value;
      if (v !== "") body[name] = Number(v);
    }
    const r = await api("/lab/reconciliations", { method: "POST", body });
    location.hash = `#/reconciliations/${encodeURIComponent(r.id)}`;
  });
  return h("details", { class: "panel no-print", id: "reconcile-panel" }, h("summary", { text: "Reconcile samples" }), form);
}

export async function viewReconciliation(main, token, id) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  let r;
  try {
    r = await api(`/lab/reconciliations/${encodeURIComponent(id)}`);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const p = r.proposal;
  const plot = h("figure", { class: "panel trend", "data-trend": "gs-samples" },
    h("h3", { text: "The tailings Gs each sample implies, with the estimate's interval" }),
    h("div", { class: "legend" },
      h("span", { class: "item" }, h("span", { class: "dot-swatch pass" }), "sample"),
      h("span", { class: "item" }, h("span", { class: "swatch band" }), `${fmt(r.confidence_pct, 0)} % interval of the mean`),
      h("span", { class: "item" }, h("span", { class: "swatch c1 dash" }), "the Gs the recipes assume")),
    h("div", { class: "plot-box" }));
  put(main, 
    h("div", { class: "toolbar" }, h("a", { href: "#/reconciliations", text: "← Gs and Cw" })),
    h("h1", {}, `Reconciliation of ${fmtDateTime(r.created_at)} `, h("span", { id: "reconciliation-status", class: `badge ${r.status === "approved" ? "completed" : "planned"}`, text: r.status })),
    h("p", { id: "explanation", text: r.explanation }),
    r.status === "proposed" && may.engineer() ? approveForm(r) : null,
    h("div", { class: "row" },
      h("section", { class: "panel" }, h("h2", { text: "The estimate" }), h("table", { class: "kv", id: "estimate" }, h("tbody", {},
        kv("Verdict", r.verdict.replaceAll("_", " ")),
        kv("Tailings Gs the lab implies", h("b", { id: "gs-estimate", text: estimateText(r.tailings_sg, 3) })),
        kv("against the assumed", `${fmt(r.assumed_tailings_sg, 3)} (${fmt(r.tailings_sg_error_pct, 2)} %)`),
        kv("or a density gauge bias", `${estimateText(r.density_bias_kg_m3, 1)} kg/m3`),
        r.direct_density_bias_kg_m3 ? kv("Gauge minus lab density (fresh paste)", `${estimateText(r.direct_density_bias_kg_m3, 1)} kg/m3`) : null,
        kv("Lab minus recorded Cw", `${fmt(r.mean_solids_error_pct, 2)} points`),
        kv("Weight of the Gs explanation", r.gs_weight === null ? "—" : fmt(r.gs_weight, 2)),
        kv("Samples to name a Gs error", r.samples_needed === null ? "—" : `${r.samples_needed} for ${fmt(r.detect_relative_gs_error_pct, 0)} % (90 % power)`),
        kv("The correction in force", r.active_correction_id ? (r.active_within_interval ? "inside this interval" : "outside this interval") : "none")))),
      h("section", { class: "panel" }, h("h2", { text: "The correction proposed" }), p
        ? h("table", { class: "kv", id: "proposal" }, h("tbody", {},
          kv("Kind", p.kind === "tailings_gs" ? "tailings Gs" : "density gauge bias"),
          kv("Value", p.kind === "tailings_gs" ? `Gs ${fmt(p.tailings_sg, 3)}` : `${fmt(p.density_bias_kg_m3, 1)} kg/m3 high`),
          kv("Interval", intervalText(p.low, p.high, p.kind === "tailings_gs" ? 3 : 1)),
          kv("Determined", p.determined ? "yes" : "no: the data could not tell Gs and gauge apart (the better fit is proposed)"),
          kv("Basis", p.basis),
          kv("Approved", r.approved_by ? `${r.approved_by} at ${fmtDateTime(r.approved_at)}` : "not yet")))
        : h("p", { class: "muted", text: "None: nothing to correct, or too few samples." }))),
    plot,
    h("section", { class: "panel" }, h("h2", { text: "Samples" }), r.samples.length
      ? table({ id: "reconciled-samples" }, [["Sample"], ["Cast"], ["Lab Cw %", "num"], ["Recorded Cw %", "num"], ["Gauge kg/m3", "num"], ["Lab kg/m3", "num"], ["Gs implied", "num"], ["Bias implied", "num"]],
        r.samples.map((s) => h("tr", { "data-sample": s.sample_id },
          h("td", {}, h("a", { href: `#/samples/${encodeURIComponent(s.sample_id)}`, text: s.sample_id })),
          h("td", { class: "time", text: fmtDateTime(s.cast_at) }),
          h("td", { class: "num", text: fmt(s.lab_solids_pct, 2) }),
          h("td", { class: "num", "data-col": "recorded", text: fmt(s.recorded_solids_pct, 2) }),
          h("td", { class: "num", text: fmt(s.gauge_density_kg_m3, 0) }),
          h("td", { class: "num", text: fmt(s.lab_density_kg_m3, 0) }),
          h("td", { class: "num", text: fmt(s.tailings_sg, 3) }),
          h("td", { class: "num", text: fmt(s.density_bias_kg_m3, 1) }))))
      : h("p", { class: "muted", text: "No sample could be used." }),
      r.skipped.length ? h("details", { open: true }, h("summary", { text: `${r.skipped.length} sample(s) not used` }),
        h("ul", { id: "skipped" }, r.skipped.map((s) => h("li", { text: `${s.sample_id}: ${s.reason}` })))) : null));
  const draw = () => {
    const n = r.samples.length;
    const e = r.tailings_sg;
    drawPlot($(".plot-box", plot), {
      x: { min: 0, max: Math.max(2, n + 1), ticks: r.samples.map((_, i) => i + 1) },
      xLabel: "sample",
      yLabel: "Gs",
      height: 240,
      bands: e && e.low !== null ? [{ points: [[0, e.low, e.high], [Math.max(2, n + 1), e.low, e.high]] }] : [],
      hlines: [{ y: r.assumed_tailings_sg, label: `assumed ${fmt(r.assumed_tailings_sg, 3)}` }, ...(e ? [{ y: e.value, label: `estimate ${fmt(e.value, 3)}`, cls: "ref" }] : [])],
      markers: r.samples.map((s, i) => ({ x: i + 1, y: s.tailings_sg, r: 5, cls: "pass", title: `${s.sample_id}: Gs ${fmt(s.tailings_sg, 3)}` })),
      emptyText: "no sample",
    });
  };
  draw();
  redrawOnResize(draw, app.viewTimers);
}

function approveForm(r) {
  const form = h("form", { class: "panel form no-print", id: "approve-reconciliation" },
    h("h2", { text: "Approve the correction" }),
    h("p", { class: "muted", text: "From the next pour start on, control runs on it (a pour under way keeps what it started with); past pours read reconciled beside what they ran on. The approval is an entry of the audit log." }),
    h("div", { class: "fields" }, approverField()),
    h("button", { type: "submit", id: "approve", text: "Approve" }),
    formError());
  onSubmit(form, async () => {
    await api(`/lab/reconciliations/${encodeURIComponent(r.id)}/approve`, { method: "POST", body: { approved_by: named(form, "approved_by").value.trim() } });
    rerender();
  });
  return form;
}
