"""A shared cluster under a mixed workload: the service's scheduler against Ray Tune runs.

Studies from three tenants (3:2:1 studies each), trials of 0.5, 1 and 2 CPUs, digits
MLPs of several widths and epoch counts, total demand several times the cluster, run
two ways on fresh Ray clusters of the same shape (`--nodes` nodes, `--cpus` in all):
  service  `hpo serve` joined to the cluster, one token per tenant, every study POSTed
           at once; trial times and nodes read back from the API
  tune     one Ray Tune driver process per study, all launched together: OptunaSearch
           with the study's random sampler and seed, max_concurrent_trials = parallelism,
           tune.with_resources = its shape, reuse_actors; the trainable runs the same
           workers.trial_trainer.TrialTrainer loop (same stop rules) and reports each epoch
Reported per arm: makespan (first submission to last trial end) against the lower bound
(busy CPU-seconds / cluster CPUs), utilization, Jain's index of the tenants' CPU-seconds
while all of them still had trials not yet started, and queue waits (a study's first
trial start minus its submission; for Tune, minus its driver's launch).

    .venv/bin/python -m bench.shared_cluster [--studies 12] [--trials 3] [--cpus 4]
        [--nodes 2] [--quick] [--out FILE.json]

Every process it starts (the Ray clusters, `hpo serve`, the Tune drivers) is ended on
the way out, on failure and on SIGTERM too; nothing else is touched.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.api_load import ROOT, free_port, start_server, stop_server, wait_healthy
from bench.shared_cluster_figures import TENANTS, held_not_training, report, summarize

TENANT_PATTERN = (0, 1, 0, 2, 1, 0)  # 3:2:1 studies, interleaved in submission order
SHAPES = (1.0, 2.0, 0.5)
PARALLELISM = {0.5: 4, 1.0: 3, 2.0: 2}  # each study alone asks for 2 CPUs or more
TERMINAL = ("completed", "stopped", "failed")


# -- the workload ----------------------------------------------------------------------


def workload(n_studies: int, trials: int, *, quick: bool) -> list[dict[str, Any]]:
    """Study specs with their tenant; each tenant's studies cycle through the shapes."""
    widths, epochs = ((64, 128), (3, 4, 5)) if quick else ((512, 768), (8, 12, 16))
    seen = dict.fromkeys(TENANTS, 0)
    studies = []
    for i in range(n_studies):
        tenant_index = TENANT_PATTERN[i % len(TENANT_PATTERN)]
        tenant = TENANTS[tenant_index]
        cpus = SHAPES[(seen[tenant] + tenant_index) % len(SHAPES)]
        seen[tenant] += 1
        max_epochs = epochs[i % len(epochs)]
        spec = {
            "name": f"shared-{i:02d}-{tenant}",
            "space": {
                "lr": {"type": "float", "low": 0.005, "high": 0.05, "log": True},
                "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
            },
            "params": {
                "hidden_units": widths[i % len(widths)],
                "hidden_layers": 2,
                "batch_size": 16,
                "optimizer": "sgd",
            },
            "sampler": {"type": "random", "seed": i},
            "pruner": {"type": "none"},
            # Every trial trains max_epochs: both arms then do the same work per trial.
            "early_stopping": {"patience": max_epochs},
            "budget": {
                "max_trials": trials,
                "max_epochs": max_epochs,
                "parallelism": PARALLELISM[cpus],
            },
            "resources": {"cpus_per_trial": cpus},
        }
        studies.append({"index": i, "tenant": tenant, "spec": spec})
    return studies


def describe(studies: list[dict[str, Any]], capacity: float) -> str:
    demand = sum(s["spec"]["budget"]["parallelism"] * cpus_of(s) for s in studies)
    per_tenant = {t: sum(1 for s in studies if s["tenant"] == t) for t in TENANTS}
    trials = sum(s["spec"]["budget"]["max_trials"] for s in studies)
    return (
        f"{len(studies)} studies ({', '.join(f'{t} {n}' for t, n in per_tenant.items())}), "
        f"{trials} trials; concurrent demand {demand:g} CPUs = "
        f"{demand / capacity:.1f}x the cluster's {capacity:g}"
    )


def cpus_of(study: dict[str, Any]) -> float:
    return float(study["spec"]["resources"]["cpus_per_trial"])


# -- processes this benchmark starts, and ends ------------------------------------------


