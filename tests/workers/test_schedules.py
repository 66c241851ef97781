"""Each schedule's recorded per-epoch learning rate follows its closed form, warmup included."""

from __future__ import annotations

import math

import pytest
import torch

from workers.data import load_prepared
from workers.schedules import SCHEDULES, EpochSchedule
from workers.spec import BuiltinDataset, SplitSpec
from workers.tensors import TensorData
from workers.trial_trainer import TrialTrainer

LR, EPOCHS, EVERY, GAMMA = 0.2, 12, 3, 0.5


def closed_form(name: str, epoch: int, warmup: int) -> float:
    """The documented lr of 0-based `epoch` (workers/schedules.py)."""
    if epoch < warmup:
        return LR * (epoch + 1) / (warmup + 1)
    k, horizon = epoch - warmup, EPOCHS - warmup
    return {
        "constant": LR,
        "step": LR * GAMMA ** (k // EVERY),
        "exponential": LR * GAMMA**k,
        "linear": LR * (1 - k / horizon),
        "polynomial": LR * (1 - k / horizon) ** 2,
        "inverse_sqrt": LR / math.sqrt(k + 1),
        "cosine": LR * (1 + math.cos(math.pi * k / horizon)) / 2,
        "cosine_restarts": LR * (1 + math.cos(math.pi * (k % EVERY) / EVERY)) / 2,
    }[name]


@pytest.fixture(scope="module")
def digits() -> TensorData:
    data = load_prepared(BuiltinDataset(source="builtin", name="digits"), SplitSpec())
    return TensorData(data, torch.device("cpu"))


@pytest.mark.parametrize("warmup", [0, 3])
@pytest.mark.parametrize("name", sorted(set(SCHEDULES) - {"plateau"}))
def test_recorded_lr_follows_the_closed_form(digits: TensorData, name: str, warmup: int) -> None:
    params = {
        "optimizer": "sgd",
        "lr": LR,
        "lr_schedule": name,
        "warmup_epochs": warmup,
        "lr_step_epochs": EVERY,
        "lr_gamma": GAMMA,
        "hidden_units": 8,
    }
    trainer = TrialTrainer(digits, params, max_epochs=EPOCHS)
    recorded = [trainer.train_epoch()["lr"] for _ in range(EPOCHS)]
    assert recorded == pytest.approx(
        [closed_form(name, e, warmup) for e in range(EPOCHS)], rel=1e-9
    )


@pytest.mark.parametrize("warmup", [0, 2])
def test_plateau_cuts_the_lr_after_patience_epochs_without_gain(warmup: int) -> None:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=LR)
    params = {
        "lr_schedule": "plateau",
        "lr_gamma": GAMMA,
        "lr_step_epochs": 2,
        "warmup_epochs": warmup,
    }
    schedule = EpochSchedule(optimizer, params, max_epochs=EPOCHS, direction="maximize")
    values = [0.1, 0.2, 0.3] + [0.3] * 9
    recorded = []
    for value in values:
        recorded.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step(value)
    warm = [LR * (e + 1) / (warmup + 1) for e in range(warmup)]
    # The best value 0.3 comes at epoch 2; from epoch 3 on, every 3 (patience 2 + 1) epochs
    # without gain cut the lr by GAMMA.
    expected = warm + [LR * GAMMA ** max(0, (e - 3) // 3) for e in range(warmup, EPOCHS)]
    assert recorded == pytest.approx(expected)


def test_an_unknown_schedule_is_refused() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        EpochSchedule(optimizer, {"lr_schedule": "zigzag"}, max_epochs=3)
