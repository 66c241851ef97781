"""A PBT study that resumes (a restarted service, a paused study) ranks its members as
before: the population is rebuilt from the store, finished members stay donors.

The service-level kill-and-resume of a member runs in tests/service/test_population.py;
here the store holds what a run left at the moment of a restart, written through its own
API on each database, and the rebuilt population is asked for decisions."""

from __future__ import annotations

from typing import Any

import pytest

from service.run.population import Population
from service.spec import StudySpec
from service.studies.study_service import population_members
from storage.repository import Store

SPEC = {
    "name": "pbt-restore",
    "space": {"lr": {"type": "float", "low": 1e-4, "high": 0.5, "log": True}},
    "params": {"optimizer": "sgd"},
    "budget": {"max_epochs": 12},
    "population": {
        "size": 4,
        "interval_epochs": 3,
        "quantile": 0.25,
        "mutations": {"lr": {"perturb": [0.5, 2.0]}},
    },
}


def member(
    store: Store, study_id: int, number: int, lr: float, curve: list[float | None], metric: str
) -> None:
    store.create_trial(study_id, number, {"lr": lr})
    for epoch, value in enumerate(curve, start=1):
        store.add_epoch(study_id, number, epoch=epoch, seconds=0.1, metrics={metric: value})


def copy(epoch: int, donor: int, lr: float, loaded: float | None) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "copied": donor,
        "copied_epoch": epoch,
        "copied_value": loaded,
        "loaded_value": loaded,
        "changed": {"lr": lr},
        "params": {"lr": lr},
    }


@pytest.fixture
def restarted(store: Store) -> tuple[StudySpec, int]:
    """The store as a killed service left a PBT study of four members."""
    spec = StudySpec.model_validate(SPEC)
    metric = spec.primary.metric
    study = store.create_study(name="pbt", spec=spec.model_dump(mode="json"), direction="maximize")
    sid = study.id
    # 0 finished: it copied at epoch 3 and trained on with lr 0.12; final value 0.95.
    member(
        store,
        sid,
        0,
        0.1,
        [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.9, 0.92, 0.93, 0.94, 0.95, 0.95],
        metric,
    )
    store.add_lineage(sid, 0, copy(3, 1, 0.12, 0.7))
    store.note_checkpoint(sid, 0, epoch=12, size=10)
    store.finish_trial(sid, 0, state="complete", value=0.95, best_epoch=11, stop_reason="completed")
    # 1 failed, with the best value ever seen: it is nobody's donor.
    member(store, sid, 1, 0.3, [0.99, 0.99, 0.99], metric)
    store.finish_trial(
        sid, 1, state="failed", value=None, best_epoch=None, stop_reason="failed", error="boom"
    )
    # 2 is waiting to resume from epoch 7; it ranked with its epoch-6 value (0.6).
    member(store, sid, 2, 0.05, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65], metric)
    store.note_checkpoint(sid, 2, epoch=7, size=10)
    # 3 copied 0 at its epoch 3: it ranked with the copy's value (0.7), not its own (0.3).
    member(store, sid, 3, 0.001, [0.1, 0.2, 0.3, 0.72], metric)
    store.add_lineage(sid, 3, copy(3, 0, 0.2, 0.7))
    store.note_checkpoint(sid, 3, epoch=4, size=10)
    return spec, sid


def rebuilt(store: Store, spec: StudySpec, sid: int) -> Population:
    population = Population(spec, seed=0)
    population.restore(population_members(store, sid, spec))
    return population


def test_a_finished_member_is_still_copied_with_its_latest_params(
    store: Store, restarted: tuple[StudySpec, int]
) -> None:
    spec, sid = restarted
    # 2 reaches its boundary at epoch 9 with 0.5: below 3's 0.7 and 0's 0.95.
    exploit = rebuilt(store, spec, sid).at_boundary(2, 0.5)
    assert exploit is not None and exploit.donor == 0
    assert exploit.params["lr"] in (pytest.approx(0.06), pytest.approx(0.24))  # 0.12 mutated
    # Without the rebuild, 2 would rank alone and copy nobody.
    assert Population(spec, seed=0).at_boundary(2, 0.5) is None


def test_resumed_members_rank_with_what_they_ranked_with_before(
    store: Store, restarted: tuple[StudySpec, int]
) -> None:
    spec, sid = restarted
    # 2 ranks with its epoch-6 value, 0.6: its boundary, not its checkpoint's epoch 7 (0.65).
    assert rebuilt(store, spec, sid).at_boundary(3, 0.62) is None  # 2 is the bottom one
    exploit = rebuilt(store, spec, sid).at_boundary(3, 0.55)
    assert exploit is not None and exploit.donor == 0
    # 3 ranks with the value it loaded at its copy (0.7), not its own epoch 3 (0.3) or 4
    # (0.72): 2 at 0.71 is above it, and 2 at 0.5 (the first test) below it.
    assert rebuilt(store, spec, sid).at_boundary(2, 0.71) is None


def test_a_member_whose_value_was_not_finite_ranks_last(store: Store) -> None:
    spec = StudySpec.model_validate(SPEC)
    metric = spec.primary.metric
    sid = store.create_study(name="pbt", spec=spec.model_dump(mode="json"), direction="maximize").id
    member(store, sid, 0, 0.1, [0.2, 0.3, None], metric)  # stored as null: it diverged
    member(store, sid, 1, 0.1, [0.1, 0.1, 0.1], metric)
    member(store, sid, 2, 0.1, [0.1, 0.1, 0.05], metric)
    for number in (0, 1, 2):
        store.note_checkpoint(sid, number, epoch=3, size=10)
    # 1 at 0.01 is above 0, which ranks last; left out, 0 would leave 1 the bottom one.
    assert rebuilt(store, spec, sid).at_boundary(1, 0.01) is None


def test_a_study_without_a_population_reads_no_members(store: Store) -> None:
    spec = StudySpec.model_validate({**SPEC, "population": None, "budget": {"max_epochs": 3}})
    sid = store.create_study(
        name="plain", spec=spec.model_dump(mode="json"), direction="maximize"
    ).id
    store.create_trial(sid, 0, {"lr": 0.1})
    assert population_members(store, sid, spec) == []
