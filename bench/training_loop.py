"""Training throughput of the worker's loop beside a minimal hand-written loop, in one run.

Arms (same MLP, same digits training split, same batch size, SGD with momentum, one thread):
  hand        the shortest correct loop over in-memory tensors: shuffle, slice, step
  dataloader  the same loop fed by torch.utils.data.DataLoader over a TensorDataset
  worker      workers.trainer.Trainer.train_epoch, the loop every trial runs
  worker+eval workers.trainer.TrialTrainer.train_epoch: the worker's epoch with its
              validation metrics, early-stopping bookkeeping and lr schedule
Prints samples per second (median of --repeats rounds, arms interleaved) and each arm's
ratio to `hand`.

    .venv/bin/python bench/training_loop.py
    .venv/bin/python bench/training_loop.py --device cuda      # with data on the GPU
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workers.data import load_prepared
from workers.hyperparameters import resolve
from workers.models import build_model
from workers.spec import BuiltinDataset, SplitSpec
from workers.trainer import TensorData, Trainer, TrialTrainer

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


ARMS = {"hand": hand_loop, "dataloader": dataloader_loop, "worker": worker_loop,
        "worker+eval": worker_with_eval}  # fmt: skip


def samples_per_second(epoch: Callable[[], None], n_samples: int, min_s: float) -> float:
    epoch()
    started, n_epochs = time.perf_counter(), 0
    while time.perf_counter() - started < min_s:
        epoch()
        n_epochs += 1
    return n_samples * n_epochs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=0.4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    data = TensorData(
        load_prepared(BuiltinDataset(source="builtin", name="digits"), SplitSpec()), device
    )
    n = len(data.folds[0].x_train)
    print(f"digits train split: {n} samples, MLP 64-128-10, device {device}, 1 thread, "
          f"median of {args.repeats}")  # fmt: skip
    print(
        f"{'batch':>6} "
        + " ".join(f"{arm:>12}" for arm in ARMS)
        + "   worker/hand  dataloader/hand"
    )
    worst = 10.0
    for batch_size in BATCH_SIZES:
        loops = {arm: build(data, batch_size) for arm, build in ARMS.items()}
        rounds: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for _ in range(args.repeats):
            for arm, epoch in loops.items():
                rounds[arm].append(samples_per_second(epoch, n, args.min_seconds))
        rate = {arm: statistics.median(r) for arm, r in rounds.items()}
        ratio = rate["worker"] / rate["hand"]
        worst = min(worst, ratio)
        print(f"{batch_size:>6} " + " ".join(f"{rate[arm]:>12,.0f}" for arm in ARMS)
              + f"   {ratio:>11.3f}  {rate['dataloader'] / rate['hand']:>15.3f}")  # fmt: skip
    print(f"lowest worker/hand ratio: {worst:.3f}")


if __name__ == "__main__":
    main()
