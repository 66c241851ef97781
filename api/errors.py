"""The one place where errors become HTTP responses, all of one JSON shape."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api import error_hints
from api.schemas.errors import ErrorBody, ErrorDetail, ErrorOut
from api.yaml_route import YAML_TYPES, reads_as_yaml
from service.errors import (
    CapReached,
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    Unavailable,
)

_STATUS: dict[type[ServiceError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    InvalidRequest: (422, "invalid_request"),
    Conflict: (409, "conflict"),
    Unavailable: (503, "unavailable"),
    RateLimited: (429, "rate_limited"),
    PayloadTooLarge: (413, "too_large"),
    CapReached: (429, "cap_reached"),
}
_UNION_TAGS = {"float", "int", "categorical"}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorOut(error=ErrorBody(code=code, message=message, details=details or []))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`('body', 'space', 'lr', 'float', 'high')` -> `space.lr.high`."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path") else loc)
    if len(parts) >= 3 and parts[0] == "space" and parts[2] in _UNION_TAGS:
        del parts[2]
    if len(parts) >= 2 and parts[0] in ("sampler", "pruner", "dataset"):
        del parts[1]
    return ".".join(str(p) for p in parts if not _is_union_label(p)) or "body"


def _is_union_label(part: Any) -> bool:
    """Pydantic names union members in locations (`[key]`, `list[...]`); users do not."""
    return isinstance(part, str) and any(c in part for c in "[]()")


def validation_details(
    errors: list[Any], *, body_type: Any = None, document: Any = None
) -> list[ErrorDetail]:
    """One detail per error; `body_type` (the route's body model) lets them name the fields
    the user wrote and the valid ones near a wrong one, `document` the line of bad JSON."""
    return [_detail(e, body_type, document) for e in error_hints.one_per_union(errors, body_type)]


def _detail(error: dict[str, Any], body_type: Any, document: Any) -> ErrorDetail:
    if error.get("type") == "json_invalid":
        position = error.get("loc", ("body", "?"))[-1]
        reason = error.get("ctx", {}).get("error", "JSON decode error")
        where = _json_position(document, position)
        return ErrorDetail(loc="body", msg=f"invalid JSON at {where}: {reason}")
    explained = error_hints.explain(error, body_type)
    if explained is not None:
        return ErrorDetail(loc=explained[0], msg=explained[1])
    loc = error_hints.user_path(error, body_type) or field_path(error.get("loc", ()))
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    # A cross-field rule names the field it breaks at the start of its message
    # (`space.optimizer.choices: ...`): that path, inside `loc`, is the better location.
    named = _NAMED_FIELD.match(msg)
    if named and (loc == "body" or named.group(1).startswith(loc)):
        loc, msg = named.group(1), named.group(2)
    return ErrorDetail(loc=loc, msg=msg)


def _json_position(document: Any, position: Any) -> str:
    """`line 3, column 5 (character 40)` of a position in the document, as far as known."""
    if not isinstance(document, str) or not isinstance(position, int):
        return f"character {position}"
    before = document[:position]
    line_start = before.rfind("\n") + 1
    line = before.count("\n") + 1
    return f"line {line}, column {position - line_start + 1} (character {position})"


_NAMED_FIELD = re.compile(r"^([a-z_]+(?:\.[A-Za-z0-9_]+|\[\d+\])+): (.+)$", re.DOTALL)
_YAML_HINT = "; the body reads as YAML: send it with Content-Type: application/yaml"
_JSON_HINT = "; the body reads as JSON: send it with Content-Type: application/json"


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = validation_details(errors, body_type=_body_type(request), document=exc.body)
    hint = await _body_hint(request, errors, exc.body)
    if hint:
        details = [
            ErrorDetail(loc=d.loc, msg=d.msg + (hint if d.loc == "body" else "")) for d in details
        ]
    summary = "; ".join(f"{d.loc}: {d.msg}" for d in details[:5])
    return error_response(422, "invalid_request", f"invalid request: {summary}", details)


def _body_type(request: Request) -> Any:
    """The type of the route's body, whose fields the errors name (None when it has none)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    return getattr(getattr(field, "field_info", None), "annotation", None)


async def _body_hint(request: Request, errors: list[Any], body: Any) -> str:
    """What to say of a body that could not be read as a document at all: most often YAML
    sent without `Content-Type: application/yaml` (sent as text/plain, as JSON or with no
    type), or JSON sent as text/plain. Nothing for a body that reads as neither, nor for
    one that opens like JSON: broken JSON often reads as YAML (`{"a": }`), but its JSON
    error is the one that says where it broke."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    whole = any(
        e.get("type") == "json_invalid" or tuple(e.get("loc", ())) == ("body",) for e in errors
    )
    if content_type in YAML_TYPES or not whole or not isinstance(body, bytes | str):
        return ""
    try:
        json.loads(body)
    except ValueError:
        opens_like_json = body.lstrip()[:1] in ("{", "[", b"{", b"[")
        if opens_like_json or not await asyncio.to_thread(reads_as_yaml, body):
            return ""
        return _YAML_HINT
    return "" if content_type.endswith("json") else _JSON_HINT


async def _on_service_error(_: Request, exc: Exception) -> JSONResponse:
    status, code = next((v for k, v in _STATUS.items() if isinstance(exc, k)), (500, "internal"))
    field = getattr(exc, "field", None)
    details = [ErrorDetail(loc=field, msg=str(exc))] if field else None
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(math.ceil(exc.retry_after_s))}
    return error_response(status, code, str(exc), details, headers=headers)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # FastAPI's "error parsing the body": bad bytes, bad multipart
        message = f"invalid request body: {exc.detail}"
        return error_response(
            422, "invalid_request", message, [ErrorDetail(loc="body", msg=message)]
        )
    if exc.status_code == 422:  # a body that could not be read as a spec (bad YAML)
        message = str(exc.detail)
        return error_response(
            422, "invalid_request", message, [ErrorDetail(loc="body", msg=message)]
        )
    code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, f"http_{exc.status_code}"
    )
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


def _bad_body(message: str) -> JSONResponse:
    """A body that is not a readable document: the same code as every other 422."""
    return error_response(422, "invalid_request", message, [ErrorDetail(loc="body", msg=message)])


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(HTTPException, _on_http_error)
