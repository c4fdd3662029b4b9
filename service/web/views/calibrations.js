// Strength calibrations: every version, a new fit from the lab's cylinders, and one
// version: measured against predicted with the prediction band, the residuals, the
// tested region, what changed from the version it refits, and the engineer's approval.

import { api, inBatches } from "../lib/api.js";
import { $, h, kv, put, showError, table } from "../lib/dom.js";
import { approverField, field, formError, named, num, onSubmit, text } from "../lib/forms.js";
import { fmt, fmtDateTime } from "../lib/format.js";
import { drawPlot, redrawOnResize } from "../lib/plot.js";
import { may } from "../lib/roles.js";
import { app, current, rerender } from "../lib/state.js";

// Per-row prediction bands are asked of the service up to this many cylinders; beyond,
// the band is drawn from the fit's residual spread alone (said so).
const MAX_BAND_ROWS = 300;

export async function viewCalibrations(main, token) {
  put(main, h("h1", { text: "Calibrations" }), h("p", { class: "muted", text: "loading…" }));
  let list;
  try {
    list = await api("/calibrations");
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const rows = list.map((c) => h("tr", { "data-calibration": c.id, "data-status": c.status },
    h("td", {}, h("a", { href: `#/calibrations/${encodeURIComponent(c.id)}`, text: c.name })),
    h("td", { class: "num", text: String(c.version) }),
    h("td", {}, h("span", { class: `badge ${c.status === "approved" ? "completed" : "planned"}`, text: c.status }), c.example ? h("span", { class: "badge stopped", text: "EXAMPLE" }) : null),
    h("td", { class: "num", text: String(c.n_rows) }),
    h("td", { class: "num", text: fmt(c.r2_log, 3) }),
    h("td", { class: "num", text: fmt(c.rmse_kpa, 0) }),
    h("td", { text: c.components.join(", ") }),
    h("td", { text: c.approved_by || "—" }),
    h("td", { text: fmtDateTime(c.created_at) })));
  put(main, 
    h("h1", { text: "Calibrations" }),
    h("p", { class: "muted", text: "Strength models fitted to the mine's own cylinders. A version designs recipes once approved; a refit from the lab's results is proposed until an engineer approves it." }),
    may.engineer() ? fitForm() : null,
    h("section", { class: "panel" }, list.length ? table({ id: "calibrations" },
      [["Name"], ["Version", "num"], ["Status"], ["Cylinders", "num"], ["R² (ln)", "num"], ["RMSE kPa", "num"], ["Binders"], ["Approved by"], ["Stored"]], rows)
      : h("p", { class: "muted", text: "No calibrations." })));
}

function fitForm() {
  const csv = h("textarea", { name: "csv", rows: 8, class: "csv", spellcheck: "false", required: true,
    placeholder: "sample_id,cement_fraction_pct,slag_fraction_pct,binder_pct,solids_pct,curing_days,ucs_kpa" });
  const file = h("input", { type: "file", accept: ".csv,text/csv,text/plain" });
  file.addEventListener("change", async () => {
    if (file.files && file.files[0]) csv.value = await file.files[0].text();
  });
  const form = h("form", { class: "form", id: "fit-form" },
    h("div", { class: "fields" },
      field("Name", text("name", "", { required: true, maxlength: 100 }), "the same name again stores the next version"),
      field("Reference binder", text("reference_component", "cement", { maxlength: 40 })),
      field("Accepted beyond the tested span %", num("range_tolerance_pct", 10, { min: 0, max: 100 })),
      field("Cylinders (CSV file)", file)),
    csv,
    h("p", { class: "muted", text: "Columns: binder_pct, solids_pct, curing_days, ucs_kpa, one <binder>_fraction_pct per binder, optionally sample_id; # starts a comment." }),
    h("button", { type: "submit", id: "fit", text: "Fit and store" }),
    formError());
  onSubmit(form, async () => {
    const made = await api("/calibrations", {
      method: "POST",
      body: {
        name: named(form, "name").value.trim(),
        csv: csv.value,
        reference_component: named(form, "reference_component").value.trim() || "cement",
        range_tolerance_pct: Number(named(form, "range_tolerance_pct").value || 10),
      },
    });
    location.hash = `#/calibrations/${encodeURIComponent(made.id)}`;
  });
  return h("details", { class: "panel no-print", id: "fit-panel" }, h("summary", { text: "Fit a new calibration" }), form);
}

export async function viewCalibration(main, token, id) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  let cal;
  let all;
  try {
    [cal, all] = await Promise.all([api(`/calibrations/${encodeURIComponent(id)}`), api("/calibrations")]);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const versions = all.filter((c) => c.name === cal.name).sort((a, b) => b.version - a.version);
  const fitFig = figure("cal-fit", "Measured against predicted UCS (kPa)", [
    ["dot-swatch pass", "cylinder inside its band"], ["dot-swatch fail", "outside"], ["swatch c1 dash", "1:1"]]);
  const residFig = figure("cal-residuals", "Residuals: ln measured − ln predicted", [
    ["dot-swatch pass", "cylinder"], ["swatch c1 dash", "± 2 residual sd"]]);
  const regionFig = figure("cal-region", "The tested region: binder/water ratio against age", [
    ["dot-swatch pass", "tested cylinder"], ["swatch band", "accepted ranges (tested span, widened by the tolerance)"]]);
  const example = cal.example ? h("p", { class: "notice", text: "The shipped EXAMPLE calibration: synthetic data, not for design." }) : null;
  put(main, 
    h("div", { class: "toolbar" }, h("a", { href: "#/calibrations", text: "← Calibrations" })),
    h("h1", {}, `Calibration ${cal.name} v${cal.version} `,
      h("span", { id: "calibration-status", class: `badge ${cal.status === "approved" ? "completed" : "planned"}`, text: cal.status })),
    example,
    cal.status === "proposed" && may.engineer() ? approvePanel(cal) : null,
    h("div", { class: "row" },
      h("section", { class: "panel" }, h("h2", { text: "The fit" }), fitTable(cal)),
      h("section", { class: "panel" }, h("h2", { text: "Coefficients" }), coefficientTable(cal))),
    h("div", { class: "row" }, fitFig, residFig),
    h("div", { class: "row" }, regionFig,
      h("section", { class: "panel" }, h("h2", { text: "Versions" }), versionTable(versions, cal),
        cal.status === "approved" && may.engineer() && !cal.example ? proposeForm(cal) : null)),
    cal.proposal ? changesPanel(cal.proposal) : null);
  const bands = await rowBands(cal, token);
  if (!current(token)) return;
  const draw = () => {
    drawFit($(".plot-box", fitFig), cal, bands);
    drawResiduals($(".plot-box", residFig), cal);
    drawRegion($(".plot-box", regionFig), cal);
  };
  draw();
  redrawOnResize(draw, app.viewTimers);
}

function figure(id, title, legend) {
  return h("figure", { class: "panel trend", "data-trend": id },
    h("h3", { text: title }),
    h("div", { class: "legend" }, legend.map(([cls, label]) => h("span", { class: "item" }, h("span", { class: cls }), label))),
    h("p", { class: "muted plot-note" }),
    h("div", { class: "plot-box", text: "computing…" }));
}

function fitTable(cal) {
  return h("table", { class: "kv", id: "fit-figures" }, h("tbody", {},
    kv("Model", cal.label || "—"),
    kv("Form", cal.form),
    kv("Cylinders", String(cal.n_rows)),
    kv("R² on ln UCS / on kPa", `${fmt(cal.r2_log, 3)} / ${fmt(cal.r2_kpa, 3)}`),
    kv("Residual spread", `${fmt(cal.rmse_log, 3)} on ln UCS (RMSE ${fmt(cal.rmse_kpa, 0)} kPa)`),
    kv("Terms", `${cal.terms.join(", ")}${cal.dropped_terms.length ? ` (dropped: ${cal.dropped_terms.join(", ")})` : ""}`),
    kv("Tested Bw", `${fmt(cal.range.binder_pct.min, 1)}–${fmt(cal.range.binder_pct.max, 1)} % of dry tailings`),
    kv("Tested Cw", `${fmt(cal.range.solids_pct.min, 1)}–${fmt(cal.range.solids_pct.max, 1)} % of paste mass`),
    kv("Tested ages", `${fmt(cal.range.curing_days.min, 0)}–${fmt(cal.range.curing_days.max, 0)} days`),
    kv("Tested blends", Object.entries(cal.range.blend_pct).map(([n, r]) => `${n} ${fmt(r.min, 0)}–${fmt(r.max, 0)} %`).join(", ")),
    kv("Stored", `${fmtDateTime(cal.created_at)} by ${cal.created_by}`),
    kv("Approved", cal.status === "approved" ? `${cal.approved_by || "on storing (no name recorded)"}${cal.approved_at ? ` at ${fmtDateTime(cal.approved_at)}` : ""}` : "no: proposed"),
    cal.proposed_from ? kv("Refits", h("a", { href: `#/calibrations/${encodeURIComponent(cal.proposed_from)}`, text: "the approved version" })) : null));
}

function coefficientTable(cal) {
  const entries = Object.entries(cal.coefficients || {});
  if (!entries.length) return h("p", { class: "muted", text: "—" });
  return table({ id: "coefficients" }, [["Term"], ["Value", "num"]], entries.map(([k, v]) => h("tr", {},
    h("td", { text: k }), h("td", { class: "num", text: coefficientText(v) }))));
}

function coefficientText(v) {
  if (typeof v === "number") return fmt(v, 4);
  if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${typeof x === "number" ? fmt(x, 4) : x}`).join(", ");
  return String(v);
}

function versionTable(versions, cal) {
  return table({ id: "versions" }, [["Version", "num"], ["Status"], ["Cylinders", "num"], ["R² (ln)", "num"], ["Approved by"], ["Stored"]],
    versions.map((v) => h("tr", { class: v.id === cal.id ? "current" : "", "data-version": v.version },
      h("td", { class: "num" }, h("a", { href: `#/calibrations/${encodeURIComponent(v.id)}`, text: `v${v.version}` })),
      h("td", { text: v.status }),
      h("td", { class: "num", text: String(v.n_rows) }),
      h("td", { class: "num", text: fmt(v.r2_log, 3) }),
      h("td", { text: v.approved_by || "—" }),
      h("td", { text: fmtDateTime(v.created_at) }))));
}

