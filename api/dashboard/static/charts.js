// The study page's Plotly charts. Each takes a div and the JSON the API returned.

const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
// Plotly's modebar (shown on hover) sits in the figure's top right corner, over whatever the
// plot draws there: the top importance bar, the first legend entry, the labels of the last
// parallel axis. Every figure's top margin starts with this band, and the modebar stays in it.
const MODEBAR_BAND = 28;
const FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 };
const COLORS = {
  complete: "#2563eb",
  best: "#dc2626",
  pruned: "#9ca3af",
  failed: "#f97316",
  front: "#dc2626",
};

// `margin.t` is the room a figure needs above its plot; the modebar's band comes on top.
function layout({ margin = {}, ...extra } = {}) {
  const { t = 8, ...sides } = { l: 56, r: 16, b: 44, ...margin };
  return {
    font: FONT,
    margin: { ...sides, t: MODEBAR_BAND + t },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fff",
    hovermode: "closest",
    legend: { orientation: "h", y: -0.22 },
    ...extra,
  };
}

function draw(div, traces, lay) {
  div.classList.remove("empty-chart");
  window.Plotly.react(div, traces, lay, CONFIG);
}

// An empty chart with a message, so the div always holds a (blank) Plotly figure.
export function drawMessage(div, message) {
  window.Plotly.react(div, [], layout({
    xaxis: { visible: false },
    yaxis: { visible: false },
    annotations: [{ text: message, showarrow: false, font: { size: 14, color: "#6b7280" } }],
  }), CONFIG);
  div.classList.add("empty-chart");
}

// Complete trials by number: each bucket's lo..hi (markers when one trial a bucket) and the
// running best as a step line.
export function drawHistory(div, history, metric) {
  const items = history.items || [];
  if (!items.length) return drawMessage(div, "No complete trials yet");
  const bucketed = (history.bucket_size || 1) > 1;
  const lastNumber = items[items.length - 1].last;
  const trials = bucketed ? historyRanges(items) : {
    name: "trial value", type: "scatter", mode: "markers",
    x: items.map((b) => b.number), y: items.map((b) => b.lo),
    marker: { color: COLORS.complete, size: 7, opacity: 0.75 },
    hovertemplate: "trial %{x}<br>value %{y:.4g}<extra></extra>",
  };
  const best = {
    name: "best so far", type: "scatter", mode: "lines",
    x: items.map((b) => b.last), y: items.map((b) => b.best),
    line: { color: COLORS.best, width: 2, shape: "hv" },
    hovertemplate: "up to trial %{x}<br>best %{y:.4g}<extra></extra>",
  };
  draw(div, [trials, best], layout({
    xaxis: { title: { text: "trial" }, zeroline: false, dtick: lastNumber <= 12 ? 1 : undefined },
    yaxis: { title: { text: `${metric} (${history.direction})` }, zeroline: false },
    bargap: 0,
  }));
}

function historyRanges(items) {
  return {
    name: "trial values (range per bucket)", type: "bar",
    x: items.map((b) => (b.number + b.last) / 2),
    width: items.map((b) => Math.max(b.last - b.number, 1)),
    base: items.map((b) => b.lo),
    y: items.map((b) => b.hi - b.lo),
    marker: { color: "rgba(37,99,235,0.35)", line: { color: COLORS.complete, width: 1 } },
    customdata: items.map((b) => [b.number, b.last, b.lo, b.hi, b.count]),
    hovertemplate: "trials %{customdata[0]}–%{customdata[1]} (%{customdata[4]} complete)"
      + "<br>%{customdata[2]:.4g} – %{customdata[3]:.4g}<extra></extra>",
  };
}

export function drawImportance(div, importance) {
  const items = [...(importance.items || [])].sort((a, b) => a.importance - b.importance);
  if (!items.length) return drawMessage(div, "Needs more complete trials");
  draw(div, [{
    type: "bar", orientation: "h",
    x: items.map((i) => i.importance), y: items.map((i) => i.param),
    marker: { color: COLORS.complete },
    hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
  }], layout({
    margin: { l: 110, r: 16, t: 8, b: 44 },
    xaxis: {
      title: { text: `importance (${importance.evaluator}, ${importance.n_trials} trials)` },
      rangemode: "tozero",
    },
    yaxis: { automargin: true, ticksuffix: " " },
    showlegend: false,
  }));
}

