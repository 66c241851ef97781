// The JSON API as the dashboard uses it: bearer token, errors, and the study event stream.

const TOKEN_KEY = "hpo-service.token";

export class AuthError extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function failure(response) {
  if (response.status === 401) return new AuthError("a valid API token is required");
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message);
}

export async function getJSON(path, { signal } = {}) {
  const response = await fetch(path, { headers: headers(), signal });
  if (!response.ok) throw await failure(response);
  return response.json();
}

export async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body ?? {}),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// Server-Sent Events read with fetch(): EventSource cannot send an Authorization header.
// Calls onEvent({id, event, data}) per event; reconnects with Last-Event-ID until
// shouldContinue() says no or the signal aborts. Resolves when following ends.
export async function followEvents(path, { signal, onEvent, shouldContinue, onStatus }) {
  const seen = { lastId: null }; // kept across reconnects, even when a stream breaks mid-way
  let failures = 0;
  while (!signal.aborted) {
    const extra = { Accept: "text/event-stream" };
    if (seen.lastId !== null) extra["Last-Event-ID"] = seen.lastId;
    try {
      const response = await fetch(path, { headers: headers(extra), signal });
      if (!response.ok) throw await failure(response);
      onStatus?.(true);
      failures = 0;
      await readStream(response.body, onEvent, seen);
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof AuthError || (err instanceof ApiError && err.status === 404)) {
        onStatus?.(false);
        throw err;
      }
      failures += 1;
    }
    onStatus?.(false);
    if (signal.aborted || !(await shouldContinue())) break;
    await sleep(Math.min(500 * 2 ** failures, 10_000), signal);
  }
}

async function readStream(body, emit, seen) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let current = { id: null, event: "message", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const carry = buffer.endsWith("\r") ? "\r" : ""; // maybe half of a \r\n split across chunks
    const lines = (carry ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
    buffer = lines.pop() + carry;
    for (const line of lines) {
      if (line === "") {
        if (current.data.length) {
          if (current.id !== null) seen.lastId = current.id;
          emit({ id: current.id, event: current.event, data: parseData(current.data) });
        }
        current = { id: null, event: "message", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") current.id = value;
      else if (field === "event") current.event = value;
      else if (field === "data") current.data.push(value);
    }
  }
}

function parseData(lines) {
  const text = lines.join("\n");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
