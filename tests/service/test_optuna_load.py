"""The bulk load of an Optuna study's trials gives the same in-memory study as Optuna's
own `get_all_trials` + `add_trials`, on each database."""

from __future__ import annotations

import math
from collections.abc import Iterator

import optuna
import pytest
from optuna.trial import TrialState

from service.run.optuna_load import add_all, read_trials
from storage import Store

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def rdb(database_url: str) -> Iterator[optuna.storages.RDBStorage]:
    storage = optuna.storages.RDBStorage(database_url)
    yield storage
    storage.engine.dispose()


def _fill(study: optuna.Study) -> None:
    """Trials in every state, with every kind of param, value and attribute."""
    for i in range(12):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("units", 8, 128, step=8)
        opt = trial.suggest_categorical("optimizer", ["sgd", "adam", None])
        if opt == "sgd":
            trial.suggest_float("momentum", 0.0, 0.9)
        trial.set_user_attr("note", {"i": i, "tags": ["a", "b"]})
        trial.storage.set_trial_system_attr(trial._trial_id, "hpo:attempt", i % 3)
        for step in range(1, 1 + i % 4):
            trial.report(float("nan") if step == 2 and i == 5 else lr * step, step)
        if i % 6 == 1:
            study.tell(trial, state=TrialState.PRUNED)
        elif i % 6 == 2:
            study.tell(trial, state=TrialState.FAIL)
        elif i == 11:
            pass  # left running: it resumes under its number
        else:
            study.tell(trial, math.inf if i == 3 else lr)


@pytest.mark.parametrize("directions", [["maximize"], ["maximize", "minimize"]])
def test_the_bulk_load_equals_optunas_own_load(
    store: Store, rdb: optuna.storages.RDBStorage, directions: list[str]
) -> None:
    storage = rdb
    source = optuna.create_study(storage=storage, study_name="s", directions=directions)
    if len(directions) == 1:
        _fill(source)
    else:
        for i in range(5):
            trial = source.ask()
            x = trial.suggest_float("x", 0, 1)
            source.tell(
                trial,
                [x, i] if i != 2 else None,
                state=TrialState.COMPLETE if i != 2 else TrialState.FAIL,
            )
    study_id = storage.get_study_id_from_name("s")

    expected = optuna.create_study(directions=directions, study_name="s")
    expected.add_trials(storage.get_all_trials(study_id))
    loaded = optuna.create_study(directions=directions, study_name="s")
    add_all(loaded, read_trials(store.run, study_id))

    assert len(loaded.trials) == len(expected.trials) > 0
    for got, want in zip(loaded.trials, expected.trials, strict=True):
        assert (got.number, got.state, got.params, got.distributions) == (
            want.number,
            want.state,
            want.params,
            want.distributions,
        )
        assert got.values == want.values
        assert got.user_attrs == want.user_attrs and got.system_attrs == want.system_attrs
        assert got.intermediate_values.keys() == want.intermediate_values.keys()
        for step, value in want.intermediate_values.items():
            assert got.intermediate_values[step] == value or (
                math.isnan(value) and math.isnan(got.intermediate_values[step])
            )
        assert (got.datetime_start, got.datetime_complete) == (
            want.datetime_start,
            want.datetime_complete,
        )
    if len(directions) == 1:
        assert loaded.best_trial.number == expected.best_trial.number
        # The same history gives the same next proposal.
        draws = []
        for study in (expected, loaded):
            study.sampler = optuna.samplers.TPESampler(seed=3, n_startup_trials=2)
            draws.append(study.ask().params)
        assert draws[0] == draws[1]
    else:
        assert [t.number for t in loaded.best_trials] == [t.number for t in expected.best_trials]


def test_the_bulk_load_refuses_a_study_that_has_trials_or_gaps(
    store: Store, rdb: optuna.storages.RDBStorage
) -> None:
    storage = rdb
    source = optuna.create_study(storage=storage, study_name="g")
    source.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    trials = read_trials(store.run, storage.get_study_id_from_name("g"))
    busy = optuna.create_study()
    busy.enqueue_trial({"x": 0.5})
    busy.ask()
    with pytest.raises(ValueError, match="empty study"):
        add_all(busy, trials)
    with pytest.raises(ValueError, match="0..n-1"):
        add_all(optuna.create_study(), trials[1:])


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_best_trial_is_the_first_of_equal_values_as_optuna_keeps_it(
    store: Store, rdb: optuna.storages.RDBStorage, direction: str
) -> None:
    source = optuna.create_study(storage=rdb, study_name="ties", direction=direction)
    for value in (0.5, 0.7, 0.2, 0.7, 0.2, -math.inf, math.inf):
        trial = source.ask()
        trial.suggest_float("x", 0, 1)
        if math.isinf(value) and (value > 0) == (direction == "maximize"):
            source.tell(trial, state=TrialState.PRUNED)  # an extreme that is not complete
        else:
            source.tell(trial, value)
    study_id = rdb.get_study_id_from_name("ties")
    expected = optuna.create_study(direction=direction)
    expected.add_trials(rdb.get_all_trials(study_id))
    loaded = optuna.create_study(direction=direction)
    add_all(loaded, read_trials(store.run, study_id))
    assert loaded.best_trial.number == expected.best_trial.number
    assert loaded.best_trial.number == (1 if direction == "maximize" else 2)
