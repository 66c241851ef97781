"""Resume after lost workers: long trials with a worker killed every N seconds.

One study of long trials (digits CNN, `--epochs` epochs each, fixed configs: the same
`initial_trials` learning rates in every arm, no pruner, early stopping off), run
`--parallel` trials at a time on a fresh local Ray of `--cpus` CPUs, one trial per CPU:
  service             the service, uninterrupted (checkpoints on, default rule)
  service-kill        checkpoints on, the default rule (by cost: a save once the training
                      since the last one took 50x what a save takes), a slot killed
                      every --kill-every seconds
  service-kill-e1     the same with `checkpoints: {every_epochs: 1}`
  service-scratch     `checkpoints: {enabled: false}`: a lost trial trains from epoch 1
  tune                Ray Tune, a function trainable training the same
                      workers.trial_trainer.TrialTrainer, a checkpoint (its whole state) every
                      epoch, uninterrupted
  tune-kill           the same under the same kill schedule, FailureConfig(max_failures)
A killer thread starts with the study (the POST, or Tuner.fit) and every --kill-every
seconds SIGKILLs the process of one running trial chosen at random (seeded): the
service's slot actor (the pid in the trial's `node`), or Tune's trial actor (the pid
its trainable wrote down). When no trial is running it waits for one; the next kill
comes --kill-every seconds after the last. An arm with kills still running at
--give-up-at times the same tool's uninterrupted wall is stopped (the service: POST
.../stop; Tune: TuneConfig.time_budget_s) and reads "> x, stopped".

Reported per arm: wall time (service: the study's created_at to finished_at; Tune:
Tuner.fit), kills, wall over the same tool uninterrupted (and that ratio divided by the
ratio of mean epoch times, which takes out a machine that trained slower or faster
during one arm), epochs trained in all (each completed epoch, counted once per time it
was trained: the service's attempts, the lines Tune's trainable logs) against those the
study needs (wasted = trained - needed), trial-seconds lost per kill (see
lost_per_kill), mean epoch seconds, and the machine's mean runnable tasks while the arm
ran (/proc/stat procs_running; this arm alone keeps about 2-3 busy, more means other
work shared the cores). Problems (a trial not resumed, a curve with holes or repeats,
runs lost that do not match the kills) print under the table.

    .venv/bin/python -m bench.resume [--trials 4] [--epochs 30] [--kill-every 60]
        [--conv-channels 224] [--arms service,service-kill,...] [--give-up-at 2]
        [--quick] [--out FILE.json] [--report FILE.json]

Each arm runs in a fresh interpreter (its own Ray), one after the other; the Ray it
starts is shut down on the way out, on failure and on SIGTERM too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.shared_cluster import _exit_on_sigterm, _kill_group, end, launch

ARMS: dict[str, dict[str, Any]] = {
    "service": {"tool": "service", "kills": False, "checkpoints": {"enabled": True}},
    "service-kill": {"tool": "service", "kills": True, "checkpoints": {"enabled": True}},
    "service-kill-e1": {
        "tool": "service",
        "kills": True,
        "checkpoints": {"enabled": True, "every_epochs": 1},
    },
    "service-scratch": {"tool": "service", "kills": True, "checkpoints": {"enabled": False}},
    "tune": {"tool": "tune", "kills": False},
    "tune-kill": {"tool": "tune", "kills": True},
}
DEFAULT_ARMS = "service,service-kill,service-kill-e1,service-scratch,tune,tune-kill"
TERMINAL = ("completed", "stopped", "failed")
CHECKPOINT_WORDS = {
    "service": "default (by cost)",
    "service-kill": "default (by cost)",
    "service-kill-e1": "every epoch",
    "service-scratch": "off (from epoch 1)",
    "tune": "every epoch",
    "tune-kill": "every epoch",
}


# -- the workload ----------------------------------------------------------------------


def workload(args: argparse.Namespace) -> dict[str, Any]:
    """What every arm trains: the same configs, seeds, epochs and parallelism."""
    n = args.trials
    # Learning rates spread geometrically over [3e-4, 3e-3]: every trial costs the same.
    lrs = [round(3e-4 * 10 ** (i / max(1, n - 1)), 6) for i in range(n)]
    return {
        "trials": n,
        "epochs": args.epochs,
        "parallel": args.parallel,
        "cpus": args.cpus,
        "kill_every_s": args.kill_every,
        "seed": args.seed,
        "params": {
            "conv_channels": args.conv_channels,
            "hidden_units": 256,
            "batch_size": args.batch_size,
            "optimizer": "adam",
        },
        "configs": [{"lr": lr} for lr in lrs],
    }


def study_spec(work: dict[str, Any], arm: str) -> dict[str, Any]:
    return {
        "name": f"resume-{arm}",
        "dataset": {"source": "builtin", "name": "digits"},
        "model": {"kind": "cnn"},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "params": work["params"],
        "initial_trials": work["configs"],
        "sampler": {"type": "random", "seed": work["seed"]},
        "pruner": {"type": "none"},
        # Patience of max_epochs: no trial can stop early, every arm trains the same epochs.
        "early_stopping": {"patience": work["epochs"]},
        "budget": {
            "max_trials": work["trials"],
            "max_epochs": work["epochs"],
            "parallelism": work["parallel"],
            "max_retries": 10,
        },
        "resources": {"cpus_per_trial": 1},
        "checkpoints": ARMS[arm]["checkpoints"],
    }


# -- the killer ------------------------------------------------------------------------


class Killer(threading.Thread):
    """Every `every_s` seconds, SIGKILL one of `victims()` (label, pid) at random."""

    def __init__(self, every_s: float, victims: Callable[[], list[tuple[str, int]]], seed: int):
        super().__init__(daemon=True)
        self.every_s, self.victims = every_s, victims
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.kills: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.started = time.time()

    def run(self) -> None:
        due = self.started + self.every_s
        while not self.stop.wait(max(0.0, due - time.time())):
            try:
                candidates = sorted(v for v in self.victims() if _is_ray_worker(v[1]))
            except Exception as exc:  # noqa: BLE001 - a failed look is retried shortly
                self.errors.append(f"{type(exc).__name__}: {exc}")
                candidates = []
            if not candidates:
                due = time.time() + 0.2
                continue
            label, pid = self.rng.choice(candidates)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                due = time.time() + 0.2
                continue
            now = time.time()
            self.kills.append({"t": now - self.started, "pid": pid, "trial": label})
            due = now + self.every_s


def _is_ray_worker(pid: int) -> bool:
    """Only Ray worker processes are ever killed (guards against a reused pid)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::")
    except OSError:
        return False


