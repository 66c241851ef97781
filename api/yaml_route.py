"""A route class that reads YAML bodies as JSON, so one schema serves both.

YAML is parsed off the event loop by a loader that refuses aliases and bounds the
nesting depth and the number of nodes: a 400-byte "billion laughs" body would
otherwise expand to gigabytes while every other request waited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import yaml
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
MAX_DEPTH = 64
MAX_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases, with at most MAX_DEPTH levels and MAX_NODES nodes."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in a study spec", mark
            )
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"a spec nests at most {MAX_DEPTH} levels and holds at most {MAX_NODES} values",
                mark,
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _JsonFromYamlRequest(Request):
    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            raw = await super().body()
            self._body = await asyncio.to_thread(_yaml_to_json, raw)
        return self._body


def _yaml_to_json(raw: bytes) -> bytes:
    try:
        loaded = yaml.load(raw, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise HTTPException(422, _invalid(exc)) from exc
    return json.dumps(loaded, default=str).encode()


def _invalid(exc: yaml.YAMLError) -> str:
    """`invalid YAML body at line 4, column 15: <problem> (<context> at line 1, column 7)`,
    on one line: PyYAML's own text spans lines and quotes the input."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return "invalid YAML body: " + " ".join(str(exc).split())
    said = f"invalid YAML body at {_line(exc.problem_mark)}: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        said += f" ({exc.context} at {_line(exc.context_mark)})"
    return said


def _line(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def reads_as_yaml(raw: bytes | str) -> bool:
    """Whether a body that is no JSON reads as a YAML mapping: a spec sent without its
    `Content-Type: application/yaml`. Parsed as a spec would be (bounded, no aliases)."""
    try:
        return isinstance(yaml.load(raw, Loader=_BoundedLoader), dict)  # noqa: S506 - SafeLoader
    except yaml.YAMLError:
        return False


class YamlOrJsonRoute(APIRoute):
    """Bodies sent as `application/yaml` are parsed with `yaml.safe_load`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type in YAML_TYPES:
                scope = dict(request.scope)
                scope["headers"] = [
                    (k, b"application/json" if k == b"content-type" else v)
                    for k, v in request.scope["headers"]
                ]
                request = _JsonFromYamlRequest(scope, request.receive)
            return await handler(request)

        return route
