"""Pydantic's validation errors said as what to send instead.

An unknown field gets the nearest valid one (`budget.max_trial`: did you mean
'max_trials'?), a wrong tag of a discriminated union is reported at its own field
(`sampler.type`) with the valid tags, a literal with the nearest valid value, and a
value that every member of a plain union refused gets one error, not one per member
(`objective` is an object or a list of them: a wrong `direction` is one error, not
that and "Input should be a valid list").
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from api.body_paths import Part, field_names, tags, walk
from service.suggest import did_you_mean

Error = dict[str, Any]
# What a member of a union that refused the value's type at its top wanted instead.
_TYPE_WORDS = {
    "model_type": "an object",
    "dict_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "none_required": "null",
}


def explain(error: Error, body_type: Any) -> tuple[str, str] | None:
    """The user's path and a message for an error in the body whose words can say more
    than pydantic's; None leaves the error as pydantic words it."""
    loc = tuple(error.get("loc", ()))
    if body_type is None or loc[:1] != ("body",):
        return None
    kind, msg = error.get("type"), str(error.get("msg", ""))
    if kind == "extra_forbidden":
        parent = walk(body_type, loc[1:-1])
        if parent is None:
            return None
        return _dotted(*parent.kept, loc[-1]), msg + did_you_mean(loc[-1], field_names(parent.end))
    where = walk(body_type, loc[1:])
    if where is None:
        return None
    if kind in ("union_tag_invalid", "union_tag_not_found") and where.discriminator:
        name, given = where.discriminator, error.get("ctx", {}).get("tag")
        valid = tags(where.end, name)
        if given is None:
            return _dotted(*where.kept, name), f"{name} is required: one of {valid}"
        said = f"{name} must be one of {valid}, got {given!r}{did_you_mean(given, valid)}"
        return _dotted(*where.kept, name), said
    if kind == "literal_error":
        given = error.get("input")
        valid = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        near = did_you_mean(given, valid) if isinstance(given, str) else ""
        return _dotted(*where.kept), f"{msg}, got {given!r}{near}"
    return None


def user_path(error: Error, body_type: Any) -> str | None:
    """The path the user wrote (no union members' labels or tags); None if unknown."""
    loc = tuple(error.get("loc", ()))
    where = walk(body_type, loc[1:]) if body_type is not None and loc[:1] == ("body",) else None
    return None if where is None else _dotted(*where.kept)


def one_per_union(errors: list[Error], body_type: Any) -> list[Error]:
    """Errors without those of union members that merely refused the value's type, when
    another member got further; when none did, their one merged error."""
    sites: defaultdict[tuple[Part, ...], list[int]] = defaultdict(list)
    for i, error in enumerate(errors):
        site = _union_site(error, body_type)
        if site is not None:
            sites[site].append(i)
    merged: dict[int, Error] = {}
    dropped: set[int] = set()
    for site, members in sites.items():
        refused = [i for i in members if _refused_type(errors[i], len(site))]
        if len(refused) < len(members):
            dropped.update(refused)
            continue
        words = list(dict.fromkeys(_TYPE_WORDS[errors[i]["type"]] for i in refused))
        merged[members[0]] = {
            "type": "union_type",
            "loc": site,
            "msg": f"Input should be {_either(words)}",
        }
        dropped.update(members[1:])
    return [merged.get(i, e) for i, e in enumerate(errors) if i not in dropped]


def _union_site(error: Error, body_type: Any) -> tuple[Part, ...] | None:
    """The location up to the plain union whose member the error is in, with `body`."""
    loc = tuple(error.get("loc", ()))
    if body_type is None or loc[:1] != ("body",):
        return None
    inner = loc[1:-1] if error.get("type") == "extra_forbidden" else loc[1:]
    where = walk(body_type, inner)
    return None if where is None or where.member_at is None else loc[: where.member_at + 1]


def _refused_type(error: Error, n_site: int) -> bool:
    """Whether the error is a member's refusal of the value's type, at the member's top."""
    return len(error.get("loc", ())) == n_site + 1 and error.get("type") in _TYPE_WORDS


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _dotted(*parts: Part) -> str:
    return ".".join(str(p) for p in parts) or "body"
