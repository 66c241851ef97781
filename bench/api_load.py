"""Read throughput and latency of the HTTP API while studies train, over loopback.

Starts the service as a user would (`python -m api.cli serve`, fresh SQLite under a
temporary HPO_DATA_DIR, local Ray), runs one small study to its end, submits --studies
studies that keep training for the whole run, then runs each arm in turn: --clients
concurrent clients (asyncio tasks sharing one httpx.AsyncClient) loop for --seconds,
picking an endpoint of the arm and a study at random:
  healthz       GET /healthz: the framework's ceiling on this machine, the reference
  study         GET /api/v1/studies/{id}
  trials        GET /api/v1/studies/{id}/trials?limit=50
  best          GET /api/v1/studies/{id}/best?k=5
  list          GET /api/v1/studies?limit=20
  mixed         the four above at random (the earlier tables' load)
  finished      study, trials and trial 0 of the finished study
  finished-304  the same, each client revalidating what it holds (If-None-Match)
Prints requests, throughput, p50 / p99 latency, errors, bytes per answer and 304s per
arm and endpoint, and each throughput as a fraction of /healthz's. A non-2xx answer
(other than 304) or a transport error is an error, and any error exits non-zero.
The load generator shares the machine's cores with the server and Ray's trainers.

    .venv/bin/python -m bench.api_load --studies 1 --clients 20
    .venv/bin/python -m bench.api_load --studies 4 --clients 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
ARMS = ("healthz", *ENDPOINTS, "mixed", "finished", "finished-304")


@dataclass
class Samples:
    """Latencies (seconds) of the successful and failed requests of one endpoint."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    not_modified: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int, data_dir: Path, *, database_url: str | None = None, root: Path = ROOT
) -> subprocess.Popen[bytes]:
    """`hpo serve` on `port`, from the checkout at `root` (another one's code, to compare)."""
    env = {**os.environ, "HPO_DATA_DIR": str(data_dir)}
    if database_url:
        env["HPO_DATABASE_URL"] = database_url
    log = (data_dir / "server.log").open("wb")
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


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
    }


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
        "healthz": "/healthz",
        "trial": f"{PREFIX}/{study_id}/trials/0",
    }[endpoint]


@dataclass(frozen=True)
class Arm:
    """One load in the run: which endpoints (picked at random per request), on which
    studies, and whether clients revalidate what they hold (If-None-Match)."""

    name: str
    endpoints: tuple[str, ...]
    finished: bool = False
    revalidate: bool = False


def arms_of(names: list[str]) -> list[Arm]:
    known = {
        "healthz": Arm("healthz", ("healthz",)),
        **{e: Arm(e, (e,)) for e in ENDPOINTS},
        "mixed": Arm("mixed", ENDPOINTS),
        # A finished study's reads, as a dashboard or a script polls them: plain, then
        # revalidated with the ETag of the last answer (a 304 has no body).
        "finished": Arm("finished", ("study", "trials", "trial"), finished=True),
        "finished-304": Arm(
            "finished-304", ("study", "trials", "trial"), finished=True, revalidate=True
        ),
    }
    return [known[name] for name in names]


async def one_client(
    http: httpx.AsyncClient,
    arm: Arm,
    ids: list[int],
    until: float,
    samples: dict[str, Samples],
    seed: int,
) -> None:
    rng = random.Random(seed)
    held: dict[str, str] = {}  # path -> ETag of the answer this client holds
    while time.perf_counter() < until:
        endpoint = rng.choice(arm.endpoints)
        path = request_path(endpoint, rng.choice(ids))
        headers = {"If-None-Match": held[path]} if arm.revalidate and path in held else {}
        started = time.perf_counter()
        try:
            response = await http.get(path, headers=headers)
            ok = response.is_success or response.status_code == 304
            error = None if ok else f"HTTP {response.status_code}"
            if ok and "etag" in response.headers:
                held[path] = response.headers["etag"]
            samples[endpoint].bytes += len(response.content)
            samples[endpoint].not_modified += response.status_code == 304
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        elapsed = time.perf_counter() - started
        samples[endpoint].latencies.append(elapsed)
        if error:
            samples[endpoint].errors[error] += 1


