// The cluster page: nodes, each tenant's usage against its share and quota, the queue in the
// order it gets slots, and every slot; refreshed every few seconds while it is shown.

import { AuthError, getJSON } from "./api.js";
import { errorBox, fmtShape, fmtValue, fmtWaiting, h, link, shortId } from "./format.js";

const REFRESH_MS = 3000;

export async function renderCluster(ctx) {
  document.title = "Cluster · hpo-service";
  const names = new StudyNames(ctx);
  const summary = h("span",
    { class: "muted", id: "cluster-summary", "data-testid": "cluster-summary" });
  const status = h("div", { id: "cluster-status" });
  const bodies = {
    nodes: h("tbody", { id: "nodes-body" }),
    tenants: h("tbody", { id: "tenants-body" }),
    queue: h("tbody", { id: "queue-body" }),
    slots: h("tbody", { id: "slots-body" }),
  };
  ctx.root.append(
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h1", {}, "Cluster"), summary), status),
    h("div", { class: "cluster-grid" },
      panel("Nodes", "nodes", ["Node", "Alive", "CPUs used", "GPUs used", "Slots"], bodies.nodes),
      panel("Tenants", "tenants", ["Tenant", "Held / share", "CPUs", "GPUs", "Busy slots",
        "Weight", "Quota", "Waiting"], bodies.tenants)),
    panel("Queue", "queue", ["#", "Study", "Tenant", "Priority", "Waiting since", "Slots",
      "Shape"], bodies.queue, "studies waiting for a slot, in the order they get one"),
    panel("Slots", "slots", ["Slot", "Shape", "Node", "State", "Study", "Tenant"], bodies.slots,
      "warm trial actors, reused from trial to trial"),
  );

  async function load() {
    try {
      const cluster = await getJSON("/api/v1/cluster", { signal: ctx.signal });
      names.learn(cluster.queue);
      await names.fetch(cluster.slots.map((s) => s.study_id));
      if (!ctx.alive) return;
      status.replaceChildren();
      draw(cluster, bodies, summary, names);
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err instanceof AuthError) throw err;
      status.replaceChildren(errorBox(err));
    }
  }

  await load();
  ctx.every(REFRESH_MS, () => load().catch((e) => ctx.fail(e)));
}

function panel(title, key, headers, body, note = null) {
  const numeric = new Set(["#", "CPUs", "GPUs", "Busy slots", "Weight", "Waiting", "Slot",
    "Priority", "Slots", "CPUs used", "GPUs used"]);
  return h("section", { class: "panel", id: `${key}-panel` },
    h("div", { class: "panel-head" }, h("h2", {}, title),
      note ? h("span", { class: "muted small" }, note) : null),
    h("div", { class: "table-wrap" },
      h("table", { class: "grid compact", id: `${key}-table`, "data-testid": `${key}-table` },
        h("thead", {}, h("tr", {},
          headers.map((t) => h("th", { class: numeric.has(t) ? "num" : "" }, t)))),
        body)));
}

function draw(cluster, bodies, summary, names) {
  summary.textContent = summaryText(cluster);
  fill(bodies.nodes, cluster.nodes.map((n) => nodeRow(n, cluster)), 5, "No nodes known yet.");
  const tenants = cluster.others ? [...cluster.tenants, cluster.others] : cluster.tenants;
  fill(bodies.tenants, tenants.map(tenantRow), 8, "No tenant has studies now.");
  fill(bodies.queue, cluster.queue.map(queueRow), 7, "No study waits for a slot.");
  fill(bodies.slots, cluster.slots.map((s) => slotRow(s, names)), 6,
    "No slots: they start as studies ask for them.");
}

function fill(body, rows, columns, empty) {
  body.replaceChildren(...rows);
  if (!rows.length) body.append(h("tr", {}, h("td", { colspan: columns, class: "empty" }, empty)));
}

function summaryText(cluster) {
  const alive = cluster.nodes.filter((n) => n.alive);
  const sum = (key) => alive.reduce((total, n) => total + n[key], 0);
  const busy = cluster.slots.filter((s) => s.state === "busy").length;
  return [
    `${alive.length} node${alive.length === 1 ? "" : "s"} alive`,
    `${fmtShape(sum("cpus"), sum("gpus"))} in all`,
    `${busy} busy and ${cluster.slots.length - busy} idle slots`,
    `${cluster.queue.length} waiting`,
  ].join(" · ");
}

function nodeRow(node, cluster) {
  const slots = cluster.slots.filter((s) => s.node_id === node.node_id);
  const busy = slots.filter((s) => s.state === "busy").length;
  const reserved = node.node_id === cluster.reserved_node;
  return h("tr", { "data-testid": "node-row", "data-node-id": node.node_id },
    h("td", { title: node.node_id }, h("code", {}, shortId(node.node_id)),
      reserved
        ? h("span", { class: "tag", title: "kept free for the first study in the queue" },
          "reserved")
        : null),
    h("td", {}, h("span", { class: `badge ${node.alive ? "state-complete" : "state-failed"}` },
      node.alive ? "alive" : "lost")),
    h("td", { class: "num nowrap" }, usage(node.cpus_used, node.cpus)),
    h("td", { class: "num nowrap" }, usage(node.gpus_used, node.gpus)),
    h("td", { class: "num nowrap" },
      slots.length ? `${busy} busy, ${slots.length - busy} idle` : "–"));
}

