"""`hpo cluster`: nodes, slots by shape and state, tenants against share and quota, and the
queue in the order it gets slots."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.markup import escape
from rich.table import Table

from api.cli.output import columns, console, fmt, waited


def print_cluster(cluster: dict[str, Any]) -> None:
    """`hpo cluster`: nodes, slots by shape and state, tenants against share and quota, and
    the queue in the order it gets slots."""
    console.print(_nodes_table(cluster))
    console.print(_slots_table(cluster["slots"]))
    console.print(_tenants_table(cluster))
    if cluster["queue"]:
        console.print(_queue_table(cluster["queue"]))
    else:
        console.print("queue: empty (no study waits for a slot)", highlight=False)


def _nodes_table(cluster: dict[str, Any]) -> Table:
    headers = ("node", "alive", "CPUs used", "GPUs used", "slots busy/idle")
    table = columns(*headers, wrapping=headers, title="nodes")
    for node in cluster["nodes"]:
        states = Counter(s["state"] for s in cluster["slots"] if s["node_id"] == node["node_id"])
        reserved = " (reserved)" if node["node_id"] == cluster.get("reserved_node") else ""
        table.add_row(
            f"{node['node_id'][:12]}{reserved}",
            "yes" if node["alive"] else "[red]no[/red]",
            f"{node['cpus_used']:g}/{node['cpus']:g}",
            f"{node['gpus_used']:g}/{node['gpus']:g}",
            f"{states['busy']}/{states['idle']}",
        )
    return table


def _slots_table(slots: list[dict[str, Any]]) -> Table:
    """One row per shape: busy and idle counts, and which studies the busy ones train."""
    table = columns(
        "shape", "busy", "idle", "studies", wrapping=("shape", "studies"), title="slots"
    )
    for shape in sorted({(s["cpus"], s["gpus"]) for s in slots}):
        same = [s for s in slots if (s["cpus"], s["gpus"]) == shape]
        busy = [s for s in same if s["state"] == "busy"]
        table.add_row(
            shape_text(*shape), str(len(busy)), str(len(same) - len(busy)), _slot_studies(busy)
        )
    return table


def _slot_studies(busy: list[dict[str, Any]]) -> str:
    """The studies the slots train, `#3 x2`; another tenant's are counted, not named."""
    named = Counter(s["study_id"] for s in busy if s["study_id"] is not None)
    parts = [f"#{study_id} x{n}" if n > 1 else f"#{study_id}" for study_id, n in named.items()]
    unnamed = len(busy) - sum(named.values())
    if unnamed:
        parts.append(f"{unnamed} of other tenants")
    return ", ".join(parts) or "-"


def _tenants_table(cluster: dict[str, Any]) -> Table:
    table = columns(
        "tenant",
        "weight",
        "share",
        "dominant",
        "held",
        "busy slots",
        "waiting",
        "quota",
        wrapping=("held", "busy slots", "quota"),
        title="tenants",
    )
    rows = [(escape(t["tenant"]), t) for t in cluster["tenants"]]
    if cluster.get("others"):
        rows.append(("[dim]other tenants[/dim]", cluster["others"]))
    for name, t in rows:
        table.add_row(
            name,
            f"{t['weight']:g}",
            f"{t['share']:.0%}",
            f"{t['dominant_share']:.0%}",
            shape_text(t["cpus"], t["gpus"]),
            str(t["slots"]),
            str(t["studies_waiting"]),
            _quota_text(t),
        )
    return table


def _quota_text(tenant: dict[str, Any]) -> str:
    caps = [
        f"{tenant[key]:g} {unit}"
        for key, unit in (("quota_cpus", "CPUs"), ("quota_gpus", "GPUs"))
        if tenant[key] is not None
    ]
    return ", ".join(caps) or "-"


def _queue_table(queue: list[dict[str, Any]]) -> Table:
    table = columns(
        "#",
        "study",
        "tenant",
        "priority",
        "waiting since",
        "slots",
        "shape",
        wrapping=("study", "waiting since", "shape"),
        title="queue",
    )
    for q in queue:
        study = (
            f"{q['study_id']} '{escape(q['name'] or '')}'"
            if q["study_id"] is not None
            else "another tenant's study"
        )
        table.add_row(
            str(q["position"]),
            study,
            escape(q["tenant"] or "-"),
            fmt(q["priority"]),
            waited(q["waiting_since"]),
            f"{q['slots_held']}/{q['parallelism']}",
            shape_text(q["cpus_per_trial"], q["gpus_per_trial"]),
        )
    return table


def shape_text(cpus: float, gpus: float) -> str:
    """A trial's resources as people say them: `2 CPUs`, `1 CPU, 1 GPU`."""
    parts = [f"{cpus:g} CPU{'' if cpus == 1 else 's'}"]
    if gpus:
        parts.append(f"{gpus:g} GPU{'' if gpus == 1 else 's'}")
    return ", ".join(parts)
