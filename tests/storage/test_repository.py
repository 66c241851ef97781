"""Contract tests for `storage.Store`, run on every supported database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from storage import (
    TRIAL_STATES,
    ConflictError,
    InvalidCursorError,
    Page,
    Store,
    StudyNotFound,
    StudyRecord,
    TrialNotFound,
    TrialRecord,
    create_engine_for,
    upgrade_schema,
)
from storage.models import EpochRow, TrialRow
from storage.queries import best_of_studies_query, best_trials_query

# ---------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------


def make_spec(**overrides: Any) -> dict[str, Any]:
    """A small valid-looking study spec; storage treats it as opaque JSON."""
    spec: dict[str, Any] = {
        "name": "digits-mlp",
        "dataset": {"source": "builtin", "name": "digits"},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True}},
        "budget": {"max_trials": 4, "max_epochs": 3, "parallelism": 2},
    }
    spec.update(overrides)
    return spec


def make_study(store: Store, *, direction: str = "maximize", **overrides: Any) -> StudyRecord:
    spec = make_spec(**overrides)
    return store.create_study(name=spec["name"], spec=spec, direction=direction)


def make_trial(
    store: Store, study_id: int, number: int, *, state: str = "complete", value: float | None = 0.5
) -> TrialRecord:
    """A trial created and, unless `state` is running, finished with `value`."""
    record = store.create_trial(study_id, number, {"lr": 0.01 * (number + 1)})
    if state == "running":
        return record
    return store.finish_trial(
        study_id, number, state=state, value=value, best_epoch=0, stop_reason="completed"
    )


def collect(fetch: Any) -> list[Any]:
    """Follow next_cursor through every page of `fetch(cursor)`."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page: Page = fetch(cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def assert_recent_utc(moment: datetime | None) -> None:
    assert moment is not None
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


# ---------------------------------------------------------------------------
# Studies
# ---------------------------------------------------------------------------


def test_created_study_round_trips_with_queued_state_and_optuna_name(store: Store) -> None:
    spec = make_spec(params={"hidden_units": 128}, tags=["a", "ü"])
    created = store.create_study(name="digits", spec=spec, direction="minimize")

    fetched = store.get_study(created.id)

    assert fetched == created
    assert (fetched.name, fetched.state, fetched.direction) == ("digits", "queued", "minimize")
    assert fetched.spec == spec
    assert fetched.optuna_study_name == f"hpo-study-{created.id}"
    assert (fetched.started_at, fetched.finished_at, fetched.error) == (None, None, None)
    assert_recent_utc(fetched.created_at)


def test_create_study_rejects_unknown_direction(store: Store) -> None:
    with pytest.raises(ValueError, match="direction must be one of"):
        store.create_study(name="x", spec={}, direction="up")


def test_missing_study_raises_study_not_found_naming_the_id(store: Store) -> None:
    with pytest.raises(StudyNotFound, match="study 999 does not exist"):
        store.get_study(999)
    for call in (
        lambda: store.set_study_state(999, "running"),
        lambda: store.delete_study(999),
        lambda: store.count_trials(999),
        lambda: store.create_trial(999, 0, {}),
        lambda: store.list_trials(999),
        lambda: store.best_trials(999),
        lambda: store.unfinished_trials(999, states=["running"]),
    ):
        with pytest.raises(StudyNotFound):
            call()


def test_study_state_sets_started_once_and_finished_on_terminal_states(store: Store) -> None:
    study = make_study(store)

    running = store.set_study_state(study.id, "running", reason="submitted")
    assert_recent_utc(running.started_at)
    assert (running.state, running.state_reason, running.finished_at) == (
        "running",
        "submitted",
        None,
    )

    failed = store.set_study_state(study.id, "failed", reason="crash", error="boom")
    assert (failed.state, failed.error, failed.started_at) == ("failed", "boom", running.started_at)
    assert_recent_utc(failed.finished_at)

    resumed = store.set_study_state(study.id, "running")
    assert resumed.started_at == running.started_at
    assert (resumed.finished_at, resumed.error, resumed.state_reason) == (None, None, None)
    assert store.get_study(study.id) == resumed


def test_set_study_state_rejects_unknown_state(store: Store) -> None:
    study = make_study(store)
    with pytest.raises(ValueError, match="study state must be one of .* got 'done'"):
        store.set_study_state(study.id, "done")
    assert store.get_study(study.id).state == "queued"


