// Form parts: labelled inputs, numbers read back as numbers, the service's 422 shown
// against the field it names, and the approving person.

import { ApiError, session } from "./api.js";
import { $, $$, detailText, h } from "./dom.js";

// A labelled control: <label><span>text</span>control<small>hint</small></label>.
export function field(label, control, hint) {
  if (control instanceof HTMLInputElement && control.type === "checkbox") {
    return h("label", { class: "field inline" }, control, h("span", { text: label }),
      hint ? h("small", { class: "muted", text: hint }) : null);
  }
  return h("label", { class: "field" }, h("span", { class: "field-label", text: label }), control,
    hint ? h("small", { class: "muted", text: hint }) : null);
}

export function num(name, value, attrs = {}) {
  return h("input", { type: "number", step: "any", name, value: value ?? "", ...attrs });
}

export function text(name, value, attrs = {}) {
  return h("input", { type: "text", name, value: value ?? "", spellcheck: "false", ...attrs });
}

export function select(name, options, value, attrs = {}) {
  const el = h("select", { name, ...attrs },
    options.map(([v, label]) => h("option", { value: v, text: label })));
  if (value !== undefined && value !== null) el.value = String(value);
  return el;
}

export function checkbox(name, checked, attrs = {}) {
  return h("input", { type: "checkbox", name, checked: Boolean(checked), ...attrs });
}

// A number input's value: a number, or null when empty.
export function numberOf(input) {
  if (!input || input.value.trim() === "") return null;
  const v = Number(input.value);
  return Number.isFinite(v) ? v : NaN;
}

export const named = (form, name) => form.querySelector(`[name="${name}"]`);

// The service's refusal of a form: the code and detail in the form's own error box, the
// field it names marked (`field` of a 422, or FastAPI's `loc`).
export function showFormError(form, err) {
  const box = $(".form-error", form);
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
  if (!box) return;
  box.hidden = false;
  box.replaceChildren();
  if (err instanceof ApiError) {
    box.append(h("code", { text: err.code }), `: ${detailText(err.detail)}`);
    const fields = [];
    if (err.field) fields.push(err.field);
    if (Array.isArray(err.detail)) for (const d of err.detail) if (d && d.loc) fields.push(d.loc.filter((p) => p !== "body").join("."));
    for (const f of fields) {
      const el = form.querySelector(`[name="${CSS.escape(f)}"]`) || form.querySelector(`[name="${CSS.escape(f.split(".").pop())}"]`);
      if (el) el.setAttribute("aria-invalid", "true");
    }
    if (err.field) box.setAttribute("data-field", err.field);
  } else {
    box.append(String(err && err.message ? err.message : err));
  }
}

export function clearFormError(form) {
  const box = $(".form-error", form);
  if (box) {
    box.hidden = true;
    box.removeAttribute("data-field");
  }
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

export const formError = () => h("p", { class: "form-error", role: "alert", hidden: true });

// The approving person: the signed-in person when the credential names one (fixed),
// else a name the engineer types (the service records it as `approved_by`).
export function approverField() {
  const input = text("approved_by", session.name || "", {
    required: true,
    maxlength: 100,
    readonly: Boolean(session.name),
    autocomplete: "name",
  });
  return field("Approved by", input, session.name ? "the signed-in person" : "your name, kept in the audit log");
}

// A submit handler that disables the form's buttons while the request runs and shows
// the service's refusal in the form.
export function onSubmit(form, work) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const buttons = $$("button", form);
    for (const b of buttons) b.disabled = true;
    form.classList.add("busy");
    clearFormError(form);
    try {
      await work(ev);
    } catch (err) {
      showFormError(form, err);
    } finally {
      for (const b of buttons) b.disabled = false;
      form.classList.remove("busy");
    }
  });
}
