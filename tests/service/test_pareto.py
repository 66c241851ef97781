"""The Pareto front reads each objective's direction through search.direction."""

from __future__ import annotations

import pytest

from service.studies.pareto import pareto_front

POINTS = [(0, (0.9, 5.0)), (1, (0.8, 1.0)), (2, (0.7, 3.0)), (3, (0.95, 9.0))]


@pytest.mark.parametrize(
    ("directions", "front"),
    [
        (["maximize", "minimize"], [3, 0, 1]),  # 2 is worse than 1 in both
        (["minimize", "minimize"], [2, 1]),
        (["maximize", "maximize"], [3]),
        (["minimize", "maximize"], [2, 0, 3]),
    ],
)
def test_the_front_follows_each_objectives_direction(
    directions: list[str], front: list[int]
) -> None:
    assert pareto_front(POINTS, directions) == front
    three = [(n, (*values, 0.0)) for n, values in POINTS]
    assert pareto_front(three, [*directions, "minimize"]) == front


def test_an_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="direction must be one of"):
        pareto_front(POINTS, ["maximize", "sideways"])
