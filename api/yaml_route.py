"""A route class that reads YAML bodies as JSON, so one schema serves both."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import yaml
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


class _JsonFromYamlRequest(Request):
    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            raw = await super().body()
            self._body = json.dumps(_load_yaml(raw), default=str).encode()
        return self._body


def _load_yaml(raw: bytes) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise HTTPException(422, f"invalid YAML body: {exc}") from exc


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
