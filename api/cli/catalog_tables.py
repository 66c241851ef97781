"""`hpo upload`, `hpo datasets list` and `hpo tasks`: what studies may name besides their
spec's own fields."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from api.cli.output import columns, console, fmt, when


def print_dataset(record: dict[str, Any]) -> None:
    console.print(
        f"dataset {record['id']} '{escape(record['filename'])}': {record['n_rows']} rows, "
        f"{record['n_features']} features, target {escape(record['target'])} ({record['task']})",
        highlight=False,
    )
    console.print(f"use it in a study as  dataset: {{source: uploaded, id: {record['id']}}}")


def print_datasets(items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("no uploaded data sets")
        return
    table = columns(
        "id",
        "file",
        "target",
        "task",
        "rows",
        "features",
        "bytes",
        "uploaded",
        wrapping=("file", "uploaded"),
    )
    for d in items:
        table.add_row(
            d["id"],
            escape(d["filename"]),
            escape(d["target"]),
            d["task"],
            str(d["n_rows"]),
            str(d["n_features"]),
            str(d["size_bytes"]),
            when(d["created_at"]),
        )
    console.print(table)


def print_tasks(items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("no plug-in tasks installed (entry point group hpo.tasks)")
        return
    table = columns(
        "name",
        "package",
        "task",
        "data",
        "hyperparameters",
        "description",
        wrapping=("hyperparameters", "description"),
    )
    for t in items:
        knobs = ", ".join(f"{k}={fmt(v)}" for k, v in t["hyperparameters"].items()) or "-"
        about = t["error"] and f"failed to load: {t['error']}" or t["description"]
        table.add_row(
            escape(t["name"]),
            escape(f"{t['package']} {t['version']}"),
            t["task"] or "-",
            "yes" if t["provides_data"] else "no",
            escape(knobs),
            escape(about or ""),
        )
    console.print(table)
