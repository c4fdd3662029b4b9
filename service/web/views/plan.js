// A stope's fill plan, made or revised by an engineer: stages with their recipe, top,
// rise-rate limit, cure hold (plant time) or a recipe switch at the top, and the strength
// each must reach. A revision keeps the progress: a finished stage and a started stage's
// recipe stay as they are.

import { api } from "../lib/api.js";
import { $, $$, h, put, showError } from "../lib/dom.js";
import { checkbox, field, formError, named, num, numberOf, onSubmit, select, text } from "../lib/forms.js";
import { fmt } from "../lib/format.js";
import { current } from "../lib/state.js";

const LOCKED = new Set(["released", "done", "curing", "waiting_release", "abandoned"]);

export async function viewPlan(main, token, stopeId) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  let stope;
  let recipes;
  try {
    [stope, recipes] = await Promise.all([api(`/stopes/${encodeURIComponent(stopeId)}`), api("/recipes")]);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const byId = new Map(recipes.map((r) => [r.id, r]));
  const options = [["", "— choose a recipe version —"], ...recipes.map((r) => [r.id, recipeOption(r)])];

  const rows = h("tbody", { id: "plan-stages" });
  const addStage = (stage) => rows.append(stageRow(stage, options, stope, refresh));
  const continuous = checkbox("continuous", stope.continuous);
  const reason = text("unmakeable_reason", "", { maxlength: 500, class: "wide" });
  const reasonField = field("Why a recipe the plant cannot make is planned", reason, "kept in the audit log; the service refuses the plan without it");
  const summary = h("p", { class: "muted", id: "plan-summary" });
  function refresh() {
    let prev = 0;
    let hours = 0;
    let unmakeable = false;
    for (const tr of $$("tr.stage", rows)) {
      const top = numberOf(named(tr, "top_height_m"));
      const rise = numberOf(named(tr, "max_rise_rate_m_h"));
      const recipe = byId.get(named(tr, "recipe_id").value);
      if (recipe && recipe.makeability && recipe.makeability.makeable === false) unmakeable = true;
      const cell = $("[data-col=derived]", tr);
      if (top !== null && top > prev) {
        const volume = (top - prev) * stope.plan_area_m2;
        const pourH = rise ? (top - prev) / rise : null;
        cell.textContent = `${fmt(volume, 1)} m3${pourH !== null ? ` · ${fmt(pourH, 1)} h at the limit` : ""}`;
        if (pourH !== null) hours += pourH;
        prev = top;
      } else {
        cell.textContent = top !== null ? "below the stage before" : "";
      }
    }
    reasonField.hidden = !unmakeable;
    reason.required = unmakeable;
    summary.textContent = `Plan area ${fmt(stope.plan_area_m2, 1)} m2, stope ${fmt(stope.height_m, 1)} m high (${fmt(stope.volume_m3, 1)} m3); ` +
      `the stages reach ${fmt(prev, 2)} m, about ${fmt(hours, 1)} h of pouring at their rise limits, holds not counted.`;
  }
  for (const stage of stope.stages.length ? stope.stages : defaultStages(stope)) addStage(stage);

  const form = h("form", { class: "panel form", id: "plan-form" },
    h("table", { class: "plan-table" },
      h("thead", {}, h("tr", {}, ["Stage", "Recipe version", "Top m", "Rise limit m/h", "Hold h (plant time)", "Switch at top", "Requirements (kPa at days)", "Stage volume, pour time", ""].map((t) => h("th", { text: t })))),
      rows),
    h("div", { class: "toolbar" },
      h("button", { type: "button", class: "quiet", id: "add-stage", text: "+ Stage", onclick: () => { addStage({ name: "", recipe_id: "", requirements: [] }); refresh(); } })),
    h("div", { class: "fields" },
      field("Continuous: switch the recipe at each stage top without stopping", continuous),
      reasonField),
    summary,
    h("button", { type: "submit", id: "save-plan", text: stope.plan_version === null ? "Save the plan" : `Save as plan v${stope.plan_version + 1}` }),
    formError());
  onSubmit(form, async () => {
    const stages = $$("tr.stage", rows).map(readStage);
    const body = { stages, continuous: continuous.checked };
    if (!reasonField.hidden && reason.value.trim()) body.unmakeable_reason = reason.value.trim();
    await api(`/stopes/${encodeURIComponent(stope.id)}/plans`, { method: "POST", body });
    location.hash = `#/stopes/${encodeURIComponent(stope.id)}`;
  });
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  refresh();
  put(main, 
    h("div", { class: "toolbar" }, h("a", { href: `#/stopes/${encodeURIComponent(stope.id)}`, text: `← Stope ${stope.name}` })),
    h("h1", { text: `${stope.plan_version === null ? "Fill plan" : `Revise plan v${stope.plan_version}`} of stope ${stope.name}` }),
    h("p", { class: "muted", text: "Each stage runs its recipe to its top at a paste flow that holds its rise rate, then stops and cures for its hold (plant time) until an engineer releases it; a stage that switches at its top hands over to the next recipe without stopping. A finished stage, and the recipe of a started one, stay as they are." }),
    form);
}

