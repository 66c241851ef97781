"""Parameter specs: validation, draw order, and conditional drawing through Optuna."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from pydantic import TypeAdapter, ValidationError

from search.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    ParamSpec,
    contains,
    draw_order,
    suggest,
)

SPACE = TypeAdapter(dict[str, ParamSpec])


def space_of(raw: dict[str, Any]) -> dict[str, Any]:
    return SPACE.validate_python(raw)


def test_float_int_and_categorical_validate() -> None:
    space = space_of(
        {
            "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "units": {"type": "int", "low": 16, "high": 256, "step": 16},
            "flag": {"type": "categorical", "choices": [True, False]},
        }
    )
    assert isinstance(space["lr"], FloatParam) and space["lr"].log
    assert isinstance(space["units"], IntParam) and space["units"].step == 16
    assert isinstance(space["flag"], CategoricalParam)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"type": "float", "low": 2, "high": 1}, "high", "high must be >= low"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "low", "log scale needs low > 0"),
        ({"type": "int", "low": 1, "high": 8, "log": True, "step": 2}, None, "step and log"),
        ({"type": "categorical", "choices": []}, "choices", "at least 1"),
        ({"type": "categorical", "choices": [1, 1]}, None, "distinct"),
        ({"type": "float", "low": 0, "high": 1, "when": {"a": []}}, None, "at least one value"),
    ],
)
def test_bad_params_are_refused_with_the_field(
    raw: dict[str, Any], field: str | None, words: str
) -> None:
    with pytest.raises(ValidationError) as info:
        space_of({"p": raw})
    error = info.value.errors()[0]
    assert words in error["msg"]
    if field is not None:
        assert error["loc"][-1] == field


def test_draw_order_puts_parents_first_and_refuses_cycles_and_strangers() -> None:
    space = space_of(
        {
            "momentum": {
                "type": "float",
                "low": 0.5,
                "high": 0.9,
                "when": {"optimizer": ["momentum"]},
            },
            "optimizer": {"type": "categorical", "choices": ["sgd", "momentum"]},
        }
    )
    assert draw_order(space, {}) == ["optimizer", "momentum"]
    with pytest.raises(ValueError, match="neither searched nor fixed"):
        draw_order({"momentum": space["momentum"]}, {})
    assert draw_order({"momentum": space["momentum"]}, {"optimizer": "sgd"}) == ["momentum"]
    cyclic = space_of(
        {
            "a": {"type": "categorical", "choices": [1, 2], "when": {"b": [1]}},
            "b": {"type": "categorical", "choices": [1, 2], "when": {"a": [1]}},
        }
    )
    with pytest.raises(ValueError, match="cycle"):
        draw_order(cyclic, {})
    never = space_of(
        {
            "optimizer": {"type": "categorical", "choices": ["sgd"]},
            "momentum": {"type": "float", "low": 0.5, "high": 0.9, "when": {"optimizer": ["adam"]}},
        }
    )
    with pytest.raises(ValueError, match="not among"):
        draw_order(never, {})


def test_conditional_params_appear_only_when_their_condition_holds() -> None:
    space = space_of(
        {
            "optimizer": {
                "type": "categorical",
                "choices": ["sgd", "momentum", "nesterov", "adam"],
            },
            "momentum": {
                "type": "float",
                "low": 0.5,
                "high": 0.99,
                "when": {"optimizer": ["momentum", "nesterov"]},
            },
            "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    seen = set()
    for _ in range(50):
        trial = study.ask()
        params = suggest(trial, space, {})
        study.tell(trial, params["lr"])
        seen.add(params["optimizer"])
        has_momentum = params["optimizer"] in ("momentum", "nesterov")
        assert ("momentum" in params) == has_momentum, params
        assert all(contains(space[k], v) for k, v in params.items())
    assert {"sgd", "momentum"} <= seen


def test_a_fixed_parent_decides_its_children() -> None:
    space = space_of(
        {
            "momentum": {
                "type": "float",
                "low": 0.5,
                "high": 0.9,
                "when": {"optimizer": ["momentum"]},
            }
        }
    )
    study = optuna.create_study()
    assert "momentum" in suggest(study.ask(), space, {"optimizer": "momentum"})
    assert suggest(study.ask(), space, {"optimizer": "sgd"}) == {}


def test_contains_respects_bounds_steps_and_types() -> None:
    units = IntParam(type="int", low=16, high=64, step=16)
    assert contains(units, 32) and not contains(units, 40) and not contains(units, 80)
    flag = CategoricalParam(type="categorical", choices=[1, "a"])
    assert contains(flag, 1) and contains(flag, "a") and not contains(flag, True)
