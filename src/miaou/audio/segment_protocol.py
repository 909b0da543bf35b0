"""uvicorn's HTTP protocol, answering repeat segment requests itself (``Config(http=...)``).

The cheapest tier of :mod:`miaou.audio.fast_media`: when a request's headers are parsed
(httptools' ``on_headers_complete`` callback) and it is a plain ``GET`` of a segment whose
public lookup is cached (``media_files``, read through ``lookup_refresh``) and whose
answer is built in memory (``segment_cache``), the answer is written to the
transport there and then: no ASGI scope, no task, no send/receive coroutines. Anything
else is handed to uvicorn's own code unchanged, as are requests that arrive while an
earlier one on the connection is still being answered (pipelining keeps its order),
requests that ask to close the connection or to upgrade it, HTTP/1.0, ``HEAD``, and any
request while the connection's write buffer is above its high-water mark (the ASGI path
then waits for the client to read).

What is relied on in uvicorn's ``HttpToolsProtocol`` (an internal class; its version range
is pinned in pyproject.toml and ``tests/integration/test_fast_segments.py`` exercises it):
the parser callbacks, ``url``, ``headers``, ``cycle``, ``flow``, ``client``,
``server_state.default_headers``, and ``on_response_complete`` (which counts the request,
resumes reading and arms the keep-alive timer, as after any answer).

Every other request's cycle writes through a :class:`~miaou.http.head_held.HeadHeldTransport`
(the answer's head and body in one write).

The per-IP rate check is the node's own (the ``api`` group), run synchronously
(``RateLimiter.check_now``, buckets in memory). With buckets in Redis (``redis_url``) and
rate limits on, this tier stands aside and the ASGI tier checks them.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from miaou.audio import media_files, segment_cache
from miaou.audio.fast_media import PASS_HEADERS, ROUTE, SEGMENT_PATH
from miaou.audio.lookup_refresh import LookupRefresher, refresher
from miaou.http.head_held import HeadHeldTransport
from miaou.http.ratelimit import client_ip

if TYPE_CHECKING:
    from miaou.app import Node

_SEGMENT = re.compile(SEGMENT_PATH.encode())
_OK = STATUS_LINE[200]


class _Prefix:
    """The status line and uvicorn's default headers (its Date, refreshed every second
    in a new list), encoded once per list."""

    __slots__ = ("bytes", "source")

    def __init__(self) -> None:
        self.source: list[tuple[bytes, bytes]] | None = None
        self.bytes = b""

    def of(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        if headers is not self.source:
            self.bytes = _OK + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
            self.source = headers
        return self.bytes


class SegmentProtocol(HttpToolsProtocol):
    # Set on the subclass made by ``protocol_class``.
    node: Node
    answers: segment_cache.Answers
    lookups: LookupRefresher
    prefix: _Prefix
    enabled: bool
    limited: bool
    served: Any  # prometheus children: requests_total and request_duration
    durations: Any

    # The message being parsed was answered here: its remaining callbacks are ours.
    _answered = False

    def on_headers_complete(self) -> None:
        if not (self.enabled and self._answer()):
            previous = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not previous and cycle is not None:  # not an upgrade (WebSocket)
                cycle.transport = HeadHeldTransport(self.transport, cycle)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._answered:
            self._answered = False
            return
        super().on_message_complete()

    def _answer(self) -> bool:
        """Write the answer if this request may have it from memory; False (nothing
        written) for uvicorn to carry on as usual."""
        match = _SEGMENT.fullmatch(self.url)
        if match is None:
            return False
        start = time.perf_counter()
        parser = self.parser
        cycle = self.cycle
        if (
            parser.get_method() != b"GET"
            or (cycle is not None and not cycle.response_complete)
            or self.flow.write_paused
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
        ):
            return False
        for name, _ in self.headers:
            if name in PASS_HEADERS:
                return False
        file = match[3].decode()
        if not media_files.is_media(file):
            return False
        sha256 = self.lookups.lookup(int(match[1]), int(match[2]), file)
        if sha256 is None:
            return False
        answer = self.answers.get(sha256, file)
        if answer is None or (self.limited and not self._allowed()):
            return False
        self.transport.writelines(
            (self.prefix.of(self.server_state.default_headers), answer.head, answer.body)
        )
        self._answered = True
        self.served.inc()
        self.durations.observe(time.perf_counter() - start)
        self.on_response_complete()
        return True

    def _allowed(self) -> bool:
        """The per-IP check of the ``api`` group (False: the full route answers 429)."""
        limits = self.node.rate_limits
        scope = {"headers": self.headers, "client": self.client}
        ip = client_ip(scope, limits.settings.trust_proxy)
        if not limits.limiter.in_memory:
            return False  # buckets elsewhere: the ASGI path checks them
        verdict = limits.limiter.check_now("api", ip=ip)
        return verdict is None or verdict.allowed


def protocol_class(node: Node) -> type[SegmentProtocol]:
    """A SegmentProtocol class bound to ``node``, for ``uvicorn.Config(http=...)``."""
    settings = node.settings
    limited = settings.ratelimit.enabled
    labels = ("GET", ROUTE, "200")
    attributes = {
        "node": node,
        "answers": segment_cache.of(node),
        "lookups": refresher(node),
        "prefix": _Prefix(),
        "enabled": (
            settings.media_memory_cache_bytes > 0
            and not settings.media_accel_redirect
            and not (limited and settings.redis_url)
        ),
        "limited": limited,
        "served": node.metrics.requests_total.labels(*labels),
        "durations": node.metrics.request_duration.labels(*labels),
    }
    return type("NodeSegmentProtocol", (SegmentProtocol,), attributes)
