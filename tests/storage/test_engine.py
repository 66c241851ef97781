"""SQLite engines come configured for concurrent readers and enforced foreign keys."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from service.settings import Settings
from storage import create_engine_for
from storage.engine import sqlite_pragmas, tune_engine

NAMES = ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")


def pragmas_of(engine) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return {name: connection.execute(text(f"PRAGMA {name}")).scalar() for name in NAMES}


def test_sqlite_engine_creates_parent_dir_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "hpo.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        pragmas = pragmas_of(engine)
    finally:
        engine.dispose()

    assert path.exists()
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 1,
    }


def test_postgres_engine_pings_pooled_connections() -> None:
    engine = create_engine_for("postgresql+psycopg://user@localhost:1/db")
    try:
        assert engine.pool._pre_ping  # noqa: SLF001 - no public accessor
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("durability", "journal_mode", "synchronous"),
    [("wal", "wal", 1), ("wal-full", "wal", 2), ("sqlite-default", "delete", 2)],
)
def test_each_durability_setting_holds_on_the_store_and_optuna_engines(
    tmp_path: Path, durability: str, journal_mode: str, synchronous: int
) -> None:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    pragmas = sqlite_pragmas(Settings(sqlite_durability=durability).sqlite_durability)
    engine = create_engine_for(url, sqlite_pragmas=pragmas)
    storage = optuna.storages.RDBStorage(url)
    tune_engine(storage.engine, sqlite_pragmas=pragmas)
    try:
        for seen in (pragmas_of(engine), pragmas_of(storage.engine)):
            assert seen == {
                "journal_mode": journal_mode,
                "busy_timeout": 30000,
                "foreign_keys": 1,
                "synchronous": synchronous,
            }
    finally:
        engine.dispose()
        storage.engine.dispose()


def test_an_unknown_durability_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="sqlite_durability"):
        Settings(sqlite_durability="fast")  # type: ignore[arg-type]
