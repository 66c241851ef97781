// A study's page: header and controls, charts, trials, a trial's detail, and live updates.

import { AuthError, followEvents, getJSON, postJSON } from "./api.js";
import {
  drawCurves, drawHistory, drawImportance, drawMessage, drawPareto, drawParcoords,
} from "./charts.js";
import { FINISHED_STUDY, errorBox, h, objectives } from "./format.js";
import { StudyHeader } from "./header.js";
import { TrialsTable, renderTrialDetail } from "./trials.js";

const HEADER_THROTTLE_MS = 250;
const DATA_THROTTLE_MS = 2000;
// Costlier to compute or draw, so refreshed less often while a study runs: importance and the
// Pareto front. Parallel coordinates are not among them: their cost is a figure's first draw
// (Plotly makes three WebGL contexts; ~1.5 s in software WebGL, whatever the line count), while
// redrawing the same div takes 0.1-0.3 s for 30-500 lines in Chromium's SwiftShader. They
// refreshed every 20 s, so a running study's parallel coordinates lagged its other charts.
const HEAVY_THROTTLE_MS = 6000;
const POLL_MS = 10_000;
const CURVES = "top=10&pruned=10";

export async function renderStudy(ctx, studyId, trialNumber) {
  const api = `/api/v1/studies/${studyId}`;
  const page = new StudyPage(ctx, studyId, api, trialNumber);
  await page.start();
}

class StudyPage {
  constructor(ctx, studyId, api, trialNumber) {
    Object.assign(this, { ctx, studyId, api, trialNumber });
    this.study = null;
    this.following = false;
    this.selection = [];
    this.header = new StudyHeader({
      onStop: () => this.act("stop", {}),
      onPause: () => this.act("pause", {}),
      onResume: (body) => this.act("resume", body),
    });
    this.detail = h("section", { class: "panel", id: "trial-detail", "data-testid": "trial-detail" });
    this.charts = {};
    this.drawn = {};
    this.trials = new TrialsTable(ctx, studyId, { onSelect: (numbers) => this.select(numbers) });
    this.refreshHeader = throttle(() => this.loadHeader(), HEADER_THROTTLE_MS);
    // The first load happens in start(), so these wait a full interval before their first run.
    const now = Date.now();
    this.refreshLight = throttle(() => this.loadLight(), DATA_THROTTLE_MS, now);
    this.refreshHeavy = throttle(() => this.loadHeavy(), HEAVY_THROTTLE_MS, now);
  }

  async start() {
    this.study = await getJSON(this.api, { signal: this.ctx.signal });
    if (!this.ctx.alive) return;
    document.title = `${this.study.name} · hpo-service`;
    this.ctx.root.append(this.header.element, this.detail, this.chartGrid(), this.trials.element);
    this.detail.hidden = this.trialNumber === null;
    this.ctx.reroute = (path) => this.reroute(path);
    this.drawHeader();
    const initial = Promise.all([this.loadData(), this.loadDetail()]);
    this.follow(); // at once: the first draws can take seconds, live counts should not wait
    await initial;
    // A fallback for when the event stream is down (a proxy that buffers it, say).
    this.ctx.every(POLL_MS, () => {
      if (FINISHED_STUDY.has(this.study.state)) return;
      this.refreshHeader();
      if (!this.following) this.refreshData();
    });
  }

  chartGrid() {
    const card = (key, title, wide, extra = null) => {
      const div = h("div", { id: `chart-${key}`, class: "chart", "data-testid": `chart-${key}` });
      this.charts[key] = div;
      return h("section", { class: `panel chart-card${wide ? " wide" : ""}`, id: `card-${key}` },
        h("div", { class: "panel-head" }, h("h2", {}, title), h("span", { class: "spacer" }), extra),
        div);
    };
    this.curvesNote = h("span", { class: "muted small", id: "curves-note", "data-testid": "curves-note" },
      this.defaultCurvesNote());
    this.curvesZoom = h("span", {
      class: "muted small", id: "curves-zoom", "data-testid": "curves-zoom", hidden: true,
      title: "Worse curves run off the chart; double-click it to see every curve whole.",
    }, "· y zoomed to the best trials (double-click for all)");
    this.curvesClear = h("button", { class: "link-button small", id: "curves-clear", hidden: true },
      "show top trials");
    this.curvesClear.addEventListener("click", () => this.trials.clearSelection());
    const cards = [
      card("history", "Optimization history", false),
      card("importance", "Hyperparameter importance", false),
      card("curves", "Learning curves", true,
        h("span", {}, this.curvesNote, " ", this.curvesZoom, " ", this.curvesClear)),
      card("parcoords", "Parallel coordinates (complete trials)", true),
    ];
    if (objectives(this.study.spec).length > 1) cards.push(card("pareto", "Pareto front", true));
    return h("div", { class: "chart-grid" }, cards);
  }

