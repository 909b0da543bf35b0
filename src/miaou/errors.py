"""The one exception tree of Miaou.

Every failure a caller can see is a :class:`MiaouError`. Each subclass carries a stable
machine-readable ``code`` and the HTTP ``status`` it maps to; the HTTP layer
(``miaou.http.errors``) and, later, the gateway turn it into the wire shape::

    {"code": "...", "message": "...", "errors": {"field": ["reason", ...]}}

Foreign errors (SQLAlchemy, msgspec, argon2, redis, ...) are translated at the boundary where
they are caught; they never reach a client as such.

    MiaouError                      500 internal_error
    ├── InvalidInput                400 invalid_input         (field errors in ``errors``)
    ├── Unauthorized                401 unauthorized
    ├── Forbidden                   403 forbidden
    ├── NotFound                    404 not_found
    ├── Conflict                    409 conflict
    ├── PayloadTooLarge             413 payload_too_large
    ├── RateLimited                 429 rate_limited          (``retry_after`` seconds)
    ├── Unavailable                 503 unavailable
    └── ConfigError                 (startup only)            bad setting, exit code 2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FieldErrors = Mapping[str, Sequence[str]]


class MiaouError(Exception):
    """Base of every error Miaou raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    default_message: str = "Internal error."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: FieldErrors | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in (errors or {}).items()}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "errors": self.errors}


class InvalidInput(MiaouError):
    status = 400
    code = "invalid_input"
    default_message = "The request is not valid."


class Unauthorized(MiaouError):
    status = 401
    code = "unauthorized"
    default_message = "Authentication is required."


class Forbidden(MiaouError):
    status = 403
    code = "forbidden"
    default_message = "You may not do this."


class NotFound(MiaouError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(MiaouError):
    status = 409
    code = "conflict"
    default_message = "This conflicts with the current state."


class PayloadTooLarge(MiaouError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class RateLimited(MiaouError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests; slow down."

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["retry_after"] = round(self.retry_after, 3)
        return body


class Unavailable(MiaouError):
    status = 503
    code = "unavailable"
    default_message = "The service is temporarily unavailable."


class ConfigError(MiaouError):
    """A setting is unknown or invalid; raised before the node starts."""

    code = "config_error"
    default_message = "Invalid configuration."
