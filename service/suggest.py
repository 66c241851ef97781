"""The nearest valid name to a mistyped one, for messages that say what to send instead."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's own default: `max_trial` -> `max_trials` (ratio 0.95), `tpee` -> `tpe` (0.86) and
# `minimise` -> `minimize` (0.88) pass; `zzzz` -> anything does not.
CUTOFF = 0.6


def nearest(given: object, names: Iterable[object]) -> str | None:
    """The valid name closest to `given`, or None when none is close."""
    close = difflib.get_close_matches(str(given), [str(n) for n in names], n=1, cutoff=CUTOFF)
    return close[0] if close else None


def did_you_mean(given: object, names: Iterable[object]) -> str:
    """`; did you mean 'x'?` to end a message with, or "" when no name is close."""
    name = nearest(given, names)
    return f"; did you mean '{name}'?" if name is not None else ""
