// The design: requirements in, the optimiser's answer out (blend, dose, cost, saving,
// the binding limits, each requirement's pass probability, what the spread rests on,
// whether the plant can make it), then stored as a recipe version and approved.

import { ApiError, api } from "../lib/api.js";
import { $$, detailText, h, kv, put, showError, table } from "../lib/dom.js";
import { approverField, checkbox, field, formError, named, num, numberOf, onSubmit, select, text } from "../lib/forms.js";
import { fmt } from "../lib/format.js";
import { current } from "../lib/state.js";

const DESIGN_MAX_CHARS = 32000; // the stored design record's limit (32,768), with room

// The binding limits in words.
const LIMIT_TEXT = {
  required_ucs: "the strength requirements",
  solids_pct_min: "the lowest Cw asked",
  solids_pct_max: "the highest Cw asked",
  "plant:cw_min_pct": "the lowest Cw the plant holds",
  "plant:cw_max_pct": "the highest Cw the plant holds",
  binder_pct_min: "the site's lowest Bw",
  binder_pct_max: "the site's highest Bw",
  feed_reach_recipe_moisture: "the feed's reach at the tailings' moisture (no water to add)",
  feed_reach_plant_feed: "the feed's reach at the plant's wettest feed",
  max_yield_stress_pa: "the yield stress limit (pumpability)",
  max_pump_pressure_kpa: "the pump pressure limit",
};

