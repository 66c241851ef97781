"""Orchestration cost per trial: the service against plain Optuna and Ray Tune.

300 trials of a trivial objective, two at a time, the same TPE everywhere (`TPE`:
constant_liar on), one thread per trial:
  service        HTTP submission, SQLite, a local Ray of 2 CPUs; the task is the
                 `analytic` plug-in (bench/plugin: one "epoch" that trains nothing),
                 measured on a second study, after a 4-trial one has warmed the slots
  service-sqlite-default  the same on SQLite's own durability, as Optuna runs it out of
                 the box (HPO_SQLITE_DURABILITY=sqlite-default: rollback journal,
                 synchronous=FULL)
  optuna-memory  optuna.create_study() in memory, optimize(n_jobs=2)
  optuna-sqlite  one SQLite study, 2 processes each running optimize(n_trials=150), on
                 the service's SQLite PRAGMAs (WAL, synchronous=NORMAL)
  tune           Ray Tune, OptunaSearch behind ConcurrencyLimiter(2), reuse_actors=True
  ray-floor      the least a design running trials in Ray actors costs: one process drawing
                 with in-memory Optuna and two warm actors computing the score, no storage,
                 no HTTP, no training machinery
Cost per trial = (wall - time inside the objective) / trials x 2 slots. Wall counts from
the first trial's start to the last one's end as each tool records it (the trials'
started/finished times for the service, optimize() for Optuna, a Tune callback's trial
start and complete), so no arm pays its start-up here: the service's (data, slot actors)
and Tune's (actors) are shown beside it, and bench/cold_start.py measures start-up.
For the service and the floor, the CPU per trial of the drawing process (one GIL: two trials
at a time cannot cost less than twice it) and of the slot processes, in the same window.

    .venv/bin/python -m bench.overhead [--trials 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.arms import (
    all_trials,
    emit,
    histogram_quantiles,
    live_service,
    medians,
    run_arm,
    run_workers,
    table,
    wait_study,
)

SLOTS = 2
ARMS = ("service", "service-sqlite-default", "optuna-memory", "optuna-sqlite", "tune", "ray-floor")
# The same TPE in every arm: the service's defaults, constant_liar on (two trials run at
# once in every arm), stated in the service's spec too.
TPE: dict[str, Any] = {"n_startup_trials": 10, "multivariate": False, "constant_liar": True}


def tpe(seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, **TPE)


def sqlite_storage(url: str) -> Any:
    """Optuna's RDBStorage on SQLite with the service's own PRAGMAs (WAL,
    synchronous=NORMAL, ...), so that both write with the same durability."""
    import optuna

    from storage.engine import tune_engine

    storage = optuna.storages.RDBStorage(url)
    tune_engine(storage.engine)
    return storage


def score(lr: float, x: float) -> float:
    """The same bowl as bench/plugin's analytic task."""
    return (math.log10(lr) + 2.0) ** 2 + x**2


def service_spec(trials: int, seed: int) -> dict[str, Any]:
    return {
        "name": f"overhead-{seed}",
        "model": {"kind": "plugin", "name": "analytic"},
        "dataset": {"source": "plugin", "name": "analytic"},
        "objective": {"metric": "val_rmse", "direction": "minimize"},
        "space": {
            "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "x": {"type": "float", "low": -1.0, "high": 1.0},
        },
        "params": {"batch_size": "full", "optimizer": "sgd"},
        "sampler": {"type": "tpe", "seed": seed, **TPE},
        "pruner": {"type": "none"},
        "budget": {"max_trials": trials, "max_epochs": 1, "parallelism": SLOTS},
        "resources": {"cpus_per_trial": 1},
    }


