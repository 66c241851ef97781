"""Argument checks: a bad value is the caller's bug, so it is a ValueError that names it."""

from __future__ import annotations

from collections.abc import Sequence

DIRECTIONS = ("maximize", "minimize")
TRIAL_ORDERS = ("number", "best")


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def check_state(state: str, allowed: Sequence[str], what: str) -> None:
    if state not in allowed:
        raise ValueError(f"{what} state must be one of {tuple(allowed)}, got {state!r}")


def check_order(order: str) -> None:
    if order not in TRIAL_ORDERS:
        raise ValueError(f"order must be one of {TRIAL_ORDERS}, got {order!r}")


def check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
