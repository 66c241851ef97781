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


def test_an_unmapped_database_error_is_described_by_id_without_its_sql(caplog) -> None:
    """Optuna's storage raises SQLAlchemy's own errors; a study's `error` and /readyz
    describe them (and what wraps them) by a logged id, never by their SQL."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from storage.engine import ping
    from storage.errors import StorageUnavailable
    from storage.session import describe_error

    raw = OperationalError("SELECT secret FROM hpo_trials", {}, Exception("locked"))
    try:
        try:
            raise raw
        except OperationalError as exc:
            raise RuntimeError("tell failed") from exc
    except RuntimeError as wrapped:
        with caplog.at_level("ERROR"):
            text = describe_error(wrapped)
    assert text.startswith("RuntimeError: database error (id ") and "SELECT" not in text
    error_id = text.split("(id ")[1].rstrip(")")
    assert any(error_id in r.getMessage() and "SELECT" in r.getMessage() for r in caplog.records)
    assert describe_error(ValueError("bad lr")) == "ValueError: bad lr"
    engine = create_engine("postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    with pytest.raises(StorageUnavailable) as unreachable:
        ping(engine)
    assert "SELECT" not in str(unreachable.value) and "pw" not in str(unreachable.value)
