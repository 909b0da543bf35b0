"""The asyncio side of a gateway connection: uvicorn hands us the socket, we move bytes.

uvicorn serves HTTP and, on a WebSocket upgrade request, builds ``Config.ws`` with
``(config=, server_state=, app_state=)``, calls ``connection_made(transport)`` and
``data_received(<the request re-serialised>)``, then points the transport at it. That
contract is internal to uvicorn, so its version range is pinned in pyproject.toml and
tests/integration/test_gateway.py exercises it.

A :class:`Session` is the asyncio Protocol itself (one object per connection keeps the idle
cost low): it feeds bytes to the sans-I/O :class:`GatewayConnection`, writes what it
returns, files its deadline with the gateway's :class:`Deadlines`, and runs IDENTIFY /
RESUME through :mod:`miaou.gateway.sessions`. Broadcast frames reach it from the hub once per
loop pass: alone, with :meth:`write_now`, or straight to :attr:`direct` (its transport, while
it is READY with nothing held or queued: :mod:`miaou.gateway.audience`); several, queued with
:meth:`push` and written together by :meth:`write_pushed`, one write per connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import structlog

from miaou.gateway.audience import Audience
from miaou.gateway.deadlines import slot_start_ms
from miaou.gateway.frames import CloseCode
from miaou.gateway.protocol import GatewayConnection, Identify, PresenceUpdate, Resume, State

if TYPE_CHECKING:
    from miaou.gateway.sessions import Gateway

log = structlog.get_logger("miaou.gateway")


def loop_ms(loop: asyncio.AbstractEventLoop) -> int:
    return int(loop.time() * 1000)


class Session(asyncio.Protocol):
    """One WebSocket connection to the gateway (uvicorn's ``ws`` protocol class)."""

    gateway: Gateway  # set on the subclass made by ``protocol_class``

    __slots__ = (
        "_armed",
        "_connections",
        "_dirty",
        "_loop",
        "conn",
        "counted",
        "direct",
        "held",
        "session_id",
        "status",
        "streams",
        "transport",
        "user_id",
    )

    def __init__(self, config: Any = None, server_state: Any = None, app_state: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._connections: set[Any] | None = (
            server_state.connections if server_state is not None else None
        )
        self.transport: asyncio.Transport | None = None
        self.conn = GatewayConnection(
            loop_ms(self._loop), heartbeat_ms=self.gateway.settings.gateway_heartbeat_ms
        )
        self.user_id = 0
        self.session_id = ""
        self.status = "online"
        #: Counted in the presence book (from READY / RESUMED until the connection ends).
        self.counted = False
        #: The streams it follows (a tuple: a handful, and a set costs 216 bytes).
        self.streams: tuple[str, ...] = ()
        #: While READY or a replay is built: live frames wait here (None when not holding).
        self.held: list[bytes] | None = None
        self._dirty = False
        #: The transport, while a broadcast frame may be written to it straight away (READY,
        #: nothing held or queued): what an Audience writes through (see audience.py).
        self.direct: asyncio.Transport | None = None
        #: The deadline slot this session is filed in (see ``miaou.gateway.deadlines``).
        self._armed: int | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport has the Transport methods but is not a subclass.
        self.transport = cast(asyncio.Transport, transport)
        self.gateway.connections += 1
        if self._connections is not None:
            self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data, loop_ms(self._loop))
        for request in self.conn.requests():
            if isinstance(request, Identify | Resume):
                self.gateway.spawn(self.gateway.start(self, request))
            elif isinstance(request, PresenceUpdate):
                self.gateway.presence(self, request.status)
        self.flush()

    def eof_received(self) -> bool | None:
        self.conn.receive_eof(loop_ms(self._loop))
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.connections -= 1
        self._armed = None  # its filing is stale from now on
        if self._connections is not None:
            self._connections.discard(self)
        self.transport = None
        self._direct_is(None)
        self.gateway.ended(self)

    # -- uvicorn's shutdown hook -----------------------------------------------------------
    def shutdown(self) -> None:
        self.conn.reconnect(loop_ms(self._loop))
        self.flush()

    # -- output ----------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.transport is not None and self.conn.state is not State.CLOSED

    def hold(self) -> None:
        """Keep live frames in :attr:`held` (READY or a replay is being built)."""
        self.held = []
        self._direct_is(None)

    def push(self, frame: bytes) -> bool:
        """Queue a broadcast frame; True when the session needs the hub's next write pass
        (:meth:`write_pushed`), False when it is in it already or holding frames."""
        if self.held is not None:
            self.held.append(frame)
            return False
        self.conn.send(frame)
        if self._dirty:
            return False
        self._dirty = True
        return True

    def write_now(self, frame: bytes) -> None:
        """The hub's write of a frame alone in its loop pass: at once, unless it must wait
        (READY or a replay being built) or follow output not written yet."""
        if self.held is not None:
            self.held.append(frame)
            return
        transport = self.transport
        if transport is None:
            return
        data = self.conn.send_now(frame)
        if data is None:
            self.write_pushed()  # queued behind what was there: all of it, in one write
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.gateway.send_buffer_bytes:
            self.cut_off(transport)
        elif self.direct is None:
            self._direct_is(transport)

    def write_pushed(self) -> None:
        """The hub's write pass: what is queued in one write, and the send-buffer bound.

        It runs once per recipient of a loop pass's frames (a burst to 1,000 members pays it
        1,000 times beside the ``write`` itself), so it does only that: a push changes
        neither the protocol's state nor its deadline, and whatever does is followed by
        :meth:`flush`."""
        self._dirty = False
        transport = self.transport
        if transport is None:
            return
        data = self.conn.data_to_send()
        if data:
            transport.write(data[0] if len(data) == 1 else b"".join(data))
            if transport.get_write_buffer_size() > self.gateway.send_buffer_bytes:
                self.cut_off(transport)
                return
        self._direct_is(transport if self.held is None and self.conn.takes_frames_now else None)

    def flush(self) -> None:
        """Write what is queued, then close or file the deadline as the protocol says: after
        anything that may have changed its state."""
        self.write_pushed()
        transport = self.transport
        if transport is None:
            return
        if self.conn.closed:
            transport.close()
            return
        self._arm()

    def _direct_is(self, transport: asyncio.Transport | None) -> None:
        if (transport is None) != (self.direct is None):
            Audience.epoch += 1  # audiences split their sessions again on their next write
        self.direct = transport

    def cut_off(self, transport: asyncio.Transport) -> None:
        """A slow consumer: queue nothing more; the close frame goes behind what is buffered
        and the deadline drops the socket if the client does not read it in time."""
        self._direct_is(None)
        self.gateway.slow_consumers += 1
        self.conn.close(CloseCode.SLOW_CONSUMER, loop_ms(self._loop))
        for extra in self.conn.data_to_send():
            transport.write(extra)
        self._arm()

    def _arm(self) -> None:
        deadline = self.conn.deadline
        armed = self._armed
        if deadline is None or (armed is not None and slot_start_ms(armed) <= deadline):
            return  # no deadline, or filed for no later than it: looked at again then
        self._armed = self.gateway.deadlines.file(self, deadline)

    def on_deadline(self, slot: int) -> None:
        if slot != self._armed:
            return  # filed again since, or gone
        self._armed = None
        self.conn.handle_timer(loop_ms(self._loop))
        if self.conn.closed and self.transport is not None:
            self.transport.abort()
            return
        self.flush()


def protocol_class(gateway: Gateway) -> type[Session]:
    """A Session class bound to one node's gateway, for ``uvicorn.Config(ws=...)``."""
    return type("GatewaySession", (Session,), {"gateway": gateway, "__slots__": ()})
