"""Optuna's rows for the service's trials, written on the store's connection.

`RDBStorage` opens a session per call, re-reads the trial and commits; creating
a trial with its params, one intermediate value and the final state took four
such calls and was the largest part of the service's cost per trial. The
mirror writes the same rows with Optuna's own table definitions instead, inside
the writer's transaction beside the service's rows. Trial numbers are given
explicitly (RDBStorage counts a study's trials to number a new one); trials are
created in number order, so Optuna's trial ids follow the numbers as before.

Every write is safe to run again: the writer replays a failed batch one write at a
time, after its transaction rolled back. A trial's id is therefore kept only as a
cache, and read from the table by number when the cache does not have it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.storages._rdb import models
from optuna.trial import TrialState
from sqlalchemy import Connection, insert, select, update

_TRIALS = models.TrialModel.__table__
_PARAMS = models.TrialParamModel.__table__
_VALUES = models.TrialValueModel.__table__
_INTERMEDIATE = models.TrialIntermediateValueModel.__table__
_SYSTEM_ATTRS = models.TrialSystemAttributeModel.__table__


class OptunaMirror:
    """The rows of one Optuna study; call from the study's writer thread, in order."""

    def __init__(self, optuna_study_id: int):
        self._study_id = optuna_study_id
        self._trial_ids: dict[int, int] = {}

    def create(
        self, connection: Connection, number: int, params: dict[str, Any],
        distributions: dict[str, BaseDistribution], system_attrs: dict[str, Any],
    ) -> None:  # fmt: skip
        """A running trial with its params (Optuna's internal representation) and attrs."""
        row = {"number": number, "study_id": self._study_id, "state": TrialState.RUNNING,
               "datetime_start": _utc_now()}  # fmt: skip
        key = connection.execute(insert(_TRIALS).values(row)).inserted_primary_key
        assert key is not None
        trial_id = key[0]
        self._trial_ids[number] = trial_id
        if params:
            connection.execute(insert(_PARAMS), [
                {"trial_id": trial_id, "param_name": name,
                 "param_value": distributions[name].to_internal_repr(value),
                 "distribution_json": distribution_to_json(distributions[name])}
                for name, value in params.items()
            ])  # fmt: skip
        if system_attrs:
            connection.execute(insert(_SYSTEM_ATTRS), [
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                for key, value in system_attrs.items()
            ])  # fmt: skip

    def report(self, connection: Connection, number: int, step: int, value: float) -> None:
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
        row = {"trial_id": self._trial_id(connection, number), "step": step,
               "intermediate_value": stored, "intermediate_value_type": kind}  # fmt: skip
        connection.execute(insert(_INTERMEDIATE).values(row))

    def finish(
        self, connection: Connection, number: int, state: TrialState,
        values: Sequence[float] | None,
    ) -> None:  # fmt: skip
        trial_id = self._trial_id(connection, number)
        connection.execute(
            update(_TRIALS)
            .where(_TRIALS.c.trial_id == trial_id)
            .values(state=state, datetime_complete=_utc_now())
        )
        if values:
            connection.execute(insert(_VALUES), [
                dict(zip(("value", "value_type"),
                         models.TrialValueModel.value_to_stored_repr(v), strict=True),
                     trial_id=trial_id, objective=objective)
                for objective, v in enumerate(values)
            ])  # fmt: skip
        self._trial_ids.pop(number, None)  # a replay reads the id back from the table

    def _trial_id(self, connection: Connection, number: int) -> int:
        cached = self._trial_ids.get(number)
        if cached is not None:
            return cached
        found = connection.scalar(
            select(_TRIALS.c.trial_id).where(
                _TRIALS.c.study_id == self._study_id, _TRIALS.c.number == number
            )
        )
        if found is None:
            raise LookupError(f"Optuna study {self._study_id} has no trial number {number}")
        return int(found)


def _utc_now() -> datetime:
    """Optuna stores naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)
