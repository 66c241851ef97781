"""Engines tuned per backend; callers create them, nothing is built at import time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from storage.errors import StorageUnavailable
from storage.session import logged

# WAL lets the API read while a driver writes; busy_timeout rides out short write locks.
# synchronous=NORMAL under WAL survives a crash of the process (and of the service), not
# a power cut: the last commits may be lost, never the file. FULL syncs every commit.
# `sqlite-default` is SQLite's own (and so Optuna's RDBStorage's): a rollback journal
# synced at every commit; readers wait while a writer commits.
_ALWAYS = ("PRAGMA busy_timeout=30000", "PRAGMA foreign_keys=ON")
SQLITE_DURABILITY: dict[str, tuple[str, ...]] = {
    "wal": ("PRAGMA journal_mode=WAL", *_ALWAYS, "PRAGMA synchronous=NORMAL"),
    "wal-full": ("PRAGMA journal_mode=WAL", *_ALWAYS, "PRAGMA synchronous=FULL"),
    "sqlite-default": ("PRAGMA journal_mode=DELETE", *_ALWAYS, "PRAGMA synchronous=FULL"),
}
SQLITE_PRAGMAS = SQLITE_DURABILITY["wal"]


__all__ = ["Engine", "column_names", "create_engine_for", "ping", "sqlite_pragmas", "tune_engine"]


def column_names(engine: Engine, table: str) -> set[str]:
    """The columns of `table` as the database has them (empty when there is no table)."""
    inspector = inspect(engine)
    if not inspector.has_table(table):
        return set()
    return {column["name"] for column in inspector.get_columns(table)}


def ping(engine: Engine) -> None:
    """Raise StorageUnavailable (a summary and a logged id) unless the database answers a
    trivial query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StorageUnavailable(logged("database unreachable", exc)) from exc


def create_engine_for(url: str, *, sqlite_pragmas: Sequence[str] = SQLITE_PRAGMAS) -> Engine:
    """Create an engine for `url` with the settings its backend needs to be safe under load
    (`sqlite_pragmas` on each SQLite connection)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed, sqlite_pragmas)
    return create_engine(parsed, pool_pre_ping=True)


def sqlite_pragmas(durability: str) -> tuple[str, ...]:
    """The PRAGMAs of a durability setting (`HPO_SQLITE_DURABILITY`)."""
    try:
        return SQLITE_DURABILITY[durability]
    except KeyError:
        raise ValueError(f"unknown SQLite durability {durability!r}") from None


def hidden_password(url: str) -> str:
    """The URL as start-up lines and logs may show it: its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<a database URL SQLAlchemy cannot parse>"  # it may hold a password still


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for another database or an in-memory one."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database.removeprefix("file:").split("?")[0]).expanduser().resolve()


def _create_sqlite_engine(url: URL, pragmas: Sequence[str]) -> Engine:
    _ensure_parent_dir(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _pragma_setter(pragmas))
    return engine


def _ensure_parent_dir(url: URL) -> None:
    """SQLite creates the file but not its directory; a fresh data dir must just work."""
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _pragma_setter(pragmas: Sequence[str]) -> Callable[[Any, Any], None]:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    return set_pragmas


def tune_engine(engine: Engine, *, sqlite_pragmas: Sequence[str] = SQLITE_PRAGMAS) -> None:
    """Give an engine built elsewhere (Optuna's RDBStorage) the same SQLite settings.

    PRAGMAs such as synchronous hold per connection, so pooled connections are dropped.
    """
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _pragma_setter(sqlite_pragmas))
        engine.dispose()
