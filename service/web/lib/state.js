// What the page holds while it is open: the last plant status (polled with its ETag),
// who listens to it, and the current view's timers (stopped on every route change).

import { ApiError, api, session } from "./api.js";
import { $ } from "./dom.js";

const STATUS_POLL_MS = 1500;

export const app = {
  status: null, // the last /plant/status body
  statusAt: 0,
  etag: null,
  statusTimer: null,
  pollGeneration: 0,
  statusListeners: new Set(),
  viewTimers: [], // stopped on every route change
  viewToken: 0, // bumped on every route change: late answers of an old view are dropped
  route: () => {}, // the router (app.js): views call it to draw themselves again
};

// Draw the current view again (after an action changed what it shows).
export function rerender() {
  app.route();
}

// Whether answers for view `token` still belong on the page.
export const current = (token) => token === app.viewToken;

// Run `stop` when the view is left.
export function onLeave(stop) {
  app.viewTimers.push(stop);
}

export function every(ms, fn) {
  const timer = setInterval(fn, ms);
  onLeave(() => clearInterval(timer));
  return timer;
}

export function leaveView() {
  app.viewToken += 1;
  for (const stop of app.viewTimers) stop();
  app.viewTimers = [];
}

// Call `listener` with every new plant status while the view lasts (and now, with the
// last one).
export function onStatus(token, listener) {
  const call = (st) => {
    if (token === app.viewToken) listener(st);
  };
  app.statusListeners.add(call);
  onLeave(() => app.statusListeners.delete(call));
  if (app.status) call(app.status);
}

export function startStatusPolling() {
  stopStatusPolling();
  const generation = app.pollGeneration;
  const tick = async () => {
    if (generation !== app.pollGeneration) return;
    try {
      const response = await api("/plant/status", {
        raw: true,
        headers: app.etag ? { "If-None-Match": app.etag } : {},
      });
      if (generation !== app.pollGeneration) return;
      if (response.status === 200) {
        app.etag = response.headers.get("ETag");
        app.status = await response.json();
        app.statusAt = Date.now();
        renderHeaderState();
        for (const listener of app.statusListeners) listener(app.status);
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      const link = $("#link-state");
      link.textContent = "service unreachable";
      link.className = "alarm";
      link.title = err.message;
    }
    if (session.key && generation === app.pollGeneration) {
      app.statusTimer = setTimeout(tick, STATUS_POLL_MS);
    }
  };
  tick();
}

export function stopStatusPolling() {
  app.pollGeneration += 1; // an answer still in flight is dropped
  if (app.statusTimer) clearTimeout(app.statusTimer);
  app.statusTimer = null;
  app.etag = null;
}

export function refreshStatusNow() {
  app.etag = null;
  startStatusPolling();
}

function renderHeaderState() {
  const st = app.status;
  if (!st) return;
  // No PLC: the operator must never take the simulator for the plant.
  const simulated = $("#simulated");
  simulated.hidden = !st.simulator;
  simulated.title = st.notice || "";
  const link = $("#link-state");
  link.textContent = st.connected ? "connected" : "down";
  link.className = st.connected ? "ok" : "alarm";
  link.title = st.last_error || "";
  const mode = $("#plc-mode");
  mode.textContent = st.plc_mode || "unknown";
  mode.className = st.plc_mode === "fault" ? "alarm" : st.plc_mode === "running" ? "ok" : "";
  const remote = $("#remote-state");
  remote.textContent = st.remote_enabled === null ? "unknown" : st.remote_enabled ? "remote" : "local";
  remote.className = st.remote_enabled ? "ok" : "warn";
  const active = st.alarms.filter((a) => a.state.startsWith("active"));
  const unacked = st.alarms.filter((a) => !a.acknowledged);
  const count = $("#alarm-count");
  count.textContent = String(active.length);
  count.className = unacked.length ? "alarm" : active.length ? "warn" : "ok";
}

// Whether the paste goes to the dump now, by the diverter's proven position.
export function toDump(st = app.status) {
  const m = st && st.measurements && st.measurements.diverted_to_dump_pv;
  return Boolean(m && m.quality === "good" && m.value);
}
