"""Packing small trials onto one GPU: aggregate throughput with fractional gpus_per_trial.

For N in 1, 2, 4, 8, 16: a study of 2N (at least 8) digits MLP trials of a fixed number of
epochs, N at a time, each with gpus_per_trial 1/N and one CPU, over HTTP on a local
Ray that sees the machine's GPU. Reports aggregate training samples per second and
trials per hour, and their ratio to N = 1 (one trial at a time on the whole GPU).

Needs a CUDA device (a lent GPU machine); without one it says so and exits 0.
`scripts/gpu_check.sh` runs the levels its targets name (1, 8, 16) with --json.

    .venv/bin/python -m bench.gpu_packing [--epochs 10] [--levels 1 8 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.arms import all_trials, live_service, table, wait_study

LEVELS = (1, 2, 4, 8, 16)
# digits: 1797 samples, 60% of them train (validation 0.2, test 0.2)
TRAIN_SAMPLES = 1078


def run_level(n: int, epochs: int) -> dict[str, float]:
    trials = max(8, 2 * n)
    spec = {
        "name": f"packing-{n}",
        "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
        "params": {"optimizer": "adam", "hidden_units": 256, "hidden_layers": 2},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "early_stopping": {"patience": 10_000},
        "budget": {"max_trials": trials, "max_epochs": epochs, "parallelism": n},
        "resources": {"cpus_per_trial": 1, "gpus_per_trial": 1 / n},
    }
    with live_service(num_cpus=max(2, n)) as (client, _):
        created = client.post("/api/v1/studies", json=spec)
        created.raise_for_status()
        study = wait_study(client, created.json()["id"], poll_s=0.5)
        done = all_trials(client, study["id"])
    wall = _stamp(study["finished_at"]) - _stamp(study["started_at"])
    on_gpu = sum(t["device"] not in (None, "cpu") for t in done)
    samples = sum(t["epochs_run"] for t in done) * TRAIN_SAMPLES
    return {
        "wall_s": wall,
        "samples_per_s": samples / wall,
        "trials_per_hour": len(done) / wall * 3600,
        "on_gpu": on_gpu,
        "trials": len(done),
    }


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_packing: no CUDA device here; run it on a machine with a GPU.")
        return
    results: dict[int, dict[str, Any]] = {}
    for n in args.levels:
        results[n] = run_level(n, args.epochs)
        print(f"N={n}: {results[n]}", file=sys.stderr)
    base = results[args.levels[0]]
    rows = [
        (
            str(n),
            f"{r['trials']}",
            f"{r['on_gpu']}",
            f"{r['samples_per_s']:,.0f}",
            f"{r['samples_per_s'] / base['samples_per_s']:.2f}",
            f"{r['trials_per_hour']:,.0f}",
            f"{r['trials_per_hour'] / base['trials_per_hour']:.2f}",
        )
        for n, r in results.items()
    ]
    print(f"\n{torch.cuda.get_device_name(0)}, digits MLP 2x256, {args.epochs} epochs a trial")
    first = f"x N={args.levels[0]}"
    print(table(rows, ("N at once", "trials", "on GPU", "samples/s", first, "trials/h", first)))
    if args.json is not None:
        args.json.write_text(
            json.dumps({"device": torch.cuda.get_device_name(0), "levels": results}, indent=2)
        )


if __name__ == "__main__":
    main()