  async loadHeader() {
    try {
      const study = await getJSON(this.api, { signal: this.ctx.signal });
      if (!this.ctx.alive) return;
      const ended = !FINISHED_STUDY.has(this.study.state) && FINISHED_STUDY.has(study.state);
      const resumed = FINISHED_STUDY.has(this.study.state) && !FINISHED_STUDY.has(study.state);
      this.study = study;
      this.drawHeader();
      if (ended) this.loadData().catch((e) => this.ctx.fail(e));
      if (resumed) this.follow();
    } catch (err) {
      this.ctx.fail(err);
    }
  }

  drawHeader() {
    this.header.update(this.study, this.actionStatus);
  }

  async act(verb, body) {
    this.actionStatus = h("div", { class: "muted small", id: "action-status" }, `${verb}…`);
    this.drawHeader();
    this.actionStatus = null;
    try {
      this.study = await postJSON(`${this.api}/${verb}`, body);
    } catch (err) {
      if (err instanceof AuthError) return this.ctx.fail(err);
      this.actionStatus = h("div",
        { class: "error", id: "action-status", "data-testid": "action-error" },
        `${verb} failed: ${err.message}`);
      setTimeout(() => { this.actionStatus = null; }, 15_000);
    }
    if (!this.ctx.alive) return;
    this.drawHeader();
    if (verb === "resume" && !FINISHED_STUDY.has(this.study.state)) this.follow();
    this.refreshHeader();
    this.refreshData();
  }

  refreshData() {
    this.refreshLight();
    this.refreshHeavy();
  }

  async loadData() {
    await Promise.all([this.loadLight(), this.loadHeavy()]);
  }

  // Tables and charts: every piece loads on its own, so one failure leaves the rest drawn.
  async loadLight() {
    const results = await Promise.allSettled([
      this.trials.load(),
      this.loadChart("history", () => this.drawHistory()),
      this.loadChart("curves", () => this.drawCurves()),
      this.loadChart("parcoords", () => this.drawParcoords()),
    ]);
    this.failOn(results);
    if (this.trialNumber !== null && this.detailLive()) await this.loadDetail();
  }

  async loadHeavy() {
    const parts = [
      this.loadChart("importance", () => this.drawImportance()),
    ];
    if (this.charts.pareto) parts.push(this.loadChart("pareto", () => this.drawPareto()));
    this.failOn(await Promise.allSettled(parts));
  }

  // A token problem shows the prompt; other failures of a chart stay in that chart.
  failOn(results) {
    const failed = results.find((r) => r.status === "rejected");
    if (failed) this.ctx.fail(failed.reason);
  }

  async loadChart(key, drawFn) {
    try {
      await drawFn();
    } catch (err) {
      if (err instanceof AuthError || err.name === "AbortError" || !this.ctx.alive) throw err;
      delete this.drawn[key];
      drawMessage(this.charts[key], `Could not load: ${err.message}`);
    }
  }

  async drawHistory() {
    const history = await getJSON(`${this.api}/history?points=500`, { signal: this.ctx.signal });
    const { metric } = objectives(this.study.spec)[0];
    if (this.changed("history", history)) drawHistory(this.charts.history, history, metric);
  }

  async drawImportance() {
    const importance = await getJSON(`${this.api}/importance`, { signal: this.ctx.signal });
    if (this.changed("importance", importance)) drawImportance(this.charts.importance, importance);
  }

  curvesQuery() {
    if (this.selection.length) return this.selection.map((n) => `numbers=${n}`).join("&");
    const population = this.study.spec.population;
    // A PBT study shows its whole population, one curve per member.
    if (population) return [...Array(population.size).keys()].map((n) => `numbers=${n}`).join("&");
    return CURVES;
  }

  // Each PBT copy as a point on the copier's curve: the epoch it copied at, its new value.
  async populationCopies() {
    if (!this.study.spec.population || this.selection.length) return [];
    const size = this.study.spec.population.size;
    const page = await getJSON(`${this.api}/trials?order=number&limit=${size}`,
      { signal: this.ctx.signal });
    return page.items.flatMap((t) => (t.lineage || []).map((c) => ({
      number: t.number, epoch: c.epoch, value: c.loaded_value, copied: c.copied,
      copied_epoch: c.copied_epoch,
    })));
  }

