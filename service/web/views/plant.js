// The plant view: the running pour (placed and dumped volume, the pause that stopped it),
// the alarms, and the live trends.

import { api, session } from "../lib/api.js";
import { $, clearError, h, put, showError, table } from "../lib/dom.js";
import { fmt, fmtDateTime, fmtDuration } from "../lib/format.js";
import { may } from "../lib/roles.js";
import { onStatus, refreshStatusNow, rerender, toDump } from "../lib/state.js";
import { startTrends, trendGrid, windowSelect } from "../lib/trends.js";

// Spec bands of the pour (the supervisor's alarm bands): Cw +-1 percentage point,
// Bw +-5 % of its target.
export const SOLIDS_BAND_POINTS = 1.0;
export const BINDER_BAND_RELATIVE = 0.05;

// The pauses the pour machine makes for the paste: active until an operator resumes.
export const PAUSE_ALARMS = {
  dump_limit_pause: "too much paste went to the dump",
  recipe_unreachable_pause: "the feed cannot reach the recipe",
};

const PLANT_TRENDS = [
  {
    id: "density", title: "Paste density", unit: "kg/m3", digits: 0,
    series: [
      { tag: "paste_density_pv", label: "density", live: "m", color: 0 },
      { tag: "paste_density_sp", label: "target", live: "sp", color: 1, dash: true },
    ],
  },
  {
    id: "cw", title: "Cw: solids", unit: "% of paste mass", digits: 2,
    band: { tag: "solids_pct_target", abs: SOLIDS_BAND_POINTS, label: "spec ±1 point" },
    series: [
      { tag: "solids_pct", label: "Cw measured", color: 0 },
      { tag: "solids_pct_target", label: "Cw target", color: 1, dash: true },
    ],
  },
  {
    id: "bw", title: "Bw: binder", unit: "% of dry tailings", digits: 2,
    band: { tag: "binder_pct_target", rel: BINDER_BAND_RELATIVE, label: "spec ±5 %" },
    series: [
      { tag: "binder_pct", label: "Bw measured", color: 0 },
      { tag: "binder_pct_target", label: "Bw target", color: 1, dash: true },
    ],
  },
  {
    id: "binder", title: "Binder feed rates", unit: "t/h", digits: 2,
    series: [
      { tag: "cement_rate_pv", label: "cement", live: "m", color: 0 },
      { tag: "cement_rate_sp", label: "cement SP", live: "sp", color: 0, dash: true },
      { tag: "slag_rate_pv", label: "slag", live: "m", color: 2 },
      { tag: "slag_rate_sp", label: "slag SP", live: "sp", color: 2, dash: true },
      { tag: "flyash_rate_pv", label: "fly ash", live: "m", color: 3, optional: true },
      { tag: "flyash_rate_sp", label: "fly ash SP", live: "sp", color: 3, dash: true, optional: true },
    ],
  },
  {
    id: "flows", title: "Feed and water flows", unit: "m3/h", digits: 1,
    series: [
      { tag: "tailings_flow_pv", label: "tailings feed", live: "m", color: 4 },
      { tag: "tailings_flow_sp", label: "feed SP", live: "sp", color: 4, dash: true },
      { tag: "water_flow_pv", label: "water", live: "m", color: 0 },
      { tag: "water_flow_sp", label: "water SP", live: "sp", color: 0, dash: true },
      { tag: "paste_flow_pv", label: "paste", live: "m", color: 5 },
    ],
  },
  {
    id: "pressure", title: "Pump pressure", unit: "kPa", digits: 0,
    series: [{ tag: "pump_pressure_pv", label: "discharge", live: "m", color: 1 }],
  },
  {
    id: "level", title: "Mixer level", unit: "%", digits: 1,
    series: [{ tag: "mixer_level_pv", label: "level", live: "m", color: 2 }],
  },
];

