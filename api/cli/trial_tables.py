"""`hpo trials` and the trial tables of `hpo best`: a row a trial, its params beside it on
a wide console and below it on a narrow one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from api.cli.output import WIDE, columns, console, fmt

# A column added to a table widens it by its two spaces of padding and one border.
PARAMS_COLUMN_EDGES = 3


def print_trials(trials: list[dict[str, Any]]) -> None:
    """A row a trial, every column kept at any width; on a narrow console the params go to
    a table of their own below (trial, then one `name=value` a line), since beside seven
    short columns they would have no room."""
    headers = ["trial", "state", "value", "epochs", "stop", "secs", "device"]
    rows = [_trial_row(t) for t in trials]
    if console.width >= WIDE:
        console.print(trial_table(headers, rows, trials))
        return
    table = columns(*headers)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if trials:
        console.print(trial_table(["trial"], [[str(t["number"])] for t in trials], trials))


def _trial_row(trial: dict[str, Any]) -> list[str]:
    secs = "-" if trial["duration_s"] is None else f"{trial['duration_s']:.1f}"
    return [
        str(trial["number"]),
        trial["state"],
        fmt(trial["value"]),
        epochs_text(trial),
        trial["stop_reason"] or "",
        secs,
        trial.get("device") or "-",
    ]


def trial_table(
    headers: Sequence[str], rows: list[list[str]], trials: list[dict[str, Any]]
) -> Table:
    """Short columns never wrap; the params column takes the rest of the width, one
    `name=value` a line on a narrow console."""
    table = columns(*headers)
    for row in rows:
        table.add_row(*row)
    room = console.width - console.measure(table).maximum - PARAMS_COLUMN_EDGES
    table = columns(*headers, "params", wrapping=("params",))
    for row, trial in zip(rows, trials, strict=True):
        table.add_row(*row, params_text(trial, room=room))
    return table


def epochs_text(trial: dict[str, Any]) -> str:
    """Its best epoch of the epochs it ran: `12/15`."""
    return f"{fmt(trial['best_epoch'])}/{trial['epochs_run']}"


def params_text(trial: dict[str, Any], *, room: int | None = None) -> str:
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
