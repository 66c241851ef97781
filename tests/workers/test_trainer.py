"""The trainer learns, regularizes, keeps its best weights, and is deterministic per seed."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from workers.batches import EVAL_CHUNK_ROWS
from workers.data import PreparedData, load_prepared
from workers.metrics import classification_metrics, regression_metrics
from workers.spec import BuiltinDataset, SplitSpec
from workers.tensors import TensorData
from workers.trial_trainer import TrialTrainer

CPU = torch.device("cpu")


def prepared(name: str = "digits", **split: Any) -> PreparedData:
    return load_prepared(BuiltinDataset(source="builtin", name=name), SplitSpec(**split))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def digits() -> TensorData:
    return TensorData(prepared(), CPU)


def train(
    data: TensorData, n_epochs: int, **params: Any
) -> tuple[TrialTrainer, list[dict[str, float]]]:
    objective = params.pop("objective", "val_accuracy")
    direction = params.pop("direction", "maximize")
    trainer = TrialTrainer(
        data,
        {"hidden_units": 64, **params},
        objective=objective,
        direction=direction,
        max_epochs=n_epochs,
    )
    return trainer, [trainer.train_epoch() for _ in range(n_epochs)]


def weights(trainer: TrialTrainer) -> torch.Tensor:
    model = trainer.folds[0].model
    return torch.cat([p.detach().flatten() for p in model.parameters() if p.dim() > 1])


def test_adam_learns_digits_and_reports_every_metric(digits: TensorData) -> None:
    _, curve = train(digits, 8, lr=0.01, optimizer="adam", batch_size=32)
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]
    assert max(m["val_accuracy"] for m in curve) >= 0.95
    assert {"train_loss", "val_loss", "val_accuracy", "val_f1", "lr", "seconds"} <= set(curve[0])
    assert 0 < curve[-1]["val_f1"] <= 1


def test_early_stopping_weights_reproduce_the_best_epoch(digits: TensorData) -> None:
    trainer, curve = train(digits, 12, lr=0.05, optimizer="adam", batch_size=16)
    best = max(m["val_accuracy"] for m in curve)
    assert trainer.best_value == best and curve[trainer.best_epoch - 1]["val_accuracy"] == best  # type: ignore[operator]
    assert trainer.evaluate("val")["val_accuracy"] != best or trainer.best_epoch == 12
    trainer.restore_best()
    assert trainer.evaluate("val")["val_accuracy"] == pytest.approx(best)
    test = trainer.test_metrics()
    assert test is not None and test["test_accuracy"] > 0.9


@pytest.mark.parametrize("knob", [{"dropout": 0.5}, {"input_noise": 2.0}])
def test_dropout_and_input_noise_are_off_in_evaluation(
    digits: TensorData, knob: dict[str, float]
) -> None:
    trainer, _ = train(digits, 1, **knob)
    assert trainer.evaluate("val") == trainer.evaluate("val")
    trainer.folds[0].model.train()
    x = digits.folds[0].x_val
    if "dropout" in knob:
        assert not torch.equal(trainer.folds[0].model(x), trainer.folds[0].model(x))


def test_input_noise_makes_training_harder(digits: TensorData) -> None:
    clean = train(digits, 3, lr=0.01)[1][-1]["train_loss"]
    noisy = train(digits, 3, lr=0.01, input_noise=3.0)[1][-1]["train_loss"]
    assert noisy > clean


def test_l1_shrinks_weights_toward_zero(digits: TensorData) -> None:
    plain, _ = train(digits, 5, lr=0.05, optimizer="sgd")
    sparse, _ = train(digits, 5, lr=0.05, optimizer="sgd", l1=5e-3)
    assert weights(sparse).abs().sum() < 0.8 * weights(plain).abs().sum()
    assert (weights(sparse).abs() < 1e-3).float().mean() > (
        weights(plain).abs() < 1e-3
    ).float().mean()


def test_weight_decay_shrinks_weights(digits: TensorData) -> None:
    plain, _ = train(digits, 5, lr=0.05, optimizer="sgd")
    decayed, _ = train(digits, 5, lr=0.05, optimizer="sgd", weight_decay=0.1)
    assert weights(decayed).norm() < weights(plain).norm()


def test_grad_clip_bounds_each_step(digits: TensorData) -> None:
    trainer = TrialTrainer(
        digits, {"optimizer": "sgd", "lr": 1.0, "grad_clip": 1e-3, "batch_size": "full"}
    )
    before = weights(trainer).clone()
    trainer.train_epoch()
    assert (weights(trainer) - before).norm() <= 1e-3 * 1.0001


def test_label_smoothing_keeps_the_loss_above_its_floor(digits: TensorData) -> None:
    smooth = train(digits, 8, lr=0.01, label_smoothing=0.2)[1][-1]["train_loss"]
    sharp = train(digits, 8, lr=0.01)[1][-1]["train_loss"]
    assert smooth > sharp + 0.2


@pytest.mark.parametrize("batch_size", [1, "full"])
def test_batch_size_from_one_to_full(digits: TensorData, batch_size: int | str) -> None:
    lr = 0.01 if batch_size == 1 else 0.5
    _, curve = train(
        digits, 2 if batch_size == 1 else 20, lr=lr, optimizer="sgd", batch_size=batch_size
    )
    assert max(m["val_accuracy"] for m in curve) > 0.8


def test_model_knobs_build_what_they_name(digits: TensorData) -> None:
    trainer = TrialTrainer(
        digits,
        {
            "hidden_layers": 3,
            "hidden_units": 16,
            "batch_norm": True,
            "activation": "gelu",
            "init": "orthogonal",
        },
    )
    modules = list(trainer.folds[0].model.modules())
    assert sum(isinstance(m, nn.Linear) for m in modules) == 4
    assert sum(isinstance(m, nn.BatchNorm1d) for m in modules) == 3
    assert sum(isinstance(m, nn.GELU) for m in modules) == 3
    first = next(
        m
        for m in modules
        if isinstance(m, nn.Linear) and m.out_features == 16 and m.in_features == 16
    )
    product = first.weight @ first.weight.T
    assert torch.allclose(product / product[0, 0], torch.eye(16), atol=1e-4)


def test_cnn_learns_digit_images(digits: TensorData) -> None:
    trainer = TrialTrainer(
        digits, {"conv_channels": 16, "lr": 0.01, "hidden_units": 64}, model="cnn"
    )
    curve = [trainer.train_epoch() for _ in range(6)]
    assert any(isinstance(m, nn.Conv2d) for m in trainer.folds[0].model.modules())
    assert max(m["val_accuracy"] for m in curve) > 0.9


def test_regression_is_chosen_from_the_data_and_learns() -> None:
    data = TensorData(prepared("synthetic-regression"), CPU)
    assert data.task == "regression" and data.n_outputs == 1
    _, curve = train(data, 15, lr=0.01, objective="val_rmse", direction="minimize")
    assert {"val_rmse", "val_mae", "val_r2", "val_loss"} <= set(curve[0])
    assert curve[-1]["val_rmse"] < curve[0]["val_rmse"]
    assert max(m["val_r2"] for m in curve) > 0.8


def test_k_fold_trains_every_fold_and_reports_the_mean() -> None:
    data = TensorData(prepared(folds=3), CPU)
    assert len(data.folds) == 3
    trainer = TrialTrainer(data, {"lr": 0.01, "hidden_units": 32})
    metrics = trainer.train_epoch()
    per_fold = [fold.evaluate("val")["val_accuracy"] for fold in trainer.folds]
    assert metrics["val_accuracy"] == pytest.approx(sum(per_fold) / 3)
    assert len({round(v, 6) for v in per_fold}) > 1


def test_same_seed_same_curve(digits: TensorData) -> None:
    def strip(curve: list[dict[str, float]]) -> list[dict[str, float]]:
        return [
            {k: v for k, v in m.items() if k not in ("seconds", "train_seconds")} for m in curve
        ]

    params = {"lr": 0.01, "dropout": 0.2, "input_noise": 0.1}
    assert strip(train(digits, 3, **params)[1]) == strip(train(digits, 3, **params)[1])


def test_a_huge_learning_rate_diverges_without_raising(digits: TensorData) -> None:
    _, curve = train(digits, 3, lr=10.0, optimizer="sgd")
    assert any(not torch.isfinite(torch.tensor(m["train_loss"])) for m in curve)


def test_unknown_hyperparameter_and_optimizer_are_refused(digits: TensorData) -> None:
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        TrialTrainer(digits, {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrialTrainer(digits, {"optimizer": "lbfgs"})


class BatchSizes(nn.Module):
    """A real module around a model that records the rows of each call, by mode."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows: dict[bool, list[int]] = {True: [], False: []}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows[self.training].append(int(x.shape[0]))
        return self.inner(x)


