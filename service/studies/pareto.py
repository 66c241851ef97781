"""The Pareto front of a multi-objective study: trials no other trial dominates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search.direction import cost


def pareto_front(
    points: Sequence[tuple[int, Sequence[float]]], directions: Sequence[str]
) -> list[int]:
    """Numbers of the non-dominated points, in order of the first objective (best first).

    A point dominates another when it is at least as good in every objective and
    better in one. Two objectives take one sort and a sweep; more use pairwise checks.
    """
    if not points:
        return []
    numbers = np.array([n for n, _ in points])
    costs = np.array(
        [[cost(v, d) for v, d in zip(values, directions, strict=True)] for _, values in points],
        dtype=float,
    )
    keep = _front_2d(costs) if costs.shape[1] == 2 else _front_nd(costs)
    order = np.argsort(costs[keep, 0], kind="stable")
    return [int(n) for n in numbers[keep][order]]


def _front_2d(costs: np.ndarray) -> np.ndarray:
    order = np.lexsort((costs[:, 1], costs[:, 0]))
    keep = np.zeros(len(costs), dtype=bool)
    best = (np.inf, np.inf)
    for i in order:
        point = (costs[i, 0], costs[i, 1])
        if point[1] < best[1] or point == best:  # an exact copy of a front point is on it too
            keep[i] = True
            best = point
    return keep


def _front_nd(costs: np.ndarray) -> np.ndarray:
    keep = np.ones(len(costs), dtype=bool)
    for i, point in enumerate(costs):
        dominated = np.all(costs <= point, axis=1) & np.any(costs < point, axis=1)
        keep[i] = not dominated.any()
    return keep