// What a proposed refit changed: each coefficient, R² and spread before and after, and
// how the approved model predicted the lab's new results.
function changesPanel(p) {
  const err = (e) => e ? `${e.n} result(s): RMSE ${fmt(e.rmse_kpa, 0)} kPa, bias ${fmt(e.bias_kpa, 0)} kPa${e.above_lower_pct !== null ? `, ${fmt(e.above_lower_pct, 0)} % at or above the lower bound (pass fraction ${fmt(e.pass_fraction_pct, 0)} %)` : ""}` : "—";
  return h("section", { class: "panel", id: "what-changed" },
    h("h2", { text: `What changed from v${p.based_on_version}` }),
    h("table", { class: "kv" }, h("tbody", {},
      kv("Cylinders", `${p.n_old} before, ${p.n_new} lab result(s) added`),
      kv("R² on ln UCS", `${fmt(p.r2_log_before, 3)} → ${fmt(p.r2_log_after, 3)}`),
      kv("Residual sd on ln UCS", `${fmt(p.residual_sd_log_before, 3)} → ${fmt(p.residual_sd_log_after, 3)}`),
      kv("The approved model on the new results", err(p.old_model_on_new)),
      kv("The refit on them", err(p.new_model_on_new)))),
    table({ id: "coefficient-changes" }, [["Term"], ["Before", "num"], ["After", "num"], ["Change", "num"]], p.changes.map((c) => h("tr", {},
      h("td", { text: c.term }), h("td", { class: "num", text: fmt(c.before, 4) }), h("td", { class: "num", text: fmt(c.after, 4) }),
      h("td", { class: "num", text: fmt(c.change, 4) })))),
    p.skipped.length ? h("details", {}, h("summary", { text: `${p.skipped.length} result(s) not used` }),
      h("ul", {}, p.skipped.map((s) => h("li", { text: `${s.sample_id}: ${s.reason}` })))) : null);
}

