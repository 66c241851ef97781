"""Cost at 1k, 10k and 100k finished trials: the service's ask+tell and reads, against
Optuna's RDBStorage on the same data.

For each database (SQLite, and PostgreSQL with --postgres-url) a study of each size is
written straight into the store and into Optuna's tables (bench/synthetic_study.py), then:
  ask+tell     the service's OptunaBridge (in-memory Optuna mirrored to RDBStorage):
               median of --asks random draws and of --tpe-asks TPE draws (TPE's cost
               grows with the study; random's does not), each with its RDBStorage writes
               replayed as the driver's writer thread does; also the bridge's load time
  optuna a+t   study.ask() + study.tell() on optuna.load_study(storage=RDBStorage), the
               same samplers (TPE with TPE_OPTIONS, as bench/overhead.py)
  /best, /trials?limit=50   median HTTP latency from `hpo serve` on that database
  best_trial, 50 get_trial, get_all_trials   Optuna's RDBStorage answering the same
               questions: its best trial, the same 50 trials (Optuna has no page, so one
               get_trial each), and every trial

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
from bench.overhead import TPE as TPE_OPTIONS
from bench.synthetic_study import SPEC, write_study
from search.space import to_distribution
from service.run.optuna_bridge import OptunaBridge
from service.run.optuna_load import add_all, read_trials
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


def sampler_spec(sampler: str) -> dict[str, Any]:
    """The study's sampler in the service's spec: random, or TPE with TPE_OPTIONS."""
    return (
        {"type": "random", "seed": 0}
        if sampler == "random"
        else {"type": "tpe", "seed": 0, **TPE_OPTIONS}
    )


def optuna_sampler(sampler: str) -> optuna.samplers.BaseSampler:
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=0)
    return optuna.samplers.TPESampler(seed=0, **TPE_OPTIONS)


def bridge_costs(url: str, study_name: str, asks: int, sampler: str) -> dict[str, float]:
    spec = StudySpec.model_validate(
        {**SPEC, "sampler": sampler_spec(sampler), "pruner": {"type": "none"}}
    )
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
    return {
        f"{sampler}_load_s": load_s,
        f"{sampler}_ask_tell_ms": statistics.median(in_memory) * 1e3,
        f"{sampler}_ask_tell_writes_ms": statistics.median(with_writes) * 1e3,
    }


def optuna_costs(url: str, study_name: str, asks: int, sampler: str) -> dict[str, float]:
    """Optuna on its RDBStorage: ask+tell with `sampler` (the space of the synthetic study,
    so TPE models every parameter the study has), and, with the random sampler, the reads
    that the service's `/best` and `/trials?limit=50` answer."""
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=optuna_sampler(sampler)
        )
        space = {k: to_distribution(p) for k, p in StudySpec.model_validate(SPEC).space.items()}

        def ask_tell() -> None:
            study.tell(study.ask(space), 0.5)

        costs = {f"optuna_{sampler}_ask_tell_ms": median_ms(ask_tell, asks)}
        if sampler == "random":
            study_id = storage.get_study_id_from_name(study_name)
            first = storage.get_trial_id_from_study_id_trial_number(study_id, 0)
            # Optuna has no page of trials: the 50 first, one get_trial each.
            costs.update(
                {
                    "optuna_best_ms": median_ms(lambda: study.best_trial, 5),
                    "optuna_50_ms": median_ms(
                        lambda: [storage.get_trial(first + i) for i in range(50)], 5
                    ),
                    "optuna_all_ms": median_ms(lambda: study.get_trials(deepcopy=False), 3),
                }
            )
        return costs
    finally:
        storage.engine.dispose()


def restart_costs(url: str, study_name: str) -> dict[str, float]:
    """A restart's load of the in-memory Optuna copy, both ways in one run: Optuna's own
    (`get_all_trials` through the ORM, then `add_trials`, as the bridge did before) and the
    bridge's bulk load (`service/run/optuna_load.py`)."""
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
        rows.append(
            (
                f"{n:,}",
                f"{r['optuna_load_s']:.2f}",
                f"{r['bulk_load_s']:.2f}",
                f"{r['optuna_load_s'] / r['bulk_load_s']:.1f}x",
            )
        )
    print(table(rows, ("finished trials", "get_all_trials + add_trials s", "bulk load s", "ratio")))


def measure(url: str, asks: int, tpe_asks: int) -> dict[int, dict[str, float]]:
    upgrade_schema(url)
    engine = create_engine_for(url)
    ids = {n: write_study(engine, url, n, name=f"scale-{n}", curves=0) for n in SIZES}
    engine.dispose()
    results: dict[int, dict[str, float]] = {}
    with live_service(database_url=url) as (client, _):
        for n, study_id in ids.items():
            results[n] = {
                "best_ms": median_ms(
                    lambda s=study_id: client.get(f"/api/v1/studies/{s}/best").raise_for_status(),
                    15,
                ),
                "trials_ms": median_ms(
                    lambda s=study_id: client.get(
                        f"/api/v1/studies/{s}/trials?limit=50"
                    ).raise_for_status(),
                    15,
                ),
            }
    for n, study_id in ids.items():
        name = f"hpo-study-{study_id}"
        # Optuna first: the bridge's asks add trials to the study.
        for sampler, count in (("random", asks), ("tpe", tpe_asks)):
            results[n].update(optuna_costs(url, name, count, sampler))
            results[n].update(bridge_costs(url, name, count, sampler))
        print(f"{n}: {results[n]}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", help="also on this PostgreSQL (its schema is wiped)")
    parser.add_argument("--asks", type=int, default=50)
    parser.add_argument("--tpe-asks", type=int, default=10, help="TPE draws per size and arm")
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
            results = measure(url, args.asks, args.tpe_asks)
            base = results[SIZES[0]]
            rows = []
            for n, r in results.items():
                growth = r["random_ask_tell_ms"] / base["random_ask_tell_ms"]
                tpe_growth = r["tpe_ask_tell_ms"] / base["tpe_ask_tell_ms"]
                rows.append(
                    (
                        f"{n:,}",
                        f"{r['random_ask_tell_ms']:.2f} ({growth:.2f}x)",
                        f"{r['random_ask_tell_writes_ms']:.1f}",
                        f"{r['optuna_random_ask_tell_ms']:.1f}",
                        f"{r['tpe_ask_tell_ms']:.0f} ({tpe_growth:.2f}x)",
                        f"{r['optuna_tpe_ask_tell_ms']:.0f}",
                        f"{r['random_load_s']:.2f}",
                        f"{r['best_ms']:.1f}",
                        f"{r['optuna_best_ms']:.1f}",
                        f"{r['trials_ms']:.1f}",
                        f"{r['optuna_50_ms']:.1f}",
                        f"{r['optuna_all_ms']:.0f}",
                    )
                )
            print(f"\n{backend}: medians, ms unless noted")
            print(
                table(
                    rows,
                    (
                        "finished trials",
                        "service random ask+tell (vs 1k)",
                        "+ its writes",
                        "optuna random ask+tell",
                        "service TPE ask+tell (vs 1k)",
                        "optuna TPE ask+tell",
                        "bridge load s",
                        "/best",
                        "optuna best_trial",
                        "/trials?limit=50",
                        "optuna 50 get_trial",
                        "optuna get_all_trials",
                    ),
                )
            )


if __name__ == "__main__":
    main()