def test_list_studies_pages_newest_first_without_dups_or_skips_under_inserts(store: Store) -> None:
    before = [make_study(store).id for _ in range(7)]
    seen: list[int] = []
    page = store.list_studies(limit=3)
    n_pages = 1
    while True:
        seen.extend(study.id for study in page.items)
        make_study(store)  # a concurrent insert lands before the next page is read
        if page.next_cursor is None:
            break
        page = store.list_studies(limit=3, cursor=page.next_cursor)
        n_pages += 1

    assert seen == sorted(before, reverse=True)
    assert n_pages == 3


def test_list_studies_filters_by_state(store: Store) -> None:
    ids = [make_study(store).id for _ in range(5)]
    for study_id in ids[1::2]:
        store.set_study_state(study_id, "running")

    running = collect(lambda c: store.list_studies(state="running", limit=1, cursor=c))

    assert [study.id for study in running] == [ids[3], ids[1]]
    assert store.list_studies(state="failed").items == []


def test_last_page_has_no_cursor(store: Store) -> None:
    for _ in range(2):
        make_study(store)
    assert store.list_studies(limit=2).next_cursor is None
    assert store.list_studies().next_cursor is None


@pytest.mark.parametrize("cursor", ["not a cursor!", "Zm9v", "", "WyJ0cmlhbHMtbnVtYmVyIiwxXQ"])
def test_bad_study_cursor_raises_invalid_cursor(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        store.list_studies(cursor=cursor)


def test_studies_in_states_returns_matching_studies_oldest_first(store: Store) -> None:
    queued, running, stopped = (make_study(store) for _ in range(3))
    store.set_study_state(running.id, "running")
    store.set_study_state(stopped.id, "stopped")

    found = store.studies_in_states(["running", "queued"])

    assert [study.id for study in found] == [queued.id, running.id]
    assert store.studies_in_states([]) == []


def test_delete_study_cascades_to_trials_and_epochs(store: Store) -> None:
    doomed, kept = make_study(store), make_study(store)
    for study in (doomed, kept):
        make_trial(store, study.id, 0, state="running")
        store.add_epoch(study.id, 0, epoch=0, seconds=1.0, metrics={"val_loss": 0.3})

    store.delete_study(doomed.id)

    with pytest.raises(StudyNotFound):
        store.get_study(doomed.id)
    with store._session() as session:  # noqa: SLF001 - checking rows the API cannot see
        assert session.scalar(select(func.count()).select_from(TrialRow)) == 1
        assert session.scalar(select(func.count()).select_from(EpochRow)) == 1
    assert len(store.get_trial(kept.id, 0).epochs) == 1


def test_deleted_study_id_is_never_reused(store: Store) -> None:
    first = make_study(store)
    store.delete_study(first.id)
    assert make_study(store).optuna_study_name != first.optuna_study_name


# ---------------------------------------------------------------------------
# Trials
# ---------------------------------------------------------------------------


def test_created_trial_round_trips_as_running(store: Store) -> None:
    study = make_study(store)

    created = store.create_trial(study.id, 0, {"lr": 0.1, "optimizer": "adam"}, node="n1")

    assert created == store.get_trial(study.id, 0)
    assert (created.state, created.params, created.node) == (
        "running",
        {"lr": 0.1, "optimizer": "adam"},
        "n1",
    )
    assert (created.epochs_run, created.value, created.finished_at, created.epochs) == (
        0,
        None,
        None,
        [],
    )
    assert_recent_utc(created.started_at)


def test_retry_records_the_trial_it_repeats(store: Store) -> None:
    study = make_study(store)
    make_trial(store, study.id, 0, state="failed", value=None)
    retry = store.create_trial(study.id, 1, {"lr": 0.01}, state="waiting", retry_of=0)
    assert (retry.state, retry.retry_of) == ("waiting", 0)


def test_duplicate_trial_number_conflicts_and_writes_nothing(store: Store) -> None:
    study = make_study(store)
    original = store.create_trial(study.id, 0, {"lr": 0.1})

    with pytest.raises(ConflictError):
        store.create_trial(study.id, 0, {"lr": 0.2})

    assert store.get_trial(study.id, 0) == original
    assert store.count_trials(study.id)["running"] == 1


def test_epochs_are_recorded_in_order_and_counted(store: Store) -> None:
    study = make_study(store)
    make_trial(store, study.id, 0, state="running")
    for epoch in (1, 0, 2):
        store.add_epoch(study.id, 0, epoch=epoch, seconds=0.5 + epoch, metrics={"val": epoch / 10})

    trial = store.get_trial(study.id, 0)

    assert trial.epochs_run == 3
    assert [(e.epoch, e.seconds, e.metrics) for e in trial.epochs] == [
        (0, 0.5, {"val": 0.0}),
        (1, 1.5, {"val": 0.1}),
        (2, 2.5, {"val": 0.2}),
    ]


def test_duplicate_epoch_conflicts_without_counting_it(store: Store) -> None:
    study = make_study(store)
    make_trial(store, study.id, 0, state="running")
    store.add_epoch(study.id, 0, epoch=0, seconds=1.0, metrics={"val": 0.5})

    with pytest.raises(ConflictError):
        store.add_epoch(study.id, 0, epoch=0, seconds=2.0, metrics={"val": 0.9})

    trial = store.get_trial(study.id, 0)
    assert trial.epochs_run == 1
    assert [e.metrics for e in trial.epochs] == [{"val": 0.5}]


def test_concurrent_epoch_writers_all_land(store: Store) -> None:
    study = make_study(store)
    for number in range(4):
        make_trial(store, study.id, number, state="running")

    def record_epochs(number: int) -> None:
        for epoch in range(10):
            store.add_epoch(study.id, number, epoch=epoch, seconds=0.1, metrics={"val": 0.5})

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(record_epochs, number) for number in range(4)]:
            future.result()

    assert [store.get_trial(study.id, n).epochs_run for n in range(4)] == [10] * 4