function approvePanel(cal) {
  const form = h("form", { class: "panel form no-print", id: "approve-calibration" },
    h("h2", { text: "Approve this version" }),
    h("p", { class: "muted", text: "Once approved it designs recipes; the approval is an entry of the audit log." }),
    h("div", { class: "fields" }, approverField()),
    h("button", { type: "submit", id: "approve", text: "Approve" }),
    formError());
  onSubmit(form, async () => {
    await api(`/calibrations/${encodeURIComponent(cal.id)}/approve`, { method: "POST", body: { approved_by: named(form, "approved_by").value.trim() } });
    rerender();
  });
  return form;
}

function proposeForm(cal) {
  const form = h("form", { class: "form no-print", id: "propose-form" },
    h("label", { class: "field inline" }, h("input", { type: "checkbox", name: "use_lab_solids", checked: true }),
      h("span", { text: "Cw of a cylinder from its own masses where measured" })),
    h("button", { type: "submit", id: "propose", class: "quiet", text: "Propose a refit from the lab's results" }),
    formError());
  onSubmit(form, async () => {
    const p = await api(`/calibrations/${encodeURIComponent(cal.id)}/proposals`, { method: "POST", body: { use_lab_solids: named(form, "use_lab_solids").checked } });
    location.hash = `#/calibrations/${encodeURIComponent(p.calibration.id)}`;
  });
  return form;
}

