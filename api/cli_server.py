"""What `hpo serve` and `hpo demo` need to run the service in this process.

Kept apart from the client commands, which never import `service`.
"""

from __future__ import annotations

import time
from typing import Any

import uvicorn

from api.cli_output import console
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


def settings_of(**overrides: Any) -> Any:
    from service.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def app_of(settings: Any) -> Any:
    from api.app import create_app

    return create_app(settings)


def wait_healthy(client: HpoClient, server: uvicorn.Server, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not (server.started and client.healthy()):
        if time.monotonic() > deadline:
            raise ClientError(f"the service did not start within {timeout_s:.0f}s")
        time.sleep(0.2)
