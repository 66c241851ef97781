"""SQLite engines come configured for concurrent readers and enforced foreign keys."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from storage import create_engine_for


def test_sqlite_engine_creates_parent_dir_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "hpo.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.execute(text(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
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