// Each cylinder's prediction band: the service's lower bound at the site's pass fraction
// p and its mirror on ln UCS (the interval is symmetric there): a central 2p - 1 band.
async function rowBands(cal, token) {
  if (cal.rows.length > MAX_BAND_ROWS) return null;
  try {
    return await inBatches(cal.rows, 8, async (row) => {
      if (!current(token)) return null;
      const a = await api(`/calibrations/${encodeURIComponent(cal.id)}/predict`, {
        method: "POST",
        body: { blend: row.blend, binder_pct: row.binder_pct, solids_pct: row.solids_pct, curing_days: row.curing_days, allow_extrapolation: true },
      });
      return { lower: a.lower_ucs_kpa, upper: (a.ucs_kpa * a.ucs_kpa) / a.lower_ucs_kpa, pass: a.pass_fraction_pct };
    });
  } catch (_err) {
    return null;
  }
}

function drawFit(box, cal, bands) {
  const pts = cal.residuals.map((r, i) => ({ r, band: bands ? bands[i] : null }));
  const spread = 1.2816 * cal.rmse_log; // z of 90 %: the band from the spread alone
  const band = (p) => p.band || { lower: p.r.predicted_kpa * Math.exp(-spread), upper: p.r.predicted_kpa * Math.exp(spread), pass: 90 };
  const inside = (p) => p.r.measured_kpa >= band(p).lower && p.r.measured_kpa <= band(p).upper;
  const hi = Math.max(1, ...pts.map((p) => Math.max(p.r.measured_kpa, band(p).upper, p.r.predicted_kpa))) * 1.05;
  const passPct = pts.length && pts[0].band ? pts[0].band.pass : 90;
  box.parentElement.querySelector(".plot-note").textContent = bands
    ? `Bars: each cylinder's central ${fmt(2 * passPct - 100, 0)} % prediction band (its lower bound is the UCS ${fmt(passPct, 0)} % of cylinders exceed); ${pts.filter(inside).length} of ${pts.length} inside.`
    : `Bars: ± 1.28 residual sd on ln UCS (the leverage of each point, which widens it, not counted); ${pts.filter(inside).length} of ${pts.length} inside.`;
  drawPlot(box, {
    x: { min: 0, max: hi },
    y: { min: 0, max: hi },
    xLabel: "predicted UCS, kPa (median)",
    yLabel: "measured kPa",
    height: 340,
    segments: [{ x1: 0, y1: 0, x2: hi, y2: hi, cls: "identity" },
      ...pts.map((p) => ({ x1: p.r.predicted_kpa, x2: p.r.predicted_kpa, y1: band(p).lower, y2: band(p).upper, cls: "errbar" }))],
    markers: pts.map((p) => ({
      x: p.r.predicted_kpa, y: p.r.measured_kpa, r: 4, cls: inside(p) ? "pass" : "fail",
      title: `${p.r.sample_id || `row ${p.r.index + 1}`}: ${fmt(p.r.measured_kpa, 0)} kPa measured, ${fmt(p.r.predicted_kpa, 0)} predicted`,
      data: { row: p.r.index },
    })),
  });
}