export function viewPlant(main, token) {
  const role = session.role;
  const pourPanel = h("section", { class: "panel", id: "active-pour" }, h("h2", { text: "Running pour" }), h("div", { id: "pour-body", class: "muted", text: "…" }));
  const alarmPanel = h("section", { class: "panel", id: "alarms" }, h("h2", { text: "Alarms" }), h("div", { id: "alarm-body", class: "muted", text: "…" }));
  put(main, 
    h("div", { class: "row" }, pourPanel, alarmPanel),
    h("div", { class: "toolbar" }, h("h2", { text: "Trends" }), windowSelect(token)),
    trendGrid(PLANT_TRENDS),
  );
  onStatus(token, (st) => {
    renderPour(st, role);
    renderAlarms(st, role);
  });
  startTrends(token, PLANT_TRENDS);
}

// The pause alarm of the running pour (the dump's allowance, an unreachable recipe).
export function pauseAlarm(st) {
  return (st.alarms || []).find((a) => a.code in PAUSE_ALARMS && a.state.startsWith("active")) || null;
}

function renderPour(st, role) {
  const body = $("#pour-body");
  if (!body) return;
  const pour = st.active_pour;
  if (!pour) {
    put(body, h("p", { class: "muted", text: "No pour is running." }),
      h("a", { href: "#/pours", text: "All pours" }));
    return;
  }
  const flow = st.measurements.paste_flow_pv;
  const flowValue = flow && flow.quality === "good" && typeof flow.value === "number" ? flow.value : null;
  // The diverter at the dump with paste flowing: it goes there now (a stopped plant's
  // line points at the dump too, with nothing in it).
  const diverted = toDump(st);
  const dumping = diverted && flowValue !== null && flowValue > 0.5;
  const left = Math.max(0, pour.target_volume_m3 - pour.poured_m3);
  // Paste to the dump fills nothing: no time left to quote while it goes there.
  const hoursLeft = !dumping && flowValue !== null && flowValue > 0.5 ? left / flowValue : null;
  const pct = Math.min(100, (100 * pour.poured_m3) / pour.target_volume_m3);
  const actions = h("div", { class: "toolbar no-print" });
  if (may.runPours(role)) {
    if (pour.state === "running") actions.append(pourButton(pour.id, "pause", "Pause"));
    if (pour.state === "paused") actions.append(pourButton(pour.id, "resume", "Resume"));
    actions.append(pourButton(pour.id, "stop", "Stop", "danger"));
  }
  const paused = pauseAlarm(st);
  const dumped = pour.dumped_m3 || 0;
  body.className = "";
  put(body, 
    h("p", {},
      "Stope ", h("b", { text: pour.stope_id }), " · ",
      h("span", { class: `badge ${pour.state}`, id: "pour-state", text: pour.state }),
      pour.stop_pending ? " · stopping" : "", " · ",
      h("a", { href: `#/pours/${encodeURIComponent(pour.id)}`, text: "report" })),
    h("progress", { id: "pour-progress", max: pour.target_volume_m3, value: pour.poured_m3, "aria-label": "m3 placed of target" }),
    h("p", {},
      h("span", { class: "big", id: "pour-placed", text: fmt(pour.poured_m3, 1) }),
      ` of ${fmt(pour.target_volume_m3, 1)} m3 placed (${fmt(pct, 0)} %) · `,
      h("span", { id: "pour-left", text: dumping ? "time left: none while the paste goes to the dump" : `time left ${fmtDuration(hoursLeft)}` }),
      flowValue !== null ? ` at ${fmt(flowValue, 1)} m3/h` : " (no paste flow)"),
    h("p", { id: "pour-dump", class: dumping ? "dumping" : "", "data-dumping": String(dumping) },
      h("span", { class: dumped > 0 || dumping ? "big dump" : "big muted", id: "pour-dumped", "data-m3": dumped.toFixed(3), text: fmt(dumped, 1) }),
      " m3 sent to the dump (never stope volume)",
      dumping ? h("span", { class: "notice", id: "dump-now", text: "Paste goes to the dump now" })
        : diverted ? h("span", { class: "muted", id: "dump-set", text: " · the diverter points at the dump" }) : null),
    paused ? h("p", { class: "pause-note", id: "pour-pause", "data-code": paused.code },
      h("b", { text: `Paused: ${PAUSE_ALARMS[paused.code]}` }), h("br"),
      h("span", { text: paused.detail || "" }), h("br"),
      h("span", { class: "muted", text: "An operator resumes the pour once the cause is dealt with; see the alarm." })) : null,
    h("p", { class: "muted" },
      `Placed paste: Cw ${fmt(pour.average_solids_pct, 2)} % · Bw ${fmt(pour.average_binder_pct, 2)} % · ` +
      `binder ${fmt(pour.binder_t, 2)} t placed, ${fmt(pour.dumped_binder_t, 2)} t dumped · off-spec ${fmt(pour.off_spec_m3, 2)} m3`),
    instrumentsLine(st.instruments),
    actions);
}

