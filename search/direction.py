"""Which of two objective values is better, for search and the service's rankings.

PBT's quantiles, the Pareto front and the best trial of a loaded study each flipped a
sign of their own. They ask here instead: `cost` turns a value into one where lower is
better whatever the direction (a missing value, None or NaN, costs most) and `better`
says which of two is better (a missing one never). The workers have the same idea in
`workers.direction`, as the leaves may not import each other; a test holds the two to
the same answers.
"""

from __future__ import annotations

import math

DIRECTIONS = ("maximize", "minimize")


def cost(value: float | None, direction: str) -> float:
    """`value` when minimizing, `-value` when maximizing; +inf (as much as the worst
    value) when it is missing.

    Raises ValueError for a direction that is neither maximize nor minimize."""
    _check(direction)
    if value is None or math.isnan(value):
        return math.inf
    return value if direction == "minimize" else -value


def better(value: float | None, than: float | None, direction: str) -> bool:
    """Whether `value` is strictly better than `than`; a missing value never is, and
    any value is better than a missing one (the worst value too)."""
    if _missing(value) or _missing(than):
        _check(direction)
        return not _missing(value)
    return cost(value, direction) < cost(than, direction)


def worst(direction: str) -> float:
    """The value no other is worse than: -inf when maximizing, +inf when minimizing."""
    _check(direction)
    return -math.inf if direction == "maximize" else math.inf


def _check(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)