// Learning curves. Unless `zoom` is false, the y-axis spans the best complete curves only
// (see focusRange), so that a diverged or far worse curve does not flatten the ones worth
// comparing; a double-click shows every curve whole. Returns whether it zoomed.
export function drawCurves(div, curves, { direction = null, zoom = true, copies = [] } = {}) {
  const items = curves.items || [];
  if (!items.length) {
    drawMessage(div, "No learning curves yet");
    return false;
  }
  const traces = items.map((c) => {
    const dimmed = c.state === "pruned" || c.state === "failed";
    const label = `#${c.number}${c.state === "complete" ? "" : ` (${c.state})`}`;
    return {
      type: "scatter", mode: "lines+markers", name: label, x: c.epochs, y: c.values,
      connectgaps: false,
      line: dimmed
        ? { color: c.state === "failed" ? COLORS.failed : COLORS.pruned, dash: "dot", width: 1.5 }
        : { width: 2 },
      marker: { size: 4 },
      opacity: dimmed ? 0.8 : 1,
      hovertemplate: `${label}<br>epoch %{x}<br>${curves.metric} %{y:.4g}<extra></extra>`,
    };
  });
  if (copies.length) {
    // PBT: where a member went on as a copy of another (its value before training again).
    traces.push({
      type: "scatter", mode: "markers", name: "copies", x: copies.map((c) => c.epoch),
      y: copies.map((c) => c.value), marker: { symbol: "star", size: 11, color: "#111" },
      text: copies.map((c) => `#${c.number} copied #${c.copied} (its epoch ${c.copied_epoch})`),
      hovertemplate: "%{text}<extra></extra>",
    });
  }
  const range = zoom ? focusRange(items, direction) : null;
  draw(div, traces, layout({
    xaxis: { title: { text: "epoch" }, dtick: maxEpoch(items) <= 12 ? 1 : undefined },
    yaxis: { title: { text: curves.metric }, nticks: 8, ...(range ? { range } : {}) },
    legend: { orientation: "v", x: 1.02, y: 1, font: { size: 11 } },
    margin: { l: 56, r: 8, t: 8, b: 44 },
    showlegend: true,
  }));
  return range !== null;
}

// The best half of the complete curves (at least 3, at most FOCUS_TOP) set the y-range,
// padded; null (autorange) unless that at least halves the span of every curve drawn.
const FOCUS_TOP = 5;

function focusRange(items, direction) {
  const sign = direction === "minimize" ? 1 : -1;
  const complete = items.filter((c) => c.state === "complete" && Number.isFinite(c.value));
  if (direction) complete.sort((a, b) => sign * (a.value - b.value));
  const n = Math.min(FOCUS_TOP, Math.max(3, Math.ceil(complete.length / 2)));
  const best = complete.slice(0, n);
  const focus = extent(best.flatMap((c) => c.values));
  const all = extent(items.flatMap((c) => c.values));
  if (!focus || !all || 2 * (focus[1] - focus[0]) >= all[1] - all[0]) return null;
  const pad = (focus[1] - focus[0]) * 0.08 || Math.abs(focus[0]) * 0.05 || 0.5;
  return [focus[0] - pad, focus[1] + pad];
}

function extent(values) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  return finite.length ? [Math.min(...finite), Math.max(...finite)] : null;
}

function maxEpoch(items) {
  return Math.max(1, ...items.flatMap((c) => c.epochs));
}

// Parallel coordinates over the params of complete trials, value last and as the colour.
export function drawParcoords(div, trials, space, metric, direction) {
  const rows = trials.filter((t) => trialValue(t) !== null);
  if (rows.length < 2) return drawMessage(div, "Needs at least two complete trials");
  const names = [...new Set(rows.flatMap((t) => Object.keys(t.params)))];
  const dims = names.map((name) => dimension(name, rows.map((t) => t.params[name]), space?.[name]));
  const values = rows.map(trialValue);
  dims.push(dimension(metric, values, null));
  draw(div, [{
    type: "parcoords",
    dimensions: dims,
    line: {
      color: values, colorscale: "Viridis", reversescale: direction === "minimize",
      showscale: true, colorbar: { title: { text: metric }, thickness: 12 },
    },
    labelfont: { size: 12 }, tickfont: { size: 10 },
  }], layout({ margin: { l: 60, r: 60, t: 40, b: 20 } }));
}

function trialValue(t) {
  if (t.value !== null && t.value !== undefined) return t.value;
  return t.values && t.values.length ? t.values[0] : null;
}

function dimension(label, raw, spec) {
  const present = raw.filter((v) => v !== undefined && v !== null);
  const numeric = present.every((v) => typeof v === "number") && spec?.type !== "categorical";
  if (!numeric) return categorical(label, raw, spec);
  const log = Boolean(spec?.log) && present.every((v) => v > 0);
  const f = log ? Math.log10 : (v) => v;
  const bounds = typeof spec?.low === "number" ? [spec.low, spec.high].map(f) : [];
  let lo = Math.min(...bounds, ...present.map(f));
  let hi = Math.max(...bounds, ...present.map(f));
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  const missing = raw.length > present.length;
  const gap = lo - (hi - lo) * 0.15;
  const ticks = log ? logTicks(lo, hi) : niceTicks(lo, hi);
  const tickvals = ticks.map(f);
  const ticktext = ticks.map(fmtTick);
  if (missing) { tickvals.unshift(gap); ticktext.unshift("n/a"); }
  return {
    label: log ? `${label} (log)` : label,
    values: raw.map((v) => (v === undefined || v === null ? gap : f(v))),
    range: [missing ? gap : lo, hi], tickvals, ticktext, tickformat: ".3~r",
  };
}

