"""Each sampler and pruner on a short real study: digits trained by the worker's own trainer
(in-process slots), driven by the real driver, recorded in SQLite and Optuna's RDBStorage.

Every test checks a property that would fail if its option were ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from search.pruners import build_pruner
from service.data.datasets import DataRoots
from service.run.local_runner import InProcessRunner
from service.spec import StudySpec
from service.studies.study_service import StudyService, StudyView
from storage.engine import create_engine_for, tune_engine
from storage.migrate import upgrade_schema
from storage.records import TrialRecord
from storage.repository import Store

FLOAT_SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


class Lab:
    """A study service on its own SQLite file, with in-process slots."""

    def __init__(self, tmp_path: Path):
        url = f"sqlite:///{tmp_path / 'hpo.db'}"
        upgrade_schema(url)
        self.engine = create_engine_for(url)
        self.store = Store(self.engine)
        self.optuna_storage = optuna.storages.RDBStorage(url)
        tune_engine(self.optuna_storage.engine)
        roots = DataRoots((tmp_path,))

        async def runners(study_id: int, spec: StudySpec) -> InProcessRunner:
            return await InProcessRunner.for_study(study_id, spec, roots)

        self.service = StudyService(self.store, self.optuna_storage, runners, data_roots=roots)

    def run(self, spec: dict[str, Any]) -> StudyView:
        async def main() -> int:
            view = await self.service.submit(StudySpec.model_validate(spec))
            await self.service.wait(view.record.id)
            return view.record.id

        return self.service.get(asyncio.run(main()))

    def resume(self, study_id: int, **budget: Any) -> StudyView:
        async def main() -> None:
            await self.service.resume(study_id, budget=budget)
            await self.service.wait(study_id)

        asyncio.run(main())
        return self.service.get(study_id)

    def trials(self, study_id: int) -> list[TrialRecord]:
        page = self.service.list_trials(
            study_id, state=None, order="number", limit=10_000, cursor=None
        )
        return [self.service.trial(study_id, t.number) for t in page.items]

    def close(self) -> None:
        self.engine.dispose()
        self.optuna_storage.engine.dispose()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lab = Lab(tmp_path)
    yield lab
    lab.close()


@pytest.fixture
def spec(make_spec: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Tiny real studies: digits, 16 hidden units, one slot (so seeded runs repeat)."""

    def make(**overrides: Any) -> dict[str, Any]:
        base = make_spec(
            params={"hidden_units": 16, "optimizer": "sgd"},
            early_stopping={"patience": 100},
            budget={"max_trials": 6, "max_epochs": 2, "parallelism": 1},
        )
        for key, value in overrides.items():
            base[key] = {**base[key], **value} if key in ("budget",) else value
        return base

    return make


def curve(trial: TrialRecord) -> list[float]:
    return [e.metrics["val_accuracy"] for e in trial.epochs]  # type: ignore[misc]


def param_rows(trials: list[TrialRecord]) -> list[tuple[Any, ...]]:
    return [tuple(sorted(t.params.items())) for t in trials]


# Samplers


