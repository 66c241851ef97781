"""What `hpo serve` and `hpo demo` need to run the service in this process.

Kept apart from the client commands, which never import `service`.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import typer
import uvicorn

from api.cli.output import console, print_error
from api.client import ClientError, HpoClient


def bind_safely(settings: Any) -> None:
    """Without API tokens anyone who reaches the port owns the service: stay on loopback."""
    if settings.tenants_by_token():
        console.print("API tokens configured: every API route (not /healthz) needs a bearer token")
        return
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]no HPO_API_TOKENS: binding to 127.0.0.1, not {settings.host}; "
            "set HPO_API_TOKENS=tenant:token to serve other machines[/yellow]"
        )
        settings.host = "127.0.0.1"
    else:
        console.print("no HPO_API_TOKENS: open API, bound to 127.0.0.1 only")


def bind_or_exit(host: str, port: int) -> socket.socket:
    """The listening socket, bound before Ray starts: a port in use ends the command at
    once with the reason, instead of a health wait that cannot succeed. uvicorn then
    serves on this very socket, so nothing can take the port in between."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is in use" if exc.errno == 98 else f"cannot be bound: {exc.strerror}"
        print_error(
            f"port {port} on {host} {reason}; pick another with --port or HPO_PORT (make demo "
            "PORT=...)"
        )
        raise typer.Exit(1) from None
    return sock


def settings_of(**overrides: Any) -> Any:
    from service.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def app_of(settings: Any) -> Any:
    from api.app import create_app

    return create_app(settings)


def wait_healthy(
    client: HpoClient, server: uvicorn.Server, thread: threading.Thread, timeout_s: float = 120
) -> None:
    """Until the service answers; a server that stopped during its start ends the wait."""
    deadline = time.monotonic() + timeout_s
    while not (server.started and client.healthy()):
        if not thread.is_alive():
            raise ClientError("the service stopped during its start (see the lines above)")
        if time.monotonic() > deadline:
            raise ClientError(f"the service did not start within {timeout_s:.0f}s")
        time.sleep(0.2)
