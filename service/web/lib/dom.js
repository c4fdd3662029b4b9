// DOM helpers: elements from tags and attributes (no inline styles: the page's
// Content-Security-Policy allows none), the error banner, key-value rows.

import { ApiError, api } from "./api.js";

const SVG_NS = "http://www.w3.org/2000/svg";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") el.textContent = String(value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in el && !(el instanceof SVGElement)) el.value = String(value);
    else if (name === "checked" && el instanceof HTMLInputElement) el.checked = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replace an element's children (null, false and undefined left out, as h() does).
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// The error banner at the top: the service's code and detail.
export function showError(err) {
  const banner = $("#error");
  const text = $("#error-text");
  text.replaceChildren();
  if (err instanceof ApiError) {
    text.append(h("code", { text: err.code }), ` (${err.status || "no answer"}): ${detailText(err.detail)}`);
  } else {
    text.append(String(err && err.message ? err.message : err));
  }
  banner.hidden = false;
}

export function clearError() {
  $("#error").hidden = true;
}

// FastAPI's validation detail is a list; the service's own is text.
export function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : String(d))).join("; ");
  return JSON.stringify(detail);
}

export function kv(label, value, attrs = {}) {
  return h("tr", attrs, h("th", { text: label }), h("td", {}, value));
}

// A table from a header list ([text, class]) and rows of cells.
export function table(attrs, head, rows) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, head.map(([t, c]) => h("th", { class: c, text: t })))),
    h("tbody", {}, rows));
}

// A report's CSV, fetched with the key (a plain link would carry none) and saved.
export async function downloadCsv(path, filename) {
  try {
    const response = await api(path, { raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    showError(err);
  }
}
