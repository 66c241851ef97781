"""What every client command shares: its options, and the client they name."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from api.client import ClientError, HpoClient

Url = Annotated[
    str | None,
    typer.Option(
        envvar="HPO_URL",
        show_default=False,
        help="Service address (default http://127.0.0.1:$HPO_PORT; HPO_PORT 8000 when unset).",
    ),
]
Token = Annotated[str | None, typer.Option(envvar="HPO_TOKEN", help="API token.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON only, for programs.")]
StudyId = Annotated[int, typer.Argument(help="Study id.", show_default=False)]
DEFAULT_URL = None


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
