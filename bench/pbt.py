"""Population-based training: the service's PBT against Ray Tune's, and against TPE + ASHA.

The digits CNN (conv_channels 8, SGD with momentum 0.9, batch 32, constant lr), a
population of 8 searching `lr` and `weight_decay` from the same space, 12 epochs a
member, an exploit step every 3 epochs with the bottom quarter copying the top quarter,
mutations as Tune's defaults (times 0.8 or 1.2, or resampled with probability 0.25),
two members training at a time on a local Ray of 2 CPUs, the same training code
(workers.trial_trainer.TrialTrainer) everywhere:
  service-pbt  `population:` through HTTP, SQLite (warm service: a 2-trial study first)
  tune-pbt     PopulationBasedTraining, the members' state in Tune checkpoints every
               3 epochs, loaded with the new config's optimizer knobs (what the service
               does); Ray started before the timed fit()
  service-tpe  TPE + ASHA (min 1 epoch, factor 3) in the service, stopped once its
               trials trained the population's 96 epochs (a few more may finish)
  service-pbt-before  (with --before PATH) service-pbt on another checkout's service, a
               `git worktree` of an earlier commit, to measure a change in one run
Score: the best val_accuracy of any epoch of any member or trial. Wall: submission (or
fit()) to the end. Per seed, the median and range over seeds. Turns: the service's
members that stopped at a boundary to let a member behind them train (attempt end
`rotated`).

    .venv/bin/python -m bench.pbt [--seeds 5] [--before PATH] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.arms import ROOT, all_trials, emit, live_service, run_arm, table, wait_study
from bench.time_to_target import digits_tensors, spread

SIZE, EPOCHS, INTERVAL, QUANTILE, SLOTS = 8, 12, 3, 0.25, 2
BUDGET_EPOCHS = SIZE * EPOCHS
FIXED = {
    "optimizer": "momentum",
    "momentum": 0.9,
    "batch_size": 32,
    "conv_channels": 8,
    "lr_schedule": "constant",
}
LR = (1e-3, 0.3)
WD = (1e-6, 1e-2)
SPACE = {
    "lr": {"type": "float", "low": LR[0], "high": LR[1], "log": True},
    "weight_decay": {"type": "float", "low": WD[0], "high": WD[1], "log": True},
}
RESAMPLE_PROBABILITY = 0.25  # Tune's default
MUTATION = {"perturb": [0.8, 1.2], "resample": True, "resample_probability": RESAMPLE_PROBABILITY}
ARMS = ("service-pbt", "tune-pbt", "service-tpe")


def base_spec(name: str, seed: int) -> dict[str, Any]:
    return {
        "name": name,
        "model": {"kind": "cnn"},
        "space": SPACE,
        "params": FIXED,
        "sampler": {"type": "random" if name.endswith("pbt") else "tpe", "seed": seed},
        "early_stopping": {"patience": EPOCHS},
    }


def arm_service_pbt(seed: int, root: Path | None = None) -> dict[str, Any]:
    spec = {
        **base_spec("service-pbt", seed),
        "budget": {"max_epochs": EPOCHS},
        "population": {
            "size": SIZE,
            "interval_epochs": INTERVAL,
            "quantile": QUANTILE,
            "mutations": {"lr": MUTATION, "weight_decay": MUTATION},
        },
    }
    return _service(spec, stop_at_epochs=None, root=root)


def arm_service_tpe(seed: int) -> dict[str, Any]:
    spec = {
        **base_spec("service-tpe", seed),
        "pruner": {"type": "asha", "min_epochs": 1, "reduction_factor": 3},
        "budget": {"max_trials": 1000, "max_epochs": EPOCHS, "parallelism": SLOTS},
    }
    return _service(spec, stop_at_epochs=BUDGET_EPOCHS)


def _service(
    spec: dict[str, Any], stop_at_epochs: int | None, root: Path | None = None
) -> dict[str, Any]:
    with live_service(num_cpus=SLOTS, root=root or ROOT) as (client, _):
        budget = {"max_trials": SLOTS, "max_epochs": 1, "parallelism": SLOTS}
        warm_up = {**base_spec("warm-up", 0), "pruner": {"type": "none"}, "budget": budget}
        wait_study(client, client.post("/api/v1/studies", json=warm_up).json()["id"])
        created = client.post("/api/v1/studies", json=spec)
        created.raise_for_status()
        study_id = created.json()["id"]
        if stop_at_epochs is not None:
            while sum(t["epochs_run"] for t in all_trials(client, study_id)) < stop_at_epochs:
                time.sleep(0.2)
            client.post(f"/api/v1/studies/{study_id}/stop")
        study = wait_study(client, study_id, poll_s=0.5)
        members = [
            client.get(f"/api/v1/studies/{study_id}/trials/{t['number']}").json()
            for t in all_trials(client, study_id)
        ]
    values = [e["val_accuracy"] for m in members for e in m["epochs"] if e["val_accuracy"]]
    start = _stamp(study["created_at"])
    return {
        "wall_s": _stamp(study["finished_at"]) - start,
        "best": max(values, default=0.0),
        "epochs": len(values),
        "exploits": sum(len(m["lineage"]) for m in members),
        "turns": sum(a["end"] == "rotated" for m in members for a in m["attempts"]),
    }


def _stamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def arm_tune_pbt(seed: int) -> dict[str, Any]:
    import logging

    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search import BasicVariantGenerator

    ray.init(
        address="local",
        num_cpus=SLOTS,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )

    def trainable(config: dict[str, Any]) -> None:
        from workers.trial_trainer import TrialTrainer

        params = {**FIXED, **config}
        # Training seeds as the service's: split.seed (0) + the member's number.
        number = int(tune.get_context().get_trial_name().rsplit("_", 1)[-1])
        trainer = TrialTrainer(
            digits_tensors(), params, model="cnn", max_epochs=EPOCHS, seed=number
        )
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:  # a copy: the donor's state, this config's knobs
            with checkpoint.as_directory() as folder:
                trainer.load_state((Path(folder) / "state").read_bytes())
            for fold in trainer.folds:
                fold.set_optimizer_knobs()
        while trainer.epoch < EPOCHS:
            metrics = trainer.train_epoch()
            report = {"val_accuracy": metrics["val_accuracy"], "epoch": trainer.epoch}
            if trainer.epoch % INTERVAL == 0:
                with tempfile.TemporaryDirectory() as folder:
                    (Path(folder) / "state").write_bytes(trainer.state())
                    tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
            else:
                tune.report(report)

    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=INTERVAL,
        quantile_fraction=QUANTILE,
        resample_probability=RESAMPLE_PROBABILITY,
        perturbation_factors=(1.2, 0.8),
        hyperparam_mutations={"lr": tune.loguniform(*LR), "weight_decay": tune.loguniform(*WD)},
    )
    with tempfile.TemporaryDirectory() as tmp:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"lr": tune.loguniform(*LR), "weight_decay": tune.loguniform(*WD)},
            tune_config=tune.TuneConfig(
                search_alg=BasicVariantGenerator(random_state=seed),
                scheduler=pbt,
                metric="val_accuracy",
                mode="max",
                num_samples=SIZE,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=tmp, verbose=0, stop={"training_iteration": EPOCHS}
            ),
        )
        started = time.time()
        results = tuner.fit()
        wall = time.time() - started
    frames = [results[i].metrics_dataframe for i in range(len(results))]
    values = [float(v) for f in frames if f is not None for v in f["val_accuracy"]]
    ray.shutdown()
    return {
        "wall_s": wall,
        "best": max(values, default=0.0),
        "epochs": len(values),
        "exploits": None,
    }


ARM_FUNCTIONS = {
    "service-pbt": arm_service_pbt,
    "tune-pbt": arm_tune_pbt,
    "service-tpe": arm_service_tpe,
    "service-pbt-before": arm_service_pbt,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=list(ARM_FUNCTIONS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--before", type=Path, help="another checkout: its service's PBT too")
    args = parser.parse_args()
    if args.arm == "service-pbt-before":
        emit(arm_service_pbt(args.seed, root=args.before.resolve()))
        return
    if args.arm:
        emit(ARM_FUNCTIONS[args.arm](args.seed))
        return
    arms = ARMS + (("service-pbt-before",) if args.before else ())
    before = ["--before", str(args.before)] if args.before else []
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    for seed in range(args.seeds):
        for arm in arms:
            result = run_arm("bench.pbt", arm, "--seed", str(seed), *before)
            runs[arm].append(result)
            print(f"seed {seed} {arm}: {result}", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(runs))
    tune_wall = statistics.median(r["wall_s"] for r in runs["tune-pbt"])
    rows: list[tuple[str, ...]] = []
    for arm, results in runs.items():
        walls = [r["wall_s"] for r in results]
        rows.append(
            (
                arm,
                spread([r["best"] for r in results], 4),
                " ".join(f"{r['best']:.4f}" for r in results),
                spread(walls, 1),
                f"{statistics.median(walls) / tune_wall:.2f}",
                f"{statistics.median(r['epochs'] for r in results):.0f}",
                _counts(results, "exploits"),
                _counts(results, "turns"),
            )
        )
    print(
        f"\npopulation {SIZE}, {EPOCHS} epochs a member, exploit every {INTERVAL}, "
        f"{SLOTS} at a time; {args.seeds} seeds"
    )
    print(
        table(
            rows,
            (
                "arm",
                "best val_accuracy",
                "per seed",
                "wall s",
                "wall x tune-pbt",
                "epochs trained",
                "copies",
                "turns",
            ),
        )
    )


def _counts(results: list[dict[str, Any]], key: str) -> str:
    """A count per seed, or '-' where the arm does not count it (Tune's)."""
    counts = [r.get(key) for r in results]
    if any(c is None for c in counts):
        return "-"
    return " ".join(str(c) for c in counts)


if __name__ == "__main__":
    main()
