"""The `hpo` command: starts the server, and talks to it through `api.client` only."""

from __future__ import annotations

import itertools
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.markup import escape

from api.cli_output import (
    console,
    print_best,
    print_cluster,
    print_dataset,
    print_error,
    print_json,
    print_studies,
    print_study,
    print_trials,
)
from api.cli_progress import follow
from api.cli_server import app_of, bind_safely, settings_of, wait_healthy
from api.client import ClientError, HpoClient

app = typer.Typer(help="Hyperparameter search for PyTorch models.", no_args_is_help=True)

Url = Annotated[str, typer.Option(envvar="HPO_URL", help="Service address.")]
Token = Annotated[str | None, typer.Option(envvar="HPO_TOKEN", help="API token.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON only, for programs.")]
StudyId = Annotated[int, typer.Argument(help="Study id.", show_default=False)]
DEFAULT_URL = "http://127.0.0.1:8000"
# uvicorn's 5 s default closes idle connections while a busy client's next request is in
# flight, which the client sees as a reset (measured by bench/api_load.py).
KEEP_ALIVE_S = 60


def main() -> None:
    try:
        app()
    except ClientError as exc:
        print_error(str(exc))
        sys.exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HPO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HPO_PORT).")] = None,
    ray_address: Annotated[str | None, typer.Option(help="'auto' or host:port.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
) -> None:
    """Run the API, the study drivers and (unless --ray-address) a local Ray."""
    settings = settings_of(host=host, port=port, ray_address=ray_address, database_url=database_url)
    console.print(
        f"hpo-service on http://{settings.host}:{settings.port}  db={settings.shown_database_url()}"
    )
    from service.runtime import connect_ray

    bind_safely(settings)
    connect_ray(settings)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler found at
    # start: make that a clean exit rather than Ray's crash report.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        app_of(settings), host=settings.host, port=settings.port, log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
    )  # fmt: skip


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Study file, YAML or JSON.")],
    wait: Annotated[bool, typer.Option(help="Show progress until the study ends.")] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Submit a study; with --wait, follow it, print the best trials, exit 1 unless completed."""
    with HpoClient(url, token=token) as client:
        study = client.submit_file(file)
        said = f"study {study['id']} '{escape(study['name'])}' submitted: "
        _announce(client, study, said + f"{url}/api/v1/studies/{study['id']}", wait, as_json)


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


@app.command()
def studies(
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many; 0 for all.", min=0)] = 50,
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """List studies, newest first."""
    with HpoClient(url, token=token) as client:
        items = _take(client.iter_studies(state=state, page_size=_page(limit)), limit)
    if as_json:
        return print_json(items)
    print_studies(items)


@app.command()
def show(study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None,
         as_json: AsJson = False) -> None:  # fmt: skip
    """One study: state, trial counts, progress, best trial, timings, warnings and error."""
    with HpoClient(url, token=token) as client:
        study = client.get(study_id)
    if as_json:
        return print_json(study)
    print_study(study)


@app.command()
def trials(
    study_id: StudyId,
    state: Annotated[str | None, typer.Option(help="Only this trial state.")] = None,
    top: Annotated[int | None, typer.Option(help="The K best complete trials.", min=1)] = None,
    limit: Annotated[int, typer.Option(help="At most this many; 0 for all.", min=0)] = 50,
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """A study's trials by number, or with --top K its K best complete ones, best first."""
    if top is not None:
        state, limit = state or "complete", top
    order = "number" if top is None else "best"
    with HpoClient(url, token=token) as client:
        found = client.iter_trials(study_id, state=state, order=order, page_size=_page(limit))
        items = _take(found, limit)
    if as_json:
        return print_json(items)
    print_trials(items)


@app.command()
def best(study_id: StudyId, k: Annotated[int, typer.Option(help="How many.", min=1)] = 5,
         url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:  # fmt: skip
    """A study's k best trials (the Pareto front for several objectives)."""
    with HpoClient(url, token=token) as client:
        items = client.best(study_id, k=k)
        if as_json:
            return print_json(items)
        print_best(client.get(study_id), items)


@app.command()
def cluster(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Nodes, slots by shape and state, each tenant's usage against its share and quota, and
    the studies waiting for a slot, in the order they will get one."""
    with HpoClient(url, token=token) as client:
        found = client.cluster()
    if as_json:
        return print_json(found)
    print_cluster(found)


@app.command()
def stop(study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None,
         as_json: AsJson = False) -> None:  # fmt: skip
    """Stop a queued or running study; its running trials end as cancelled."""
    with HpoClient(url, token=token) as client:
        study = client.stop(study_id)
    if as_json:
        return print_json(study)
    console.print(f"study {study_id} stopping (now {study['state']})", highlight=False)


@app.command()
def pause(study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None,
          as_json: AsJson = False) -> None:  # fmt: skip
    """Pause a study: trials stop at their next epoch with a checkpoint; `resume` continues."""
    with HpoClient(url, token=token) as client:
        study = client.pause(study_id)
    if as_json:
        return print_json(study)
    console.print(f"study {study_id} pausing (now {study['state']})", highlight=False)


@app.command()
def resume(
    study_id: StudyId,
    max_trials: Annotated[int | None, typer.Option(help="New trial budget.", min=1)] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until the study ends.")] = False,
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Continue a paused study from its checkpoints, or run a finished one further."""
    budget = {} if max_trials is None else {"max_trials": max_trials}
    with HpoClient(url, token=token) as client:
        study = client.resume(study_id, **budget)
        said = f"study {study_id} resumed: budget {study['spec']['budget']['max_trials']} trials"
        _announce(client, study, said, wait, as_json)


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or NPZ file.")],
    target: Annotated[str, typer.Option(help="Target column (or NPZ array).")] = "target",
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Upload a data set that studies then name as {source: uploaded, id: ID}."""
    with HpoClient(url, token=token) as client:
        record = client.upload(file, target=target)
    if as_json:
        return print_json(record)
    print_dataset(record)


@app.command()
def demo(
    file: Annotated[Path, typer.Argument(help="Study file.")] = Path("examples/digits.yaml"),
    port: Annotated[int, typer.Option(help="Port for the demo server.")] = 8000,
    keep_serving: Annotated[bool, typer.Option(help="Keep serving after the study.")] = False,
) -> None:
    """Start the service, submit an example study over HTTP, follow it, print the best trials."""
    from service.runtime import connect_ray, disconnect_ray

    settings = settings_of(port=port)
    console.print(f"starting hpo-service ({settings.shown_database_url()}, local Ray) ...")
    connect_ray(settings)
    config = uvicorn.Config(
        app_of(settings), host=settings.host, port=port, log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{settings.host}:{port}"
    try:
        with HpoClient(url) as client:
            wait_healthy(client, server)
            study = client.submit_file(file)
            console.print(f"submitted study {study['id']} '{study['name']}' over HTTP")
            study = follow(client, study, console=console, quiet=False)
            print_best(study, client.best(study["id"], k=5))
        console.print(f"API: {url}/api/v1/studies/{study['id']}   docs: {url}/docs")
        if keep_serving:
            console.print("serving; press Ctrl+C to stop")
            thread.join()
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        disconnect_ray()
    if study["state"] != "completed":
        raise typer.Exit(1)


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


def _page(limit: int) -> int:
    """Pages no bigger than asked for, and never over the API's 1000."""
    return min(limit, 1000) if limit > 0 else 1000


def _take(items: Iterator[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return list(itertools.islice(items, limit if limit > 0 else None))


if __name__ == "__main__":
    main()
