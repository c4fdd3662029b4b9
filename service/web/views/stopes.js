// The stopes list, and a new stope (an engineer: its geometry and barricade).

import { api } from "../lib/api.js";
import { h, put, showError, table } from "../lib/dom.js";
import { field, formError, named, num, numberOf, onSubmit, select, text } from "../lib/forms.js";
import { fmt, fmtDateTime, fmtHold } from "../lib/format.js";
import { may } from "../lib/roles.js";
import { current, every } from "../lib/state.js";
import { STAGE_STATE_TEXT, barricadeLevel, currentStage } from "./stope_parts.js";

const STOPE_LIST_POLL_MS = 5000;

export function viewStopes(main, token) {
  const box = h("div", { id: "stope-list", class: "muted", text: "loading…" });
  put(main, 
    h("h1", { text: "Stopes" }),
    may.engineer() ? newStopeForm() : null,
    h("section", { class: "panel" }, box),
    h("p", { class: "muted", text: "Hold times are plant time (the simulator's clock where the plant is simulated)." }));
  const load = async () => {
    try {
      const stopes = await api("/stopes");
      if (!current(token)) return;
      renderStopeList(box, stopes);
    } catch (err) {
      if (current(token)) showError(err);
    }
  };
  load();
  every(STOPE_LIST_POLL_MS, load);
}

function renderStopeList(box, stopes) {
  box.className = "";
  if (!stopes.length) {
    put(box, h("p", { class: "muted", text: "No stopes." }));
    return;
  }
  const rows = stopes.map((st) => {
    const stage = currentStage(st);
    const pressures = Object.values(st.barricade_pressure_kpa || {}).filter((v) => v !== null);
    const pressure = pressures.length ? Math.max(...pressures) : null;
    return h("tr", { "data-stope": st.id },
      h("td", {}, h("a", { href: `#/stopes/${encodeURIComponent(st.id)}`, text: st.name })),
      h("td", {}, h("span", { class: `badge ${st.state}`, text: st.state })),
      h("td", { class: "num", "data-col": "fill" }, `${fmt(st.fill_height_m, 2)} / ${fmt(st.height_m, 2)}`),
      h("td", { "data-col": "stage" }, stage
        ? [h("b", { text: stage.name }), ` ${STAGE_STATE_TEXT[stage.state] || stage.state}`]
        : h("span", { class: "muted", text: "no plan" })),
      h("td", { class: "num", "data-col": "hold" }, st.hold_remaining_s === null
        ? "" : st.hold_remaining_s > 0 ? fmtHold(st.hold_remaining_s) : h("b", { text: "elapsed" })),
      h("td", { class: "num" }, pressure === null ? "—"
        : h("span", { class: `level ${barricadeLevel(pressure, st)}`, text: `${fmt(pressure, 0)} / ${fmt(st.barricade_rating_kpa, 0)}` })),
      h("td", { class: "num", text: `${fmt(st.placed_m3, 1)} / ${fmt(st.volume_m3, 1)}` }),
      h("td", { text: st.plan_version === null ? "—" : `v${st.plan_version} ${st.continuous ? "continuous" : "staged"}` }),
      h("td", { text: fmtDateTime(st.created_at) }));
  });
  put(box, table({ id: "stopes" }, [
    ["Stope"], ["State"], ["Fill height / stope m", "num"], ["Current stage"], ["Hold left (plant time)", "num"],
    ["Barricade / rating kPa", "num"], ["Placed / stope m3", "num"], ["Plan"], ["Created"],
  ], rows));
}

// A stope: its name, height, plan area (or length and width, or volume) and the
// barricade's rating. Its plan is made on the stope's page.
function newStopeForm() {
  const geometry = select("geometry", [["plan_area_m2", "plan area"], ["length_m", "length × width"], ["volume_m3", "volume"]], "plan_area_m2");
  const area = field("Plan area m2", num("plan_area_m2", ""));
  const dims = h("span", { class: "fields", hidden: true },
    field("Length m", num("length_m", "")), field("Width m", num("width_m", "")));
  const volume = field("Volume m3", num("volume_m3", ""));
  volume.hidden = true;
  geometry.addEventListener("change", () => {
    area.hidden = geometry.value !== "plan_area_m2";
    dims.hidden = geometry.value !== "length_m";
    volume.hidden = geometry.value !== "volume_m3";
  });
  const form = h("form", { class: "form", id: "new-stope" },
    h("div", { class: "fields" },
      field("Name", text("name", "", { required: true, maxlength: 100 })),
      field("Height m", num("height_m", "", { required: true })),
      field("Geometry from", geometry), area, dims, volume,
      field("Barricade rating kPa", num("barricade_rating_kpa", "", { required: true })),
      field("High alarm % of rating", num("barricade_high_alarm_pct", 80))),
    h("button", { type: "submit", text: "Create the stope" }),
    formError());
  onSubmit(form, async () => {
    const body = {
      name: named(form, "name").value.trim(),
      height_m: numberOf(named(form, "height_m")),
      barricade_rating_kpa: numberOf(named(form, "barricade_rating_kpa")),
      barricade_high_alarm_pct: numberOf(named(form, "barricade_high_alarm_pct")) ?? 80,
    };
    if (geometry.value === "length_m") {
      body.length_m = numberOf(named(form, "length_m"));
      body.width_m = numberOf(named(form, "width_m"));
    } else {
      body[geometry.value] = numberOf(named(form, geometry.value));
    }
    const made = await api("/stopes", { method: "POST", body });
    location.hash = `#/stopes/${encodeURIComponent(made.id)}/plan`;
  });
  return h("details", { class: "panel no-print", id: "new-stope-panel" },
    h("summary", { text: "New stope" }), form);
}
