"""How the `hpo` CLI prints: rich tables for people, plain `json.dumps` for programs.

Everything here writes; nothing talks to the service, so the commands stay thin.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
errors = Console(stderr=True)
FINISHED = ("complete", "pruned", "failed")
WIDE = 120


def print_json(data: Any) -> None:
    """Bypass rich: its wrapping and markup would break machine parsing."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


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
    table = Table("id", "name", "state", "trials", "best", "created")
    for s in items:
        best = s["best"]["value"] if s["best"] else None
        table.add_row(
            str(s["id"]), escape(s["name"]), s["state"], f"{n_done(s)}/{max_trials(s)}",
            fmt(best), s["created_at"][:19],
        )  # fmt: skip
    console.print(table)


def print_study(study: dict[str, Any]) -> None:
    """`hpo show`: everything GET /studies/{id} says, one labelled row each."""
    reason = f" ({study['state_reason']})" if study.get("state_reason") else ""
    counts = ", ".join(f"{k} {v}" for k, v in study["counts"].items())
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows = [
        ("study", f"{study['id']} '{escape(study['name'])}'"),
        ("state", f"{study['state']}{reason}"),
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


def print_trials(trials: list[dict[str, Any]]) -> None:
    table = _trial_table("trial", "state", "value", "best/epochs", "stop", "secs")
    for t in trials:
        secs = "-" if t["duration_s"] is None else f"{t['duration_s']:.1f}"
        table.add_row(
            str(t["number"]), t["state"], fmt(t["value"]), _epochs(t), t["stop_reason"] or "",
            secs, _params(t),
        )  # fmt: skip
    console.print(table)


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
    table = _trial_table("trial", "value", "best/epochs", "stop")
    for t in trials:
        table.add_row(
            str(t["number"]), fmt(t["value"]), _epochs(t), t["stop_reason"] or "", _params(t)
        )
    console.print(table)


def print_dataset(record: dict[str, Any]) -> None:
    console.print(
        f"dataset {record['id']} '{escape(record['filename'])}': {record['n_rows']} rows, "
        f"{record['n_features']} features, target {escape(record['target'])} ({record['task']})",
        highlight=False,
    )
    console.print(f"use it in a study as  dataset: {{source: uploaded, id: {record['id']}}}")


def _trial_table(*headers: str) -> Table:
    """Short columns never wrap; the params column takes the rest of the width."""
    table = Table()
    for header in headers:
        table.add_column(header, no_wrap=True)
    table.add_column("params", ratio=1, overflow="fold")
    return table


def _epochs(trial: dict[str, Any]) -> str:
    return f"{fmt(trial['best_epoch'])}/{trial['epochs_run']}"


def _params(trial: dict[str, Any], *, one_line: bool = False) -> str:
    """One per line on a narrow console, where a comma list would be folded mid-word."""
    sep = ", " if one_line or console.width >= WIDE else "\n"
    return escape(sep.join(f"{k}={fmt(v)}" for k, v in trial["params"].items()))


def _best_text(best: dict[str, Any] | None) -> str:
    if best is None:
        return "-"
    value, epoch = fmt(best["value"]), best["best_epoch"]
    return f"trial {best['number']}: {value} at epoch {epoch}  {_params(best, one_line=True)}"


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