// Round ticks within [lo, hi]: multiples of 1, 2 or 5 times a power of ten, the step whose
// count comes nearest `n`.
export function niceTicks(lo, hi, n = 5) {
  const power = Math.floor(Math.log10((hi - lo) / n));
  const steps = [power - 1, power, power + 1].flatMap((e) => [1, 2, 5].map((m) => m * 10 ** e));
  const count = (step) => Math.floor(hi / step + 1e-9) - Math.ceil(lo / step - 1e-9) + 1;
  const step = steps.reduce((a, b) => (Math.abs(count(b) - n) < Math.abs(count(a) - n) ? b : a));
  const ticks = [];
  for (let k = Math.ceil(lo / step - 1e-9); k <= Math.floor(hi / step + 1e-9); k += 1) {
    ticks.push(Number((k * step).toPrecision(12)));
  }
  return ticks;
}

// Ticks of a log axis, given in log10 units: whole decades, with 2 and 5 between them when
// the axis spans less than three decades.
function logTicks(lo, hi) {
  const mantissas = hi - lo < 3 ? [1, 2, 5] : [1];
  const ticks = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e += 1) {
    for (const m of mantissas) {
      const v = Number((m * 10 ** e).toPrecision(3));
      const x = Math.log10(v);
      if (x >= lo - 1e-9 && x <= hi + 1e-9) ticks.push(v);
    }
  }
  return ticks.length >= 2 ? ticks : [10 ** lo, 10 ** hi].map((v) => Number(v.toPrecision(2)));
}

function fmtTick(v) {
  return Number(v.toPrecision(3)).toString();
}

function categorical(label, raw, spec) {
  const choices = (spec?.choices || [...new Set(raw.filter((v) => v !== undefined && v !== null))])
    .map(String);
  const index = new Map(choices.map((c, i) => [c, i]));
  const hasMissing = raw.some((v) => !index.has(String(v)));
  const ticktext = hasMissing ? [...choices, "n/a"] : choices;
  const values = raw.map((v) => index.get(String(v)) ?? choices.length); // unknown or missing: n/a
  return {
    label, values, tickvals: ticktext.map((_, i) => i), ticktext,
    range: [0, Math.max(ticktext.length - 1, 1)],
  };
}

// Two objectives: every complete trial, the Pareto front highlighted.
export function drawPareto(div, trials, front, objectives) {
  const [a, b] = objectives;
  const point = (t) => [t.values?.[0], t.values?.[1]];
  const rows = trials.filter((t) => t.values && t.values.length >= 2);
  if (!rows.length) return drawMessage(div, "No complete trials yet");
  const onFront = new Set(front.map((t) => t.number));
  const sortedFront = [...front].filter((t) => t.values).sort((p, q) => p.values[0] - q.values[0]);
  const others = rows.filter((t) => !onFront.has(t.number));
  draw(div, [
    {
      name: "trials", type: "scatter", mode: "markers",
      x: others.map((t) => point(t)[0]), y: others.map((t) => point(t)[1]),
      text: others.map((t) => `#${t.number}`),
      marker: { color: COLORS.pruned, size: 7 },
      hovertemplate: "%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>",
    },
    {
      name: "Pareto front", type: "scatter", mode: "lines+markers",
      x: sortedFront.map((t) => t.values[0]), y: sortedFront.map((t) => t.values[1]),
      text: sortedFront.map((t) => `#${t.number}`),
      line: { color: COLORS.front, width: 1, dash: "dot" },
      marker: { color: COLORS.front, size: 9 },
      hovertemplate: "%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>",
    },
  ], layout({
    xaxis: { title: { text: `${a.metric} (${a.direction})` } },
    yaxis: { title: { text: `${b.metric} (${b.direction})` } },
  }));
}

// One trial's per-epoch curve: losses on the left axis, validation metrics on the right.
export function drawTrialCurve(div, epochs) {
  if (!epochs.length) return drawMessage(div, "No epochs recorded");
  // Losses and validation metrics; cost metrics (n_params, train_seconds) and lr stay in the table.
  const keys = [...new Set(epochs.flatMap((e) => Object.keys(e)))]
    .filter((k) => k.endsWith("loss") || k.startsWith("val_"));
  const x = epochs.map((e) => e.epoch);
  const traces = keys.map((key) => {
    const loss = key.endsWith("loss");
    return {
      name: key, type: "scatter", mode: "lines+markers", x, y: epochs.map((e) => e[key] ?? null),
      yaxis: loss ? "y" : "y2", line: { dash: key.startsWith("train") ? "dot" : "solid" },
      hovertemplate: `${key} %{y:.4g}<extra>epoch %{x}</extra>`,
    };
  });
  draw(div, traces, layout({
    xaxis: { title: { text: "epoch" }, dtick: x.length <= 12 ? 1 : undefined },
    yaxis: { title: { text: "loss" }, nticks: 6 },
    // Plotly syncs an overlaying axis's ticks to the grid of the axis under it by default,
    // which labelled it 0.281, 0.347, 0.414...: its own round ticks instead.
    yaxis2: {
      title: { text: "metric" }, overlaying: "y", side: "right", showgrid: false,
      tickmode: "auto", nticks: 6,
    },
    legend: { orientation: "h", y: -0.3 },
    margin: { l: 56, r: 56, t: 8, b: 56 },
  }));
}
