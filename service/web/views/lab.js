// The lab's page: the cylinders due today and overdue, a result form, the lab sheet
// upload (a sheet with a bad row imports nothing: every bad row is shown against its line
// and column), and the open notices.

import { ApiError, api, listAll } from "../lib/api.js";
import { $, detailText, h, put, showError, table } from "../lib/dom.js";
import { field, formError, named, num, numberOf, onSubmit, text } from "../lib/forms.js";
import { fmt, fmtDate, fmtDateTime } from "../lib/format.js";
import { may } from "../lib/roles.js";
import { current } from "../lib/state.js";
import { noticeList } from "./pours.js";

const DAY_MS = 86400000;

// A result matches a test age d when its nominal age (curing_days, else its age at test)
// is within max(0.5 d, 10 % of d): the service's compliance rule.
export function matchesAge(result, age) {
  const nominal = result.curing_days ?? result.age_days;
  return Math.abs(nominal - age) <= Math.max(0.5, 0.1 * age);
}

// Every scheduled test of every sample with no current UCS result at its age, with when
// it falls due; `nowMs` is the service's clock (the notices' evaluation time).
export function dueTests(samples, nowMs) {
  const out = [];
  for (const sample of samples) {
    const tested = sample.results.filter((r) => r.current && r.ucs_kpa !== null);
    for (const age of sample.test_ages_days) {
      if (tested.some((r) => matchesAge(r, age))) continue;
      const dueMs = Date.parse(sample.cast_at) + age * DAY_MS;
      out.push({ sample, age, dueMs, lateDays: (nowMs - dueMs) / DAY_MS });
    }
  }
  return out.sort((a, b) => a.dueMs - b.dueMs);
}

