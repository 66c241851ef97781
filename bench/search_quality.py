"""Search quality under a fixed wall-clock budget: TPE + ASHA against random search, no pruning.

Both arms run through the service's runtime (drivers, Ray slots, SQLite) on the
digits MLP with the default search space of DESIGN.md, two trials at a time,
one after the other for each seed, each with the same `timeout_s`. Prints the
best validation accuracy per seed, the medians and their difference.

    .venv/bin/python bench/search_quality.py --seeds 0 1 2 --wall-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from service.runtime import open_runtime
from service.settings import Settings
from service.spec import StudySpec

ARMS: dict[str, dict[str, Any]] = {
    "tpe+asha": {
        "sampler": {"type": "tpe"},
        "pruner": {"type": "asha", "min_epochs": 2, "reduction_factor": 3},
    },
    "random": {"sampler": {"type": "random"}, "pruner": {"type": "none"}},
}


def spec_for(arm: str, seed: int, wall_s: float) -> StudySpec:
    options = ARMS[arm]
    return StudySpec.model_validate({
        "name": f"{arm}-{seed}",
        "sampler": {**options["sampler"], "seed": seed},
        "pruner": options["pruner"],
        "split": {"seed": 0},
        "early_stopping": {"patience": 5},
        "budget": {"max_trials": 10_000, "max_epochs": 30, "parallelism": 2, "timeout_s": wall_s},
    })  # fmt: skip


async def run(seeds: list[int], wall_s: float) -> dict[str, list[float]]:
    settings = Settings(data_dir=Path(tempfile.mkdtemp()) / "data", ray_num_cpus=2)
    runtime = await open_runtime(settings)
    best: dict[str, list[float]] = {arm: [] for arm in ARMS}
    try:
        for seed in seeds:
            for arm in ARMS:
                view = await runtime.studies.submit(spec_for(arm, seed, wall_s))
                await runtime.studies.wait(view.record.id)
                done = runtime.studies.get(view.record.id)
                value = done.best.value if done.best and done.best.value is not None else 0.0
                best[arm].append(value)
                n = sum(done.counts[s] for s in ("complete", "pruned", "failed"))
                pruned = done.counts["pruned"]
                print(
                    f"seed {seed} {arm:9s} best {value:.4f}  trials {n:3d}  pruned {pruned:3d}"
                    f"  ({done.record.state_reason})",
                    flush=True,
                )
    finally:
        await runtime.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--wall-s", type=float, default=20.0)
    args = parser.parse_args()
    best = asyncio.run(run(args.seeds, args.wall_s))
    medians = {arm: statistics.median(values) for arm, values in best.items()}
    print(f"\nwall budget {args.wall_s:.0f} s per study, seeds {args.seeds}")
    for arm, median in medians.items():
        per_seed = [round(v, 4) for v in best[arm]]
        print(f"  {arm:9s} median best val_accuracy {median:.4f}   per seed {per_seed}")
    print(f"  tpe+asha - random: {medians['tpe+asha'] - medians['random']:+.4f}")


if __name__ == "__main__":
    main()
