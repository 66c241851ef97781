"""The one shape of every error response, and the error answers routes declare."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    loc: str
    msg: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorOut(BaseModel):
    """The one shape of every error response."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (401, "missing or wrong bearer token (when HPO_API_TOKENS is set)"),
        (404, "no such study, trial or data set (or another tenant's)"),
        (409, "the study's state does not allow this"),
        (413, "request body too large"),
        (422, "invalid request; details name each field"),
        (429, "too many submissions (see Retry-After), or a tenant cap reached"),
        (503, "database or Ray unreachable"),
    )
}