  async drawCurves() {
    const query = this.curvesQuery();
    const [curves, copies] = await Promise.all([
      getJSON(`${this.api}/curves?${query}`, { signal: this.ctx.signal }),
      this.populationCopies(),
    ]);
    // A reply to an earlier selection (or to the first load) that lands late is dropped.
    if (this.curvesQuery() !== query) return;
    if (this.changed("curves", { curves, copies })) {
      // The top trials set the zoom; trials the user picked are shown whole.
      const { direction } = objectives(this.study.spec)[0];
      const zoomed = drawCurves(this.charts.curves, curves, {
        direction, zoom: !this.selection.length, copies,
      });
      this.curvesZoom.hidden = !zoomed;
    }
    this.charts.curves.dataset.shows = this.selection.join(",") || "top";
  }

  async completeSample() {
    const page = await getJSON(`${this.api}/trials?state=complete&order=best&limit=500`,
      { signal: this.ctx.signal });
    return page.items;
  }

  async drawParcoords() {
    const trials = await this.completeSample();
    const [obj] = objectives(this.study.spec);
    if (this.changed("parcoords", trials)) {
      await nextTask(); // let the header and tables paint before this long draw
      if (!this.ctx.alive) return;
      drawParcoords(this.charts.parcoords, trials, this.study.spec?.space, obj.metric, obj.direction);
    }
  }

  async drawPareto() {
    const [trials, front] = await Promise.all([
      this.completeSample(),
      getJSON(`${this.api}/best?k=1000`, { signal: this.ctx.signal }),
    ]);
    if (this.changed("pareto", trials, front)) {
      drawPareto(this.charts.pareto, trials, front.items, objectives(this.study.spec));
    }
  }

  // Whether a chart's data differs from what it shows: live updates skip the redraws that
  // would change nothing.
  changed(key, ...data) {
    if (!this.ctx.alive) return false;
    const text = JSON.stringify(data);
    if (this.drawn[key] === text) return false;
    this.drawn[key] = text;
    return true;
  }

  defaultCurvesNote() {
    const population = this.study && this.study.spec.population;
    return population
      ? `the population: all ${population.size} members, ★ where one copied another`
      : "top 10 and 10 pruned";
  }

  select(numbers) {
    this.selection = numbers;
    this.curvesNote.textContent = numbers.length
      ? `selected: ${numbers.map((n) => `#${n}`).join(", ")}`
      : this.defaultCurvesNote();
    this.curvesClear.hidden = !numbers.length;
    this.loadChart("curves", () => this.drawCurves()).catch((e) => this.ctx.fail(e));
  }

  // Opening or closing one of this study's trials only changes the detail panel.
  reroute(path) {
    const m = path.match(/^\/studies\/(\d+)(?:\/trials\/(\d+))?\/?$/);
    if (!m || Number(m[1]) !== this.studyId) return false;
    this.trialNumber = m[2] === undefined ? null : Number(m[2]);
    this.detail.hidden = this.trialNumber === null;
    if (this.trialNumber !== null) {
      this.loadDetail().catch((e) => this.ctx.fail(e));
      this.detail.scrollIntoView({ block: "start" });
    }
    return true;
  }

  detailLive() {
    return !FINISHED_STUDY.has(this.study.state);
  }

  async loadDetail() {
    if (this.trialNumber === null) return;
    try {
      await renderTrialDetail(this.ctx, this.detail, this.studyId, this.trialNumber);
    } catch (err) {
      if (err instanceof AuthError || !this.ctx.alive) throw err;
      this.detail.replaceChildren(errorBox(err));
    }
  }

  // While the study runs: header at once on trial/study events, tables and charts throttled.
  async follow() {
    if (this.following || FINISHED_STUDY.has(this.study.state)) return;
    this.following = true;
    const live = document.getElementById("live-indicator");
    try {
      await followEvents(`${this.api}/events`, {
        signal: this.ctx.signal,
        onStatus: (on) => { if (this.ctx.alive) live.hidden = !on; },
        onEvent: (ev) => this.onEvent(ev),
        shouldContinue: async () => {
          await this.loadHeader();
          return this.ctx.alive && !FINISHED_STUDY.has(this.study.state);
        },
      });
    } catch (err) {
      this.ctx.fail(err);
    } finally {
      this.following = false;
      if (this.ctx.alive) live.hidden = true; // else the next page owns the indicator
    }
    if (this.ctx.alive) {
      this.refreshHeader();
      this.refreshData();
    }
  }

  onEvent(ev) {
    if (ev.event !== "epoch") this.refreshHeader();
    this.refreshData();
  }
}

// After the next paint: rendering happens before the animation frame's callbacks return.
function nextTask() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

// Run fn at most once per `ms`: a call while waiting or running schedules one more run.
function throttle(fn, ms, last = 0) {
  let timer = null;
  let pending = false;
  let running = false;
  const run = async () => {
    timer = null;
    running = true;
    last = Date.now();
    try {
      await fn();
    } finally {
      running = false;
      if (pending) {
        pending = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (running) {
      pending = true;
      return;
    }
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  return schedule;
}
