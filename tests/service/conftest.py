"""Fixtures of the service's tests."""

from __future__ import annotations

from collections.abc import Iterator

import optuna
import pytest


@pytest.fixture
def optuna_storage(database_url: str) -> Iterator[optuna.storages.RDBStorage]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(database_url)
    yield storage
    storage.engine.dispose()
