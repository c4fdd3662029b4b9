// A stope's cylinders against its requirements, stage by stage: UCS against age with
// each requirement and the design's lines (the stage recipe's median and the UCS its
// pass fraction of cylinders exceeds), the strength tests and running averages
// (ACI 318 26.12.3, adapted), the pass fractions against the design's and the notices.

import { api, inBatches } from "../lib/api.js";
import { $, h, put, showError, table } from "../lib/dom.js";
import { fmt, fmtDate, fmtDateTime } from "../lib/format.js";
import { drawPlot, redrawOnResize } from "../lib/plot.js";
import { app, current } from "../lib/state.js";
import { noticeList, passFractionTable } from "./pours.js";

const AGES = [1, 2, 3, 5, 7, 10, 14, 21, 28, 42, 56, 90];
const AGE_TICKS = [1, 3, 7, 14, 28, 56, 90];

export async function viewStopeCompliance(main, token, stopeId) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  let stope;
  let c;
  try {
    [stope, c] = await Promise.all([
      api(`/stopes/${encodeURIComponent(stopeId)}`),
      api(`/stopes/${encodeURIComponent(stopeId)}/compliance`),
    ]);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const groups = stageGroups(stope, c);
  const figures = groups.map((g) => h("figure", { class: "panel trend", "data-trend": `ucs-age-${g.key}`, "data-stage": g.key },
    h("h3", { text: `${g.title}: UCS against age` }),
    h("div", { class: "legend" },
      h("span", { class: "item" }, h("span", { class: "dot-swatch pass" }), "cylinder passed"),
      h("span", { class: "item" }, h("span", { class: "dot-swatch fail" }), "cylinder below the requirement"),
      h("span", { class: "item" }, h("span", { class: "swatch c0" }), "design: median"),
      h("span", { class: "item" }, h("span", { class: "swatch c2" }), "design: lower bound its pass fraction exceeds"),
      h("span", { class: "item" }, h("span", { class: "swatch c1 dash" }), "requirement at its age")),
    h("p", { class: "muted", text: g.note }),
    h("div", { class: "plot-box", text: "computing…" })));
  put(main, 
    h("div", { class: "toolbar" }, h("a", { href: `#/stopes/${encodeURIComponent(stope.id)}`, text: `← Stope ${stope.name}` })),
    h("h1", { text: `Cylinders of stope ${stope.name} against its requirements` }),
    h("p", { class: "muted", text: `${c.samples} cylinder(s) cast from ${c.pours.length} pour(s) · judged ${fmtDateTime(c.evaluated_at)} (wall time: cylinders cure in real time)` }),
    h("div", { id: "compliance-figures" }, figures.length ? figures : h("p", { class: "muted", text: "No pour of this stope yet." })),
    h("section", { class: "panel" }, h("h2", { text: "Pass fractions against the design's" }),
      c.pass_fractions.length ? passFractionTable(c.pass_fractions, "stope-pass-fractions") : h("p", { class: "muted", text: "No requirement to judge against." })),
    h("div", { class: "row" },
      h("section", { class: "panel" }, h("h2", { text: "Strength tests" }), testsTable(c.tests)),
      h("section", { class: "panel" }, h("h2", { text: "Running averages of consecutive tests" }), averagesTable(c.running_averages))),
    h("section", { class: "panel" }, h("h2", { text: "Notices" }), noticeList(c.notices, "stope-notices")));
  const drawn = await Promise.all(groups.map((g) => designLines(g, token)));
  if (!current(token)) return;
  const draw = () => groups.forEach((g, i) => drawGroup($(".plot-box", figures[i]), g, drawn[i]));
  draw();
  redrawOnResize(draw, app.viewTimers);
}

// The stope's pours by stage (a pour without a stage on its own): the requirements, the
// recipe and the cylinders judged.
function stageGroups(stope, c) {
  const groups = new Map();
  for (const basis of c.pours) {
    const key = basis.stage_name || `pour-${basis.pour_id.slice(0, 8)}`;
    if (!groups.has(key)) {
      const stage = basis.stage !== null ? stope.stages[basis.stage] : null;
      groups.set(key, {
        key,
        title: basis.stage_name ? `Stage ${basis.stage_name}` : `Pour ${basis.pour_id.slice(0, 8)}`,
        recipeId: basis.recipe_id,
        requirements: basis.requirements,
        from: basis.requirements_from,
        pours: new Set(),
        stage,
      });
    }
    groups.get(key).pours.add(basis.pour_id);
  }
  for (const g of groups.values()) {
    g.judgements = c.judgements.filter((j) => g.pours.has(j.pour_id));
    g.note = g.requirements.length
      ? `Requirements from the ${g.from === "stage" ? "stope's fill plan" : g.from === "design" ? "recipe's design" : g.from}: ` +
        g.requirements.map((r) => `${r.name} ${fmt(r.required_ucs_kpa, 0)} kPa at ${fmt(r.curing_days, 0)} d`).join(", ")
      : "No requirement for this stage.";
  }
  return [...groups.values()];
}