const BINDER_SOURCE_TEXT = {
  normal: "binder on the feed",
  holding: "feed gauge bad: last correction held",
  paste_flow_ratio: "binder on the paste flow meter",
  pause: "no gauge can carry the binder",
};

// Where the binder comes from, and whether the flows in and out of the mixer agree.
function instrumentsLine(ins) {
  const parts = [];
  const source = ins && ins.binder_source;
  if (source) {
    const text = BINDER_SOURCE_TEXT[source.mode] || source.mode;
    const left = source.hold_left_s !== null && source.hold_left_s !== undefined
      ? ` (${fmt(source.hold_left_s, 0)} s left)` : "";
    parts.push(h("span", { id: "binder-source", class: source.mode === "normal" ? "" : "warn", "data-mode": source.mode, text: text + left }));
  }
  const balance = ins && ins.balance;
  if (balance) {
    if (parts.length) parts.push(" · ");
    let text = "flow balance: not judged (not at steady production)";
    if (balance.alarm) {
      const others = balance.indistinguishable.filter((g) => g !== balance.most_likely);
      text = `flow balance: instruments disagree, most likely ${balance.most_likely}` +
        (others.length ? ` (or ${others.join(", ")})` : "");
    } else if (balance.judged) {
      text = `flow balance agrees (${fmt(balance.disagreement, 2)} of the alarm threshold)`;
    }
    parts.push(h("span", { id: "flow-balance", class: balance.alarm ? "warn" : "", "data-alarm": String(balance.alarm), text }));
  }
  return h("p", { class: "muted", id: "instruments" }, parts);
}

export function pourButton(pourId, verb, label, cls) {
  return h("button", {
    type: "button",
    class: cls,
    "data-action": verb,
    text: label,
    onclick: async (ev) => {
      ev.currentTarget.disabled = true;
      try {
        await api(`/pours/${encodeURIComponent(pourId)}/${verb}`, { method: "POST" });
        clearError();
      } catch (err) {
        showError(err);
      }
      refreshStatusNow();
      rerender();
    },
  });
}

function renderAlarms(st, role) {
  const body = $("#alarm-body");
  if (!body) return;
  if (!st.alarms.length) {
    body.className = "muted";
    put(body, h("p", { text: "No active alarms." }));
    return;
  }
  body.className = "";
  const rows = st.alarms.map((a) =>
    h("tr", { class: `sev-${a.severity}${a.acknowledged ? " acked" : ""}`, "data-alarm": a.code },
      h("td", { text: a.severity }),
      h("td", {}, h("b", { text: a.code }), a.detail ? h("div", { class: "alarm-detail", text: a.detail }) : null),
      h("td", { text: fmtDateTime(a.since) }),
      h("td", { class: "alarm-state", text: a.state.replaceAll("_", " ") }),
      h("td", {}, !a.acknowledged && may.acknowledge(role)
        ? h("button", { type: "button", class: "ack", text: "Acknowledge", onclick: (ev) => acknowledge(ev, a.code) })
        : a.acknowledged ? h("span", { class: "muted", text: `by ${a.acknowledged_by || "?"}` }) : null)));
  put(body, table({}, [["Priority"], ["Alarm"], ["Since"], ["State"], [""]], rows));
}

async function acknowledge(ev, code) {
  ev.currentTarget.disabled = true;
  try {
    await api(`/alarms/${encodeURIComponent(code)}/acknowledge`, { method: "POST" });
    clearError();
  } catch (err) {
    showError(err);
  }
  refreshStatusNow();
}
