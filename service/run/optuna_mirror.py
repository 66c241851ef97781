"""Optuna's rows for the service's trials, written on the store's connection.

`RDBStorage` opens a session per call, re-reads the trial and commits; creating
a trial with its params, one intermediate value and the final state took four
such calls and was the largest part of the service's cost per trial. The
mirror writes the same rows with Optuna's own table definitions instead, inside
the writer's transaction beside the service's rows. Trial numbers are given
explicitly (RDBStorage counts a study's trials to number a new one); trials are
created in number order, so Optuna's trial ids follow the numbers as before.

Writing another library's tables is a bet on its schema, so the bet is bounded:
Optuna is pinned to the minor versions the compatibility tests passed on
(TESTED_OPTUNA), and `check_compatible` refuses to start, naming what differs,
when the installed Optuna or the database's tables are not what the mirror writes.

Every write is safe to run again: the writer replays a failed batch one write at a
time, after its transaction rolled back. A trial's id is therefore kept only as a
cache, and read from the table by number when the cache does not have it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.storages._rdb import models
from optuna.trial import TrialState

from storage.foreign_rows import find_value, insert_row, insert_rows, update_rows

_TRIALS = models.TrialModel.__table__
_PARAMS = models.TrialParamModel.__table__
_VALUES = models.TrialValueModel.__table__
_INTERMEDIATE = models.TrialIntermediateValueModel.__table__
_SYSTEM_ATTRS = models.TrialSystemAttributeModel.__table__


TESTED_OPTUNA = ("5.0",)  # minor versions tests/api/test_optuna_compat.py passed on
# The columns the mirror writes, per Optuna table.
WRITTEN_COLUMNS: dict[str, set[str]] = {
    table.name: set(columns)
    for table, columns in (
        (
            _TRIALS,
            ("trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"),
        ),
        (_PARAMS, ("trial_id", "param_name", "param_value", "distribution_json")),
        (_VALUES, ("trial_id", "objective", "value", "value_type")),
        (_INTERMEDIATE, ("trial_id", "step", "intermediate_value", "intermediate_value_type")),
        (_SYSTEM_ATTRS, ("trial_id", "key", "value_json")),
    )
}


def check_compatible(version: str, columns_of: Callable[[str], set[str]]) -> None:
    """Raise RuntimeError, saying what differs, unless Optuna `version` is one the mirror
    was tested with and every table it writes has the columns it writes (`columns_of`
    gives a table's columns in the database)."""
    minor = ".".join(version.split(".")[:2])
    if minor not in TESTED_OPTUNA:
        raise RuntimeError(
            f"hpo-service writes Optuna's tables directly and was tested with Optuna "
            f"{', '.join(TESTED_OPTUNA)}.x; Optuna {version} is installed. Install a tested "
            "version, or run the compatibility tests with this one and add it to TESTED_OPTUNA."
        )
    for table, wanted in WRITTEN_COLUMNS.items():
        missing = sorted(wanted - columns_of(table))
        if missing:
            raise RuntimeError(
                f"Optuna's table {table!r} in the database lacks the columns {missing} that "
                "hpo-service writes; the database was made by another Optuna version"
            )


class OptunaMirror:
    """The rows of one Optuna study; call from the study's writer thread, in order."""

    def __init__(self, optuna_study_id: int):
        self._study_id = optuna_study_id
        self._trial_ids: dict[int, int] = {}

    def create(
        self,
        connection: Any,
        number: int,
        params: dict[str, Any],
        distributions: dict[str, BaseDistribution],
        system_attrs: dict[str, Any],
    ) -> None:
        """A running trial with its params (Optuna's internal representation) and attrs."""
        row = {
            "number": number,
            "study_id": self._study_id,
            "state": TrialState.RUNNING,
            "datetime_start": _utc_now(),
        }
        trial_id = int(insert_row(connection, _TRIALS, row))
        self._trial_ids[number] = trial_id
        insert_rows(
            connection,
            _PARAMS,
            [
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": distributions[name].to_internal_repr(value),
                    "distribution_json": distribution_to_json(distributions[name]),
                }
                for name, value in params.items()
            ],
        )
        insert_rows(
            connection,
            _SYSTEM_ATTRS,
            [
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                for key, value in system_attrs.items()
            ],
        )

    def report(self, connection: Any, number: int, step: int, value: float) -> None:
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
        row = {
            "trial_id": self._trial_id(connection, number),
            "step": step,
            "intermediate_value": stored,
            "intermediate_value_type": kind,
        }
        insert_row(connection, _INTERMEDIATE, row)

    def finish(
        self, connection: Any, number: int, state: TrialState, values: Sequence[float] | None
    ) -> None:
        trial_id = self._trial_id(connection, number)
        update_rows(
            connection,
            _TRIALS,
            {"trial_id": trial_id},
            {"state": state, "datetime_complete": _utc_now()},
        )
        insert_rows(
            connection,
            _VALUES,
            [
                dict(
                    zip(
                        ("value", "value_type"),
                        models.TrialValueModel.value_to_stored_repr(v),
                        strict=True,
                    ),
                    trial_id=trial_id,
                    objective=objective,
                )
                for objective, v in enumerate(values or ())
            ],
        )
        self._trial_ids.pop(number, None)  # a replay reads the id back from the table

    def _trial_id(self, connection: Any, number: int) -> int:
        cached = self._trial_ids.get(number)
        if cached is not None:
            return cached
        where = {"study_id": self._study_id, "number": number}
        found = find_value(connection, _TRIALS, "trial_id", where)
        if found is None:
            raise LookupError(f"Optuna study {self._study_id} has no trial number {number}")
        return int(found)


def _utc_now() -> datetime:
    """Optuna stores naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)
