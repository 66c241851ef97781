"""The `hpo` command: starts the server, and talks to it through `api.client` only.

Each command lives with its kind (`serving`, `lifecycle`, `reads`, `catalog`); this module
builds the app from them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from api.cli import catalog, lifecycle, reads, serving
from api.cli.output import print_error
from api.client import ClientError

# In the order `hpo --help` lists them; typer lists the `datasets` group after them all.
COMMANDS: tuple[Callable[..., None], ...] = (
    serving.serve,
    lifecycle.submit,
    reads.studies,
    reads.show,
    reads.trials,
    reads.best,
    reads.cluster,
    lifecycle.stop,
    lifecycle.pause,
    lifecycle.resume,
    lifecycle.delete,
    catalog.tasks,
    catalog.upload,
    serving.demo,
)

app = typer.Typer(help="Hyperparameter search for PyTorch models.", no_args_is_help=True)
for command in COMMANDS:
    app.command()(command)
app.add_typer(catalog.datasets_app, name="datasets")


def main() -> None:
    try:
        app()
    except ClientError as exc:
        print_error(str(exc))
        sys.exit(1)
