"""A PBT member's schedule, walked back along its lineage, as a spec that replays it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.records import TrialRecord
from service.settings import Settings
from service.spec import StudySpec
from service.studies.pbt_replay import Lineage, lineage_of, lineage_segments, replay_spec
from storage import Store, create_engine_for
from tests.conftest import running_service, wait_for_study
from tests.service.test_cluster import submit
from tests.service.test_population import detail


def member(number: int, lr: float, epochs: int, *copies: dict[str, Any]) -> TrialRecord:
    return TrialRecord(
        study_id=1,
        number=number,
        state="complete",
        params={"lr": lr},
        value=0.9,
        values=[0.9],
        best_epoch=epochs,
        epochs_run=epochs,
        stop_reason="completed",
        started_at=None,
        finished_at=None,
        duration_s=None,
        node=None,
        retry_of=None,
        error=None,
        lineage=list(copies),
    )


def copy(epoch: int, donor: int, donor_epoch: int, lr: float) -> dict[str, Any]:
    return {"epoch": epoch, "copied": donor, "copied_epoch": donor_epoch, "params": {"lr": lr}}


MEMBERS = {
    0: member(0, 0.1, 9),
    # 1 copied 0 at its epoch 3 (0's checkpoint at epoch 3), then 0 again at 6 (0 at 6).
    1: member(1, 0.001, 9, copy(3, 0, 3, 0.12), copy(6, 0, 6, 0.08)),
    # 2 copied 1 at epoch 6 from 1's epoch 6, where 1 had just copied 0: 1's checkpoint
    # there is that copy (test_population asserts the value 2 loaded is the copy's).
    2: member(2, 0.002, 9, copy(6, 1, 6, 0.15)),
    # 3 copied 4 at epoch 6 from 4's last epoch, 5 (4 stopped early); 4 had copied 5 at 3.
    3: member(3, 0.003, 9, copy(6, 4, 5, 0.2)),
    4: member(4, 0.004, 5, copy(3, 5, 3, 0.13)),
    5: member(5, 0.005, 9),
}


def test_the_walk_back_follows_each_copy_to_the_donors_epochs() -> None:
    assert lineage_of(MEMBERS, 0, 9) == Lineage(0, [(9, {"lr": 0.1})])
    # 1's model: 0's first 6 epochs (0 never copied), then 3 of its own at 0.08.
    assert lineage_of(MEMBERS, 1, 9) == Lineage(0, [(6, {"lr": 0.1}), (3, {"lr": 0.08})])
    # 2's model: 1's at epoch 6, which was 0's at 6; then 3 epochs at 0.15.
    assert lineage_of(MEMBERS, 2, 9) == Lineage(0, [(6, {"lr": 0.1}), (3, {"lr": 0.15})])
    # 3's model: 4's 5 epochs (5's first 3, then 4's 2 at 0.13), then 3 at 0.2.
    assert lineage_of(MEMBERS, 3, 9) == Lineage(
        5, [(3, {"lr": 0.005}), (2, {"lr": 0.13}), (3, {"lr": 0.2})]
    )
    assert lineage_segments(MEMBERS, 3, 9) == lineage_of(MEMBERS, 3, 9).segments


PBT = {
    "name": "pbt",
    "space": {"lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True}},
    "params": {"optimizer": "sgd"},
    "split": {"seed": 10},
    "budget": {"max_epochs": 9, "target": 0.99},
    "early_stopping": {"patience": 2},
    "population": {"size": 6, "interval_epochs": 3, "mutations": {"lr": {"perturb": [0.8, 1.2]}}},
}


def test_the_replay_spec_trains_that_schedule_once_with_the_roots_seed() -> None:
    spec = StudySpec.model_validate(PBT)
    replay = replay_spec(spec, MEMBERS, 3)
    assert replay["params"] == {"optimizer": "sgd", "lr": 0.005}
    assert replay["param_schedule"] == {
        "lr": [{"from_epoch": 4, "value": 0.13}, {"from_epoch": 6, "value": 0.2}]
    }
    # Member 5 trained the first epochs, with split.seed + 5; the copies carried its
    # generators on, so the replay trains with that seed, and nothing stops it early.
    assert replay["training_seed"] == 15 and replay["split"]["seed"] == 10
    assert replay["budget"]["max_trials"] == 1 and replay["budget"]["max_epochs"] == 8
    assert replay["budget"]["target"] is None and replay["early_stopping"]["patience"] == 8
    again = StudySpec.model_validate(replay)
    assert again.population is None and again.space == {}
    assert again.trial_seed(0) == again.trial_seed(3) == 15


def test_trials_train_with_split_seed_plus_their_number_unless_training_seed_is_set() -> None:
    spec = StudySpec.model_validate({**PBT, "population": None, "budget": {"max_epochs": 9}})
    assert [spec.trial_seed(n) for n in range(3)] == [10, 11, 12]
    fixed = StudySpec.model_validate({**PBT, "population": None, "training_seed": 7})
    assert [fixed.trial_seed(n) for n in range(3)] == [7, 7, 7]


def test_a_schedule_of_a_knob_a_running_trial_cannot_change_is_refused() -> None:
    base = {"name": "x", "space": {}, "params": {"lr": 0.1}, "budget": {"max_epochs": 5}}
    with pytest.raises(ValueError, match="param_schedule.hidden_units"):
        StudySpec.model_validate(
            {**base, "param_schedule": {"hidden_units": [{"from_epoch": 2, "value": 64}]}}
        )
    with pytest.raises(ValueError, match="from_epoch must rise"):
        StudySpec.model_validate(
            {
                **base,
                "param_schedule": {
                    "lr": [{"from_epoch": 3, "value": 0.1}, {"from_epoch": 2, "value": 0.2}]
                },
            }
        )
    with pytest.raises(ValueError, match="lr must be in"):
        StudySpec.model_validate(
            {**base, "param_schedule": {"lr": [{"from_epoch": 3, "value": -1.0}]}}
        )


# A replay on a real service: the same curve, epoch by epoch.

REPLAYED_METRICS = ("train_loss", "val_loss", "val_accuracy", "lr")

TWO_MEMBERS: dict[str, Any] = {
    "name": "pbt-replayed",
    "space": {
        "lr": {"type": "float", "low": 1e-5, "high": 0.5, "log": True},
        "dropout": {"type": "float", "low": 0.05, "high": 0.3},
    },
    "params": {"optimizer": "sgd", "hidden_units": 32, "batch_size": 32, "input_noise": 0.05},
    # Member 0 learns nothing with its lr, member 1 learns: 0 copies 1, 1 never copies.
    "initial_trials": [{"lr": 1e-5, "dropout": 0.1}, {"lr": 0.05, "dropout": 0.2}],
    "early_stopping": {"patience": 100},
    "budget": {"max_epochs": 6},
    "population": {
        "size": 2,
        "interval_epochs": 2,
        "quantile": 0.5,
        "mutations": {"lr": {"perturb": [0.8, 1.2]}, "dropout": {"resample": True}},
    },
}


def lineage_curve(members: dict[int, dict[str, Any]], number: int, upto: int) -> list[Any]:
    """The epochs that trained member `number`'s model up to epoch `upto`: after its last
    copy its own; before it the donor's, up to the donor's epoch in the checkpoint copied
    (a donor that had copied at that epoch passes on its own donor's model)."""
    member = members[number]
    own = [{k: e[k] for k in REPLAYED_METRICS} for e in member["epochs"]]
    copies = [c for c in member["lineage"] if c["epoch"] <= upto]
    if not copies:
        return own[:upto]
    last = copies[-1]
    return [
        *lineage_curve(members, last["copied"], last["copied_epoch"]),
        *own[last["epoch"] : upto],
    ]


@pytest.fixture
def one_slot(ray_cluster: Any, sqlite_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A service whose tenant has one CPU: members take turns on one slot, so who copies
    whom does not depend on timing."""
    settings = Settings(
        database_url=sqlite_url,
        data_dir=tmp_path / "data",
        tenant_quotas="default:cpus=1",
        warm_slots=1,
    )
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


@pytest.mark.ray
@pytest.mark.slow
def test_a_replay_retrains_the_members_curve_epoch_by_epoch(
    one_slot: httpx.Client, sqlite_url: str
) -> None:
    client = one_slot
    study = wait_for_study(client, submit(client, TWO_MEMBERS), timeout_s=240)
    assert study["state"] == "completed" and study["counts"]["complete"] == 2, study
    members = {n: detail(client, study["id"], n) for n in (0, 1)}
    assert members[0]["lineage"] and not members[1]["lineage"], members
    engine = create_engine_for(sqlite_url)
    try:
        records = {r.number: r for r in Store(engine).trials_by_number(study["id"], [0, 1])}
    finally:
        engine.dispose()
    spec = StudySpec.model_validate(TWO_MEMBERS)
    best = client.get(f"/api/v1/studies/{study['id']}/best").json()["items"][0]["number"]
    served = client.get(f"/api/v1/studies/{study['id']}/best/spec").json()
    assert served == replay_spec(spec, records, best)
    # Each member's seed: a member's replay trains with its lineage root's, not trial 0's.
    replays = {n: submit(client, replay_spec(spec, records, n)) for n in members}
    for number, replay_id in replays.items():
        again = wait_for_study(client, replay_id, timeout_s=120)
        assert again["state"] == "completed", again
        trained = [
            {k: e[k] for k in REPLAYED_METRICS} for e in detail(client, replay_id, 0)["epochs"]
        ]
        expected = lineage_curve(members, number, members[number]["epochs_run"])
        assert trained == expected, (number, members[number]["lineage"])
