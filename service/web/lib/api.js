// The service's /api/v1, with the key the user typed in, kept in sessionStorage (gone
// when the browser tab closes). Every error is an ApiError carrying the service's
// stable code, its detail and the whole body (a lab sheet's bad rows, a limit's value).

export const API = "/api/v1";
const KEY_STORE = "backfill.apiKey";

// Who is signed in: the key, and what GET /whoami says of it (the role, and the
// person's name when the credential names one).
export const session = {
  key: sessionStorage.getItem(KEY_STORE),
  role: null,
  name: null,
  who: null,
};

let unauthorized = () => {};

// What to do when the service refuses the key (401): the app logs out.
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function keepKey(key) {
  session.key = key;
  sessionStorage.setItem(KEY_STORE, key);
}

export function forgetKey() {
  session.key = null;
  session.role = null;
  session.name = null;
  session.who = null;
  sessionStorage.removeItem(KEY_STORE);
}

// The signed-in person and role from GET /whoami (`name`, or `person.name`, when the
// credential names a person).
export function takeWhoami(me) {
  session.who = me;
  session.role = me.role;
  const person = me.person && typeof me.person === "object" ? me.person : null;
  const name = typeof me.name === "string" && me.name ? me.name
    : person && typeof person.name === "string" && person.name ? person.name : null;
  session.name = name;
}

export class ApiError extends Error {
  constructor(status, code, detail, body = null) {
    super(`${code}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
  }

  get field() {
    return this.body && typeof this.body.field === "string" ? this.body.field : null;
  }
}

export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, cache: "no-store" };
  if (session.key) init.headers.Authorization = `Bearer ${session.key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (err) {
    throw new ApiError(0, "service_unreachable", `the service did not answer (${err.message})`);
  }
  if (raw) {
    if (!response.ok && response.status !== 304) await raiseFor(response);
    return response;
  }
  if (!response.ok) await raiseFor(response);
  return response.json();
}

async function raiseFor(response) {
  let code = `http_${response.status}`;
  let detail = response.statusText || "request failed";
  let data = null;
  try {
    data = await response.json();
    if (data && typeof data === "object") {
      code = data.code || code;
      detail = data.detail || detail;
    }
  } catch (_err) {
    // Not JSON (a proxy's error page): keep the HTTP status.
  }
  if (response.status === 401) unauthorized(`${code}: ${detail}`);
  throw new ApiError(response.status, code, detail, data);
}

// Every page of a list the service pages with limit/offset (at most `max` items).
export async function listAll(path, { limit = 500, max = 5000 } = {}) {
  const items = [];
  const sep = path.includes("?") ? "&" : "?";
  for (let offset = 0; offset < max; offset += limit) {
    const page = await api(`${path}${sep}limit=${limit}&offset=${offset}`);
    items.push(...page.items);
    if (page.items.length < limit) break;
  }
  return items;
}

// Run `work` over `items`, at most `width` at a time (the service's compute rate).
export async function inBatches(items, width, work) {
  const out = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      out[i] = await work(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return out;
}