def test_missing_trial_raises_trial_not_found_naming_it(store: Store) -> None:
    study = make_study(store)
    with pytest.raises(TrialNotFound, match=f"trial 7 of study {study.id} does not exist"):
        store.get_trial(study.id, 7)
    with pytest.raises(TrialNotFound):
        store.add_epoch(study.id, 7, epoch=0, seconds=1.0, metrics={})
    with pytest.raises(TrialNotFound):
        store.finish_trial(
            study.id, 7, state="complete", value=1.0, best_epoch=0, stop_reason="completed"
        )


def test_finish_trial_records_outcome_and_duration(store: Store) -> None:
    study = make_study(store)
    started = store.create_trial(study.id, 0, {"lr": 0.1})

    finished = store.finish_trial(
        study.id,
        0,
        state="pruned",
        value=0.25,
        best_epoch=2,
        stop_reason="pruned",
        error=None,
        values=[0.25, 3.0],
    )

    assert finished == store.get_trial(study.id, 0)
    assert (finished.state, finished.value, finished.values) == ("pruned", 0.25, [0.25, 3.0])
    assert (finished.best_epoch, finished.stop_reason) == (2, "pruned")
    assert_recent_utc(finished.finished_at)
    assert started.started_at is not None and finished.finished_at is not None
    assert finished.duration_s == pytest.approx(
        (finished.finished_at - started.started_at).total_seconds()
    )
    assert finished.duration_s is not None and finished.duration_s >= 0


def test_finish_trial_rejects_unfinished_state(store: Store) -> None:
    study = make_study(store)
    make_trial(store, study.id, 0, state="running")
    with pytest.raises(ValueError, match="finished trial state must be one of"):
        store.finish_trial(
            study.id, 0, state="running", value=None, best_epoch=None, stop_reason="failed"
        )


def test_count_trials_reports_every_state(store: Store) -> None:
    study, other = make_study(store), make_study(store)
    assert store.count_trials(study.id) == dict.fromkeys(TRIAL_STATES, 0)
    states = ["complete", "complete", "pruned", "failed", "running"]
    for number, state in enumerate(states):
        make_trial(store, study.id, number, state=state)
    make_trial(store, other.id, 0)

    counts = store.count_trials(study.id)

    assert counts == {"waiting": 0, "running": 1, "complete": 2, "pruned": 1, "failed": 1}
    # A page of studies in one query: each its own, a missing one all zero.
    page = store.count_trials_of([study.id, other.id, 999])
    assert page == {
        study.id: counts,
        other.id: store.count_trials(other.id),
        999: dict.fromkeys(TRIAL_STATES, 0),
    }
    assert sum(page[other.id].values()) == 1


