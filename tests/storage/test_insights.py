"""Dashboard aggregates: bucketed history, value blocks, samples and curves, on both databases."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from bench.synthetic_study import write_study
from storage import Store, StudyNotFound, create_engine_for, upgrade_schema, value_blocks
from storage.insights import RAW_HISTORY, StudyInsights
from storage.session import session_scope


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade_schema(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def finished_study(store: Store, values: list[float | None], direction: str = "maximize") -> int:
    """Trials 0..n-1 through the store's own calls: a value completes, None is pruned."""
    study = store.create_study(name="s", spec={"name": "s"}, direction=direction)
    for number, value in enumerate(values):
        store.create_trial(study.id, number, {"x": number})
        store.finish_trial(
            study.id,
            number,
            state="complete" if value is not None else "pruned",
            value=value,
            best_epoch=1,
            stop_reason="completed",
        )
    return study.id


def expected_history(
    values: list[tuple[int, float]], size: int, direction: str
) -> list[tuple[int, float, float, float, int]]:
    """(bucket, lo, hi, running best, count) computed the slow way, per bucket of `size`."""
    buckets: dict[int, list[float]] = {}
    for number, value in values:
        buckets.setdefault(number // size, []).append(value)
    pick = max if direction == "maximize" else min
    out, best = [], None
    for bucket, vs in sorted(buckets.items()):
        best = pick(vs) if best is None else pick(best, pick(vs))
        out.append((bucket, min(vs), max(vs), best, len(vs)))
    return out


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_small_history_has_one_point_per_complete_trial(engine: Engine, direction: str) -> None:
    rng = random.Random(1)
    values = [None if i % 4 == 3 else round(rng.random(), 4) for i in range(40)]
    study_id = finished_study(Store(engine), values, direction)
    history = StudyInsights(engine).history(study_id, points=500)
    scored = [(n, v) for n, v in enumerate(values) if v is not None]
    assert history.direction == direction
    assert history.bucket_size == 1 and history.n_complete == len(scored)
    assert [(b.number, b.lo, b.hi, b.best, b.count) for b in history.buckets] == [
        (n, lo, hi, best, count)
        for n, lo, hi, best, count in expected_history(scored, 1, direction)
    ]


def test_history_buckets_to_at_most_the_points_asked_for(engine: Engine) -> None:
    rng = random.Random(2)
    values = [None if i % 5 == 0 else rng.random() for i in range(100)]
    study_id = finished_study(Store(engine), values)
    history = StudyInsights(engine).history(study_id, points=7)
    assert len(history.buckets) <= 7 and history.bucket_size == 15
    scored = [(n, v) for n, v in enumerate(values) if v is not None]
    expected = expected_history(scored, 15, "maximize")
    assert [(b.lo, b.hi, b.best, b.count) for b in history.buckets] == [
        pytest.approx(e[1:]) for e in expected
    ]
    assert history.buckets[-1].best == max(v for _, v in scored)


def test_blocks_kept_by_finish_trial_equal_a_rebuild_from_the_trials(engine: Engine) -> None:
    rng = random.Random(3)
    values = [None if rng.random() < 0.2 else rng.random() for _ in range(150)]
    store = Store(engine)
    study_id = finished_study(store, values)
    # Finishing a complete trial again (recovery may) must not count it twice.
    store.finish_trial(
        study_id,
        0 if values[0] is not None else 1,
        state="complete",
        value=0.5,
        best_epoch=1,
        stop_reason="completed",
    )
    with session_scope(engine) as session:
        kept = value_blocks.read(session, study_id)
        value_blocks.rebuild(session, study_id)
    with session_scope(engine) as session:
        rebuilt = value_blocks.read(session, study_id)
    assert [b[:2] for b in kept] == [b[:2] for b in rebuilt]
    assert sum(count for _, count, _, _ in kept) == sum(v is not None for v in values)


def test_large_history_comes_from_blocks_and_matches_every_trial(
    engine: Engine, database_url: str
) -> None:
    n = RAW_HISTORY + 3000
    study_id = write_study(engine, database_url, n, curves=0, with_optuna=False)
    with engine.connect() as connection:
        scored = [
            (number, value)
            for number, value in connection.execute(
                text(
                    "SELECT number, value FROM hpo_trials WHERE study_id = :s AND state = 'complete'"
                ),
                {"s": study_id},
            )
        ]
    history = StudyInsights(engine).history(study_id, points=50)
    assert len(history.buckets) <= 50
    assert history.bucket_size % value_blocks.VALUE_BLOCK == 0
    assert history.n_complete == len(scored)
    expected = expected_history(scored, history.bucket_size, "maximize")
    assert [
        (b.number // history.bucket_size, b.lo, b.hi, b.best, b.count) for b in history.buckets
    ] == [pytest.approx(e) for e in expected]
    assert history.buckets[-1].last == n - 1


def test_sample_is_bounded_and_spread_over_the_study(engine: Engine, database_url: str) -> None:
    study_id = write_study(engine, database_url, 2000, curves=0, with_optuna=False)
    sample = StudyInsights(engine).sample_complete(study_id, limit=100)
    assert 50 <= len(sample) <= 100
    assert {"lr", "optimizer", "batch_size", "weight_decay"} == set(sample[0][0])
    assert all(isinstance(value, float) for _, value in sample)


def test_curves_of_named_trials_in_epoch_order(engine: Engine, database_url: str) -> None:
    study_id = write_study(engine, database_url, 100, curves=20, with_optuna=False)
    insights = StudyInsights(engine)
    found = insights.curves(study_id, [3, 9, 19, 50, 5000])
    assert set(found) == {3, 9, 19, 50}
    state, value, epochs = found[9]
    assert state == "pruned" and value is None and [e.epoch for e in epochs] == [1, 2, 3]
    assert [e.epoch for e in found[3][2]] == list(range(1, 11)) and found[50][2] == []
    assert insights.recent_numbers(study_id, state="pruned", limit=3) == [99, 89, 79]


def test_reads_of_a_missing_study_raise_not_found(engine: Engine) -> None:
    insights = StudyInsights(engine)
    calls: list[Any] = [
        lambda: insights.history(404, points=10),
        lambda: insights.sample_complete(404, limit=10),
        lambda: insights.curves(404, [1]),
        lambda: insights.recent_numbers(404, state="pruned", limit=1),
    ]
    for call in calls:
        with pytest.raises(StudyNotFound):
            call()
