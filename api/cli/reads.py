"""The commands that only read: `studies`, `show`, `trials`, `best` and `cluster`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from api.cli.cluster_tables import print_cluster
from api.cli.options import DEFAULT_URL, AsJson, StudyId, Token, Url, client_of
from api.cli.output import console, print_json, print_plain
from api.cli.study_tables import print_best, print_studies, print_study
from api.cli.trial_tables import print_trials
from api.client import ClientError


def studies(
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many; 0 for all.", min=0)] = 50,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List studies, newest first."""
    with client_of(url, token) as client:
        items = _take(client.iter_studies(state=state, page_size=_page(limit)), limit)
    if as_json:
        return print_json(items)
    print_studies(items)


def show(
    study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False
) -> None:
    """One study: state, trial counts, progress, best trial, timings, warnings and error."""
    with client_of(url, token) as client:
        study = client.get(study_id)
    if as_json:
        return print_json(study)
    print_study(study)


def trials(
    study_id: StudyId,
    state: Annotated[str | None, typer.Option(help="Only this trial state.")] = None,
    top: Annotated[int | None, typer.Option(help="The K best complete trials.", min=1)] = None,
    limit: Annotated[int, typer.Option(help="At most this many; 0 for all.", min=0)] = 50,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """A study's trials by number, or with --top K its K best complete ones, best first."""
    if top is not None:
        state, limit = state or "complete", top
    order = "number" if top is None else "best"
    with client_of(url, token) as client:
        found = client.iter_trials(study_id, state=state, order=order, page_size=_page(limit))
        items = _take(found, limit)
    if as_json:
        return print_json(items)
    print_trials(items)


def best(
    study_id: StudyId,
    k: Annotated[int, typer.Option(help="How many.", min=1)] = 5,
    spec: Annotated[
        bool, typer.Option("--spec", help="Print the replay spec (PBT) that `hpo submit` takes.")
    ] = False,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Save the best trial's checkpoint (weights, model) to this file."),
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """A study's k best trials (the Pareto front for several objectives); with --spec the
    best PBT member as a plain spec, with --checkpoint its weights to a file."""
    if spec and checkpoint is not None:
        raise ClientError("give --spec or --checkpoint, not both")
    with client_of(url, token) as client:
        if spec:
            replay = client.best_spec(study_id)
            if as_json:
                return print_json(replay)
            return print_plain(yaml.safe_dump(replay, sort_keys=False).rstrip("\n"))
        if checkpoint is not None:
            number = client.best_checkpoint(study_id, checkpoint)
            if as_json:
                return print_json({"study": study_id, "trial": number, "path": str(checkpoint)})
            console.print(
                f"saved trial {number}'s checkpoint of study {study_id} to "
                f"{escape(str(checkpoint))} (load it with torch.load(path, weights_only=True))",
                highlight=False,
            )
            return None
        items = client.best(study_id, k=k)
        if as_json:
            return print_json(items)
        print_best(client.get(study_id), items)
        return None


def cluster(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Nodes, slots by shape and state, each tenant's usage against its share and quota, and
    the studies waiting for a slot, in the order they will get one."""
    with client_of(url, token) as client:
        found = client.cluster()
    if as_json:
        return print_json(found)
    print_cluster(found)


def _page(limit: int) -> int:
    """Pages no bigger than asked for, and never over the API's 1000."""
    return min(limit, 1000) if limit > 0 else 1000


def _take(items: Iterator[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return list(itertools.islice(items, limit if limit > 0 else None))
