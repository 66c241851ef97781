"""`hpo serve` and `hpo demo`: the commands that run the service in this process."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from api.cli.output import console
from api.cli.progress import follow
from api.cli.server import app_of, bind_or_exit, bind_safely, settings_of, wait_healthy
from api.cli.study_tables import print_best
from api.client import HpoClient

# uvicorn's 5 s default closes idle connections while a busy client's next request is in
# flight, which the client sees as a reset (measured by bench/api_load.py).
KEEP_ALIVE_S = 60


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
