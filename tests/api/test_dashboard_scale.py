"""The study page's API calls read as many rows on 100,000 trials as on 100: what they show.

A fixture writes both studies straight into a SQLite store (bench/synthetic_study.py);
the live service then answers every call the study page makes, for both, while a cursor
hook counts the rows each of the service's SELECTs returns. Each call's rows are bounded
by what it shows (a page, the sampled trials, the curves), the same bound for both sizes.
Counting rows, not timing them, keeps the test exact on a busy machine; the timings live
in bench/dashboard_scale.py, which prints them side by side on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from bench.dashboard_scale import page_calls
from bench.synthetic_study import write_study
from service.settings import Settings
from storage import create_engine_for, upgrade_schema
from storage.value_blocks import VALUE_BLOCK
from tests.conftest import running_service

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SMALL, LARGE = 100, 100_000
PAGE, SAMPLE, CURVES, MAX_EPOCHS = 25, 500, 20, 10  # as page_calls and the synthetic study ask
# The study row and its direction (each call looks them up), its best trial, a count per state.
STUDY_ROWS = 1 + 1 + 1 + 5
# Rows each call may read, whatever the study's size: its lookups and what it shows (a page
# and the row that says whether another follows). History reads a summary per VALUE_BLOCK
# trials past 4,096 (storage/insights.py): 1/64 of the study, its one read that grows.
BOUNDS = {
    "study": STUDY_ROWS,
    "studies list": 2 * STUDY_ROWS,  # the two studies here
    "trials best page": 2 + PAGE + 1,
    "trials by state": 2 + PAGE + 1,
    "parallel coords": 2 + SAMPLE + 1,
    "history": 3 + max(SAMPLE, -(-LARGE // VALUE_BLOCK)),
    "importance": 3 + SAMPLE,
    "curves": 5 + CURVES + CURVES * MAX_EPOCHS,
    "best": 3,
}


class RowCounter:
    """Counts the rows each SELECT run through SQLAlchemy returns, on every engine of this
    process, by asking the database how many rows the same statement yields.

    SQLite's cursor says nothing of a SELECT's rows until they are fetched, and fetching
    them here would take them from the service, so the statement is counted on its own
    connection, in the same transaction, through the raw DB-API cursor (which this hook
    does not see)."""

    def __init__(self) -> None:
        self._rows: list[int] = []
        self._lock = threading.Lock()

    def __enter__(self) -> RowCounter:
        event.listen(Engine, "after_cursor_execute", self._count)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(Engine, "after_cursor_execute", self._count)

    def rows_read(self, client: httpx.Client, path: str) -> int:
        """The rows the service's SELECTs returned while it answered GET `path`."""
        with self._lock:
            self._rows.clear()
        client.get(path).raise_for_status()
        with self._lock:
            return sum(self._rows)

    def _count(
        self, _conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if many or not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            return
        counted = cursor.connection.execute(f"SELECT count(*) FROM ({statement})", parameters)
        with self._lock:
            self._rows.append(counted.fetchone()[0])


@pytest.fixture(scope="module")
def scale(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("scale")
    url = f"sqlite:///{root / 'hpo.db'}"
    upgrade_schema(url)
    engine = create_engine_for(url)
    ids = {
        n: write_study(
            engine, url, n, name=f"scale-{n}", with_optuna=False, read_curves=CURVES // 2
        )
        for n in (SMALL, LARGE)
    }
    engine.dispose()
    settings = Settings(database_url=url, data_dir=root / "data")
    with (
        RowCounter() as counter,
        running_service(settings) as base,
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        yield {"client": client, "ids": ids, "counter": counter}


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_each_study_page_call_reads_only_the_rows_it_shows(
    scale: dict[str, Any], size: int
) -> None:
    client, counter = scale["client"], scale["counter"]
    calls = page_calls(scale["ids"][size])
    assert calls.keys() == BOUNDS.keys(), "a new call on the study page needs its bound here"
    read = {name: counter.rows_read(client, path) for name, path in calls.items()}
    over = {name: (n, BOUNDS[name]) for name, n in read.items() if n > BOUNDS[name]}
    assert not over, f"rows read > bound, at {size:,} trials: {over}"
    shown = client.get(calls["parallel coords"]).json()["items"]
    assert read["parallel coords"] >= len(shown) >= min(SAMPLE, size // 2)  # the hook counts


def test_the_study_page_reads_only_what_it_shows(scale: dict[str, Any]) -> None:
    client, study_id = scale["client"], scale["ids"][LARGE]
    answers = {name: client.get(path).json() for name, path in page_calls(study_id).items()}
    assert answers["study"]["counts"] == {
        "waiting": 0,
        "running": 0,
        "complete": 90_000,
        "pruned": 10_000,
        "failed": 0,
    }
    history = answers["history"]
    assert len(history["items"]) <= 500 and history["n_complete"] == 90_000
    assert history["items"][-1]["best"] == answers["best"]["items"][0]["value"]
    assert len(answers["trials best page"]["items"]) == 25
    # The curves call reads the curves it shows, at 100,000 trials too.
    curves = answers["curves"]["items"]
    assert len(curves) == CURVES and all(len(c["epochs"]) >= 3 for c in curves)
    assert {c["state"] for c in curves} == {"complete", "pruned"}
    assert answers["trials best page"]["items"][0] == answers["best"]["items"][0]
    assert len(answers["parallel coords"]["items"]) == 500
    assert 0 < answers["importance"]["n_trials"] <= 500
    assert answers["importance"]["items"][0]["param"] == "lr"
    curves = answers["curves"]["items"]
    assert len(curves) == 20 and {c["state"] for c in curves} == {"complete", "pruned"}
