"""Alembic environment: runs on the connection `storage.migrate` hands over, never from an ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from storage.migrate import VERSION_TABLE
from storage.models import Base

# Any fixed 64-bit key; serialises concurrent upgrades of one PostgreSQL database.
_PG_LOCK_KEY = 0x68706F5F6D6967


def _lock_against_concurrent_upgrades(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def run_migrations_online() -> None:
    connection: Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        _lock_against_concurrent_upgrades(connection)
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; use upgrade_schema(url)")
run_migrations_online()
