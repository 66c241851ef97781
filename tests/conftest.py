"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# ---------------------------------------------------------------------------
# Databases: each test gets its own, on SQLite and (where configured) PostgreSQL.
# ---------------------------------------------------------------------------

POSTGRES_URL_VARIABLE = "HPO_TEST_POSTGRES_URL"


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of this test's own."""
    return f"sqlite:///{tmp_path / 'hpo.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, dropped afterwards.

    Skips when HPO_TEST_POSTGRES_URL is unset, except in CI, where it fails so that
    PostgreSQL coverage cannot disappear silently.
    """
    base_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not base_url:
        if _running_in_ci():
            pytest.fail(f"{POSTGRES_URL_VARIABLE} must be set in CI; PostgreSQL tests cannot skip")
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    name = f"hpo_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every supported database in turn, so storage contracts hold on all of them."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
