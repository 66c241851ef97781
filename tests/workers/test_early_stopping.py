"""EarlyStopping counts epochs without a gain larger than min_delta."""

from __future__ import annotations

import math

import pytest

from workers.early_stopping import EarlyStopping


def run(stopper: EarlyStopping, values: list[float]) -> int | None:
    for epoch, value in enumerate(values, start=1):
        if stopper.update(epoch, value):
            return epoch
    return None


def test_stops_after_patience_epochs_without_gain() -> None:
    stopper = EarlyStopping(patience=2)
    assert run(stopper, [0.5, 0.6, 0.6, 0.55, 0.9]) == 4
    assert stopper.best == 0.6 and stopper.best_epoch == 2


def test_min_delta_ignores_small_gains() -> None:
    assert run(EarlyStopping(patience=2, min_delta=0.05), [0.5, 0.52, 0.54, 0.9]) == 3
    assert run(EarlyStopping(patience=2, min_delta=0.0), [0.5, 0.52, 0.54, 0.9]) is None


def test_minimize_direction() -> None:
    assert run(EarlyStopping(patience=1, direction="minimize"), [1.0, 0.8, 0.9]) == 3


def test_nan_never_counts_as_a_gain() -> None:
    stopper = EarlyStopping(patience=2)
    assert run(stopper, [0.5, math.nan, math.nan]) == 3
    assert stopper.best == 0.5


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"patience": 1, "direction": "up"}])
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)  # type: ignore[arg-type]
