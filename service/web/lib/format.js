// Numbers and times as the page shows them. Times are this screen's local time; where a
// time is the plant's clock (the simulator's, which may run faster) the view says so.

export function fmt(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  let v = Number(value);
  if (!Number.isFinite(v)) return "—";
  if (Math.abs(v) < 0.5 * 10 ** -digits) v = 0; // never "-0"
  return v.toLocaleString("en-GB", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export const pad = (n) => String(n).padStart(2, "0");

export function fmtTime(ms, seconds = false) {
  const d = new Date(ms);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

export function fmtDateTime(value) {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDate(value) {
  if (!value) return "—";
  const d = new Date(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function fmtDuration(hours) {
  if (hours === null || !Number.isFinite(hours)) return "—";
  const minutes = Math.round(hours * 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
}

// A span of seconds in hours, minutes and seconds (holds are quoted in hours).
export function fmtHold(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const total = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(total / 3600);
  const rest = `${pad(Math.floor((total % 3600) / 60))} min ${pad(total % 60)} s`;
  return hours ? `${hours} h ${rest}` : rest;
}

// A short span for a wall-time equivalent: "56 s", "3 min 05 s", "2 h 10 min".
export function fmtSpan(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${pad(total % 60)} s`;
  return `${Math.floor(total / 3600)} h ${pad(Math.floor((total % 3600) / 60))} min`;
}

export function fmtDays(days) {
  if (days === null || days === undefined || !Number.isFinite(days)) return "—";
  return days < 1 ? `${fmt(days * 24, 1)} h` : `${fmt(days, days < 10 ? 1 : 0)} d`;
}

export const blendText = (binder) => binder.map((c) => `${c.name} ${fmt(c.fraction_pct, 0)} %`).join(", ");
