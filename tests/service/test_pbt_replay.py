"""A PBT member's schedule, walked back along its lineage, as a spec that replays it."""

from __future__ import annotations

from typing import Any

import pytest

from service.pbt_replay import lineage_segments, replay_spec
from service.records import TrialRecord
from service.spec import StudySpec


def member(number: int, lr: float, epochs: int, *copies: dict[str, Any]) -> TrialRecord:
    return TrialRecord(
        study_id=1, number=number, state="complete", params={"lr": lr}, value=0.9,
        values=[0.9], best_epoch=epochs, epochs_run=epochs, stop_reason="completed",
        started_at=None, finished_at=None, duration_s=None, node=None, retry_of=None,
        error=None, lineage=list(copies),
    )  # fmt: skip


def copy(epoch: int, donor: int, donor_epoch: int, lr: float) -> dict[str, Any]:
    return {"epoch": epoch, "copied": donor, "copied_epoch": donor_epoch, "params": {"lr": lr}}


MEMBERS = {
    0: member(0, 0.1, 9),
    # 1 copied 0 at its epoch 3 (0's checkpoint at epoch 3), then 0 again at 6 (0 at 6).
    1: member(1, 0.001, 9, copy(3, 0, 3, 0.12), copy(6, 0, 6, 0.08)),
    # 2 copied 1 at epoch 6 from 1's epoch 6 (which had copied 0 at 3).
    2: member(2, 0.002, 9, copy(6, 1, 6, 0.15)),
}


def test_the_walk_back_follows_each_copy_to_the_donors_epochs() -> None:
    assert lineage_segments(MEMBERS, 0, 9) == [(9, {"lr": 0.1})]
    # 1's model: 0's first 6 epochs (0 never copied), then 3 of its own at 0.08.
    assert lineage_segments(MEMBERS, 1, 9) == [(6, {"lr": 0.1}), (3, {"lr": 0.08})]
    # 2's model: 1's first 6 epochs (0's first 3, then 1's 3 at 0.12), then 3 at 0.15.
    assert lineage_segments(MEMBERS, 2, 9) == [
        (3, {"lr": 0.1}), (3, {"lr": 0.12}), (3, {"lr": 0.15}),
    ]  # fmt: skip


def test_the_replay_spec_trains_that_schedule_once_and_is_a_valid_spec() -> None:
    spec = StudySpec.model_validate({
        "name": "pbt", "space": {"lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True}},
        "params": {"optimizer": "sgd"}, "budget": {"max_epochs": 9},
        "population": {"size": 3, "interval_epochs": 3,
                       "mutations": {"lr": {"perturb": [0.8, 1.2]}}},
    })  # fmt: skip
    replay = replay_spec(spec, MEMBERS, 2)
    assert replay["params"] == {"optimizer": "sgd", "lr": 0.1}
    assert replay["param_schedule"] == {
        "lr": [{"from_epoch": 4, "value": 0.12}, {"from_epoch": 7, "value": 0.15}]
    }
    assert replay["budget"]["max_trials"] == 1 and replay["budget"]["max_epochs"] == 9
    again = StudySpec.model_validate(replay)
    assert again.population is None and again.space == {}


def test_a_schedule_of_a_knob_a_running_trial_cannot_change_is_refused() -> None:
    base = {"name": "x", "space": {}, "params": {"lr": 0.1}, "budget": {"max_epochs": 5}}
    with pytest.raises(ValueError, match="param_schedule.hidden_units"):
        StudySpec.model_validate({**base, "param_schedule": {"hidden_units": [
            {"from_epoch": 2, "value": 64}]}})  # fmt: skip
    with pytest.raises(ValueError, match="from_epoch must rise"):
        StudySpec.model_validate({**base, "param_schedule": {"lr": [
            {"from_epoch": 3, "value": 0.1}, {"from_epoch": 2, "value": 0.2}]}})  # fmt: skip
    with pytest.raises(ValueError, match="lr must be in"):
        StudySpec.model_validate({**base, "param_schedule": {"lr": [
            {"from_epoch": 3, "value": -1.0}]}})  # fmt: skip
