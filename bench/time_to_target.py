"""Time to a good model: the 40-trial digits search in the service, Optuna and Ray Tune.

The DESIGN.md default space (search.space.default_space, conditionals included) and the
same training code (workers.trial_trainer.TrialTrainer, early stopping patience 5, up to 30
epochs, one thread per trial) in every arm, two trials at a time, and the same pruning
rungs everywhere (successive halving from epoch 1 by a factor of 3: rungs at epochs 1, 3,
9 and 27):
  service  HTTP submission, SQLite, TPE + ASHA(min_epochs 1, reduction_factor 3),
           local Ray of 2 CPUs
  optuna   TPE + SuccessiveHalvingPruner(min_resource 1, reduction_factor 3), SQLite,
           2 processes running optimize()
  tune     OptunaSearch (same space, define-by-run) + ASHAScheduler(grace_period 1,
           reduction_factor 3, max_t 30), ConcurrencyLimiter(2), reuse_actors=True
Each arm is timed cold and warm. Cold: from the arm's process launch, nothing running,
to the last trial's end (the service's start, Ray's start, imports and actors
included). Warm: the workers are up: the service's second study (after the cold one),
Optuna's optimize() window (its processes started, imported and holding the data),
Tune's second Tuner.fit() in the same Ray session. "Best" is the same in every arm: the
best val_accuracy of any epoch of any trial, complete or pruned, of the warm search.
Every epoch's value is recorded with its time, so the same runs give the best value
reached within a wall budget (`bench/search_quality.py` reads them that way).

    .venv/bin/python -m bench.time_to_target [--seeds 10] [--trials 40] [--target 0.985]
"""

from __future__ import annotations

import argparse
import functools
import json
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


def digits_tensors() -> Any:
    """The digits split of every arm, as tensors on the CPU, torch on one thread."""
    import torch

    from workers.data import load_prepared
    from workers.spec import BuiltinDataset, SplitSpec
    from workers.tensors import TensorData

    torch.set_num_threads(1)
    prepared = load_prepared(BuiltinDataset(source="builtin", name="digits"), SplitSpec())
    return TensorData(prepared, torch.device("cpu"))


def train(data: Any, params: dict[str, Any], report: Any) -> None:
    """Train one config with early stopping; `report(epoch, value)` True means stop."""
    from workers.early_stopping import EarlyStopping
    from workers.trial_trainer import TrialTrainer

    trainer = TrialTrainer(data, params, max_epochs=MAX_EPOCHS)
    stopping = EarlyStopping(patience=PATIENCE)
    for epoch in range(1, MAX_EPOCHS + 1):
        value = trainer.train_epoch()["val_accuracy"]
        if report(epoch, value) or stopping.update(epoch, value):
            break


def measure_r(repeat: int = 3) -> float:
    """Seconds to train the default config (workers.hyperparameters.DEFAULTS) 30 epochs."""
    from workers.trial_trainer import TrialTrainer

    data = digits_tensors()
    times = []
    for _ in range(repeat):
        trainer = TrialTrainer(data, {}, max_epochs=MAX_EPOCHS)
        started = time.perf_counter()
        for _ in range(MAX_EPOCHS):
            trainer.train_epoch()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


RUNGS = {"min_epochs": 1, "reduction_factor": 3}  # successive halving in every arm


def arm_service(
    trials: int, seed: int, target: float, wall_s: float | None, *, tpe: bool = True
) -> dict[str, Any]:
    """A cold study on a service launched for it, then the same study again, warm; with
    `tpe` False, random search without pruning (search_quality.py's reference)."""
    budget: dict[str, Any] = {"max_trials": trials, "max_epochs": MAX_EPOCHS, "parallelism": SLOTS}
    if wall_s is not None:
        budget["timeout_s"] = wall_s
    spec = {
        "sampler": {"type": "tpe" if tpe else "random", "seed": seed},
        "pruner": {"type": "asha", **RUNGS} if tpe else {"type": "none"},
        "early_stopping": {"patience": PATIENCE},
        "budget": budget,
    }
    runs = {}
    with live_service(num_cpus=SLOTS) as (client, _):
        for kind in ("cold", "warm"):
            created = client.post("/api/v1/studies", json={**spec, "name": f"ttt-{seed}-{kind}"})
            created.raise_for_status()
            study = wait_study(client, created.json()["id"], poll_s=0.5)
            events = client.get(f"/api/v1/studies/{study['id']}/events").text
            epochs = [
                (_stamp(data["at"]), data["val_accuracy"])
                for name, data in _events(events)
                if name == "epoch" and data.get("val_accuracy") is not None
            ]
            runs[kind] = {
                "start": _stamp(study["created_at"]),
                "end": _stamp(study["finished_at"]),
                "epochs": epochs,
            }
    return runs


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


