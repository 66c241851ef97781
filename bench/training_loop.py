"""Training throughput of the worker's loop beside a minimal hand-written loop, in one run.

Arms (same MLP, same digits training split, same batch size, SGD with momentum, one thread):
  hand        the shortest correct loop over in-memory tensors: shuffle, slice, step
  dataloader  the same loop fed by torch.utils.data.DataLoader over a TensorDataset
  worker      workers.trainer.Trainer.train_epoch, the loop every trial runs
  worker+eval workers.trial_trainer.TrialTrainer.train_epoch: the worker's epoch with its
              validation metrics, early-stopping bookkeeping and lr schedule
Prints samples per second (median of --repeats rounds, arms interleaved) and each arm's
ratio to `hand`.

On CUDA (or with --precision) it also trains the CNN at batch 256 in each `precision`
(fp32, bf16, fp16) for --precision-epochs epochs, and prints samples per second and the
best validation accuracy of each; --json writes every figure to a file.

    .venv/bin/python bench/training_loop.py
    .venv/bin/python bench/training_loop.py --device cuda      # with data on the GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workers.data import load_prepared
from workers.hyperparameters import resolve
from workers.models import build_model
from workers.spec import BuiltinDataset, SplitSpec
from workers.tensors import TensorData
from workers.trainer import Trainer
from workers.trial_trainer import TrialTrainer

BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024)
PARAMS = {"optimizer": "momentum", "lr": 0.01, "hidden_units": 128}


def hand_loop(data: TensorData, batch_size: int) -> Callable[[], None]:
    fold = data.folds[0]
    torch.manual_seed(0)
    model = build_model("mlp", data.sample_shape, data.n_outputs, resolve(PARAMS)).to(
        fold.x_train.device
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x, y = fold.x_train, fold.y_train

    def epoch() -> None:
        model.train()
        order = torch.randperm(len(x), device=x.device)
        xs, ys = x[order], y[order]
        for start in range(0, len(xs), batch_size):
            loss = loss_fn(model(xs[start : start + batch_size]), ys[start : start + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return epoch


def dataloader_loop(data: TensorData, batch_size: int) -> Callable[[], None]:
    fold = data.folds[0]
    torch.manual_seed(0)
    model = build_model("mlp", data.sample_shape, data.n_outputs, resolve(PARAMS)).to(
        fold.x_train.device
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(fold.x_train, fold.y_train), batch_size=batch_size, shuffle=True
    )

    def epoch() -> None:
        model.train()
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return epoch


def worker_loop(data: TensorData, batch_size: int) -> Callable[[], None]:
    params = resolve({**PARAMS, "batch_size": batch_size})
    trainer = Trainer(data, 0, params, model="mlp", max_epochs=10**6, direction="maximize", seed=0)
    return lambda: None if trainer.train_epoch() is None else None


def worker_with_eval(data: TensorData, batch_size: int) -> Callable[[], None]:
    trainer = TrialTrainer(data, {**PARAMS, "batch_size": batch_size}, max_epochs=10**6)
    return lambda: None if trainer.train_epoch() is None else None


ARMS = {
    "hand": hand_loop,
    "dataloader": dataloader_loop,
    "worker": worker_loop,
    "worker+eval": worker_with_eval,
}
CNN = {
    "conv_channels": 64,
    "hidden_units": 256,
    "optimizer": "adam",
    "lr": 0.002,
    "batch_size": 256,
}


def samples_per_second(
    epoch: Callable[[], None], n_samples: int, min_s: float, data: TensorData
) -> float:
    """Every arm waits for the device after each epoch: a loop is done when its work is."""
    epoch()
    sync(data)
    started, n_epochs = time.perf_counter(), 0
    while time.perf_counter() - started < min_s:
        epoch()
        sync(data)
        n_epochs += 1
    return n_samples * n_epochs / (time.perf_counter() - started)


def precision_run(data: TensorData, precision: str, n_epochs: int) -> dict[str, float]:
    """The CNN at batch 256 in `precision`: training samples per second (after a first,
    warm-up epoch; validation not timed) and the best validation accuracy of `n_epochs`."""
    fold = Trainer(
        data,
        0,
        resolve({**CNN, "precision": precision}),
        model="cnn",
        max_epochs=n_epochs + 1,
        direction="maximize",
        seed=0,
    )
    fold.train_epoch()
    train_s, best = 0.0, 0.0
    for _ in range(n_epochs):
        sync(data)
        started = time.perf_counter()
        fold.train_epoch()
        sync(data)
        train_s += time.perf_counter() - started
        best = max(best, fold.evaluate("val")["val_accuracy"])
    n = len(data.folds[0].x_train)
    return {"samples_per_s": n * n_epochs / train_s, "best_val_accuracy": best}


def sync(data: TensorData) -> None:
    """Wait for the device's queued work, so a timer sees all of it (no-op on the CPU)."""
    device = data.folds[0].x_train.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare_precisions(data: TensorData, n_epochs: int) -> dict[str, dict[str, float]]:
    results = {p: precision_run(data, p, n_epochs) for p in ("fp32", "bf16", "fp16")}
    print(
        f"\nCNN (conv {CNN['conv_channels']}/{2 * CNN['conv_channels']}, head "
        f"{CNN['hidden_units']}), batch 256, {n_epochs} epochs after a warm-up one"
    )
    print(f"{'precision':>9} {'samples/s':>12} {'x fp32':>7} {'best val acc':>13}")
    for name, result in results.items():
        ratio = result["samples_per_s"] / results["fp32"]["samples_per_s"]
        print(
            f"{name:>9} {result['samples_per_s']:>12,.0f} {ratio:>7.2f} "
            f"{result['best_val_accuracy']:>13.4f}"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=0.4)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument(
        "--precision", action="store_true", help="compare precisions (the default on CUDA)"
    )
    parser.add_argument("--precision-epochs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False here")
    data = TensorData(
        load_prepared(BuiltinDataset(source="builtin", name="digits"), SplitSpec()), device
    )
    n = len(data.folds[0].x_train)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    figures: dict[str, Any] = {"device": name, "batches": {}}
    print(
        f"digits train split: {n} samples, MLP 64-128-10, device {device}, 1 thread, median of "
        f"{args.repeats}"
    )
    print(
        f"{'batch':>6} "
        + " ".join(f"{arm:>12}" for arm in ARMS)
        + "   worker/hand  dataloader/hand"
    )
    worst = 10.0
    for batch_size in args.batch_sizes:
        loops = {arm: build(data, batch_size) for arm, build in ARMS.items()}
        rounds: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for _ in range(args.repeats):
            for arm, epoch in loops.items():
                rounds[arm].append(samples_per_second(epoch, n, args.min_seconds, data))
        rate = {arm: statistics.median(r) for arm, r in rounds.items()}
        ratio = rate["worker"] / rate["hand"]
        worst = min(worst, ratio)
        figures["batches"][batch_size] = rate
        print(
            f"{batch_size:>6} "
            + " ".join(f"{rate[arm]:>12,.0f}" for arm in ARMS)
            + f"   {ratio:>11.3f}  {rate['dataloader'] / rate['hand']:>15.3f}"
        )
    print(f"lowest worker/hand ratio: {worst:.3f}")
    figures["lowest_worker_over_hand"] = worst
    if args.precision or device.type == "cuda":
        figures["precision"] = compare_precisions(data, args.precision_epochs)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
