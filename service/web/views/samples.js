// Samples: the cylinders cast from pours, and one sample's history: every laboratory
// entry, each correction beside the entry it corrects (nothing is overwritten).

import { api } from "../lib/api.js";
import { $, h, kv, put, showError, table } from "../lib/dom.js";
import { fmt, fmtDateTime } from "../lib/format.js";
import { may } from "../lib/roles.js";
import { current, rerender } from "../lib/state.js";
import { resultForm } from "./lab.js";

export async function viewSamples(main, token, params) {
  const pour = params.get("pour") || "";
  const filter = h("input", { type: "search", id: "sample-filter", placeholder: "sample or pour id", value: params.get("q") || "" });
  const box = h("div", { id: "sample-list", class: "muted", text: "loading…" });
  put(main, h("h1", { text: "Samples" }),
    h("div", { class: "toolbar" }, h("label", { for: "sample-filter", text: "Find" }), filter),
    h("section", { class: "panel" }, box));
  let items;
  try {
    const q = pour ? `?pour_id=${encodeURIComponent(pour)}&limit=500` : "?limit=500";
    items = (await api(`/samples${q}`)).items;
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const draw = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = needle ? items.filter((s) => s.id.toLowerCase().includes(needle) || s.pour_id.toLowerCase().includes(needle)) : items;
    box.className = "";
    put(box, shown.length ? table({ id: "samples-table" }, [["Sample"], ["Pour"], ["Cast"], ["Test ages d"], ["Entries", "num"], ["Latest UCS kPa", "num"]],
      shown.map((s) => {
        const tested = s.results.filter((r) => r.current && r.ucs_kpa !== null);
        const latest = tested[tested.length - 1];
        return h("tr", { "data-sample": s.id },
          h("td", {}, h("a", { href: `#/samples/${encodeURIComponent(s.id)}`, text: s.id })),
          h("td", {}, h("a", { href: `#/pours/${encodeURIComponent(s.pour_id)}`, text: s.pour_id.slice(0, 8) })),
          h("td", { class: "time", text: fmtDateTime(s.cast_at) }),
          h("td", { text: s.test_ages_days.map((d) => fmt(d, 0)).join(", ") }),
          h("td", { class: "num", text: String(s.results.length) }),
          h("td", { class: "num", text: latest ? `${fmt(latest.ucs_kpa, 0)} at ${fmt(latest.curing_days ?? latest.age_days, 0)} d` : "—" }));
      })) : h("p", { class: "muted", text: "No samples." }));
  };
  filter.addEventListener("input", draw);
  draw();
}

export async function viewSample(main, token, sampleId) {
  put(main, h("p", { class: "muted", text: "loading…" }));
  let sample;
  try {
    sample = await api(`/samples/${encodeURIComponent(sampleId)}`);
  } catch (err) {
    if (current(token)) showError(err);
    return;
  }
  if (!current(token)) return;
  const correction = h("div", { id: "correction-box" });
  const byId = new Map(sample.results.map((r) => [r.id, r]));
  const rows = sample.results.map((r) => h("tr", { "data-entry": r.id, "data-current": String(r.current), class: r.current ? "" : "superseded" },
    h("td", { class: "time", text: fmtDateTime(r.entered_at) }),
    h("td", { text: `${r.entered_by} · ${r.source}${r.sheet_id ? ` ${r.sheet_id.slice(0, 8)}` : ""}` }),
    h("td", { class: "num", text: r.curing_days !== null ? fmt(r.curing_days, 1) : "—" }),
    h("td", { class: "num", text: fmt(r.age_days, 2) }),
    h("td", { class: "num", text: fmt(r.ucs_kpa, 0) }),
    h("td", { class: "num", text: r.wet_mass_g !== null ? `${fmt(r.wet_mass_g, 1)} / ${fmt(r.dry_mass_g, 1)}` : "—" }),
    h("td", { class: "num", text: fmt(r.solids_pct, 2) }),
    h("td", { class: "num", text: fmt(r.bulk_density_kg_m3, 0) }),
    h("td", {},
      r.corrects ? h("div", { text: `corrects ${shortEntry(byId, r.corrects)}` }) : null,
      r.corrected_by ? h("div", { class: "warn", text: `corrected by ${shortEntry(byId, r.corrected_by)}` }) : null,
      r.current ? h("b", { text: "counts" }) : null),
    h("td", { class: "muted", text: r.note || "" }),
    h("td", {}, r.current && may.enterResults()
      ? h("button", { type: "button", class: "quiet small", "data-correct": r.id, text: "Correct", onclick: () => {
        put(correction, h("h3", { text: `Correct the entry of ${fmtDateTime(r.entered_at)}` }),
          resultForm({ entry: r, onDone: () => rerender() }));
        $("input[name=note]", correction).focus();
      } }) : null)));
  put(main, 
    h("div", { class: "toolbar" }, h("a", { href: "#/samples", text: "← Samples" })),
    h("h1", { text: `Sample ${sample.id}` }),
    h("div", { class: "row" },
      h("section", { class: "panel" }, h("table", { class: "kv" }, h("tbody", {},
        kv("Pour", h("a", { href: `#/pours/${encodeURIComponent(sample.pour_id)}`, text: sample.pour_id })),
        kv("Cast", `${fmtDateTime(sample.cast_at)} (wall time)`),
        kv("Placed when cast", sample.placed_m3 === null ? "—" : `${fmt(sample.placed_m3, 1)} m3`),
        kv("Test ages", `${sample.test_ages_days.map((d) => fmt(d, 0)).join(", ")} d`),
        kv("Recorded", `${fmtDateTime(sample.created_at)} by ${sample.created_by} (${sample.source})`))))),
    h("section", { class: "panel", id: "history" }, h("h2", { text: "Entries and corrections" }),
      sample.results.length ? table({ id: "entries" }, [["Entered"], ["By, source"], ["Nominal age d", "num"], ["Age at test d", "num"], ["UCS kPa", "num"],
        ["Wet / dry g", "num"], ["Cw %", "num"], ["Density kg/m3", "num"], ["Chain"], ["Note"], [""]], rows)
        : h("p", { class: "muted", text: "No entry yet." })),
    correction,
    may.enterResults() ? h("section", { class: "panel no-print" }, h("h2", { text: "A new result" }),
      resultForm({ sampleId: sample.id, onDone: () => rerender() })) : null);
}

function shortEntry(byId, id) {
  const r = byId.get(id);
  return r ? `the entry of ${fmtDateTime(r.entered_at)}` : id;
}
