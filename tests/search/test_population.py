"""PBT's pure rules: who exploits whom, how values mutate, what a spec may mutate."""

from __future__ import annotations

import math
import random

import pytest

from search.population import (
    Mutation,
    PopulationSpec,
    clip,
    decide,
    mutate,
    mutation_errors,
    split_quantiles,
)
from search.space import CategoricalParam, FloatParam, IntParam

LR = FloatParam(type="float", low=1e-4, high=0.1, log=True)
SPACE = {"lr": LR, "weight_decay": FloatParam(type="float", low=0.0, high=0.01)}


def population(**mutations: Mutation) -> PopulationSpec:
    return PopulationSpec(
        size=4, quantile=0.25, mutations=mutations or {"lr": Mutation(perturb=[0.8, 1.2])}
    )


def test_the_bottom_and_top_quantiles_are_a_quarter_each_and_at_most_half() -> None:
    scores = {0: 0.9, 1: 0.1, 2: 0.5, 3: 0.7}
    assert split_quantiles(scores, 0.25, "maximize") == ([1], [0])
    assert split_quantiles(scores, 0.25, "minimize") == ([0], [1])
    assert split_quantiles({0: 0.3, 1: 0.2, 2: 0.1}, 0.5, "maximize") == ([2], [0])
    assert split_quantiles({0: 0.3}, 0.5, "maximize") == ([], [])  # alone: nobody to copy


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_tied_scores_split_in_member_order_in_either_direction(direction: str) -> None:
    assert split_quantiles({0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5}, 0.25, direction) == ([0], [3])


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_nan_score_ranks_lowest(direction: str) -> None:
    scores = {0: math.nan, 1: -5.0, 2: 5.0, 3: 0.0}
    bottom, _ = split_quantiles(scores, 0.25, direction)
    assert bottom == [0]


def test_only_a_bottom_member_exploits_and_takes_a_top_members_params_mutated() -> None:
    scores = {0: 0.9, 1: 0.1, 2: 0.5, 3: 0.7}
    params = {n: {"lr": 0.01 * (n + 1), "weight_decay": 0.001} for n in scores}
    rng = random.Random(0)
    for member in (0, 2, 3):
        assert decide(member, scores, params, population(), SPACE, "maximize", rng) is None
    exploit = decide(1, scores, params, population(), SPACE, "maximize", rng)
    assert exploit is not None and exploit.donor == 0
    assert exploit.params["weight_decay"] == 0.001  # not mutated: the donor's
    assert exploit.params["lr"] in (pytest.approx(0.008), pytest.approx(0.012))
    assert exploit.changed == {"lr": exploit.params["lr"]}


def test_mutations_stay_inside_the_space() -> None:
    rng = random.Random(1)
    wide = Mutation(perturb=[0.001, 1000.0])
    for _ in range(200):
        assert LR.low <= mutate(0.05, wide, LR, rng) <= LR.high
        assert LR.low <= mutate(0.05, Mutation(resample=True), LR, rng) <= LR.high
    steps = IntParam(type="int", low=2, high=20, step=3)
    assert clip(100, steps) == 20 and clip(6.9, steps) == 8 and clip(-1, steps) == 2
    choice = CategoricalParam(type="categorical", choices=[0.1, 0.2])
    assert mutate(0.1, Mutation(resample=True), choice, rng) in (0.1, 0.2)


def test_a_spec_may_mutate_only_searched_params_a_running_trial_can_change() -> None:
    fixed = {"lr_schedule": "constant"}
    ok = population(lr=Mutation(perturb=[0.8]), weight_decay=Mutation(resample=True))
    assert mutation_errors(ok, SPACE, fixed) == []
    space = {
        **SPACE,
        "hidden_units": IntParam(type="int", low=8, high=64),
        "dropout": FloatParam(type="float", low=0.0, high=0.5),
    }
    bad = population(
        hidden_units=Mutation(resample=True),
        momentum=Mutation(perturb=[0.9]),
        dropout=Mutation(perturb=[0.9]),
    )
    errors = dict(mutation_errors(bad, space, fixed))
    assert "cannot change while a trial runs" in errors["population.mutations.hidden_units"]
    assert "must be in space" in errors["population.mutations.momentum"]
    assert "start above 0" in errors["population.mutations.dropout"]
    scheduled = dict(mutation_errors(ok, SPACE, {"lr_schedule": "cosine"}))
    assert "constant" in scheduled["population.mutations.lr"]
    with pytest.raises(ValueError, match="perturb factors, resample"):
        Mutation()
