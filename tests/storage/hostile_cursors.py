"""Cursors a client could forge: the real encoding around keys no list ever hands out.

Shared by the storage tests, the HTTP tests and the schemathesis fuzzing, so that every
layer is held to the same list of hostile cursors.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

KINDS = ("studies", "trials-number", "trials-best")


def encoded(text: str) -> str:
    """`text` in the cursor's own wrapping: url-safe base64 without padding."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def forged(*payload: Any) -> str:
    """`payload` as a JSON list in the cursor's wrapping (NaN and Infinity as JSON reads them)."""
    return encoded(json.dumps(list(payload), separators=(",", ":")))


# Each one is well-formed base64 (or plainly not), but no list of this service issued it.
HOSTILE_CURSORS: dict[str, str] = {
    "huge id": forged("studies", 10**30),
    "just past 64 bits": forged("studies", 2**63),
    "negative id": forged("studies", -1),
    "huge negative id": forged("studies", -(10**30)),
    "huge trial number": forged("trials-number", 10**30),
    "negative trial number": forged("trials-number", -1),
    "huge number after a value": forged("trials-best", 0.5, 10**30),
    "negative number after a value": forged("trials-best", 0.5, -3),
    "huge integer value": forged("trials-best", 10**30, 1),
    "NaN value": encoded('["trials-best",NaN,1]'),
    "infinite value": encoded('["trials-best",Infinity,1]'),
    "overflowing value": encoded('["trials-best",1e400,1]'),
    "float id": forged("studies", 1.5),
    "string id": forged("studies", "1"),
    "bool id": forged("studies", True),
    "null id": forged("studies", None),
    "nested id": forged("studies", [[[1]]]),
    "object payload": encoded('{"studies":1}'),
    "deeply nested": encoded("[" * 300 + "]" * 300),
    "unknown kind": forged("no-such-list", 1),
    "extra key": forged("studies", 1, 2),
    "no key": forged("studies"),
    "not base64": "not a cursor!",
    "not utf-8": base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    "not json": encoded("studies,1"),
    "too many digits": encoded('["studies",' + "9" * 5000 + "]"),
}

_out_of_range = st.one_of(
    st.integers(min_value=2**63, max_value=10**40), st.integers(min_value=-(10**40), max_value=-1)
)
_values = st.one_of(st.none(), st.floats(), st.integers(min_value=-(10**40), max_value=10**40))
_junk = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.floats(), st.lists(st.integers(), max_size=2)
)


# Each list's own shape, with keys no list issues: out-of-range ids and numbers, odd values.
_well_shaped = st.one_of(
    st.tuples(st.just("studies"), _out_of_range),
    st.tuples(st.just("trials-number"), _out_of_range),
    st.tuples(st.just("trials-best"), _values, st.one_of(_out_of_range, st.integers(0, 9))),
).map(lambda p: forged(*p))
# Any kind, any number of keys of any type.
_misshapen = st.tuples(
    st.one_of(st.sampled_from(KINDS), st.text(max_size=8)),
    st.lists(st.one_of(_out_of_range, _junk), max_size=3),
).map(lambda p: forged(p[0], *p[1]))


def hostile_cursors() -> st.SearchStrategy[str]:
    """Forged cursors: the real encoding with out-of-range, negative, mistyped or missing
    keys and wrong kinds, and the fixed list above."""
    return st.one_of(_well_shaped, st.sampled_from(sorted(HOSTILE_CURSORS.values())), _misshapen)
