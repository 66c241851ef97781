"""One direction-aware comparison for every "is this better" question."""

from __future__ import annotations

import pytest

from workers.direction import at_least, gain, improves


def test_gain_is_positive_when_better_in_either_direction() -> None:
    assert gain(0.9, 0.8, "maximize") == pytest.approx(0.1)
    assert gain(0.8, 0.9, "minimize") == pytest.approx(0.1)
    with pytest.raises(ValueError, match="direction must be one of"):
        gain(1.0, 2.0, "sideways")


def test_improves_needs_more_than_the_margin_and_anything_beats_nothing() -> None:
    assert improves(0.5, None, "maximize")
    assert improves(0.91, 0.9, "maximize") and not improves(0.9, 0.9, "maximize")
    assert not improves(0.905, 0.9, "maximize", by=0.01)
    assert improves(0.1, 0.2, "minimize") and not improves(0.3, 0.2, "minimize")


def test_at_least_counts_ties_and_a_missing_floor_as_met() -> None:
    assert at_least(0.9, 0.9, "maximize") and at_least(0.2, 0.2, "minimize")
    assert at_least(0.1, None, "minimize") and not at_least(None, 0.1, "minimize")
    assert not at_least(0.3, 0.2, "minimize")
