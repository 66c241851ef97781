"""What a pydantic error location names in a request body's type.

Pydantic's locations carry the members of unions as well as the body's own keys:
`('sampler', 'tpe', 'seed')` names the tag of a discriminated union, and
`('objective', 'list[...]', 0, 'metric')` a member of a plain one. Walking a location
over the body's type tells those apart, so an error can point at the path the user
wrote, and say which fields (or tags) were valid where a wrong one was given.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

Part = str | int
Loc = tuple[Part, ...]
_SEQUENCES = (list, tuple, set, frozenset, Sequence)
_MAPPINGS = (dict, Mapping)


@dataclass(frozen=True)
class Walk:
    """A location read over a type: which parts the user wrote (`kept`), where the first
    plain union's member was named (`member_at`, an index of the location), and the type
    the location ends at, with the discriminator that picks among its members, if any."""

    kept: tuple[Part, ...]
    member_at: int | None
    end: Any
    discriminator: str | None


def walk(annotation: Any, loc: Sequence[Part]) -> Walk | None:
    """The location read over `annotation`; None where it does not fit the type."""
    return _walk(annotation, None, tuple(loc), 0)


def field_names(annotation: Any) -> list[str]:
    """The fields (with their aliases) of the models a value of `annotation` may be."""
    names: list[str] = []
    for member in _members(_unwrap(annotation, None)[0]):
        if _is_model(member):
            for name, field in member.model_fields.items():
                names += [name, *(a for a in (field.alias, field.validation_alias) if _is_str(a))]
    return list(dict.fromkeys(names))


def tags(annotation: Any, discriminator: str) -> list[str]:
    """The values of `discriminator` that pick a member of the union `annotation`."""
    found: list[str] = []
    for member in _members(_unwrap(annotation, None)[0]):
        found += _tags_of(member, discriminator)
    return found


def _walk(annotation: Any, discriminator: str | None, loc: Loc, at: int) -> Walk | None:
    annotation, discriminator = _unwrap(annotation, discriminator)
    members = _members(annotation)
    if len(members) == 1:  # `X | None`
        annotation, discriminator = _unwrap(members[0], discriminator)
    if not loc:
        return Walk((), None, annotation, discriminator)
    if len(members) > 1:
        return _into_union(members, discriminator, loc, at)
    head, rest = loc[0], loc[1:]
    if rest == ("[key]",) and get_origin(annotation) in _MAPPINGS:  # the key was refused
        return Walk((head,), None, annotation, None)
    inner = _walk_in(annotation, head, rest, at + 1)
    return None if inner is None else replace(inner, kept=(head, *inner.kept))


def _walk_in(annotation: Any, head: Part, rest: Loc, at: int) -> Walk | None:
    """The rest of a location inside a model's field, a list's item or a mapping's value."""
    origin = get_origin(annotation)
    if _is_model(annotation):
        field = _field(annotation, head)
        if field is None:
            return None
        by = field.discriminator if isinstance(field.discriminator, str) else None
        return _walk(field.annotation, by, rest, at)
    if origin in _SEQUENCES and isinstance(head, int):
        args = get_args(annotation)
        return _walk(args[0] if args else Any, None, rest, at)
    if origin in _MAPPINGS and isinstance(head, str):
        return _walk(get_args(annotation)[-1], None, rest, at)
    return None


def _into_union(members: list[Any], discriminator: str | None, loc: Loc, at: int) -> Walk | None:
    """A union's location names the member first: by its tag where a discriminator picks
    it, else by a label of pydantic's (`list[...]`, `function-after[..., Objective]`)."""
    head, rest = loc[0], loc[1:]
    if discriminator is not None:
        picked = [m for m in members if str(head) in _tags_of(m, discriminator)]
        return next((w for m in picked if (w := _walk(m, None, rest, at + 1))), None)
    if not isinstance(head, str):
        return None
    ordered = sorted(members, key=lambda m: not _label_fits(m, head))
    inner = next((w for m in ordered if (w := _walk(m, None, rest, at + 1))), None)
    return None if inner is None else replace(inner, member_at=at)


def _unwrap(annotation: Any, discriminator: str | None) -> tuple[Any, str | None]:
    """`Annotated[X, Field(discriminator=...)]` -> X and the discriminator."""
    while get_origin(annotation) is Annotated:
        annotation, *metadata = get_args(annotation)
        for meta in metadata:
            if isinstance(meta, FieldInfo) and isinstance(meta.discriminator, str):
                discriminator = meta.discriminator
    return annotation, discriminator


def _members(annotation: Any) -> list[Any]:
    """A union's members without None (pydantic names no member for `X | None`)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for m in get_args(annotation) if m is not type(None)]
    return [annotation]


def _field(model: type[BaseModel], part: Part) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if part in (name, field.alias, field.validation_alias):
            return field
    return None


def _tags_of(member: Any, discriminator: str) -> list[str]:
    member = _unwrap(member, None)[0]
    field = member.model_fields.get(discriminator) if _is_model(member) else None
    if field is None or get_origin(field.annotation) is not Literal:
        return []
    return [str(value) for value in get_args(field.annotation)]


def _label_fits(member: Any, label: str) -> bool:
    member = _unwrap(member, None)[0]
    if _is_model(member):
        return member.__name__ in label and not label.startswith("list[")
    origin = get_origin(member)
    return label.startswith(getattr(origin or member, "__name__", "?"))


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)
