// A study's header: name, state, facts, progress by trial state, and the stop/resume controls.

import {
  FINISHED_STUDY, badge, doneCount, elapsed, fmtDuration, fmtTime, fmtValue, fmtWaiting, h,
  objectives, progressBar, slotsText,
} from "./format.js";

const COUNTED = ["complete", "pruned", "failed", "running", "waiting"];

export class StudyHeader {
  // onStop(), onPause() and onResume(body) act on the study; the controls are built once
  // and only enabled or disabled later, so a click never lands on a button just replaced.
  constructor({ onStop, onPause, onResume }) {
    this.title = h("div", { class: "title-row-info" });
    this.body = h("div", {});
    this.stop = h("button", { id: "stop-btn", class: "danger", "data-testid": "stop-button" }, "Stop");
    this.maxTrials = h("input", {
      id: "resume-max-trials", type: "number", min: 1, placeholder: "max trials",
      "data-testid": "resume-max-trials", title: "new budget.max_trials (empty keeps the old one)",
    });
    this.resume = h("button", { id: "resume-btn", "data-testid": "resume-button" }, "Resume");
    this.pause = h("button", {
      id: "pause-btn", "data-testid": "pause-button",
      title: "Trials stop at their next epoch with a checkpoint; Resume continues them.",
    }, "Pause");
    this.stop.addEventListener("click", () => onStop());
    this.pause.addEventListener("click", () => onPause());
    this.resume.addEventListener("click", () => {
      const n = Number.parseInt(this.maxTrials.value, 10);
      onResume(Number.isFinite(n) ? { budget: { max_trials: n } } : {});
    });
    this.element = h("section", { class: "panel", id: "study-header", "data-testid": "study-header" },
      h("div", { class: "title-row" }, this.title, h("span", { class: "spacer" }),
        h("div", { class: "controls" }, this.pause, this.stop, this.maxTrials, this.resume)),
      this.body);
  }

  update(s, status = null) {
    const active = !FINISHED_STUDY.has(s.state);
    this.stop.disabled = !active;
    this.pause.disabled = !active;
    this.maxTrials.disabled = active;
    this.resume.disabled = active;
    this.title.replaceChildren(...[
      h("h1", { id: "study-name", "data-testid": "study-name" }, s.name),
      h("span", { class: "muted" }, `#${s.id}`),
      h("span", { id: "study-state", "data-testid": "study-state", "data-state": s.state },
        badge(s.state)),
      s.state_reason
        ? h("span", { id: "study-reason", class: "muted", "data-testid": "study-reason" },
          s.state_reason)
        : null,
    ].filter(Boolean));
    this.body.replaceChildren(...[
      facts(s),
      progress(s),
      s.warnings?.length
        ? h("ul", { class: "warnings", id: "study-warnings", "data-testid": "study-warnings" },
          s.warnings.map((w) => h("li", {}, w)))
        : null,
      s.error
        ? h("div", { class: "error", id: "study-error", "data-testid": "study-error" }, s.error)
        : null,
      status,
    ].filter(Boolean));
  }
}

function facts(s) {
  const objective = objectives(s.spec).map((o) => `${o.direction} ${o.metric}`).join(", ");
  const best = s.best?.values?.length > 1
    ? s.best.values.map(fmtValue).join(" / ")
    : fmtValue(s.best?.value);
  return h("dl", { class: "facts inline" },
    h("dt", {}, "Optuna study"),
    h("dd", {}, h("code", { id: "optuna-study-name", "data-testid": "optuna-study-name" },
      s.optuna_study_name)),
    h("dt", {}, "Objective"), h("dd", {}, objective),
    h("dt", {}, "Best"),
    h("dd", { id: "study-best", "data-testid": "study-best" }, best,
      s.best ? h("span", { class: "muted" }, ` (trial ${s.best.number})`) : null),
    h("dt", {}, "Sampler / pruner"),
    h("dd", {}, `${s.spec?.sampler?.type ?? "?"} / ${s.spec?.pruner?.type ?? "?"}`),
    h("dt", {}, "Started"), h("dd", {}, fmtTime(s.started_at)),
    h("dt", {}, "Duration"), h("dd", {}, fmtDuration(elapsed(s.started_at, s.finished_at))),
    ...(s.checkpoint_bytes
      ? [h("dt", { title: "what the unfinished trials' checkpoints take in the store" },
        "Checkpoints"),
      h("dd", { "data-testid": "study-checkpoint-bytes" }, fmtBytes(s.checkpoint_bytes))]
      : []),
    ...scheduling(s));
}

// Where the scheduler has the study: its priority, slots held, and its wait for one.
function scheduling(s) {
  const items = [
    h("dt", {}, "Priority"), h("dd", { "data-testid": "study-priority" }, String(s.priority ?? 0)),
    h("dt", { title: "slots training its trials now / budget.parallelism" }, "Slots"),
    h("dd", { "data-testid": "study-slots" }, slotsText(s)),
  ];
  if (s.queue_position === null || s.queue_position === undefined) return items;
  const place = s.state === "queued" ? `#${s.queue_position}` : `#${s.queue_position} for more`;
  return [...items,
    h("dt", {}, "Queue"), h("dd", { "data-testid": "study-queue-position" }, place),
    h("dt", {}, "Waiting since"),
    h("dd", { "data-testid": "study-waiting-since" }, fmtWaiting(s.waiting_since))];
}

function progress(s) {
  const total = s.spec?.budget?.max_trials ?? null;
  return h("div", { class: "progress-row" },
    progressBar(s.counts, total, "study-progress-bar"),
    h("span", { class: "counts", id: "study-counts" },
      h("strong", {},
        h("span", { "data-testid": "done-count", id: "done-count" }, String(doneCount(s.counts))),
        `/${total ?? "?"} done`),
      COUNTED.map((state) => h("span",
        { class: `count state-fg-${state}`, "data-testid": `count-${state}` },
        `${state} ${s.counts[state] || 0}`))));
}

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
