"""`hpo studies`, `hpo show` and the end of a followed study: what a study says, as rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from api.cli.output import columns, console, fmt, waited, when
from api.cli.trial_tables import epochs_text, params_text, trial_table
from api.client import IDLE_STATES

FINISHED = ("complete", "pruned", "failed")


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
    table = columns(
        "id",
        "name",
        "state",
        "slots",
        "trials",
        "best",
        "created",
        wrapping=("name", "slots", "created"),
    )
    for s in items:
        best = s["best"]["value"] if s["best"] else None
        table.add_row(
            str(s["id"]),
            escape(s["name"]),
            state_text(s),
            _slots_text(s),
            f"{n_done(s)}/{max_trials(s)}",
            fmt(best),
            when(s["created_at"]),
        )
    console.print(table)


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
        ("created", when(study["created_at"])),
        ("started", when(study["started_at"])),
        ("finished", when(study["finished_at"])),
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
    rows = [
        [str(t["number"]), fmt(t["value"]), epochs_text(t), t["stop_reason"] or ""] for t in trials
    ]
    console.print(trial_table(("trial", "value", "epochs", "stop"), rows, trials))


def _best_text(best: dict[str, Any] | None) -> str:
    if best is None:
        return "-"
    value, epoch = fmt(best["value"]), best["best_epoch"]
    return f"trial {best['number']}: {value} at epoch {epoch}  {params_text(best)}"


def _duration(study: dict[str, Any]) -> str:
    if study["started_at"] is None:
        return "-"
    end = study["finished_at"]
    started = datetime.fromisoformat(study["started_at"])
    finished = datetime.fromisoformat(end) if end else datetime.now(started.tzinfo)
    suffix = "" if end else " so far"
    return f"{(finished - started).total_seconds():.1f} s{suffix}"