// "1.5 / 2" with a meter; a node without any of the resource shows a dash.
function usage(used, total) {
  if (!total) return "–";
  return h("span", { class: "usage" },
    meter(used / total, null, `${fmtValue(used)} of ${fmtValue(total)}`),
    `${fmtValue(used)} / ${fmtValue(total)}`);
}

function tenantRow(t) {
  const others = t.tenant === "others";
  const quota = [
    t.quota_cpus === null ? null : `${fmtValue(t.quota_cpus)} CPUs`,
    t.quota_gpus === null ? null : `${fmtValue(t.quota_gpus)} GPUs`,
  ].filter(Boolean).join(" · ") || "–";
  const pct = (x) => `${Math.round(100 * x)}%`;
  const title = `holds ${pct(t.dominant_share)} of the cluster (its largest fraction of CPUs or `
    + `GPUs); its weight entitles it to ${pct(t.share)}`;
  return h("tr", { "data-testid": "tenant-row", "data-tenant": t.tenant },
    h("td", {},
      others ? h("span", { class: "muted" }, "other tenants") : h("strong", {}, t.tenant)),
    h("td", { class: "share-cell", title },
      meter(t.dominant_share, t.share, title),
      h("span", { class: "small" }, `${pct(t.dominant_share)} / ${pct(t.share)}`)),
    h("td", { class: "num" }, fmtValue(t.cpus)),
    h("td", { class: "num" }, fmtValue(t.gpus)),
    h("td", { class: "num" }, String(t.slots)),
    h("td", { class: "num" }, fmtValue(t.weight)),
    h("td", {}, quota),
    h("td", { class: "num" }, String(t.studies_waiting)));
}

// A horizontal bar filled to `fraction`; `mark`, when given, is drawn as a line (a share).
function meter(fraction, mark, title) {
  const over = mark !== null && fraction > mark + 1e-9;
  const bar = h("span", { class: `meter${over ? " over" : ""}`, title },
    h("span", { class: "fill", style: `width:${Math.min(100, 100 * fraction)}%` }));
  if (mark !== null) {
    bar.append(h("span", { class: "mark", style: `left:${Math.min(100, 100 * mark)}%` }));
  }
  return bar;
}

function queueRow(q) {
  const study = q.study_id === null
    ? h("span", { class: "muted" }, "another tenant's study")
    : link(`/studies/${q.study_id}`, `#${q.study_id} ${q.name ?? ""}`,
      { "data-testid": "queue-study" });
  return h("tr",
    { "data-testid": "queue-row", "data-position": q.position, "data-study-id": q.study_id ?? "" },
    h("td", { class: "num" }, `#${q.position}`),
    h("td", {}, study),
    h("td", {}, q.tenant ?? "–"),
    h("td", { class: "num" }, q.priority === null ? "–" : String(q.priority)),
    h("td", {}, fmtWaiting(q.waiting_since)),
    h("td", { class: "num", title: "slots held / parallelism" },
      `${q.slots_held}/${q.parallelism}`),
    h("td", {}, fmtShape(q.cpus_per_trial, q.gpus_per_trial)));
}

function slotRow(slot, names) {
  let study = "–";
  if (slot.study_id !== null) {
    study = link(`/studies/${slot.study_id}`, `#${slot.study_id} ${names.get(slot.study_id)}`,
      { "data-testid": "slot-study" });
  } else if (slot.state === "busy") {
    study = h("span", { class: "muted" }, "another tenant's study");
  }
  return h("tr",
    { "data-testid": "slot-row", "data-slot-id": slot.slot_id, "data-state": slot.state },
    h("td", { class: "num" }, String(slot.slot_id)),
    h("td", {}, fmtShape(slot.cpus, slot.gpus)),
    h("td", { title: slot.node_id }, h("code", {}, shortId(slot.node_id))),
    h("td", {}, h("span", { class: `badge state-${slot.state === "busy" ? "running" : "pruned"}` },
      slot.state)),
    h("td", {}, study),
    h("td", {}, slot.tenant ?? "–"));
}

// Study names for the slots (the cluster's answer gives only their ids), asked once per study.
class StudyNames {
  constructor(ctx) {
    this.ctx = ctx;
    this.names = new Map();
  }

  learn(queue) {
    for (const q of queue) if (q.study_id !== null) this.names.set(q.study_id, q.name);
  }

  async fetch(ids) {
    const missing = [...new Set(ids)].filter((id) => id !== null && !this.names.has(id));
    await Promise.all(missing.map(async (id) => {
      try {
        const study = await getJSON(`/api/v1/studies/${id}`, { signal: this.ctx.signal });
        this.names.set(id, study.name);
      } catch (err) {
        if (err instanceof AuthError || err.name === "AbortError") throw err;
        this.names.set(id, ""); // deleted, say: the id alone still links to it
      }
    }));
  }

  get(id) {
    return this.names.get(id) ?? "";
  }
}