# -- service arms ----------------------------------------------------------------------


def arm_service(work: dict[str, Any], arm: str, give_up_s: float | None) -> dict[str, Any]:
    import httpx
    import ray

    from service.settings import Settings
    from tests.conftest import running_service

    ray.init(
        address="local",
        num_cpus=work["cpus"],
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp) / "data", warm_slots=work["parallel"])
            with running_service(settings) as url, httpx.Client(base_url=url, timeout=60) as http:
                wait_warm(http, work["parallel"], 180)
                return run_study(http, work, arm, give_up_s)
    finally:
        ray.shutdown()


def wait_warm(http: Any, n: int, limit_s: float) -> None:
    """Start from the service's steady state: its prewarmed slots are up."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if sum(s["state"] == "idle" for s in http.get("/api/v1/cluster").json()["slots"]) >= n:
            return
        time.sleep(0.5)
    raise RuntimeError(f"fewer than {n} warm slots after {limit_s} s")


def run_study(http: Any, work: dict[str, Any], arm: str, give_up_s: float | None) -> dict[str, Any]:
    response = http.post("/api/v1/studies", json=study_spec(work, arm))
    posted = time.monotonic()
    response.raise_for_status()
    study_id = int(response.json()["id"])
    path = f"/api/v1/studies/{study_id}"

    def victims() -> list[tuple[str, int]]:
        running = http.get(f"{path}/trials", params={"limit": 1000}).json()["items"]
        return [
            (f"trial {t['number']}", _pid(t["node"]))
            for t in running
            if t["state"] == "running" and t["node"]
        ]

    killer = Killer(work["kill_every_s"], victims, work["seed"])
    if ARMS[arm]["kills"]:
        killer.start()
    gave_up = False
    try:
        while (study := http.get(path).json())["state"] not in TERMINAL:
            if give_up_s is not None and not gave_up and time.monotonic() - posted > give_up_s:
                http.post(f"{path}/stop").raise_for_status()
                gave_up = True
            time.sleep(0.5)
    finally:
        killer.stop.set()
    items = http.get(f"{path}/trials", params={"limit": 1000}).json()["items"]
    details = [http.get(f"{path}/trials/{t['number']}").json() for t in items]
    created = _ts(study["created_at"])
    trials = [
        {
            "number": d["number"],
            "state": d["state"],
            "value": d["value"],
            "epochs": [e["epoch"] for e in d["epochs"]],
            "epoch_s": [e["seconds"] for e in d["epochs"]],
            "window": [
                _ts(d["started_at"] or study["finished_at"]) - created,
                _ts(d["finished_at"] or study["finished_at"]) - created,
            ],
            "attempts": [
                {
                    **{k: a[k] for k in ("node", "from_epoch", "epochs_trained", "end")},
                    "window": [
                        _ts(a["started_at"]) - created,
                        _ts(a["finished_at"]) - created if a["finished_at"] else None,
                    ],
                }
                for a in d["attempts"]
            ],
        }
        for d in details
    ]
    return {
        "arm": arm,
        "state": study["state"],
        "error": study["error"],
        "gave_up": gave_up,
        "warnings": study["warnings"],
        "wall_s": _ts(study["finished_at"]) - created,
        "first_trial_s": min(_ts(d["started_at"]) for d in details if d["started_at"]) - created,
        "kills": killer.kills,
        "killer_errors": killer.errors[:5],
        "trials": trials,
        "trained": sum(a["epochs_trained"] or 0 for t in trials for a in t["attempts"]),
    }


def _pid(node: str) -> int:
    return int(node.split("pid=")[1].split()[0])


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# -- Ray Tune arms ---------------------------------------------------------------------


def arm_tune(work: dict[str, Any], arm: str, give_up_s: float | None) -> dict[str, Any]:
    import ray
    from ray import tune

    from workers.data import load_prepared
    from workers.spec import BuiltinDataset, SplitSpec

    ray.init(
        address="local",
        num_cpus=work["cpus"],
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pids, log = Path(tmp) / "running", Path(tmp) / "epochs.jsonl"
            pids.mkdir()
            split = SplitSpec()
            setup = {**work, "split_seed": split.seed, "pids": str(pids), "log": str(log)}
            data = load_prepared(BuiltinDataset(source="builtin", name="digits"), split)
            trainable = tune.with_parameters(tune_trial, data=data, setup=setup)
            kills = ARMS[arm]["kills"]
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": 1}),
                param_space={"index": tune.grid_search(list(range(work["trials"])))},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=work["parallel"],
                    reuse_actors=True,
                    time_budget_s=give_up_s,
                ),
                run_config=tune.RunConfig(
                    storage_path=str(Path(tmp) / "tune"),
                    name=arm,
                    verbose=0,
                    failure_config=tune.FailureConfig(max_failures=10 if kills else 0),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                ),
            )

            def victims() -> list[tuple[str, int]]:
                return [(f"trial {p.read_text()}", int(p.name)) for p in pids.iterdir()]

            killer = Killer(work["kill_every_s"], victims, work["seed"])
            started = time.time()
            if kills:
                killer.start()
            try:
                grid = tuner.fit()
            finally:
                killer.stop.set()
            wall = time.time() - started
            results = [grid[i] for i in range(len(grid))]
            lines = [json.loads(line) for line in log.read_text().splitlines()]
    finally:
        ray.shutdown()
    trials: list[dict[str, Any]] = []
    for i in range(work["trials"]):
        mine = [e for e in lines if e["index"] == i]
        attempts: list[dict[str, Any]] = []  # one per start of the trainable
        if not mine:  # never started (the arm was given up first)
            trials.append(
                {"number": i, "epochs": [], "attempts": [], "epoch_s": [], "window": [wall, wall]}
            )
            continue
        for e in mine:
            if "start" in e:
                window = [e["t"] - started, None]
                attempts.append(
                    {
                        "node": f"pid={e['pid']}",
                        "from_epoch": e["start"],
                        "epochs_trained": 0,
                        "window": window,
                    }
                )
            else:
                attempts[-1]["epochs_trained"] += 1
                attempts[-1]["window"][1] = e["t"] - started
        curve = {e["epoch"]: e["seconds"] for e in mine if "epoch" in e}  # the last of each
        window = [attempts[0]["window"][0], attempts[-1]["window"][1] or wall]
        trials.append(
            {
                "number": i,
                "epochs": sorted(curve),
                "attempts": attempts,
                "epoch_s": [curve[k] for k in sorted(curve)],
                "window": window,
            }
        )
    errors = [str(r.error)[-1000:] for r in results if r.error is not None]
    finals = [r.metrics or {} for r in results]
    return {
        "arm": arm,
        "state": "failed" if errors else "completed",
        "error": errors or None,
        "warnings": [],
        "wall_s": wall,
        "kills": killer.kills,
        "killer_errors": killer.errors[:5],
        "trials": trials,
        "trained": sum(len(t["epoch_s"]) for t in trials),
        "first_trial_s": min(t["window"][0] for t in trials),
        "complete": sum(m.get("epoch") == work["epochs"] for m in finals),
        "gave_up": give_up_s is not None and wall >= give_up_s,
    }


def tune_trial(config: dict[str, Any], *, data: Any, setup: dict[str, Any]) -> None:
    """The trial as the service's slot trains it (same TrialTrainer, params, seed, one
    torch thread), resumed from Tune's latest checkpoint (the trainer's whole state,
    as the service saves it) and checkpointed after every epoch."""
    import torch
    from ray import tune

    from workers.tensors import TensorData
    from workers.trial_trainer import TrialTrainer

    torch.set_num_threads(1)
    index = int(config["index"])
    trainer = TrialTrainer(
        TensorData(data, torch.device("cpu")),
        {**setup["params"], **setup["configs"][index]},
        model="cnn",
        objective="val_accuracy",
        direction="maximize",
        seed=setup["split_seed"] + index,
        max_epochs=setup["epochs"],
    )
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer.load_state((Path(folder) / "state.pt").read_bytes())
    running = Path(setup["pids"]) / str(os.getpid())
    running.write_text(str(index))
    _log(setup, {"index": index, "start": trainer.epoch, "pid": os.getpid()})
    try:
        for epoch in range(trainer.epoch + 1, setup["epochs"] + 1):
            metrics = trainer.train_epoch()
            _log(setup, {"index": index, "epoch": epoch, "seconds": metrics["seconds"]})
            if epoch == setup["epochs"]:
                metrics.update(trainer.test_metrics() or {})
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / "state.pt").write_bytes(trainer.state())
                tune.report(
                    {**metrics, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder)
                )
    finally:
        running.unlink(missing_ok=True)


def _log(setup: dict[str, Any], line: dict[str, Any]) -> None:
    with open(setup["log"], "a") as log:  # one short line, appended whole
        log.write(json.dumps({**line, "t": time.time()}) + "\n")


# -- what a run shows ------------------------------------------------------------------


def check(run: dict[str, Any], work: dict[str, Any]) -> list[str]:
    """What looks wrong in one arm's trials: unfinished trials, holes or repeats in a
    curve, lost runs that do not match the kills, a resume from the wrong epoch."""
    problems = []
    need = list(range(1, work["epochs"] + 1))
    if run.get("gave_up"):
        problems.append("given up: stopped at --give-up-at x the uninterrupted wall")
    elif run["state"] != "completed":
        problems.append(f"study {run['state']}: {run['error']}")
    if len(run["trials"]) != work["trials"]:
        problems.append(f"{len(run['trials'])} trials, not {work['trials']}")
    lost_runs = 0
    for t in run["trials"]:
        if t["epochs"] != need:
            problems.append(f"trial {t['number']}: epochs recorded {_ranges(t['epochs'])}")
        if t.get("state", "complete") != "complete":
            problems.append(f"trial {t['number']} ended {t['state']}")
        attempts = t["attempts"]
        lost_runs += sum(a.get("end", "worker_lost") == "worker_lost" for a in attempts[:-1])
        lost_runs += attempts[-1].get("end") == "worker_lost" if attempts else 0
        for before, after in zip(attempts, attempts[1:], strict=False):
            reached = before["from_epoch"] + (before["epochs_trained"] or 0)
            if after["from_epoch"] > reached:
                problems.append(
                    f"trial {t['number']}: resumed from epoch {after['from_epoch']} after a run "
                    f"that reached {reached}"
                )
            if "end" in before and before["end"] != "worker_lost":
                problems.append(f"trial {t['number']}: a run ended {before['end']}")
        if attempts and attempts[-1].get("end", "completed") != "completed":
            problems.append(f"trial {t['number']}: last run ended {attempts[-1]['end']}")
    if lost_runs != len(run["kills"]):
        problems.append(f"{len(run['kills'])} kills but {lost_runs} runs lost")
    return problems


def _ranges(epochs: list[int]) -> str:
    low, high = min(epochs, default=0), max(epochs, default=0)
    return f"{len(epochs)} epochs, {len(set(epochs))} distinct, {low}..{high}"


def outside_curve_s(trial: dict[str, Any]) -> float:
    """The trial's window (first start to end) less the seconds of the epochs its final
    curve holds: its start, evaluation and checkpoint writes, and for a trial that lost
    workers the slot time that cost (a new worker's start, loading the checkpoint, the
    epochs trained again and the epoch in flight)."""
    return float(trial["window"][1] - trial["window"][0] - sum(trial["epoch_s"]))


def lost_per_kill(run: dict[str, Any], base: dict[str, Any] | None) -> float | None:
    """Trial-seconds each kill cost: the killed trials' time outside their curves less
    that of the same arm's trials never killed (same checkpoint cadence, same machine
    state), or of the same tool's uninterrupted arm when every trial was killed."""
    kills = len(run["kills"])
    if not kills or base is None:
        return None
    killed = [t for t in run["trials"] if len(t["attempts"]) > 1 or t.get("state") == "failed"]
    clean = [t for t in run["trials"] if t not in killed] or base["trials"]
    usual = statistics.mean(outside_curve_s(t) for t in clean)
    return sum(outside_curve_s(t) - usual for t in killed) / kills


