"""The bound on writing Optuna's tables: a version or schema the mirror was not tested with
stops the service at start-up with a message, instead of writing wrong rows."""

from __future__ import annotations

from functools import partial

import optuna
import pytest
from sqlalchemy import text

from service.run.optuna_mirror import check_compatible
from storage.engine import column_names


@pytest.fixture
def storage(sqlite_url: str) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(sqlite_url)


def test_the_installed_optuna_and_its_fresh_tables_are_compatible(
    storage: optuna.storages.RDBStorage,
) -> None:
    check_compatible(optuna.__version__, partial(column_names, storage.engine))


def test_an_untested_optuna_version_is_refused_by_name(storage: optuna.storages.RDBStorage) -> None:
    with pytest.raises(RuntimeError, match=r"tested with Optuna 5\.0\.x; Optuna 5\.1\.2 is"):
        check_compatible("5.1.2", partial(column_names, storage.engine))


def test_a_table_without_a_column_the_mirror_writes_is_refused_naming_it(
    storage: optuna.storages.RDBStorage,
) -> None:
    with storage.engine.begin() as connection:
        connection.execute(text("ALTER TABLE trial_values DROP COLUMN value_type"))
    with pytest.raises(RuntimeError, match=r"'trial_values' .* lacks the columns \['value_type'\]"):
        check_compatible(optuna.__version__, partial(column_names, storage.engine))