def arm_optuna(trials: int, seed: int, target: float, wall_s: float | None) -> dict[str, Any]:
    """Two worker processes on one SQLite study; cold counts their start, warm does not."""
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'optuna.db'}"
        optuna.create_study(study_name="ttt", storage=url, direction="maximize")
        wall = ["--wall-s", str(wall_s)] if wall_s is not None else []
        reports = run_workers(
            "bench.time_to_target",
            "optuna-worker",
            [
                [
                    "--trials",
                    str(trials // SLOTS),
                    "--seed",
                    str(seed * 10 + i),
                    "--target",
                    str(target),
                    "--storage",
                    url,
                    *wall,
                ]
                for i in range(SLOTS)
            ],
        )
    epochs = sorted(tuple(e) for r in reports for e in r["epochs"])
    end = max(r["end"] for r in reports)
    # One search: the cold run is the warm run with the processes' start in front of it.
    warm = {"start": min(r["start"] for r in reports), "end": end, "epochs": epochs}
    return {"cold": {**warm, "start": None}, "warm": warm}


def arm_optuna_worker(
    trials: int, seed: int, target: float, storage: str, wall_s: float | None
) -> dict[str, Any]:
    import optuna

    from search.space import suggest
    from service.spec import default_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = digits_tensors()
    space = default_space()
    study = optuna.load_study(
        study_name="ttt",
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=RUNGS["min_epochs"], reduction_factor=RUNGS["reduction_factor"]
        ),
    )
    epochs: list[tuple[float, float]] = []

    def objective(trial: optuna.Trial) -> float:
        best = 0.0

        def report(epoch: int, value: float) -> bool:
            nonlocal best
            best = max(best, value)
            epochs.append((time.time(), value))
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
            return False

        train(data, suggest(trial, space, {}), report)
        return best

    start = time.time()
    study.optimize(objective, n_trials=trials, timeout=wall_s, catch=())
    return {"start": start, "end": time.time(), "epochs": epochs}


def define_space(trial: Any) -> None:
    """The DESIGN.md default space, define-by-run (module level: Tune pickles it)."""
    from search.space import suggest
    from service.spec import default_space

    suggest(trial, default_space(), {})