def _exit_on_sigterm() -> None:
    """A SIGTERM unwinds through every `finally`, so what was started is stopped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@contextmanager
def ray_cluster(cpus: int, nodes: int) -> Iterator[str]:
    """A fresh Ray cluster of `nodes` nodes sharing `cpus`; shut down (only its own
    processes) on the way out."""
    from ray.cluster_utils import Cluster

    split = [cpus // nodes + (1 if n < cpus % nodes else 0) for n in range(nodes)]
    args = {"include_dashboard": False, "object_store_memory": 100 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": split[0], **args})
    try:
        for node_cpus in split[1:]:
            cluster.add_node(num_cpus=node_cpus, object_store_memory=args["object_store_memory"])
        yield str(cluster.address)
    finally:
        cluster.shutdown()


def launch(command: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def end(process: subprocess.Popen[bytes], *, grace_s: float = 60) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; only for processes this benchmark started."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_child(args: list[str], log: Path, timeout_s: float) -> dict[str, Any]:
    """One arm in a fresh interpreter (and session); it writes its JSON next to its log."""
    result = log.with_suffix(".json")
    command = [sys.executable, "-m", "bench.shared_cluster", *args, "--result", str(result)]
    child = launch(
        command, log, start_new_session=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    try:
        child.wait(timeout=timeout_s)
    finally:
        end(child, grace_s=90)
        if child.returncode != 0:  # fell through `finally` unclean: its group goes too
            _kill_group(child.pid)
    if child.returncode != 0:
        raise RuntimeError(f"{args[1]} arm failed ({child.returncode}):\n{log.read_text()[-4000:]}")
    return dict(json.loads(result.read_text()))


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


# -- service arm -------------------------------------------------------------------------


def arm_service(studies: list[dict[str, Any]], cpus: int, nodes: int) -> dict[str, Any]:
    tokens = {t: f"tok-{t}" for t in TENANTS}
    with tempfile.TemporaryDirectory() as tmp, ray_cluster(cpus, nodes) as address:
        os.environ["HPO_RAY_ADDRESS"] = address
        os.environ["HPO_API_TOKENS"] = ",".join(f"{t}:{k}" for t, k in tokens.items())
        port = free_port()
        server = start_server(port, Path(tmp))
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                wait_healthy(http, server, 180)
                return serve_workload(http, tokens, studies)
        finally:
            stop_server(server)


def serve_workload(
    http: httpx.Client, tokens: dict[str, str], studies: list[dict[str, Any]]
) -> dict[str, Any]:
    auth = {t: {"Authorization": f"Bearer {k}"} for t, k in tokens.items()}
    first = time.time()
    ids = []
    for study in studies:
        response = http.post("/api/v1/studies", json=study["spec"], headers=auth[study["tenant"]])
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
    samples, states = watch(http, auth, ids)
    out = [
        {
            "index": study["index"],
            "tenant": study["tenant"],
            "state": states[i]["state"],
            "submitted": _ts(states[i]["created_at"]),
            "trials": read_trials(http, i, auth[study["tenant"]], cpus_of(study)),
        }
        for study, i in zip(studies, ids, strict=True)
    ]
    return {"first_submission": first, "studies": out, "samples": samples}


def watch(
    http: httpx.Client, auth: dict[str, dict[str, str]], ids: list[int]
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Sample the scheduler's view each second until every study has ended."""
    samples = []
    while True:
        samples.append(cluster_sample(http.get("/api/v1/cluster", headers=auth[TENANTS[0]]).json()))
        states = {
            s["id"]: s
            for headers in auth.values()
            for s in http.get("/api/v1/studies", params={"limit": 100}, headers=headers).json()[
                "items"
            ]
        }
        if all(states[i]["state"] in TERMINAL for i in ids):
            return samples, states
        time.sleep(1.0)


def read_trials(
    http: httpx.Client, study_id: int, headers: dict[str, str], cpus: float
) -> list[dict[str, Any]]:
    """Each ended trial's window, worker and time inside the trainer's epochs."""
    path = f"/api/v1/studies/{study_id}/trials"
    items = http.get(path, params={"limit": 1000}, headers=headers).json()["items"]
    trials = []
    for t in items:
        if not (t["started_at"] and t["finished_at"]):
            continue
        detail = http.get(f"{path}/{t['number']}", headers=headers).json()
        start, end = _ts(t["started_at"]), _ts(t["finished_at"])
        # A preempted trial held a slot only during its runs, not while it waited.
        attempts = [a for a in detail.get("attempts", []) if a["finished_at"]]
        runs = [[_ts(a["started_at"]), _ts(a["finished_at"])] for a in attempts] or [[start, end]]
        trials.append(
            {
                "start": start,
                "end": end,
                "runs": runs,
                "cpus": cpus,
                "attempts": attempts,
                "worker": t["node"],
                "state": t["state"],
                "train_s": sum(e["seconds"] or 0.0 for e in detail["epochs"]),
            }
        )
    return trials


