"""How the `hpo` CLI prints: rich tables for people, plain `json.dumps` for programs.

Everything here and in the `*_tables` modules writes; nothing talks to the service, so the
commands stay thin. This module holds what every table shares: the consoles, the three
ways out (JSON, plain text, one error line) and the formatting of values and times.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
errors = Console(stderr=True)
WIDE = 120


def print_json(data: Any) -> None:
    """Bypass rich: its wrapping and markup would break machine parsing."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_plain(text: str) -> None:
    """Text as it is (a YAML document), for a file or a pipe: no markup, no wrapping."""
    sys.stdout.write(text + "\n")


def print_error(message: str) -> None:
    """One line on stderr, whatever the message's own line breaks, so scripts can grep it."""
    text = " ".join(message.split())
    errors.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def columns(*headers: str, wrapping: Collection[str] = (), title: str | None = None) -> Table:
    """A table that never splits a word on a narrow console: the `wrapping` columns (cells
    of several words) break between words and are narrowed first; every other column keeps
    its cells on one line. Past that a word is cut short with an ellipsis, never folded."""
    table = Table(title=title, title_justify="left", title_style="bold")
    for header in headers:
        table.add_column(header, no_wrap=header not in wrapping, overflow="ellipsis")
    return table


def when(stamp: str | None) -> str:
    return "-" if stamp is None else stamp[:19].replace("T", " ")


def waited(stamp: str | None) -> str:
    """When a wait began (UTC, like every time printed here), and how long ago."""
    if stamp is None:
        return "-"
    since = datetime.fromisoformat(stamp)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    ago = max((datetime.now(UTC) - since).total_seconds(), 0.0)
    return f"{when(stamp)} ({_span(ago)} ago)"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
