"""The service reads a sampler's traits from its spec: a sampler new to it, declared
with a trait, is treated as the trait says without naming it anywhere else."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Literal, cast

from search.samplers import SamplerTraits, Space, _SamplerSpec
from service.run.draws import Drawer
from service.run.driver import trial_budget
from service.run.optuna_bridge import OptunaBridge
from service.spec import StudySpec


class SlowSpec(_SamplerSpec):
    traits = SamplerTraits(slow=True)
    type: Literal["slow"] = "slow"


class QuickSpec(_SamplerSpec):
    traits = SamplerTraits()
    type: Literal["quick"] = "quick"


class SevenPointsSpec(_SamplerSpec):
    traits = SamplerTraits()
    type: Literal["seven"] = "seven"

    def n_points(self, space: Space) -> int:
        return 7


class ThreadRecordingBridge:
    """Stands in for OptunaBridge: each ask notes the thread it ran in."""

    def __init__(self, spec: StudySpec):
        self.spec = spec
        self.threads: list[str] = []

    def ask(self, fixed: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any], Any]:
        self.threads.append(threading.current_thread().name)
        return None, {}, None


def with_sampler(
    make_spec: Callable[..., dict[str, Any]], sampler: _SamplerSpec, **overrides: Any
) -> StudySpec:
    return StudySpec.model_validate(make_spec(**overrides)).model_copy(update={"sampler": sampler})


def threads_of_three_draws(spec: StudySpec) -> list[str]:
    bridge = ThreadRecordingBridge(spec)
    drawer = Drawer(cast(OptunaBridge, bridge))

    async def draw() -> None:
        for _ in range(3):
            await drawer.ask()

    asyncio.run(draw())
    return bridge.threads


def test_a_slow_sampler_draws_every_trial_off_the_event_loop(
    make_spec: Callable[..., dict[str, Any]],
) -> None:
    threads = threads_of_three_draws(with_sampler(make_spec, SlowSpec()))
    assert all(name.startswith("hpo-draw") for name in threads), threads


def test_a_quick_sampler_draws_on_the_loop_after_its_first_draw(
    make_spec: Callable[..., dict[str, Any]],
) -> None:
    threads = threads_of_three_draws(with_sampler(make_spec, QuickSpec()))
    assert threads[0].startswith("hpo-draw")
    assert threads[1:] == [threading.current_thread().name] * 2


def test_a_finite_sampler_ends_the_study_when_its_points_are_spent(
    make_spec: Callable[..., dict[str, Any]],
) -> None:
    budget = {"max_trials": 10}
    assert trial_budget(with_sampler(make_spec, SevenPointsSpec(), budget=budget)) == (
        7,
        "grid_exhausted",
    )
    assert trial_budget(with_sampler(make_spec, QuickSpec(), budget=budget)) == (10, "max_trials")
