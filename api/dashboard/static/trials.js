// A study's trials: the server-paginated table and one trial's detail panel.

import { getJSON } from "./api.js";
import { drawTrialCurve } from "./charts.js";
import { badge, fmtDuration, fmtParams, fmtTime, fmtValue, h, link } from "./format.js";

const PAGE_SIZE = 25;
const STATES = ["", "complete", "pruned", "failed", "running", "waiting"];

// The trials table. `onSelect(numbers)` hears which rows the user picked for the curves chart.
export class TrialsTable {
  constructor(ctx, studyId, { onSelect }) {
    this.ctx = ctx;
    this.studyId = studyId;
    this.onSelect = onSelect;
    this.order = "best";
    this.state = "";
    this.cursors = [null];
    this.next = null;
    this.selected = new Set();
    this.body = h("tbody", { id: "trials-body" });
    this.element = this.build();
  }

  build() {
    const filter = h("select", { id: "trial-state-filter", "data-testid": "trial-state-filter" },
      STATES.map((s) => h("option", { value: s }, s || "all states")));
    filter.addEventListener("change", () => {
      this.state = filter.value;
      this.restart();
    });
    this.prev = h("button", { id: "trials-prev", "data-testid": "trials-prev" }, "‹ Prev");
    this.more = h("button", { id: "trials-next", "data-testid": "trials-next" }, "Next ›");
    this.pageLabel = h("span", { class: "muted", id: "trials-page" });
    this.prev.addEventListener("click", () => this.page(-1));
    this.more.addEventListener("click", () => this.page(1));
    this.sortNumber = this.sortHeader("number", "#");
    this.sortValue = this.sortHeader("best", "Value");
    return h("section", { class: "panel", id: "trials-panel" },
      h("div", { class: "panel-head" },
        h("h2", {}, "Trials"),
        h("span", { class: "muted small" }, "click a row to compare its curve"),
        h("span", { class: "spacer" }),
        h("label", { class: "small" }, "State ", filter),
        h("div", { class: "pager" }, this.prev, this.pageLabel, this.more)),
      h("div", { class: "table-wrap" },
        h("table", { class: "grid", id: "trials-table", "data-testid": "trials-table" },
          h("thead", {}, h("tr", {},
            this.sortNumber, h("th", {}, "State"), this.sortValue, h("th", {}, "Params"),
            h("th", { class: "num", title: "best epoch / epochs run" }, "Epochs"),
            h("th", {}, "Stop reason"), h("th", { class: "num" }, "Duration"), h("th", {}, "Node"))),
          this.body)));
  }

  sortHeader(order, text) {
    const th = h("th", {
      class: "num sortable", "data-sort": order, "data-testid": `sort-${order}`,
      title: order === "best" ? "best first" : "by trial number",
    }, text);
    th.addEventListener("click", () => {
      if (this.order === order) return;
      this.order = order;
      this.restart();
    });
    return th;
  }

  restart() {
    this.cursors = [null];
    this.load().catch((e) => this.ctx.fail(e));
  }

  page(step) {
    if (step < 0 && this.cursors.length > 1) this.cursors.pop();
    if (step > 0 && this.next) this.cursors.push(this.next);
    this.load().catch((e) => this.ctx.fail(e));
  }

  async load() {
    const query = new URLSearchParams({ order: this.order, limit: PAGE_SIZE });
    if (this.state) query.set("state", this.state);
    const cursor = this.cursors[this.cursors.length - 1];
    if (cursor) query.set("cursor", cursor);
    const page = await getJSON(`/api/v1/studies/${this.studyId}/trials?${query}`, {
      signal: this.ctx.signal,
    });
    if (!this.ctx.alive) return;
    this.next = page.next_cursor;
    this.body.replaceChildren(...page.items.map((t) => this.row(t)));
    if (!page.items.length) {
      this.body.append(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No trials")));
    }
    this.prev.disabled = this.cursors.length <= 1;
    this.more.disabled = !this.next;
    this.pageLabel.textContent = `page ${this.cursors.length}`;
    this.sortNumber.classList.toggle("sorted", this.order === "number");
    this.sortValue.classList.toggle("sorted", this.order === "best");
  }

  row(t) {
    const tr = h("tr", {
      "data-testid": "trial-row", "data-number": t.number,
      class: this.selected.has(t.number) ? "selected clickable" : "clickable",
    },
      h("td", { class: "num" }, link(`/studies/${this.studyId}/trials/${t.number}`, String(t.number),
        { "data-testid": "trial-link" })),
      h("td", {}, badge(t.state)),
      h("td", { class: "num", "data-testid": "trial-value" }, valueText(t)),
      h("td", { class: "params", title: JSON.stringify(t.params, null, 1) }, fmtParams(t.params)),
      h("td", { class: "num" }, `${t.best_epoch ?? "–"} / ${t.epochs_run}`),
      h("td", {}, t.stop_reason || "–"),
      h("td", { class: "num" }, fmtDuration(t.duration_s)),
      h("td", { class: "small", title: t.device ? `device ${t.device}` : "" }, t.node || "–"),
    );
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      if (this.selected.has(t.number)) this.selected.delete(t.number);
      else this.selected.add(t.number);
      tr.classList.toggle("selected", this.selected.has(t.number));
      this.onSelect([...this.selected]);
    });
    return tr;
  }

  clearSelection() {
    this.selected.clear();
    this.body.querySelectorAll("tr.selected").forEach((tr) => tr.classList.remove("selected"));
    this.onSelect([]);
  }
}