def mean_epoch_s(run: dict[str, Any]) -> float:
    """Mean seconds of the epochs in the trials' curves: how fast this machine trained
    during the arm (other load on it slows every arm's epochs alike)."""
    return statistics.mean(s for t in run["trials"] for s in t["epoch_s"])


def report(runs: dict[str, dict[str, Any]], work: dict[str, Any]) -> str:
    needed = work["trials"] * work["epochs"]
    lines = [
        "| arm | checkpoints | kills | wall s | x same tool uninterrupted | x, epoch time "
        "adjusted | epochs trained | wasted epochs | trial-s lost per kill | trials complete "
        "| mean epoch s | runnable |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arm, run in runs.items():
        base = runs.get(ARMS[arm]["tool"])
        ratio = run["wall_s"] / base["wall_s"] if base else float("nan")
        kills = len(run["kills"])
        lost = lost_per_kill(run, base)
        complete = run.get("complete", sum(t.get("state") == "complete" for t in run["trials"]))
        epoch_s = mean_epoch_s(run)
        adjusted = ratio * mean_epoch_s(base) / epoch_s if base else float("nan")
        lines.append(
            f"| {arm} | {CHECKPOINT_WORDS[arm]} | {kills} | {run['wall_s']:.1f} "
            f"| {_ratio(ratio, run)} | {_ratio(adjusted, run)} "
            f"| {run['trained']} | {run['trained'] - needed} "
            f"| {'' if lost is None else f'{lost:.1f}'} | {complete}/{work['trials']} "
            f"| {epoch_s:.2f} | {run.get('runnable', float('nan')):.1f} |"
        )
    return "\n".join(lines)


def _ratio(value: float, run: dict[str, Any]) -> str:
    return f"> {value:.2f}, stopped" if run.get("gave_up") else f"{value:.3f}"


def runs_in_words(run: dict[str, Any]) -> str:
    kills = ", ".join(f"{k['t']:.0f} s {k['trial']}" for k in run["kills"]) or "none"
    trials = "; ".join(
        f"{t['number']}: "
        + " / ".join(
            f"{a['from_epoch']}+{a['epochs_trained']}" + (f" {a['end']}" if "end" in a else "")
            for a in t["attempts"]
        )
        for t in run["trials"]
    )
    return f"kills at {kills}\n  runs (from epoch + epochs trained): {trials}"


# -- running the arms ------------------------------------------------------------------


def run_child(
    arm: str, work_file: Path, log: Path, timeout_s: float, give_up_s: float | None
) -> dict[str, Any]:
    """One arm in a fresh interpreter (and session); it writes its JSON next to its log."""
    result = log.with_suffix(".json")
    command = [
        sys.executable,
        "-m",
        "bench.resume",
        "--arm",
        arm,
        "--workload",
        str(work_file),
        "--result",
        str(result),
    ]
    if give_up_s is not None:
        command += ["--give-up-s", f"{give_up_s:.1f}"]
    child = launch(
        command, log, start_new_session=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    runnable = []  # the machine's runnable tasks, each second: others' load shows here
    try:
        deadline = time.monotonic() + timeout_s
        while child.poll() is None and time.monotonic() < deadline:
            runnable.append(_runnable())
            time.sleep(1.0)
    finally:
        end(child, grace_s=60)
        if child.returncode != 0:  # fell through `finally` unclean: its group goes too
            _kill_group(child.pid)
    if child.returncode != 0:
        raise RuntimeError(f"{arm} arm failed ({child.returncode}):\n{log.read_text()[-4000:]}")
    return {**json.loads(result.read_text()), "runnable": statistics.mean(runnable or [0])}


def _runnable() -> int:
    """`procs_running` of /proc/stat (this sampler included); 0 where there is none."""
    with suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running "):
                return int(line.split()[1])
    return 0


def describe(work: dict[str, Any]) -> str:
    params = work["params"]
    return (
        f"{work['trials']} trials x {work['epochs']} epochs, {work['parallel']} at a time "
        f"on {work['cpus']} CPUs, CNN conv_channels={params['conv_channels']} batch "
        f"{params['batch_size']}, a kill every {work['kill_every_s']:g} s"
    )


def compare(args: argparse.Namespace) -> None:
    work = workload(args)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arms {unknown}; choose from {list(ARMS)}")
    print(describe(work), file=sys.stderr)
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work_file = Path(tmp) / "workload.json"
        work_file.write_text(json.dumps(work))
        for arm in arms:
            base = runs.get(ARMS[arm]["tool"])
            give_up_s = args.give_up_at * base["wall_s"] if base and ARMS[arm]["kills"] else None
            runs[arm] = run_child(
                arm, work_file, Path(tmp) / f"{arm}.log", args.timeout_s, give_up_s
            )
            print(
                f"{arm}: {runs[arm]['wall_s']:.1f} s, {len(runs[arm]['kills'])} kills; "
                f"done after {time.monotonic() - started:.0f} s",
                file=sys.stderr,
            )
            whole_s = time.monotonic() - started
            if args.out:  # the raw runs as they come, so a failure later still leaves them
                everything = {"workload": work, "runs": runs, "whole_run_s": whole_s}
                args.out.write_text(json.dumps(everything, indent=1))
    show(work, runs, time.monotonic() - started)


def show(work: dict[str, Any], runs: dict[str, dict[str, Any]], whole_s: float | None) -> None:
    needed = work["trials"] * work["epochs"]
    whole = "" if whole_s is None else f"; whole run {whole_s:.0f} s"
    print(f"\n{describe(work)}; {needed} epochs needed{whole}\n")
    print(report(runs, work))
    for arm, run in runs.items():
        print(f"\n{arm}: {runs_in_words(run)}")
        for problem in check(run, work):
            print(f"  PROBLEM: {problem}")
        for line in run["warnings"] + run["killer_errors"]:
            print(f"  note: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--parallel", type=int, default=2, help="trials at a time")
    parser.add_argument("--cpus", type=int, default=2, help="of the local Ray")
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between kills")
    parser.add_argument("--conv-channels", type=int, default=224, help="sets an epoch's length")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="the killer's choice of victim")
    parser.add_argument("--arms", default=DEFAULT_ARMS, help=f"comma-separated: {list(ARMS)}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few-minute smoke run: 0.3 s epochs, a kill every 8 s",
    )
    parser.add_argument("--out", type=Path, help="write every run as JSON")
    parser.add_argument("--timeout-s", type=float, default=900, help="per arm")
    parser.add_argument(
        "--give-up-at",
        type=float,
        default=2.0,
        help="stop an arm with kills at this multiple of the same tool's uninterrupted wall",
    )
    parser.add_argument("--give-up-s", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help="print the figures of an --out file again")
    parser.add_argument("--arm", choices=list(ARMS), help=argparse.SUPPRESS)
    parser.add_argument("--workload", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _exit_on_sigterm()
    if args.arm:
        work = json.loads(args.workload.read_text())
        arm = arm_service if ARMS[args.arm]["tool"] == "service" else arm_tune
        args.result.write_text(json.dumps(arm(work, args.arm, args.give_up_s)))
        return
    if args.report:
        saved = json.loads(args.report.read_text())
        show(saved["workload"], saved["runs"], saved.get("whole_run_s"))
        return
    if args.quick:
        args.conv_channels, args.batch_size, args.kill_every = 64, 16, 8.0
    compare(args)


if __name__ == "__main__":
    main()
