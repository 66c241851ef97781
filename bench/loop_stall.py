"""How a study with slow draws holds up everyone else's requests.

A finished TPE study of `--trials` trials (10,000 by default: TPE's draw takes about 0.4 s
there) is written into a fresh service's SQLite store (bench/synthetic_study.py), then
resumed for `--more` trials, two at a time. Meanwhile one client asks `/healthz` (which
reads nothing) over and over, and the latency of every answer is kept. A baseline comes
from the same probe before the resume. Also timed: from the resume's request to its first
new trial's start (the study's load, its reconciliation and its first draw). Each
checkout given is one arm, run in turn: give another checkout (a `git worktree` of an
earlier commit) to compare its code with this one's.

    git worktree add /tmp/before <commit>
    .venv/bin/python -m bench.loop_stall --checkout /tmp/before .
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.arms import live_service, table, wait_study
from bench.synthetic_study import write_study
from storage.engine import create_engine_for
from storage.migrate import upgrade_schema


def probe(client: httpx.Client, until: Any, *, pause_s: float = 0.01) -> list[float]:
    """/healthz latencies, one request at a time, while `until()` is false."""
    latencies = []
    while not until():
        started = time.perf_counter()
        client.get("/healthz").raise_for_status()
        latencies.append(time.perf_counter() - started)
        time.sleep(pause_s)
    return latencies


def arm(checkout: Path, trials: int, more: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'stall.db'}"
        upgrade_schema(url)
        engine = create_engine_for(url)
        study_id = write_study(engine, url, trials, name="big", curves=0)
        engine.dispose()
        with live_service(database_url=url, root=checkout.resolve()) as (client, _):
            quiet_until = time.monotonic() + 5
            quiet = probe(client, lambda: time.monotonic() > quiet_until)
            # The probe runs from before the resume is asked: the resume's own work (the
            # study's load, its first draw) counts too.
            done = threading.Event()
            with ThreadPoolExecutor(1) as pool:
                probing = pool.submit(probe, client, done.is_set)
                asked = time.time()
                try:
                    resumed = client.post(
                        f"/api/v1/studies/{study_id}/resume",
                        json={"budget": {"max_trials": trials + more, "parallelism": 2}},
                    )
                    resumed.raise_for_status()
                    study = wait_study(client, study_id, poll_s=0.2)
                finally:
                    done.set()
                busy = probing.result()
            first = client.get(f"/api/v1/studies/{study_id}/trials/{trials}").json()
            first_s = datetime.fromisoformat(first["started_at"]).timestamp() - asked
    return {
        "quiet": quiet,
        "busy": busy,
        "state": study["state"],
        "complete": study["counts"]["complete"],
        "first_s": first_s,
    }


def summary(latencies: list[float]) -> tuple[str, ...]:
    ms = sorted(x * 1e3 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return (str(len(ms)), f"{statistics.median(ms):.1f}", f"{p99:.1f}", f"{ms[-1]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path, help="a checkout per arm")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument(
        "--more",
        type=int,
        default=8,
        help="trials run after the resume (a study holds 100,000 at most)",
    )
    args = parser.parse_args()
    rows = []
    for checkout in args.checkouts:
        result = arm(checkout, args.trials, args.more)
        print(f"{checkout}: {result['state']}, {result['complete']} complete", file=sys.stderr)
        rows.append((str(checkout), "before the resume", *summary(result["quiet"]), ""))
        rows.append(
            (
                str(checkout),
                "from the resume on",
                *summary(result["busy"]),
                f"{result['first_s']:.2f}",
            )
        )
    print(f"\n/healthz while a {args.trials:,}-trial TPE study runs {args.more} more")
    print(
        table(
            rows,
            (
                "checkout",
                "when",
                "answers",
                "p50 ms",
                "p99 ms",
                "max ms",
                "resume to first new trial s",
            ),
        )
    )


if __name__ == "__main__":
    main()
