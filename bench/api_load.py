"""Read throughput and latency of the HTTP API while studies train, over loopback.

Starts the service as a user would (`python -m api.cli serve`, fresh SQLite under a
temporary HPO_DATA_DIR, local Ray), submits --studies studies that keep training for
the whole run, then has --clients concurrent clients (asyncio tasks sharing one
httpx.AsyncClient) loop for --seconds over, picking endpoint and study at random:
  study    GET /api/v1/studies/{id}
  trials   GET /api/v1/studies/{id}/trials?limit=50
  best     GET /api/v1/studies/{id}/best?k=5
  list     GET /api/v1/studies?limit=20
Prints requests, throughput, p50 / p99 latency and errors per endpoint and in total;
a non-2xx answer or a transport error is an error, and any error exits non-zero.
The load generator shares the machine's cores with the server and Ray's trainers.

    .venv/bin/python bench/api_load.py --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/api/v1/studies"
ENDPOINTS = ("study", "trials", "best", "list")


@dataclass
class Samples:
    """Latencies (seconds) of the successful and failed requests of one endpoint."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int, data_dir: Path, *, database_url: str | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HPO_DATA_DIR": str(data_dir)}
    if database_url:
        env["HPO_DATABASE_URL"] = database_url
    log = (data_dir / "server.log").open("wb")
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_server(server: subprocess.Popen[bytes]) -> int:
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.wait()


def wait_healthy(client: httpx.Client, server: subprocess.Popen[bytes], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode} before /healthz")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"/healthz not 200 within {limit_s:.0f} s")


def study_spec(index: int) -> dict[str, Any]:
    """A study that outlives the run: many trials, no pruning, no early stop."""
    return {
        "name": f"load-{index}",
        "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
        "params": {"hidden_units": 64, "optimizer": "sgd"},
        "pruner": {"type": "none"},
        "early_stopping": {"patience": 1000},
        "budget": {"max_trials": 100_000, "max_epochs": 50, "parallelism": 1},
        # Half a CPU each, so all four studies train at once on a 2-CPU local Ray.
        "resources": {"cpus_per_trial": 0.5},
    }  # fmt: skip


def submit_studies(client: httpx.Client, count: int) -> list[int]:
    ids = []
    for index in range(count):
        response = client.post(PREFIX, json=study_spec(index))
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
    return ids


def study_states(client: httpx.Client, ids: list[int]) -> dict[int, dict[str, Any]]:
    return {i: client.get(f"{PREFIX}/{i}").raise_for_status().json() for i in ids}


def wait_training(client: httpx.Client, ids: list[int], limit_s: float) -> None:
    """Until every study is running and Ray has started training at least one trial."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        studies = study_states(client, ids).values()
        started = sum(
            s["counts"].get("running", 0) + s["counts"].get("complete", 0) for s in studies
        )
        if started and all(s["state"] == "running" for s in studies):
            return
        time.sleep(0.5)
    raise RuntimeError(f"studies not all running and training within {limit_s:.0f} s")


def describe(studies: dict[int, dict[str, Any]]) -> str:
    parts = []
    for study_id, study in studies.items():
        counts = ", ".join(f"{n} {state}" for state, n in study["counts"].items() if n)
        parts.append(f"#{study_id} {study['state']} ({counts or 'no trials'})")
    return "; ".join(parts)


def request_path(endpoint: str, study_id: int) -> str:
    return {
        "study": f"{PREFIX}/{study_id}",
        "trials": f"{PREFIX}/{study_id}/trials?limit=50",
        "best": f"{PREFIX}/{study_id}/best?k=5",
        "list": f"{PREFIX}?limit=20",
    }[endpoint]


async def one_client(
    http: httpx.AsyncClient, ids: list[int], until: float, samples: dict[str, Samples], seed: int
) -> None:
    rng = random.Random(seed)
    while time.perf_counter() < until:
        endpoint = rng.choice(ENDPOINTS)
        path = request_path(endpoint, rng.choice(ids))
        started = time.perf_counter()
        try:
            response = await http.get(path)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        elapsed = time.perf_counter() - started
        samples[endpoint].latencies.append(elapsed)
        if error:
            samples[endpoint].errors[error] += 1


async def run_load(base_url: str, ids: list[int], clients: int, seconds: float) -> tuple[
    dict[str, Samples], float
]:  # fmt: skip
    samples = {endpoint: Samples() for endpoint in ENDPOINTS}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(one_client(http, ids, until, samples, n) for n in range(clients)))
        wall = time.perf_counter() - started
    return samples, wall


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def print_table(samples: dict[str, Samples], wall: float) -> int:
    total = Samples()
    for s in samples.values():
        total.latencies.extend(s.latencies)
        total.errors.update(s.errors)
    print(f"{'endpoint':10s} {'requests':>9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'errors':>7s}")  # fmt: skip
    for name, s in [*samples.items(), ("total", total)]:
        count, errors = len(s.latencies), sum(s.errors.values())
        p50, p99 = (1000 * percentile(s.latencies, q) for q in (50, 99))
        print(f"{name:10s} {count:9d} {count / wall:8.1f} {p50:8.1f} {p99:8.1f} {errors:7d}")
    if total.errors:
        print(f"errors by kind: {dict(total.errors)}")
    return sum(total.errors.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--startup-timeout", type=float, default=90.0)
    args = parser.parse_args()
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    print(f"{os.cpu_count()} cores shared by the load generator, the server and Ray's trainers; "
          "latencies are measured at the client")  # fmt: skip

    data_dir = Path(tempfile.mkdtemp(prefix="hpo-load-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(port, data_dir)
    errors = 1
    try:
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            wait_healthy(client, server, args.startup_timeout)
            ids = submit_studies(client, args.studies)
            wait_training(client, ids, args.startup_timeout)
            print(f"studies at start: {describe(study_states(client, ids))}")
            samples, wall = asyncio.run(run_load(base_url, ids, args.clients, args.seconds))
            print(f"studies at end:   {describe(study_states(client, ids))}")
            print(f"{args.clients} clients, {wall:.1f} s, {args.studies} studies training")
            errors = print_table(samples, wall)
            for study_id in ids:
                client.post(f"{PREFIX}/{study_id}/stop").raise_for_status()
    finally:
        code = stop_server(server)
        print(f"server exited with {code}; log: {data_dir / 'server.log'}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
