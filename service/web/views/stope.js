// One stope: its fill-height gauge, the current stage (rise rate while it fills, the
// hold's countdown in plant time with its wall-time equivalent while it cures, the
// release), the barricade, the plan, and the trends.

import { api, session } from "../lib/api.js";
import { $, clearError, downloadCsv, h, put, showError } from "../lib/dom.js";
import { PlantCountdown, paceText, simulated } from "../lib/clock.js";
import { fmt, fmtDateTime, fmtHold, fmtSpan } from "../lib/format.js";
import { levelBar } from "../lib/plot.js";
import { may } from "../lib/roles.js";
import { app, current, every, onStatus, toDump } from "../lib/state.js";
import { drawTrends, startTrends, trendGrid, windowSelect } from "../lib/trends.js";
import {
  STAGE_STATE_TEXT, currentStage, drawGauge, otherFields, renderBarricade, renderPlanHistory,
  renderStages, renderSwitchPoints, stopePhase, stopeTrendSpecs,
} from "./stope_parts.js";

const STOPE_POLL_MS = 2000;

// The recipe versions a stope's stages name, by id (a missing one maps to null).
export async function stageRecipes(stope) {
  const recipes = new Map();
  await Promise.all([...new Set(stope.stages.map((st) => st.recipe_id))].map(async (id) => {
    try {
      recipes.set(id, await api(`/recipes/${encodeURIComponent(id)}`));
    } catch (_err) {
      recipes.set(id, null);
    }
  }));
  return recipes;
}

export async function viewStope(main, token, stopeId) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  const path = `/stopes/${encodeURIComponent(stopeId)}`;
  let stope;
  let recipes;
  try {
    stope = await api(path);
    recipes = await stageRecipes(stope);
  } catch (err) {
    if (!current(token)) return;
    showError(err);
    put(main, h("p", {}, h("a", { href: "#/stopes", text: "Back to stopes" })));
    return;
  }
  if (!current(token)) return;

  const view = { stope, recipes, role: session.role, stageKey: null, hold: new PlantCountdown() };
  const gaugeBox = h("div", { id: "gauge-box" });
  const gaugeNote = h("p", { id: "gauge-note" });
  const stagePanel = h("section", { class: "panel", id: "stage-panel" });
  const barricadePanel = h("section", { class: "panel", id: "barricade" });
  const stagesBox = h("div", { id: "stages-box" });
  const switchBox = h("div", { id: "switch-points" });
  const historyBox = h("div", { id: "plan-history" });
  const specs = stopeTrendSpecs(() => view.stope);
  const planLink = may.engineer()
    ? h("a", { href: `#/stopes/${encodeURIComponent(stope.id)}/plan`, id: "edit-plan", class: "button-link no-print", text: stope.plan_version === null ? "Make the fill plan" : "Revise the fill plan" })
    : null;
  put(main, 
    h("div", { id: "stope-view" },
      h("div", { class: "toolbar" },
        h("a", { href: "#/stopes", text: "← Stopes" }),
        h("button", {
          type: "button",
          id: "download-stope-csv",
          onclick: () => downloadCsv(`${path}/report.csv`, `stope-${stope.id}.csv`),
        }, "Stope report CSV"),
        h("button", { type: "button", id: "print", class: "quiet", onclick: () => window.print() }, "Print"),
        h("a", { href: `#/stopes/${encodeURIComponent(stope.id)}/compliance`, id: "compliance-link", text: "Cylinders against the requirements" }),
        planLink),
      h("h1", {}, `Stope ${stope.name} `, h("span", { id: "stope-state", class: `badge ${stope.state}`, text: stope.state })),
      h("p", { class: "muted", id: "stope-summary" }),
      h("div", { class: "row" },
        h("section", { class: "panel gauge-panel" }, h("h2", { text: "Fill height" }), gaugeBox, gaugeNote),
        h("div", { class: "stack" }, stagePanel, barricadePanel)),
      h("section", { class: "panel" }, h("h2", { text: "Fill plan" }), stagesBox),
      otherFields(stope),
      h("div", { class: "section-head" }, h("h2", { text: "Barricade and fill height" }), windowSelect(token)),
      h("p", { class: "muted trend-note", text: "From the plant history (wall time): the instrumented barricade and the fill height of the stope its running pour fills." }),
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
    renderStages(stagesBox, st, view.recipes, simulated());
    renderSwitchPoints(switchBox, st, view.recipes);
    renderPlanHistory(historyBox, st);
    drawTrends();
  };
  // A stope as the service answered at `at` (this screen's clock).
  const show = (next, at) => {
    if (!current(token)) return;
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
      if (current(token)) showError(err);
    } finally {
      inFlight = false;
    }
  };
  show(stope, Date.now());
  startTrends(token, specs);
  // The stage panel follows the status too (paste to the dump), between stope reads.
  onStatus(token, () => updateStageLive(view));
  every(STOPE_POLL_MS, refresh);
  every(250, () => tickHold(view));
}

