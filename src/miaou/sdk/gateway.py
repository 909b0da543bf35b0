"""Gateway client: one WebSocket carrying every live event, with auto-reconnect and RESUME.

The protocol is described in ``docs/gateway.md``. Usage::

    async with Client("http://127.0.0.1:8080") as client:
        await client.login("alice", "correct horse battery")
        async with await client.gateway() as gw:          # connect(): HELLO, IDENTIFY, READY
            print(gw.session_id, gw.positions)
            message = await client.send_message(channel_id, "hi")
            event = await gw.wait_for("MESSAGE_CREATE", lambda e: e.d["id"] == message.id)
            async for event in gw.events():                # until gw.close()
                ...

Behaviour, in short:

- **Positions.** ``positions`` holds, per stream (``st``), the highest position (``s``) the
  client received. A dispatch whose position is not above it is a replayed duplicate and is
  dropped (counted in ``duplicates``).
- **Reconnect.** A lost connection, a close code other than 4004, a RECONNECT (op 7), a
  malformed frame or a missed HEARTBEAT_ACK make the client reconnect with exponential
  backoff (from ``min_backoff``, 0.1 s, doubling up to ``max_backoff``, with jitter) and
  send RESUME with its positions; the node replays what was missed. ``max_reconnects``
  bounds the attempts of one outage (None: unbounded); ``reconnects`` counts the
  successful ones. Close code 4004 (authentication failed) is final: consumers get
  :class:`GatewayAuthError`.
- **Invalid session.** On INVALID_SESSION (op 9) the client delivers a synthetic
  ``SESSION_INVALIDATED`` event (``d`` = ``{"reason", "previous_positions"}``), then IDENTIFYs
  afresh: the application should re-fetch its state over REST. The same happens, with
  ``reason`` ``"resume_too_large"`` / ``"resume_refused"``, when the positions are too many
  for a RESUME frame (64 KiB) or the node refuses the RESUME as malformed (close 4002).
- **Bounded queue.** Events wait in a queue of at most ``queue_size``; when the application
  does not keep up, the *oldest* events are dropped and ``dropped`` counts them (an app that
  sees it grow should re-fetch over REST). Memory never grows without bound.
- **Consumers.** :meth:`GatewayClient.events` (iterator, ends on :meth:`close`),
  :meth:`GatewayClient.next_event` and :meth:`GatewayClient.wait_for` (removes the first
  matching event from the queue and leaves the others in place). When the client stops
  for good, consumers get the buffered events first, then the error
  (:class:`GatewayAuthError` or :class:`GatewayClosed`).

The protocol bookkeeping lives in :class:`GatewayState` (sans-I/O: frames in, actions out)
and :class:`EventQueue`; :class:`GatewayClient` only moves frames between them and a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from miaou.sdk.errors import GatewayAuthError, GatewayClosed, GatewayError
from miaou.sdk.gateway_state import (
    CLOSE_AUTH_FAILED,
    CLOSE_NORMAL,
    CLOSE_RECONNECTING,
    MAX_FRAME_SIZE,
    PRESENCE_STATUSES,
    USER_AGENT,
    Action,
    Deliver,
    Established,
    EventQueue,
    GatewayState,
    Op,
    Reconnect,
    Send,
    StartHeartbeat,
    backoff_delay,
    decode_frame,
    encode_frame,
    gateway_url,
)
from miaou.sdk.models import GatewayEvent

__all__ = [
    "PRESENCE_STATUSES",
    "Deliver",
    "Established",
    "EventQueue",
    "GatewayClient",
    "GatewayState",
    "Op",
    "Reconnect",
    "Send",
    "StartHeartbeat",
    "backoff_delay",
    "decode_frame",
    "encode_frame",
    "gateway_url",
]

log = logging.getLogger("miaou.sdk.gateway")


# -- the socket layer -----------------------------------------------------------------------
@dataclass(eq=False)
class _Connection:
    """One socket and the tasks serving it."""

    ws: ClientConnection
    established: asyncio.Future[bool]  # READY / RESUMED received (result: resumed)
    ended: asyncio.Future[GatewayError]  # why it ended (the first cause wins)
    reader: asyncio.Task[None] | None = None
    heartbeat: asyncio.Task[None] | None = None
    #: Opened to replace a lost one: counted in ``reconnects`` once READY / RESUMED came.
    replaces: bool = False

    def end(self, cause: GatewayError) -> None:
        if not self.ended.done():
            self.ended.set_result(cause)


class GatewayClient:
    """An asyncio client of the Miaou gateway; see the module documentation.

    ``connect_timeout`` bounds the WebSocket opening handshake, ``ready_timeout`` the wait
    for HELLO and READY/RESUMED (including a RESUME's replay) on each connection;
    ``max_frame_size`` is the largest frame accepted (a bigger one drops the connection).
    ``presence`` is sent in IDENTIFY (and set again after a RESUME).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        heartbeat_jitter: bool = True,
        reconnect: bool = True,
        max_backoff: float = 10.0,
        min_backoff: float = 0.1,
        queue_size: int = 10_000,
        max_reconnects: int | None = None,
        presence: str | None = None,
        connect_timeout: float = 10.0,
        ready_timeout: float = 30.0,
        close_timeout: float = 2.0,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("min_backoff must be positive and at most max_backoff")
        if max_backoff <= 0 or connect_timeout <= 0 or ready_timeout <= 0 or close_timeout <= 0:
            raise ValueError("max_backoff and timeouts must be positive")
        if max_reconnects is not None and max_reconnects < 0:
            raise ValueError("max_reconnects must be None or >= 0")
        if max_frame_size < 1024:
            raise ValueError("max_frame_size must be at least 1 KiB")
        self.url = url
        self.heartbeat_jitter = heartbeat_jitter
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.min_backoff = min_backoff
        self.max_reconnects = max_reconnects
        self.connect_timeout = connect_timeout
        self.ready_timeout = ready_timeout
        self.close_timeout = close_timeout
        self.max_frame_size = max_frame_size
        self.reconnects = 0  # successful reconnections since connect()
        self._state = GatewayState(token, presence=presence)
        self._queue = EventQueue(queue_size)
        self._random = random.Random()  # noqa: S311 - jitter only
        self._conn: _Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    # -- state ------------------------------------------------------------------------------
    @property
    def session_id(self) -> str | None:
        return self._state.session_id

    @property
    def user(self) -> dict[str, Any] | None:
        return self._state.user

    @property
    def ready(self) -> dict[str, Any] | None:
        """The last READY payload."""
        return self._state.ready

    @property
    def positions(self) -> dict[str, int]:
        """Per stream, the highest position received (a copy)."""
        return dict(self._state.positions)

    @property
    def duplicates(self) -> int:
        """Replayed dispatches dropped because their position was not new."""
        return self._state.duplicates

    @property
    def dropped(self) -> int:
        """Events dropped, oldest first, because the queue was full."""
        return self._queue.dropped

    @property
    def pending(self) -> int:
        """Events waiting in the queue."""
        return len(self._queue)

    @property
    def connected(self) -> bool:
        """True while a connection is open and past READY / RESUMED."""
        conn = self._conn
        return conn is not None and conn.established.done() and not conn.ended.done()

    @property
    def closed(self) -> bool:
        """True once the client stopped for good (closed, auth failed, gave up)."""
        return self._closed or self._queue.closed

    # -- lifecycle --------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the socket, IDENTIFY and wait for READY; then keep the session alive in the
        background. Raises :class:`GatewayAuthError` (4004) or :class:`GatewayError` if this
        first connection fails (it is not retried). Connecting twice is a no-op."""
        if self.closed:
            raise GatewayClosed("the gateway client is closed")
        if self._runner is not None:
            return
        conn = await self._establish()
        self._runner = asyncio.create_task(self._run(conn), name="miaou-gateway")

    async def close(self) -> None:
        """Close with 1000, stop every task; consumers' :meth:`events` ends. Idempotent."""
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._teardown(conn, CLOSE_NORMAL, "client closed")
        self._queue.close()

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- consuming events -------------------------------------------------------------------
    async def events(self) -> AsyncIterator[GatewayEvent]:
        """Every event, in order; ends after :meth:`close`, raises if the client stopped
        otherwise (:class:`GatewayAuthError`, :class:`GatewayClosed`)."""
        while True:
            try:
                event = await self._queue.get()
            except GatewayClosed:
                if self._queue.error is None:
                    return
                raise
            yield event

    async def next_event(self, timeout: float | None = 30.0) -> GatewayEvent:  # noqa: ASYNC109
        """The next event; TimeoutError after ``timeout`` seconds (None: wait forever)."""
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    async def wait_for(
        self,
        type_: str,
        predicate: Callable[[GatewayEvent], bool] | None = None,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109 - the Discord-style API
    ) -> GatewayEvent:
        """The first event named ``type_`` (and matching ``predicate``), already queued or
        yet to come; it is removed from the queue, the others stay. TimeoutError after
        ``timeout`` seconds."""

        def match(event: GatewayEvent) -> bool:
            return event.t == type_ and (predicate is None or predicate(event))

        async with asyncio.timeout(timeout):
            return await self._queue.find(match)

    # -- sending ----------------------------------------------------------------------------
    async def send_presence(self, status: str) -> None:
        """Set presence (``online``, ``idle``, ``dnd``, ``invisible``). While reconnecting it
        is remembered and sent once the session is back."""
        if self.closed:
            raise GatewayClosed("the gateway client is closed")
        frame = self._state.set_presence(status)
        conn = self._conn
        if frame is not None and conn is not None and not conn.ended.done():
            # If the socket just died the reader sees it too; presence is sent after RESUMED.
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(encode_frame(frame))

    # -- internals --------------------------------------------------------------------------
    async def _establish(self, *, replaces: bool = False) -> _Connection:
        """Open a socket and run the handshake up to READY / RESUMED (``replaces``: a
        connection that was lost)."""
        try:
            ws = await connect(
                self.url,
                compression=None,  # the node never compresses
                max_size=self.max_frame_size,
                ping_interval=None,  # the protocol's own heartbeats keep it alive
                open_timeout=self.connect_timeout,
                close_timeout=self.close_timeout,
                user_agent_header=USER_AGENT,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise GatewayError(f"cannot open {self.url}: {exc!r}") from exc
        loop = asyncio.get_running_loop()
        conn = _Connection(ws, loop.create_future(), loop.create_future(), replaces=replaces)
        self._state.on_connect()
        self._conn = conn
        conn.reader = asyncio.create_task(self._read(conn), name="miaou-gateway-reader")
        try:
            waited: list[asyncio.Future[Any]] = [conn.established, conn.ended]
            await asyncio.wait(
                waited,
                timeout=self.ready_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except BaseException:
            await self._teardown(conn, CLOSE_NORMAL if self._closed else CLOSE_RECONNECTING)
            raise
        if conn.established.done():
            return conn
        cause = (
            conn.ended.result()
            if conn.ended.done()
            else GatewayError(f"no READY within {self.ready_timeout} s")
        )
        await self._teardown(conn, CLOSE_RECONNECTING, "handshake failed")
        raise cause

    async def _read(self, conn: _Connection) -> None:
        try:
            while True:
                frame = decode_frame(await conn.ws.recv())
                for action in self._state.on_frame(frame):
                    await self._apply(conn, action)
                if conn.ended.done():
                    return
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            for action in self._state.on_close(code):
                if isinstance(action, Deliver):
                    self._queue.put(action.event)
            if code == CLOSE_AUTH_FAILED:
                conn.end(GatewayAuthError(f"authentication failed: {reason}", code=code))
            else:
                conn.end(GatewayError(f"connection closed: {exc}", code=code))
        except GatewayError as exc:  # a malformed frame: drop the connection and resume
            conn.end(exc)
        except (OSError, WebSocketException) as exc:
            conn.end(GatewayError(f"connection failed: {exc!r}"))

    async def _apply(self, conn: _Connection, action: Action) -> None:
        if isinstance(action, Deliver):
            self._queue.put(action.event)
        elif isinstance(action, Send):
            await conn.ws.send(encode_frame(action.frame))
        elif isinstance(action, StartHeartbeat):
            if conn.heartbeat is None:
                conn.heartbeat = asyncio.create_task(
                    self._beat(conn, action.interval), name="miaou-gateway-heartbeat"
                )
        elif isinstance(action, Established):
            if not conn.established.done():
                # Counted here, with the READY / RESUMED just queued: whoever reads that
                # event finds the reconnection counted (events replayed before it may be
                # read sooner).
                if conn.replaces:
                    self.reconnects += 1
                conn.established.set_result(action.resumed)
        else:
            conn.end(GatewayError(action.reason))

    async def _beat(self, conn: _Connection, interval: float) -> None:
        delay = interval * (self._random.random() if self.heartbeat_jitter else 1.0)
        try:
            while not conn.ended.done():
                await asyncio.sleep(delay)
                delay = interval
                action = self._state.heartbeat_tick()
                if isinstance(action, Reconnect):
                    conn.end(GatewayError(action.reason))
                    return
                await conn.ws.send(encode_frame(action.frame))
        except (ConnectionClosed, OSError):
            return  # the reader reports why

    async def _run(self, conn: _Connection) -> None:
        """Supervise the session: when a connection ends, reconnect and resume."""
        try:
            while True:
                cause = await asyncio.shield(conn.ended)
                await self._teardown(conn, CLOSE_RECONNECTING, "reconnecting")
                if isinstance(cause, GatewayAuthError):
                    raise cause
                if not self.reconnect:
                    raise GatewayClosed(f"connection lost: {cause}", code=cause.code) from cause
                log.info("gateway connection lost (%s); reconnecting", cause)
                conn = await self._reconnect_with_backoff()
        except GatewayError as exc:
            log.warning("gateway client stopped: %s", exc)
            self._queue.close(exc)
        except Exception as exc:  # a bug: stop visibly rather than die silently
            log.exception("gateway client failed")
            self._queue.close(GatewayClosed(f"gateway client failed: {exc!r}"))

    async def _reconnect_with_backoff(self) -> _Connection:
        attempt = 0
        while True:
            if self.max_reconnects is not None and attempt >= self.max_reconnects:
                raise GatewayClosed(f"gave up after {attempt} reconnect attempts")
            delay = backoff_delay(
                attempt, base=self.min_backoff, cap=self.max_backoff, jitter=self._random.random()
            )
            await asyncio.sleep(delay)
            attempt += 1
            try:
                conn = await self._establish(replaces=True)
            except GatewayAuthError:
                raise
            except GatewayError as exc:
                log.info("gateway reconnect attempt %d failed: %s", attempt, exc)
                continue
            return conn

    async def _teardown(self, conn: _Connection, code: int, reason: str = "") -> None:
        if self._conn is conn:
            self._conn = None
        tasks = [t for t in (conn.reader, conn.heartbeat) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.end(GatewayClosed("connection torn down"))
        try:
            await conn.ws.close(code, reason)  # bounded by close_timeout
        except Exception:  # noqa: S110 - the socket is discarded either way
            pass
        except BaseException:  # cancelled mid-close: do not leave the socket open
            conn.ws.transport.abort()
            raise