async def run_load(
    base_url: str, arm: Arm, ids: list[int], clients: int, seconds: float
) -> tuple[dict[str, Samples], float]:
    samples = {endpoint: Samples() for endpoint in arm.endpoints}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(
            *(one_client(http, arm, ids, until, samples, n) for n in range(clients))
        )
        wall = time.perf_counter() - started
    return samples, wall


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def totals(samples: dict[str, Samples]) -> Samples:
    total = Samples()
    for s in samples.values():
        total.latencies.extend(s.latencies)
        total.errors.update(s.errors)
        total.bytes += s.bytes
        total.not_modified += s.not_modified
    return total


def row(arm: str, endpoint: str, s: Samples, wall: float) -> dict[str, Any]:
    count = len(s.latencies)
    return {
        "arm": arm,
        "endpoint": endpoint,
        "requests": count,
        "req_s": count / wall,
        "p50_ms": 1000 * percentile(s.latencies, 50),
        "p99_ms": 1000 * percentile(s.latencies, 99),
        "errors": sum(s.errors.values()),
        "kb_per_request": s.bytes / max(1, count) / 1024,
        "not_modified": s.not_modified,
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    heads = ("requests", "req/s", "p50 ms", "p99 ms", "errors", "KB/req", "304s", "/healthz")
    print(f"{'arm':13s} {'endpoint':9s} " + " ".join(f"{h:>8s}" for h in heads))
    ceiling = next((r["req_s"] for r in rows if r["arm"] == "healthz"), None)
    for r in rows:
        ratio = f"{r['req_s'] / ceiling:8.2f}" if ceiling else f"{'':8s}"
        print(
            f"{r['arm']:13s} {r['endpoint']:9s} {r['requests']:8d} {r['req_s']:8.1f} "
            f"{r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['errors']:8d} "
            f"{r['kb_per_request']:8.2f} {r['not_modified']:8d} {ratio}"
        )


def finished_study(client: httpx.Client) -> int:
    """A small study run to its end first: what the `finished` arms read."""
    spec = {
        **study_spec(99),
        "name": "load-finished",
        "budget": {"max_trials": 3, "max_epochs": 2, "parallelism": 1},
    }
    from bench.arms import wait_study  # bench.arms imports this module

    study_id = int(client.post(PREFIX, json=spec).raise_for_status().json()["id"])
    wait_study(client, study_id, poll_s=0.5, limit_s=120)
    return study_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per arm")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--arms", nargs="+", default=list(ARMS))
    parser.add_argument("--startup-timeout", type=float, default=90.0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    print(
        f"{os.cpu_count()} cores shared by the load generator, the server and Ray's trainers; "
        "latencies are measured at the client"
    )

    data_dir = Path(tempfile.mkdtemp(prefix="hpo-load-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(port, data_dir)
    rows: list[dict[str, Any]] = []
    try:
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            wait_healthy(client, server, args.startup_timeout)
            done = finished_study(client)
            ids = submit_studies(client, args.studies)
            wait_training(client, ids, args.startup_timeout)
            print(f"studies at start: {describe(study_states(client, ids))}")
            for arm in arms_of(args.arms):
                on = [done] if arm.finished else ids
                samples, wall = asyncio.run(run_load(base_url, arm, on, args.clients, args.seconds))
                for endpoint, s in samples.items():
                    rows.append(row(arm.name, endpoint, s, wall))
                if len(samples) > 1:
                    rows.append(row(arm.name, "total", totals(samples), wall))
            print(f"studies at end:   {describe(study_states(client, ids))}")
            print(
                f"{args.clients} clients, {args.seconds:.0f} s per arm, {args.studies} studies "
                "training"
            )
            print_rows(rows)
            for study_id in ids:
                client.post(f"{PREFIX}/{study_id}/stop").raise_for_status()
    finally:
        code = stop_server(server)
        print(f"server exited with {code}; log: {data_dir / 'server.log'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    sys.exit(1 if any(r["errors"] for r in rows) else 0)


if __name__ == "__main__":
    main()
