"""The commands that change a study: `submit`, `stop`, `pause`, `resume` and `delete`;
`submit --wait` and `resume --wait` follow it to its end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from api.cli.options import DEFAULT_URL, AsJson, StudyId, Token, Url, client_of
from api.cli.output import console, print_error, print_json
from api.cli.progress import follow
from api.cli.study_tables import print_best
from api.client import ClientError, HpoClient


def submit(
    file: Annotated[Path, typer.Argument(help="Study file, YAML or JSON.")],
    wait: Annotated[bool, typer.Option(help="Show progress until the study ends.")] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Submit a study; with --wait, follow it, print the best trials, exit 1 unless completed."""
    with client_of(url, token) as client:
        study = client.submit_file(file)
        said = f"study {study['id']} '{escape(study['name'])}' submitted: "
        _announce(client, study, said + f"{client.url}/api/v1/studies/{study['id']}", wait, as_json)


def _announce(
    client: HpoClient, study: dict[str, Any], said: str, wait: bool, as_json: bool
) -> None:
    """Say what was done (or print the study as JSON), then follow it with --wait."""
    if not as_json:
        console.print(said, highlight=False)
    if wait:
        _wait_and_report(client, study, as_json=as_json)
    elif as_json:
        print_json(study)


def stop(
    study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False
) -> None:
    """Stop a queued or running study; its running trials end as cancelled."""
    with client_of(url, token) as client:
        study = client.stop(study_id)
    if as_json:
        return print_json(study)
    console.print(f"study {study_id} stopping (now {study['state']})", highlight=False)


def pause(
    study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False
) -> None:
    """Pause a study: trials stop at their next epoch with a checkpoint; `resume` continues."""
    with client_of(url, token) as client:
        study = client.pause(study_id)
    if as_json:
        return print_json(study)
    console.print(f"study {study_id} pausing (now {study['state']})", highlight=False)


def resume(
    study_id: StudyId,
    max_trials: Annotated[int | None, typer.Option(help="New trial budget.", min=1)] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until the study ends.")] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Continue a paused study from its checkpoints, or run a finished one further."""
    budget = {} if max_trials is None else {"max_trials": max_trials}
    with client_of(url, token) as client:
        study = client.resume(study_id, **budget)
        said = f"study {study_id} resumed: budget {study['spec']['budget']['max_trials']} trials"
        _announce(client, study, said, wait, as_json)


def delete(
    study_id: StudyId,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask; needed without a terminal.")
    ] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Delete a study that is not queued or running, with its trials, curves and checkpoints."""
    if not yes:
        if not sys.stdin.isatty():
            raise ClientError(f"deleting study {study_id} needs --yes without a terminal")
        typer.confirm(f"delete study {study_id} and everything it recorded?", abort=True)
    with client_of(url, token) as client:
        client.delete(study_id)
    if as_json:
        return print_json({"deleted": study_id})
    console.print(f"study {study_id} deleted", highlight=False)
    return None


def _wait_and_report(client: HpoClient, study: dict[str, Any], *, as_json: bool) -> None:
    """Follow to the end, print the best trials; exit 1 with one line unless it completed."""
    try:
        study = follow(client, study, console=console, quiet=as_json)
    except KeyboardInterrupt:
        print_error(f"interrupted; study {study['id']} goes on (hpo stop {study['id']} stops it)")
        raise typer.Exit(130) from None
    trials = client.best(study["id"], k=5)
    if as_json:
        print_json({"study": study, "best": trials})
    else:
        print_best(study, trials)
    if study["state"] != "completed":
        reason = f" ({study['state_reason']})" if study.get("state_reason") else ""
        error = f": {study['error']}" if study.get("error") else ""
        print_error(f"study {study['id']} {study['state']}{reason}{error}")
        raise typer.Exit(1)
