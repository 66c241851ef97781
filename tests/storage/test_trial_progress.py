"""A trial's runs in the store: resuming cuts its curve back to the checkpoint and fills
what the checkpoint holds, interruptions close runs, checkpoints are counted per study
(every test on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from storage import Store, TrialNotFound
from storage.models import EpochRow
from tests.storage.test_repository import make_study


def curve(store: Store, study_id: int, number: int, epochs: range) -> None:
    for epoch in epochs:
        store.add_epoch(
            study_id, number, epoch=epoch, seconds=0.1, metrics={"val_accuracy": epoch / 10}
        )


def test_resuming_cuts_the_curve_back_to_the_checkpoint_and_fills_what_it_holds(
    store: Store,
) -> None:
    study = make_study(store)
    store.create_trial(study.id, 0, {"lr": 0.1}, node="a pid=1")
    curve(store, study.id, 0, range(1, 8))  # the lost run recorded 7 epochs
    store.interrupt_trial(study.id, 0, end="worker_lost", state="waiting")
    # Its checkpoint holds 5, one of which (epoch 2) the crash kept from the store.
    history = [(0.2, {"val_accuracy": e / 10}) for e in range(1, 6)]
    store.run(lambda c: c.execute(delete(EpochRow).where(EpochRow.epoch == 2)))
    resumed = store.resume_trial(study.id, 0, node="b pid=2", history=history)
    assert (resumed.state, resumed.node, resumed.epochs_run) == ("running", "b pid=2", 5)
    detail = store.get_trial(study.id, 0)
    assert [e.epoch for e in detail.epochs] == [1, 2, 3, 4, 5]
    assert [e.seconds for e in detail.epochs] == [0.1, 0.2, 0.1, 0.1, 0.1]
    first, second = detail.attempts
    assert (first.node, first.from_epoch, first.epochs_trained, first.end) == (
        "a pid=1",
        0,
        7,
        "worker_lost",
    )
    assert (second.node, second.from_epoch, second.end) == ("b pid=2", 5, None)
    curve(store, study.id, 0, range(6, 9))
    store.finish_trial(
        study.id, 0, state="complete", value=0.8, best_epoch=8, stop_reason="completed"
    )
    last = store.get_trial(study.id, 0).attempts[-1]
    assert (last.epochs_trained, last.end) == (3, "completed")
    kinds = [e.kind for e in store.events_after(study.id)]
    assert kinds.count("trial_interrupted") == 1 and kinds.count("trial_resumed") == 1


def test_each_run_records_its_device_and_the_trial_shows_the_latest(store: Store) -> None:
    study = make_study(store)
    created = store.create_trial(study.id, 0, {"lr": 0.1}, node="a pid=1", device="NVIDIA H200")
    assert created.device == "NVIDIA H200"
    store.interrupt_trial(study.id, 0, end="preempted", state="waiting")
    store.resume_trial(study.id, 0, node="b pid=2", history=[], device="cpu")
    trial = store.get_trial(study.id, 0)
    assert trial.device == "cpu"
    assert [a.device for a in trial.attempts] == ["NVIDIA H200", "cpu"]
    listed = store.list_trials(study.id, state=None, order="number", limit=10, cursor=None)
    assert [t.device for t in listed.items] == ["cpu"]


def test_a_run_cut_by_a_crash_is_closed_as_interrupted_when_the_trial_resumes(store: Store) -> None:
    study = make_study(store)
    store.create_trial(study.id, 0, {"lr": 0.1})
    curve(store, study.id, 0, range(1, 4))
    store.resume_trial(study.id, 0, node=None, history=[])
    first, second = store.get_trial(study.id, 0).attempts
    assert (first.end, first.epochs_trained) == ("interrupted", 3)
    assert second.from_epoch == 0 and store.get_trial(study.id, 0).epochs == []


def test_checkpoint_bytes_count_only_unfinished_trials_per_study(store: Store) -> None:
    one, two, none = make_study(store), make_study(store), make_study(store)
    for number in (0, 1):
        store.create_trial(one.id, number, {})
        store.note_checkpoint(one.id, number, epoch=5, size=1000 + number)
    store.create_trial(two.id, 0, {})
    store.note_checkpoint(two.id, 0, epoch=2, size=7)
    store.interrupt_trial(two.id, 0, end="paused", state="waiting")
    assert store.checkpoint_bytes([one.id, two.id, none.id]) == {
        one.id: 2001,
        two.id: 7,
        none.id: 0,
    }
    store.finish_trial(
        one.id, 1, state="pruned", value=None, best_epoch=None, stop_reason="cancelled"
    )
    assert store.checkpoint_bytes([one.id]) == {one.id: 1000}
    ids = [one.id, two.id, none.id]
    assert store.trial_totals_of(ids) == (store.count_trials_of(ids), store.checkpoint_bytes(ids))
    assert store.trial_totals_of(ids)[1] == {one.id: 1000, two.id: 7, none.id: 0}
    assert store.get_trial(two.id, 0).checkpoint_epoch == 2


def test_a_warning_is_shown_once_and_unknown_trials_are_refused(store: Store) -> None:
    study = make_study(store)
    store.add_warning(study.id, "checkpoints could not be written")
    store.add_warning(study.id, "checkpoints could not be written")
    assert store.get_study(study.id).warnings.count("checkpoints could not be written") == 1
    with pytest.raises(TrialNotFound):
        store.resume_trial(study.id, 9, node=None, history=[])
    with pytest.raises(ValueError, match="unfinished trial"):
        store.create_trial(study.id, 0, {})
        store.interrupt_trial(study.id, 0, end="paused", state="complete")
