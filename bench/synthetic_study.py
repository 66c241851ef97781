"""A finished study of any size, written straight into the store (and Optuna's tables).

Tests and benchmarks need studies of 100,000 trials; running them would take days, and
adding them one by one through Optuna's storage ~15 minutes. This writes the same rows in
bulk: the service's `hpo_trials` and `hpo_epochs`, and Optuna's `trials`, `trial_params`
and `trial_values`, so Optuna, optuna-dashboard and the service all see the same study.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.storages._rdb import models as optuna_models
from sqlalchemy import Engine, insert, text, update

from search.space import to_distribution
from service.spec import StudySpec
from storage import value_blocks
from storage.models import EpochRow, StudyRow, TrialRow
from storage.repository import Store
from storage.session import session_scope

SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "optimizer": {"type": "categorical", "choices": ["sgd", "momentum", "adam"]},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
}
SPEC: dict[str, Any] = {
    "name": "synthetic",
    "dataset": {"source": "builtin", "name": "digits"},
    "space": SPACE,
    "budget": {"max_trials": 100_000, "max_epochs": 10},
}
CHUNK = 5_000


def write_study(
    engine: Engine,
    database_url: str,
    n_trials: int,
    *,
    seed: int = 0,
    curves: int = 50,
    read_curves: int = 0,
    name: str = "synthetic",
    tenant: str = "default",
    with_optuna: bool = True,
) -> int:
    """A `completed` study of `n_trials` (90% complete, 10% pruned), returning its id.

    Trials numbered below `curves` get per-epoch curves, and so do the `read_curves` best
    complete trials and the `read_curves` most recent pruned ones, which a dashboard's
    curves call (`top`, `pruned`) reads; the rest have none, as a dashboard never shows
    more than a few dozen curves at once (curves for all 100,000 would be a million rows
    that no call reads). Without `with_optuna` only the service's tables are written (half
    the time; enough for reads). Stop reasons are the documented ones.
    """
    spec = StudySpec.model_validate({**SPEC, "name": name})
    store = Store(engine)
    record = store.create_study(
        name=name, spec=spec.model_dump(mode="json"), direction="maximize", tenant=tenant
    )
    optuna_study_id = (
        _create_optuna_study(database_url, record.optuna_study_name) if with_optuna else None
    )
    distributions = {k: distribution_to_json(to_distribution(p)) for k, p in spec.space.items()}
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    every = [_trial(rng, n, start, spec) for n in range(n_trials)]
    with_curves = _with_curves(every, curves, read_curves)
    for first in range(0, n_trials, CHUNK):
        trials = every[first : first + CHUNK]
        with engine.begin() as connection:
            connection.execute(insert(TrialRow), [_hpo_row(record.id, t) for t in trials])
            if epochs := _epochs(record.id, trials, with_curves):
                connection.execute(insert(EpochRow), epochs)
        if optuna_study_id is not None:
            _write_optuna(database_url, optuna_study_id, trials, distributions)
    with session_scope(engine) as session:
        value_blocks.rebuild(session, record.id)
    with engine.begin() as connection:
        connection.execute(
            update(StudyRow)
            .where(StudyRow.id == record.id)
            .values(
                state="completed",
                state_reason="max_trials",
                started_at=start,
                finished_at=start + timedelta(seconds=n_trials),
            )
        )
    if engine.dialect.name == "postgresql":
        # Autovacuum analyzes a table that grows trial by trial; one bulk load needs asking.
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return record.id


def _create_optuna_study(database_url: str, name: str) -> int:
    storage = optuna.storages.RDBStorage(database_url)
    try:
        return storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], name)
    finally:
        storage.engine.dispose()


def _trial(rng: random.Random, number: int, start: datetime, spec: StudySpec) -> dict[str, Any]:
    lr = math.exp(rng.uniform(math.log(1e-4), math.log(0.3)))
    params = {
        "lr": lr,
        "optimizer": rng.choice(["sgd", "momentum", "adam"]),
        "batch_size": rng.choice([32, 64, 128]),
        "weight_decay": math.exp(rng.uniform(math.log(1e-6), math.log(1e-2))),
    }
    # Accuracy peaks near lr = 0.01 with adam; the noise keeps values distinct.
    value = 0.98 - 0.05 * abs(math.log10(lr) + 2) - (0.0 if params["optimizer"] == "adam" else 0.01)
    value = round(value + rng.gauss(0, 0.005), 6)
    pruned = number % 10 == 9
    began = start + timedelta(seconds=number)
    return {
        "number": number,
        "params": params,
        "value": None if pruned else value,
        "reported": value,
        "state": "pruned" if pruned else "complete",
        "epochs": 3 if pruned else 10,
        "started_at": began,
        "finished_at": began + timedelta(seconds=2),
    }


def _hpo_row(study_id: int, t: dict[str, Any]) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "number": t["number"],
        "state": t["state"],
        "params": t["params"],
        "value": t["value"],
        "values": None if t["value"] is None else [t["value"]],
        "best_epoch": t["epochs"],
        "epochs_run": t["epochs"],
        "stop_reason": "pruned" if t["state"] == "pruned" else "completed",
        "started_at": t["started_at"],
        "finished_at": t["finished_at"],
        "duration_s": 2.0,
        "node": "synthetic",
    }


def _with_curves(trials: list[dict[str, Any]], curves: int, read_curves: int) -> set[int]:
    """Numbers below `curves`, the `read_curves` best complete trials (ties by number, as
    the curves call orders them) and the `read_curves` most recent pruned ones."""
    chosen = set(range(min(curves, len(trials))))
    complete = [t for t in trials if t["state"] == "complete"]
    best = sorted(complete, key=lambda t: (-t["value"], t["number"]))[:read_curves]
    pruned = [t for t in trials if t["state"] == "pruned"][::-1][:read_curves]
    return chosen | {t["number"] for t in best + pruned}


def _epochs(
    study_id: int, trials: list[dict[str, Any]], with_curves: set[int]
) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        if t["number"] not in with_curves:
            continue
        for epoch in range(1, t["epochs"] + 1):
            share = epoch / 10
            rows.append(
                {
                    "study_id": study_id,
                    "number": t["number"],
                    "epoch": epoch,
                    "seconds": 0.2,
                    "metrics": {
                        "val_accuracy": t["reported"] * share**0.1,
                        "lr": t["params"]["lr"],
                    },
                }
            )
    return rows


def _write_optuna(
    database_url: str, study_id: int, trials: list[dict[str, Any]], distributions: dict[str, str]
) -> None:
    """Optuna's rows for the same trials: one `trials` row, its params and its value."""
    storage = optuna.storages.RDBStorage(database_url)
    try:
        with storage.engine.begin() as connection:
            # Ids come from the database (RETURNING, in insert order) so that PostgreSQL's
            # sequence stays ahead of them for trials Optuna adds later.
            model = optuna_models.TrialModel
            ids = list(
                connection.scalars(
                    insert(model).returning(model.trial_id, sort_by_parameter_order=True),
                    [
                        {
                            "number": t["number"],
                            "study_id": study_id,
                            "state": "COMPLETE" if t["state"] == "complete" else "PRUNED",
                            "datetime_start": t["started_at"].replace(tzinfo=None),
                            "datetime_complete": t["finished_at"].replace(tzinfo=None),
                        }
                        for t in trials
                    ],
                )
            )
            connection.execute(
                insert(optuna_models.TrialParamModel),
                [
                    {
                        "trial_id": ids[i],
                        "param_name": name,
                        "param_value": _internal(distributions[name], value),
                        "distribution_json": distributions[name],
                    }
                    for i, t in enumerate(trials)
                    for name, value in t["params"].items()
                ],
            )
            connection.execute(
                insert(optuna_models.TrialValueModel),
                [
                    {
                        "trial_id": ids[i],
                        "objective": 0,
                        "value": t["value"],
                        "value_type": "FINITE",
                    }
                    for i, t in enumerate(trials)
                    if t["value"] is not None
                ],
            )
    finally:
        storage.engine.dispose()


def _internal(distribution_json: str, value: Any) -> float:
    return float(json_to_distribution(distribution_json).to_internal_repr(value))
