"""The checkpoint store (whole files or none, by URI) and when a slot saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.trial_checkpoints import CheckpointPolicy, TrialCheckpoints, trial_key


def test_a_checkpoint_is_replaced_whole_and_deleted_with_its_study(tmp_path: Path) -> None:
    store = TrialCheckpoints(f"file://{tmp_path}/store")
    key = trial_key(3, 7)
    assert store.load(key) is None and store.study_bytes(3) == 0
    store.save(key, b"first")
    store.save(key, b"second, longer")
    assert store.load(key) == b"second, longer"
    files = [p.name for p in (tmp_path / "store" / "study-3").iterdir()]
    assert files == ["trial-7.state"]  # no partial file is left behind
    store.save(trial_key(3, 8), b"x" * 100)
    assert store.study_bytes(3) == len(b"second, longer") + 100
    store.delete(key)
    assert store.load(key) is None
    store.delete_study(3)
    assert not (tmp_path / "store" / "study-3").exists() and store.study_bytes(3) == 0


def test_a_store_that_refuses_raises_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        TrialCheckpoints(str(blocker / "store")).save(trial_key(1, 0), b"data")


def test_the_default_rule_keeps_saves_under_two_percent_of_training() -> None:
    policy = CheckpointPolicy("memory://", "k")
    assert policy.due(1, 0.01, None)  # the first save measures what a save costs
    # Saves of 2 ms: due after 100 ms of training, e.g. the 7th epoch of 15 ms.
    assert not policy.due(6, 6 * 0.015, 0.002) and policy.due(7, 7 * 0.015, 0.002)
    assert policy.due(1, 1.5, 0.0025)  # epochs of seconds: every epoch
    assert not policy.due(1, 1.5, 0.5)  # a save as long as a third of an epoch: not every one
    fixed = CheckpointPolicy("memory://", "k", every_epochs=3)
    assert [fixed.due(n, 100.0, None) for n in (1, 2, 3)] == [False, False, True]
