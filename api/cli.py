"""The `hpo` command: starts the server, and talks to it through `api.client` only."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.client import ClientError, HpoClient

app = typer.Typer(help="Hyperparameter search for PyTorch models.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

Url = Annotated[str, typer.Option(envvar="HPO_URL", help="Service address.")]
Token = Annotated[str | None, typer.Option(envvar="HPO_TOKEN", help="API token.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
DEFAULT_URL = "http://127.0.0.1:8000"
# uvicorn's 5 s default closes idle connections while a busy client's next request is in
# flight, which the client sees as a reset (measured by bench/api_load.py).
KEEP_ALIVE_S = 60


def main() -> None:
    try:
        app()
    except ClientError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HPO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HPO_PORT).")] = None,
    ray_address: Annotated[str | None, typer.Option(help="'auto' or host:port.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
) -> None:
    """Run the API, the study drivers and (unless --ray-address) a local Ray."""
    settings = _settings(host=host, port=port, ray_address=ray_address, database_url=database_url)
    console.print(
        f"hpo-service on http://{settings.host}:{settings.port}  db={settings.database_url}"
    )
    from service.runtime import connect_ray

    _bind_safely(settings)
    connect_ray(settings)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler found at
    # start: make that a clean exit rather than Ray's crash report.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        _app(settings), host=settings.host, port=settings.port, log_level="warning",
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
    """Submit a study; with --wait, follow it and print the best trials."""
    with HpoClient(url, token=token) as client:
        study = client.submit_file(file)
        if not as_json:
            console.print(
                f"study {study['id']} '{study['name']}' submitted: "
                f"{url}/api/v1/studies/{study['id']}"
            )
        if wait:
            study = _follow(client, study, quiet=as_json)
            _print_best(client, study, k=5, as_json=as_json)
        elif as_json:
            _print_json(study)


@app.command()
def studies(
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
) -> None:
    """List studies, newest first."""
    with HpoClient(url, token=token) as client:
        items = client.studies(state=state)
    if as_json:
        return _print_json(items)
    table = Table("id", "name", "state", "trials", "best", "created")
    for s in items:
        done = sum(s["counts"].get(k, 0) for k in ("complete", "pruned", "failed"))
        total = s["spec"]["budget"]["max_trials"]
        best = s["best"]["value"] if s["best"] else None
        table.add_row(
            str(s["id"]), s["name"], s["state"], f"{done}/{total}", _fmt(best), s["created_at"][:19]
        )
    console.print(table)


@app.command()
def best(study_id: int, k: Annotated[int, typer.Option(help="How many.")] = 5,
         url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:  # fmt: skip
    """Print a study's best trials."""
    with HpoClient(url, token=token) as client:
        _print_best(client, client.get(study_id), k=k, as_json=as_json)


@app.command()
def demo(
    file: Annotated[Path, typer.Argument(help="Study file.")] = Path("examples/digits.yaml"),
    port: Annotated[int, typer.Option(help="Port for the demo server.")] = 8000,
    keep_serving: Annotated[bool, typer.Option(help="Keep serving after the study.")] = False,
) -> None:
    """Start the service, submit an example study over HTTP, follow it, print the best trials."""
    import ray

    from service.runtime import connect_ray

    settings = _settings(port=port)
    console.print(f"starting hpo-service (SQLite at {settings.database_url}, local Ray) ...")
    connect_ray(settings)
    config = uvicorn.Config(
        _app(settings), host=settings.host, port=port, log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{settings.host}:{port}"
    try:
        with HpoClient(url) as client:
            _wait_healthy(client, server)
            study = client.submit_file(file)
            console.print(f"submitted study {study['id']} '{study['name']}' over HTTP")
            study = _follow(client, study, quiet=False)
            _print_best(client, study, k=5, as_json=False)
        console.print(f"API: {url}/api/v1/studies/{study['id']}   docs: {url}/docs")
        if keep_serving:
            console.print("serving; press Ctrl+C to stop")
            thread.join()
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        ray.shutdown()
    if study["state"] != "completed":
        raise typer.Exit(1)


def _bind_safely(settings: Any) -> None:
    """Without API tokens anyone who reaches the port owns the service: stay on loopback."""
    if settings.tenants_by_token():
        console.print("API tokens configured: every route but /healthz needs a bearer token")
        return
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]no HPO_API_TOKENS: binding to 127.0.0.1, not {settings.host}; "
            "set HPO_API_TOKENS=tenant:token to serve other machines[/yellow]"
        )
        settings.host = "127.0.0.1"
    else:
        console.print("no HPO_API_TOKENS: open API, bound to 127.0.0.1 only")


def _settings(**overrides: Any) -> Any:
    from service.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _app(settings: Any) -> Any:
    from api.app import create_app

    return create_app(settings)


def _wait_healthy(client: HpoClient, server: uvicorn.Server, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not (server.started and client.healthy()):
        if time.monotonic() > deadline:
            raise ClientError(f"the service did not start within {timeout_s:.0f}s")
        time.sleep(0.2)


def _follow(client: HpoClient, study: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    total = study["spec"]["budget"]["max_trials"]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} trials"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet) as progress:
        task = progress.add_task(f"study {study['id']}", total=total, status="")

        def update(s: dict[str, Any]) -> None:
            c = s["counts"]
            done = c["complete"] + c["pruned"] + c["failed"]
            best = s["best"]["value"] if s["best"] else None
            status = (
                f"running {c['running']}  pruned {c['pruned']}  best {_fmt(best)}  [{s['state']}]"
            )
            progress.update(task, completed=done, status=status)

        return client.wait(study["id"], on_update=update)


def _print_best(client: HpoClient, study: dict[str, Any], *, k: int, as_json: bool) -> None:
    trials = client.best(study["id"], k=k)
    if as_json:
        return _print_json({"study": study, "best": trials})
    reason = f" ({study['state_reason']})" if study.get("state_reason") else ""
    console.print(
        f"study {study['id']} {study['state']}{reason}; "
        f"metric {study['spec']['objective']['metric']}"
    )
    if study.get("error"):
        console.print(f"[red]error:[/red] {study['error']}")
    table = Table("trial", "value", "best epoch", "epochs", "stop", "params")
    for t in trials:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in t["params"].items())
        table.add_row(
            str(t["number"]), _fmt(t["value"]), str(t["best_epoch"]), str(t["epochs_run"]),
            t["stop_reason"] or "", params,
        )  # fmt: skip
    console.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
