"""The migrations build exactly the models' schema, once, beside Optuna's own tables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from storage import create_engine_for, upgrade_schema
from storage.migrate import VERSION_TABLE
from storage.models import Base

OUR_TABLES = {
    "hpo_studies",
    "hpo_trials",
    "hpo_epochs",
    "hpo_value_blocks",
    "hpo_events",
    "hpo_datasets",
    VERSION_TABLE,
}


def schema_diff(url: str) -> list[Any]:
    def ours(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name in Base.metadata.tables

    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": ours, "compare_type": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def versions(url: str, table: str) -> list[str]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text(f"SELECT version_num FROM {table}")))
    finally:
        engine.dispose()


def test_upgraded_schema_matches_the_models(database_url: str) -> None:
    upgrade_schema(database_url)
    assert schema_diff(database_url) == []


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    upgrade_schema(database_url)
    upgrade_schema(database_url)

    assert table_names(database_url) == OUR_TABLES
    assert versions(database_url, VERSION_TABLE) == [head_revision()]


def test_upgrade_leaves_optunas_alembic_version_alone(database_url: str) -> None:
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            connection.execute(text("INSERT INTO alembic_version VALUES ('v3.2.0.a')"))
    finally:
        engine.dispose()

    upgrade_schema(database_url)

    assert versions(database_url, "alembic_version") == ["v3.2.0.a"]
    assert versions(database_url, VERSION_TABLE) == [head_revision()]


def test_concurrent_upgrades_all_succeed(database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(upgrade_schema, database_url) for _ in range(3)]:
            future.result()
    assert versions(database_url, VERSION_TABLE) == [head_revision()]


def head_revision() -> str:
    """The newest migration, so these tests need no edit when one is added."""
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
