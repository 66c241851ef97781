"""Forged pagination cursors over real HTTP, on every database: a 422, never a 5xx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.storage.hostile_cursors import HOSTILE_CURSORS

pytestmark = pytest.mark.ray


@pytest.fixture
def client(service_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url, timeout=30) as http:
        yield http


@pytest.fixture
def study_id(client: httpx.Client, make_spec: Callable[..., dict[str, Any]]) -> int:
    spec = make_spec(budget={"max_trials": 1, "max_epochs": 1, "parallelism": 1})
    created = client.post("/api/v1/studies", json=spec)
    assert created.status_code == 201, created.text
    study: int = created.json()["id"]
    return study


def test_every_forged_cursor_is_a_422_on_every_list(client: httpx.Client, study_id: int) -> None:
    lists = [
        "/api/v1/studies",
        f"/api/v1/studies/{study_id}/trials",
        f"/api/v1/studies/{study_id}/trials?order=best",
    ]
    answers = {
        (name, path): client.get(path, params={"cursor": cursor})
        for name, cursor in HOSTILE_CURSORS.items()
        for path in lists
    }
    statuses = {key: r.status_code for key, r in answers.items()}
    assert statuses == dict.fromkeys(answers, 422)
    assert {r.json()["error"]["code"] for r in answers.values()} == {"invalid_request"}