function dayStart(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export async function viewLab(main, token) {
  const dueBox = h("div", { id: "due-box", class: "row" }, h("p", { class: "muted", text: "loading…" }));
  const noticeBox = h("div", { id: "notice-box" });
  const asOf = h("p", { class: "muted", id: "lab-as-of" });
  let samples = [];
  const form = may.enterResults() ? resultForm({ onDone: () => load() }) : null;
  const load = async () => {
    let notices;
    try {
      [samples, notices] = await Promise.all([listAll("/samples"), api("/lab/notices")]);
    } catch (err) {
      if (current(token)) showError(err);
      return;
    }
    if (!current(token)) return;
    if (form) fillSampleList(form, samples);
    renderDue(dueBox, samples, notices, form);
    asOf.textContent = `${samples.length} sample(s) · as of ${fmtDateTime(notices.evaluated_at)} (the service's clock; cylinders cure in wall time)`;
    noticeBox.replaceChildren(noticeList(notices.items, "lab-notice-list"));
  };
  put(main, 
    h("h1", { text: "Lab" }),
    asOf,
    dueBox,
    form ? h("section", { class: "panel no-print", id: "result-panel" }, h("h2", { text: "Enter a result" }), form) : null,
    may.enterResults() ? sheetPanel(() => load()) : null,
    h("section", { class: "panel" }, h("h2", { text: "Open notices" }), noticeBox));
  await load();
}

// The tests overdue and due today; `nowMs` is the service's clock (the notices' time).
function renderDue(box, samples, notices, form) {
  const nowMs = Date.parse(notices.evaluated_at);
  const today = dayStart(nowMs);
  const pending = dueTests(samples, nowMs);
  const overdue = pending.filter((t) => t.dueMs < today);
  const dueToday = pending.filter((t) => t.dueMs >= today && t.dueMs < today + DAY_MS);
  const flagged = new Set(notices.items.filter((n) => n.kind === "overdue").map((n) => `${n.sample_id}@${Date.parse(n.due_at)}`));
  const pick = (t) => {
    named(form, "sample_id").value = t.sample.id;
    named(form, "curing_days").value = String(t.age);
    named(form, "ucs_kpa").focus();
    form.scrollIntoView({ block: "center" });
  };
  const dueTable = (tests, id, empty) => tests.length
    ? table({ id, class: "due" }, [["Sample"], ["Pour"], ["Test at", "num"], ["Due (cast + age)"], ["Late", "num"], ["Notice"], [""]],
      tests.map((t) => {
        const notice = flagged.has(`${t.sample.id}@${t.dueMs}`);
        return h("tr", { "data-sample": t.sample.id, "data-age": t.age },
          h("td", {}, h("a", { href: `#/samples/${encodeURIComponent(t.sample.id)}`, text: t.sample.id })),
          h("td", {}, h("a", { href: `#/pours/${encodeURIComponent(t.sample.pour_id)}`, text: t.sample.pour_id.slice(0, 8) })),
          h("td", { class: "num", text: `${fmt(t.age, t.age < 1 ? 1 : 0)} d` }),
          h("td", { class: "time", text: fmtDateTime(t.dueMs) }),
          h("td", { class: "num", text: t.lateDays > 0 ? `${fmt(t.lateDays, 1)} d` : "—" }),
          h("td", { class: notice ? "warn" : "muted", text: notice ? "overdue notice" : "" }),
          h("td", {}, form ? h("button", { type: "button", class: "quiet small", "data-enter": t.sample.id, text: "Enter result", onclick: () => pick(t) }) : null));
      }))
    : h("p", { class: "muted", id: `${id}-none`, text: empty });
  put(box, 
    h("section", { class: "panel", id: "overdue" }, h("h2", {}, "Overdue ", h("span", { class: "badge stopped", id: "overdue-count", text: String(overdue.length) })),
      h("p", { class: "muted", text: "Fell due before today and no result yet. The service raises its overdue notice two days after a test falls due." }),
      dueTable(overdue, "overdue-tests", "Nothing overdue.")),
    h("section", { class: "panel", id: "due-today" }, h("h2", {}, `Due today, ${fmtDate(nowMs)} `, h("span", { class: "badge planned", id: "due-count", text: String(dueToday.length) })),
      dueTable(dueToday, "due-tests", "Nothing falls due today.")));
}

function fillSampleList(form, samples) {
  const list = $("datalist", form);
  if (list) list.replaceChildren(...samples.map((s) => h("option", { value: s.id })));
}

// One laboratory result of a sample (or a correction of an entry: `corrects`).
export function resultForm({ sampleId = "", entry = null, onDone }) {
  const list = h("datalist", { id: "sample-ids" });
  const src = entry || {};
  const form = h("form", { class: "form", id: entry ? "correction-form" : "result-form" },
    list,
    h("div", { class: "fields" },
      field("Sample", text("sample_id", sampleId || src.sample_id || "", { required: true, list: "sample-ids", readonly: Boolean(entry) })),
      field("Nominal age d", num("curing_days", src.curing_days ?? ""), "the age it was to be tested at"),
      field("Tested at", h("input", { type: "datetime-local", name: "tested_at", step: 1, value: src.tested_at ? localInput(src.tested_at) : "" }), "this screen's time zone"),
      field("UCS kPa", num("ucs_kpa", src.ucs_kpa ?? "")),
      field("Wet mass g", num("wet_mass_g", src.wet_mass_g ?? "")),
      field("Dry mass g", num("dry_mass_g", src.dry_mass_g ?? ""), "oven-dry: the sample's Cw"),
      field("Volume cm3", num("volume_cm3", src.volume_cm3 ?? "")),
      field("Bulk density kg/m3", num("bulk_density_kg_m3", src.bulk_density_kg_m3 ?? "")),
      field("Note", text("note", entry ? "" : src.note || "", { maxlength: 500, class: "wide", required: Boolean(entry), placeholder: entry ? "what was wrong" : "" }))),
    entry ? h("p", { class: "muted", text: `Corrects entry ${entry.id}: nothing is overwritten; the new entry counts from now on.` }) : null,
    h("button", { type: "submit", text: entry ? "Enter the correction" : "Enter the result" }),
    h("p", { class: "form-done", role: "status", hidden: true }),
    formError());
  onSubmit(form, async () => {
    const body = {};
    for (const name of ["curing_days", "ucs_kpa", "wet_mass_g", "dry_mass_g", "volume_cm3", "bulk_density_kg_m3"]) {
      const v = numberOf(named(form, name));
      if (v !== null) body[name] = v;
    }
    const tested = named(form, "tested_at").value;
    if (tested) body.tested_at = new Date(tested).toISOString();
    const note = named(form, "note").value.trim();
    if (note) body.note = note;
    if (entry) body.corrects = entry.id;
    const id = named(form, "sample_id").value.trim();
    const made = await api(`/samples/${encodeURIComponent(id)}/results`, { method: "POST", body });
    const done = $(".form-done", form);
    done.hidden = false;
    done.textContent = `Entered ${made.id} for ${made.sample_id} at ${fmtDateTime(made.entered_at)} by ${made.entered_by}.`;
    if (onDone) onDone(made);
  });
  return form;
}

function localInput(iso) {
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// The lab sheet: a CSV file (or pasted text), imported whole or not at all.
function sheetPanel(onImported) {
  const area = h("textarea", { name: "csv", rows: 8, spellcheck: "false", class: "csv", placeholder: "sample_id,cast_at,curing_days,ucs_kpa,wet_mass_g,dry_mass_g,bulk_density_kg_m3" });
  const file = h("input", { type: "file", name: "file", accept: ".csv,text/csv,text/plain" });
  file.addEventListener("change", async () => {
    if (file.files && file.files[0]) area.value = await file.files[0].text();
  });
  const zone = text("timezone", Intl.DateTimeFormat().resolvedOptions().timeZone || "", { maxlength: 64 });
  const outcome = h("div", { id: "sheet-result" });
  const form = h("form", { class: "form", id: "sheet-form" },
    h("div", { class: "fields" },
      field("Lab sheet (CSV)", file, "or paste it below"),
      field("Time zone of times without an offset", zone, "IANA name, e.g. Asia/Almaty")),
    area,
    h("button", { type: "submit", id: "import-sheet", text: "Import the sheet" }),
    formError());
  onSubmit(form, async () => {
    const csv = area.value;
    const body = { csv };
    if (zone.value.trim()) body.timezone = zone.value.trim();
    try {
      const done = await api("/lab/sheets", { method: "POST", body });
      showImported(outcome, done);
      onImported();
    } catch (err) {
      if (err instanceof ApiError && err.body && Array.isArray(err.body.errors)) {
        showRefused(outcome, err, csv);
        return;
      }
      throw err;
    }
  });
  return h("section", { class: "panel no-print", id: "sheet-panel" },
    h("h2", { text: "Import a lab sheet" }),
    h("p", { class: "muted", text: "Columns in any order: sample_id, cast_at, tested_at and/or curing_days, ucs_kpa, wet_mass_g with dry_mass_g, volume_cm3 or bulk_density_kg_m3; optionally pour_id, corrects, note. Lines starting with # are comments. A sheet with any bad row imports nothing." }),
    form, outcome);
}

function showImported(box, done) {
  box.setAttribute("data-imported", String(done.imported));
  box.className = "sheet-ok";
  put(box, 
    h("p", {}, h("b", { text: `Imported ${done.imported} result(s)` }), ` as sheet ${done.sheet_id}.`),
    done.ignored_columns.length ? h("p", { class: "warn", text: `Columns not read: ${done.ignored_columns.join(", ")}` }) : null,
    table({ id: "sheet-imported" }, [["Sample"], ["Age d", "num"], ["UCS kPa", "num"], ["Cw %", "num"], ["Entry"]],
      done.results.map((r) => h("tr", { "data-sample": r.sample_id },
        h("td", {}, h("a", { href: `#/samples/${encodeURIComponent(r.sample_id)}`, text: r.sample_id })),
        h("td", { class: "num", text: fmt(r.curing_days ?? r.age_days, 1) }),
        h("td", { class: "num", text: fmt(r.ucs_kpa, 0) }),
        h("td", { class: "num", text: fmt(r.solids_pct, 2) }),
        h("td", { class: "muted", text: r.id }))))
  );
}

// A refused sheet: nothing imported, every bad row against its line and column, and the
// sheet itself with those lines and cells marked.
function showRefused(box, err, csv) {
  const errors = err.body.errors;
  const omitted = err.body.errors_omitted || 0;
  const rows = new Set(errors.map((e) => e.row));
  box.setAttribute("data-imported", "0");
  box.className = "sheet-refused";
  put(box, 
    h("p", { class: "refused" }, h("b", { text: "Nothing was imported." }),
      ` The sheet has ${errors.length + omitted} error(s) in ${rows.size}${omitted ? "+" : ""} row(s), and a sheet with a bad row imports nothing: correct the rows below and import it again.`),
    h("p", { class: "muted", text: detailText(err.detail) }),
    table({ id: "sheet-errors" }, [["Line", "num"], ["Column"], ["What is wrong"]],
      errors.map((e) => h("tr", { "data-row": e.row, "data-field": e.field },
        h("td", { class: "num", text: String(e.row) }), h("td", {}, h("code", { text: e.field })), h("td", { text: e.message })))),
    omitted ? h("p", { class: "warn", text: `${omitted} more error(s) not listed.` }) : null,
    sheetLines(csv, errors));
}

// The sheet's lines, numbered as the service counts them (the line of the file), a bad
// line marked and its bad cell outlined.
function sheetLines(csv, errors) {
  const lines = csv.split(/\r\n|\n|\r/);
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop(); // the file's last newline
  const header = lines.find((l) => l.trim() && !l.trimStart().startsWith("#"));
  const columns = header ? splitCsvLine(header).map((c) => c.trim().toLowerCase()) : [];
  const bad = new Map();
  for (const e of errors) {
    if (!bad.has(e.row)) bad.set(e.row, new Set());
    bad.get(e.row).add(e.field);
  }
  const shown = lines.length > 400 ? [...bad.keys()].sort((a, b) => a - b).map((n) => [n, lines[n - 1] ?? ""]) : lines.map((l, i) => [i + 1, l]);
  return h("div", { id: "sheet-lines", class: "sheet-lines" },
    h("table", {}, h("tbody", {}, shown.map(([n, line]) => {
      const fields = bad.get(n);
      const cells = splitCsvLine(line);
      return h("tr", { class: `line${fields ? " bad" : ""}`, "data-line": n },
        h("td", { class: "num line-no", text: String(n) }),
        h("td", { class: "cells" }, cells.map((cell, i) => [
          i ? h("span", { class: "sep", text: "," }) : null,
          h("span", { class: fields && fields.has(columns[i]) ? "cell bad" : "cell", "data-column": columns[i] || "", text: cell }),
        ])));
    }))));
}

// A CSV line's cells, quotes kept out (enough to point at a cell, not to import).
function splitCsvLine(line) {
  const out = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      out.push(cell);
      cell = "";
    } else cell += ch;
  }
  out.push(cell);
  return out;
}
