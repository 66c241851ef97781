"""The dashboard's API calls on a study of 100 trials and one of 100,000, side by side.

Writes both studies straight into a fresh database (bench/synthetic_study.py: 90%
complete, 10% pruned, curves for the trials the curves call reads: the 10 best and the
10 latest pruned), starts `hpo serve` on it and
times every call the study page makes, --repeat times each, over loopback. Prints the
median latency per call for both studies and the ratio large/small.

    .venv/bin/python -m bench.dashboard_scale                      # SQLite
    .venv/bin/python -m bench.dashboard_scale --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.api_load import free_port, start_server, stop_server, wait_healthy
from bench.synthetic_study import write_study
from storage import create_engine_for, upgrade_schema

SIZES = (100, 100_000)


def page_calls(study_id: int) -> dict[str, str]:
    """Every request the study page sends for its first view, by name."""
    base = f"/api/v1/studies/{study_id}"
    return {
        "study": base,
        "studies list": "/api/v1/studies?limit=25",
        "trials best page": f"{base}/trials?order=best&limit=25",
        "trials by state": f"{base}/trials?order=number&state=pruned&limit=25",
        "parallel coords": f"{base}/trials?state=complete&order=best&limit=500",
        "history": f"{base}/history?points=500",
        "importance": f"{base}/importance",
        "curves": f"{base}/curves?top=10&pruned=10",
        "best": f"{base}/best?k=1",
    }


def time_calls(
    client: httpx.Client, study_id: int, repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of each call's first answer (nothing cached yet), and the median of the
    `repeat` calls after it."""
    firsts, medians = {}, {}
    for name, path in page_calls(study_id).items():
        started = time.perf_counter()
        client.get(path).raise_for_status()
        firsts[name] = time.perf_counter() - started
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            samples.append(time.perf_counter() - started)
        medians[name] = statistics.median(samples)
    return firsts, medians


def prepare(database_url: str) -> dict[int, int]:
    """A study of each size in SIZES; returns size -> study id."""
    upgrade_schema(database_url)
    engine = create_engine_for(database_url)
    try:
        # Curves for the trials the curves call reads (top=10, pruned=10), at every size.
        return {
            n: write_study(engine, database_url, n, name=f"scale-{n}", read_curves=10)
            for n in SIZES
        }
    finally:
        engine.dispose()


def reset_postgres(database_url: str) -> None:
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (its schema is wiped)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir / 'hpo.db'}"
        if args.database_url:
            reset_postgres(url)
        started = time.perf_counter()
        ids = prepare(url)
        print(f"wrote {sum(SIZES):,} trials in {time.perf_counter() - started:.0f} s")
        port = free_port()
        server = start_server(port, data_dir, database_url=url)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                wait_healthy(client, server, 120)
                (small_first, small), (large_first, large) = (
                    time_calls(client, ids[n], args.repeat) for n in SIZES
                )
        finally:
            stop_server(server)
    backend = url.split(":", 1)[0].split("+")[0]
    print(f"\n{backend}: ms per call, first call / median of the next {args.repeat}")
    print(f"{'call':<18} {'100 trials':>14} {'100k trials':>14} {'ratio':>12}")
    for name in small:
        cells = [
            f"{first * 1e3:.1f} / {median * 1e3:.1f}"
            for first, median in (
                (small_first[name], small[name]),
                (large_first[name], large[name]),
            )
        ]
        ratios = f"{large_first[name] / small_first[name]:.2f} / {large[name] / small[name]:.2f}"
        print(f"{name:<18} {cells[0]:>14} {cells[1]:>14} {ratios:>12}")


if __name__ == "__main__":
    main()
