"""The bus across nodes: Redis pub/sub on one channel shared by every node of a cluster.

Each ``publish`` is one Redis message, encoded once::

    b"MBUS" | len(node id): 1 byte | node id (ASCII) | msgpack(list[Event])

Delivery:

- **Local subscribers** get the events synchronously inside ``publish``, in order, before it
  returns, without waiting for Redis (as with :class:`~miaou.bus.memory.MemoryBus`). They
  get them even when Redis is down: the events describe committed writes. ``publish`` then
  raises :class:`~miaou.errors.Unavailable`, since the other nodes did not get them.
- **Other nodes** get each batch once, in the order this node called ``publish`` (one sender
  task pipelines the batches, in order, on one connection), from their listener task, again
  synchronously and in order. Their payloads arrive as builtins (a msgspec Struct payload
  becomes a dict). A node skips the messages it published itself, recognised by its node id
  in the header, so its subscribers get each event exactly once.

Redis pub/sub is at most once: a message published while a subscriber is disconnected is lost
for it, and it is not told. That is acceptable here because durable events carry their
position in their stream, and the gateway repairs a gap from the durable log
(``miaou.bus.log``): it sees a gap when a later event of the stream arrives, and
:attr:`RedisBus.on_reconnect` is called (in the listener task, after the re-subscribe is
confirmed) so it can re-check every stream at once. Ephemeral events (typing, presence) lost
in a disconnection stay lost.

The listener notices a lost connection from a read error, or from silence: with no traffic
for ``ping_interval`` it sends a PING and gives the connection up if nothing comes back in
another ``ping_interval``. It then re-subscribes with a backoff from 0.1 s doubling up to
2 s, logging every attempt, until it succeeds or the bus is closed.

Bounds: a batch encodes to at most ``max_batch_bytes`` (8 MiB) or ``publish`` refuses it
with :class:`~miaou.errors.PayloadTooLarge` before anything is delivered; batches waiting
for Redis hold at most ``max_pending_bytes`` (64 MiB), beyond which ``publish`` fails fast
with :class:`~miaou.errors.Unavailable`; every Redis command is bounded by
``socket_timeout`` and every connection attempt by ``connect_timeout``; received messages
over ``max_batch_bytes`` are skipped. (Redis itself cuts off a subscriber whose output
buffer passes ``client-output-buffer-limit pubsub``, 32 MiB by default: keep the batch bound
well below it.) No ``redis`` exception leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from miaou.bus.base import Event
from miaou.bus.handlers import Handlers, HandlerSubscription
from miaou.errors import PayloadTooLarge, Unavailable

log = structlog.get_logger("miaou.bus")

MAGIC = b"MBUS"
DEFAULT_CHANNEL = "miaou:events"
DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024
BACKOFF_FIRST = 0.1  # seconds before the first re-subscribe attempt
BACKOFF_MAX = 2.0
PIPELINE_MAX_BATCHES = 64  # batches sent per round trip, at most
_NODE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Connection loss and timeouts, as redis-py raises them (and the socket errors it may not
# wrap; TimeoutError is an OSError).
_TRANSPORT_ERRORS = (RedisError, OSError)

_Outgoing = tuple[bytearray, "asyncio.Future[None]"]


class RedisBus:
    """The bus over Redis pub/sub; see the module docstring.

    ``node_id`` names this bus instance on the channel (and in Redis ``CLIENT LIST``, as
    ``miaou-bus:<node_id>``); it must be unique among the instances sharing the channel and
    defaults to a random one. Call :meth:`start` before publishing; :meth:`close` ends it.
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        node_id: str | None = None,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        ping_interval: float = 10.0,
    ) -> None:
        node_id = secrets.token_hex(8) if node_id is None else node_id
        if not _NODE_ID.fullmatch(node_id):
            raise ValueError(f"node_id must match {_NODE_ID.pattern}, got {node_id!r}")
        if not channel:
            raise ValueError("channel must not be empty")
        if max_batch_bytes < 1024 or max_pending_bytes < max_batch_bytes:
            raise ValueError("need 1024 <= max_batch_bytes <= max_pending_bytes")
        if min(socket_timeout, connect_timeout, ping_interval) <= 0:
            raise ValueError("timeouts and ping_interval must be positive")
        self.channel = channel
        self.node_id = node_id
        #: Called (no arguments, in the listener task) after a lost subscription is back;
        #: events published meanwhile were missed. Must not block; an exception is logged.
        self.on_reconnect: Callable[[], None] | None = None
        # On every log line. (Not a bound logger: that would miss a later logging setup.)
        self._ctx = {"channel": channel, "node_id": node_id}
        self._header = MAGIC + bytes([len(node_id)]) + node_id.encode("ascii")
        self._max_batch_bytes = max_batch_bytes
        self._max_pending_bytes = max_pending_bytes
        self._socket_timeout = socket_timeout
        self._ping_interval = ping_interval
        # No retries inside redis-py: a failure must reach this module, which decides
        # (publish: Unavailable, never a duplicate; listener: reconnect and tell the gateway).
        self._client = Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            client_name=f"miaou-bus:{node_id}",
            max_connections=4,  # the sender, the listener, one being replaced; spare
        )
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[Event])
        self._handlers = Handlers()
        self._start_lock = asyncio.Lock()
        self._closed = False
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._outgoing: deque[_Outgoing] = deque()
        self._in_flight: list[_Outgoing] = []
        self._pending_bytes = 0
        self._wakeup = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe; idempotent. :class:`Unavailable` if Redis cannot be reached
        (the bus stays unstarted, and ``start`` may be tried again)."""
        async with self._start_lock:
            if self._closed:
                raise RuntimeError("RedisBus is closed; make a new one")
            if self._listener is not None:
                return
            try:
                pubsub = await self._subscribe()
            except _TRANSPORT_ERRORS as exc:
                raise Unavailable("The event bus (Redis) is unreachable.") from exc
            if self._closed:  # closed while connecting
                await self._discard(pubsub)
                raise RuntimeError("RedisBus is closed; make a new one")
            self._pubsub = pubsub
            self._sender = asyncio.create_task(self._send_loop(), name="miaou-bus-sender")
            self._listener = asyncio.create_task(self._listen(pubsub), name="miaou-bus-listener")
            log.info("bus_started", **self._ctx)

    async def close(self) -> None:
        """Stop listening and sending, unsubscribe, close the connections; idempotent.

        Batches not yet sent fail with :class:`Unavailable`."""
        if self._closed:
            return
        self._closed = True
        tasks = [task for task in (self._listener, self._sender) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fail_pending(Unavailable("The event bus is closed."))
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_TRANSPORT_ERRORS):
                async with asyncio.timeout(self._socket_timeout):
                    await pubsub.unsubscribe(self.channel)
            await self._discard(pubsub)
        with contextlib.suppress(*_TRANSPORT_ERRORS):
            await self._client.aclose()
        self._handlers.clear()

    async def __aenter__(self) -> RedisBus:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether the listener holds a live subscription (False while it reconnects)."""
        return self._pubsub is not None and not self._closed

    # -- the Bus interface ------------------------------------------------------------------

    def subscribe(self, handler: Callable[[Event], None]) -> HandlerSubscription:
        return self._handlers.subscribe(handler)

    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver ``events`` to local subscribers now, then send them to the other nodes.

        Raises, before delivering anything: RuntimeError if the bus is not started (or is
        closed), :class:`PayloadTooLarge` if the batch is over ``max_batch_bytes``,
        :class:`Unavailable` if too much is already waiting for Redis. Raises, after the
        local delivery: :class:`Unavailable` if Redis did not take the batch.
        """
        if self._closed:
            raise RuntimeError("RedisBus.publish() on a closed bus")
        if self._sender is None:
            raise RuntimeError("RedisBus.publish() before start()")
        if not events:
            return
        data = self._encode(events)
        if self._pending_bytes + len(data) > self._max_pending_bytes:
            raise Unavailable("The event bus is backed up; try again.")
        self._handlers.deliver(events)
        if self._closed:  # a handler closed the bus
            raise Unavailable("The event bus is closed.")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outgoing.append((data, future))
        self._pending_bytes += len(data)
        self._wakeup.set()
        await future

    # -- sending ---------------------------------------------------------------------------

    def _encode(self, events: Sequence[Event]) -> bytearray:
        buffer = bytearray(self._header)
        batch = events if isinstance(events, list | tuple) else list(events)
        self._encoder.encode_into(batch, buffer, len(buffer))
        if len(buffer) > self._max_batch_bytes:
            raise PayloadTooLarge(
                f"An event batch of {len(events)} events encodes to {len(buffer)} bytes, over "
                f"the bus limit of {self._max_batch_bytes}."
            )
        return buffer

    async def _send_loop(self) -> None:
        """Send the queued batches in order, as many per round trip as are waiting."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._outgoing:
                chunk = self._in_flight = self._take_chunk()
                error: Exception | None = None
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for data, _ in chunk:
                            pipe.publish(self.channel, data)
                        await pipe.execute()
                except _TRANSPORT_ERRORS as exc:
                    log.warning(
                        "bus_publish_failed", **self._ctx, batches=len(chunk), error=repr(exc)
                    )
                    error = exc
                except Exception as exc:
                    log.exception("bus_publish_failed", **self._ctx, batches=len(chunk))
                    error = exc
                self._in_flight = []
                self._settle(chunk, error)

    def _take_chunk(self) -> list[_Outgoing]:
        chunk = [self._outgoing.popleft()]
        size = len(chunk[0][0])
        while (
            self._outgoing
            and len(chunk) < PIPELINE_MAX_BATCHES
            and size + len(self._outgoing[0][0]) <= self._max_batch_bytes
        ):
            item = self._outgoing.popleft()
            chunk.append(item)
            size += len(item[0])
        return chunk

    def _settle(self, chunk: list[_Outgoing], error: Exception | None) -> None:
        for data, future in chunk:
            self._pending_bytes -= len(data)
            if future.done():  # its publisher was cancelled; the batch was sent anyway
                continue
            if error is None:
                future.set_result(None)
            else:
                unavailable = Unavailable("The event bus (Redis) is unreachable.")
                unavailable.__cause__ = error
                future.set_exception(unavailable)

    def _fail_pending(self, error: Unavailable) -> None:
        chunk = [*self._in_flight, *self._outgoing]
        self._in_flight = []
        self._outgoing.clear()
        for data, future in chunk:
            self._pending_bytes -= len(data)
            if not future.done():
                future.set_exception(Unavailable(error.message))

    # -- listening -------------------------------------------------------------------------

    async def _subscribe(self) -> PubSub:
        """A pub/sub connection subscribed to the channel, the subscription confirmed."""
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            async with asyncio.timeout(self._socket_timeout):
                while True:
                    message = await pubsub.get_message(timeout=self._socket_timeout)
                    if message is not None and message["type"] == "subscribe":
                        return pubsub
        except BaseException:
            await self._discard(pubsub)
            raise

    async def _discard(self, pubsub: PubSub) -> None:
        with contextlib.suppress(*_TRANSPORT_ERRORS):
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # redis-py < 8.2

    async def _listen(self, pubsub: PubSub) -> None:
        """The listener task: consume, and on a lost connection re-subscribe; forever."""
        while True:
            try:
                await self._consume(pubsub)
            except _TRANSPORT_ERRORS as exc:
                log.warning("bus_disconnected", **self._ctx, error=repr(exc))
            except Exception:
                log.exception("bus_listener_failed", **self._ctx)
            self._pubsub = None
            await self._discard(pubsub)
            pubsub = await self._resubscribe()
            self._pubsub = pubsub
            if self.on_reconnect is not None:
                try:
                    self.on_reconnect()
                except Exception:
                    log.exception("bus_on_reconnect_failed", **self._ctx)

    async def _consume(self, pubsub: PubSub) -> None:
        """Handle messages until the connection fails (raises; never returns)."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            if message is None:
                if pinged:
                    raise RedisConnectionError(
                        f"no reply from Redis to a PING within {self._ping_interval} s"
                    )
                await pubsub.ping()
                pinged = True
                continue
            pinged = False  # anything heard proves the connection alive
            if message["type"] == "message":
                self._receive(message["data"])

    async def _resubscribe(self) -> PubSub:
        delay = BACKOFF_FIRST
        attempt = 0
        while True:
            await asyncio.sleep(delay)
            attempt += 1
            try:
                pubsub = await self._subscribe()
            except _TRANSPORT_ERRORS as exc:
                log.warning(
                    "bus_reconnect_failed",
                    **self._ctx,
                    attempt=attempt,
                    retry_in=min(delay * 2, BACKOFF_MAX),
                    error=repr(exc),
                )
            except Exception:
                log.exception("bus_reconnect_failed", **self._ctx, attempt=attempt)
            else:
                log.info("bus_reconnected", **self._ctx, attempts=attempt)
                return pubsub
            delay = min(delay * 2, BACKOFF_MAX)

    def _receive(self, data: Any) -> None:
        if isinstance(data, bytes) and data.startswith(self._header):
            return  # ours: delivered locally when published
        events = self._decode(data)
        if events is not None:
            self._handlers.deliver(events)

    def _decode(self, data: Any) -> list[Event] | None:
        """The events of a message from another node; None (logged) if malformed."""
        if not isinstance(data, bytes):
            log.warning("bus_message_malformed", **self._ctx, reason="not bytes")
            return None
        if len(data) > self._max_batch_bytes:
            log.warning("bus_message_malformed", **self._ctx, reason="too large", size=len(data))
            return None
        if len(data) < len(MAGIC) + 1 or not data.startswith(MAGIC):
            log.warning("bus_message_malformed", **self._ctx, reason="no header", size=len(data))
            return None
        start = len(MAGIC) + 1 + data[len(MAGIC)]
        sender = data[len(MAGIC) + 1 : start].decode("ascii", "replace")
        try:
            return self._decoder.decode(memoryview(data)[start:])
        except msgspec.DecodeError as exc:  # ValidationError included
            log.warning(
                "bus_message_malformed", **self._ctx, reason=str(exc), sender=sender, size=len(data)
            )
            return None
