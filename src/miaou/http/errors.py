"""Every failure leaves the HTTP API in one shape: ``{"code", "message", "errors"}``.

Our own :class:`~miaou.errors.MiaouError` carries its code and status. Litestar's exceptions
(routing, body decoding, size limits) are translated here, at the boundary, so a client
never sees a framework-specific body.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ExceptionHandlersMap

from miaou.errors import (
    InvalidInput,
    MiaouError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
)
from miaou.types import Send

log = structlog.get_logger("miaou.http")

_STATUS_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}
_AT_KEY = re.compile(r" - at `\$\.?([^`]*)`$")


async def send_error(error: MiaouError, send: Send) -> None:
    """Answer ``error`` on a raw ASGI ``send``, for the layers in front of the framework
    (rate limits, the fast send path): the same bytes :func:`error_response` makes
    Litestar send."""
    body = msgspec.json.encode(error.to_dict())
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if isinstance(error, RateLimited):
        headers.append((b"retry-after", _retry_after(error).encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _retry_after(error: RateLimited) -> str:
    return str(max(1, math.ceil(error.retry_after)))


def error_response(error: MiaouError, headers: dict[str, str] | None = None) -> Response[Any]:
    headers = dict(headers or {})
    if isinstance(error, RateLimited):
        headers["Retry-After"] = _retry_after(error)
    return Response(
        content=error.to_dict(),
        status_code=error.status,
        headers=headers,
        media_type=MediaType.JSON,
    )


def _validation_error(exc: ValidationException) -> MiaouError:
    """msgspec decode failures -> field errors, e.g. unknown or missing fields."""
    fields: dict[str, list[str]] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "is invalid"))
        key = item.get("key")
        at = _AT_KEY.search(message)
        if at:
            key = key or at[1]
            message = message[: at.start()]
        unknown = re.match(r"Object contains unknown field `([^`]+)`", message)
        if unknown:
            key, message = unknown[1], "is not a known field"
        fields.setdefault(str(key or "body"), []).append(message)
    return InvalidInput("The request body is not valid.", errors=fields)


def _to_miaou(exc: Exception) -> MiaouError:
    if isinstance(exc, MiaouError):
        return exc
    if isinstance(exc, ValidationException):
        return _validation_error(exc)
    if isinstance(exc, RequestEntityTooLarge):
        return PayloadTooLarge()
    if isinstance(exc, NotFoundException):
        return NotFound("No such route." if "route" in str(exc.detail).lower() else None)
    if isinstance(exc, MethodNotAllowedException):
        error = MiaouError("This method is not allowed here.", code="method_not_allowed")
        error.status = 405
        return error
    if isinstance(exc, HTTPException):
        status = exc.status_code
        error = MiaouError(str(exc.detail) or None, code=_STATUS_CODES.get(status, "error"))
        error.status = status
        return error
    return MiaouError()


def translate(exc: Exception, route: str | None) -> MiaouError:
    """What a client is told of ``exc``; a failure of ours (5xx) is logged with its trace."""
    error = _to_miaou(exc)
    if error.status >= 500:
        log.error("unhandled_error", route=route, error=type(exc).__name__, exc_info=exc)
    return error


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    error = translate(exc, request.scope.get("path_template"))
    headers = exc.headers if isinstance(exc, HTTPException) and exc.headers else None
    return error_response(error, headers)


exception_handlers: ExceptionHandlersMap = {Exception: handle}
