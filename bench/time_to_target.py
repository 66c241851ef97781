"""Time to a good model: the 40-trial digits search in the service, Optuna and Ray Tune.

The DESIGN.md default space (search.space.default_space, conditionals included) and the
same training code (workers.trainer.TrialTrainer, early stopping patience 5, up to 30
epochs, one thread per trial) in every arm, two trials at a time:
  service  HTTP submission, SQLite, TPE + ASHA (its defaults), local Ray of 2 CPUs
  optuna   TPE + SuccessiveHalvingPruner, SQLite, 2 processes running optimize()
  tune     OptunaSearch (same space, define-by-run) + ASHAScheduler(max_t=30),
           ConcurrencyLimiter(2), reuse_actors=True
Reports total wall time and the time until some epoch reached val_accuracy >= --target,
in seconds and in units of R, the time to train one default config for 30 epochs here.

    .venv/bin/python -m bench.time_to_target [--seeds 5] [--trials 40] [--target 0.985]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.arms import emit, live_service, run_arm, run_workers, table, wait_study

SLOTS = 2
MAX_EPOCHS = 30
PATIENCE = 5
ARMS = ("service", "optuna", "tune")


def _data() -> Any:
    import torch

    from workers.data import load_prepared
    from workers.spec import BuiltinDataset, SplitSpec
    from workers.trainer import TensorData

    torch.set_num_threads(1)
    prepared = load_prepared(BuiltinDataset(source="builtin", name="digits"), SplitSpec())
    return TensorData(prepared, torch.device("cpu"))


def train(data: Any, params: dict[str, Any], report: Any, target: float) -> float | None:
    """Train one config with early stopping; `report(epoch, value)` True means stop.
    Returns the wall-clock time.time() at which the target was first reached, if it was."""
    from workers.early_stopping import EarlyStopping
    from workers.trainer import TrialTrainer

    trainer = TrialTrainer(data, params, max_epochs=MAX_EPOCHS)
    stopping = EarlyStopping(patience=PATIENCE)
    hit = None
    for epoch in range(1, MAX_EPOCHS + 1):
        value = trainer.train_epoch()["val_accuracy"]
        if hit is None and value >= target:
            hit = time.time()
        if report(epoch, value) or stopping.update(epoch, value):
            break
    return hit


def measure_r(repeat: int = 3) -> float:
    """Seconds to train the default config (workers.hyperparameters.DEFAULTS) 30 epochs."""
    from workers.trainer import TrialTrainer

    data = _data()
    times = []
    for _ in range(repeat):
        trainer = TrialTrainer(data, {}, max_epochs=MAX_EPOCHS)
        started = time.perf_counter()
        for _ in range(MAX_EPOCHS):
            trainer.train_epoch()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def arm_service(trials: int, seed: int, target: float) -> dict[str, Any]:
    spec = {
        "name": f"ttt-{seed}",
        "sampler": {"type": "tpe", "seed": seed},
        "early_stopping": {"patience": PATIENCE},
        "budget": {"max_trials": trials, "max_epochs": MAX_EPOCHS, "parallelism": SLOTS},
    }
    with live_service(num_cpus=SLOTS) as (client, _):
        # A running service: its warm slots have started (bench/cold_start.py measures a
        # cold one), as Optuna's worker processes have before their optimize() window.
        warm_up = {
            **spec,
            "name": f"warm-up-{seed}",
            "budget": {"max_trials": SLOTS, "max_epochs": 1, "parallelism": SLOTS},
        }
        wait_study(client, client.post("/api/v1/studies", json=warm_up).json()["id"])
        created = client.post("/api/v1/studies", json=spec)
        created.raise_for_status()
        study = wait_study(client, created.json()["id"], poll_s=0.5)
        events = client.get(f"/api/v1/studies/{study['id']}/events").text
    start, end = _stamp(study["created_at"]), _stamp(study["finished_at"])
    hits = [
        _stamp(data["at"])
        for kind, data in _events(events)
        if kind == "epoch" and (data.get("val_accuracy") or 0) >= target
    ]
    return {"wall_s": end - start, "to_target_s": min(hits) - start if hits else None,
            "best": study["best"]["value"]}  # fmt: skip


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    found, kind = [], ""
    for line in text.splitlines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            found.append((kind, json.loads(line[6:])))
    return found


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def arm_optuna(trials: int, seed: int, target: float) -> dict[str, Any]:
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'optuna.db'}"
        optuna.create_study(study_name="ttt", storage=url, direction="maximize")
        reports = run_workers(
            "bench.time_to_target", "optuna-worker",
            [["--trials", str(trials // SLOTS), "--seed", str(seed * 10 + i),
              "--target", str(target), "--storage", url] for i in range(SLOTS)],
        )  # fmt: skip
        best = optuna.load_study(study_name="ttt", storage=url).best_value
    start = min(r["start"] for r in reports)
    hits = [r["hit"] for r in reports if r["hit"] is not None]
    return {"wall_s": max(r["end"] for r in reports) - start,
            "to_target_s": min(hits) - start if hits else None, "best": best}  # fmt: skip


def arm_optuna_worker(trials: int, seed: int, target: float, storage: str) -> dict[str, Any]:
    import optuna

    from search.space import suggest
    from service.spec import default_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = _data()
    space = default_space()
    study = optuna.load_study(
        study_name="ttt", storage=storage, sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(),
    )  # fmt: skip
    hits: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        best = 0.0

        def report(epoch: int, value: float) -> bool:
            nonlocal best
            best = max(best, value)
            if value >= target:
                hits.append(time.time())  # before a prune can end the trial
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
            return False

        train(data, suggest(trial, space, {}), report, target)
        return best

    start = time.time()
    study.optimize(objective, n_trials=trials, catch=())
    return {"start": start, "end": time.time(), "hit": min(hits) if hits else None}


def define_space(trial: Any) -> None:
    """The DESIGN.md default space, define-by-run (module level: Tune pickles it)."""
    from search.space import suggest
    from service.spec import default_space

    suggest(trial, default_space(), {})


def arm_tune(trials: int, seed: int, target: float) -> dict[str, Any]:
    import logging

    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    ray.init(address="local", num_cpus=SLOTS, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)  # fmt: skip

    def trainable(config: dict[str, Any]) -> None:
        data = _data()
        hit_at: list[float] = []

        def report(epoch: int, value: float) -> bool:
            if not hit_at and value >= target:
                hit_at.append(time.time())
            tune.report({"val_accuracy": value, "hit": hit_at[0] if hit_at else 0.0})
            return False

        train(data, dict(config), report, target)

    search = ConcurrencyLimiter(
        OptunaSearch(space=define_space, metric="val_accuracy", mode="max",
                     sampler=optuna.samplers.TPESampler(seed=seed)),
        max_concurrent=SLOTS,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            tune_config=tune.TuneConfig(
                search_alg=search, scheduler=ASHAScheduler(max_t=MAX_EPOCHS),
                metric="val_accuracy", mode="max", num_samples=trials, reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0),
        )  # fmt: skip
        start = time.time()
        results = tuner.fit()
        wall = time.time() - start
    frame = results.get_dataframe(filter_metric="val_accuracy", filter_mode="max")
    hits = [h for h in frame["hit"] if h > 0]
    ray.shutdown()
    return {"wall_s": wall, "to_target_s": min(hits) - start if hits else None,
            "best": float(frame["val_accuracy"].max())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=[*ARMS, "optuna-worker"])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.985)
    parser.add_argument("--storage")
    args = parser.parse_args()
    if args.arm == "optuna-worker":
        emit(arm_optuna_worker(args.trials, args.seed, args.target, args.storage))
        return
    if args.arm:
        arm = {"service": arm_service, "optuna": arm_optuna, "tune": arm_tune}[args.arm]
        emit(arm(args.trials, args.seed, args.target))
        return
    r = measure_r()
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for seed in range(args.seeds):
        for arm in ARMS:
            result = run_arm("bench.time_to_target", arm, "--trials", str(args.trials),
                             "--seed", str(seed), "--target", str(args.target))  # fmt: skip
            runs[arm].append(result)
            print(f"seed {seed} {arm}: {result}", file=sys.stderr)
    rows = []
    service_wall = statistics.median(r_["wall_s"] for r_ in runs["service"])
    for arm, results in runs.items():
        wall = statistics.median(x["wall_s"] for x in results)
        reached = [x["to_target_s"] for x in results if x["to_target_s"] is not None]
        to_target = statistics.median(reached) if reached else float("nan")
        rows.append((
            arm, f"{wall:.1f}", f"{wall / r:.1f}", f"{wall / service_wall:.2f}",
            f"{to_target:.1f}", f"{to_target / r:.2f}", f"{len(reached)}/{len(results)}",
            f"{statistics.median(x['best'] for x in results):.4f}",
        ))  # fmt: skip
    print(
        f"\nR = {r:.2f} s (default config, {MAX_EPOCHS} epochs); {args.trials} trials, "
        f"{SLOTS} at a time, medians over {args.seeds} seeds; target {args.target}"
    )
    print(table(rows, ("arm", "wall s", "wall R", "x service", "to target s", "to target R",
                       "reached", "best val")))  # fmt: skip


if __name__ == "__main__":
    main()
