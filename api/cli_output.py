"""How the `hpo` CLI prints: rich tables for people, plain `json.dumps` for programs.

Everything here writes; nothing talks to the service, so the commands stay thin.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.client import IDLE_STATES

console = Console()
errors = Console(stderr=True)
FINISHED = ("complete", "pruned", "failed")
WIDE = 120
# A column added to a table widens it by its two spaces of padding and one border.
PARAMS_COLUMN_EDGES = 3


def print_json(data: Any) -> None:
    """Bypass rich: its wrapping and markup would break machine parsing."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_plain(text: str) -> None:
    """Text as it is (a YAML document), for a file or a pipe: no markup, no wrapping."""
    sys.stdout.write(text + "\n")


def print_error(message: str) -> None:
    """One line on stderr, whatever the message's own line breaks, so scripts can grep it."""
    text = " ".join(message.split())
    errors.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def n_done(study: dict[str, Any]) -> int:
    return sum(study["counts"].get(state, 0) for state in FINISHED)


def max_trials(study: dict[str, Any]) -> int:
    total: int = study["spec"]["budget"]["max_trials"]
    return total


def objective_text(spec: dict[str, Any]) -> str:
    """One objective or several (a Pareto study), as `metric (direction)`."""
    objectives = spec["objective"] if isinstance(spec["objective"], list) else [spec["objective"]]
    return ", ".join(f"{o['metric']} ({o['direction']})" for o in objectives)


def print_studies(items: list[dict[str, Any]]) -> None:
    table = _columns(
        "id", "name", "state", "slots", "trials", "best", "created",
        wrapping=("name", "slots", "created"),
    )  # fmt: skip
    for s in items:
        best = s["best"]["value"] if s["best"] else None
        table.add_row(
            str(s["id"]), escape(s["name"]), state_text(s), _slots_text(s),
            f"{n_done(s)}/{max_trials(s)}", fmt(best), _when(s["created_at"]),
        )  # fmt: skip
    console.print(table)


def _columns(*headers: str, wrapping: Collection[str] = (), title: str | None = None) -> Table:
    """A table that never splits a word on a narrow console: the `wrapping` columns (cells
    of several words) break between words and are narrowed first; every other column keeps
    its cells on one line. Past that a word is cut short with an ellipsis, never folded."""
    table = Table(title=title, title_justify="left", title_style="bold")
    for header in headers:
        table.add_column(header, no_wrap=header not in wrapping, overflow="ellipsis")
    return table


def state_text(study: dict[str, Any]) -> str:
    """The state, with its place in the queue while it waits for its first slot: `queued #2`."""
    position = study.get("queue_position")
    if study["state"] == "queued" and position is not None:
        return f"queued #{position}"
    return str(study["state"])


def _slots_text(study: dict[str, Any]) -> str:
    """Slots held of the parallelism while active; a running study that waits for more
    slots says its place, too."""
    if study["state"] in IDLE_STATES:
        return "-"
    held = f"{study.get('slots_held', 0)}/{study['spec']['budget']['parallelism']}"
    position = study.get("queue_position")
    if study["state"] != "queued" and position is not None:
        return f"{held}, #{position} for more"
    return held


def print_study(study: dict[str, Any]) -> None:
    """`hpo show`: everything GET /studies/{id} says, one labelled row each."""
    reason = f" ({study['state_reason']})" if study.get("state_reason") else ""
    counts = ", ".join(f"{k} {v}" for k, v in study["counts"].items())
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows = [
        ("study", f"{study['id']} '{escape(study['name'])}'"),
        ("state", f"{state_text(study)}{reason}"),
        ("priority", str(study.get("priority", 0))),
        ("slots", _slots_held_text(study)),
        *_queue_rows(study),
        ("optuna study", escape(study["optuna_study_name"])),
        ("objective", objective_text(study["spec"])),
        ("progress", f"{n_done(study)}/{max_trials(study)} trials"),
        ("trials", counts),
        ("best", _best_text(study["best"])),
        ("created", _when(study["created_at"])),
        ("started", _when(study["started_at"])),
        ("finished", _when(study["finished_at"])),
        ("duration", _duration(study)),
        *(("warning", escape(w)) for w in study.get("warnings", [])),
    ]
    if study.get("error"):
        rows.append(("error", f"[red]{escape(study['error'])}[/red]"))
    for label, value in rows:
        grid.add_row(label, value)
    console.print(grid)


def _slots_held_text(study: dict[str, Any]) -> str:
    parallelism = study["spec"]["budget"]["parallelism"]
    return f"{study.get('slots_held', 0)} held of parallelism {parallelism}"


