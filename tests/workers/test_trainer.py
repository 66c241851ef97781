"""The Trainer learns digits, keeps its best weights, and is deterministic per seed."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from workers.data import DataSplits, load_splits
from workers.spec import BuiltinDataset, SplitSpec
from workers.trainer import TensorData, Trainer


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_splits(BuiltinDataset(source="builtin", name="digits"), SplitSpec())


@pytest.fixture(scope="module")
def tensors(digits: DataSplits) -> TensorData:
    return TensorData(digits, torch.device("cpu"))


def train(
    tensors: TensorData, n_epochs: int, **params: Any
) -> tuple[Trainer, list[dict[str, float]]]:
    trainer = Trainer(tensors, {"hidden_units": 64, **params}, seed=0)
    return trainer, [trainer.train_epoch() for _ in range(n_epochs)]


def test_splits_are_stratified_disjoint_and_standardized_on_train(digits: DataSplits) -> None:
    n = len(digits.y_train) + len(digits.y_val) + len(digits.y_test)
    assert n == 1797
    assert len(digits.y_val) == len(digits.y_test) == pytest.approx(0.2 * n, abs=2)
    assert set(digits.y_val.tolist()) == set(range(10))
    assert abs(float(digits.x_train.mean())) < 0.05
    assert digits.x_train.dtype.name == "float32" and digits.y_train.dtype.name == "int64"


def test_adam_learns_digits(tensors: TensorData) -> None:
    _, curve = train(tensors, 8, lr=0.01, optimizer="adam", batch_size=32)
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]
    assert max(m["val_accuracy"] for m in curve) >= 0.95
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= set(curve[0])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_each_skeleton_optimizer_reaches_090(tensors: TensorData, optimizer: str) -> None:
    lr = {"sgd": 0.1, "momentum": 0.05, "adam": 0.005}[optimizer]
    _, curve = train(tensors, 10, lr=lr, optimizer=optimizer, batch_size=32)
    assert max(m["val_accuracy"] for m in curve) >= 0.9


def test_restore_best_brings_back_the_best_epoch(tensors: TensorData) -> None:
    trainer, curve = train(tensors, 12, lr=0.05, optimizer="adam", batch_size=16)
    best = max(m["val_accuracy"] for m in curve)
    assert trainer.best_value == best
    assert curve[trainer.best_epoch - 1]["val_accuracy"] == best  # type: ignore[operator]
    trainer.restore_best()
    assert trainer.evaluate("val")["val_accuracy"] == pytest.approx(best)


def test_dropout_is_off_in_evaluation(tensors: TensorData) -> None:
    trainer, _ = train(tensors, 1, dropout=0.5)
    assert trainer.evaluate("val") == trainer.evaluate("val")


def test_same_seed_same_curve(tensors: TensorData) -> None:
    strip = lambda curve: [{k: v for k, v in m.items() if k != "seconds"} for m in curve]  # noqa: E731
    assert strip(train(tensors, 3, lr=0.01)[1]) == strip(train(tensors, 3, lr=0.01)[1])


def test_weight_decay_shrinks_weights(tensors: TensorData) -> None:
    def norm(weight_decay: float) -> float:
        trainer, _ = train(tensors, 5, lr=0.05, optimizer="sgd", weight_decay=weight_decay)
        return float(sum(p.detach().norm() for p in trainer.model.parameters()))

    assert norm(0.1) < norm(0.0)


def test_unknown_hyperparameter_and_optimizer_are_refused(tensors: TensorData) -> None:
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        Trainer(tensors, {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(tensors, {"optimizer": "lbfgs"})
