"""Which value is better: one answer for both directions, and for missing values."""

from __future__ import annotations

import math

import pytest

from search.direction import DIRECTIONS, better, cost, worst
from workers import direction as workers_direction


@pytest.mark.parametrize(
    ("value", "than", "direction", "expected"),
    [
        (0.9, 0.5, "maximize", True),
        (0.5, 0.9, "maximize", False),
        (0.5, 0.9, "minimize", True),
        (0.9, 0.5, "minimize", False),
        (0.5, 0.5, "maximize", False),
        (0.5, 0.5, "minimize", False),
        (-1.0, 2.0, "minimize", True),
        (-math.inf, 0.0, "maximize", False),
    ],
)
def test_better_follows_the_direction(
    value: float, than: float, direction: str, expected: bool
) -> None:
    assert better(value, than, direction) is expected


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("missing", [None, math.nan])
def test_a_missing_value_is_worse_than_any_other(direction: str, missing: float | None) -> None:
    for value in (-math.inf, -1.0, 0.0, 1e9, math.inf):
        assert better(value, missing, direction)
        assert not better(missing, value, direction)
    assert not better(missing, missing, direction)
    assert cost(missing, direction) == math.inf


def test_the_cost_is_lower_for_the_better_value() -> None:
    assert (cost(0.9, "maximize"), cost(0.9, "minimize")) == (-0.9, 0.9)
    assert sorted([0.2, 0.9, 0.5], key=lambda v: cost(v, "maximize")) == [0.9, 0.5, 0.2]
    assert sorted([0.2, 0.9, 0.5], key=lambda v: cost(v, "minimize")) == [0.2, 0.5, 0.9]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_nothing_is_worse_than_the_worst(direction: str) -> None:
    assert worst(direction) == (-math.inf if direction == "maximize" else math.inf)
    assert all(not better(worst(direction), v, direction) for v in (-1e308, 0.0, 1e308))


@pytest.mark.parametrize(
    "call", [lambda: cost(1.0, "max"), lambda: better(1.0, 2.0, "up"), lambda: worst("")]
)
def test_an_unknown_direction_is_refused(call: object) -> None:
    with pytest.raises(ValueError, match="direction must be one of"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_search_and_workers_agree_on_which_value_is_better(direction: str) -> None:
    values = [-math.inf, -2.5, 0.0, 0.0, 1.0, 3.5, math.inf]
    for value in values:
        for than in values:
            if math.isinf(value) and value == than:
                continue  # inf - inf: workers' gain is NaN, no answer to compare
            assert better(value, than, direction) == workers_direction.improves(
                value, than, direction
            )
        assert better(value, None, direction) == workers_direction.improves(value, None, direction)
