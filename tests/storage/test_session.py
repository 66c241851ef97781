"""Database failures reach callers as a short message and an id; the log keeps the detail."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from storage import (
    ConflictError,
    StorageError,
    StorageUnavailable,
    Store,
    create_engine_for,
    upgrade_schema,
)

ERROR_ID = re.compile(r"\(id ([0-9a-f]{8})\)$")
# Words of the statements and schema that the database's own text is made of.
SQL_WORDS = ("INSERT", "SELECT", "UPDATE", "hpo_", "constraint failed", "duplicate key")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade_schema(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def logged_detail(caplog: pytest.LogCaptureFixture, error: StorageError) -> str:
    """The message the error's id was logged with; asserts the caller's text is clean."""
    message = str(error)
    assert not [w for w in SQL_WORDS if w.lower() in message.lower()], message
    found = ERROR_ID.search(message)
    assert found, message
    lines = [r.getMessage() for r in caplog.records if found.group(1) in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    return lines[0]


def test_a_broken_unique_rule_is_a_conflict_whose_detail_is_only_logged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(engine)
    study = store.create_study(name="s", spec={}, direction="minimize")
    store.create_trial(study.id, 0, {})
    with pytest.raises(ConflictError) as raised:
        store.create_trial(study.id, 0, {})
    assert "hpo_trials" in logged_detail(caplog, raised.value)


def test_a_dropped_table_is_unavailable_whose_statement_is_only_logged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(engine)
    study = store.create_study(name="s", spec={}, direction="minimize")
    store.create_trial(study.id, 0, {})
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE hpo_epochs"))
    with pytest.raises(StorageUnavailable) as raised:
        store.get_trial(study.id, 0)
    detail = logged_detail(caplog, raised.value)
    assert "SELECT" in detail and "hpo_epochs" in detail