function recipeOption(r) {
  const flags = [r.approved ? null : "draft", r.makeability && r.makeability.makeable === false ? "plant cannot make it" : null].filter(Boolean);
  return `${r.name} v${r.version}: Bw ${fmt(r.mix.binder_pct, 1)} %, Cw ${fmt(r.mix.solids_pct, 1)} %${flags.length ? ` (${flags.join(", ")})` : ""}`;
}

function defaultStages(stope) {
  const plug = Math.min(3, stope.height_m / 4);
  return [
    { name: "plug", recipe_id: "", top_height_m: plug, max_rise_rate_m_h: 0.5, cure_hold_h: 48, requirements: [] },
    { name: "body", recipe_id: "", top_height_m: stope.height_m, max_rise_rate_m_h: 1.0, cure_hold_h: 0, requirements: [] },
  ];
}

function stageRow(stage, options, stope, refresh) {
  const locked = LOCKED.has(stage.state);
  const started = locked || stage.state === "filling";
  const reqs = h("div", { class: "reqs" });
  const addReq = (r) => reqs.append(requirementRow(r, locked));
  for (const r of stage.requirements || []) addReq(r);
  const tr = h("tr", { class: "stage", "data-stage": stage.name || "", "data-locked": String(locked) },
    h("td", {}, text("name", stage.name, { required: true, pattern: "[a-z][a-z0-9_]*", maxlength: 32, size: 8, readonly: locked, title: "lower case letters, digits and _" }),
      stage.state ? h("div", { class: "muted", text: stage.state.replaceAll("_", " ") }) : null),
    h("td", {}, select("recipe_id", options, stage.recipe_id, { required: true, disabled: started })),
    h("td", {}, num("top_height_m", stage.top_height_m, { required: true, min: 0, size: 6, readonly: locked })),
    h("td", {}, num("max_rise_rate_m_h", stage.max_rise_rate_m_h ?? 1, { required: true, min: 0, readonly: locked })),
    h("td", {}, num("cure_hold_h", stage.cure_hold_h ?? 0, { min: 0, readonly: locked })),
    h("td", {}, checkbox("switch_at_top", stage.switch_at_top, { disabled: locked })),
    h("td", {}, reqs, locked ? null : h("button", { type: "button", class: "quiet small", text: "+ requirement", onclick: () => addReq({}) })),
    h("td", { "data-col": "derived", class: "muted" }),
    h("td", {}, locked ? null : h("button", { type: "button", class: "quiet small", text: "Remove", onclick: () => { tr.remove(); refresh(); } })));
  return tr;
}

function requirementRow(r, locked) {
  const row = h("div", { class: "req" },
    text("req_name", r.name || "", { size: 6, placeholder: "name", pattern: "[a-z][a-z0-9_]*", readonly: locked }),
    num("req_ucs_kpa", r.ucs_kpa ?? r.required_ucs_kpa ?? "", { placeholder: "kPa", min: 0, readonly: locked }),
    " at ",
    num("req_curing_days", r.curing_days ?? "", { placeholder: "days", min: 0, readonly: locked }),
    locked ? null : h("button", { type: "button", class: "quiet small", text: "×", "aria-label": "remove the requirement", onclick: () => row.remove() }));
  return row;
}

function readStage(tr) {
  const stage = {
    name: named(tr, "name").value.trim(),
    recipe_id: named(tr, "recipe_id").value,
    top_height_m: numberOf(named(tr, "top_height_m")),
    max_rise_rate_m_h: numberOf(named(tr, "max_rise_rate_m_h")),
    cure_hold_h: numberOf(named(tr, "cure_hold_h")) ?? 0,
    switch_at_top: named(tr, "switch_at_top").checked,
    requirements: $$(".req", tr).map((row) => ({
      name: named(row, "req_name").value.trim(),
      ucs_kpa: numberOf(named(row, "req_ucs_kpa")),
      curing_days: numberOf(named(row, "req_curing_days")),
    })).filter((r) => r.name || r.ucs_kpa !== null || r.curing_days !== null),
  };
  return stage;
}
