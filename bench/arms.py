"""What every side-by-side benchmark shares: running arms in subprocesses, the service arm
over HTTP, and tables of medians and ratios.

Each arm runs as `python -m <bench module> --arm NAME ...` in its own process and prints
one JSON line of results, so no arm's Ray, Optuna or imports leak into another's, and
the parent only aggregates.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.api_load import ROOT, free_port, start_server, stop_server, wait_healthy


def run_arm(module: str, arm: str, *args: str, timeout_s: float = 1800) -> dict[str, Any]:
    """Run one arm in a fresh interpreter; its last stdout line is its JSON result."""
    command = [sys.executable, "-m", module, "--arm", arm, *args]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"arm {arm} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return last_json(done.stdout)


def run_workers(
    module: str, arm: str, per_worker: list[list[str]], timeout_s: float = 3600
) -> list[dict[str, Any]]:
    """Start one `--arm` process per argument list at once; their JSON results, in order."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", module, "--arm", arm, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for args in per_worker
    ]
    return [last_json(w.communicate(timeout=timeout_s)[0]) for w in workers]


def last_json(text: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return result


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


@contextmanager
def live_service(
    *,
    num_cpus: int = 2,
    database_url: str | None = None,
    on_start: Callable[[int], None] | None = None,
    root: Path = ROOT,
) -> Iterator[tuple[httpx.Client, Path]]:
    """`hpo serve` on a fresh data dir (SQLite unless `database_url`), a local Ray of
    `num_cpus`, from the checkout at `root`; yields a client on it and the data dir.
    `on_start` gets the server's pid."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        os.environ["HPO_RAY_NUM_CPUS"] = str(num_cpus)
        port = free_port()
        server = start_server(port, data_dir, database_url=database_url, root=root)
        if on_start is not None:
            on_start(server.pid)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                wait_healthy(client, server, 180)
                yield client, data_dir
        finally:
            stop_server(server)


def wait_study(
    client: httpx.Client, study_id: int, *, poll_s: float = 0.05, limit_s: float = 3600
) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        study: dict[str, Any] = client.get(f"/api/v1/studies/{study_id}").json()
        if study["state"] not in ("queued", "running"):
            return study
        time.sleep(poll_s)
    raise TimeoutError(f"study {study_id} still running after {limit_s} s")


def all_trials(client: httpx.Client, study_id: int) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/v1/studies/{study_id}/trials", params=params).json()
        trials += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return trials


def histogram_quantiles(metrics_text: str, name: str, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of a Prometheus histogram, interpolated within buckets as Prometheus'
    histogram_quantile does (so they are as fine as the buckets, no finer)."""
    buckets: list[tuple[float, float]] = []
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append(
                (float("inf") if bound == "+Inf" else float(bound), float(line.rsplit(" ", 1)[1]))
            )
    total = buckets[-1][1] if buckets else 0.0
    out = []
    for q in qs:
        rank, low, below = q * total, 0.0, 0.0
        for bound, count in buckets:
            if count >= rank and count > below:
                top = bound if bound != float("inf") else low
                out.append(low + (top - low) * (rank - below) / (count - below))
                break
            low, below = bound, count
        else:
            out.append(float("nan"))
    return out


def medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median over repetitions (numbers only)."""
    keys = [k for k, v in results[0].items() if isinstance(v, int | float)]
    return {k: statistics.median(r[k] for r in results) for k in keys}


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = [
        " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in (header, *rows)
    ]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


Arm = Callable[..., dict[str, Any]]
