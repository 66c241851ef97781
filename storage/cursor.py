"""Opaque keyset cursors: the last row's sort key, tagged with the ordering it belongs to."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from storage.errors import InvalidCursorError
from storage.records import Page

RowT = TypeVar("RowT")
# Keys are row ids and trial numbers: never negative, and within the 64-bit integers that
# both databases bind (a larger one overflowed in the driver and answered 500).
MAX_KEY = 2**63 - 1


def encode_cursor(kind: str, *key: Any) -> str:
    """Encode a sort key as a url-safe string; `kind` stops cursors crossing orderings."""
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: tuple[type | None, ...]) -> list[Any]:
    """Decode a cursor made by `encode_cursor(kind, ...)` whose key matches `types`.

    A `None` in `types` allows a finite float (a trial's value) or null; `int` allows
    0..MAX_KEY. Raises InvalidCursorError otherwise.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(
            base64.urlsafe_b64decode(padded.encode("ascii")), parse_constant=_no_constant
        )
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as exc:
        raise InvalidCursorError(f"cursor {cursor!r} is not one this service issued") from exc
    if not _matches(payload, kind, types):
        raise InvalidCursorError(f"cursor {cursor!r} is not one a list ordered by {kind} issued")
    return list(payload[1:])


def _matches(payload: Any, kind: str, types: tuple[type | None, ...]) -> bool:
    if not isinstance(payload, list) or len(payload) != len(types) + 1 or payload[0] != kind:
        return False
    return all(_is_a(value, type_) for value, type_ in zip(payload[1:], types, strict=True))


def _is_a(value: Any, type_: type | None) -> bool:
    if isinstance(value, bool):
        return False
    if type_ is None:
        # `encode_cursor` writes a float value with a point or exponent: never a JSON int.
        return value is None or (isinstance(value, float) and math.isfinite(value))
    if type_ is int:
        return isinstance(value, int) and 0 <= value <= MAX_KEY
    return isinstance(value, type_)


def _no_constant(name: str) -> Any:
    """NaN and Infinity are no value a trial stores; `json` would read them as floats."""
    raise ValueError(f"{name} is not a cursor value")


def paginate(
    rows: list[RowT], limit: int, to_record: Callable[[RowT], Any], key: Callable[[RowT], str]
) -> Page:
    """Build a page from rows fetched with `limit + 1`: an extra row proves a next page exists."""
    items = rows[:limit]
    next_cursor = key(items[-1]) if len(rows) > limit else None
    return Page(items=[to_record(row) for row in items], next_cursor=next_cursor)
