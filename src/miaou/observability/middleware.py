"""Pure ASGI middleware: request ids, HTTP metrics and the access log.

It wraps the whole Litestar app (outermost layer, handed to uvicorn), so it sees every
request, including those Litestar rejects before routing (404, 405, bad host).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any, Protocol

import structlog

from miaou.observability.logging import get_logger
from miaou.observability.metrics import UNMATCHED_ROUTE, Metrics

LOGGER_NAME = "miaou.http"

# Any-typed on purpose: Litestar, uvicorn and httpx each declare their own (TypedDict)
# ASGI types, and this middleware must fit between all of them.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: Route label of a Litestar ``is_mount`` ASGI app, for which Litestar sets an empty template.
MOUNT_ROUTE = "<mount>"

#: Scraped / probed every few seconds: logged at debug so they don't drown the access log.
DEFAULT_QUIET_PATHS = frozenset({"/metrics", "/healthz"})

# Caps the logged path: it is client-controlled and may be very long.
_MAX_LOGGED_PATH = 512
# /api/v1/tracks/{id}/media/{version}.{expires}.{signature}/...: see miaou.audio.playback.
_SIGNED_MEDIA = re.compile(r"(/media/)[0-9]+\.[0-9]+\.[0-9a-f]+")


class _Logger(Protocol):
    def debug(self, event: str, **kw: Any) -> Any: ...
    def info(self, event: str, **kw: Any) -> Any: ...
    def error(self, event: str, **kw: Any) -> Any: ...


def logged_path(path: str) -> str:
    """The path as logged: cut to a bound, capabilities in it masked (a signed media URL
    grants a private track to whoever holds it, so it must not land in a log)."""
    path = path[:_MAX_LOGGED_PATH]
    return _SIGNED_MEDIA.sub(r"\1<signed>", path) if "/media/" in path else path


class _FreshIds:
    """Request ids unique across processes and restarts: a random prefix per process (made
    again in a forked child) and a counter. A fifth of a uuid4's cost; a request id names a
    request in the logs, it grants nothing, so it need not be unguessable."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._next = itertools.count(1).__next__

    def __call__(self) -> str:
        return f"{self._prefix}{self._next():016x}"


_fresh_id = _FreshIds()


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if it is safe to echo and log, else a fresh one."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return _fresh_id()


def _route(scope: Scope) -> str:
    # Set by Litestar's router on this very scope dict once a route matched; absent when
    # routing failed. Never fall back to the raw path: that would make label cardinality
    # unbounded (ids, typos, scanners).
    template = scope.get("path_template")
    if template is None:
        return UNMATCHED_ROUTE
    return str(template) or MOUNT_ROUTE


class ObservabilityMiddleware:
    """Request id, metrics and one structured log line per HTTP request.

    The request id is echoed in the ``x-request-id`` response header, stored in
    ``scope["state"]["request_id"]`` (Litestar: ``request.state.request_id``) and bound in
    structlog's contextvars so handlers' own log lines carry it too.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        logger: _Logger | None = None,
        quiet_paths: Collection[str] = DEFAULT_QUIET_PATHS,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.logger: _Logger = logger if logger is not None else get_logger(LOGGER_NAME)
        self._stdlib = logging.getLogger(LOGGER_NAME) if logger is None else None
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # websocket and lifespan: untouched.
            await self.app(scope, receive, send)
            return

        request_id = _request_id(scope.get("headers") or [])
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        # Captured now: Litestar rewrites scope["path"] for mounted apps. The ASGI path never
        # includes the query string, which may hold tokens.
        path = logged_path(str(scope.get("path", "")))
        method = str(scope.get("method", ""))
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status: int | None = None

        async def send_with_request_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (k, v)
                    for k, v in message.get("headers") or ()
                    if k.lower() != REQUEST_ID_HEADER
                ]
                headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        failed = False
        start = time.perf_counter()
        try:
            with (
                self.metrics.requests_in_progress.track_inprogress(),
                structlog.contextvars.bound_contextvars(request_id=request_id),
            ):
                await self.app(scope, receive, send_with_request_id)
        except BaseException:
            failed = True
            raise
        finally:
            duration = time.perf_counter() - start
            # Raised, or returned without ever starting a response (uvicorn then sends 500).
            final_status = 500 if failed or status is None else status
            route = _route(scope)
            self.metrics.observe_request(method, route, final_status, duration)
            self._log(request_id, method, route, path, final_status, duration, scope)

    def _dropped(self, level: int) -> bool:
        """Whether structlog would drop the line at ``level`` (its ``filter_by_level`` in
        the chain, the level off), asked before the call: a dropped line cost ~5 % of a
        send's CPU through structlog's proxy and processors. A capture in tests
        (``capture_logs``) replaces the chain, and then every line is made."""
        return (
            self._stdlib is not None
            and structlog.stdlib.filter_by_level in structlog.get_config()["processors"]
            and not self._stdlib.isEnabledFor(level)
        )

    def _log(
        self,
        request_id: str,
        method: str,
        route: str,
        path: str,
        status: int,
        duration: float,
        scope: Scope,
    ) -> None:
        if status >= 500:
            level, log = logging.ERROR, self.logger.error
        elif path in self.quiet_paths:
            level, log = logging.DEBUG, self.logger.debug
        else:
            level, log = logging.INFO, self.logger.info
        if self._dropped(level):
            return
        client = scope.get("client")
        log(
            "request",
            request_id=request_id,
            method=method,
            route=route,
            path=path,
            status=status,
            duration_ms=round(duration * 1000, 2),
            client_ip=client[0] if client else None,
        )
