"""A trial's saved state continues training exactly as if it had never stopped (CPU)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch

from tests.workers.test_trainer import prepared
from workers.tensors import TensorData
from workers.trial_trainer import TrialTrainer

CPU = torch.device("cpu")
TIMES = {"seconds", "train_seconds"}
SETTINGS = [
    {
        "optimizer": "adam",
        "lr": 0.01,
        "dropout": 0.3,
        "input_noise": 0.1,
        "lr_schedule": "cosine",
        "batch_size": 32,
    },
    {
        "optimizer": "nesterov",
        "momentum": 0.9,
        "lr": 0.05,
        "lr_schedule": "plateau",
        "warmup_epochs": 2,
        "batch_size": 64,
        "l1": 1e-5,
        "label_smoothing": 0.1,
    },
    {
        "optimizer": "rmsprop",
        "lr": 0.001,
        "lr_schedule": "step",
        "lr_step_epochs": 3,
        "batch_size": 16,
        "dropout": 0.2,
    },
]


@pytest.fixture(scope="module")
def digits() -> TensorData:
    return TensorData(prepared(folds=2), CPU)


def trainer(data: TensorData, params: dict[str, Any]) -> TrialTrainer:
    return TrialTrainer(data, {"hidden_units": 32, **params}, seed=7, max_epochs=8)


def without_times(curve: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in m.items() if k not in TIMES} for m in curve]


@pytest.mark.parametrize("params", SETTINGS, ids=lambda p: p["optimizer"])
def test_a_trial_resumed_from_epoch_4_matches_one_never_stopped(
    digits: TensorData, params: dict[str, Any]
) -> None:
    straight = trainer(digits, params)
    expected = [straight.train_epoch() for _ in range(8)]

    first = trainer(digits, params)
    for _ in range(4):
        first.train_epoch()
    saved = first.state()
    # Another process would start with other generator states; so does this one.
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    first.train_epoch()

    resumed = trainer(digits, params)
    resumed.load_state(saved)
    assert resumed.epoch == 4 and without_times(resumed.history) == without_times(expected[:4])
    rest = [resumed.train_epoch() for _ in range(4)]
    assert without_times(rest) == without_times(expected[4:])
    assert (resumed.best_value, resumed.best_epoch) == (straight.best_value, straight.best_epoch)
    assert resumed.test_metrics() == straight.test_metrics()


def test_a_checkpoint_of_another_layout_is_refused(digits: TensorData) -> None:
    one_fold = TensorData(prepared(), CPU)
    source = trainer(one_fold, SETTINGS[0])
    source.train_epoch()
    with pytest.raises(ValueError, match="another trial layout"):
        trainer(digits, SETTINGS[0]).load_state(source.state())


def test_a_pbt_copy_starts_from_the_donors_weights_with_its_own_optimizer_knobs(
    digits: TensorData,
) -> None:
    base = {"optimizer": "adam", "dropout": 0.2, "batch_size": 32}
    donor = trainer(digits, {**base, "lr": 0.01, "weight_decay": 1e-4})
    copy = trainer(digits, {**base, "lr": 0.001, "weight_decay": 1e-5})
    donor_curve = [donor.train_epoch() for _ in range(3)]
    own_curve = [copy.train_epoch()]
    donor_epoch, donor_last = copy.adopt(donor.state())
    assert donor_epoch == 3 and donor_last["val_accuracy"] == donor_curve[-1]["val_accuracy"]
    # Exactly the donor's model: the same validation value before the copy trains.
    assert copy.evaluate("val")["val_loss"] == donor_curve[-1]["val_loss"]
    # The copy's own epoch count and curve; its best weights start over.
    assert copy.epoch == 1 and copy.history == own_curve and copy.best_value is None
    for fold in copy.folds:
        group = fold.optimizer.param_groups[0]
        assert group["lr"] == 0.001 and group["weight_decay"] == 1e-5
        assert fold.optimizer.state  # the donor's Adam moments came along
    # The schedule keeps the new lr from epoch to epoch (its base moved too).
    assert [copy.train_epoch()["lr"] for _ in range(2)] == [0.001, 0.001]
    assert copy.epoch == 3 and copy.best_value is not None


def test_a_param_schedule_sets_its_knobs_from_their_epochs_also_after_a_resume(
    digits: TensorData,
) -> None:
    schedule = {"lr": [(3, 0.05), (5, 0.02)], "dropout": [(4, 0.4)]}
    params = {"optimizer": "momentum", "lr": 0.1, "dropout": 0.1, "batch_size": 32}
    straight = TrialTrainer(
        digits, {"hidden_units": 32, **params}, seed=7, max_epochs=6, param_schedule=schedule
    )
    curve = [straight.train_epoch() for _ in range(6)]
    assert [m["lr"] for m in curve] == [0.1, 0.1, 0.05, 0.05, 0.02, 0.02]
    dropouts = [m.p for m in straight.folds[0].model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(p == 0.4 for p in dropouts)
    # Resumed after epoch 3, the schedule's values come back with the next epoch.
    first = TrialTrainer(
        digits, {"hidden_units": 32, **params}, seed=7, max_epochs=6, param_schedule=schedule
    )
    for _ in range(3):
        first.train_epoch()
    state = first.state()
    resumed = TrialTrainer(
        digits, {"hidden_units": 32, **params}, seed=7, max_epochs=6, param_schedule=schedule
    )
    resumed.load_state(state)
    rest = [resumed.train_epoch() for _ in range(3)]
    assert without_times(rest) == without_times(curve[3:])
