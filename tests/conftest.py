"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import copy
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.app import create_app
from service.settings import Settings
from storage import Store, create_engine_for, upgrade_schema

# ---------------------------------------------------------------------------
# Databases: each test gets its own, on SQLite and (where configured) PostgreSQL.
# ---------------------------------------------------------------------------

POSTGRES_URL_VARIABLE = "HPO_TEST_POSTGRES_URL"
# Used when the variable is unset, if a server answers there (as on the development machines).
LOCAL_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


@functools.cache
def _local_postgres() -> str | None:
    """LOCAL_POSTGRES_URL when a server answers there within two seconds, once a session."""
    engine = create_engine(LOCAL_POSTGRES_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return LOCAL_POSTGRES_URL
    except Exception:  # noqa: BLE001 - any failure means: not there
        return None
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of this test's own."""
    return f"sqlite:///{tmp_path / 'hpo.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, dropped afterwards.

    Skips when HPO_TEST_POSTGRES_URL is unset, except in CI, where it fails so that
    PostgreSQL coverage cannot disappear silently.
    """
    base_url = os.environ.get(POSTGRES_URL_VARIABLE) or _local_postgres()
    if not base_url:
        if _running_in_ci():
            pytest.fail(f"{POSTGRES_URL_VARIABLE} must be set in CI; PostgreSQL tests cannot skip")
        pytest.skip(
            f"no PostgreSQL at {LOCAL_POSTGRES_URL}; set {POSTGRES_URL_VARIABLE}="
            "postgresql+psycopg://USER@HOST:PORT/DB to run these tests"
        )
    name = f"hpo_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every supported database in turn, so storage contracts hold on all of them."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on each database in turn."""
    upgrade_schema(database_url)
    engine = create_engine_for(database_url)
    yield Store(engine)
    engine.dispose()


# ---------------------------------------------------------------------------
# Specs, Ray and a live service.
# ---------------------------------------------------------------------------

FAST_SPEC: dict[str, Any] = {
    "name": "test-study",
    "dataset": {"source": "builtin", "name": "digits"},
    "space": {
        "lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "momentum", "adam"]},
        "momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.95,
            "when": {"optimizer": ["momentum"]},
        },
        "batch_size": {"type": "categorical", "choices": [32, 64]},
    },
    "params": {"hidden_units": 32},
    "sampler": {"type": "random", "seed": 0},
    "pruner": {"type": "none"},
    "early_stopping": {"patience": 3},
    "budget": {"max_trials": 4, "max_epochs": 5, "parallelism": 2},
}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and key not in ("space", "dataset", "params")
        ):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture
def make_spec() -> Callable[..., dict[str, Any]]:
    """A small, fast study spec as a dict; keyword overrides merge into its sections."""

    def make(**overrides: Any) -> dict[str, Any]:
        return _merge(FAST_SPEC, overrides)

    return make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that uses the session's Ray without the `ray` mark: scripts/run_tests.sh
    runs the unmarked tests in a lane of their own, beside the Ray lane, and a Ray started
    there unasked would double the cluster on this machine."""
    unmarked = [
        item.nodeid
        for item in items
        if "ray_cluster" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("ray") is None
    ]
    if unmarked:
        raise pytest.UsageError("mark these tests `ray`: " + ", ".join(unmarked[:5]))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One Ray cluster on this machine for the whole session: a head (2 CPUs) and two more
    nodes, one with 2 CPUs and one with 1 CPU and a declared (fake) GPU. Services in
    tests join it, so every Ray test runs on several nodes."""
    import ray
    from ray.cluster_utils import Cluster

    store = 100 * 2**20
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False, "object_store_memory": store},
    )
    cluster.add_node(num_cpus=2, object_store_memory=store)
    cluster.add_node(num_cpus=1, num_gpus=1, object_store_memory=store)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@contextmanager
def running_service(settings: Settings, *, app: Any = None) -> Iterator[str]:
    """Serve the real app with uvicorn on a free loopback port; yields its base URL.

    Pass `app` (made by `create_app(settings)`) to look inside it while it serves."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say
    # they are TCP. Without it every request after a connection's first waited ~40 ms
    # for a delayed ACK (Nagle), which made the suite's HTTP calls 20x slower.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = app if app is not None else create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


@pytest.fixture
def service_url(ray_cluster: Any, database_url: str, tmp_path: Path) -> Iterator[str]:
    """A live service on each database in turn, sharing the session's Ray.

    No slots are started with it (most tests here call the API without training); a
    test's later studies reuse its earlier ones' slots."""
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", prewarm_slots=False)
    with running_service(settings) as url:
        yield url


@pytest.fixture
def sqlite_service_url(ray_cluster: Any, sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    """A live service on a SQLite file of this test's own (no slots started with it)."""
    settings = Settings(database_url=sqlite_url, data_dir=tmp_path / "data", prewarm_slots=False)
    with running_service(settings) as url:
        yield url


@dataclass(frozen=True)
class LiveService:
    url: str
    data_dir: Path
    data_root: Path  # HPO_DATA_ROOTS: path data sets live here, never in data_dir


@pytest.fixture(scope="module")
def shared_service(
    ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """One live service on SQLite for a whole test module (its tests share the database)."""
    root, datasets = tmp_path_factory.mktemp("service"), tmp_path_factory.mktemp("datasets")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}",
        data_dir=root / "data",
        data_roots=str(datasets),
    )
    with running_service(settings) as url:
        yield LiveService(url, settings.data_dir, datasets)


def wait_for_study(client: Any, study_id: int, timeout_s: float = 180) -> dict[str, Any]:
    """Poll a study over HTTP until it leaves queued/running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        study: dict[str, Any] = client.get(f"/api/v1/studies/{study_id}").json()
        if study["state"] not in ("queued", "running"):
            return study
        time.sleep(0.2)
    raise AssertionError(f"study {study_id} did not finish within {timeout_s}s")
