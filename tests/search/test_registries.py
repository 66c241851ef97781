"""Sampler and pruner specs build the Optuna objects they name, with their options."""

from __future__ import annotations

import optuna
import pytest
from pydantic import TypeAdapter, ValidationError

from search.pruners import PRUNERS, PrunerSpec, build_pruner
from search.samplers import SAMPLERS, SamplerSpec, build_sampler


def test_samplers_are_built_with_their_options() -> None:
    tpe = build_sampler(
        TypeAdapter(SamplerSpec).validate_python({"type": "tpe", "seed": 1, "n_startup_trials": 3})
    )
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert tpe._n_startup_trials == 3
    assert isinstance(build_sampler(TypeAdapter(SamplerSpec).validate_python({"type": "random"})),
                      optuna.samplers.RandomSampler)  # fmt: skip
    assert set(SAMPLERS) == {"tpe", "random"}


def test_seeded_random_sampler_repeats_its_params() -> None:
    spec = TypeAdapter(SamplerSpec).validate_python({"type": "random", "seed": 7})

    def draws() -> list[float]:
        study = optuna.create_study(sampler=build_sampler(spec))
        return [study.ask().suggest_float("x", 0, 1) for _ in range(5)]

    assert draws() == draws()


def test_group_needs_multivariate() -> None:
    with pytest.raises(ValidationError, match="multivariate"):
        TypeAdapter(SamplerSpec).validate_python({"type": "tpe", "group": True})


def test_pruners_count_epochs_as_their_resource() -> None:
    asha = build_pruner(TypeAdapter(PrunerSpec).validate_python(
        {"type": "asha", "min_epochs": 2, "reduction_factor": 4}))  # fmt: skip
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
    assert asha._min_resource == 2 and asha._reduction_factor == 4
    median = build_pruner(TypeAdapter(PrunerSpec).validate_python(
        {"type": "median", "n_startup_trials": 1, "n_warmup_epochs": 3}))  # fmt: skip
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == 3
    assert set(PRUNERS) == {"none", "median", "asha"}


def test_median_pruner_prunes_a_worse_curve_after_warmup() -> None:
    spec = TypeAdapter(PrunerSpec).validate_python({"type": "median", "n_startup_trials": 1})
    study = optuna.create_study(direction="maximize", pruner=build_pruner(spec))
    good = study.ask()
    for epoch, value in enumerate([0.5, 0.7, 0.9], start=1):
        good.report(value, epoch)
    study.tell(good, 0.9)
    bad = study.ask()
    bad.report(0.1, 1)
    assert bad.should_prune()
