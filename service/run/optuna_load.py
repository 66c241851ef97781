"""An Optuna study's trials, read in bulk and put into an in-memory study at once.

A restarted or resumed study rebuilds its in-memory Optuna copy (`optuna_bridge`)
from Optuna's tables. `RDBStorage.get_all_trials` loads them through the ORM, and
`Study.add_trials` deep-copies and validates each one: about a minute at 100,000
trials. Here six queries read every row of the study's trials, the FrozenTrials are
built once (a distribution is parsed once per distinct JSON, not per trial), and
they go into the InMemoryStorage the way its `create_new_trial` adds one, less the
deep copy: nothing else holds them. That relies on InMemoryStorage's internals, so
it is bounded as the mirror is: Optuna is pinned to TESTED_OPTUNA, and
tests/service/test_optuna_load.py checks the result against `add_trials`.
"""

from __future__ import annotations

import functools
import gc
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.storages._rdb import models
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search.direction import cost
from storage.foreign_rows import rows_of_children, rows_where

_TRIALS = models.TrialModel.__table__
# Each child table with the columns read, the trial's id first.
_CHILDREN = {
    "params": (
        models.TrialParamModel.__table__,
        ("trial_id", "param_name", "param_value", "distribution_json"),
    ),
    "values": (models.TrialValueModel.__table__, ("trial_id", "objective", "value", "value_type")),
    "intermediate": (
        models.TrialIntermediateValueModel.__table__,
        ("trial_id", "step", "intermediate_value", "intermediate_value_type"),
    ),
    "user_attrs": (models.TrialUserAttributeModel.__table__, ("trial_id", "key", "value_json")),
    "system_attrs": (models.TrialSystemAttributeModel.__table__, ("trial_id", "key", "value_json")),
}
_TRIAL_COLUMNS = ("trial_id", "number", "state", "datetime_start", "datetime_complete")
Rows = Sequence[tuple[Any, ...]]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a load builds millions of objects.

    Each allocation burst triggers collections that walk every object the process holds
    (a service with other studies in memory holds many): 1-1.8 s of a 4 s load at
    100,000 trials. What a load builds has no cycles, so nothing is left uncollected;
    the collector runs again at the end (if it ran before)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_trials(
    run: Callable[[Callable[[Any], Any]], Any], optuna_study_id: int
) -> list[FrozenTrial]:
    """The study's trials in number order; `run` calls a function with a connection
    (`Store.run`)."""

    def read(connection: Any) -> dict[str, Rows]:
        where = {"study_id": optuna_study_id}
        rows = {
            name: rows_of_children(connection, table, columns, _TRIALS, "trial_id", where)
            for name, (table, columns) in _CHILDREN.items()
        }
        rows["trials"] = rows_where(connection, _TRIALS, _TRIAL_COLUMNS, where, order_by="number")
        return rows

    with _collector_paused():
        return _build(run(read))


def _grouped(rows: Rows) -> dict[int, list[tuple[Any, ...]]]:
    grouped: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row)
    return grouped


def _build(rows: dict[str, Rows]) -> list[FrozenTrial]:
    params, values, steps, user, system = (_grouped(rows[name]) for name in _CHILDREN)
    distribution = functools.lru_cache(maxsize=None)(json_to_distribution)
    value_of = models.TrialValueModel.stored_repr_to_value
    step_value_of = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
    none: list[tuple[Any, ...]] = []
    trials = []
    for tid, number, state, started, completed in rows["trials"]:
        distributions: dict[str, BaseDistribution] = {}
        chosen = {}
        for _, name, internal, dist_json in params.get(tid, none):
            d = distributions[name] = distribution(dist_json)
            chosen[name] = d.to_external_repr(internal)
        objectives = values.get(tid, none)
        if len(objectives) > 1:
            objectives = sorted(objectives, key=lambda v: v[1])
        trials.append(
            FrozenTrial(
                number=number,
                trial_id=tid,
                state=state,
                value=None,
                values=[value_of(v, kind) for _, _, v, kind in objectives] or None,
                datetime_start=started,
                datetime_complete=completed,
                params=chosen,
                distributions=distributions,
                user_attrs={k: json.loads(v) for _, k, v in user.get(tid, none)},
                system_attrs={k: json.loads(v) for _, k, v in system.get(tid, none)},
                intermediate_values={
                    step: step_value_of(v, kind) for _, step, v, kind in steps.get(tid, none)
                },
            )
        )
    return trials


def add_all(study: optuna.Study, trials: list[FrozenTrial]) -> None:
    """Put freshly built `trials` (numbers 0..n-1, in order) into an empty in-memory
    study, as `create_new_trial` would each, without copying them; the best trial is
    chosen once at the end by `_update_cache`'s rule, not trial by trial."""
    storage = study._storage
    if not isinstance(storage, optuna.storages.InMemoryStorage):
        raise TypeError("add_all fills an InMemoryStorage study only")
    with storage._lock, _collector_paused():
        info = storage._studies[study._study_id]
        if info.trials:
            raise ValueError("add_all fills an empty study only")
        for trial in trials:
            if trial.number != len(info.trials):
                raise ValueError(
                    f"trial numbers must run 0..n-1; got {trial.number} at position "
                    f"{len(info.trials)}"
                )
            storage._max_trial_id += 1
            trial._trial_id = storage._max_trial_id
            storage._trial_id_to_study_id_and_number[trial._trial_id] = (
                study._study_id,
                trial.number,
            )
            info.trials.append(trial)
        best = _best(trials, storage.get_study_directions(study._study_id))
        info.best_trial_id = best._trial_id if best is not None else None


def _best(trials: list[FrozenTrial], directions: list[StudyDirection]) -> FrozenTrial | None:
    """InMemoryStorage._update_cache's choice over `trials` in order: the first complete
    trial, replaced (one objective only) by each strictly better one."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    if len(directions) > 1:
        return complete[0]
    direction = directions[0].name.lower()
    # min keeps the first of equal values, as the strict comparison does.
    return min(complete, key=lambda t: cost(t._values[0], direction))  # type: ignore[index]
