// The page: plain JavaScript as native ES modules, a module per view (views/), the
// shared parts in lib/; no framework, no build step, nothing from the internet. It talks
// only to this service's /api/v1 with the key the user typed in, and offers the views
// the key's role may use.

import { ApiError, api, forgetKey, keepKey, onUnauthorized, session, takeWhoami } from "./lib/api.js";
import { $, clearError, h } from "./lib/dom.js";
import { fmtDateTime, pad } from "./lib/format.js";
import { ROLE_NAMES, SECTIONS, homeOf, sectionsOf } from "./lib/roles.js";
import { app, leaveView, startStatusPolling, stopStatusPolling } from "./lib/state.js";
import { viewCalibration, viewCalibrations } from "./views/calibrations.js";
import { viewStopeCompliance } from "./views/compliance.js";
import { viewDesign } from "./views/design.js";
import { viewLab } from "./views/lab.js";
import { viewPlan } from "./views/plan.js";
import { viewPlant } from "./views/plant.js";
import { viewPourReport, viewPours } from "./views/pours.js";
import { viewReconciliation, viewReconciliations } from "./views/reconciliations.js";
import { viewRecipe, viewRecipes } from "./views/recipes.js";
import { viewSample, viewSamples } from "./views/samples.js";
import { viewStope } from "./views/stope.js";
import { viewStopes } from "./views/stopes.js";

// Each section's views: the list, or one item (and an item's sub-view).
const VIEWS = {
  plant: (main, token) => viewPlant(main, token),
  pours: (main, token, [id], params) => (id ? viewPourReport(main, token, id) : viewPours(main, token, params)),
  recipes: (main, token, [id]) => (id ? viewRecipe(main, token, id) : viewRecipes(main, token)),
  stopes: (main, token, [id, sub]) => {
    if (!id) return viewStopes(main, token);
    if (sub === "plan") return viewPlan(main, token, id);
    if (sub === "compliance") return viewStopeCompliance(main, token, id);
    return viewStope(main, token, id);
  },
  lab: (main, token) => viewLab(main, token),
  samples: (main, token, [id], params) => (id ? viewSample(main, token, id) : viewSamples(main, token, params)),
  calibrations: (main, token, [id]) => (id ? viewCalibration(main, token, id) : viewCalibrations(main, token)),
  design: (main, token) => viewDesign(main, token),
  reconciliations: (main, token, [id]) => (id ? viewReconciliation(main, token, id) : viewReconciliations(main, token)),
};

// Views a role reaches by a link though its navigation leaves them out (an operator's
// stope view links to its compliance; a pour report to its samples).
const ALSO_READS = { samples: true, calibrations: true, recipes: true };

function viewLogin(main, message) {
  const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { id: "login-error", class: "error-text", text: message || "", hidden: !message });
  const form = h("form", { id: "login-form", class: "panel login" },
    h("h1", { text: "Sign in" }),
    h("label", { for: "key", text: "API key" }),
    input,
    h("button", { type: "submit", text: "Sign in" }),
    h("p", { class: "muted", text: "The key is kept only in this browser tab's session and sent to this service alone." }),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    session.key = input.value.trim();
    try {
      const me = await api("/whoami");
      keepKey(session.key);
      takeWhoami(me);
      startSession();
    } catch (err) {
      forgetKey();
      error.textContent = err instanceof ApiError ? `${err.code}: ${err.detail}` : String(err);
      error.hidden = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

function logout(message) {
  forgetKey();
  stopStatusPolling();
  app.status = null;
  leaveView();
  for (const id of ["nav", "plant-state", "session"]) $(`#${id}`).hidden = true;
  clearError();
  viewLogin($("#main"), message);
}

// The navigation of the role, the person and role in the header, the home view.
function startSession() {
  const role = $("#role");
  role.textContent = ROLE_NAMES[session.role] || session.role;
  role.setAttribute("data-role", session.role);
  const person = $("#person");
  person.hidden = !session.name;
  $("#person-name").textContent = session.name || "";
  $("#nav").replaceChildren(...sectionsOf(session.role).map((section) =>
    h("a", { href: `#/${section}`, "data-nav": section, text: SECTIONS[section] })));
  for (const id of ["nav", "plant-state", "session"]) $(`#${id}`).hidden = false;
  startStatusPolling();
  if (!location.hash || location.hash === "#" || location.hash === "#/login") location.hash = `#/${homeOf(session.role)}`;
  else route();
}

function route() {
  if (!session.key || !session.role) return;
  leaveView();
  const token = app.viewToken;
  const main = $("#main");
  const [path, query] = (location.hash.replace(/^#/, "") || `/${homeOf(session.role)}`).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const offered = sectionsOf(session.role);
  const section = parts[0] || homeOf(session.role);
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.getAttribute("data-nav") === section);
  }
  const view = VIEWS[section];
  if (!view) {
    location.hash = `#/${homeOf(session.role)}`;
    return;
  }
  if (!offered.includes(section) && !(ALSO_READS[section] && parts[1])) {
    main.replaceChildren(h("section", { class: "panel", id: "not-offered" },
      h("h1", { text: SECTIONS[section] || section }),
      h("p", { text: `This view is not offered to the ${session.role} role.` }),
      h("a", { href: `#/${homeOf(session.role)}`, text: `Go to ${SECTIONS[homeOf(session.role)]}` })));
    return;
  }
  view(main, token, parts.slice(1), params);
}

function tickClock() {
  const d = new Date();
  const off = d.getTimezoneOffset();
  $("#clock").textContent = `${fmtDateTime(d.toISOString())} (UTC${off <= 0 ? "+" : "-"}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}), this screen's wall clock`;
}

async function boot() {
  app.route = route;
  onUnauthorized((message) => logout(message));
  $("#logout").addEventListener("click", () => logout());
  $("#error-close").addEventListener("click", clearError);
  window.addEventListener("hashchange", route);
  tickClock();
  setInterval(tickClock, 1000);
  if (!session.key) {
    viewLogin($("#main"));
    return;
  }
  try {
    takeWhoami(await api("/whoami"));
    startSession();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      viewLogin($("#main"), `${err.code}: ${err.detail}`);
    }
  }
}

boot();