def test_grid_visits_exactly_the_grid_then_ends(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    space = {
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        "hidden_units": {"type": "int", "low": 8, "high": 24, "step": 8},
        "lr": {"type": "float", "low": 0.01, "high": 0.02, "step": 0.01},
    }
    view = lab.run(
        spec(
            space=space,
            params={},
            sampler={"type": "grid"},
            budget={"max_trials": 50, "parallelism": 2},
        )
    )
    rows = param_rows(lab.trials(view.record.id))
    grid = {
        (("hidden_units", h), ("lr", lr), ("optimizer", o))
        for o in ("sgd", "adam")
        for h in (8, 16, 24)
        for lr in (0.01, 0.02)
    }
    assert len(rows) == 12 and set(rows) == grid
    assert (view.record.state, view.record.state_reason) == ("completed", "grid_exhausted")


@pytest.mark.parametrize("kind", ["random", "tpe", "cmaes", "gp", "qmc", "nsga2"])
def test_a_seeded_sampler_repeats_its_params(
    lab: Lab, spec: Callable[..., dict[str, Any]], kind: str
) -> None:
    options = {
        "tpe": {"n_startup_trials": 2},
        "cmaes": {"n_startup_trials": 2},
        "gp": {"n_startup_trials": 2},
        "nsga2": {"population_size": 2},
    }.get(kind, {})
    study = spec(space=FLOAT_SPACE, sampler={"type": kind, "seed": 7, **options})
    runs = [lab.trials(lab.run(study).record.id) for _ in range(2)]
    first, second = (param_rows(trials) for trials in runs)
    assert first == second and len(set(first)) >= 4
    # With one slot the whole study repeats, the trained values too (README: Reproducibility).
    assert [t.value for t in runs[0]] == [t.value for t in runs[1]]
    if kind != "random":
        baseline = param_rows(
            lab.trials(
                lab.run(spec(space=FLOAT_SPACE, sampler={"type": "random", "seed": 7})).record.id
            )
        )
        assert first != baseline, f"{kind} drew what a random sampler draws"


def test_tpe_leaves_random_search_after_its_startup_trials(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    tpe = param_rows(
        lab.trials(
            lab.run(
                spec(space=FLOAT_SPACE, sampler={"type": "tpe", "seed": 3, "n_startup_trials": 3})
            ).record.id
        )
    )
    rnd = param_rows(
        lab.trials(
            lab.run(spec(space=FLOAT_SPACE, sampler={"type": "random", "seed": 3})).record.id
        )
    )
    assert tpe[:3] == rnd[:3] and tpe[3:] != rnd[3:]


def test_cmaes_with_a_categorical_falls_back_and_says_so(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    space = {**FLOAT_SPACE, "batch_size": {"type": "categorical", "choices": [32, 64]}}
    view = lab.run(spec(space=space, sampler={"type": "cmaes", "seed": 0}))
    assert view.record.state == "completed"
    assert view.record.warnings == [
        "sampler cmaes searches float and int parameters only; ['batch_size'] are drawn at random "
        "(Optuna's independent sampler)"
    ]


def test_conditional_params_never_appear_when_false_over_50_tpe_trials(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    space = {
        "optimizer": {"type": "categorical", "choices": ["sgd", "momentum", "nesterov", "adam"]},
        "momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.95,
            "when": {"optimizer": ["momentum", "nesterov"]},
        },
        "beta1": {"type": "float", "low": 0.8, "high": 0.95, "when": {"optimizer": ["adam"]}},
        "lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
    }
    view = lab.run(
        spec(
            space=space,
            params={"hidden_units": 8},
            sampler={
                "type": "tpe",
                "seed": 0,
                "n_startup_trials": 10,
                "multivariate": True,
                "group": True,
            },
            budget={"max_trials": 50, "max_epochs": 1, "parallelism": 2},
        )
    )
    trials = lab.trials(view.record.id)
    assert len(trials) == 50
    for trial in trials:
        optimizer = trial.params["optimizer"]
        assert ("momentum" in trial.params) == (optimizer in ("momentum", "nesterov")), trial.params
        assert ("beta1" in trial.params) == (optimizer == "adam"), trial.params
    assert {t.params["optimizer"] for t in trials} == {"sgd", "momentum", "nesterov", "adam"}


# Pruners


def wide_lr_study(
    spec: Callable[..., dict[str, Any]], pruner: dict[str, Any], **budget: Any
) -> dict[str, Any]:
    space = {"lr": {"type": "float", "low": 1e-5, "high": 0.3, "log": True}}
    return spec(
        space=space,
        sampler={"type": "random", "seed": 0},
        pruner=pruner,
        budget={"max_trials": 16, "max_epochs": 8, **budget},
    )


def test_asha_prunes_only_at_its_rungs(lab: Lab, spec: Callable[..., dict[str, Any]]) -> None:
    view = lab.run(wide_lr_study(spec, {"type": "asha", "min_epochs": 1, "reduction_factor": 2}))
    pruned = [t for t in lab.trials(view.record.id) if t.stop_reason == "pruned"]
    assert pruned and {t.epochs_run for t in pruned} <= {1, 2, 4, 8}  # rungs: 1 * 2**k


def test_median_prunes_nothing_before_its_warmup_or_startup(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    view = lab.run(
        wide_lr_study(spec, {"type": "median", "n_startup_trials": 3, "n_warmup_epochs": 3})
    )
    trials = lab.trials(view.record.id)
    pruned = [t for t in trials if t.stop_reason == "pruned"]
    assert pruned and all(t.epochs_run > 3 for t in pruned)
    assert all(t.stop_reason != "pruned" for t in trials[:3])


def test_keeping_a_smaller_percentile_prunes_more(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    def n_pruned(percentile: float) -> int:
        view = lab.run(
            wide_lr_study(
                spec, {"type": "percentile", "percentile": percentile, "n_startup_trials": 2}
            )
        )
        return view.counts["pruned"]

    assert n_pruned(10.0) > n_pruned(90.0)  # percentile = the best share that is kept


def test_hyperband_spreads_trials_over_brackets(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    study = wide_lr_study(
        spec,
        {"type": "hyperband", "min_epochs": 1, "reduction_factor": 3},
        max_epochs=9,
        max_trials=20,
    )
    view = lab.run(study)
    trials = lab.trials(view.record.id)
    optuna_study = optuna.load_study(
        study_name=view.record.optuna_study_name, storage=lab.optuna_storage
    )
    pruner = build_pruner(StudySpec.model_validate(study).pruner, max_epochs=9)
    pruner._try_initialization(optuna_study)
    brackets = {
        t.number: pruner._get_bracket_id(optuna_study, optuna_study.trials[t.number])
        for t in trials
    }
    assert pruner._n_brackets == 3 and len(set(brackets.values())) >= 2
    # Only bracket 0 has a rung at epoch 1; the others start at 3 and 9 epochs.
    assert all(
        brackets[t.number] == 0 for t in trials if t.stop_reason == "pruned" and t.epochs_run == 1
    )
    assert view.counts["pruned"] > 0


def test_patient_prunes_only_after_patience_epochs_without_gain(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    study = wide_lr_study(spec, {"type": "patient", "patience": 1, "min_delta": 0.0})
    study["space"] = {"lr": {"type": "float", "low": 0.05, "high": 3.0, "log": True}}
    view = lab.run(study)
    trials = lab.trials(view.record.id)
    pruned = [t for t in trials if t.stop_reason == "pruned"]
    assert pruned
    for trial in pruned:  # the best of the last 2 epochs is below the best before them
        values = curve(trial)
        assert len(values) >= 3 and max(values[-2:]) < max(values[:-2]), values
    for trial in trials:  # and no trial ran on past such a drop
        values = curve(trial)
        drops = [e for e in range(3, len(values)) if max(values[e - 2 : e]) < max(values[: e - 2])]
        assert not drops, (trial.stop_reason, values)


def test_threshold_prunes_what_falls_below_it(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    view = lab.run(wide_lr_study(spec, {"type": "threshold", "lower": 0.8, "n_warmup_epochs": 1}))
    trials = lab.trials(view.record.id)
    pruned = [t for t in trials if t.stop_reason == "pruned"]
    assert pruned and all(curve(t)[-1] < 0.8 and t.epochs_run >= 2 for t in pruned)
    assert all(min(curve(t)[1:]) >= 0.8 for t in trials if t.state == "complete")


# Budgets and warm starts


def test_target_ends_the_study_with_target_reached(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    view = lab.run(
        spec(
            space=FLOAT_SPACE,
            params={"hidden_units": 32, "optimizer": "adam", "lr": 0.01} | {},
            budget={"max_trials": 30, "max_epochs": 5, "target": 0.9},
        )
        | {"space": {"dropout": FLOAT_SPACE["dropout"]}}
    )
    assert (view.record.state, view.record.state_reason) == ("completed", "target_reached")
    assert view.best is not None and view.best.value >= 0.9
    assert sum(view.counts.values()) < 30


def test_initial_trials_run_first_in_order(lab: Lab, spec: Callable[..., dict[str, Any]]) -> None:
    configs = [{"lr": 0.05, "dropout": 0.1}, {"lr": 0.001, "dropout": 0.0}]
    view = lab.run(
        spec(space=FLOAT_SPACE, initial_trials=configs, sampler={"type": "tpe", "seed": 0})
    )
    trials = lab.trials(view.record.id)
    assert [t.params for t in trials[:2]] == configs and len(trials) == 6


def test_a_resumed_study_ends_at_the_new_count_and_its_sampler_remembers(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    study = spec(
        space=FLOAT_SPACE,
        sampler={"type": "tpe", "seed": 0, "n_startup_trials": 4},
        budget={"max_trials": 4},
    )
    first = lab.run(study)
    resumed = lab.resume(first.record.id, max_trials=9)
    trials = lab.trials(first.record.id)
    assert (resumed.record.state, resumed.record.state_reason) == ("completed", "max_trials")
    assert [t.number for t in trials] == list(range(9))
    assert resumed.record.spec["budget"]["max_trials"] == 9
    # A sampler that forgot the first four would repeat its seeded startup draws.
    rows = param_rows(trials)
    assert rows[4:8] != rows[:4] and len(set(rows)) == 9
    optuna_trials = optuna.load_study(
        study_name=first.record.optuna_study_name, storage=lab.optuna_storage
    ).trials
    assert [t.number for t in optuna_trials] == list(range(9))


def test_a_resumed_grid_study_finishes_the_grid_without_repeats(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    space = {"hidden_units": {"type": "int", "low": 8, "high": 48, "step": 8}}
    first = lab.run(
        spec(space=space, params={}, sampler={"type": "grid", "seed": 0}, budget={"max_trials": 3})
    )
    resumed = lab.resume(first.record.id, max_trials=10)
    units = [t.params["hidden_units"] for t in lab.trials(first.record.id)]
    assert sorted(units) == [8, 16, 24, 32, 40, 48]
    assert resumed.record.state_reason == "grid_exhausted"


def test_resume_needs_a_finished_study_and_a_bigger_budget(
    lab: Lab, spec: Callable[..., dict[str, Any]]
) -> None:
    from service.errors import InvalidRequest

    view = lab.run(spec(space=FLOAT_SPACE, budget={"max_trials": 2}))
    with pytest.raises(InvalidRequest, match="must exceed the 2 trials"):
        lab.resume(view.record.id, max_trials=2)
