"""The events hub's one read: each watched study's events after its own cursor, with states."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage import Store, create_engine_for, upgrade_schema
from storage.engine import Engine
from storage.events import EventFeed, WatchedStudy


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade_schema(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def test_a_poll_reads_each_study_after_its_own_cursor(engine: Engine) -> None:
    store = Store(engine)
    first, second, unwatched = (
        store.create_study(name=n, spec={}, direction="maximize", tenant=t)
        for n, t in (("a", "team-a"), ("b", "team-b"), ("c", "team-a"))
    )
    for study in (first, second, unwatched, first, second):
        store.set_study_state(study.id, "running")
    ids = {s.id: [e.id for e in store.events_after(s.id)] for s in (first, second)}
    batch = EventFeed(engine).poll({first.id: ids[first.id][0], second.id: 0}, limit=100)
    assert [(s, e.id) for s, e in batch.events] == sorted(
        [(first.id, i) for i in ids[first.id][1:]] + [(second.id, i) for i in ids[second.id]],
        key=lambda pair: pair[1],
    )
    assert batch.studies == {
        first.id: WatchedStudy("running", "team-a"),
        second.id: WatchedStudy("running", "team-b"),
    }
    assert batch.complete


def test_a_poll_cut_by_its_limit_says_so_and_a_missing_study_is_absent(engine: Engine) -> None:
    store = Store(engine)
    study = store.create_study(name="a", spec={}, direction="maximize")
    for state in ("running", "paused", "running"):
        store.set_study_state(study.id, state)
    batch = EventFeed(engine).poll({study.id: 0, 10**9: 0}, limit=2)
    assert len(batch.events) == 2 and not batch.complete
    assert set(batch.studies) == {study.id}
