// Small DOM and formatting helpers shared by the pages.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function link(href, text, attrs = {}) {
  return h("a", { href, "data-link": true, ...attrs }, text);
}

export function badge(state) {
  return h("span", { class: `badge state-${state}`, "data-testid": "state" }, state);
}

export function fmtValue(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e6) return String(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

// Durations to three significant digits under a minute: an epoch of 0.035 s is "35 ms", not
// "0.0 s"; longer ones in minutes, hours and days.
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 0.9995) return `${Number((seconds * 1e3).toPrecision(2))} ms`;
  if (seconds < 59.95) return `${Number(seconds.toPrecision(3))} s`;
  const s = Math.round(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
}

export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${date} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Seconds from started to finished (or now while unfinished).
export function elapsed(startedIso, finishedIso) {
  if (!startedIso) return null;
  const end = finishedIso ? new Date(finishedIso) : new Date();
  return Math.max(0, (end - new Date(startedIso)) / 1000);
}

export function fmtParams(params) {
  return Object.entries(params || {})
    .map(([k, v]) => `${k}=${typeof v === "number" ? fmtValue(v) : v}`)
    .join(", ");
}

export function doneCount(counts) {
  return (counts.complete || 0) + (counts.pruned || 0) + (counts.failed || 0);
}

// States in which a study trains nothing (a paused one may resume, like a finished one).
export const FINISHED_STUDY = new Set(["paused", "completed", "stopped", "failed"]);

// The study's objectives as a list of {metric, direction}.
export function objectives(spec) {
  const o = spec && spec.objective;
  if (!o) return [{ metric: "value", direction: "maximize" }];
  return Array.isArray(o) ? o : [o];
}

// The trial states a progress bar shows, in its order: one home for the bar and its legend.
export const PROGRESS_STATES = ["complete", "pruned", "failed", "running"];

// A progress bar: one segment per state, widths relative to total.
export function progressBar(counts, total, testid) {
  const bar = h("div", { class: "progress", "data-testid": testid, role: "progressbar" });
  const denominator = Math.max(total || 0, doneCount(counts) + (counts.running || 0), 1);
  for (const state of PROGRESS_STATES) {
    const n = counts[state] || 0;
    if (!n) continue;
    bar.append(h("span", {
      class: `seg state-bg-${state}`,
      style: `width:${(100 * n) / denominator}%`,
      title: `${state}: ${n}`,
    }));
  }
  return bar;
}

// What each colour of the progress bars means; the grey track is the budget still to run.
export function progressLegend() {
  return h("span", { class: "legend small", "data-testid": "progress-legend" },
    h("span", { class: "muted" }, "Progress:"),
    PROGRESS_STATES.map((state) => h("span", { class: "legend-item", "data-state": state },
      h("span", { class: `swatch state-bg-${state}` }), state)),
    h("span", { class: "legend-item", "data-state": "to-run" },
      h("span", { class: "swatch swatch-track" }), "not run yet"));
}

export function errorBox(err) {
  return h("div", { class: "error", "data-testid": "error" }, err.message || String(err));
}

// Client-side navigation without importing the router (app.js listens for popstate).
export function go(path) {
  history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

// A trial's resources as people say them: "2 CPUs", "1 CPU · 1 GPU".
export function fmtShape(cpus, gpus) {
  const part = (n, unit) => `${fmtValue(n)} ${unit}${n === 1 ? "" : "s"}`;
  return gpus ? `${part(cpus, "CPU")} · ${part(gpus, "GPU")}` : part(cpus, "CPU");
}

// Ray's node ids are 56 hex digits; their first 8 tell this cluster's nodes apart.
export function shortId(id) {
  return id ? id.slice(0, 8) : "–";
}

// When a wait for a slot began, and how long it has lasted.
export function fmtWaiting(iso) {
  if (!iso) return "–";
  return `${fmtTime(iso)} (${fmtDuration(elapsed(iso, null))})`;
}

// Slots training the study's trials of the most it may use, while it is not finished.
export function slotsText(study) {
  if (FINISHED_STUDY.has(study.state)) return "–";
  return `${study.slots_held ?? 0}/${study.spec?.budget?.parallelism ?? "?"}`;
}
