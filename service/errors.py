"""Errors named for what the caller should do; `api` maps them to HTTP in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors the service raises on purpose."""


class NotFound(ServiceError):
    """The study or trial does not exist (or is not the caller's): do not retry."""


class InvalidRequest(ServiceError):
    """The request breaks a rule of the service: fix it and resend."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class Conflict(ServiceError):
    """The study's current state does not allow this: check its state first."""


class Unavailable(ServiceError):
    """A backing part (database, Ray) is not reachable: retry later."""


class RateLimited(ServiceError):
    """Too many requests of this kind: wait `retry_after_s`, then retry."""

    def __init__(self, message: str, *, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PayloadTooLarge(ServiceError):
    """The request carries more data than this service accepts: send less."""


class CapReached(ServiceError):
    """The tenant holds as many of something as its cap allows: end one of them (or ask the
    operator to raise the setting named in the message), then retry."""
