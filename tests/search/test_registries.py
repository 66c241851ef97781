"""Sampler and pruner specs: what they build, what they refuse, what they warn about."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from pydantic import TypeAdapter, ValidationError

from search.pruners import PRUNERS, PrunerSpec, build_pruner
from search.samplers import SAMPLERS, SamplerSpec, build_sampler, check_sampler, grid_of, grid_size
from search.space import ParamSpec

SPACE = TypeAdapter(dict[str, ParamSpec]).validate_python(
    {
        "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "units": {"type": "int", "low": 16, "high": 64, "step": 16},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    }
)


def sampler(raw: dict[str, Any]) -> Any:
    return TypeAdapter(SamplerSpec).validate_python(raw)


def pruner(raw: dict[str, Any]) -> Any:
    return TypeAdapter(PrunerSpec).validate_python(raw)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("gp", optuna.samplers.GPSampler),
        ("qmc", optuna.samplers.QMCSampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
    ],
)
def test_every_sampler_type_builds_its_optuna_sampler(kind: str, cls: type) -> None:
    assert isinstance(build_sampler(sampler({"type": kind, "seed": 1}), SPACE), cls)


def test_the_registry_names_every_sampler() -> None:
    assert set(SAMPLERS) == {"tpe", "random", "cmaes", "gp", "qmc", "grid", "nsga2"}


def test_a_grid_is_derived_from_choices_and_steps_or_given() -> None:
    steps = {k: v for k, v in SPACE.items() if k != "lr"}
    assert grid_of(sampler({"type": "grid"}), steps) == {
        "units": [16, 32, 48, 64],
        "optimizer": ["sgd", "adam"],
    }
    assert grid_size(sampler({"type": "grid"}), steps) == 8
    given = sampler(
        {"type": "grid", "grid": {"lr": [0.01, 0.1], "units": [16], "optimizer": ["sgd"]}}
    )
    assert grid_size(given, SPACE) == 2
    assert isinstance(build_sampler(given, SPACE), optuna.samplers.GridSampler)


@pytest.mark.parametrize(
    ("raw", "space", "objectives", "words"),
    [
        ({"type": "grid"}, SPACE, 1, "grid needs a step"),
        ({"type": "grid", "grid": {"lr": [0.1]}}, SPACE, 1, "no values for searched parameters"),
        (
            {"type": "grid", "grid": {"lr": [0.1], "units": [16], "optimizer": ["sgd"], "x": [1]}},
            SPACE,
            1,
            "not in the space",
        ),
        ({"type": "cmaes"}, SPACE, 2, "supports one objective"),
    ],
)
def test_what_a_sampler_cannot_do_is_refused(
    raw: dict[str, Any], space: Any, objectives: int, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        check_sampler(sampler(raw), space, n_objectives=objectives)


@pytest.mark.parametrize("kind", ["cmaes", "qmc"])
def test_numeric_only_samplers_warn_about_categoricals(kind: str) -> None:
    (warning,) = check_sampler(sampler({"type": kind}), SPACE, n_objectives=1)
    assert "['optimizer'] are drawn at random" in warning
    numeric = {k: v for k, v in SPACE.items() if k != "optimizer"}
    assert check_sampler(sampler({"type": kind}), numeric, n_objectives=1) == []


def test_group_needs_multivariate() -> None:
    with pytest.raises(ValidationError, match="multivariate"):
        sampler({"type": "tpe", "group": True})


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        ({"type": "none"}, optuna.pruners.NopPruner),
        ({"type": "median"}, optuna.pruners.MedianPruner),
        ({"type": "percentile", "percentile": 25}, optuna.pruners.PercentilePruner),
        ({"type": "asha"}, optuna.pruners.SuccessiveHalvingPruner),
        ({"type": "hyperband"}, optuna.pruners.HyperbandPruner),
        ({"type": "threshold", "lower": 0.5}, optuna.pruners.ThresholdPruner),
        (
            {"type": "patient", "patience": 2, "wrapped": {"type": "median"}},
            optuna.pruners.PatientPruner,
        ),
    ],
)
def test_every_pruner_type_builds_its_optuna_pruner(raw: dict[str, Any], cls: type) -> None:
    assert isinstance(build_pruner(pruner(raw), max_epochs=27), cls)
    assert raw["type"] in PRUNERS


def test_hyperband_spans_the_study_epochs_unless_told() -> None:
    built = build_pruner(
        pruner({"type": "hyperband", "min_epochs": 1, "reduction_factor": 3}), max_epochs=27
    )
    assert built._max_resource == 27
    told = build_pruner(pruner({"type": "hyperband", "max_epochs": 9}), max_epochs=27)
    assert told._max_resource == 9


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"type": "threshold"}, "lower, upper or both"),
        ({"type": "threshold", "lower": 2, "upper": 1}, "lower must be <= upper"),
        ({"type": "percentile", "percentile": 120}, "less than or equal to 100"),
        (
            {"type": "patient", "patience": 1, "wrapped": {"type": "nope"}},
            "does not match any of the expected tags",
        ),
    ],
)
def test_bad_pruner_options_are_refused(raw: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        pruner(raw)
