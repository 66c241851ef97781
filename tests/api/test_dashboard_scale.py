"""The study page's API calls on 100,000 trials answer in the same order of time as on 100.

A fixture writes both studies straight into a SQLite store (bench/synthetic_study.py);
the live service then answers every call the study page makes, for both. Each call's
median over a few repeats must stay within ORDER_OF_MAGNITUDE of the small study's, or
under FLOOR_S (below which loopback noise decides). bench/dashboard_scale.py prints
the same comparison as a table, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.dashboard_scale import page_calls, time_calls
from bench.synthetic_study import write_study
from service.settings import Settings
from storage import create_engine_for, upgrade_schema
from tests.conftest import running_service

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SMALL, LARGE = 100, 100_000
ORDER_OF_MAGNITUDE = 10
FLOOR_S = 0.05


@pytest.fixture(scope="module")
def scale(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("scale")
    url = f"sqlite:///{root / 'hpo.db'}"
    upgrade_schema(url)
    engine = create_engine_for(url)
    ids = {
        n: write_study(engine, url, n, name=f"scale-{n}", with_optuna=False) for n in (SMALL, LARGE)
    }
    engine.dispose()
    settings = Settings(database_url=url, data_dir=root / "data")
    with running_service(settings) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield {"client": client, "ids": ids}


def test_each_study_page_call_answers_in_the_same_order_of_time(scale: dict[str, Any]) -> None:
    client, ids = scale["client"], scale["ids"]
    _, small = time_calls(client, ids[SMALL], repeat=5)
    _, large = time_calls(client, ids[LARGE], repeat=5)
    slow = {
        name: f"{small[name] * 1e3:.1f} ms -> {large[name] * 1e3:.1f} ms"
        for name in small
        if large[name] > max(ORDER_OF_MAGNITUDE * small[name], FLOOR_S)
    }
    assert not slow, slow


def test_the_study_page_reads_only_what_it_shows(scale: dict[str, Any]) -> None:
    client, study_id = scale["client"], scale["ids"][LARGE]
    answers = {name: client.get(path).json() for name, path in page_calls(study_id).items()}
    assert answers["study"]["counts"] == {
        "waiting": 0, "running": 0, "complete": 90_000, "pruned": 10_000, "failed": 0,
    }  # fmt: skip
    history = answers["history"]
    assert len(history["items"]) <= 500 and history["n_complete"] == 90_000
    assert history["items"][-1]["best"] == answers["best"]["items"][0]["value"]
    assert len(answers["trials best page"]["items"]) == 25
    assert answers["trials best page"]["items"][0] == answers["best"]["items"][0]
    assert len(answers["parallel coords"]["items"]) == 500
    assert 0 < answers["importance"]["n_trials"] <= 500
    assert answers["importance"]["items"][0]["param"] == "lr"
    curves = answers["curves"]["items"]
    assert len(curves) == 20 and {c["state"] for c in curves} == {"complete", "pruned"}
