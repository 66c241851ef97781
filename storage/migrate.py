"""Schema upgrades run from code, so `hpo serve` needs no alembic.ini beside it."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

from storage.engine import create_engine_for

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Optuna keeps its own `alembic_version` table in the same database.
VERSION_TABLE = "hpo_alembic_version"
# Alembic keeps its running context in module globals, so one upgrade per process at a time.
_UPGRADE_LOCK = threading.Lock()


def alembic_config() -> Config:
    """Alembic config pointing at the packaged migrations (for `upgrade` and tests)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_schema(url: str) -> None:
    """Bring the database at `url` to the newest schema; a database already there is untouched.

    Uses its own version table (`hpo_alembic_version`) because Optuna keeps `alembic_version`
    in the same database. Concurrent calls on PostgreSQL wait for each other.
    """
    engine = create_engine_for(url)
    try:
        with _UPGRADE_LOCK, engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
