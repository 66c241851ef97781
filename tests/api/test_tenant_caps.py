"""Per-tenant caps on active studies and stored upload bytes, on the one default tenant of
a service without tokens (a single user is capped like any tenant)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from service.settings import Settings
from tests.conftest import running_service

pytestmark = [pytest.mark.ray, pytest.mark.slow]
LONG_BUDGET = {"max_trials": 1000, "max_epochs": 200, "parallelism": 1}


@pytest.fixture(scope="module")
def service(
    ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("caps")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}",
        data_dir=root / "data",
        max_active_studies_per_tenant=2,
        max_upload_bytes=5_000,
        max_upload_bytes_per_tenant=10_000,
        prewarm_slots=False,
    )
    with running_service(settings) as url:
        yield url, settings.data_dir


@pytest.fixture
def http(service: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service[0], timeout=60) as client:
        yield client


def wait_for_state(http: httpx.Client, study_id: int, state: str) -> None:
    deadline = time.monotonic() + 120
    while http.get(f"/api/v1/studies/{study_id}").json()["state"] != state:
        assert time.monotonic() < deadline, f"study {study_id} never became {state}"
        time.sleep(0.1)


def test_a_study_over_the_active_cap_is_429_and_paused_ones_count(
    http: httpx.Client, make_spec: Callable[..., Any]
) -> None:
    spec = make_spec(budget=LONG_BUDGET)
    first, second = (http.post("/api/v1/studies", json=spec).json()["id"] for _ in range(2))
    refused = http.post("/api/v1/studies", json=spec)
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "code": "cap_reached",
        "details": [],
        "message": "tenant cap reached: max_active_studies_per_tenant = 2",
    }
    assert http.post(f"/api/v1/studies/{first}/pause").status_code == 202
    wait_for_state(http, first, "paused")
    assert http.post("/api/v1/studies", json=spec).status_code == 429, "a paused study counts"
    assert http.post(f"/api/v1/studies/{first}/stop").status_code == 202
    wait_for_state(http, first, "stopped")
    third = http.post("/api/v1/studies", json=spec)
    assert third.status_code == 201
    assert len(http.get("/api/v1/studies").json()["items"]) == 3
    resumed = http.post(f"/api/v1/studies/{first}/resume", json={})
    assert resumed.status_code == 429, "a resumed study counts as a new one"
    assert resumed.json()["error"]["code"] == "cap_reached"
    assert http.get(f"/api/v1/studies/{first}").json()["state"] == "stopped"
    for study_id in (second, third.json()["id"]):
        http.post(f"/api/v1/studies/{study_id}/stop")
        wait_for_state(http, study_id, "stopped")


def csv_of(n_rows: int, seed: int) -> bytes:
    x = np.random.default_rng(seed).normal(size=(n_rows, 2)).round(6)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": (x[:, 0] > 0).astype(int)})
    return frame.to_csv(index=False).encode()


def upload(http: httpx.Client, content: bytes) -> httpx.Response:
    return http.post(
        "/api/v1/datasets", files={"file": ("d.csv", content)}, data={"target": "label"}
    )


def test_an_upload_past_the_tenants_total_is_refused_and_loses_nothing(
    http: httpx.Client, service: tuple[str, Path]
) -> None:
    content = csv_of(200, seed=0)
    assert 4_000 < len(content) <= 5_000
    stored = [upload(http, content).json() for _ in range(2)]
    refused = upload(http, content)
    assert refused.status_code == 413
    assert refused.json()["error"]["message"].startswith(
        "tenant cap reached: max_upload_bytes_per_tenant = 10000"
    )
    listed = http.get("/api/v1/datasets").json()["items"]
    assert [d["id"] for d in listed] == [d["id"] for d in stored]
    folders = sorted(p.name for p in (service[1] / "uploads").iterdir())
    assert folders == sorted(d["id"] for d in stored)
    for dataset in stored:
        assert (service[1] / "uploads" / dataset["id"] / "d.csv").read_bytes() == content
    assert http.delete(f"/api/v1/datasets/{stored[0]['id']}").status_code == 204
    assert upload(http, content).status_code == 201, "a deleted upload gives its bytes back"
