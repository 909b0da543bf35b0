"""Broadcast servers the Miaou gateway is measured against, each run in its own process.

``python -m bench.gateway_contenders KIND PORT`` serves on 127.0.0.1:PORT, prints
``ready`` on stdout once listening, and runs until SIGTERM. Every kind does the same job:
a client that connects to ``/`` is subscribed and is sent one text frame first (``hello``,
or Socket.IO's connect answer) so the load generator knows it is in; every text message
that the *sender* (a client connected to ``/send``) sends is broadcast, unchanged, to every
subscribed client. All run on uvloop, as the node does; none compresses.

- ``websockets``: ``websockets.asyncio.server.serve`` with ``websockets.broadcast`` (the
  library's own encode-once fan-out: the frame is built once and written to each
  connection). Its default keepalive ping (every 20 s) stays on.
- ``raw``: a bare ``asyncio.Protocol`` with a minimal handshake; a broadcast is one
  pre-built frame written to every transport. No heartbeats, limits or checks: the floor.
- ``socketio``: python-socketio's ``AsyncServer`` on aiohttp; a subscribed client is in the
  room ``all`` (joined in the connect handler); the sender emits ``send`` and the server
  ``emit("msg", data, room="all")``. Engine.IO pings every 25 s (its default).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import resource
import signal
import sys
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


def ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


async def until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


# -- websockets ---------------------------------------------------------------------------
async def serve_websockets(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/send":
            async for message in ws:
                broadcast(clients, message)
            return
        clients.add(ws)
        try:
            await ws.send("hello")
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, backlog=2048):
        ready()
        await until_signalled()


# -- raw encode-once ----------------------------------------------------------------------
def server_frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65_536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def unmask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    stream = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(stream, "big") ^ int.from_bytes(data, "big")).to_bytes(n, "big")


HELLO = server_frame(b"hello")


class RawHub:
    def __init__(self) -> None:
        self.subscribers: set[asyncio.Transport] = set()

    def broadcast(self, payload: bytes) -> None:
        frame = server_frame(payload)  # encoded once, the same bytes for everyone
        for transport in self.subscribers:
            transport.write(frame)


class RawConnection(asyncio.Protocol):
    """Handshake, then: a subscriber only listens; the sender's text frames are broadcast."""

    __slots__ = ("buf", "hub", "open", "sender", "transport")

    def __init__(self, hub: RawHub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.open = False
        self.sender = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.hub.subscribers.discard(self.transport)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if self.buf:
            data, self.buf = self.buf + data, b""
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head, data = data[:end], data[end + 4 :]
            key = b""
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())  # noqa: S324 - RFC 6455
            transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.open = True
            self.sender = head.startswith(b"GET /send ")
            if not self.sender:
                transport.write(HELLO)
                self.hub.subscribers.add(transport)
        self._frames(data)

    def _frames(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        i, n = 0, len(data)
        while n - i >= 6:
            opcode = data[i] & 0x0F
            length, h = data[i + 1] & 0x7F, 2
            if length == 127 and n - i < 14:
                break
            if length == 126:
                length, h = int.from_bytes(data[i + 2 : i + 4], "big"), 4
            elif length == 127:
                length, h = int.from_bytes(data[i + 2 : i + 10], "big"), 10
            end = i + h + 4 + length
            if end > n:
                break
            payload = unmask(data[i + h + 4 : end], data[i + h : i + h + 4])
            if opcode == 1 and self.sender:
                self.hub.broadcast(payload)
            elif opcode == 9:
                transport.write(server_frame(payload, 10))
            elif opcode == 8:
                transport.write(server_frame(payload[:2], 8))
                transport.close()
                return
            i = end
        if i < n:
            self.buf = data[i:]


async def serve_raw(port: int) -> None:
    hub = RawHub()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: RawConnection(hub), "127.0.0.1", port, backlog=2048, reuse_address=True
    )
    async with server:
        ready()
        await until_signalled()


# -- python-socketio ----------------------------------------------------------------------
async def serve_socketio(port: int) -> None:
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"])
    app = web.Application()
    sio.attach(app)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        if "sender=1" not in environ.get("QUERY_STRING", ""):
            await sio.enter_room(sid, "all")

    @sio.on("send")
    async def send(sid: str, data: Any) -> None:
        await sio.emit("msg", data, room="all")

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=2048, reuse_address=True)
    await site.start()
    ready()
    try:
        await until_signalled()
    finally:
        await runner.cleanup()


SERVERS = {"websockets": serve_websockets, "raw": serve_raw, "socketio": serve_socketio}


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(SERVERS[kind](port))


if __name__ == "__main__":
    main()
