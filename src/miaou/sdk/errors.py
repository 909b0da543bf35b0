"""Errors the SDK raises: one class per failure the node reports, carrying its shape."""

from __future__ import annotations


class ApiError(Exception):
    """The node answered with an error: ``{"code", "message", "errors"}`` and a status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or {}
        self.headers = headers or {}


class RateLimitedError(ApiError):
    """429 after the client's own retries were used up (or retries are off)."""

    @property
    def retry_after(self) -> float:
        return float(self.headers.get("retry-after", "1"))


class GatewayError(Exception):
    """The gateway connection failed: a refused handshake, a malformed frame, no READY in
    time, a lost connection. ``code`` is the WebSocket close code when there was one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class GatewayAuthError(GatewayError):
    """The node closed with 4004: the token is not valid. The client does not retry it."""


class GatewayClosed(GatewayError):
    """The gateway client is closed: by :meth:`GatewayClient.close`, or it gave up
    reconnecting (``reconnect=False`` or ``max_reconnects`` used up)."""