def _queue_rows(study: dict[str, Any]) -> list[tuple[str, str]]:
    """`queue` and `waiting since` while the study waits for a slot; none otherwise."""
    position = study.get("queue_position")
    if position is None:
        return []
    return [("queue", f"#{position}"), ("waiting since", waited(study.get("waiting_since")))]


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
    table = _columns(*headers, wrapping=headers, title="nodes")
    for node in cluster["nodes"]:
        states = Counter(s["state"] for s in cluster["slots"] if s["node_id"] == node["node_id"])
        reserved = " (reserved)" if node["node_id"] == cluster.get("reserved_node") else ""
        table.add_row(
            f"{node['node_id'][:12]}{reserved}", "yes" if node["alive"] else "[red]no[/red]",
            f"{node['cpus_used']:g}/{node['cpus']:g}", f"{node['gpus_used']:g}/{node['gpus']:g}",
            f"{states['busy']}/{states['idle']}",
        )  # fmt: skip
    return table


def _slots_table(slots: list[dict[str, Any]]) -> Table:
    """One row per shape: busy and idle counts, and which studies the busy ones train."""
    table = _columns(
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
    table = _columns(
        "tenant", "weight", "share", "dominant", "held", "busy slots", "waiting", "quota",
        wrapping=("held", "busy slots", "quota"), title="tenants",
    )  # fmt: skip
    rows = [(escape(t["tenant"]), t) for t in cluster["tenants"]]
    if cluster.get("others"):
        rows.append(("[dim]other tenants[/dim]", cluster["others"]))
    for name, t in rows:
        table.add_row(
            name, f"{t['weight']:g}", f"{t['share']:.0%}", f"{t['dominant_share']:.0%}",
            shape_text(t["cpus"], t["gpus"]), str(t["slots"]), str(t["studies_waiting"]),
            _quota_text(t),
        )  # fmt: skip
    return table


def _quota_text(tenant: dict[str, Any]) -> str:
    caps = [
        f"{tenant[key]:g} {unit}"
        for key, unit in (("quota_cpus", "CPUs"), ("quota_gpus", "GPUs"))
        if tenant[key] is not None
    ]
    return ", ".join(caps) or "-"


def _queue_table(queue: list[dict[str, Any]]) -> Table:
    table = _columns(
        "#", "study", "tenant", "priority", "waiting since", "slots", "shape",
        wrapping=("study", "waiting since", "shape"), title="queue",
    )  # fmt: skip
    for q in queue:
        study = (
            f"{q['study_id']} '{escape(q['name'] or '')}'"
            if q["study_id"] is not None
            else "another tenant's study"
        )
        table.add_row(
            str(q["position"]), study, escape(q["tenant"] or "-"), fmt(q["priority"]),
            waited(q["waiting_since"]), f"{q['slots_held']}/{q['parallelism']}",
            shape_text(q["cpus_per_trial"], q["gpus_per_trial"]),
        )  # fmt: skip
    return table


def shape_text(cpus: float, gpus: float) -> str:
    """A trial's resources as people say them: `2 CPUs`, `1 CPU, 1 GPU`."""
    parts = [f"{cpus:g} CPU{'' if cpus == 1 else 's'}"]
    if gpus:
        parts.append(f"{gpus:g} GPU{'' if gpus == 1 else 's'}")
    return ", ".join(parts)


def waited(stamp: str | None) -> str:
    """When a wait began (UTC, like every time printed here), and how long ago."""
    if stamp is None:
        return "-"
    since = datetime.fromisoformat(stamp)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    ago = max((datetime.now(UTC) - since).total_seconds(), 0.0)
    return f"{_when(stamp)} ({_span(ago)} ago)"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def print_trials(trials: list[dict[str, Any]]) -> None:
    """A row a trial, every column kept at any width; on a narrow console the params go to
    a table of their own below (trial, then one `name=value` a line), since beside seven
    short columns they would have no room."""
    headers = ["trial", "state", "value", "epochs", "stop", "secs", "device"]
    rows = [_trial_row(t) for t in trials]
    if console.width >= WIDE:
        console.print(_trial_table(headers, rows, trials))
        return
    table = _columns(*headers)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if trials:
        console.print(_trial_table(["trial"], [[str(t["number"])] for t in trials], trials))


def _trial_row(trial: dict[str, Any]) -> list[str]:
    secs = "-" if trial["duration_s"] is None else f"{trial['duration_s']:.1f}"
    return [str(trial["number"]), trial["state"], fmt(trial["value"]), _epochs(trial),
            trial["stop_reason"] or "", secs, trial.get("device") or "-"]  # fmt: skip


def print_best(study: dict[str, Any], trials: list[dict[str, Any]]) -> None:
    """The end of `submit --wait`: how the study ended, then its best trials."""
    reason = f" ({study['state_reason']})" if study.get("state_reason") else ""
    console.print(
        f"study {study['id']} {study['state']}{reason}; objective {objective_text(study['spec'])}",
        highlight=False,
    )
    if not trials:
        console.print("no complete trials")
        return
    rows = [[str(t["number"]), fmt(t["value"]), _epochs(t), t["stop_reason"] or ""] for t in trials]
    console.print(_trial_table(("trial", "value", "epochs", "stop"), rows, trials))


def print_dataset(record: dict[str, Any]) -> None:
    console.print(
        f"dataset {record['id']} '{escape(record['filename'])}': {record['n_rows']} rows, "
        f"{record['n_features']} features, target {escape(record['target'])} ({record['task']})",
        highlight=False,
    )
    console.print(f"use it in a study as  dataset: {{source: uploaded, id: {record['id']}}}")


def _trial_table(
    headers: Sequence[str], rows: list[list[str]], trials: list[dict[str, Any]]
) -> Table:
    """Short columns never wrap; the params column takes the rest of the width, one
    `name=value` a line on a narrow console."""
    table = _columns(*headers)
    for row in rows:
        table.add_row(*row)
    room = console.width - console.measure(table).maximum - PARAMS_COLUMN_EDGES
    table = _columns(*headers, "params", wrapping=("params",))
    for row, trial in zip(rows, trials, strict=True):
        table.add_row(*row, _params(trial, room=room))
    return table


def _epochs(trial: dict[str, Any]) -> str:
    """Its best epoch of the epochs it ran: `12/15`."""
    return f"{fmt(trial['best_epoch'])}/{trial['epochs_run']}"


def _params(trial: dict[str, Any], *, room: int | None = None) -> str:
    """`name=value` pairs: a comma list on a wide console (or without `room`, where it wraps
    between pairs); else one a line, with a value moved under its name where the pair is
    wider than `room`, since a folded column would split the name mid-word."""
    pairs = [f"{k}={fmt(v)}" for k, v in trial["params"].items()]
    if room is None or console.width >= WIDE:
        return escape(", ".join(pairs))
    return escape("\n".join(_fit_pair(pair, room) for pair in pairs))


def _fit_pair(pair: str, room: int) -> str:
    if len(pair) <= room:
        return pair
    name, value = pair.split("=", 1)
    return f"{name}=\n  {value}"


def _best_text(best: dict[str, Any] | None) -> str:
    if best is None:
        return "-"
    value, epoch = fmt(best["value"]), best["best_epoch"]
    return f"trial {best['number']}: {value} at epoch {epoch}  {_params(best)}"


def _when(stamp: str | None) -> str:
    return "-" if stamp is None else stamp[:19].replace("T", " ")


def _duration(study: dict[str, Any]) -> str:
    if study["started_at"] is None:
        return "-"
    end = study["finished_at"]
    started = datetime.fromisoformat(study["started_at"])
    finished = datetime.fromisoformat(end) if end else datetime.now(started.tzinfo)
    suffix = "" if end else " so far"
    return f"{(finished - started).total_seconds():.1f} s{suffix}"


def print_datasets(items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("no uploaded data sets")
        return
    table = _columns(
        "id", "file", "target", "task", "rows", "features", "bytes", "uploaded",
        wrapping=("file", "uploaded"),
    )  # fmt: skip
    for d in items:
        table.add_row(
            d["id"], escape(d["filename"]), escape(d["target"]), d["task"], str(d["n_rows"]),
            str(d["n_features"]), str(d["size_bytes"]), _when(d["created_at"]),
        )  # fmt: skip
    console.print(table)


def print_tasks(items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("no plug-in tasks installed (entry point group hpo.tasks)")
        return
    table = _columns(
        "name", "package", "task", "data", "hyperparameters", "description",
        wrapping=("hyperparameters", "description"),
    )  # fmt: skip
    for t in items:
        knobs = ", ".join(f"{k}={fmt(v)}" for k, v in t["hyperparameters"].items()) or "-"
        about = t["error"] and f"failed to load: {t['error']}" or t["description"]
        table.add_row(
            escape(t["name"]), escape(f"{t['package']} {t['version']}"), t["task"] or "-",
            "yes" if t["provides_data"] else "no", escape(knobs), escape(about or ""),
        )  # fmt: skip
    console.print(table)
