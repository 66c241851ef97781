// The studies page: every study, newest first, a page at a time, refreshed every few seconds.

import { AuthError, getJSON } from "./api.js";
import {
  badge, doneCount, elapsed, errorBox, fmtDuration, fmtTime, fmtValue, fmtWaiting, h, link,
  objectives, progressBar, progressLegend, slotsText,
} from "./format.js";

const PAGE_SIZE = 25;
const REFRESH_MS = 3000;

export async function renderStudies(ctx) {
  document.title = "Studies · hpo-service";
  const cursors = [null]; // the cursor of each page seen so far; the last is the current one
  let next = null;
  const body = h("tbody", { id: "studies-body" });
  const prev = h("button", { id: "studies-prev", "data-testid": "studies-prev" }, "‹ Newer");
  const more = h("button", { id: "studies-next", "data-testid": "studies-next" }, "Older ›");
  const pageLabel = h("span", { class: "muted", id: "studies-page" });
  const status = h("div", { id: "studies-status" });

  ctx.root.append(
    h("section", { class: "panel" },
      h("div", { class: "panel-head" },
        h("h1", {}, "Studies"),
        progressLegend(),
        h("span", { class: "spacer" }),
        h("div", { class: "pager" }, prev, pageLabel, more)),
      status,
      h("table", { class: "grid", id: "studies-table", "data-testid": "studies-table" },
        h("thead", {}, h("tr", {},
          ["ID", "Name", "State", "Slots", "Progress", "Best", "Started", "Duration"].map((t) =>
            h("th", { class: ["ID", "Slots", "Best"].includes(t) ? "num" : "" }, t)))),
        body)),
  );

  async function load() {
    const cursor = cursors[cursors.length - 1];
    const query = new URLSearchParams({ limit: PAGE_SIZE });
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await getJSON(`/api/v1/studies?${query}`, { signal: ctx.signal });
      if (!ctx.alive) return;
      next = page.next_cursor;
      status.replaceChildren();
      body.replaceChildren(...page.items.map(studyRow));
      if (!page.items.length) {
        body.append(h("tr", {}, h("td", { colspan: 8, class: "empty" },
          "No studies yet. Submit one with `hpo submit study.yaml` or POST /api/v1/studies.")));
      }
      prev.disabled = cursors.length <= 1;
      more.disabled = !next;
      pageLabel.textContent = `page ${cursors.length}`;
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err instanceof AuthError) throw err;
      status.replaceChildren(errorBox(err));
    }
  }

  prev.addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    load().catch((e) => ctx.fail(e));
  });
  more.addEventListener("click", () => {
    if (next) cursors.push(next);
    load().catch((e) => ctx.fail(e));
  });
  await load();
  ctx.every(REFRESH_MS, () => load().catch((e) => ctx.fail(e)));
}

function studyRow(study) {
  const total = study.spec?.budget?.max_trials ?? null;
  const done = doneCount(study.counts);
  const metric = objectives(study.spec).map((o) => o.metric).join(", ");
  return h("tr", { "data-testid": "study-row", "data-study-id": study.id },
    h("td", { class: "num" }, link(`/studies/${study.id}`, `#${study.id}`)),
    h("td", {}, link(`/studies/${study.id}`, study.name, { class: "strong" })),
    h("td", {}, badge(study.state), queuePlace(study)),
    h("td", { class: "num", "data-testid": "study-slots", title: "slots held / parallelism" },
      slotsText(study)),
    h("td", { class: "progress-cell" },
      progressBar(study.counts, total, "study-progress"),
      h("span", { class: "muted small", "data-testid": "study-done" },
        `${done}/${total ?? "?"}`)),
    h("td", { class: "num", title: metric }, bestText(study)),
    h("td", {}, fmtTime(study.started_at)),
    h("td", {}, fmtDuration(elapsed(study.started_at, study.finished_at))),
  );
}

// "#2" beside a queued study's badge; "#1 for more" beside a running one that wants more slots.
function queuePlace(study) {
  if (study.queue_position === null || study.queue_position === undefined) return null;
  const more = study.state === "queued" ? "" : " for more";
  return h("span", {
    class: "queue-place", "data-testid": "queue-position",
    title: `in the queue for a slot since ${fmtWaiting(study.waiting_since)}`,
  }, `#${study.queue_position}${more}`);
}

function bestText(study) {
  const best = study.best;
  if (!best) return "–";
  if (best.values && best.values.length > 1) return best.values.map(fmtValue).join(" / ");
  return fmtValue(best.value);
}