def arm_service(trials: int, seed: int) -> dict[str, Any]:
    from bench.cpu_use import TreeCpu

    samplers: list[TreeCpu] = []
    with (
        contextlib.ExitStack() as stack,
        live_service(
            num_cpus=SLOTS, on_start=lambda pid: samplers.append(stack.enter_context(TreeCpu(pid)))
        ) as (client, _),
    ):
        # A running service: a short study first, so that the slots have imported torch
        # and the trainer before the measured window (as Tune's actors have before its
        # first trial starts, and as every search after a service's first).
        warm_up = client.post("/api/v1/studies", json=service_spec(4, seed) | {"name": "warm-up"})
        wait_study(client, warm_up.json()["id"], poll_s=0.1)
        created = client.post("/api/v1/studies", json=service_spec(trials, seed))
        created.raise_for_status()
        study = wait_study(client, created.json()["id"], poll_s=0.5)
        assert study["state"] == "completed", study
        done = all_trials(client, study["id"])
        objective_s = 0.0
        for trial in done:
            detail = client.get(f"/api/v1/studies/{study['id']}/trials/{trial['number']}").json()
            objective_s += sum(e["seconds"] or 0.0 for e in detail["epochs"])
        metrics = client.get("/metrics").text
    # The trials' window, as for every arm; study start-up (data, slot actors) is in
    # `startup_s` and in bench/cold_start.py.
    first = min(_time(t["started_at"]) for t in done)
    wall = max(_time(t["finished_at"]) for t in done) - first
    startup = first - _time(study["created_at"])
    # CPU per trial by process role, in the same window: the service process is one GIL.
    cpu = {
        f"{role}_cpu_ms": seconds / len(done) * 1e3
        for role, seconds in samplers[0].spent(first, first + wall).items()
    }
    ask = histogram_quantiles(metrics, "hpo_optuna_ask_seconds", (0.5, 0.95))
    tell = histogram_quantiles(metrics, "hpo_optuna_tell_seconds", (0.5, 0.95))
    return {
        "trials": len(done),
        "wall_s": wall,
        "objective_s": objective_s,
        "startup_s": startup,
        "best": study["best"]["value"],
        "ask_p50_ms": ask[0] * 1e3,
        "ask_p95_ms": ask[1] * 1e3,
        "tell_p50_ms": tell[0] * 1e3,
        "tell_p95_ms": tell[1] * 1e3,
        **cpu,
    }


def arm_service_sqlite_default(trials: int, seed: int) -> dict[str, Any]:
    """The service on SQLite's own durability (rollback journal, synchronous=FULL), which
    Optuna's RDBStorage runs with out of the box."""
    os.environ["HPO_SQLITE_DURABILITY"] = "sqlite-default"
    return arm_service(trials, seed)


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _objective(spent: list[float]) -> Any:
    def objective(trial: Any) -> float:
        # suggest_* is Optuna's orchestration (it writes params to the storage), not work.
        lr, x = trial.suggest_float("lr", 1e-4, 1.0, log=True), trial.suggest_float("x", -1, 1)
        started = time.perf_counter()
        value = score(lr, x)
        spent.append(time.perf_counter() - started)
        return value

    return objective


def arm_optuna_memory(trials: int, seed: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spent: list[float] = []
    study = optuna.create_study(sampler=tpe(seed))
    started = time.perf_counter()
    study.optimize(_objective(spent), n_trials=trials, n_jobs=SLOTS)
    return {
        "trials": len(study.trials),
        "wall_s": time.perf_counter() - started,
        "objective_s": sum(spent),
        "best": study.best_value,
    }


def arm_optuna_sqlite(trials: int, seed: int) -> dict[str, Any]:
    """Two processes share one SQLite study, as Optuna's docs run distributed optimization."""
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'optuna.db'}"
        optuna.create_study(study_name="overhead", storage=sqlite_storage(url))
        reports = run_workers(
            "bench.overhead",
            "optuna-sqlite-worker",
            [
                ["--trials", str(trials // SLOTS), "--seed", str(seed + i), "--storage", url]
                for i in range(SLOTS)
            ],
        )
        study = optuna.load_study(study_name="overhead", storage=sqlite_storage(url))
        best = study.best_value
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return {
        "trials": sum(r["trials"] for r in reports),
        "wall_s": wall,
        "objective_s": sum(r["objective_s"] for r in reports),
        "best": best,
    }


def arm_optuna_sqlite_worker(trials: int, seed: int, storage: str) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name="overhead", storage=sqlite_storage(storage), sampler=tpe(seed)
    )
    spent: list[float] = []
    start = time.time()
    study.optimize(_objective(spent), n_trials=trials)
    return {"trials": trials, "start": start, "end": time.time(), "objective_s": sum(spent)}


def arm_tune(trials: int, seed: int) -> dict[str, Any]:
    import logging

    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    ray.init(
        address="local",
        num_cpus=SLOTS,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )

    def trainable(config: dict[str, Any]) -> None:
        started = time.perf_counter()
        value = score(config["lr"], config["x"])
        tune.report({"score": value, "objective_s": time.perf_counter() - started})

    search = ConcurrencyLimiter(
        OptunaSearch(metric="score", mode="min", sampler=tpe(seed)), max_concurrent=SLOTS
    )
    window: list[float] = []

    class TrialWindow(tune.Callback):
        """The trials' window: first trial start to last trial end, as for every arm."""

        def on_trial_start(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            if not window:
                window.append(time.time())

        def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            window[1:] = [time.time()]

    with tempfile.TemporaryDirectory() as tmp:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"lr": tune.loguniform(1e-4, 1.0), "x": tune.uniform(-1.0, 1.0)},
            tune_config=tune.TuneConfig(search_alg=search, num_samples=trials, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0, callbacks=[TrialWindow()]),
        )
        fit_started = time.time()
        results = tuner.fit()
    wall, startup = window[1] - window[0], window[0] - fit_started
    frame = results.get_dataframe()
    ray.shutdown()
    return {
        "trials": len(frame),
        "wall_s": wall,
        "startup_s": startup,
        "objective_s": float(frame["objective_s"].sum()),
        "best": float(frame["score"].min()),
    }


