"""Orchestration cost per trial of the study driver, beside plain Optuna on the same SQLite.

Arms, in one run, each with a no-op training step (one epoch that returns at once):
  driver    the service's StudyService + driver, writes to its store and Optuna's RDBStorage
  optuna    ask / suggest / report / should_prune / tell on Optuna's RDBStorage directly
Prints ms per trial (median of --repeats) and the ratio driver / optuna.

    .venv/bin/python bench/driver_overhead.py --trials 200 --epochs 1 --sampler tpe
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import optuna

from search.space import suggest
from service.run.runner import LastEpoch, TrialEnd, TrialStart
from service.spec import StudySpec
from service.studies.study_service import StudyService
from storage.engine import create_engine_for, tune_engine
from storage.migrate import upgrade_schema
from storage.repository import Store
from workers.slot import EpochResult, Resumed

METRICS = {"train_loss": 0.1, "val_loss": 0.1, "val_accuracy": 0.5, "lr": 0.1, "seconds": 0.0}


class NoOpSlot:
    node = "bench"
    device = "cpu"

    def __init__(self) -> None:
        self.value = 0.0

    async def start_trial(self, start: TrialStart) -> None:
        self.value = float(start.params["lr"])

    async def resume_trial(self, start: TrialStart) -> Resumed:
        await self.start_trial(start)
        return Resumed([])

    async def run_epoch(self, *, last: LastEpoch | None = None) -> EpochResult:
        return EpochResult({**METRICS, "val_accuracy": self.value})

    async def save_checkpoint(self) -> tuple[int | None, str | None]:
        return None, None

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        return TrialEnd()

    async def close(self) -> None: ...


class NoOpRunner:
    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> NoOpSlot:
        if on_grant is not None:
            on_grant()
        return NoOpSlot()

    async def release_slot(self, slot: NoOpSlot, *, healthy: bool) -> None: ...

    def should_yield(self, slot: NoOpSlot) -> bool:
        return False

    async def close(self) -> None: ...


def make_spec(args: argparse.Namespace) -> StudySpec:
    return StudySpec.model_validate(
        {
            "name": "bench",
            "sampler": {"type": args.sampler, "seed": 0},
            "pruner": {"type": "median"},
            "early_stopping": {"patience": 10_000},
            "budget": {"max_trials": args.trials, "max_epochs": args.epochs, "parallelism": 2},
        }
    )


def fresh_database() -> str:
    url = f"sqlite:///{tempfile.mkdtemp()}/hpo.db"
    upgrade_schema(url)
    return url


def run_driver(args: argparse.Namespace) -> float:
    url = fresh_database()
    store = Store(create_engine_for(url))
    rdb = optuna.storages.RDBStorage(url)
    tune_engine(rdb.engine)

    async def runners(study_id: int, spec: StudySpec) -> Any:
        return NoOpRunner()

    async def main() -> float:
        service = StudyService(store, rdb, runners)
        started = time.perf_counter()
        view = await service.submit(make_spec(args))
        await service.wait(view.record.id)
        return time.perf_counter() - started

    return asyncio.run(main())


def run_optuna(args: argparse.Namespace) -> float:
    url = fresh_database()
    rdb = optuna.storages.RDBStorage(url)
    tune_engine(rdb.engine)
    spec = make_spec(args)
    started = time.perf_counter()
    sampler = (
        optuna.samplers.TPESampler(seed=0)
        if args.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=0)
    )
    study = optuna.create_study(
        storage=rdb, sampler=sampler, pruner=optuna.pruners.MedianPruner(), direction="maximize"
    )
    for _ in range(args.trials):
        trial = study.ask()
        params = suggest(trial, spec.space, spec.params)
        for epoch in range(1, args.epochs + 1):
            trial.report(float(params["lr"]), epoch)
            trial.should_prune()
        study.tell(trial, float(params["lr"]))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    walls: dict[str, list[float]] = {"driver": [], "optuna": []}
    for _ in range(args.repeats):
        walls["driver"].append(run_driver(args))
        walls["optuna"].append(run_optuna(args))
    per_trial = {arm: 1000 * statistics.median(w) / args.trials for arm, w in walls.items()}
    print(
        f"{args.trials} trials x {args.epochs} epochs, sampler {args.sampler}, median of "
        f"{args.repeats}"
    )
    for arm, ms in per_trial.items():
        print(f"  {arm:8s} {ms:7.1f} ms/trial")
    print(f"  ratio driver/optuna: {per_trial['driver'] / per_trial['optuna']:.2f}")


if __name__ == "__main__":
    main()