def arm_tune(trials: int, seed: int, target: float, wall_s: float | None) -> dict[str, Any]:
    """Ray started for it and a cold Tuner.fit(), then a second fit in the same session."""
    import logging

    import ray

    ray.init(
        address="local",
        num_cpus=SLOTS,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        return {kind: _tune_fit(trials, seed, wall_s) for kind in ("cold", "warm")}
    finally:
        ray.shutdown()


def _tune_fit(trials: int, seed: int, wall_s: float | None) -> dict[str, Any]:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    def trainable(config: dict[str, Any]) -> None:
        data = digits_tensors()

        def report(epoch: int, value: float) -> bool:
            tune.report({"val_accuracy": value, "at": time.time()})
            return False

        train(data, dict(config), report)

    search = ConcurrencyLimiter(
        OptunaSearch(
            space=define_space,
            metric="val_accuracy",
            mode="max",
            sampler=optuna.samplers.TPESampler(seed=seed),
        ),
        max_concurrent=SLOTS,
    )
    scheduler = ASHAScheduler(
        max_t=MAX_EPOCHS,
        grace_period=RUNGS["min_epochs"],
        reduction_factor=RUNGS["reduction_factor"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            tune_config=tune.TuneConfig(
                search_alg=search,
                scheduler=scheduler,
                metric="val_accuracy",
                mode="max",
                num_samples=trials,
                reuse_actors=True,
                time_budget_s=wall_s,
            ),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0),
        )
        start = time.time()
        results = tuner.fit()
        end = time.time()
    epochs = sorted(
        (float(at), float(value))
        for result in (results[i] for i in range(len(results)))
        if result.metrics_dataframe is not None and "at" in result.metrics_dataframe
        for at, value in zip(
            result.metrics_dataframe["at"], result.metrics_dataframe["val_accuracy"], strict=True
        )
    )
    return {"start": start, "end": end, "epochs": epochs}


def figures(run: dict[str, Any], launched: float, target: float) -> dict[str, Any]:
    """Cold and warm wall, time to target and best value of one arm's run of one seed."""
    cold, warm = run["cold"], run["warm"]
    hits = [t for t, value in warm["epochs"] if value >= target]
    return {
        "cold_s": cold["end"] - launched,
        "warm_s": warm["end"] - warm["start"],
        "to_target_s": min(hits) - warm["start"] if hits else None,
        "best": max((value for _, value in warm["epochs"]), default=0.0),
        "epochs": len(warm["epochs"]),
    }


def best_within(run: dict[str, Any], wall_s: float) -> float:
    """The best value of any epoch that ended within `wall_s` of the warm search's start."""
    warm = run["warm"]
    return max((v for t, v in warm["epochs"] if t - warm["start"] <= wall_s), default=0.0)


def run_seeds(
    seeds: int,
    trials: int,
    target: float,
    wall_s: float | None = None,
    arms: tuple[str, ...] = ARMS,
) -> dict[str, list[dict[str, Any]]]:
    """Every arm for every seed, arms interleaved within a seed; each run with its launch."""
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    wall = ["--wall-s", str(wall_s)] if wall_s is not None else []
    for seed in range(seeds):
        for arm in arms:
            launched = time.time()
            result = run_arm(
                "bench.time_to_target",
                arm,
                "--trials",
                str(trials),
                "--seed",
                str(seed),
                "--target",
                str(target),
                *wall,
            )
            runs[arm].append({**result, "launched": launched})
            f = figures(result, launched, target)
            print(
                f"seed {seed} {arm}: cold {f['cold_s']:.1f} s, warm {f['warm_s']:.1f} s, "
                f"best {f['best']:.4f}, epochs {f['epochs']}",
                file=sys.stderr,
            )
    return runs


def spread(values: list[float], digits: int) -> str:
    """Median and range, e.g. `4.6 (2.9-5.9)`."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


ARM_FUNCTIONS = {
    "service": arm_service,
    "optuna": arm_optuna,
    "tune": arm_tune,
    "service-random": functools.partial(arm_service, tpe=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=[*ARM_FUNCTIONS, "optuna-worker"])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.985)
    parser.add_argument("--wall-s", type=float, help="stop each search after this long")
    parser.add_argument("--storage")
    parser.add_argument("--out", type=Path, help="write every run (epochs timed) as JSON")
    args = parser.parse_args()
    if args.arm == "optuna-worker":
        emit(arm_optuna_worker(args.trials, args.seed, args.target, args.storage, args.wall_s))
        return
    if args.arm:
        emit(ARM_FUNCTIONS[args.arm](args.trials, args.seed, args.target, args.wall_s))
        return
    r = measure_r()
    runs = run_seeds(args.seeds, args.trials, args.target, args.wall_s)
    if args.out:
        args.out.write_text(json.dumps({"r": r, "target": args.target, "runs": runs}))
    print(report(runs, r, args.trials, args.seeds, args.target))


def report(
    runs: dict[str, list[dict[str, Any]]], r: float, trials: int, seeds: int, target: float
) -> str:
    per_arm = {
        arm: [figures(run, run["launched"], target) for run in results]
        for arm, results in runs.items()
    }
    service_warm = statistics.median(f["warm_s"] for f in per_arm["service"])
    rows: list[tuple[str, ...]] = []
    for arm, fs in per_arm.items():
        warm = [f["warm_s"] for f in fs]
        reached = [f["to_target_s"] for f in fs if f["to_target_s"] is not None]
        rows.append(
            (
                arm,
                spread([f["cold_s"] for f in fs], 1),
                spread(warm, 1),
                f"{statistics.median(warm) / r:.1f}",
                f"{statistics.median(warm) / service_warm:.2f}",
                spread(reached, 1) if reached else "-",
                f"{len(reached)}/{len(fs)}",
                spread([f["best"] for f in fs], 4),
            )
        )
    return (
        f"\nR = {r:.2f} s (default config, {MAX_EPOCHS} epochs); {trials} trials, {SLOTS} at "
        f"a time; median (min-max) over {seeds} seeds; target {target}\n"
        + table(
            rows,
            (
                "arm",
                "cold wall s",
                "warm wall s",
                "warm R",
                "warm x service",
                "to target s (warm)",
                "reached",
                "best val_accuracy (warm)",
            ),
        )
    )


if __name__ == "__main__":
    main()