def test_running_trials_lists_only_running_by_number(store: Store) -> None:
    study = make_study(store)
    for number, state in enumerate(["running", "complete", "running", "failed"]):
        make_trial(store, study.id, number, state=state)
    assert [t.number for t in store.unfinished_trials(study.id, states=["running"])] == [0, 2]
    assert store.unfinished_trials(make_study(store).id, states=["running"]) == []


def add_scored_trials(store: Store, study_id: int) -> None:
    """Complete trials valued 0.3, 0.9, 0.5, 0.9 (numbers 0-3) beside ones that must not rank."""
    for number, value in enumerate([0.3, 0.9, 0.5, 0.9]):
        make_trial(store, study_id, number, value=value)
    make_trial(store, study_id, 4, state="pruned", value=5.0)
    make_trial(store, study_id, 5, state="failed", value=-5.0)
    make_trial(store, study_id, 6, state="complete", value=None)
    make_trial(store, study_id, 7, state="running")


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("maximize", [(1, 0.9), (3, 0.9), (2, 0.5), (0, 0.3)]), ("minimize", [(0, 0.3), (2, 0.5)])],
)
def test_best_trials_rank_complete_scored_trials_in_the_study_direction(
    store: Store, direction: str, expected: list[tuple[int, float]]
) -> None:
    study = make_study(store, direction=direction)
    add_scored_trials(store, study.id)

    best = store.best_trials(study.id, k=len(expected))

    assert [(t.number, t.value) for t in best] == expected
    assert [t.number for t in store.best_trials(study.id)] == [expected[0][0]]
    assert len(store.best_trials(study.id, k=100)) == 4


def test_best_of_studies_reads_each_studys_best_in_its_own_direction(store: Store) -> None:
    up, down, empty = (
        make_study(store, direction="maximize"),
        make_study(store, direction="minimize"),
        make_study(store),
    )
    add_scored_trials(store, up.id)
    add_scored_trials(store, down.id)
    make_trial(store, empty.id, 0, state="failed", value=None)
    directions = {up.id: "maximize", down.id: "minimize", empty.id: "maximize"}
    best = store.best_of_studies(directions)
    assert {i: (t.number, t.value) for i, t in best.items()} == {
        up.id: (1, 0.9),  # 0.9 twice: the lower number, as best_trials ranks it
        down.id: (0, 0.3),
    }
    for study_id in (up.id, down.id):
        assert best[study_id] == store.best_trials(study_id, k=1)[0]
    assert store.best_of_studies({}) == {}
    assert store.best_of_studies({down.id: "minimize"}) == {down.id: best[down.id]}
    assert store.best_of_studies({empty.id: "minimize"}) == {}


def test_best_trials_of_study_without_results_is_empty(store: Store) -> None:
    study = make_study(store)
    make_trial(store, study.id, 0, state="failed", value=None)
    assert store.best_trials(study.id, k=3) == []
    with pytest.raises(ValueError, match="k must be at least 1"):
        store.best_trials(study.id, k=0)


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("maximize", [4, 1, 3, 2, 0, 5, 6, 7]), ("minimize", [5, 0, 2, 1, 3, 4, 6, 7])],
)
def test_trials_ordered_best_put_unscored_last_across_pages(
    store: Store, direction: str, expected: list[int]
) -> None:
    study = make_study(store, direction=direction)
    add_scored_trials(store, study.id)

    def fetch(cursor: str | None) -> Page:
        return store.list_trials(study.id, order="best", limit=3, cursor=cursor)

    assert [t.number for t in collect(fetch)] == expected
    complete = store.list_trials(study.id, state="complete", order="best").items
    assert [t.number for t in complete] == [n for n in expected if n in (0, 1, 2, 3, 6)]


def test_trials_by_number_page_without_dups_or_skips_under_inserts(store: Store) -> None:
    study = make_study(store)
    for number in range(7):
        make_trial(store, study.id, number, state="running")
    store.add_epoch(study.id, 0, epoch=0, seconds=1.0, metrics={"val": 0.1})

    seen: list[int] = []
    cursor: str | None = None
    next_number, n_pages = 7, 0
    while True:
        page = store.list_trials(study.id, limit=3, cursor=cursor)
        seen.extend(trial.number for trial in page.items)
        assert all(trial.epochs == [] for trial in page.items)
        n_pages += 1
        if page.next_cursor is None or n_pages == 3:
            break
        make_trial(store, study.id, next_number, state="running")
        next_number += 1
        cursor = page.next_cursor

    assert seen == list(range(9))
    assert n_pages == 3


