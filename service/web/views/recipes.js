// Recipes: every stored version, one version's design and strength curve, and an
// engineer's approval (with the reason a recipe the plant cannot make is wanted).

import { api } from "../lib/api.js";
import { $, h, kv, put, showError, table } from "../lib/dom.js";
import { approverField, field, formError, named, onSubmit, text } from "../lib/forms.js";
import { blendText, fmt, fmtDateTime } from "../lib/format.js";
import { drawPlot } from "../lib/plot.js";
import { may } from "../lib/roles.js";
import { current, rerender } from "../lib/state.js";

export async function viewRecipes(main, token) {
  put(main, h("h1", { text: "Recipes" }), h("p", { class: "muted", text: "loading…" }));
  let recipes;
  try {
    recipes = await api("/recipes");
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const head = [h("h1", { text: "Recipes" })];
  if (may.engineer()) head.push(h("p", {}, "A new recipe comes from the ", h("a", { href: "#/design", text: "design" }), "."));
  if (!recipes.length) {
    put(main, ...head, h("p", { class: "muted", text: "No stored recipes." }));
    return;
  }
  const rows = recipes.map((r) => h("tr", { "data-recipe": r.id, "data-approved": String(r.approved) },
    h("td", {}, h("a", { href: `#/recipes/${encodeURIComponent(r.id)}`, text: r.name })),
    h("td", { class: "num", text: r.version }),
    h("td", { class: "num", text: fmt(r.mix.binder_pct, 2) }),
    h("td", { class: "num", text: fmt(r.mix.solids_pct, 2) }),
    h("td", { text: blendText(r.mix.binder) }),
    h("td", { class: "num", text: r.predicted_ucs_28d ? fmt(r.predicted_ucs_28d.ucs_kpa, 0) : "—" }),
    h("td", { class: r.makeability && r.makeability.makeable === false ? "warn" : "", text: makeableText(r.makeability) }),
    h("td", {}, r.approved ? r.approved_by || "yes" : h("span", { class: "badge planned", text: "draft" })),
    h("td", { text: fmtDateTime(r.created_at) })));
  put(main, ...head, h("section", { class: "panel" }, table({ id: "recipes" },
    [["Name"], ["Version", "num"], ["Bw %", "num"], ["Cw %", "num"], ["Blend"],
      ["UCS 28 d kPa", "num"], ["Plant makes it"], ["Approved by"], ["Stored"]], rows)));
}

function makeableText(mk) {
  if (!mk) return "—";
  return mk.makeable ? "yes" : `no: best ${fmt(mk.best_solids_pct, 1)} % Cw`;
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

// Every limit the plant's makeability check looked at, and what it rests on.
export function makeabilityTable(mk, id = "makeability") {
  if (!mk) return h("p", { class: "muted", text: "Not checked." });
  return h("div", { id, "data-makeable": String(mk.makeable) },
    h("p", { class: mk.makeable ? "" : "warn" }, mk.makeable
      ? "The plant can make it from its feed, inside the Cw it holds."
      : `The plant cannot make it: the best it reaches at this Bw is ${fmt(mk.best_solids_pct, 2)} % Cw.`),
    table({}, [["Limit"], ["Value", "num"], ["Rests on"], ["Within"], ["Detail"]], mk.limits.map((l) =>
      h("tr", { "data-limit": l.name, class: l.within ? "" : "warn" },
        h("td", { text: l.name }), h("td", { class: "num", text: fmt(l.value, 2) }), h("td", { text: l.basis }),
        h("td", { text: l.within ? "yes" : "no" }), h("td", { class: "muted", text: l.detail })))),
    mk.notes && mk.notes.length ? h("ul", { class: "muted" }, mk.notes.map((n) => h("li", { text: n }))) : null);
}

export async function viewRecipe(main, token, recipeId) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  let recipe;
  try {
    recipe = await api(`/recipes/${encodeURIComponent(recipeId)}`);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
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
    kv("Calibration", recipe.calibration_id
      ? h("a", { href: `#/calibrations/${encodeURIComponent(recipe.calibration_id)}`, text: recipe.calibration_id }) : "— (none)"),
    kv("Approved by", h("span", { id: "approved-by", text: recipe.approved ? `${recipe.approved_by || "?"} at ${fmtDateTime(recipe.approved_at)}` : "— (not approved: no pour runs it)" })),
    recipe.prediction_note ? kv("Note", recipe.prediction_note) : null,
    recipe.problems.length ? kv("Problems", h("ul", { class: "warn" }, recipe.problems.map((p) => h("li", { text: p })))) : null));
  const mixTable = h("table", { class: "kv" }, h("tbody", {},
    kv("Bw", `${fmt(mix.binder_pct, 2)} % of dry tailings`),
    kv("Cw", `${fmt(mix.solids_pct, 2)} % of paste mass`),
    kv("Blend", blendText(mix.binder)),
    kv("Tailings SG / moisture", `${fmt(mix.tailings.specific_gravity, 2)} / ${fmt(mix.tailings.moisture_pct, 2)} %`),
    kv("Wet density", recipe.per_m3 ? `${fmt(recipe.per_m3.wet_density_kg_m3, 0)} kg/m3` : "—"),
    kv("Binder per m3", recipe.per_m3 ? `${fmt(recipe.per_m3.binder_kg, 1)} kg` : "—"),
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
  put(main, 
    h("div", { class: "toolbar" }, h("a", { href: "#/recipes", text: "← Recipes" })),
    h("h1", {}, `Recipe ${recipe.name} v${recipe.version} `,
      h("span", { id: "recipe-state", class: `badge ${recipe.approved ? "completed" : "planned"}`, text: recipe.approved ? "approved" : "draft" })),
    !recipe.approved && may.engineer() ? approvalPanel(recipe) : null,
    h("div", { class: "row" },
      h("section", { class: "panel" }, h("h2", { text: "Design" }), design),
      h("section", { class: "panel" }, h("h2", { text: "Mix" }), mixTable,
        h("h3", { text: "Can the plant make it?" }), makeabilityTable(recipe.makeability))),
    curve,
    recipe.design ? h("details", { class: "panel" }, h("summary", { text: "Stored design record" }),
      h("pre", { class: "design", text: JSON.stringify(recipe.design, null, 2) })) : null);
  if (recipe.calibration_id) await drawUcsCurve(curve, recipe, f, token);
}

// An engineer approves the version: the person, and the reason when the plant cannot
// make it (the service refuses the approval without one and keeps it in the audit log).
function approvalPanel(recipe) {
  const unmakeable = recipe.makeability && recipe.makeability.makeable === false;
  const form = h("form", { class: "panel form no-print", id: "approve-form" },
    h("h2", { text: "Approve this version" }),
    h("p", { class: "muted", text: "Only an approved version runs in a pour; the approval is an entry of the audit log." }),
    h("div", { class: "fields" },
      approverField(),
      unmakeable ? field("Why, though the plant cannot make it", text("unmakeable_reason", "", { required: true, maxlength: 500, class: "wide" }),
        "kept in the audit log with the approval") : null),
    h("button", { type: "submit", id: "approve", text: "Approve" }),
    formError());
  onSubmit(form, async () => {
    const body = { approved_by: named(form, "approved_by").value.trim() };
    const reason = named(form, "unmakeable_reason");
    if (reason && reason.value.trim()) body.unmakeable_reason = reason.value.trim();
    await api(`/recipes/${encodeURIComponent(recipe.id)}/approve`, { method: "POST", body });
    rerender();
  });
  return form;
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
    if (!current(token)) return;
    const answers = all.slice(0, n);
    const own = all[n];
    // Solid where the model is inside its tested combinations, dashed where it extrapolates;
    // the lower line is the UCS the site's pass fraction of cylinders exceeds.
    const inside = answers.map((a, i) => [bws[i], a.extrapolated ? null : a.ucs_kpa]);
    const outside = answers.map((a, i) => [bws[i], a.ucs_kpa]);
    const lowerInside = answers.map((a, i) => [bws[i], a.extrapolated ? null : a.lower_ucs_kpa]);
    const lowerOutside = answers.map((a, i) => [bws[i], a.lower_ucs_kpa]);
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
      markers: own.ucs_kpa !== null ? [{ x: mix.binder_pct, y: own.ucs_kpa }] : [],
    });
    figure.setAttribute("data-points", String(answers.length));
  } catch (err) {
    if (!current(token)) return;
    put(box, h("p", { class: "muted", text: `No curve: ${err.message}` }));
  }
}