export async function viewDesign(main, token) {
  put(main, h("h1", { text: "Design" }), h("p", { class: "muted", text: "loading…" }));
  let profile;
  let calibrations;
  try {
    [profile, calibrations] = await Promise.all([api("/plant/profile"), api("/calibrations")]);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const answerBox = h("div", { id: "design-answer" });
  const form = designForm(profile, calibrations);
  onSubmit(form, async () => {
    put(answerBox, h("p", { class: "muted", text: "designing…" }));
    const body = readDesign(form);
    try {
      const answer = await api("/recipes/optimize", { method: "POST", body });
      if (current(token)) showAnswer(answerBox, answer, body, profile);
    } catch (err) {
      answerBox.replaceChildren();
      if (err instanceof ApiError && err.code === "recipe_infeasible") {
        put(answerBox, infeasible(err));
        return;
      }
      throw err;
    }
  });
  put(main, 
    h("h1", { text: "Design" }),
    h("p", { class: "muted", text: "The cheapest binder blend and dose meeting every requirement for the pass fraction of cylinders, inside the Cw the plant holds and the feed can reach, from an approved calibration." }),
    h("div", { class: "row" },
      h("section", { class: "panel wide-panel" }, h("h2", { text: "Requirements and limits" }), form),
      h("section", { class: "panel" }, h("h2", { text: "What the plant can make" }), profileTable(profile))),
    answerBox);
}

// What the plant makes: its feed and Cw window as stated or seen, and which one the
// checks use now.
function profileTable(p) {
  const feed = p.feed || {};
  const used = feed.used === "settings" || feed.used === "simulator" ? feed.stated : feed.used ? feed.seen : null;
  const cw = p.cw_window || {};
  const window = cw.used === "settings" || cw.used === "simulator" ? cw.stated : cw.used ? cw.seen : null;
  return h("table", { class: "kv", id: "plant-profile" }, h("tbody", {},
    kv("Tailings Gs", p.tailings_sg === null ? "not stated" : fmt(p.tailings_sg, 2)),
    kv("Feed solids (wettest–driest)", used ? `${fmt(used.solids_low_pct, 1)}–${fmt(used.solids_high_pct, 1)} % (${feed.used})` : "not known: the checks use the tailings' moisture of each recipe"),
    kv("The wettest feed's moisture", used ? `${fmt(moistureOfSolids(used.solids_low_pct), 2)} % of dry tailings` : "—"),
    kv("Cw the plant holds", window ? `${fmt(window.low, 1)}–${fmt(window.high, 1)} % (${cw.used})` : "not known"),
    kv("Pump pressure limit", p.pump_pressure && p.pump_pressure.max_kpa ? `${fmt(p.pump_pressure.max_kpa, 0)} kPa` : "not stated")));
}

// The tailings moisture w0 (water / dry tailings, %) of a feed of `solidsPct` % solids
// by mass: w0 = 100 / Cw - 1 (the geotechnical water content; Belem & Benzaazoua 2008).
export function moistureOfSolids(solidsPct) {
  return 100 * (100 / solidsPct - 1);
}

// The driest paste a feed of moisture w0 makes at binder ratio Bw (fractions): its own
// water and no more, Cw = (1 + Bw) / (1 + Bw + w0) per unit of dry tailings (the mass
// balance of Belem & Benzaazoua 2008's definitions of Bw, Cw and w0).
export function driestSolidsPct(binderPct, moisturePct) {
  const bw = binderPct / 100;
  const w0 = moisturePct / 100;
  return (100 * (1 + bw)) / (1 + bw + w0);
}

function designForm(profile, calibrations) {
  const feed = profile.feed && (profile.feed.stated || profile.feed.seen);
  const cw = profile.cw_window && (profile.cw_window.stated || profile.cw_window.seen);
  const usable = calibrations.filter((c) => c.status === "approved");
  const preferred = usable.find((c) => !c.example) || usable[0];
  const reqRows = h("tbody", { id: "requirements" });
  const addReq = (r) => reqRows.append(requirementRow(r));
  addReq({ name: "plug", required_ucs_kpa: 150, curing_days: 7 });
  addReq({ name: "body", required_ucs_kpa: 400, curing_days: 28 });
  const binderRows = h("tbody", { id: "binders" });
  const addBinder = (b) => binderRows.append(binderRow(b));
  addBinder({ name: "cement", specific_gravity: 3.15, price_per_t: 185 });
  addBinder({ name: "slag", specific_gravity: 2.9, price_per_t: 120, max_fraction_pct: 80 });
  const form = h("form", { class: "form", id: "design-form" },
    h("h3", { text: "Requirements (each for the pass fraction of cylinders)" }),
    h("table", { class: "inputs" }, h("thead", {}, h("tr", {}, ["Name", "Given by", "UCS kPa / exposed face", "Age d", ""].map((t) => h("th", { text: t })))), reqRows),
    h("button", { type: "button", class: "quiet small", text: "+ requirement", onclick: () => addReq({ name: "", required_ucs_kpa: "", curing_days: 28 }) }),
    h("h3", { text: "Binders offered" }),
    h("table", { class: "inputs" }, h("thead", {}, h("tr", {}, ["Name", "Gs", "Price per t", "Min % of blend", "Max %", ""].map((t) => h("th", { text: t })))), binderRows),
    h("button", { type: "button", class: "quiet small", text: "+ binder", onclick: () => addBinder({ name: "", specific_gravity: "", price_per_t: "" }) }),
    h("h3", { text: "Tailings and limits" }),
    h("div", { class: "fields" },
      field("Tailings Gs", num("tailings_sg", profile.tailings_sg ?? 2.8, { required: true })),
      field("Tailings moisture % (w0)", num("moisture_pct", feed ? Number(moistureOfSolids(feed.solids_low_pct).toFixed(2)) : 31.58, { required: true }), "water / dry tailings; the plant's wettest feed by default"),
      field("Cw min %", num("solids_pct_min", cw ? cw.low : 70, { required: true })),
      field("Cw max %", num("solids_pct_max", cw ? cw.high : 80)),
      field("Bw min %", num("binder_pct_min", 2, { required: true })),
      field("Bw max %", num("binder_pct_max", 9, { required: true })),
      field("Pass fraction %", num("pass_fraction_pct", "", { placeholder: "the site's" })),
      field("Basis", select("design_basis", [["", "the site's"], ["tolerance", "tolerance (with confidence)"], ["expected", "expected (on average)"]], "")),
      field("Calibration", select("calibration_id", usable.map((c) => [c.id, `${c.name} v${c.version}${c.example ? " (EXAMPLE)" : ""}`]), preferred ? preferred.id : "")),
      field("Stope volume m3", num("stope_volume_m3", "", { placeholder: "for the cost per stope" })),
      field("Max yield stress Pa", num("max_yield_stress_pa", "", { placeholder: "optional" })),
      h("label", { class: "field inline" }, checkbox("allow_extrapolation", false), h("span", { text: "search beyond the tested combinations (flagged)" }))),
    h("button", { type: "submit", id: "design", text: "Design" }),
    formError());
  return form;
}

function requirementRow(r) {
  const mode = select("req_mode", [["given", "UCS given"], ["mitchell", "exposed face (Mitchell)"]], r.stope ? "mitchell" : "given");
  const given = h("span", { class: "req-given" }, num("req_ucs_kpa", r.required_ucs_kpa, { placeholder: "kPa" }));
  const stope = h("span", { class: "req-stope", hidden: true },
    num("fill_height_m", 30, { placeholder: "H m", title: "fill height m" }), " m high, ",
    num("exposed_length_m", 15, { placeholder: "L m", title: "exposed length m" }), " m exposed, ",
    num("unit_weight_kn_m3", 20, { placeholder: "kN/m3", title: "unit weight kN/m3" }), " kN/m3, FS ",
    num("safety_factor", 1.5, { title: "factor of safety" }));
  mode.addEventListener("change", () => {
    given.hidden = mode.value !== "given";
    stope.hidden = mode.value !== "mitchell";
  });
  const tr = h("tr", { class: "requirement" },
    h("td", {}, text("req_name", r.name, { required: true, size: 8 })),
    h("td", {}, mode),
    h("td", {}, given, stope),
    h("td", {}, num("req_curing_days", r.curing_days, { required: true })),
    h("td", {}, h("button", { type: "button", class: "quiet small", text: "×", "aria-label": "remove", onclick: () => tr.remove() })));
  return tr;
}

function binderRow(b) {
  const tr = h("tr", { class: "binder" },
    h("td", {}, text("binder_name", b.name, { required: true, size: 8 })),
    h("td", {}, num("binder_sg", b.specific_gravity, { required: true })),
    h("td", {}, num("binder_price", b.price_per_t, { required: true })),
    h("td", {}, num("binder_min", b.min_fraction_pct ?? "", { placeholder: "0" })),
    h("td", {}, num("binder_max", b.max_fraction_pct ?? "", { placeholder: "100" })),
    h("td", {}, h("button", { type: "button", class: "quiet small", text: "×", "aria-label": "remove", onclick: () => tr.remove() })));
  return tr;
}

function readDesign(form) {
  const body = {
    requirements: $$("tr.requirement", form).map((tr) => {
      const r = { name: named(tr, "req_name").value.trim(), curing_days: numberOf(named(tr, "req_curing_days")) };
      if (named(tr, "req_mode").value === "mitchell") {
        r.stope = {
          method: "mitchell",
          fill_height_m: numberOf(named(tr, "fill_height_m")),
          exposed_length_m: numberOf(named(tr, "exposed_length_m")),
          unit_weight_kn_m3: numberOf(named(tr, "unit_weight_kn_m3")),
          safety_factor: numberOf(named(tr, "safety_factor")),
        };
      } else {
        r.required_ucs_kpa = numberOf(named(tr, "req_ucs_kpa"));
      }
      return r;
    }),
    binders: $$("tr.binder", form).map((tr) => {
      const b = {
        name: named(tr, "binder_name").value.trim(),
        specific_gravity: numberOf(named(tr, "binder_sg")),
        price_per_t: numberOf(named(tr, "binder_price")),
      };
      const lo = numberOf(named(tr, "binder_min"));
      const hi = numberOf(named(tr, "binder_max"));
      if (lo !== null) b.min_fraction_pct = lo;
      if (hi !== null) b.max_fraction_pct = hi;
      return b;
    }),
    tailings: { specific_gravity: numberOf(named(form, "tailings_sg")), moisture_pct: numberOf(named(form, "moisture_pct")) },
    solids_pct_min: numberOf(named(form, "solids_pct_min")),
    binder_pct_min: numberOf(named(form, "binder_pct_min")),
    binder_pct_max: numberOf(named(form, "binder_pct_max")),
    allow_extrapolation: named(form, "allow_extrapolation").checked,
  };
  const optional = {
    solids_pct_max: numberOf(named(form, "solids_pct_max")),
    pass_fraction_pct: numberOf(named(form, "pass_fraction_pct")),
    stope_volume_m3: numberOf(named(form, "stope_volume_m3")),
    max_yield_stress_pa: numberOf(named(form, "max_yield_stress_pa")),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== null) body[k] = v;
  if (named(form, "design_basis").value) body.design_basis = named(form, "design_basis").value;
  if (named(form, "calibration_id").value) body.calibration_id = named(form, "calibration_id").value;
  return body;
}

function infeasible(err) {
  const b = err.body || {};
  return h("section", { class: "panel", id: "design-infeasible", "data-constraint": b.constraint || "" },
    h("h2", { text: "No recipe meets the requirements" }),
    h("p", { class: "warn", text: detailText(err.detail) }),
    b.constraint ? h("p", {}, "The limit that stops it: ", h("b", { text: LIMIT_TEXT[b.constraint] || b.constraint }),
      b.best_solids_pct !== undefined && b.best_solids_pct !== null ? `; the best the plant reaches is ${fmt(b.best_solids_pct, 2)} % Cw.` : ".") : null);
}

function showAnswer(box, a, request, profile) {
  const r = a.recipe;
  const blend = Object.entries(r.blend_pct).filter(([, v]) => v > 0);
  const binding = new Set(a.binding_constraints);
  const u = r.uncertainty;
  const feed = profile.feed && (profile.feed.stated || profile.feed.seen);
  const reach = [
    [`the tailings at ${fmt(request.tailings.moisture_pct, 2)} % moisture`, driestSolidsPct(r.binder_pct, request.tailings.moisture_pct)],
    feed ? [`the plant's wettest feed, ${fmt(feed.solids_low_pct, 1)} % solids (${profile.feed.used})`, driestSolidsPct(r.binder_pct, moistureOfSolids(feed.solids_low_pct))] : null,
  ].filter(Boolean);
  const cw = profile.cw_window && (profile.cw_window.stated || profile.cw_window.seen);
  put(box, 
    h("section", { class: "panel", id: "design-result", "data-binder-pct": r.binder_pct.toFixed(3), "data-solids-pct": r.solids_pct.toFixed(3) },
      h("h2", { text: "The design" }),
      h("p", { id: "design-statement", text: `${a.design_statement}.` }),
      a.calibration.example ? h("p", { class: "notice", text: "Designed on the EXAMPLE calibration: not for design." }) : null,
      h("div", { class: "row" },
        h("div", { class: "panel" }, h("h3", { text: "Recipe" }), h("table", { class: "kv", id: "design-recipe" }, h("tbody", {},
          kv("Blend", h("b", { id: "design-blend", text: blend.map(([n, v]) => `${n} ${fmt(v, 0)} %`).join(", ") })),
          kv("Bw (dose)", `${fmt(r.binder_pct, 2)} % of dry tailings = ${fmt(r.binder_kg_m3, 1)} kg/m3 (${Object.entries(r.binder_components_kg_m3).filter(([, v]) => v > 0).map(([n, v]) => `${n} ${fmt(v, 1)}`).join(", ")})`),
          kv("Cw", `${fmt(r.solids_pct, 2)} % of paste mass`),
          kv("Water / binder", fmt(r.water_binder_ratio, 2)),
          kv("Wet density", `${fmt(r.wet_density_kg_m3, 0)} kg/m3`),
          kv("Binding requirement", a.binding_requirement),
          kv("Calibration", `${a.calibration.name} v${a.calibration.version}`)))),
        h("div", { class: "panel" }, h("h3", { text: "Cost" }), h("table", { class: "kv", id: "design-cost" }, h("tbody", {},
          kv("Binder cost per m3", h("b", { id: "design-cost-m3", text: fmt(r.binder_cost_per_m3, 2) })),
          kv("Cement alone per m3", a.cement_only ? fmt(a.cement_only.binder_cost_per_m3, 2) : a.cement_only_note || "—"),
          kv("Saving per m3", h("b", { id: "design-saving", text: a.saving_per_m3 === null ? "—" : `${fmt(a.saving_per_m3, 2)} (${fmt(a.saving_pct, 1)} %)` })),
          r.binder_cost_for_stope !== null ? kv("Binder for the stope", fmt(r.binder_cost_for_stope, 0)) : null,
          a.saving_for_stope !== null ? kv("Saving for the stope", fmt(a.saving_for_stope, 0)) : null)))),
      h("h3", { text: "Each requirement" }),
      table({ id: "design-requirements" }, [["Requirement"], ["Required kPa", "num"], ["Age d", "num"], ["Median kPa", "num"], ["Lower bound kPa", "num"], ["Tolerance bound kPa", "num"], ["Cylinders passing", "num"], [""]],
        r.requirements.map((c) => h("tr", { "data-requirement": c.name, class: c.binding ? "current" : "" },
          h("td", { text: c.name }),
          h("td", { class: "num", text: fmt(c.required_ucs_kpa, 0) }),
          h("td", { class: "num", text: fmt(c.curing_days, 0) }),
          h("td", { class: "num", text: fmt(c.median_ucs_kpa, 0) }),
          h("td", { class: "num", text: fmt(c.lower_ucs_kpa, 0) }),
          h("td", { class: "num", text: fmt(c.tolerance_lower_ucs_kpa, 0) }),
          h("td", { class: "num", "data-col": "pass", text: `${fmt(c.pass_probability_pct, 1)} %` }),
          h("td", { text: [c.binding ? "binding" : "", c.extrapolated ? "extrapolated" : ""].filter(Boolean).join(", ") })))),
      h("h3", { text: "Binding limits" }),
      a.binding_constraints.length
        ? h("ul", { id: "design-binding" }, a.binding_constraints.map((c) => h("li", { "data-limit": c }, h("code", { text: c }), `: ${LIMIT_TEXT[c] || c}`)))
        : h("p", { class: "muted", id: "design-binding", text: "None: the requirements alone set the dose." }),
      h("div", { class: "row" },
        h("div", { class: "panel" }, h("h3", { text: "What the design's spread rests on" }), uncertaintyTable(u)),
        h("div", { class: "panel", id: "design-makeability" }, h("h3", { text: "Can the plant make it?" }),
          h("table", { class: "kv" }, h("tbody", {},
            ...reach.map(([what, most]) => kv(`From ${what}`, h("span", { class: r.solids_pct <= most + 1e-6 ? "" : "warn", text: `at most ${fmt(most, 2)} % Cw at this Bw: ${r.solids_pct <= most + 1e-6 ? "within reach" : "out of reach"}` }))),
            kv("Cw the plant holds", cw ? `${fmt(cw.low, 1)}–${fmt(cw.high, 1)} %: ${r.solids_pct >= cw.low - 1e-6 && r.solids_pct <= cw.high + 1e-6 ? "inside" : "outside"}` : "not known"),
            kv("Pumpability", `yield stress ${fmt(r.pumpability.yield_stress_pa, 0)} Pa, slump ${fmt(r.pumpability.slump_mm, 0)} mm${r.pumpability.pump_pressure_kpa !== null ? `, pump ${fmt(r.pumpability.pump_pressure_kpa, 0)} kPa` : ""}${r.pumpability.extrapolated ? " (outside the rheology tests)" : ""}`))),
          binding.has("feed_reach_plant_feed") || binding.has("plant:cw_max_pct") ? h("p", { class: "muted", text: "The plant's reach bound this design: a stronger mix needs more binder, not more solids." }) : null))),
    storeForm(a));
}

// Each contribution to the spread of ln UCS the pass fraction is designed on, and its
// share of the variance.
function uncertaintyTable(u) {
  if (!u) return h("p", { class: "muted", text: "Not stated." });
  const parts = [["the lab's scatter (the fit)", u.lab_sd_log], ["the plant's Cw spread", u.plant_solids_sd_log], ["the plant's Bw spread", u.plant_binder_sd_log]];
  const total = u.total_sd_log;
  return h("div", { id: "design-uncertainty" },
    table({}, [["Contribution"], ["sd on ln UCS", "num"], ["share of the variance", "num"]], [
      ...parts.map(([name, sd]) => h("tr", { "data-part": name },
        h("td", { text: name }), h("td", { class: "num", text: fmt(sd, 3) }),
        h("td", { class: "num" }, shareBar(total > 0 ? (sd * sd) / (total * total) : 0)))),
      h("tr", {}, h("th", { text: "total" }), h("td", { class: "num", text: fmt(total, 3) }), h("td", { class: "num", text: "100 %" })),
    ]),
    u.note ? h("p", { class: "muted", text: u.note }) : null);
}

function shareBar(share) {
  const pct = Math.max(0, Math.min(1, share)) * 100;
  const bar = h("meter", { min: 0, max: 100, value: pct.toFixed(1) });
  return [bar, ` ${fmt(pct, 0)} %`];
}

// Store the design as a recipe version, approved at once or left a draft; a recipe the
// plant cannot make needs the engineer's reason.
function storeForm(answer) {
  const approveNow = checkbox("approve_now", true);
  const approver = approverField();
  const reason = field("Why, though the plant cannot make it", text("unmakeable_reason", "", { maxlength: 500, class: "wide" }), "only when the service says the plant cannot make it");
  const done = h("p", { id: "stored-recipe", role: "status", hidden: true });
  const form = h("form", { class: "panel form no-print", id: "store-form" },
    h("h2", { text: "Store it as a recipe" }),
    h("div", { class: "fields" },
      field("Recipe name", text("name", "", { required: true, maxlength: 100 }), "the same name again stores the next version"),
      h("label", { class: "field inline" }, approveNow, h("span", { text: "approve it now" })),
      approver, reason),
    h("button", { type: "submit", id: "store-recipe", text: "Store" }),
    done,
    formError());
  approveNow.addEventListener("change", () => { approver.hidden = !approveNow.checked; });
  onSubmit(form, async () => {
    let design = answer;
    if (JSON.stringify(design).length > DESIGN_MAX_CHARS) {
      const c = answer.cement_only;
      design = { ...answer, cement_only: c ? { binder_cost_per_m3: c.binder_cost_per_m3, binder_pct: c.binder_pct, blend_pct: c.blend_pct } : null, search: undefined };
    }
    const body = { name: named(form, "name").value.trim(), mix: answer.recipe.mix, calibration_id: answer.calibration.id, design };
    if (approveNow.checked) body.approved_by = named(form, "approved_by").value.trim();
    const why = named(form, "unmakeable_reason").value.trim();
    if (why) body.unmakeable_reason = why;
    const made = await api("/recipes", { method: "POST", body });
    done.hidden = false;
    done.replaceChildren(`Stored ${made.name} v${made.version}${made.approved ? `, approved by ${made.approved_by}` : " as a draft"}: `,
      h("a", { href: `#/recipes/${encodeURIComponent(made.id)}`, id: "stored-link", text: "open the recipe" }), ".");
  });
  return form;
}