def cluster_sample(view: dict[str, Any]) -> dict[str, Any]:
    """What the scheduler held at one moment: CPUs in busy and idle slots, the queue."""
    by_state = {"busy": 0.0, "idle": 0.0}
    for slot in view["slots"]:
        by_state[slot["state"]] += slot["cpus"]
    return {
        "t": time.time(),
        "busy_cpus": by_state["busy"],
        "idle_cpus": by_state["idle"],
        "queued": len(view["queue"]),
        "reserved": view["reserved_node"] is not None,
    }


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# -- Ray Tune arm ------------------------------------------------------------------------


def arm_tune(studies: list[dict[str, Any]], cpus: int, nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ray_cluster(cpus, nodes) as address:
        drivers: list[tuple[dict[str, Any], float, subprocess.Popen[bytes], Path]] = []
        try:
            for study in studies:
                spec_file = Path(tmp) / f"spec-{study['index']}.json"
                spec_file.write_text(json.dumps(study["spec"]))
                log = Path(tmp) / f"driver-{study['index']}.log"
                command = [
                    sys.executable,
                    "-m",
                    "bench.shared_cluster",
                    "--arm",
                    "tune-driver",
                    "--spec-file",
                    str(spec_file),
                    "--address",
                    address,
                    "--storage",
                    str(Path(tmp) / "tune"),
                    "--result",
                    str(log.with_suffix(".json")),
                ]
                launched = time.time()
                drivers.append((study, launched, launch(command, log), log))
            return {
                "first_submission": min(d[1] for d in drivers),
                "studies": [collect_driver(*d) for d in drivers],
            }
        finally:
            for _, _, process, _ in drivers:
                end(process, grace_s=30)


def collect_driver(
    study: dict[str, Any], launched: float, process: subprocess.Popen[bytes], log: Path
) -> dict[str, Any]:
    if process.wait(timeout=3600) != 0:
        raise RuntimeError(
            f"Tune driver of study {study['index']} failed:\n{log.read_text()[-3000:]}"
        )
    result = json.loads(log.with_suffix(".json").read_text())
    return {
        "index": study["index"],
        "tenant": study["tenant"],
        "state": result["state"],
        "submitted": launched,
        "trials": result["trials"],
        "errors": result["errors"],
    }


def tune_driver(spec_file: Path, address: str, storage: str) -> dict[str, Any]:
    """One study as a team runs it with Ray Tune today: its own driver and Tuner."""
    import logging

    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from service.spec import StudySpec
    from workers.data import load_prepared

    spec = StudySpec.model_validate_json(spec_file.read_text())
    ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    setup = {
        "params": dict(spec.params),
        "model": spec.model.key,
        "objective": spec.primary.metric,
        "direction": spec.primary.direction,
        "seed": spec.split.seed,
        "max_epochs": spec.budget.max_epochs,
        "patience": spec.early_stopping.patience,
        "min_delta": spec.early_stopping.min_delta,
        "cpus": spec.resources.cpus_per_trial,
    }
    assert spec.sampler.type == "random"
    search = OptunaSearch(
        space=functools.partial(_define_space, space=spec.space, fixed=spec.params),
        metric=spec.primary.metric,
        mode=spec.primary.direction[:3],
        sampler=optuna.samplers.RandomSampler(seed=spec.sampler.seed),
    )
    trainable = tune.with_parameters(
        tune_trial, data=load_prepared(spec.dataset, spec.split), setup=setup
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": spec.resources.cpus_per_trial}),
        tune_config=tune.TuneConfig(
            search_alg=search,
            num_samples=spec.budget.max_trials,
            reuse_actors=True,
            max_concurrent_trials=spec.budget.parallelism,
        ),
        run_config=tune.RunConfig(storage_path=storage, name=spec.name, verbose=0),
    )
    grid = tuner.fit()
    results = [grid[i] for i in range(len(grid))]
    finals = [r.metrics or {} for r in results if r.error is None]
    trials = [
        {
            "start": m["t_start"],
            "end": m["t_end"],
            "cpus": setup["cpus"],
            "worker": f"pid={m['pid']}",
            "state": "complete",
            "train_s": m["train_s"],
        }
        for m in finals
        if "t_end" in m
    ]
    errors = [str(r.error)[-2000:] for r in results if r.error is not None]
    ray.shutdown()
    return {"state": "failed" if errors else "completed", "trials": trials, "errors": errors}


def _define_space(trial: Any, *, space: Any, fixed: Any) -> dict[str, int]:
    """The study's space, and Optuna's trial number (the service seeds a trial with it)."""
    from search.space import suggest

    suggest(trial, space, fixed)
    return {"trial_number": trial.number}


def tune_trial(config: dict[str, Any], *, data: Any, setup: dict[str, Any]) -> None:
    """The service's trial loop (service/run/trial_loop.py) inside a Tune trainable: the same
    trainer, threads, stop rules, test metrics and best weights at the end."""
    import torch
    from ray import tune

    from workers.early_stopping import EarlyStopping
    from workers.tensors import TensorData
    from workers.trial_trainer import TrialTrainer

    started = time.time()
    torch.set_num_threads(max(1, int(setup["cpus"])))
    params = dict(config)
    number = int(params.pop("trial_number"))
    trainer = TrialTrainer(
        TensorData(data, torch.device("cpu")),
        {**setup["params"], **params},
        model=setup["model"],
        objective=setup["objective"],
        direction=setup["direction"],
        seed=setup["seed"] + number,
        max_epochs=setup["max_epochs"],
    )
    stopper = EarlyStopping(
        patience=setup["patience"], min_delta=setup["min_delta"], direction=setup["direction"]
    )
    for epoch in range(1, setup["max_epochs"] + 1):
        metrics = trainer.train_epoch()
        value = metrics[setup["objective"]]
        if (
            math.isfinite(value)
            and not stopper.update(epoch, value)
            and epoch < setup["max_epochs"]
        ):
            tune.report({**metrics, "epoch": epoch})
            continue
        final = {**metrics, "epoch": epoch, **(trainer.test_metrics() or {})}
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "best.pt").write_bytes(trainer.checkpoint() or b"")
            final.update(
                t_start=started, t_end=time.time(), pid=os.getpid(), train_s=trainer.train_seconds
            )
            tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=["service", "service-reserved", "tune", "tune-driver"])
    parser.add_argument(
        "--arms",
        default="service,tune",
        help="comma-separated, run in this order: service, service-reserved (the service "
        "with HPO_RESHAPE_CPU_SLOTS=false: each slot reserves its trial's CPUs in Ray), tune",
    )
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--trials", type=int, default=3, help="per study")
    parser.add_argument("--cpus", type=int, default=4, help="the cluster's CPUs in all")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a one-minute smoke run")
    parser.add_argument("--out", type=Path, help="write every figure and trial as JSON")
    parser.add_argument("--timeout-s", type=float, default=1800, help="per arm")
    parser.add_argument("--workload", type=Path)
    parser.add_argument("--spec-file", type=Path)
    parser.add_argument("--address")
    parser.add_argument("--storage")
    parser.add_argument("--result", type=Path, help="where a child process writes its JSON")
    parser.add_argument(
        "--preempt-after-s", type=float, help="run the service with HPO_PREEMPT_AFTER_S set to this"
    )
    args = parser.parse_args()
    _exit_on_sigterm()
    if args.arm == "tune-driver":
        args.result.write_text(json.dumps(tune_driver(args.spec_file, args.address, args.storage)))
        return
    if args.arm:
        studies = json.loads(args.workload.read_text())
        if args.preempt_after_s:
            os.environ["HPO_PREEMPT_AFTER_S"] = str(args.preempt_after_s)
        if args.arm == "service-reserved":
            os.environ["HPO_RESHAPE_CPU_SLOTS"] = "false"
        arm = arm_tune if args.arm == "tune" else arm_service
        args.result.write_text(json.dumps(arm(studies, args.cpus, args.nodes)))
        return
    if args.quick:
        args.studies, args.trials = 6, 3
    compare(args)