def arm_ray_floor(trials: int, seed: int) -> dict[str, Any]:
    """The least a design that runs trials in Ray actors can cost: one process drawing with
    in-memory Optuna, two actors computing the score, nothing written, no HTTP."""
    import logging

    import optuna
    import ray

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(
        address="local",
        num_cpus=SLOTS,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )

    @ray.remote(num_cpus=1)
    class Scorer:
        def run(self, lr: float, x: float) -> tuple[float, float]:
            started = time.perf_counter()
            value = score(lr, x)
            return value, time.perf_counter() - started

    actors = [Scorer.remote() for _ in range(SLOTS)]  # type: ignore[attr-defined]
    ray.get([a.run.remote(0.01, 0.0) for a in actors])  # started and warm, as the service's slots
    study = optuna.create_study(sampler=tpe(seed))
    running: dict[Any, tuple[Any, Any]] = {}
    spent, asked = 0.0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while asked < trials or running:
        while asked < trials and len(running) < SLOTS:
            trial = study.ask()
            lr, x = trial.suggest_float("lr", 1e-4, 1.0, log=True), trial.suggest_float("x", -1, 1)
            busy = {a for _, a in running.values()}
            actor = next(a for a in actors if a not in busy)
            running[actor.run.remote(lr, x)] = (trial, actor)
            asked += 1
        [ready], _ = ray.wait(list(running), num_returns=1)
        trial, _ = running.pop(ready)
        value, seconds = ray.get(ready)
        spent += seconds
        study.tell(trial, value)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    ray.shutdown()
    return {
        "trials": trials,
        "wall_s": wall,
        "objective_s": spent,
        "best": study.best_value,
        "service_cpu_ms": cpu / trials * 1e3,
    }


def cost_ms(result: dict[str, Any]) -> float:
    return (result["wall_s"] - result["objective_s"]) / result["trials"] * SLOTS * 1e3


def _cpu(summary: dict[str, Any], role: str) -> str:
    """CPU per trial of the process that draws and records (the service's, the floor's
    driver) or of the slot processes; blank for arms where it is not measured."""
    value = summary.get(f"{role}_cpu_ms")
    return "" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=[*ARMS, "optuna-sqlite-worker"])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage")
    args = parser.parse_args()
    if args.arm == "optuna-sqlite-worker":
        emit(arm_optuna_sqlite_worker(args.trials, args.seed, args.storage))
        return
    if args.arm:
        arm = {
            "service": arm_service,
            "service-sqlite-default": arm_service_sqlite_default,
            "optuna-memory": arm_optuna_memory,
            "optuna-sqlite": arm_optuna_sqlite,
            "tune": arm_tune,
            "ray-floor": arm_ray_floor,
        }[args.arm]
        emit(arm(args.trials, args.seed))
        return
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for repetition in range(args.repeat):  # arms interleaved, so drift hits all alike
        for arm in ARMS:
            result = run_arm(
                "bench.overhead", arm, "--trials", str(args.trials), "--seed", str(repetition)
            )
            result["cost_ms"] = cost_ms(result)
            runs[arm].append(result)
            print(f"rep {repetition} {arm}: {result['cost_ms']:.1f} ms/trial", file=sys.stderr)
    summary = {arm: medians(results) for arm, results in runs.items()}
    service = summary["service"]["cost_ms"]
    rows = [
        (
            arm,
            f"{s['trials']:.0f}",
            f"{s.get('startup_s', 0):.2f}",
            f"{s['wall_s']:.2f}",
            f"{s['objective_s']:.2f}",
            f"{s['cost_ms']:.1f}",
            f"{s['cost_ms'] / service:.2f}",
            _cpu(s, "service"),
            _cpu(s, "slots"),
            f"{s['best']:.4g}",
        )
        for arm, s in summary.items()
    ]
    print(f"\n{args.trials} trials, {SLOTS} at a time, median of {args.repeat}")
    print(
        table(
            rows,
            (
                "arm",
                "trials",
                "start-up s",
                "trials' wall s",
                "objective s",
                "cost ms/trial",
                "x service",
                "driver CPU ms/trial",
                "slots CPU ms/trial",
                "best",
            ),
        )
    )
    s = summary["service"]
    print(
        f"\nservice ask p50/p95 {s['ask_p50_ms']:.2f}/{s['ask_p95_ms']:.2f} ms, "
        f"tell p50/p95 {s['tell_p50_ms']:.2f}/{s['tell_p95_ms']:.2f} ms "
        "(from its /metrics histograms)"
    )


if __name__ == "__main__":
    main()
