"""Time from submission to the first epoch result persisted, warm and cold.

One digits MLP trial (default config, one thread) in each arm:
  service-warm  a running `hpo serve` (SQLite, local Ray) that has run a study before: from
                POST /studies to the first epoch's event `at` (written in the same
                transaction as the epoch)
  service-cold  from launching `hpo serve` (submitting as soon as it answers) to the same
  optuna-cold   from launching a Python process that creates an Optuna study on SQLite,
                trains one epoch and reports it (trial.report is persisted on return)
  tune-cold     from launching a Python process running Ray Tune (1 trial) to the first
                result reaching the driver (on_trial_result)

    .venv/bin/python -m bench.cold_start [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.api_load import ROOT, free_port, start_server, stop_server
from bench.arms import emit, live_service, run_arm, table, wait_study

ARMS = ("service-warm", "service-cold", "optuna-cold", "tune-cold")
SPEC = {
    "name": "cold",
    "budget": {"max_trials": 1, "max_epochs": 1, "parallelism": 1},
    "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
}


def first_epoch_at(client: httpx.Client, study_id: int) -> float:
    """The recorded time of the study's first epoch event (waits for the study to end)."""
    with client.stream("GET", f"/api/v1/studies/{study_id}/events") as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "epoch":
                return datetime.fromisoformat(json.loads(line[6:])["at"]).timestamp()
    raise RuntimeError(f"study {study_id} ended without an epoch")


def arm_service_warm() -> dict[str, Any]:
    with live_service() as (client, _):
        # A service that has been running: an earlier study has ended, its slots are idle.
        earlier = client.post("/api/v1/studies", json={**SPEC, "name": "earlier"})
        wait_study(client, earlier.json()["id"])
        sent = time.time()
        created = client.post("/api/v1/studies", json=SPEC)
        created.raise_for_status()
        return {"seconds": first_epoch_at(client, created.json()["id"]) - sent}


def arm_service_cold() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        launched = time.time()
        server = start_server(port, Path(tmp))
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                while True:
                    try:
                        created = client.post("/api/v1/studies", json=SPEC)
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                created.raise_for_status()
                return {"seconds": first_epoch_at(client, created.json()["id"]) - launched}
        finally:
            stop_server(server)


def _process(arm: str) -> dict[str, Any]:
    """Launch `arm` as a fresh process; it prints the time its first epoch was persisted."""
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "bench.cold_start", "--arm", arm],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    persisted = json.loads(done.stdout.strip().splitlines()[-1])["persisted"]
    return {"seconds": persisted - launched}


def optuna_process() -> dict[str, Any]:
    import optuna

    from bench.time_to_target import digits_tensors
    from workers.trial_trainer import TrialTrainer

    with tempfile.TemporaryDirectory() as tmp:
        study = optuna.create_study(storage=f"sqlite:///{Path(tmp) / 'o.db'}", direction="maximize")
        trial = study.ask()
        trainer = TrialTrainer(
            digits_tensors(), {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True)}
        )
        trial.report(trainer.train_epoch()["val_accuracy"], 1)
        return {"persisted": time.time()}


def tune_process() -> dict[str, Any]:
    import logging

    import ray
    from ray import tune

    from bench.time_to_target import digits_tensors
    from workers.trial_trainer import TrialTrainer

    first: list[float] = []

    class FirstResult(tune.Callback):
        def on_trial_result(
            self, iteration: int, trials: Any, trial: Any, result: Any, **info: Any
        ) -> None:
            if not first:
                first.append(time.time())

    def trainable(config: dict[str, Any]) -> None:
        trainer = TrialTrainer(digits_tensors(), {"lr": config["lr"]})
        tune.report({"val_accuracy": trainer.train_epoch()["val_accuracy"]})

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    with tempfile.TemporaryDirectory() as tmp:
        tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"lr": tune.loguniform(1e-3, 1e-2)},
            tune_config=tune.TuneConfig(num_samples=1),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0, callbacks=[FirstResult()]),
        ).fit()
    ray.shutdown()
    return {"persisted": first[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=[*ARMS, "optuna-process", "tune-process"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    arms = {
        "service-warm": arm_service_warm,
        "service-cold": arm_service_cold,
        "optuna-cold": lambda: _process("optuna-process"),
        "tune-cold": lambda: _process("tune-process"),
        "optuna-process": optuna_process,
        "tune-process": tune_process,
    }
    if args.arm:
        emit(arms[args.arm]())
        return
    runs: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for repetition in range(args.repeat):
        for arm in ARMS:
            seconds = run_arm("bench.cold_start", arm)["seconds"]
            runs[arm].append(seconds)
            print(f"rep {repetition} {arm}: {seconds:.2f} s", file=sys.stderr)
    cold = statistics.median(runs["service-cold"])
    rows = [
        (
            arm,
            f"{statistics.median(v):.2f}",
            f"{min(v):.2f}",
            f"{max(v):.2f}",
            f"{statistics.median(v) / cold:.2f}",
        )
        for arm, v in runs.items()
    ]
    print(f"\nseconds from submission (or launch) to the first epoch persisted, {args.repeat} runs")
    print(table(rows, ("arm", "median s", "min s", "max s", "x service-cold")))


if __name__ == "__main__":
    main()