def test_trial_cursor_of_another_order_is_invalid(store: Store) -> None:
    study = make_study(store)
    for number in range(3):
        make_trial(store, study.id, number)
    by_number = store.list_trials(study.id, limit=1).next_cursor
    assert by_number is not None

    with pytest.raises(InvalidCursorError):
        store.list_trials(study.id, order="best", cursor=by_number)
    with pytest.raises(InvalidCursorError):
        store.list_studies(cursor=by_number)
    with pytest.raises(InvalidCursorError):
        store.list_trials(study.id, cursor="%%%")


def test_list_trials_rejects_unknown_order(store: Store) -> None:
    study = make_study(store)
    with pytest.raises(ValueError, match="order must be one of"):
        store.list_trials(study.id, order="value")


def test_best_trials_query_uses_the_best_trial_index(sqlite_url: str) -> None:
    upgrade_schema(sqlite_url)
    engine = create_engine_for(sqlite_url)
    query = best_trials_query(1, "maximize", 3)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    try:
        with engine.connect() as connection:
            plan = connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
    finally:
        engine.dispose()
    assert "USING INDEX ix_hpo_trials_study_state_value_number" in " ".join(map(str, plan))


def test_best_of_studies_query_uses_the_best_trial_index(sqlite_url: str) -> None:
    upgrade_schema(sqlite_url)
    engine = create_engine_for(sqlite_url)
    query = best_of_studies_query({"maximize": [1, 2], "minimize": [3]})
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    try:
        with engine.connect() as connection:
            plan = " ".join(map(str, connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()))
    finally:
        engine.dispose()
    # One top-1 search per study through the index, not a scan of every trial.
    assert (
        plan.count("USING COVERING INDEX ix_hpo_trials_study_state_value_number")
        + plan.count("USING INDEX ix_hpo_trials_study_state_value_number")
        >= 2
    ), plan
    assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), plan


# ---------------------------------------------------------------------------
# The change log
# ---------------------------------------------------------------------------


def test_every_change_appends_its_event_in_order(store: Store) -> None:
    study = make_study(store)
    store.set_study_state(study.id, "running")
    store.create_trial(study.id, 0, {"lr": 0.1}, node="n1")
    store.add_epoch(study.id, 0, epoch=1, seconds=0.5, metrics={"val_accuracy": 0.5})
    store.finish_trial(
        study.id, 0, state="complete", value=0.5, best_epoch=1, stop_reason="completed"
    )
    store.set_study_state(study.id, "completed", reason="max_trials")
    found = store.events_after(study.id)
    assert [e.kind for e in found] == ["study", "trial_started", "epoch", "trial_finished", "study"]
    assert [e.id for e in found] == sorted(e.id for e in found)
    assert found[2].data == {"number": 0, "epoch": 1, "seconds": 0.5, "val_accuracy": 0.5}
    assert found[-1].data == {"state": "completed", "reason": "max_trials", "error": None}
    assert [e.kind for e in store.events_after(study.id, found[2].id)] == [
        "trial_finished",
        "study",
    ]
    assert len(store.events_after(study.id, limit=2)) == 2


def test_a_failed_change_leaves_no_event(store: Store) -> None:
    study = make_study(store)
    make_trial(store, study.id, 0, state="running")
    store.add_epoch(study.id, 0, epoch=1, seconds=0.1, metrics={})
    before = store.events_after(study.id)
    with pytest.raises(ConflictError):
        store.add_epoch(study.id, 0, epoch=1, seconds=0.1, metrics={})
    assert store.events_after(study.id) == before


def test_events_of_other_studies_stay_apart_and_go_with_their_study(store: Store) -> None:
    one, two = make_study(store), make_study(store)
    store.set_study_state(one.id, "running")
    store.set_study_state(two.id, "running")
    assert len(store.events_after(one.id)) == len(store.events_after(two.id)) == 1
    store.delete_study(one.id)
    with pytest.raises(StudyNotFound):
        store.events_after(one.id)
