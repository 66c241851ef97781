"""Cost at 1k, 10k and 100k finished trials: the service's ask+tell and reads, against
Optuna's RDBStorage on the same data.

For each database (SQLite, and PostgreSQL with --postgres-url) a study of each size is
written straight into the store and into Optuna's tables (bench/synthetic_study.py), then:
  ask+tell     the service's OptunaBridge (in-memory Optuna mirrored to RDBStorage, random
               sampler): median of --asks draws, each with its RDBStorage writes replayed
               as the driver's writer thread does; also the bridge's load time at start
  optuna a+t   study.ask() + study.tell() on optuna.load_study(storage=RDBStorage)
  /best, /trials?limit=50   median HTTP latency from `hpo serve` on that database
  best_trial, get_all_trials   Optuna's RDBStorage answering the same questions

    .venv/bin/python -m bench.scaling [--postgres-url postgresql+psycopg://...]
    .venv/bin/python -m bench.scaling --restart-only [--sizes 100000] [--postgres-url ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from bench.arms import live_service, table
from bench.dashboard_scale import reset_postgres
from bench.synthetic_study import SPEC, write_study
from service.optuna_bridge import OptunaBridge
from service.optuna_load import add_all, read_trials
from service.spec import StudySpec
from storage import Store, create_engine_for, upgrade_schema

SIZES = (1_000, 10_000, 100_000)


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def bridge_costs(url: str, study_name: str, asks: int) -> dict[str, float]:
    spec = StudySpec.model_validate({**SPEC, "sampler": {"type": "random", "seed": 0},
                                     "pruner": {"type": "none"}})  # fmt: skip
    storage = optuna.storages.RDBStorage(url)
    engine = create_engine_for(url)
    try:
        started = time.perf_counter()
        bridge = OptunaBridge(storage, study_name, spec, Store(engine))
        load_s = time.perf_counter() - started
        in_memory, with_writes = [], []
        for i in range(asks):
            started = time.perf_counter()
            trial, _, create = bridge.ask()
            finish = bridge.tell(trial, optuna.trial.TrialState.COMPLETE, [0.5 + i * 1e-6])
            decided = time.perf_counter()
            create()
            finish()
            in_memory.append(decided - started)
            with_writes.append(time.perf_counter() - started)
    finally:
        storage.engine.dispose()
        engine.dispose()
    return {"load_s": load_s, "ask_tell_ms": statistics.median(in_memory) * 1e3,
            "ask_tell_writes_ms": statistics.median(with_writes) * 1e3}  # fmt: skip


def optuna_costs(url: str, study_name: str, asks: int) -> dict[str, float]:
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage,
                                  sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip

        def ask_tell() -> None:
            trial = study.ask()
            trial.suggest_float("lr", 1e-4, 0.3, log=True)
            study.tell(trial, 0.5)

        return {
            "optuna_ask_tell_ms": median_ms(ask_tell, asks),
            "optuna_best_ms": median_ms(lambda: study.best_trial, 5),
            "optuna_all_ms": median_ms(lambda: study.get_trials(deepcopy=False), 3),
        }
    finally:
        storage.engine.dispose()


def restart_costs(url: str, study_name: str) -> dict[str, float]:
    """A restart's load of the in-memory Optuna copy, both ways in one run: Optuna's own
    (`get_all_trials` through the ORM, then `add_trials`, as the bridge did before) and the
    bridge's bulk load (`service/optuna_load.py`)."""
    storage = optuna.storages.RDBStorage(url)
    engine = create_engine_for(url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
        started = time.perf_counter()
        copy = optuna.create_study(study_name=study_name, direction="maximize")
        copy.add_trials(storage.get_all_trials(study_id, deepcopy=False))
        optuna_s = time.perf_counter() - started
        started = time.perf_counter()
        bulk = optuna.create_study(study_name=study_name, direction="maximize")
        add_all(bulk, read_trials(Store(engine).run, study_id))
        bulk_s = time.perf_counter() - started
        assert len(bulk.trials) == len(copy.trials)
        return {"optuna_load_s": optuna_s, "bulk_load_s": bulk_s}
    finally:
        storage.engine.dispose()
        engine.dispose()


def measure_restarts(url: str, sizes: tuple[int, ...]) -> None:
    """Only the restart's load (`--restart-only`), at each size."""
    upgrade_schema(url)
    engine = create_engine_for(url)
    ids = {n: write_study(engine, url, n, name=f"restart-{n}", curves=0) for n in sizes}
    engine.dispose()
    rows = []
    for n, study_id in ids.items():
        r = restart_costs(url, f"hpo-study-{study_id}")
        rows.append((f"{n:,}", f"{r['optuna_load_s']:.2f}", f"{r['bulk_load_s']:.2f}",
                     f"{r['optuna_load_s'] / r['bulk_load_s']:.1f}x"))  # fmt: skip
    print(table(rows, ("finished trials", "get_all_trials + add_trials s", "bulk load s",
                       "ratio")))  # fmt: skip


def measure(url: str, asks: int) -> dict[int, dict[str, float]]:
    upgrade_schema(url)
    engine = create_engine_for(url)
    ids = {n: write_study(engine, url, n, name=f"scale-{n}", curves=0) for n in SIZES}
    engine.dispose()
    results: dict[int, dict[str, float]] = {}
    with live_service(database_url=url) as (client, _):
        for n, study_id in ids.items():
            results[n] = {
                "best_ms": median_ms(lambda s=study_id: client.get(
                    f"/api/v1/studies/{s}/best").raise_for_status(), 15),
                "trials_ms": median_ms(lambda s=study_id: client.get(
                    f"/api/v1/studies/{s}/trials?limit=50").raise_for_status(), 15),
            }  # fmt: skip
    for n, study_id in ids.items():
        name = f"hpo-study-{study_id}"
        # Optuna first: the bridge's asks add trials to the study.
        results[n].update(optuna_costs(url, name, asks))
        results[n].update(bridge_costs(url, name, asks))
        print(f"{n}: {results[n]}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", help="also on this PostgreSQL (its schema is wiped)")
    parser.add_argument("--asks", type=int, default=50)
    parser.add_argument(
        "--restart-only",
        action="store_true",
        help="only a restart's load of the trials, Optuna's way and the bulk way",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        databases = {"sqlite": f"sqlite:///{Path(tmp) / 'scale.db'}"}
        if args.postgres_url:
            reset_postgres(args.postgres_url)
            databases["postgresql"] = args.postgres_url
        for backend, url in databases.items():
            if args.restart_only:
                print(f"\n{backend}: a restart's load of the study's trials")
                measure_restarts(url, tuple(args.sizes))
                continue
            results = measure(url, args.asks)
            base = results[SIZES[0]]
            rows = []
            for n, r in results.items():
                growth = r["ask_tell_ms"] / base["ask_tell_ms"]
                rows.append((
                    f"{n:,}", f"{r['ask_tell_ms']:.2f} ({growth:.2f}x)",
                    f"{r['ask_tell_writes_ms']:.1f}", f"{r['optuna_ask_tell_ms']:.1f}",
                    f"{r['load_s']:.2f}", f"{r['best_ms']:.1f}", f"{r['trials_ms']:.1f}",
                    f"{r['optuna_best_ms']:.1f}", f"{r['optuna_all_ms']:.0f}",
                ))  # fmt: skip
            print(f"\n{backend}: medians, ms unless noted")
            print(table(rows, (
                "finished trials", "service ask+tell (vs 1k)", "+ its writes",
                "optuna ask+tell", "bridge load s", "/best", "/trials?limit=50",
                "optuna best_trial", "optuna get_all_trials",
            )))  # fmt: skip


if __name__ == "__main__":
    main()
