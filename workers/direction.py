"""Which of two objective values is better: the one home of that idea.

Early stopping, a trial's best epoch, the study's target and best checkpoint all ask
it; each used to flip a sign of its own. `gain` is how much better `value` is than
`than` in the objective's direction (positive: better).
"""

from __future__ import annotations

DIRECTIONS = ("maximize", "minimize")


def gain(value: float, than: float, direction: str) -> float:
    """`value - than` when maximizing, `than - value` when minimizing."""
    if direction == "maximize":
        return value - than
    if direction == "minimize":
        return than - value
    raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")


def improves(value: float, best: float | None, direction: str, *, by: float = 0.0) -> bool:
    """Whether `value` beats `best` by more than `by` (anything beats no best yet)."""
    return best is None or gain(value, best, direction) > by


def at_least(value: float | None, floor: float | None, direction: str) -> bool:
    """Whether `value` is as good as `floor` or better (a missing floor is always met)."""
    if floor is None:
        return True
    return value is not None and gain(value, floor, direction) >= 0
