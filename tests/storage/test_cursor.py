"""Forged cursors are refused as InvalidCursorError on every database, never passed on."""

from __future__ import annotations

import math

import hypothesis
import pytest
from hypothesis import strategies as st

from storage import InvalidCursorError, Store
from storage.cursor import MAX_KEY, decode_cursor, encode_cursor
from tests.storage.hostile_cursors import HOSTILE_CURSORS, hostile_cursors

HOSTILE = pytest.mark.parametrize("cursor", HOSTILE_CURSORS.values(), ids=HOSTILE_CURSORS.keys())


@HOSTILE
def test_a_forged_study_cursor_is_invalid(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        store.list_studies(cursor=cursor)


@HOSTILE
@pytest.mark.parametrize("order", ["number", "best"])
def test_a_forged_trial_cursor_is_invalid(store: Store, cursor: str, order: str) -> None:
    study = store.create_study(name="s", spec={}, direction="minimize")
    with pytest.raises(InvalidCursorError):
        store.list_trials(study.id, order=order, cursor=cursor)


@pytest.mark.parametrize(
    ("kind", "key", "types"),
    [
        ("studies", (2**63 - 1,), (int,)),
        ("trials-best", (-1.5e300, 0), (None, int)),
        ("trials-best", (None, 7), (None, int)),
    ],
)
def test_the_widest_keys_a_list_can_issue_decode(
    kind: str, key: tuple[object, ...], types: tuple[type | None, ...]
) -> None:
    assert decode_cursor(encode_cursor(kind, *key), kind, types) == list(key)


LISTS = [("studies", (int,)), ("trials-number", (int,)), ("trials-best", (None, int))]


@hypothesis.settings(max_examples=300, database=None, derandomize=True)
@hypothesis.given(cursor=hostile_cursors(), ordering=st.sampled_from(LISTS))
def test_a_cursor_decodes_to_keys_a_database_binds_or_is_invalid(
    cursor: str, ordering: tuple[str, tuple[type | None, ...]]
) -> None:
    kind, types = ordering
    try:
        key = decode_cursor(cursor, kind, types)
    except InvalidCursorError:
        return
    for value, type_ in zip(key, types, strict=True):
        if type_ is int:
            assert isinstance(value, int) and 0 <= value <= MAX_KEY
        else:
            assert value is None or (isinstance(value, float) and math.isfinite(value))