def record_batches(trainer: TrialTrainer) -> BatchSizes:
    fold = trainer.folds[0]
    fold.model = BatchSizes(fold.model)
    return fold.model


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("batch_size", [2, 3, 4, 7])
def test_every_batch_size_trains_every_row_with_and_without_batch_norm(
    digits: TensorData, batch_size: int, batch_norm: bool
) -> None:
    n_train = len(digits.folds[0].y_train)  # 1077: batch sizes 2 and 4 leave a last row alone
    trainer = TrialTrainer(
        digits, {"hidden_units": 16, "batch_size": batch_size, "batch_norm": batch_norm}
    )
    rows = record_batches(trainer).rows[True]
    metrics = trainer.train_epoch()
    assert sum(rows) == n_train
    assert rows[:-1] == [batch_size] * (len(rows) - 1) and rows[-1] < 2 * batch_size
    assert min(rows) >= (2 if batch_norm else 1)
    assert rows[-1] == (n_train % batch_size or batch_size) or batch_norm
    assert math.isfinite(metrics["train_loss"]) and metrics["val_accuracy"] > 0.1


def training_data(name: str, **split: Any) -> TensorData:
    return TensorData(prepared(name, **split), CPU)


@pytest.mark.parametrize("name", ["synthetic-classification", "synthetic-regression"])
def test_evaluation_runs_in_bounded_chunks_with_the_unchunked_metrics(name: str) -> None:
    data = training_data(name, validation=0.7, test=0.0)  # 1,400 validation rows
    x_val, y_val = data.folds[0].x_val, data.folds[0].y_val
    assert len(x_val) > EVAL_CHUNK_ROWS
    objective = "val_accuracy" if data.task == "classification" else "val_rmse"
    trainer = TrialTrainer(
        data, {"hidden_units": 16, "batch_size": 32, "batch_norm": True}, objective=objective
    )
    trainer.train_epoch()
    fold = trainer.folds[0]
    model = fold.model
    model.eval()
    with torch.no_grad():
        output = model(x_val)
    unchunked = {"loss": fold.loss_fn(output, y_val)}
    if data.task == "classification":
        unchunked.update(classification_metrics(output, y_val))
    else:
        unchunked.update(regression_metrics(output, y_val, data.folds[0].y_scale))
    rows = record_batches(trainer).rows[False]
    metrics = fold.evaluate("val")
    assert metrics == pytest.approx({f"val_{k}": float(v) for k, v in unchunked.items()}, rel=1e-5)
    assert sum(rows) == len(x_val) and len(rows) > 1 and max(rows) <= EVAL_CHUNK_ROWS


def _feature_bytes(data: TensorData) -> int:
    """Bytes of distinct float storages that the folds' tensors hold."""
    storages = {}
    for fold in data.folds:
        for tensor in vars(fold).values():
            if torch.is_tensor(tensor) and tensor.is_floating_point() and tensor.dim() == 2:
                storage = tensor.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def test_k_fold_tensors_share_one_copy_of_the_features() -> None:
    raw = prepared(folds=5)
    data = TensorData(raw, CPU)
    n_rows = 1797
    one_copy = n_rows * raw.n_features * 4
    assert 0 < _feature_bytes(data) <= one_copy
    trainer = TrialTrainer(data, {"hidden_units": 16, "lr": 0.01})
    metrics = trainer.train_epoch()
    assert metrics["val_accuracy"] > 0.5
