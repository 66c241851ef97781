"""The `hpo` command: starts the server, and talks to it through `api.client` only."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
import yaml
from rich.markup import escape

from api.cli_output import (
    console,
    print_best,
    print_cluster,
    print_dataset,
    print_datasets,
    print_error,
    print_json,
    print_plain,
    print_studies,
    print_study,
    print_tasks,
    print_trials,
)
from api.cli_progress import follow
from api.cli_server import app_of, bind_or_exit, bind_safely, settings_of, wait_healthy
from api.client import ClientError, HpoClient

app = typer.Typer(help="Hyperparameter search for PyTorch models.", no_args_is_help=True)

Url = Annotated[
    str | None,
    typer.Option(
        envvar="HPO_URL", show_default=False,
        help="Service address (default http://127.0.0.1:$HPO_PORT; HPO_PORT 8000 when unset).",
    ),
]  # fmt: skip
Token = Annotated[str | None, typer.Option(envvar="HPO_TOKEN", help="API token.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON only, for programs.")]
StudyId = Annotated[int, typer.Argument(help="Study id.", show_default=False)]
DEFAULT_URL = None
# uvicorn's 5 s default closes idle connections while a busy client's next request is in
# flight, which the client sees as a reset (measured by bench/api_load.py).
KEEP_ALIVE_S = 60


def main() -> None:
    try:
        app()
    except ClientError as exc:
        print_error(str(exc))
        sys.exit(1)


def service_url(url: str | None) -> str:
    """--url or HPO_URL; else the local service on HPO_PORT, the port `hpo serve` and
    `hpo demo` bind by default, so one setting names the port for all of them."""
    if url:
        return url
    port = os.environ.get("HPO_PORT", "8000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ClientError(f"HPO_PORT must be a port number (1-65535), got {port!r}")
    return f"http://127.0.0.1:{port}"


def client_of(url: str | None, token: str | None) -> HpoClient:
    return HpoClient(service_url(url), token=token)


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
    sock = bind_or_exit(settings.host, settings.port)
    connect_ray(settings)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler found at
    # start: make that a clean exit rather than Ray's crash report.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = uvicorn.Config(app_of(settings), log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)
    uvicorn.Server(config).run(sockets=[sock])


@app.command()
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


@app.command()
def studies(
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many; 0 for all.", min=0)] = 50,
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """List studies, newest first."""
    with client_of(url, token) as client:
        items = _take(client.iter_studies(state=state, page_size=_page(limit)), limit)
    if as_json:
        return print_json(items)
    print_studies(items)


@app.command()
def show(study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None,
         as_json: AsJson = False) -> None:  # fmt: skip
    """One study: state, trial counts, progress, best trial, timings, warnings and error."""
    with client_of(url, token) as client:
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
    with client_of(url, token) as client:
        found = client.iter_trials(study_id, state=state, order=order, page_size=_page(limit))
        items = _take(found, limit)
    if as_json:
        return print_json(items)
    print_trials(items)


@app.command()
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
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
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


@app.command()
def cluster(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Nodes, slots by shape and state, each tenant's usage against its share and quota, and
    the studies waiting for a slot, in the order they will get one."""
    with client_of(url, token) as client:
        found = client.cluster()
    if as_json:
        return print_json(found)
    print_cluster(found)


@app.command()
def stop(study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None,
         as_json: AsJson = False) -> None:  # fmt: skip
    """Stop a queued or running study; its running trials end as cancelled."""
    with client_of(url, token) as client:
        study = client.stop(study_id)
    if as_json:
        return print_json(study)
    console.print(f"study {study_id} stopping (now {study['state']})", highlight=False)


@app.command()
def pause(study_id: StudyId, url: Url = DEFAULT_URL, token: Token = None,
          as_json: AsJson = False) -> None:  # fmt: skip
    """Pause a study: trials stop at their next epoch with a checkpoint; `resume` continues."""
    with client_of(url, token) as client:
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
    with client_of(url, token) as client:
        study = client.resume(study_id, **budget)
        said = f"study {study_id} resumed: budget {study['spec']['budget']['max_trials']} trials"
        _announce(client, study, said, wait, as_json)


@app.command()
def delete(
    study_id: StudyId,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask; needed without a terminal.")
    ] = False,
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
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


datasets_app = typer.Typer(help="Uploaded data sets: list, delete (hpo upload adds one).")
app.add_typer(datasets_app, name="datasets")


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
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Delete an uploaded data set (refused while a queued or running study uses it)."""
    with client_of(url, token) as client:
        client.delete_dataset(dataset_id)
    if as_json:
        return print_json({"deleted": dataset_id})
    console.print(f"dataset {escape(dataset_id)} deleted", highlight=False)
    return None


@app.command()
def tasks(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Plug-in training tasks installed on the service: model {kind: plugin, name: NAME}."""
    with client_of(url, token) as client:
        items = client.tasks()
    if as_json:
        return print_json(items)
    print_tasks(items)


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or NPZ file.")],
    target: Annotated[str, typer.Option(help="Target column (or NPZ array).")] = "target",
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Upload a data set that studies then name as {source: uploaded, id: ID}."""
    with client_of(url, token) as client:
        record = client.upload(file, target=target)
    if as_json:
        return print_json(record)
    print_dataset(record)


@app.command()
def demo(
    file: Annotated[Path, typer.Argument(help="Study file.")] = Path("examples/digits.yaml"),
    port: Annotated[
        int | None, typer.Option(help="Port (default HPO_PORT, else 8000).", show_default=False)
    ] = None,
    keep_serving: Annotated[bool, typer.Option(help="Keep serving after the study.")] = False,
) -> None:
    """Start the service, submit an example study over HTTP, follow it, print the best trials."""
    from service.runtime import connect_ray, disconnect_ray

    settings = settings_of(port=port)
    bind_safely(settings)
    sock = bind_or_exit(settings.host, settings.port)
    console.print(f"starting hpo-service ({settings.shown_database_url()}, local Ray) ...")
    connect_ray(settings)
    config = uvicorn.Config(app_of(settings), log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://{settings.host}:{settings.port}"
    try:
        with HpoClient(url) as client:
            wait_healthy(client, server, thread)
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
        sock.close()
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