// The recipe's predicted median and lower bound at each age (its calibration), dashed
// outside the tested combinations.
async function designLines(group, token) {
  try {
    const recipe = await api(`/recipes/${encodeURIComponent(group.recipeId)}`);
    if (!recipe.calibration_id || !current(token)) return { recipe, answers: [] };
    const blend = Object.fromEntries(recipe.mix.binder.map((b) => [b.name, b.fraction_pct]));
    const answers = await inBatches(AGES, 6, (days) => api(`/calibrations/${encodeURIComponent(recipe.calibration_id)}/predict`, {
      method: "POST",
      body: { blend, binder_pct: recipe.mix.binder_pct, solids_pct: recipe.mix.solids_pct, curing_days: days, allow_extrapolation: true },
    }));
    return { recipe, answers };
  } catch (err) {
    return { recipe: null, answers: [], error: err };
  }
}

function drawGroup(box, g, design) {
  const { answers } = design;
  // Out to four times the oldest requirement or test (28 to 90 days).
  const oldest = Math.max(1, ...g.requirements.map((r) => r.curing_days), ...g.judgements.map((j) => j.age_days));
  const xMax = Math.min(90, Math.max(28, 4 * oldest));
  const line = (key, inside) => answers.map((a, i) => [AGES[i], inside && a.extrapolated ? null : a[key]]);
  const svg = drawPlot(box, {
    x: { min: 1, max: xMax, log: true, ticks: AGE_TICKS },
    xLabel: "age, days (log scale)",
    yLabel: "UCS kPa",
    yFromZero: true,
    height: 300,
    bands: answers.length ? [{ points: answers.map((a, i) => [AGES[i], a.lower_ucs_kpa, a.ucs_kpa]) }] : [],
    series: answers.length ? [
      { points: line("ucs_kpa", false), color: 0, dash: true }, { points: line("ucs_kpa", true), color: 0 },
      { points: line("lower_ucs_kpa", false), color: 2, dash: true }, { points: line("lower_ucs_kpa", true), color: 2 },
    ] : [],
    // Each requirement: its strength from its age on (a cylinder tested then must reach it).
    segments: g.requirements.map((r) => ({ x1: r.curing_days, x2: xMax, y1: r.required_ucs_kpa, y2: r.required_ucs_kpa, cls: "requirement" })),
    vlines: g.requirements.map((r) => ({ x: r.curing_days, label: `${r.name} ${fmt(r.required_ucs_kpa, 0)} kPa`, cls: "requirement" })),
    markers: g.judgements.map((j) => ({
      x: Math.max(1, j.age_days),
      y: j.ucs_kpa,
      cls: j.passed ? "pass" : "fail",
      r: 5,
      title: `${j.sample_id}: ${fmt(j.ucs_kpa, 0)} kPa at ${fmt(j.age_days, 1)} d against ${j.requirement} ${fmt(j.required_ucs_kpa, 0)} kPa`,
      data: { sample: j.sample_id, passed: String(j.passed) },
    })),
    emptyText: design.error ? `no design lines: ${design.error.message}` : "no cylinder tested and no design to draw",
  });
  box.parentElement.setAttribute("data-judged", String(g.judgements.length));
  box.parentElement.setAttribute("data-design-points", String(answers.length));
  return svg;
}

function testsTable(tests) {
  if (!tests.length) return h("p", { class: "muted", text: "No strength test yet (the cylinders of a pour cast together, tested at a requirement's age)." });
  return table({ id: "strength-tests" }, [["Pour"], ["Cast"], ["Requirement"], ["Cylinders kPa"], ["Strength kPa", "num"], ["Required", "num"], ["Gross-low limit", "num"], ["Verdict"]],
    tests.map((t) => h("tr", { class: t.gross_low || t.below_requirement ? "warn" : "" },
      h("td", {}, h("a", { href: `#/pours/${encodeURIComponent(t.pour_id)}`, text: t.pour_id.slice(0, 8) })),
      h("td", { class: "time", text: fmtDate(t.cast_at) }),
      h("td", { text: `${t.requirement} at ${fmt(t.curing_days, 0)} d` }),
      h("td", { text: t.cylinders_kpa.map((v) => fmt(v, 0)).join(", ") }),
      h("td", { class: "num", text: fmt(t.strength_kpa, 0) }),
      h("td", { class: "num", text: fmt(t.required_ucs_kpa, 0) }),
      h("td", { class: "num", text: fmt(t.gross_low_limit_kpa, 0) }),
      h("td", { text: t.gross_low ? "grossly low" : t.below_requirement ? "below the requirement" : "reaches it" }))));
}

function averagesTable(averages) {
  if (!averages.length) return h("p", { class: "muted", text: "Not enough consecutive tests yet." });
  return table({ id: "running-averages" }, [["Requirement"], ["Tests"], ["Average kPa", "num"], ["Required", "num"], ["Verdict"]],
    averages.map((a) => h("tr", { class: a.passed ? "" : "warn" },
      h("td", { text: `${a.requirement} at ${fmt(a.curing_days, 0)} d` }),
      h("td", { text: a.tests.map((t) => fmtDate(t.cast_at)).join(", ") }),
      h("td", { class: "num", text: fmt(a.average_kpa, 0) }),
      h("td", { class: "num", text: fmt(a.required_ucs_kpa, 0) }),
      h("td", { text: a.passed ? "reaches it" : "below" }))));
}