function stopeSummary(st) {
  const plan = st.plan_version === null ? "no fill plan"
    : `plan v${st.plan_version}, ${st.continuous ? "continuous (the recipe switches at each stage top)" : "staged (each stage stops at its top and cures)"}`;
  return `${plan} · plan area ${fmt(st.plan_area_m2, 1)} m2 × ${fmt(st.height_m, 1)} m = ${fmt(st.volume_m3, 1)} m3 · ` +
    `barricade rated ${fmt(st.barricade_rating_kpa, 0)} kPa, high alarm at ${fmt(st.barricade_high_alarm_pct, 0)} % · ` +
    `created ${fmtDateTime(st.created_at)} by ${st.created_by} · report generated ${fmtDateTime(new Date().toISOString())}`;
}

// The hold's time left comes with every answer; between answers it counts on at the
// pace of plant time the answer states (`clock.plant_speed`).
function noteHold(view, stope, at) {
  const stage = currentStage(stope);
  const remaining = stope.hold_remaining_s;
  const key = stage && remaining !== null ? `${stage.index}:${stage.hold_ends_at}` : null;
  view.hold.note(key, remaining, at, stope.clock ? stope.clock.plant_speed : null);
}

function tickHold(view) {
  const el = $("#hold-remaining");
  if (!el) return;
  const left = view.hold.left();
  el.textContent = fmtHold(left);
  el.setAttribute("data-remaining-s", left === null ? "" : left.toFixed(1));
  const wall = $("#hold-wall");
  if (!wall) return;
  if (!simulated()) {
    wall.textContent = "on a real plant, plant time is the wall clock";
    wall.removeAttribute("data-wall-s");
    return;
  }
  const wallS = left === null ? null : view.hold.wallSeconds(left);
  wall.textContent = wallS === null
    ? `wall time: not known until the simulator's pace has been seen (${paceText(view.hold)})`
    : `≈ ${fmtSpan(wallS)} of wall time: ${paceText(view.hold)}`;
  wall.setAttribute("data-wall-s", wallS === null ? "" : wallS.toFixed(1));
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
    put(panel, ...stagePanelBody(view, stage, phase, show));
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
      h("p", { id: "stage-dump", class: "notice", hidden: true, text: "Paste goes to the dump (start-up, flush or out of spec): it does not count as stope volume and the stope does not rise." }),
      h("p", { id: "stage-pour" })];
  }
  if (phase === "curing") {
    const body = [title,
      h("div", { class: "figure-row" },
        h("span", { class: "label", text: "Hold left" }),
        h("span", { class: "big", id: "hold-remaining", "data-remaining-s": "", text: "—" }),
        h("span", { class: "muted", text: "plant time" })),
      h("p", { class: "muted", id: "hold-wall" }),
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

// The rise rate against the stage's limit, and whether the paste goes to the dump (the
// diverter's tag, between stope reads). Paste to the dump does not raise the fill: the
// rise rate is then nothing to alarm on, whatever the line carries.
function updateStageLive(view) {
  const st = view.stope;
  const stage = currentStage(st);
  const riseEl = $("#rise-rate");
  const note = $("#stage-dump");
  if (!riseEl || !stage) return;
  const dumping = Boolean(st.active_pour_id) && toDump(app.status);
  if (note) note.hidden = !dumping;
  const limit = stage.max_rise_rate_m_h;
  const rise = dumping ? 0 : st.rise_rate_m_h;
  const level = dumping ? "dump" : rise === null ? "bad" : rise > limit * 1.05 ? "alarm" : rise > limit ? "warn" : "ok";
  riseEl.textContent = rise === null ? "—" : `${fmt(rise, 1)} m/h`;
  riseEl.className = `big level ${level}`;
  riseEl.setAttribute("data-dumping", String(dumping));
  $("#rise-limit").textContent = dumping
    ? `the paste goes to the dump: the stope does not rise (limit ${fmt(limit, 1)} m/h)`
    : rise === null
      ? `no paste flow measured · limit ${fmt(limit, 1)} m/h`
      : `against the limit of ${fmt(limit, 1)} m/h (${fmt((100 * rise) / limit, 0)} %)`;
  levelBar($("#rise-bar"), {
    value: rise, max: limit * 1.25, level, marks: [{ at: limit, label: `limit ${fmt(limit, 0)} m/h`, cls: "alarm" }],
  });
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