function valueText(t) {
  if (t.values && t.values.length > 1) return t.values.map(fmtValue).join(" / ");
  return fmtValue(t.value);
}

// One trial: its outcome, parameters, timings, retry lineage and learning curve.
export async function renderTrialDetail(ctx, panel, studyId, number) {
  const t = await getJSON(`/api/v1/studies/${studyId}/trials/${number}`, { signal: ctx.signal });
  if (!ctx.alive) return;
  const chart = h("div", { id: "chart-trial", class: "chart", "data-testid": "chart-trial" });
  const facts = [
    ["State", badge(t.state)],
    ["Value", valueText(t)],
    ["Best epoch", `${t.best_epoch ?? "–"} of ${t.epochs_run}`],
    ["Stop reason", t.stop_reason || "–"],
    ["Node", t.node || "–"],
    ["Device", h("span", { "data-testid": "trial-device" }, t.device || "–")],
    ["Started", fmtTime(t.started_at)],
    ["Finished", fmtTime(t.finished_at)],
    ["Duration", fmtDuration(t.duration_s)],
  ];
  if (t.retry_of !== null && t.retry_of !== undefined) {
    facts.push(["Retry of", link(`/studies/${studyId}/trials/${t.retry_of}`, `trial ${t.retry_of}`,
      { "data-testid": "retry-of" })]);
  }
  panel.replaceChildren(...[
    h("div", { class: "panel-head" },
      h("h2", {}, `Trial ${t.number}`),
      h("span", { class: "spacer" }),
      link(`/studies/${studyId}`, "✕ close", { class: "small", "data-testid": "trial-close" })),
    t.error ? h("div", { class: "error", "data-testid": "trial-error" }, t.error) : null,
    h("div", { class: "detail-grid" },
      h("div", {},
        factList(facts),
        h("h3", {}, "Parameters"),
        keyValues(t.params, "trial-params"),
        t.test_metrics ? h("h3", {}, "Test metrics (best weights)") : null,
        t.test_metrics ? keyValues(t.test_metrics, "trial-test-metrics") : null,
        attemptsTable(t.attempts || []),
        scheduleTable(studyId, t)),
      h("div", {}, h("h3", {}, "Learning curve"), chart, epochsTable(t.epochs))),
  ].filter(Boolean));
  drawTrialCurve(chart, t.epochs);
}

// A trial that a lost worker, a pause, a preemption or a restart interrupted ran more than
// once; each run resumed from the checkpoint epoch it names.
function attemptsTable(attempts) {
  if (attempts.length < 2) return null;
  return h("div", {},
    h("h3", {}, "Runs"),
    h("table", { class: "grid compact", "data-testid": "trial-attempts" },
      h("thead", {}, h("tr", {}, ["#", "node", "from epoch", "epochs trained", "ended"]
        .map((k) => h("th", {}, k)))),
      h("tbody", {}, attempts.map((a, i) => h("tr", { "data-testid": "trial-attempt" },
        h("td", { class: "num" }, String(i + 1)),
        h("td", {}, a.node || "–"),
        h("td", { class: "num" }, String(a.from_epoch)),
        h("td", { class: "num" }, a.epochs_trained ?? "–"),
        h("td", {}, a.end || "running"))))));
}

// A PBT member's schedule: the searched params it trained with from each epoch on, and
// whose weights it copied there (the replayable schedule that GET /best returns too).
function scheduleTable(studyId, t) {
  const lineage = t.lineage || [];
  if (!lineage.length) return null;
  const names = Object.keys(t.params);
  const copied = [null, ...lineage];
  return h("div", {},
    h("h3", {}, "Schedule (population-based training)"),
    h("table", { class: "grid compact", "data-testid": "trial-schedule" },
      h("thead", {}, h("tr", {}, ["from epoch", "copied", ...names].map((k) => h("th", {}, k)))),
      h("tbody", {}, t.schedule.map((piece, i) => h("tr", { "data-testid": "schedule-piece" },
        h("td", { class: "num" }, String(piece.from_epoch)),
        h("td", {}, copied[i] ? link(`/studies/${studyId}/trials/${copied[i].copied}`,
          `trial ${copied[i].copied} @${copied[i].copied_epoch}`) : "own draw"),
        ...names.map((k) => h("td", { class: "num" }, fmtValue(piece.params[k]))))))));
}

function factList(rows) {
  return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function keyValues(obj, testid) {
  return h("table", { class: "kv", "data-testid": testid },
    h("tbody", {}, Object.entries(obj || {}).map(([k, v]) =>
      h("tr", {}, h("th", {}, k), h("td", { class: "num" }, fmtValue(v))))));
}

// Per-epoch columns that are durations: `seconds` of that epoch, `train_seconds` so far.
const DURATIONS = new Set(["seconds", "train_seconds"]);

function epochsTable(epochs) {
  if (!epochs.length) return null;
  const keys = [...new Set(epochs.flatMap((e) => Object.keys(e)))];
  return h("div", { class: "table-wrap short" },
    h("table", { class: "grid compact", "data-testid": "trial-epochs" },
      h("thead", {}, h("tr", {}, keys.map((k) => h("th", { class: "num" }, k)))),
      h("tbody", {}, epochs.map((e) =>
        h("tr", {}, keys.map((k) => h("td", { class: "num", "data-key": k },
          DURATIONS.has(k) ? fmtDuration(e[k]) : fmtValue(e[k]))))))));
}
