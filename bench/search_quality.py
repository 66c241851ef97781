"""Search quality under one wall budget: the service against Optuna and Ray Tune.

The arms of `bench/time_to_target.py` (the same space, training code, rungs and two
trials at a time; see its docstring), each search stopped after `--wall-s` seconds
(the service's `budget.timeout_s`, Optuna's `optimize(timeout=)`, Tune's
`time_budget_s`), plus the service running random search without pruning as the
reference that a searcher has to beat. Each search's score is the best val_accuracy of
any epoch, complete or pruned trial, that ended within the budget of its start, so an
arm that overruns its budget gains nothing from it. Warm runs (see time_to_target.py);
per seed and the median with its range.

    .venv/bin/python -m bench.search_quality [--seeds 5] [--wall-s 15] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench.arms import table
from bench.time_to_target import ARMS, best_within, run_seeds, spread

QUALITY_ARMS = (*ARMS, "service-random")
UNBOUNDED_TRIALS = 10_000  # the wall budget ends every search first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--wall-s", type=float, default=15.0)
    parser.add_argument("--out", type=Path, help="write every run (epochs timed) as JSON")
    args = parser.parse_args()
    runs = run_seeds(args.seeds, UNBOUNDED_TRIALS, 1.0, args.wall_s, QUALITY_ARMS)
    if args.out:
        args.out.write_text(json.dumps({"wall_s": args.wall_s, "runs": runs}))
    rows: list[tuple[str, ...]] = []
    for arm, results in runs.items():
        best = [best_within(run, args.wall_s) for run in results]
        epochs = [
            sum(1 for t, _ in run["warm"]["epochs"] if t - run["warm"]["start"] <= args.wall_s)
            for run in results
        ]
        rows.append(
            (
                arm,
                spread(best, 4),
                " ".join(f"{b:.4f}" for b in best),
                f"{statistics.median(epochs):.0f}",
            )
        )
    print(f"\nwall budget {args.wall_s:.0f} s per search, {args.seeds} seeds, warm runs")
    print(
        table(
            rows,
            ("arm", "best val_accuracy, median (range)", "per seed", "epochs trained (median)"),
        )
    )


if __name__ == "__main__":
    main()
