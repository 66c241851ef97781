"""What studies name besides their spec's own fields: uploaded data sets (`upload`,
`datasets list`, `datasets delete`) and installed plug-in tasks (`tasks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from api.cli.catalog_tables import print_dataset, print_datasets, print_tasks
from api.cli.options import DEFAULT_URL, AsJson, Token, Url, client_of
from api.cli.output import console, print_json

datasets_app = typer.Typer(help="Uploaded data sets: list, delete (hpo upload adds one).")


@datasets_app.command("list")
def datasets_list(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Your uploaded data sets, with their ids for {source: uploaded, id: ID}."""
    with client_of(url, token) as client:
        items = client.datasets()
    if as_json:
        return print_json(items)
    print_datasets(items)


@datasets_app.command("delete")
def datasets_delete(
    dataset_id: Annotated[str, typer.Argument(help="Data set id.", show_default=False)],
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Delete an uploaded data set (refused while a queued or running study uses it)."""
    with client_of(url, token) as client:
        client.delete_dataset(dataset_id)
    if as_json:
        return print_json({"deleted": dataset_id})
    console.print(f"dataset {escape(dataset_id)} deleted", highlight=False)
    return None


def tasks(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Plug-in training tasks installed on the service: model {kind: plugin, name: NAME}."""
    with client_of(url, token) as client:
        items = client.tasks()
    if as_json:
        return print_json(items)
    print_tasks(items)


def upload(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or NPZ file.")],
    target: Annotated[str, typer.Option(help="Target column (or NPZ array).")] = "target",
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Upload a data set that studies then name as {source: uploaded, id: ID}."""
    with client_of(url, token) as client:
        record = client.upload(file, target=target)
    if as_json:
        return print_json(record)
    print_dataset(record)