def compare(args: argparse.Namespace) -> None:
    studies = workload(args.studies, args.trials, quick=args.quick)
    print(describe(studies, args.cpus), file=sys.stderr)
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workload.json"
        path.write_text(json.dumps(studies))
        for arm in args.arms.split(","):
            preempt = (
                ["--preempt-after-s", str(args.preempt_after_s)]
                if (arm != "tune" and args.preempt_after_s)
                else []
            )
            runs[arm] = run_child(
                [
                    "--arm",
                    arm,
                    "--workload",
                    str(path),
                    "--cpus",
                    str(args.cpus),
                    "--nodes",
                    str(args.nodes),
                    *preempt,
                ],
                Path(tmp) / f"{arm}.log",
                args.timeout_s,
            )
            print(f"{arm}: done after {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.out:  # the raw runs first, so a failure below still leaves them
        args.out.write_text(json.dumps({"workload": studies, "runs": runs}, indent=1))
    figures = {arm: summarize(run, args.cpus) for arm, run in runs.items()}
    held = {arm: held_not_training(run) for arm, run in runs.items() if arm != "tune"}
    print(
        f"\n{describe(studies, args.cpus)}; {args.nodes} nodes; whole run "
        f"{time.monotonic() - started:.0f} s\n"
    )
    print(report(figures))
    for arm, f in figures.items():
        print(
            f"\n{arm}: utilization by tenth of the makespan {f['timeline']}; "
            f"studies not completed: {f['studies_not_completed']}"
        )
    for arm, slots in held.items():
        if slots:
            means = ", ".join(f"{k} {v:.2f}" for k, v in slots.items())
            print(f"{arm}, mean over /cluster samples: {means}")
    if args.out:
        everything = {"workload": studies, "figures": figures, "service_slots": held, "runs": runs}
        args.out.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
