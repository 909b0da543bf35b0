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