function drawResiduals(box, cal) {
  const sd = cal.rmse_log;
  const xs = cal.residuals.map((r) => r.predicted_kpa);
  const lim = Math.max(2.5 * sd, ...cal.residuals.map((r) => Math.abs(r.residual_log))) * 1.1;
  box.parentElement.querySelector(".plot-note").textContent = `Against the predicted UCS; a pattern (a curve, a funnel) says the model's form misses something.`;
  drawPlot(box, {
    x: { min: 0, max: Math.max(1, ...xs) * 1.05 },
    y: { min: -lim, max: lim },
    xLabel: "predicted UCS, kPa",
    yLabel: "ln residual",
    height: 340,
    hlines: [{ y: 2 * sd, label: "+2 sd", cls: "warn" }, { y: -2 * sd, label: "−2 sd", cls: "warn" }, { y: 0, cls: "ref" }],
    markers: cal.residuals.map((r) => ({ x: r.predicted_kpa, y: r.residual_log, r: 4, cls: Math.abs(r.residual_log) > 2 * sd ? "fail" : "pass" })),
  });
}

// The binder/water mass ratio of a saturated paste, Mb/Mw = Bw Cw / ((1 + Bw)(1 - Cw)),
// the inverse of W/C = (1 + Bw)(1 - Cw) / (Bw Cw) (Belem, T. & Benzaazoua, M. (2008)
// Design and application of underground mine paste backfill technology. Geotechnical
// and Geological Engineering 26:147-174), with Bw and Cw as fractions.
export function binderWaterRatio(binderPct, solidsPct) {
  const bw = binderPct / 100;
  const cw = solidsPct / 100;
  return (bw * cw) / ((1 + bw) * (1 - cw));
}

function drawRegion(box, cal) {
  const pts = cal.rows.map((r) => [r.curing_days, binderWaterRatio(r.binder_pct, r.solids_pct)]);
  const widen = (lo, hi, tol) => {
    const a = Math.log(lo);
    const b = Math.log(hi);
    const d = (b - a) * tol;
    return [Math.exp(a - d), Math.exp(b + d)];
  };
  const tol = cal.range.tolerance_pct / 100;
  const ratios = pts.map((p) => p[1]);
  const [r0, r1] = widen(Math.min(...ratios), Math.max(...ratios), tol);
  const [t0, t1] = widen(cal.range.curing_days.min, cal.range.curing_days.max, tol);
  box.parentElement.querySelector(".plot-note").textContent =
    "A prediction is valid inside the combinations tested, not inside each range taken alone: inside the box a mix far from every cylinder is still refused (its leverage), and the service says so with every prediction.";
  drawPlot(box, {
    x: { min: Math.max(0.5, t0 * 0.8), max: t1 * 1.25, log: true, ticks: [1, 3, 7, 14, 28, 56, 90, 180, 365] },
    xLabel: "age, days (log scale)",
    yLabel: "Mb/Mw",
    yFromZero: true,
    height: 340,
    rects: [{ x0: t0, x1: t1, y0: r0, y1: r1, cls: "accepted", label: `accepted: ${fmt(r0, 3)}–${fmt(r1, 3)} Mb/Mw, ${fmt(t0, 1)}–${fmt(t1, 0)} d` }],
    markers: pts.map(([t, r]) => ({ x: t, y: r, r: 4, cls: "pass" })),
  });
}
