"""Sampler traits: each spec declares them, and the checks read them, not sampler names."""

from __future__ import annotations

from typing import Literal, get_args

import pytest
from pydantic import TypeAdapter

from search.samplers import AnySamplerSpec, SamplerTraits, _SamplerSpec, check_sampler
from search.space import ParamSpec

SPACE = TypeAdapter(dict[str, ParamSpec]).validate_python(
    {
        "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    }
)


class NumericOnlySpec(_SamplerSpec):
    traits = SamplerTraits(numeric_only=True)
    type: Literal["numeric"] = "numeric"


class SingleObjectiveSpec(_SamplerSpec):
    traits = SamplerTraits(single_objective=True)
    type: Literal["single"] = "single"


@pytest.mark.parametrize("cls", get_args(AnySamplerSpec), ids=lambda c: c.__name__)
def test_every_sampler_spec_declares_its_own_traits(cls: type[_SamplerSpec]) -> None:
    assert isinstance(cls.__dict__["traits"], SamplerTraits)
    assert "traits" not in cls.model_fields
    assert "traits" not in cls.model_json_schema()["properties"]


def test_a_sampler_spec_without_traits_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="must declare traits"):

        class Forgetful(_SamplerSpec):
            type: Literal["forgetful"] = "forgetful"


def test_the_declared_traits_are_those_of_the_optuna_samplers() -> None:
    traits = {
        get_args(c.model_fields["type"].annotation)[0]: c.traits for c in get_args(AnySamplerSpec)
    }
    assert {k for k, t in traits.items() if t.numeric_only} == {"cmaes", "qmc"}
    assert {k for k, t in traits.items() if t.single_objective} == {"cmaes"}
    assert {k for k, t in traits.items() if t.slow} == {"gp"}


def test_a_numeric_only_sampler_warns_about_categoricals_by_its_trait() -> None:
    (warning,) = check_sampler(NumericOnlySpec(), SPACE, n_objectives=1)
    assert "sampler numeric searches float and int parameters only" in warning
    assert "['optimizer'] are drawn at random" in warning
    assert check_sampler(SingleObjectiveSpec(), SPACE, n_objectives=1) == []


def test_a_single_objective_sampler_refuses_several_by_its_trait() -> None:
    with pytest.raises(ValueError, match="sampler single supports one objective"):
        check_sampler(SingleObjectiveSpec(), SPACE, n_objectives=2)
    assert check_sampler(NumericOnlySpec(), {"lr": SPACE["lr"]}, n_objectives=2) == []


def test_only_a_finite_sampler_counts_its_points() -> None:
    grid = TypeAdapter(AnySamplerSpec).validate_python({"type": "grid", "grid": {"lr": [0.1, 0.2]}})
    assert grid.n_points({"lr": SPACE["lr"]}) == 2
    assert NumericOnlySpec().n_points(SPACE) is None
