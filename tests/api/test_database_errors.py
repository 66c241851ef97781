"""A failing database over real HTTP, on every database: clients get a short message and
an error id, never the SQL; the log has the detail under the same id."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import wait_for_study

pytestmark = pytest.mark.ray

ERROR_ID = re.compile(r"\(id ([0-9a-f]{8})\)")
SQL_WORDS = ("INSERT", "SELECT", "UPDATE", "hpo_", "[SQL", "parameters")


def error_id(text_for_clients: str) -> str:
    assert not [w for w in SQL_WORDS if w.lower() in text_for_clients.lower()], text_for_clients
    found = ERROR_ID.search(text_for_clients)
    assert found, text_for_clients
    return found.group(1)


def logged(caplog: pytest.LogCaptureFixture, id_: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"(id {id_})" in r.getMessage()]


def test_a_dropped_table_shows_an_error_id_in_the_study_and_the_response_not_sql(
    service_url: str,
    database_url: str,
    make_spec: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE hpo_epochs"))
    engine.dispose()
    spec = make_spec(budget={"max_trials": 1, "max_epochs": 1, "parallelism": 1})
    with httpx.Client(base_url=service_url, timeout=30) as http:
        created = http.post("/api/v1/studies", json=spec)
        assert created.status_code == 201, created.text
        study = wait_for_study(http, created.json()["id"])
        trial = http.get(f"/api/v1/studies/{study['id']}/trials/0")

    assert study["state"] == "failed"
    in_study = error_id(study["error"])
    assert any("hpo_epochs" in line for line in logged(caplog, in_study)), study["error"]
    assert trial.status_code == 503
    in_response = error_id(trial.json()["error"]["message"])
    assert any("SELECT" in line and "hpo_epochs" in line for line in logged(caplog, in_response))
